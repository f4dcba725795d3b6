package nodetest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgeline/edgeline/internal/kubetest"
	"github.com/edgeline/edgeline/internal/nodetest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// crashChild makes the test binary a child that starts a node, runs the
// workload, says "ready" and waits to be killed (TestCrashedRunIsCleanedUp).
const crashChild = "NODETEST_CRASH_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(crashChild) != "" {
		n, err := nodetest.Start(context.Background(), nodetest.Options{BinDir: os.Getenv(nodetest.EnvVar)})
		if err != nil {
			fmt.Println("start:", err)
			os.Exit(1)
		}
		if err := deployWeb(context.Background(), n, "crash"); err != nil {
			fmt.Println("workload:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		select {}
	}
	os.Exit(nodetest.Main(m))
}

func binDir(t *testing.T) string {
	t.Helper()
	if err := nodetest.Available(); err != nil {
		t.Skip(err)
	}
	return os.Getenv(nodetest.EnvVar)
}

func start(t *testing.T) *nodetest.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	n, err := nodetest.Start(ctx, nodetest.Options{BinDir: binDir(t), Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNodeRunsPodsAndLeavesNothing starts the node, checks that it sits in
// the cluster beside kwok's edge node, runs a locked-down Deployment
// behind a Service (probes, DNS, kube-proxy), stops the node and checks the
// host is as before.
func TestNodeRunsPodsAndLeavesNothing(t *testing.T) {
	n := start(t)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			n.Stop()
		}
	})
	ctx := t.Context()
	c := n.Cluster.Client

	nodes := map[string]string{nodetest.Name: "amd64", kubetest.EdgeNode: "arm64"}
	for name, arch := range nodes {
		node, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !kubetest.NodeReady(node) || node.Labels["kubernetes.io/arch"] != arch {
			t.Errorf("node %s: ready %v, arch %q; want Ready %s", name, kubetest.NodeReady(node), node.Labels["kubernetes.io/arch"], arch)
		}
		if name == nodetest.Name && (node.Labels[kubetest.CloudLabel] != "true" || node.Status.NodeInfo.ContainerRuntimeVersion != "containerd://2.4.2") {
			t.Errorf("real node: labels %v, runtime %q; want the cloud label and containerd v2.4.2", node.Labels, node.Status.NodeInfo.ContainerRuntimeVersion)
		}
	}
	pi, _ := c.CoreV1().Nodes().Get(ctx, kubetest.EdgeNode, metav1.GetOptions{})
	if len(pi.Spec.Taints) != 1 || pi.Spec.Taints[0].Key != kubetest.EdgeTaintKey {
		t.Errorf("pi taints = %v, want the edge taint", pi.Spec.Taints)
	}

	if err := deployWeb(ctx, n, "web"); err != nil {
		t.Fatal(err)
	}
	svc, err := c.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The Service through kube-proxy from the host, by ClusterIP and by the
	// name CoreDNS gives it.
	if body := get(t, "http://"+net.JoinHostPort(svc.Spec.ClusterIP, "80")+"/"); body != "ok\n" {
		t.Errorf("Service answered %q", body)
	}
	if addrs := lookup(t, "web.default.svc.cluster.local"); len(addrs) != 1 || addrs[0] != svc.Spec.ClusterIP {
		t.Errorf("DNS web.default = %v, want %s", addrs, svc.Spec.ClusterIP)
	}
	if body := get(t, fmt.Sprintf("http://%s:%d/", nodetest.IP, svc.Spec.Ports[0].NodePort)); body != "ok\n" {
		t.Errorf("NodePort answered %q", body)
	}
	// Logs come through the kubelet.
	pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("pods: %v, %d", err, len(pods.Items))
	}
	if _, err := c.CoreV1().Pods("default").GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{}).DoRaw(ctx); err != nil {
		t.Errorf("logs through the kubelet: %v", err)
	}

	pids := n.PIDs()
	if err := n.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	stopped = true
	if left := nodetest.Leftovers(); len(left) > 0 {
		t.Errorf("after Stop the host still has:\n%s", strings.Join(left, "\n"))
	}
	for name, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("%s (pid %d) still runs", name, pid)
		}
	}
}

