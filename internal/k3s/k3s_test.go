package k3s

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/edgeline/edgeline/internal/remote"
	"github.com/edgeline/edgeline/internal/remote/sshtest"
)

// These tests install k3s on real sshd test hosts (package sshtest) over real SSH. No k3s
// binary can be obtained here, so the install script and the k3s binary are the stand-ins
// in testdata/standin: they record how they were called (the install invocation, every
// kubectl call on the server) instead of running a cluster. Everything above them —
// rendering, uploads, sudo, state, idempotence — is the real code path.

var airGap = &AirGap{Binary: "testdata/standin/k3s", Script: "testdata/standin/install.sh"}

type testHosts struct{ keys *sshtest.Keys }

func newTestHosts(t testing.TB) *testHosts { return &testHosts{keys: sshtest.NewKeys(t)} }

// start starts n hosts and returns an executor for each.
func (th *testHosts) start(t testing.TB, opts ...sshtest.Options) []remote.Executor {
	t.Helper()
	var hosts []*sshtest.Host
	for _, o := range opts {
		hosts = append(hosts, sshtest.Start(t, th.keys, o))
	}
	kh := sshtest.WriteKnownHosts(t, hosts...)
	var out []remote.Executor
	for _, h := range hosts {
		ex, err := remote.Dial(context.Background(), remote.Config{
			Host: h.IP, Port: h.Port, User: "root", KeyFiles: []string{th.keys.ED25519},
			KnownHostsFile: kh,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ex.Close() })
		out = append(out, ex)
	}
	return out
}

func run(t testing.TB, ex remote.Executor, cmd string) string {
	t.Helper()
	res, err := ex.Run(context.Background(), remote.Command{Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	return string(res.Stdout)
}

func installCount(t testing.TB, ex remote.Executor) int {
	return strings.Count(run(t, ex, "cat /var/lib/k3s-standin/install.count 2>/dev/null || true"), "x")
}

// kubectlLog returns the kubectl calls that change something, as the server's stand-in
// recorded them.
func kubectlLog(t testing.TB, ex remote.Executor) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, ex, "cat /var/lib/k3s-standin/k3s.log 2>/dev/null || true")), "\n") {
		if strings.HasPrefix(l, "kubectl ") && !strings.HasPrefix(l, "kubectl get node") {
			out = append(out, l)
		}
	}
	return out
}

