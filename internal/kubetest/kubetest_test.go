package kubetest_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgeline/edgeline/internal/kubetest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

func TestNodesLookLikeTheCluster(t *testing.T) {
	c := kubetest.Get(t)
	ctx := t.Context()
	v, err := c.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != "v1.37.2" {
		t.Errorf("apiserver reports %s, want v1.37.2 (is the version stamped? see mk/kube.mk)", v.GitVersion)
	}
	tests := []struct {
		node    string
		arch    string
		label   string
		tainted bool
	}{
		{kubetest.CloudNode, "amd64", kubetest.CloudLabel, false},
		{kubetest.EdgeNode, "arm64", kubetest.EdgeRoleLabel, true},
	}
	for _, tt := range tests {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, tt.node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !kubetest.NodeReady(n) {
			t.Errorf("%s is not Ready", tt.node)
		}
		if n.Labels["kubernetes.io/arch"] != tt.arch || n.Labels[tt.label] != "true" {
			t.Errorf("%s labels = %v, want arch %s and %s=true", tt.node, n.Labels, tt.arch, tt.label)
		}
		tainted := len(n.Spec.Taints) == 1 && n.Spec.Taints[0].Key == kubetest.EdgeTaintKey &&
			n.Spec.Taints[0].Effect == corev1.TaintEffectNoSchedule
		if tainted != tt.tainted {
			t.Errorf("%s taints = %v, want edge taint %v", tt.node, n.Spec.Taints, tt.tainted)
		}
	}
	pi, _ := c.Client.CoreV1().Nodes().Get(ctx, kubetest.EdgeNode, metav1.GetOptions{})
	if pi.Labels[kubetest.SiteLabel] != "factory" {
		t.Errorf("pi site label = %q, want factory", pi.Labels[kubetest.SiteLabel])
	}
}

// TestSchedulerHonoursTheEdgeTaint checks the real scheduler and kwok: a
// plain pod lands on the vps and becomes Ready; a pod that asks for the edge
// node without tolerating its taint stays Pending with the scheduler's reason.
func TestSchedulerHonoursTheEdgeTaint(t *testing.T) {
	c := kubetest.Get(t)
	ctx := t.Context()
	ns := "kubetest-taint"
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := func(name string, sel map[string]string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				NodeSelector:                 sel,
				AutomountServiceAccountToken: new(bool),
				Containers: []corev1.Container{{Name: "c", Image: "example.invalid/none:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}},
			},
		}
	}
	for _, p := range []*corev1.Pod{pod("plain", nil), pod("wants-edge", map[string]string{kubetest.EdgeRoleLabel: "true"})} {
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := kubetest.WaitPod(ctx, c.Client, ns, "plain", 30*time.Second, kubetest.PodReady)
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != kubetest.CloudNode {
		t.Errorf("plain pod on %q, want %s", p.Spec.NodeName, kubetest.CloudNode)
	}
	p, err = kubetest.WaitPod(ctx, c.Client, ns, "wants-edge", 30*time.Second, kubetest.PodUnschedulable)
	if err != nil {
		t.Fatal(err)
	}
	msg := kubetest.ScheduleMessage(p)
	if p.Spec.NodeName != "" || !strings.Contains(msg, "untolerated taint") {
		t.Errorf("pod wanting the edge without toleration: node %q, scheduler says %q; want Pending for the untolerated taint", p.Spec.NodeName, msg)
	}
	if err := c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}); err != nil {
		t.Error(err)
	}
}

// TestCRDsInstalled checks that the CRDs from the tool cache are served
// (make kube puts the Gateway API HTTPRoute there).
func TestCRDsInstalled(t *testing.T) {
	c := kubetest.Get(t)
	rl, err := c.Client.Discovery().ServerResourcesForGroupVersion("gateway.networking.k8s.io/v1")
	if err != nil {
		t.Fatalf("Gateway API not served: %v (run make kube)", err)
	}
	for _, r := range rl.APIResources {
		if r.Name == "httproutes" {
			return
		}
	}
	t.Errorf("gateway.networking.k8s.io/v1 serves %v, want httproutes", rl.APIResources)
}
