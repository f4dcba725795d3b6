package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgeline/edgeline/internal/helm"
	"github.com/edgeline/edgeline/internal/kubetest"
	"github.com/edgeline/edgeline/internal/nodetest"
)

// What this cluster test does NOT make real, and why:
//   - no ingress controller: Traefik does not build from the Go module proxy (its go.mod
//     replaces a module with a local path), so the browser reaches the web Service's NodePort
//     on the node and `facelogin web` proxies /api/ to the api Service itself;
//   - no NetworkPolicy enforcement: the chart's policies are created and accepted by the
//     apiserver, but the CNI bridge plugin does not enforce them;
//   - no arm64 node: the edge node "pi" is kwok's fake, so nothing runs on it here;
//   - plain http: browsers keep the app's Secure session cookie only over https or from a
//     loopback address, so the browser opens a loopback port that the test forwards, byte
//     for byte, to the NodePort (as `kubectl port-forward` would); in a real cluster that is
//     Traefik's https address.

const (
	nodeRelease = "face"
	nodeNS      = "facelogin"
	nodePort    = 30080
)

// forwardNodePort forwards a loopback port to the web Service's NodePort on the node until
// the test ends and returns the URL the browser opens.
func forwardNodePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	target := net.JoinHostPort(nodetest.IP, fmt.Sprint(nodePort))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, u)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// nodeValues is the chart's values preset for the test node: the app's real images (built
// by package appimage, as `edgeline images build` does) from the node's registry, the external PostgreSQL on the node's bridge (the chart's built-in one runs the
// official postgres image, which no registry here serves), everything on the real amd64
// node, no ingress (none runs), the web Service on a fixed NodePort, two api replicas with
// the autoscaler off (no metrics server runs).
func nodeValues(base, api, web, dbURL string) map[string]any {
	image := func(ref string) map[string]any {
		repo, digest, _ := strings.Cut(ref, "@")
		return map[string]any{"repository": repo, "digest": digest}
	}
	cloud := map[string]any{"preset": "cloud-only"}
	return map[string]any{
		"publicURL": base,
		"ingress":   map[string]any{"enabled": false},
		"api": map[string]any{
			"image":       image(api),
			"placement":   cloud,
			"autoscaling": map[string]any{"enabled": false},
			"replicas":    2,
		},
		"web": map[string]any{
			"image":     image(web),
			"placement": cloud,
			"service":   map[string]any{"type": "NodePort", "nodePort": nodePort},
		},
		"postgresql": map[string]any{"enabled": false},
		"database":   map[string]any{"url": dbURL, "cidr": nodetest.IP + "/32", "port": 5433},
	}
}

