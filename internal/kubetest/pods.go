package kubetest

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// PodReady reports whether p is scheduled and Ready (kwok marks scheduled
// pods Ready).
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PodUnschedulable reports whether the scheduler tried p and found no node.
func PodUnschedulable(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
		}
	}
	return false
}

// PodSettled reports whether p is either Ready or unschedulable: the
// scheduler has made up its mind.
func PodSettled(p *corev1.Pod) bool { return PodReady(p) || PodUnschedulable(p) }

// ScheduleMessage is the scheduler's explanation on an unschedulable pod
// ("0/2 nodes are available: ...").
func ScheduleMessage(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Message
		}
	}
	return ""
}

// WaitPod polls pod ns/name until cond holds.
func WaitPod(ctx context.Context, c kubernetes.Interface, ns, name string, timeout time.Duration, cond func(*corev1.Pod) bool) (*corev1.Pod, error) {
	var last *corev1.Pod
	err := Poll(ctx, timeout, func() (bool, error) {
		p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		return last, fmt.Errorf("pod %s/%s: %w (phase %s, node %q, scheduler: %q)", ns, name, err, phase(last), node(last), msg(last))
	}
	return last, nil
}

// WaitPods polls the pods matching selector in ns until there are want of
// them and cond holds for each.
func WaitPods(ctx context.Context, c kubernetes.Interface, ns, selector string, want int, timeout time.Duration, cond func(*corev1.Pod) bool) ([]corev1.Pod, error) {
	var pods []corev1.Pod
	err := Poll(ctx, timeout, func() (bool, error) {
		l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		pods = pods[:0]
		for _, p := range l.Items {
			if p.DeletionTimestamp == nil {
				pods = append(pods, p)
			}
		}
		if len(pods) != want {
			return false, nil
		}
		for i := range pods {
			if !cond(&pods[i]) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return pods, fmt.Errorf("%d pods %q in %s: %w (have %d)", want, selector, ns, err, len(pods))
	}
	return pods, nil
}

func phase(p *corev1.Pod) corev1.PodPhase {
	if p == nil {
		return ""
	}
	return p.Status.Phase
}

func node(p *corev1.Pod) string {
	if p == nil {
		return ""
	}
	return p.Spec.NodeName
}

func msg(p *corev1.Pod) string {
	if p == nil {
		return ""
	}
	return ScheduleMessage(p)
}