// TestCrashedRunIsCleanedUp kills a test binary that runs a node with
// pods (SIGKILL: no teardown runs), then starts a node again: Start clears
// what the dead run left, and Stop leaves nothing.
func TestCrashedRunIsCleanedUp(t *testing.T) {
	dir := binDir(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChild+"=1", nodetest.EnvVar+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	ready := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if lines.Text() == "ready" {
				ready <- "ready"
				io.Copy(io.Discard, out)
				return
			}
			t.Log("child:", lines.Text())
		}
		ready <- "child ended"
	}()
	select {
	case r := <-ready:
		if r != "ready" {
			cmd.Wait()
			t.Fatalf("the child node did not start: %s", r)
		}
	case <-time.After(10 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("the child node did not start in 10 minutes")
	}
	cmd.Process.Kill()
	cmd.Wait()

	left := nodetest.Leftovers()
	t.Logf("a killed run leaves %d things, e.g. %v", len(left), left[:min(len(left), 5)])
	if len(left) == 0 {
		t.Fatal("the killed run left nothing: the crash did not exercise the cleanup")
	}

	n := start(t)
	if err := deployWeb(t.Context(), n, "again"); err != nil {
		n.Stop()
		t.Fatal(err)
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if left := nodetest.Leftovers(); len(left) > 0 {
		t.Errorf("after Stop the host still has:\n%s", strings.Join(left, "\n"))
	}
}

// deployWeb runs two replicas of the pause program serving HTTP, locked
// down as the chart's pods are (non-root, read-only root, no
// capabilities), behind a NodePort Service, and waits for them to be Ready
// through their probes.
func deployWeb(ctx context.Context, n *nodetest.Node, name string) error {
	c := n.Cluster.Client
	labels := map[string]string{"app": name}
	two, no, yes, uid := int32(2), false, true, int64(65532)
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt(8080)}}, PeriodSeconds: 1}
	_, err := c.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &two,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: &no,
					SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid},
					Containers: []corev1.Container{{
						Name: "web", Image: nodetest.PauseImage, Args: []string{":8080"},
						ReadinessProbe: probe, LivenessProbe: probe,
						Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	_, err = c.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: labels,
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	pods, err := kubetest.WaitPods(ctx, c, "default", "app="+name, 2, 3*time.Minute, kubetest.PodReady)
	if err != nil {
		return fmt.Errorf("%w\nkubelet:\n%s", err, n.Logs("kubelet", 15))
	}
	for _, p := range pods {
		if p.Spec.NodeName != nodetest.Name || !strings.HasPrefix(p.Status.PodIP, "10.88.0.") {
			return fmt.Errorf("pod %s on %q with IP %q, want the real node and the bridge range", p.Name, p.Spec.NodeName, p.Status.PodIP)
		}
	}
	return nil
}

func get(t *testing.T, url string) string {
	t.Helper()
	var last error
	client := &http.Client{Timeout: 5 * time.Second}
	// kube-proxy programs the Service a moment after the endpoints appear
	// (much later on a loaded machine).
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		res, err := client.Get(url)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return string(b)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

func lookup(t *testing.T, host string) []string {
	t.Helper()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(nodetest.DNSIP, "53"))
	}}
	var last error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		addrs, err := r.LookupHost(ctx, host)
		cancel()
		if err == nil {
			return addrs
		}
		last = err
	}
	t.Fatalf("resolve %s through CoreDNS: %v", host, last)
	return nil
}

// BenchmarkStart starts the real node from cached binaries (control plane, registry and
// system images, containerd, kubelet, kube-proxy, CoreDNS answering) and stops it, beside
// the baseline: the kubetest control plane alone with kwok's two fake nodes. It reports both
// start times, their ratio, each phase of the node's start and the teardown.
//
//	EDGELINE_TEST_NODE=$EDGELINE_CACHE/bin go test -run '^$' -bench Start -benchtime 3x ./internal/nodetest
func BenchmarkStart(b *testing.B) {
	if err := nodetest.Available(); err != nil {
		b.Skip(err)
	}
	dir := os.Getenv(nodetest.EnvVar)
	var node, plane, stop time.Duration
	phases := map[string]time.Duration{}
	for b.Loop() {
		t0 := time.Now()
		c, err := kubetest.Start(b.Context(), kubetest.Options{BinDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		plane += time.Since(t0)
		c.Stop()

		t0 = time.Now()
		n, err := nodetest.Start(b.Context(), nodetest.Options{BinDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		node += time.Since(t0)
		for _, p := range n.Phases {
			phases[p.Name] += p.Took
		}
		t0 = time.Now()
		if err := n.Stop(); err != nil {
			b.Fatal(err)
		}
		stop += time.Since(t0)
		if left := nodetest.Leftovers(); len(left) > 0 {
			b.Fatalf("leftovers: %v", left)
		}
	}
	runs := float64(b.N)
	b.ReportMetric(node.Seconds()/runs, "node-start-s")
	b.ReportMetric(plane.Seconds()/runs, "baseline-start-s")
	b.ReportMetric(node.Seconds()/plane.Seconds(), "node/baseline")
	b.ReportMetric(stop.Seconds()/runs, "node-stop-s")
	for name, d := range phases {
		b.Logf("phase %-28s %.2fs", name, d.Seconds()/runs)
	}
}