// TestOnTheNode installs the chart through internal/helm onto the real node and runs the
// seed's journey against it: every pod Ready through its real probes (the api's readiness
// follows the database), Amy enrolls in Chromium with the fake camera, the api pod that
// served her enrollment is deleted mid-journey, her session survives and she signs in with
// face and PIN (recognition inside the remaining api pod); a `helm upgrade` that changes an
// env value rolls the pods while she keeps signing in, without one failed sign-in; and
// `helm uninstall` leaves nothing running.
func TestOnTheNode(t *testing.T) {
	c := needConfig(t)
	n := nodetest.Get(t)
	ctx := t.Context()
	kc := n.Cluster.Client

	api, web, err := n.FaceloginImages(ctx, c.root, c.models)
	if err != nil {
		t.Fatal(err)
	}
	dbURL, err := n.Postgres(ctx, "facelogin")
	if err != nil {
		t.Fatal(err)
	}
	newRestrictedNamespace(t, n.Cluster, nodeNS)
	cfg, err := helm.NewConfiguration(n.Cluster.KubeconfigData, nodeNS, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := helm.Load(filepath.Join(c.root, "charts", "facelogin"))
	if err != nil {
		t.Fatal(err)
	}
	nodeBase := forwardNodePort(t)
	values := nodeValues(nodeBase, api, web, dbURL)

	in := helm.NewInstall(cfg)
	in.Name, in.Wait, in.Timeout = nodeRelease, true, 5*time.Minute
	t0 := time.Now()
	if _, err := in.Run(ctx, ch, values); err != nil {
		t.Fatalf("helm install: %v\n%s", err, podReport(ctx, n))
	}
	t.Logf("helm install → every pod Ready: %.1fs", time.Since(t0).Seconds())
	apiSel := "app.kubernetes.io/instance=" + nodeRelease + ",app.kubernetes.io/component=api"
	apis, err := kubetest.WaitPods(ctx, kc, nodeNS, apiSel, 2, time.Minute, kubetest.PodReady)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range apis {
		if p.Spec.NodeName != nodetest.Name {
			t.Errorf("api pod %s on %q, want the real node", p.Name, p.Spec.NodeName)
		}
	}
	reportMemory(t, n, "at rest")

	t.Run("readiness follows the database", func(t *testing.T) {
		// A database that hangs takes every api pod out of the Service (readiness fails
		// after 2 periods), and they come back when it answers again.
		if err := n.PausePostgres(true); err != nil {
			t.Fatal(err)
		}
		_, err := kubetest.WaitPods(ctx, kc, nodeNS, apiSel, 2, time.Minute, func(p *corev1.Pod) bool { return !kubetest.PodReady(p) })
		if err := n.PausePostgres(false); err != nil {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatalf("api pods stayed Ready with the database hanging: %v", err)
		}
		if _, err := kubetest.WaitPods(ctx, kc, nodeNS, apiSel, 2, time.Minute, kubetest.PodReady); err != nil {
			t.Fatalf("api pods not Ready again after the database came back: %v", err)
		}
	})

	// The first admin's invitation, from the admin CLI on the host against the same
	// database with the descriptor key from the release's Secret.
	sec, err := kc.CoreV1().Secrets(nodeNS).Get(ctx, "face-facelogin-secrets", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "descriptor-key")
	if err := os.WriteFile(keyFile, sec.Data["descriptor-key"], 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"FACELOGIN_DB=" + dbURL, "FACELOGIN_KEY_FILE=" + keyFile}
	bin := binary(t, c)
	out := run(t, env, bin, "admin", "invite", "--email", amyEmail, "--name", amyName, "--role", "admin", "--public-url", nodeBase)
	path := invitePath(t, out)
	cams := t.TempDir()

	enrollCam := newChrome(t, c, "node-amy-enroll", posesCamera(t, c, cams, "amy", 1, 2, 5), browserOpts{})
	enroll(enrollCam, c, nodeBase, path, "")
	served := servedBy(t, n, apiSel, "GET /api/ws/enroll")
	t.Logf("enrollment served by api pod %s", served)

	// Mid-journey the pod that took the enrollment goes away; the session lives in
	// PostgreSQL, so the profile still opens through the other replica.
	if err := kc.CoreV1().Pods(nodeNS).Delete(ctx, served, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	enrollCam.do("open the profile after the pod is gone", 60*time.Second,
		chromedp.Navigate(nodeBase+"/profile"), chromedp.WaitVisible(css("#me")))
	if got := enrollCam.text("#me-name"); got != amyName {
		t.Fatalf("profile after losing the enrollment's pod shows %q", got)
	}
	logout(enrollCam)
	enrollCam.close()

	amy := newChrome(t, c, "node-amy-login", posesCamera(t, c, cams, "amy", 3, 4, 5), browserOpts{})
	if got := faceLogin(amy, nodeBase, 90*time.Second); got != "pin" {
		t.Fatalf("face login on the node ended with %q: %s", got, amy.describe())
	}
	enterPIN(amy, amyPIN)
	if by := servedBy(t, n, apiSel, "GET /api/ws/login"); by == served {
		t.Errorf("the login was served by the deleted pod %s", by)
	}
	if !hasFaceLogin(loginHistory(amy)) {
		t.Fatalf("no face login in the history: %s", describeRows(loginHistory(amy)))
	}
	logout(amy)
	if _, err := kubetest.WaitPods(ctx, kc, nodeNS, apiSel, 2, 2*time.Minute, kubetest.PodReady); err != nil {
		t.Fatal(err)
	}
	reportMemory(t, n, "after one sign-in")

	t.Run("upgrade rolls without a failed sign-in", func(t *testing.T) {
		before := replicaSets(t, n)
		up := helm.NewUpgrade(cfg)
		up.Wait, up.Timeout = true, 5*time.Minute
		changed := nodeValues(nodeBase, api, web, dbURL)
		changed["api"].(map[string]any)["extraEnv"] = []any{map[string]any{"name": "FACELOGIN_IDLE_TIMEOUT", "value": "20m"}}
		changed["web"].(map[string]any)["extraEnv"] = []any{map[string]any{"name": "FACELOGIN_LOG_LEVEL", "value": "debug"}}
		var upErr error
		var wg sync.WaitGroup
		wg.Add(1)
		done := make(chan struct{})
		go func() {
			defer wg.Done()
			defer close(done)
			_, upErr = up.Run(context.Background(), nodeRelease, ch, changed)
		}()
		// Amy's kiosk for this subtest (a browser's failure ends the test it belongs to).
		amy := newChrome(t, c, "node-amy-rollout", posesCamera(t, c, cams, "amy", 3, 4, 5), browserOpts{})
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("pods during the rollout:\n%s", podReport(context.Background(), n))
			}
		})
		logins := 0
		for {
			select {
			case <-done:
			default:
				if got := faceLogin(amy, nodeBase, 90*time.Second); got != "pin" {
					wg.Wait()
					t.Fatalf("sign-in %d during the rollout ended with %q: %s", logins+1, got, amy.describe())
				}
				enterPIN(amy, amyPIN)
				logout(amy)
				logins++
				continue
			}
			break
		}
		wg.Wait()
		if upErr != nil {
			t.Fatalf("helm upgrade: %v\n%s", upErr, podReport(ctx, n))
		}
		// One more after the rollout, on the new pods only.
		if got := faceLogin(amy, nodeBase, 90*time.Second); got != "pin" {
			t.Fatalf("sign-in after the rollout ended with %q: %s", got, amy.describe())
		}
		enterPIN(amy, amyPIN)
		logins++
		t.Logf("%d sign-ins during and after the rollout, none failed", logins)
		after := replicaSets(t, n)
		for comp, rs := range after {
			if rs == before[comp] {
				t.Errorf("%s: still ReplicaSet %s after the env change: no rollout", comp, rs)
			}
		}
		pods, err := kubetest.WaitPods(ctx, kc, nodeNS, apiSel, 2, time.Minute, kubetest.PodReady)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods {
			if !hasEnv(p.Spec.Containers[0].Env, "FACELOGIN_IDLE_TIMEOUT", "20m") {
				t.Errorf("api pod %s lacks the upgraded env", p.Name)
			}
		}
	})

	un := helm.NewUninstall(cfg)
	un.Wait, un.Timeout = true, 2*time.Minute
	if err := un.Run(ctx, nodeRelease); err != nil {
		t.Fatal(err)
	}
	if _, err := kubetest.WaitPods(ctx, kc, nodeNS, "", 0, 2*time.Minute, func(*corev1.Pod) bool { return true }); err != nil {
		t.Fatalf("pods left after uninstall: %v", err)
	}
	err = pollUntil(ctx, time.Minute, func() bool {
		ids, err := n.Running(nodeNS)
		return err == nil && len(ids) == 0
	})
	if err != nil {
		ids, _ := n.Running(nodeNS)
		t.Errorf("containerd still runs %d containers of %s after uninstall: %v", len(ids), nodeNS, ids)
	}
}

