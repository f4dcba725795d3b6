package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/edgeline/edgeline/infra/cloud/hetznerfake"
	"github.com/edgeline/edgeline/internal/kubetest"
	"github.com/edgeline/edgeline/internal/nodetest"
	"github.com/edgeline/edgeline/internal/remote"
	"github.com/edgeline/edgeline/internal/remote/sshtest"
)

func TestMain(m *testing.M) { os.Exit(nodetest.Main(m)) }

// TestEndToEnd runs `edgeline up`, a second `up`, `preview`, `outputs` and `destroy`
// through the Automation API with the real pulumi CLI and our provider plugin.
//
// What is real: the pulumi engine and CLI, the plugin binary, SSH to real OpenSSH test
// hosts (the VPS and a Pi), the Helm SDK installing into a real kube-apiserver, the real
// facelogin chart. What stands in, and why:
//   - the Hetzner Cloud + DNS API is hetznerfake on loopback (no machine here reaches
//     api.hetzner.cloud); the "server" it creates has the address of the VPS test host,
//     and the stack's hostKey is that host's key, as cloud-init would have installed it;
//   - k3s is internal/k3s's recording stand-in (no k3s binary can be obtained here), so
//     the kubeconfig for the Helm releases is the test control plane's (edgeline:kubeconfig);
//   - cert-manager and Rancher are the small local charts in testdata/charts (their real
//     charts cannot be downloaded here); the ClusterIssuers go to the real API server.
//   - the cluster is internal/nodetest's: a real amd64 node (containerd, kubelet) where the
//     facelogin pods start from images in the node's registry, with an external PostgreSQL
//     on the node's bridge, and Helm's wait waits for them to be Ready through their
//     probes; the Pi is kwok's fake arm64 node, no ingress controller serves the Ingress.
//     Without a real node (not root, cgroup v2, EDGELINE_TEST_NODE unset) the app's pods
//     are only kwok's, the release is not waited for, and the log says why.
func TestEndToEnd(t *testing.T) {
	pulumiBin := os.Getenv("EDGELINE_TEST_PULUMI")
	if pulumiBin == "" {
		t.Skip("set EDGELINE_TEST_PULUMI to the pulumi CLI (make test builds it and does)")
	}
	sshtest.SSHD(t)
	ctx := context.Background()
	var kube *kubetest.Cluster
	var node *nodetest.Node
	appConfig := map[string]any{"edgeline:helmWait": false}
	if err := nodetest.Available(); err == nil {
		node = nodetest.Get(t)
		kube = node.Cluster
		appConfig = realNodeApp(t, node)
	} else {
		t.Logf("the app's pods run on kwok only: %v", err)
		kube = kubetest.Get(t)
	}

	tmp := t.TempDir()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// The plugin, built from this tree.
	pluginDir := filepath.Join(tmp, "plugins")
	build := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "pulumi-resource-edgeline"), "./cmd/pulumi-resource-edgeline")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v\n%s", err, out)
	}

	keys := sshtest.NewKeys(t)
	// The VPS is laid out as a stock server: the CloudHost replaces its host key from
	// user data after the first login, finding sshd's files as on a real one.
	vps := sshtest.Start(t, keys, sshtest.Options{SystemLayout: true})
	pi := sshtest.Start(t, keys, sshtest.Options{})
	hostKey, err := os.ReadFile(filepath.Join(vps.Dir, "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	api := hetznerfake.Start(vps.IP, "fd00:e6e::", "edgeline.test")
	defer api.Close()

	// The program directory: Pulumi.yaml naming the plugin, the issuers chart, the config.
	dir := filepath.Join(tmp, "infra")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(repo, "infra", "charts"), filepath.Join(dir, "charts")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "Pulumi.yaml"), fmt.Sprintf("name: edgeline\nruntime: go\nplugins:\n  providers:\n    - name: edgeline\n      path: %s\n", pluginDir))
	standin := filepath.Join(repo, "internal", "k3s", "testdata", "standin")
	agents, _ := json.Marshal([]map[string]any{{
		"name": "pi-hall-1", "host": pi.IP, "port": pi.Port, "site": "hall", "hostKeyFingerprint": pi.Fingerprint,
		// wireguard-native needs a public address per Pi: one from the documentation range.
		"externalIP": "203.0.113.40",
	}})
	config := map[string]any{
		"edgeline:domain": "edgeline.test", "edgeline:acmeEmail": "ops@edgeline.test", "edgeline:issuer": "staging",
		"edgeline:cloud": "native", "edgeline:hcloudToken": hetznerfake.Token, "edgeline:hcloudEndpoint": api.URL,
		"edgeline:hostKey": string(hostKey), "edgeline:sshPort": vps.Port, "edgeline:sshKeyFile": keys.ED25519,
		// The firewall's default source, given: no check-IP service is reachable here.
		"edgeline:deployerAddress":  "198.51.100.23",
		"edgeline:k3sAirGap":        map[string]string{"binary": filepath.Join(standin, "k3s"), "script": filepath.Join(standin, "install.sh")},
		"edgeline:agents":           json.RawMessage(agents),
		"edgeline:certManagerChart": filepath.Join(repo, "cmd", "edgeline", "testdata", "charts", "cert-manager"),
		"edgeline:rancherChart":     filepath.Join(repo, "cmd", "edgeline", "testdata", "charts", "rancher"),
		"edgeline:faceloginChart":   filepath.Join(repo, "charts", "facelogin"),
		"edgeline:kubeconfig":       string(kube.KubeconfigData),
		// kwok's fake nodes pull nothing: a repository that exists only in name (on the
		// real node, appValues names the images nodetest pushed).
		"edgeline:appImageRepository": "registry.example.org/edgeline",
	}
	maps.Copy(config, appConfig)
	stackFile, _ := json.MarshalIndent(map[string]any{"config": config}, "", "  ")
	writeFile(t, filepath.Join(dir, "Pulumi.e2e.yaml"), string(stackFile)) // JSON is YAML

	t.Setenv("PULUMI_CONFIG_PASSPHRASE", "e2e-passphrase")
	t.Setenv("PULUMI_HOME", filepath.Join(tmp, "pulumi-home"))
	t.Setenv("PULUMI_SKIP_UPDATE_CHECK", "1")
	t.Setenv("PULUMI_DIY_BACKEND_NO_LEGACY_WARNING", "true")
	base := []string{"--dir", dir, "--stack", "e2e", "--backend", "file://" + filepath.Join(tmp, "state"), "--pulumi", pulumiBin}
	edgeline := func(args ...string) (int, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(ctx, append(append([]string{}, base...), args...), &out, &errb)
		t.Logf("edgeline %s -> %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		return code, out.String() + errb.String()
	}

	// A bad config is refused before anything is created.
	config["edgeline:domain"] = "not a domain"
	bad, _ := json.Marshal(map[string]any{"config": config})
	writeFile(t, filepath.Join(dir, "Pulumi.e2e.yaml"), string(bad))
	code, out := edgeline("up")
	if code != exitUsage || !strings.Contains(out, `edgeline:domain "not a domain" is not a DNS name`) {
		t.Fatalf("bad config: exit %d, want %d with the domain problem named", code, exitUsage)
	}
	if _, _, srvs, _ := api.Counts(); srvs != 0 || len(api.Calls()) != 0 {
		t.Fatalf("a refused config reached the cloud: %v", api.Calls())
	}
	writeFile(t, filepath.Join(dir, "Pulumi.e2e.yaml"), string(stackFile))

	// up: everything is created.
	code, out = edgeline("up")
	if code != exitOK {
		t.Fatalf("up: exit %d", code)
	}
	for _, want := range []string{"+  CloudHost vps: creating", "ok K3sServer server: created", "ok K3sAgent agent-pi-hall-1: created",
		"ok HelmRelease facelogin: created", "ipv4: " + vps.IP,
		"rancherBootstrapPassword: [secret]", "appUrl: https://login.edgeline.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("up output lacks %q", want)
		}
	}
	// The host key from user data was replaced after the first login (issue 16.3): the
	// VPS has a new one, and that is the one the stack pins.
	pub, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/etc/ssh/ssh_host_ed25519_key.pub", vps.PID))
	if err != nil {
		t.Fatal(err)
	}
	newKey, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if fp := ssh.FingerprintSHA256(newKey); fp == vps.Fingerprint || !strings.Contains(out, "hostKeyFingerprint: "+fp) {
		t.Errorf("up pinned no new host key: the VPS has %s (from user data: %s)", fp, vps.Fingerprint)
	}
	vps.HostKey = newKey
	if strings.Contains(out, hetznerfake.Token) {
		t.Error("up printed the API token")
	}
	hosts := sshtest.WriteKnownHosts(t, vps, pi)
	if n := strings.Count(sshRun(t, keys, hosts, vps, "cat /var/lib/k3s-standin/install.count"), "x"); n != 1 {
		t.Errorf("k3s installed %d times on the VPS", n)
	}
	if got := sshRun(t, keys, hosts, vps, "cat /var/lib/k3s-standin/k3s.log"); !strings.Contains(got, "kubectl taint node pi-hall-1 --overwrite edgeline.io/edge=true:NoSchedule") ||
		!strings.Contains(got, "edgeline.io/site=hall") {
		t.Errorf("the Pi was not labelled and tainted through the server:\n%s", got)
	}
	if got := sshRun(t, keys, hosts, pi, "cat /var/lib/k3s-standin/install.last"); !strings.Contains(got, "args: agent") {
		t.Errorf("the Pi did not get a k3s agent: %q", got)
	}
	if got := api.Records("edgeline.test", "login", "A"); len(got) != 1 || got[0] != vps.IP {
		t.Errorf("login A record = %v", got)
	}
	dyn, err := dynamic.NewForConfig(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	issuers := schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "clusterissuers"}
	for _, name := range []string{"letsencrypt-staging", "letsencrypt-prod"} {
		ci, err := dyn.Resource(issuers).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("ClusterIssuer %s: %v", name, err)
			continue
		}
		if email, _, _ := unstructuredString(ci.Object, "spec", "acme", "email"); email != "ops@edgeline.test" {
			t.Errorf("ClusterIssuer %s email = %q", name, email)
		}
	}
	ing, err := kube.Client.NetworkingV1().Ingresses("cattle-system").Get(ctx, "rancher", metav1.GetOptions{})
	if err != nil || ing.Spec.Rules[0].Host != "rancher.edgeline.test" || ing.Annotations["cert-manager.io/cluster-issuer"] != "letsencrypt-staging" {
		t.Errorf("Rancher ingress: %v %v", ing, err)
	}
	boot, err := kube.Client.CoreV1().Secrets("cattle-system").Get(ctx, "bootstrap-secret", metav1.GetOptions{})
	if err != nil || len(boot.Data["bootstrapPassword"]) != 24 {
		t.Errorf("Rancher bootstrap password: %v", err)
	}
	if ing, err := kube.Client.NetworkingV1().Ingresses("facelogin").List(ctx, metav1.ListOptions{}); err != nil || len(ing.Items) == 0 || ing.Items[0].Spec.Rules[0].Host != "login.edgeline.test" {
		t.Errorf("facelogin ingress: %v", err)
	}
	var running []string
	if node != nil {
		// up returned after Helm's wait: the app's pods already run on the real node.
		running = appPods(t, kube)
		if len(running) != 3 {
			t.Errorf("after up: %d app pods Ready on the real node, want 2 api + 1 web: %v", len(running), running)
		}
	}

	// A second up changes nothing, and says so.
	calls := len(api.Calls())
	code, out = edgeline("up", "--expect-no-changes")
	if code != exitOK || !strings.Contains(out, "up: ") || strings.Contains(out, "created") {
		t.Errorf("second up: exit %d", code)
	}
	if n := strings.Count(sshRun(t, keys, hosts, vps, "cat /var/lib/k3s-standin/install.count"), "x"); n != 1 {
		t.Errorf("the second up reinstalled k3s (%d installs)", n)
	}
	if got := api.Calls()[calls:]; len(got) != 0 {
		t.Errorf("the second up changed the cloud: %v", got)
	}
	if node != nil {
		if again := appPods(t, kube); !slices.Equal(again, running) {
			t.Errorf("the second up replaced the app's pods: %v, before %v", again, running)
		}
	}
	if code, _ := edgeline("preview", "--detailed-exitcode"); code != exitOK {
		t.Errorf("preview after up: exit %d, want %d (no changes)", code, exitOK)
	}

	code, out = edgeline("outputs", "--json")
	var outputs map[string]any
	if code != exitOK || json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &outputs) != nil {
		t.Fatalf("outputs: exit %d", code)
	}
	if outputs["ipv4"] != vps.IP || outputs["kubeconfig"] != "[secret]" || outputs["rancherBootstrapPassword"] != "[secret]" {
		t.Errorf("outputs = %v", outputs)
	}
	state, err := os.ReadFile(filepath.Join(tmp, "state", ".pulumi", "stacks", "edgeline", "e2e.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{hetznerfake.Token, "BEGIN OPENSSH PRIVATE KEY", "K10standinca"} {
		if i := bytes.Index(state, []byte(s)); i >= 0 {
			t.Errorf("the state file holds %q in clear text: ...%s...", s, state[max(0, i-200):i])
		}
	}

	// destroy removes everything.
	code, _ = edgeline("destroy")
	if code != exitOK {
		t.Fatalf("destroy: exit %d", code)
	}
	if keys, fws, srvs, rrs := api.Counts(); keys+fws+srvs+rrs != 0 {
		t.Errorf("after destroy: %d keys, %d firewalls, %d servers, %d rrsets left", keys, fws, srvs, rrs)
	}
	if got := sshRun(t, keys, hosts, vps, "cat /var/lib/k3s-standin/uninstall.log"); !strings.Contains(got, "k3s-uninstall.sh") {
		t.Errorf("k3s was not uninstalled on the VPS: %q", got)
	}
	if got := sshRun(t, keys, hosts, pi, "cat /var/lib/k3s-standin/uninstall.log"); !strings.Contains(got, "k3s-agent-uninstall.sh") {
		t.Errorf("k3s was not uninstalled on the Pi: %q", got)
	}
	for _, ns := range []string{"cert-manager", "cattle-system", "facelogin"} {
		rel, err := kube.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
		if err != nil || len(rel.Items) != 0 {
			t.Errorf("helm releases left in %s: %v", ns, err)
		}
	}
	if _, err := dyn.Resource(issuers).Get(ctx, "letsencrypt-prod", metav1.GetOptions{}); err == nil {
		t.Error("the ClusterIssuers survived destroy")
	}
	if node != nil {
		if _, err := kubetest.WaitPods(ctx, kube.Client, "facelogin", "", 0, 2*time.Minute, func(*corev1.Pod) bool { return true }); err != nil {
			t.Errorf("app pods after destroy: %v", err)
		}
		err := poll(2*time.Minute, func() bool { ids, err := node.Running("facelogin"); return err == nil && len(ids) == 0 })
		if err != nil {
			ids, _ := node.Running("facelogin")
			t.Errorf("containerd still runs %v for facelogin after destroy", ids)
		}
	}
}