func TestServerAndAgentLifecycle(t *testing.T) {
	t.Parallel()
	sshtest.SSHD(t)
	th := newTestHosts(t)
	ex := th.start(t, sshtest.Options{}, sshtest.Options{})
	srv, pi := ex[0], ex[1]
	ctx := context.Background()

	// Server.
	scfg := ServerConfig{
		NodeName: "vps-1", Token: "test-cluster-secret",
		TLSSANs:        []string{"k3s.example.com", "203.0.113.7"},
		NodeExternalIP: "203.0.113.7", FlannelBackend: FlannelWireguardNative, FlannelExternalIP: true,
		Disable: []string{"traefik"},
		Labels:  map[string]string{"node-role.kubernetes.io/vps": "true", "topology.kubernetes.io/region": "fsn1"},
		Install: Install{Version: "v1.33.4+k3s1", AirGap: airGap},
	}
	var log bytes.Buffer
	sres, err := InstallServer{Exec: srv, Config: scfg, Log: &log}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sres.Changed || sres.NodeName != "vps-1" || sres.Token != "K10standinca::server:test-cluster-secret" {
		t.Errorf("server result = %+v", sres)
	}
	if !bytes.Contains(sres.Kubeconfig, []byte("server: https://k3s.example.com:6443")) {
		t.Errorf("kubeconfig does not point at the first TLS SAN:\n%s", sres.Kubeconfig)
	}
	golden(t, "host/server-config.yaml", []byte(run(t, srv, "cat "+ConfigPath)))
	golden(t, "host/server-install.txt", []byte(run(t, srv, "cat /var/lib/k3s-standin/install.last")))
	binary, _ := os.ReadFile(airGap.Binary)
	want := "600 root\n600 root\n755 root\n" + sha256Hex(binary) + "\n"
	if got := run(t, srv, "stat -c '%a %U' "+ConfigPath+" "+StatePath+" "+BinaryPath+"; sha256sum "+BinaryPath+" | cut -c1-64"); got != want {
		t.Errorf("config, state and uploaded binary on the host: %q, want %q", got, want)
	}
	log.Reset()
	sres2, err := InstallServer{Exec: srv, Config: scfg, Log: &log}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sres2.Changed || installCount(t, srv) != 1 || !strings.Contains(log.String(), "up to date, nothing changed") {
		t.Errorf("second server run: changed=%v installs=%d log=%q", sres2.Changed, installCount(t, srv), log.String())
	}
	if sres2.Token != sres.Token {
		t.Errorf("token changed between runs")
	}

	// Agent.
	join := JoinAgent{
		Exec: pi, Server: srv, ServerURL: "https://203.0.113.7:6443", Token: sres.Token,
		Config: AgentConfig{NodeName: "pi-berlin-1", Site: "berlin", NodeExternalIP: "198.51.100.20",
			Install: Install{Version: "v1.33.4+k3s1", AirGap: airGap}},
	}
	mustJoin := func(j JoinAgent, wantChanged bool) {
		t.Helper()
		var log bytes.Buffer
		j.Log = &log
		res, err := j.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed != wantChanged || res.NodeName != "pi-berlin-1" {
			t.Fatalf("join: %+v, want changed=%v (log %q)", res, wantChanged, log.String())
		}
		if !wantChanged && !strings.Contains(log.String(), "up to date, nothing changed") {
			t.Errorf("a no-op join does not say so: %q", log.String())
		}
	}
	mustJoin(join, true)
	golden(t, "host/agent-config.yaml", []byte(run(t, pi, "cat "+ConfigPath)))
	golden(t, "host/agent-install.txt", []byte(run(t, pi, "cat /var/lib/k3s-standin/install.last")))
	if strings.Contains(run(t, pi, "cat /var/lib/k3s-standin/install.last"), sres.Token) {
		t.Error("the join token reached the install script's environment or arguments")
	}

	mustJoin(join, false)
	if n := installCount(t, pi); n != 1 {
		t.Errorf("second join ran the install script again (%d runs)", n)
	}

	// A label change converges: config re-rendered, labels set through the server.
	join.Config.Site = "hamburg"
	mustJoin(join, true)
	if !strings.Contains(run(t, pi, "cat "+ConfigPath), "edgeline.io/site=hamburg") {
		t.Error("config.yaml does not carry the new site")
	}
	// Dropping a label and the taint removes them from the node.
	join.Config.Labels = map[string]string{SiteLabel: "hamburg", "edgeline.io/camera": "usb"}
	join.Config.Taints = []string{}
	mustJoin(join, true)
	mustJoin(join, false)

	// An interrupted run (the install script fails) reports once, records nothing, and the
	// next run converges.
	run(t, pi, "touch /var/lib/k3s-standin/fail-next")
	join.Config.Install.Version = "v1.33.5+k3s1"
	_, err = join.Run(ctx)
	if err == nil {
		t.Fatal("the failing install succeeded")
	}
	for _, want := range []string{pi.Host(), "install k3s agent", "stand-in failure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Count(err.Error(), pi.Host()) != 1 {
		t.Errorf("error names the host more than once: %q", err)
	}
	mustJoin(join, true)
	if !strings.Contains(run(t, pi, "cat /var/lib/k3s-standin/install.last"), "INSTALL_K3S_VERSION=v1.33.5+k3s1") {
		t.Error("the version change did not reach the install script")
	}
	mustJoin(join, false)
	golden(t, "host/kubectl.txt", []byte(strings.Join(kubectlLog(t, srv), "\n")+"\n"))

	// Removal: drain, uninstall on the agent, delete the node.
	log.Reset()
	if err := (RemoveAgent{Server: srv, Agent: pi, NodeName: "pi-berlin-1", Log: &log}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	kl := kubectlLog(t, srv)
	if got := strings.Join(kl[len(kl)-2:], "\n"); got != "kubectl drain pi-berlin-1 --ignore-daemonsets --delete-emptydir-data --force --timeout=5m0s\nkubectl delete node pi-berlin-1 --ignore-not-found" {
		t.Errorf("removal kubectl calls:\n%s", got)
	}
	if got := run(t, pi, "cat /var/lib/k3s-standin/uninstall.log; ls /etc/rancher/k3s "+BinaryPath+" 2>&1 || true"); !strings.Contains(got, AgentUninstall) || !strings.Contains(got, "No such file") {
		t.Errorf("agent after removal: %q", got)
	}
	// Removing again is a no-op that says the node is gone.
	log.Reset()
	if err := (RemoveAgent{Server: srv, Agent: pi, NodeName: "pi-berlin-1", Log: &log}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "was not in the cluster") {
		t.Errorf("second removal: %q", log.String())
	}
}

// TestOnlineInstall downloads the install script on the host from an HTTP server on
// loopback, which stands in for the k3s download site.
func TestOnlineInstall(t *testing.T) {
	t.Parallel()
	sshtest.SSHD(t)
	th := newTestHosts(t)
	ex := th.start(t, sshtest.Options{}, sshtest.Options{})
	srv, pi := ex[0], ex[1]

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	script, _ := os.ReadFile("testdata/standin/install.sh")
	binary, _ := os.ReadFile("testdata/standin/k3s")
	script = bytes.ReplaceAll(script, []byte("@BASE_URL@"), []byte(base))
	// A tampered copy of the script: what a compromised download site would serve.
	tampered := bytes.Replace(script, []byte("set -e\n"), []byte("set -e\ntouch /var/lib/tampered-script-ran\n"), 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/install.sh", func(w http.ResponseWriter, r *http.Request) { w.Write(script) })
	mux.HandleFunc("/tampered/install.sh", func(w http.ResponseWriter, r *http.Request) { w.Write(tampered) })
	mux.HandleFunc("/k3s", func(w http.ResponseWriter, r *http.Request) { w.Write(binary) })
	hs := &http.Server{Handler: mux}
	go hs.Serve(l)
	defer hs.Close()

	// Trap 10 of issue 16: a script that is not the pinned one never runs.
	bad := Install{Channel: "v1.33", ScriptURL: base + "/tampered/install.sh", ScriptSHA256: sha256Hex(script)}
	_, err = InstallServer{Exec: srv, Config: ServerConfig{NodeName: "vps-1", Install: bad}}.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not the pinned "+sha256Hex(script)+": refusing to run it") {
		t.Errorf("tampered install script: err = %v", err)
	}
	if got := run(t, srv, "ls /var/lib/tampered-script-ran "+ScriptPath+" "+ScriptPath+".part 2>&1 || true"); strings.Count(got, "No such file") != 3 {
		t.Errorf("the tampered script ran or was left on the host: %q", got)
	}

	in := Install{Channel: "v1.33", ScriptURL: base + "/install.sh", ScriptSHA256: sha256Hex(script)}
	sres, err := InstallServer{Exec: srv, Config: ServerConfig{NodeName: "vps-1", Install: in}}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sres.Token != "K10standinca::server:generated-by-standin" || !bytes.Contains(sres.Kubeconfig, []byte("server: https://"+strings.Split(strings.Split(srv.Host(), "@")[1], ":")[0]+":6443")) {
		t.Errorf("server result: token %q kubeconfig\n%s", sres.Token, sres.Kubeconfig)
	}
	j := JoinAgent{Exec: pi, Server: srv, ServerURL: "https://203.0.113.7:6443", Token: sres.Token,
		Config: AgentConfig{NodeName: "pi-1", Site: "berlin", Install: in}}
	// The node registers a moment after the install: labelling waits for it.
	run(t, srv, "mkdir -p /var/lib/k3s-standin/unregistered && touch /var/lib/k3s-standin/unregistered/pi-1")
	if _, err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(kubectlLog(t, srv), "\n"), "kubectl label node pi-1"); n != 2 {
		t.Errorf("label calls = %d, want 2 (one while the node was missing, one after)", n)
	}
	golden(t, "host/online-agent-install.txt", []byte(run(t, pi, "cat /var/lib/k3s-standin/install.last")))
	if got := run(t, pi, "sha256sum "+BinaryPath+" | cut -c1-64"); strings.TrimSpace(got) != sha256Hex(binary) {
		t.Errorf("k3s downloaded on the host: %q", got)
	}
	if res, _ := j.Run(context.Background()); res.Changed {
		t.Error("second online join changed something")
	}
}

