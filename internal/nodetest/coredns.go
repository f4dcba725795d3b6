package nodetest

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/edgeline/edgeline/internal/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// corefile serves the cluster zone only: no forwarder, so no pod ever asks
// a resolver outside this machine.
const corefile = `.:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
`

// deployCoreDNS creates CoreDNS in kube-system as k3s and kubeadm do: RBAC,
// its Corefile, a Deployment of one replica (non-root, read-only root, all
// capabilities dropped; port 53 through the pod's unprivileged port sysctl)
// and the kube-dns Service at DNSIP.
func (n *Node) deployCoreDNS(ctx context.Context) error {
	c := n.Cluster.Client
	const ns = "kube-system"
	labels := map[string]string{"k8s-app": "kube-dns"}
	no, yes, uid := false, true, int64(65532)
	objs := []func() error{
		func() error {
			_, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "coredns"}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := c.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
				Rules: []rbacv1.PolicyRule{
					{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
					{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
				},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:coredns"},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "coredns", Namespace: ns}},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: "coredns"},
				Data:       map[string]string{"Corefile": corefile},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "coredns", Labels: labels},
				Spec: appsv1.DeploymentSpec{
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{
							ServiceAccountName: "coredns",
							DNSPolicy:          corev1.DNSDefault,
							NodeSelector:       map[string]string{"kubernetes.io/hostname": Name},
							SecurityContext: &corev1.PodSecurityContext{
								RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
								Sysctls:        []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "53"}},
								SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
							},
							Containers: []corev1.Container{{
								Name:  "coredns",
								Image: CoreDNSImage,
								Args:  []string{"-conf", "/etc/coredns/Corefile"},
								Ports: []corev1.ContainerPort{
									{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
									{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
								},
								LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
									HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt(8080)}}, PeriodSeconds: 10},
								ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
									HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt(8181)}}, PeriodSeconds: 1},
								Resources: corev1.ResourceRequirements{
									Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("40Mi")},
									Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")},
								},
								SecurityContext: &corev1.SecurityContext{
									AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
									Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
								},
								VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns", ReadOnly: true}},
							}},
							Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
								ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "coredns"}}}}},
						},
					},
				},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Labels: labels},
				Spec: corev1.ServiceSpec{
					Selector:  labels,
					ClusterIP: DNSIP,
					Ports: []corev1.ServicePort{
						{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt(53)},
						{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt(53)},
					},
				},
			}, metav1.CreateOptions{})
			return err
		},
	}
	for _, create := range objs {
		if err := create(); err != nil {
			return fmt.Errorf("nodetest: CoreDNS: %w", err)
		}
	}
	return nil
}

// waitDNS waits until CoreDNS answers through the kube-dns Service, which
// needs the pod Ready and kube-proxy's rules in place.
func (n *Node) waitDNS(ctx context.Context, timeout time.Duration) error {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(DNSIP, "53"))
	}}
	var last error
	err := kubetest.Poll(ctx, timeout, func() (bool, error) {
		if err := n.exited(); err != nil {
			return false, err
		}
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		addrs, err := r.LookupHost(qctx, "kubernetes.default.svc.cluster.local")
		last = err
		return err == nil && len(addrs) == 1 && addrs[0] == "10.0.0.1", nil
	})
	if err != nil {
		return n.failed("kube-proxy", fmt.Errorf("cluster DNS through %s: %w (last: %v)", DNSIP, err, last))
	}
	return nil
}