// realNodeApp builds the app's images as `edgeline images build` does and pushes them to
// the node's registry, makes a database on the node's PostgreSQL and returns the stack
// config that installs the release there with Helm's wait on: all pods on the real amd64
// node, two api replicas (no metrics server runs for the autoscaler).
func realNodeApp(t *testing.T, n *nodetest.Node) map[string]any {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	models := os.Getenv("EDGELINE_MODELS")
	if models == "" {
		t.Skip("set EDGELINE_MODELS to the dlib models folder (make test does)")
	}
	ctx := t.Context()
	api, web, err := n.FaceloginImages(ctx, repo, models)
	if err != nil {
		t.Fatal(err)
	}
	dbURL, err := n.Postgres(ctx, "edgeline_e2e")
	if err != nil {
		t.Fatal(err)
	}
	image := func(ref string) map[string]any {
		repo, digest, _ := strings.Cut(ref, "@")
		return map[string]any{"repository": repo, "digest": digest}
	}
	return map[string]any{
		"edgeline:helmWait":    true,
		"edgeline:placement":   "cloud-only",
		"edgeline:databaseUrl": dbURL,
		"edgeline:appValues": map[string]any{
			"api":      map[string]any{"image": image(api), "autoscaling": map[string]any{"enabled": false}, "replicas": 2},
			"web":      map[string]any{"image": image(web), "replicas": 1},
			"database": map[string]any{"cidr": nodetest.IP + "/32", "port": 5433},
		},
	}
}

// appPods returns the names of the Ready facelogin pods on the real node, sorted.
func appPods(t *testing.T, kube *kubetest.Cluster) []string {
	t.Helper()
	pods, err := kube.Client.CoreV1().Pods("facelogin").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Spec.NodeName == nodetest.Name && kubetest.PodReady(&p) {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names
}

func poll(timeout time.Duration, f func() bool) error {
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func sshRun(t *testing.T, keys *sshtest.Keys, knownHosts string, h *sshtest.Host, cmd string) string {
	t.Helper()
	ex, err := remote.Dial(context.Background(), remote.Config{Host: h.IP, Port: h.Port, User: "root", KeyFiles: []string{keys.ED25519}, KnownHostsFile: knownHosts})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	res, err := ex.Run(context.Background(), remote.Command{Cmd: cmd + " 2>/dev/null || true"})
	if err != nil {
		t.Fatal(err)
	}
	return string(res.Stdout)
}

func unstructuredString(obj map[string]any, path ...string) (string, bool, error) {
	cur := any(obj)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}