// TestVPNAuthNeedsTailscale: with vpn-auth, k3s runs `tailscale up` itself, so a host
// without tailscale must stop the install with a message naming where tailscale comes
// from (trap 6 of issue 16), before k3s is installed half-working.
func TestVPNAuthNeedsTailscale(t *testing.T) {
	t.Parallel()
	sshtest.SSHD(t)
	th := newTestHosts(t)
	srv := th.start(t, sshtest.Options{})[0]
	ctx := context.Background()
	cfg := ServerConfig{NodeName: "vps-1", VPNAuth: "name=tailscale,joinKey=tskey-test", Install: Install{AirGap: airGap}}
	_, err := InstallServer{Exec: srv, Config: cfg}.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "vpn-auth needs tailscale on this host and it is not installed") {
		t.Fatalf("vpn-auth without tailscale: %v", err)
	}
	if n := installCount(t, srv); n != 0 {
		t.Errorf("the install script ran %d times without tailscale", n)
	}
	if err := srv.Upload(ctx, remote.File{Path: "/usr/local/bin/tailscale", Content: strings.NewReader("#!/bin/sh\necho 1.84.0\n"), Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	if _, err := (InstallServer{Exec: srv, Config: cfg}).Run(ctx); err != nil {
		t.Fatalf("vpn-auth with tailscale: %v", err)
	}
}

// TestRemoveLostAgent removes an agent whose Pi is gone for good: the node is drained
// and deleted on the server, and nothing runs on the lost host.
func TestRemoveLostAgent(t *testing.T) {
	t.Parallel()
	sshtest.SSHD(t)
	th := newTestHosts(t)
	ex := th.start(t, sshtest.Options{}, sshtest.Options{})
	srv, pi := ex[0], ex[1]
	ctx := context.Background()
	sres, err := InstallServer{Exec: srv, Config: ServerConfig{Install: Install{AirGap: airGap}}}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (JoinAgent{Exec: pi, Server: srv, ServerURL: "https://203.0.113.7:6443", Token: sres.Token,
		Config: AgentConfig{NodeName: "pi-c", Site: "berlin", Install: Install{AirGap: airGap}}}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := (RemoveAgent{Server: srv, NodeName: "pi-c"}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	kl := kubectlLog(t, srv)
	if got := strings.Join(kl[len(kl)-2:], "\n"); !strings.Contains(got, "kubectl drain pi-c") || !strings.Contains(got, "kubectl delete node pi-c") {
		t.Errorf("removal without the agent host:\n%s", got)
	}
	if got := run(t, pi, "ls /var/lib/k3s-standin/uninstall.log 2>&1 || true"); !strings.Contains(got, "No such file") {
		t.Errorf("the uninstall ran on a host that was not given: %q", got)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