// newRestrictedNamespace creates ns enforcing the "restricted" Pod Security Standard, so
// the apiserver rejects any pod of the chart that is not locked down.
func newRestrictedNamespace(t *testing.T, c *kubetest.Cluster, ns string) {
	t.Helper()
	_, err := c.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   ns,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
}

// servedBy returns the api pod whose log has the latest request line for route, read
// through the kubelet as `kubectl logs` does.
func servedBy(t *testing.T, n *nodetest.Node, sel, route string) string {
	t.Helper()
	ctx := t.Context()
	var pod string
	var latest time.Time
	err := pollUntil(ctx, 15*time.Second, func() bool {
		pods, err := n.Cluster.Client.CoreV1().Pods(nodeNS).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return false
		}
		for _, p := range pods.Items {
			raw, err := n.Cluster.Client.CoreV1().Pods(nodeNS).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
			if err != nil {
				continue
			}
			for _, l := range bytes.Split(raw, []byte("\n")) {
				var rec struct {
					Time   time.Time `json:"time"`
					Msg    string    `json:"msg"`
					Route  string    `json:"route"`
					Status int       `json:"status"`
				}
				if json.Unmarshal(l, &rec) == nil && rec.Msg == "request" && rec.Route == route && rec.Status < 400 && rec.Time.After(latest) {
					pod, latest = p.Name, rec.Time
				}
			}
		}
		return pod != ""
	})
	if err != nil {
		t.Fatalf("no api pod logged %s", route)
	}
	return pod
}

