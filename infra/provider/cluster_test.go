package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/edgeline/edgeline/internal/kubetest"
	"github.com/edgeline/edgeline/internal/remote"
	"github.com/edgeline/edgeline/internal/remote/sshtest"
)

// The k3s resources run over real SSH against sshd test hosts (internal/remote/sshtest).
// No k3s binary can be obtained here: the air-gapped install uploads the stand-in k3s
// binary and install script of internal/k3s/testdata/standin, which record how they were
// called instead of starting a cluster. Everything above them is the real code path.
var standin = map[string]any{
	"version": "v1.33.4+k3s1",
	"airGap": map[string]any{
		"binary": "../../internal/k3s/testdata/standin/k3s",
		"script": "../../internal/k3s/testdata/standin/install.sh",
	},
}

func hostRun(t *testing.T, keys *sshtest.Keys, kh string, h *sshtest.Host, cmd string) string {
	t.Helper()
	ex, err := remote.Dial(context.Background(), remote.Config{Host: h.IP, Port: h.Port, User: "root", KeyFiles: []string{keys.ED25519}, KnownHostsFile: kh})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	res, err := ex.Run(context.Background(), remote.Command{Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	return string(res.Stdout)
}

func TestK3sServerAndAgent(t *testing.T) {
	sshtest.SSHD(t)
	keys := sshtest.NewKeys(t)
	vps := sshtest.Start(t, keys, sshtest.Options{})
	pi := sshtest.Start(t, keys, sshtest.Options{})
	kh := sshtest.WriteKnownHosts(t, pi)
	// The VPS is reached by its pinned fingerprint (as a CloudHost reports it), the Pi
	// through known_hosts.
	vpsConn := map[string]any{"host": vps.IP, "port": vps.Port, "keyFile": keys.ED25519, "hostKeyFingerprint": vps.Fingerprint}
	piConn := map[string]any{"host": pi.IP, "port": pi.Port, "keyFile": keys.ED25519, "knownHostsFile": kh}

	server := map[string]any{
		"connection": vpsConn, "name": "vps-1", "tlsSans": []any{"k3s.example.org"},
		"externalIP": vps.IP, "flannelBackend": "wireguard-native", "install": standin,
	}
	sd := newDriver(t, TypeK3sServer)
	sout := sd.create(props(server))
	token, kc := sout.Get("token"), sout.Get("kubeconfig")
	if !token.Secret() || !kc.Secret() || token.AsString() == "" {
		t.Fatalf("token secret=%v kubeconfig secret=%v", token.Secret(), kc.Secret())
	}
	if !strings.Contains(kc.AsString(), "server: https://k3s.example.org:6443") || str(sout, "serverUrl") != "https://k3s.example.org:6443" {
		t.Errorf("kubeconfig/server URL do not point at the API host name: %s", str(sout, "serverUrl"))
	}
	khAll := sshtest.WriteKnownHosts(t, vps, pi)
	installs := func(h *sshtest.Host) int {
		return strings.Count(hostRun(t, keys, khAll, h, "cat /var/lib/k3s-standin/install.count 2>/dev/null || true"), "x")
	}
	if installs(vps) != 1 {
		t.Fatalf("server installs = %d", installs(vps))
	}
	wantDiff(t, "unchanged server", sd.diff(props(server)))
	// The engine calls Update only with changes; a converging run with the same inputs
	// (e.g. after `pulumi refresh`) must still not reinstall.
	sd.update(props(server))
	if n := installs(vps); n != 1 {
		t.Errorf("an update with the same inputs reinstalled k3s (%d installs)", n)
	}

	agent := map[string]any{
		"connection": piConn, "server": vpsConn, "serverUrl": str(sout, "serverUrl"), "token": token.AsString(),
		"name": "pi-hall-1", "site": "hall", "install": standin,
		"labels": map[string]any{"node-role.kubernetes.io/edge": "true", "edgeline.io/site": "hall", "edgeline.io/camera": "usb"},
	}
	ad := newDriver(t, TypeK3sAgent)
	aout := ad.create(props(agent, "token"))
	if str(aout, "node") != "pi-hall-1" || !aout.Get("token").Secret() {
		t.Errorf("agent outputs: node %q, token secret %v", str(aout, "node"), aout.Get("token").Secret())
	}
	kubectl := hostRun(t, keys, khAll, vps, "cat /var/lib/k3s-standin/k3s.log")
	for _, want := range []string{"kubectl label node pi-hall-1 --overwrite edgeline.io/camera=usb", "kubectl taint node pi-hall-1 --overwrite edgeline.io/edge=true:NoSchedule"} {
		if !strings.Contains(kubectl, want) {
			t.Errorf("the server's kubectl was not called with %q:\n%s", want, kubectl)
		}
	}
	wantDiff(t, "unchanged agent", ad.diff(props(agent, "token")))

	agent["taints"] = []any{"edgeline.io/edge=true:PreferNoSchedule"}
	wantDiff(t, "agent taints", ad.diff(props(agent, "token")), "taints")
	ad.update(props(agent, "token"))
	if kubectl := hostRun(t, keys, khAll, vps, "cat /var/lib/k3s-standin/k3s.log"); !strings.Contains(kubectl, "edgeline.io/edge=true:PreferNoSchedule") {
		t.Errorf("the taint change did not reach the node:\n%s", kubectl)
	}
	agent["name"] = "pi-hall-2"
	wantDiff(t, "agent rename", ad.diff(props(agent, "token")), "name!")

	if id, _ := ad.read(); id != "pi-hall-1" {
		t.Errorf("refresh of the joined agent: id %q", id)
	}
	ad.delete()
	if id, _ := ad.read(); id != "" {
		t.Errorf("refresh of the removed agent: id %q, want gone", id)
	}
	if got := hostRun(t, keys, khAll, pi, "cat /var/lib/k3s-standin/uninstall.log"); !strings.Contains(got, "k3s-agent-uninstall.sh") {
		t.Errorf("agent delete did not uninstall k3s: %q", got)
	}
	if kubectl := hostRun(t, keys, khAll, vps, "cat /var/lib/k3s-standin/k3s.log"); !strings.Contains(kubectl, "kubectl delete node pi-hall-1") {
		t.Errorf("agent delete did not delete the node:\n%s", kubectl)
	}

	server["labels"] = map[string]any{"edgeline.io/role": "cloud"}
	wantDiff(t, "server labels", sd.diff(props(server)), "labels")
	sd.delete()
	if got := hostRun(t, keys, khAll, vps, "cat /var/lib/k3s-standin/uninstall.log; ls /etc/rancher/k3s 2>&1 || true"); !strings.Contains(got, "k3s-uninstall.sh") || !strings.Contains(got, "No such file") {
		t.Errorf("server delete did not uninstall k3s: %q", got)
	}
}

func TestK3sRefusesUnverifiedHost(t *testing.T) {
	d := newDriver(t, TypeK3sServer)
	in := d.check(props(map[string]any{"connection": map[string]any{"host": "127.0.0.1", "keyFile": "/nonexistent"}, "install": standin}))
	_, err := d.s.Create(pCreate(d, in))
	if err == nil || !strings.Contains(err.Error(), "host keys are always verified") {
		t.Errorf("create without host key verification: %v", err)
	}
}

// TestHelmRelease installs testdata/charts/demo into the real API server of
// internal/kubetest.
func TestHelmRelease(t *testing.T) {
	c := kubetest.Get(t)
	chart, err := filepath.Abs("testdata/charts/demo")
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]any{
		"kubeconfig": string(c.KubeconfigData), "name": "demo", "namespace": "edgeline-provider-test",
		"chart": chart, "values": `{"greeting":"hello","password":"s3cret"}`,
	}
	d := newDriver(t, TypeHelmRelease)
	out := d.create(props(args, "kubeconfig", "values"))
	if out.Get("revision").AsNumber() != 1 || str(out, "status") != "deployed" || str(out, "chartVersion") != "0.1.0" {
		t.Errorf("create: revision %v status %s chart %s", out.Get("revision").AsNumber(), str(out, "status"), str(out, "chartVersion"))
	}
	if !out.Get("values").Secret() || !out.Get("kubeconfig").Secret() {
		t.Error("values or kubeconfig not secret in the state")
	}
	ctx := context.Background()
	cm, err := c.Client.CoreV1().ConfigMaps("edgeline-provider-test").Get(ctx, "demo", metav1.GetOptions{})
	if err != nil || cm.Data["greeting"] != "hello" {
		t.Fatalf("ConfigMap in the cluster: %v, %v", cm, err)
	}

	wantDiff(t, "unchanged", d.diff(props(args, "kubeconfig", "values")))
	args["values"] = `{"password": "s3cret", "greeting": "hello"}`
	wantDiff(t, "reordered values", d.diff(props(args, "kubeconfig", "values")))
	out = d.update(props(args, "kubeconfig", "values"))
	if out.Get("revision").AsNumber() != 1 {
		t.Errorf("an update with equal values recorded revision %v", out.Get("revision").AsNumber())
	}

	args["values"] = `{"greeting":"moin","password":"s3cret"}`
	wantDiff(t, "changed values", d.diff(props(args, "kubeconfig", "values")), "values")
	out = d.update(props(args, "kubeconfig", "values"))
	if out.Get("revision").AsNumber() != 2 {
		t.Errorf("upgrade revision = %v, want 2", out.Get("revision").AsNumber())
	}
	if cm, _ := c.Client.CoreV1().ConfigMaps("edgeline-provider-test").Get(ctx, "demo", metav1.GetOptions{}); cm == nil || cm.Data["greeting"] != "moin" {
		t.Errorf("the upgrade did not reach the cluster: %v", cm)
	}
	args["namespace"] = "elsewhere"
	wantDiff(t, "namespace", d.diff(props(args, "kubeconfig", "values")), "namespace!")

	if id, st := d.read(); id == "" || st.Get("revision").AsNumber() != 2 {
		t.Errorf("refresh: id %q, revision %v", id, st.Get("revision").AsNumber())
	}

	d.delete()
	if _, err := c.Client.CoreV1().ConfigMaps("edgeline-provider-test").Get(ctx, "demo", metav1.GetOptions{}); err == nil {
		t.Error("delete left the ConfigMap behind")
	}
	if id, _ := d.read(); id != "" {
		t.Errorf("refresh of an uninstalled release: id %q, want gone", id)
	}
}

// TestHelmReleaseFromRepository installs a chart pulled at up from a chart repository
// served on loopback (it stands in for a public one, which no machine here reaches), as
// the platform's releases are (trap 5 of issue 16): no helm CLI and no helm pull by hand.
// The first pull records the archive's digest in the lock file; a preview pulls nothing;
// a second release installs from the cache while the repository is down; an archive
// republished under the same version is refused.
func TestHelmReleaseFromRepository(t *testing.T) {
	c := kubetest.Get(t)
	ch, err := loader.Load("testdata/charts/demo")
	if err != nil {
		t.Fatal(err)
	}
	publish := func(description string) []byte {
		ch.Metadata.Description = description
		file, err := chartutil.Save(ch, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var mu sync.Mutex
	archive := publish("as published")
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /charts/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		idx := repo.NewIndexFile()
		idx.MustAdd(ch.Metadata, "demo-0.1.0.tgz", "", sum(archive))
		b, _ := yaml.Marshal(idx)
		w.Write(b)
	})
	mux.HandleFunc("GET /charts/demo-0.1.0.tgz", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Write(archive)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	dir := t.TempDir()
	args := map[string]any{
		"kubeconfig": string(c.KubeconfigData), "name": "demo-remote", "namespace": "edgeline-provider-pull",
		"chart": "demo", "repository": srv.URL + "/charts", "pinnedVersion": "0.1.0",
		"lockFile": filepath.Join(dir, "charts.lock"), "cacheDir": filepath.Join(dir, "cache"),
		"values": `{"greeting":"pulled"}`,
	}
	d := newDriver(t, TypeHelmRelease)
	out := d.create(props(args, "kubeconfig", "values"))
	want := "sha256:" + sum(archive)
	if str(out, "status") != "deployed" || str(out, "chartVersion") != "0.1.0" || str(out, "chartDigest") != want {
		t.Errorf("create: status %s chart %s digest %s, want deployed 0.1.0 %s", str(out, "status"), str(out, "chartVersion"), str(out, "chartDigest"), want)
	}
	if lock, _ := os.ReadFile(filepath.Join(dir, "charts.lock")); !strings.Contains(string(lock), want) {
		t.Errorf("lock file does not record the digest:\n%s", lock)
	}
	ctx := context.Background()
	if cm, err := c.Client.CoreV1().ConfigMaps("edgeline-provider-pull").Get(ctx, "demo-remote", metav1.GetOptions{}); err != nil || cm.Data["greeting"] != "pulled" {
		t.Fatalf("ConfigMap in the cluster: %v, %v", cm, err)
	}
	wantDiff(t, "unchanged", d.diff(props(args, "kubeconfig", "values")))
	args["pinnedVersion"] = "0.2.0"
	wantDiff(t, "new version", d.diff(props(args, "kubeconfig", "values")), "chartVersion", "pinnedVersion")
	args["pinnedVersion"] = "0.1.0"

	// The repository republishes 0.1.0 with other content: refused against the lock file.
	mu.Lock()
	archive = publish("republished")
	mu.Unlock()
	other := newDriver(t, TypeHelmRelease)
	tampered := maps.Clone(args)
	tampered["name"], tampered["cacheDir"] = "demo-tampered", filepath.Join(dir, "cache2")
	in := other.check(props(tampered, "kubeconfig", "values"))
	if _, err := other.s.Create(pCreate(other, in)); err == nil || !strings.Contains(err.Error(), "other content under the same version") {
		t.Errorf("republished chart: %v", err)
	}

	// Offline: the repository is down; a preview and an install from the cache still work.
	srv.Close()
	offline := maps.Clone(args)
	offline["name"] = "demo-offline"
	od := newDriver(t, TypeHelmRelease)
	if out := od.create(props(offline, "kubeconfig", "values")); str(out, "chartDigest") != want {
		t.Errorf("offline install: digest %s, want %s", str(out, "chartDigest"), want)
	}
	od.delete()
	d.delete()
}

// TestK3sAgentPrepare runs the Pi preparation (ansible's edge_node role) as part of an
// agent, with Debian's ansible-playbook against a real sshd test host: first in check
// mode on a fresh host (refused, nothing joined), then for real (the role runs, the agent
// joins), then in check mode again (the prepared host passes). The Pi is reached by its
// pinned fingerprint, which ansible cannot take: it gets the key remote verified. The
// test host is no Pi (fake boot partition, no reboot, modules or services), as in
// ansible's own test.
func TestK3sAgentPrepare(t *testing.T) {
	if os.Getenv("EDGELINE_TEST_ANSIBLE") == "" {
		t.Skip("set EDGELINE_TEST_ANSIBLE=ansible-playbook to run the edge_node role against sshd test hosts (make test does when ansible is installed)")
	}
	sshtest.SSHD(t)
	keys := sshtest.NewKeys(t)
	vps := sshtest.Start(t, keys, sshtest.Options{})
	pi := sshtest.Start(t, keys, sshtest.Options{})
	kh := sshtest.WriteKnownHosts(t, vps, pi)
	const cmdline = "console=tty1 root=PARTUUID=6c586e13-02 rootwait\n"
	hostRun(t, keys, kh, pi, "mkdir -p /opt/fakeboot/firmware && printf '"+strings.TrimSuffix(cmdline, "\n")+"\\n' > /opt/fakeboot/firmware/cmdline.txt")
	vpsConn := map[string]any{"host": vps.IP, "port": vps.Port, "keyFile": keys.ED25519, "hostKeyFingerprint": vps.Fingerprint}
	piConn := map[string]any{"host": pi.IP, "port": pi.Port, "keyFile": keys.ED25519, "hostKeyFingerprint": pi.Fingerprint}

	sout := newDriver(t, TypeK3sServer).create(props(map[string]any{"connection": vpsConn, "install": standin}))
	vars := map[string]any{"edge_boot_root": "/opt/fakeboot", "edge_reboot": false, "edge_load_modules": false,
		"edge_manage_services": false, "edge_packages": []any{}}
	agent := map[string]any{
		"connection": piConn, "server": vpsConn, "serverUrl": str(sout, "serverUrl"), "token": sout.Get("token").AsString(),
		"name": "pi-gate", "site": "gate", "install": standin,
		"prepare": map[string]any{"vars": vars, "check": true},
	}
	installs := func() int {
		return strings.Count(hostRun(t, keys, kh, pi, "cat /var/lib/k3s-standin/install.count 2>/dev/null || true"), "x")
	}

	ad := newDriver(t, TypeK3sAgent)
	_, err := ad.s.Create(pCreate(ad, ad.check(props(agent, "token"))))
	if err == nil || !strings.Contains(err.Error(), "agent pi-gate is not prepared") || !strings.Contains(err.Error(), "Enable memory cgroups in the kernel command line") {
		t.Fatalf("check mode on an unprepared Pi: %v", err)
	}
	if got := hostRun(t, keys, kh, pi, "cat /opt/fakeboot/firmware/cmdline.txt"); got != cmdline || installs() != 0 {
		t.Fatalf("check mode changed the Pi or joined it: cmdline %q, %d installs", got, installs())
	}

	agent["prepare"] = map[string]any{"vars": vars}
	ad.create(props(agent, "token"))
	if got := hostRun(t, keys, kh, pi, "cat /opt/fakeboot/firmware/cmdline.txt; hostname"); !strings.Contains(got, "cgroup_memory=1 cgroup_enable=memory") || !strings.Contains(got, "pi-gate") {
		t.Errorf("the role did not prepare the Pi:\n%s", got)
	}
	if installs() != 1 {
		t.Errorf("the prepared agent did not join: %d installs", installs())
	}

	agent["prepare"] = map[string]any{"vars": vars, "check": true}
	wantDiff(t, "prepare", ad.diff(props(agent, "token")), "prepare")
	ad.update(props(agent, "token"))
	ad.delete()
}

// TestConnectionAgentSocket is trap 2 of issue 16 through the provider: a key with a
// passphrase is used through the ssh-agent the stack config names (sshAgentSocket →
// Connection.agentSocket → remote), with no $SSH_AUTH_SOCK, against a real ssh-agent
// and a real sshd test host.
func TestConnectionAgentSocket(t *testing.T) {
	sshtest.SSHD(t)
	keys := sshtest.NewKeys(t)
	h := sshtest.Start(t, keys, sshtest.Options{})
	kh := sshtest.WriteKnownHosts(t, h)
	sock := sshtest.Agent(t, keys.ED25519)
	t.Setenv("SSH_AUTH_SOCK", "")

	locked := filepath.Join(t.TempDir(), "id_ed25519")
	b, err := os.ReadFile(keys.ED25519)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(locked, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-p", "-P", "", "-N", "correct horse", "-f", locked).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -p: %v: %s", err, out)
	}
	conn := Connection{Host: h.IP, Port: h.Port, User: "root", KeyFile: locked, KnownHostsFile: kh}
	ctx := context.Background()

	if _, err := conn.dial(ctx); err == nil || !strings.Contains(err.Error(), "has a passphrase and no ssh-agent is known") {
		t.Errorf("without an agent: %v", err)
	}
	conn.AgentSocket = sock
	ex, err := conn.dial(ctx)
	if err != nil {
		t.Fatalf("through the agent at %s: %v", sock, err)
	}
	defer ex.Close()
	if _, err := ex.Run(ctx, remote.Command{Cmd: "true"}); err != nil {
		t.Fatal(err)
	}
	if log := h.Log(); !strings.Contains(log, "Accepted publickey for root") {
		t.Errorf("sshd did not accept the key from the agent:\n%s", log)
	}
}
