package k3s

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeline/edgeline/internal/remote"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

func TestRenderServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ServerConfig
	}{
		{"server-minimal", ServerConfig{}},
		{"server-wireguard", ServerConfig{
			Token: "s3cret", NodeName: "vps-1", TLSSANs: []string{"k3s.example.com", "203.0.113.7"},
			NodeExternalIP: "203.0.113.7", FlannelBackend: FlannelWireguardNative, FlannelExternalIP: true,
			Disable: []string{"traefik", "servicelb"},
			Labels:  map[string]string{"node-role.kubernetes.io/vps": "true", "topology.kubernetes.io/region": "fsn1"},
		}},
		{"server-tailscale", ServerConfig{
			NodeName: "vps-1", VPNAuth: "name=tailscale,joinKey=tskey-abc,controlServerURL=https://hs.example.com",
			Taints: []string{"CriticalAddonsOnly=true:NoExecute"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			golden(t, "render/"+tc.name+".yaml", renderServer(tc.cfg))
		})
	}
}

func TestRenderAgent(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  AgentConfig
	}{
		{"agent-defaults", AgentConfig{Site: "berlin"}},
		{"agent-nat", AgentConfig{Site: "berlin", NodeName: "pi-01", NodeIP: "192.168.1.21", NodeExternalIP: "198.51.100.20",
			Labels: map[string]string{SiteLabel: "berlin", EdgeRoleLabel: "true", "edgeline.io/camera": "usb"}}},
		{"agent-tailscale-untainted", AgentConfig{Site: "hamburg", Taints: []string{}, VPNAuth: "name=tailscale,joinKey=tskey-abc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			got := renderAgent("https://203.0.113.7:6443", "K10abc::server:s3cret", tc.cfg)
			if strings.Contains(string(got), EdgeRoleLabel) {
				t.Errorf("config.yaml carries %s, which the kubelet refuses to set", EdgeRoleLabel)
			}
			golden(t, "render/"+tc.name+".yaml", got)
		})
	}
}

func TestKubeletLabel(t *testing.T) {
	for key, want := range map[string]bool{
		"edgeline.io/site":              true,
		"plain":                         true,
		"node-role.kubernetes.io/edge":  false,
		"kubernetes.io/hostname":        true,
		"node.kubernetes.io/pool":       true,
		"topology.kubernetes.io/zone":   true,
		"example.k8s.io/x":              false,
		"kubelet.kubernetes.io/feature": true,
	} {
		if got := kubeletLabel(key); got != want {
			t.Errorf("kubeletLabel(%q) = %v, want %v", key, got, want)
		}
	}
}

// untouchable fails the test if an operation reaches the host: bad input must be refused
// before any remote change.
type untouchable struct{ t *testing.T }

func (u untouchable) Host() string { return "untouchable" }
func (u untouchable) Run(context.Context, remote.Command) (remote.Result, error) {
	u.t.Fatal("a remote command ran despite invalid input")
	return remote.Result{}, nil
}
func (u untouchable) Upload(context.Context, ...remote.File) error {
	u.t.Fatal("an upload ran despite invalid input")
	return nil
}
func (u untouchable) Close() error { return nil }

func TestInvalidInputTouchesNothing(t *testing.T) {
	ex := untouchable{t}
	good := AgentConfig{Site: "berlin"}
	join := func(mod func(*JoinAgent)) error {
		j := JoinAgent{Exec: ex, Server: ex, ServerURL: "https://203.0.113.7:6443", Token: "K10x::server:y", Config: good}
		mod(&j)
		_, err := j.Run(context.Background())
		return err
	}
	server := func(c ServerConfig) error {
		_, err := InstallServer{Exec: ex, Config: c}.Run(context.Background())
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"no site", join(func(j *JoinAgent) { j.Config.Site = "" }), "no Site"},
		{"bad label", join(func(j *JoinAgent) { j.Config.Labels = map[string]string{"bad key!": "x"} }), "label key"},
		{"bad taint effect", join(func(j *JoinAgent) { j.Config.Taints = []string{"a=b:Sometimes"} }), "effect"},
		{"taint twice", join(func(j *JoinAgent) { j.Config.Taints = []string{"a=b:NoSchedule", "a=c:NoSchedule"} }), "twice"},
		{"bad ip", join(func(j *JoinAgent) { j.Config.NodeExternalIP = "300.1.1.1" }), "not an IP"},
		{"no token", join(func(j *JoinAgent) { j.Token = "" }), "no join token"},
		{"http url", join(func(j *JoinAgent) { j.ServerURL = "http://x:6443" }), "not an https URL"},
		{"no server", join(func(j *JoinAgent) { j.Server = nil }), "no server executor"},
		{"bad version", join(func(j *JoinAgent) { j.Config.Install.Version = "1.33" }), "not a k3s release"},
		{"airgap without script", join(func(j *JoinAgent) { j.Config.Install.AirGap = &AirGap{Binary: "k3s"} }), "both the k3s binary and the install script"},
		{"airgap missing file", join(func(j *JoinAgent) {
			j.Config.Install.AirGap = &AirGap{Binary: "testdata/nope", Script: "testdata/standin/install.sh"}
		}), "no such file"},
		{"vpn-auth", join(func(j *JoinAgent) { j.Config.VPNAuth = "name=zerotier" }), "name=tailscale"},
		// Trap 10 of issue 16: an install script URL with nothing to check it against.
		{"script without sha256", join(func(j *JoinAgent) { j.Config.Install.ScriptURL = "https://get.example.org/install.sh" }), "has no sha256"},
		{"sha256 without script", join(func(j *JoinAgent) { j.Config.Install.ScriptSHA256 = strings.Repeat("ab", 32) }), "without ScriptURL"},
		{"bad sha256", join(func(j *JoinAgent) {
			j.Config.Install.ScriptURL, j.Config.Install.ScriptSHA256 = "https://get.example.org/install.sh", "abc"
		}), "64 lowercase hex"},
		{"flannel", server(ServerConfig{FlannelBackend: "ipsec"}), "flannel backend"},
		{"external ip needed", server(ServerConfig{FlannelExternalIP: true}), "node-external-ip"},
		{"tls-san", server(ServerConfig{TLSSANs: []string{"not a name"}}), "tls-san"},
		{"disable", server(ServerConfig{Disable: []string{"Traefik!"}}), "component"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", tc.err, tc.want)
			}
		})
	}
}

// TestValidateReportsEveryProblem: a configuration's problems come back together, one
// error each, so infra/stackconfig can list them all.
func TestValidateReportsEveryProblem(t *testing.T) {
	err := AgentConfig{NodeName: "Pi_1", Site: "berlin", Taints: []string{"x:Never"}, NodeExternalIP: "300.1.1.1",
		Install: Install{Version: "1.33"}}.Validate()
	got := Problems(err)
	want := []string{"node name", "taint", "node-external-ip", "k3s version"}
	if len(got) != len(want) {
		t.Fatalf("problems = %q, want %d", got, len(want))
	}
	for i, w := range want {
		if !strings.Contains(got[i].Error(), w) {
			t.Errorf("problem %d = %q, want one about %s", i, got[i], w)
		}
	}
	if Problems(AgentConfig{Site: "berlin"}.Validate()) != nil {
		t.Error("a valid configuration has problems")
	}
}