// replicaSets returns the current ReplicaSet of the api and web Deployments.
func replicaSets(t *testing.T, n *nodetest.Node) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, comp := range []string{"api", "web"} {
		d, err := n.Cluster.Client.AppsV1().Deployments(nodeNS).Get(t.Context(), "face-facelogin-"+comp, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m[comp] = currentReplicaSet(t, n, d)
	}
	return m
}

func currentReplicaSet(t *testing.T, n *nodetest.Node, d *appsv1.Deployment) string {
	t.Helper()
	rss, err := n.Cluster.Client.AppsV1().ReplicaSets(nodeNS).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range rss.Items {
		if metav1.IsControlledBy(&rs, d) && rs.Annotations["deployment.kubernetes.io/revision"] == d.Annotations["deployment.kubernetes.io/revision"] {
			return rs.Name
		}
	}
	return ""
}

func hasEnv(env []corev1.EnvVar, name, value string) bool {
	for _, e := range env {
		if e.Name == name && e.Value == value {
			return true
		}
	}
	return false
}

// reportMemory logs each pod's resident memory beside its container's memory limit.
func reportMemory(t *testing.T, n *nodetest.Node, when string) {
	t.Helper()
	pods, err := n.Cluster.Client.CoreV1().Pods(nodeNS).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		m, err := n.PodMemory(string(p.UID))
		if err != nil {
			t.Log(err)
			continue
		}
		limit := p.Spec.Containers[0].Resources.Limits.Memory()
		t.Logf("memory %s: pod %s RSS %d MiB, working set %d MiB, peak %d MiB, limit %s", when, p.Name, m.RSS>>20, m.WorkingSet>>20, m.Peak>>20, limit)
	}
}

// podReport describes the release's pods and the kubelet's last words, for failures.
func podReport(ctx context.Context, n *nodetest.Node) string {
	var b strings.Builder
	pods, _ := n.Cluster.Client.CoreV1().Pods(nodeNS).List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s: phase %s ready %v\n", p.Name, p.Status.Phase, kubetest.PodReady(&p))
		for _, cs := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, "  %s: restarts %d state %+v\n", cs.Name, cs.RestartCount, cs.State)
		}
		if raw, err := n.Cluster.Client.CoreV1().Pods(nodeNS).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: new(int64(15))}).DoRaw(ctx); err == nil {
			fmt.Fprintf(&b, "  log:\n%s\n", raw)
		}
	}
	fmt.Fprintf(&b, "kubelet:\n%s\n", n.Logs("kubelet", 20))
	return b.String()
}

func pollUntil(ctx context.Context, timeout time.Duration, f func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !f() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
