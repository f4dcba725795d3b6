package stack

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"golang.org/x/crypto/ssh"
)

// These tests run the program against Pulumi's mock engine: no provider runs, the mocks
// answer each registration with plausible outputs and record what was registered.

// Type tokens of the provider's resources, as the engine sees them.
const (
	typePassword    = "edgeline:index:Password"
	typeCloudHost   = "edgeline:index:CloudHost"
	typeK3sServer   = "edgeline:index:K3sServer"
	typeK3sAgent    = "edgeline:index:K3sAgent"
	typeHelmRelease = "edgeline:index:HelmRelease"
)

type registered struct {
	typ, name string
	inputs    resource.PropertyMap
	parent    string
	provider  string
}

type mocks struct {
	mu  sync.Mutex
	all []registered
}

func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	m.all = append(m.all, registered{typ: args.TypeToken, name: args.Name, inputs: args.Inputs, parent: string(args.RegisterRPC.GetParent()), provider: args.RegisterRPC.GetProvider()})
	m.mu.Unlock()
	out := args.Inputs.Copy()
	switch args.TypeToken {
	case typeCloudHost:
		out["ipv4Address"] = resource.NewStringProperty("203.0.113.7")
		out["ipv6Address"] = resource.NewStringProperty("2001:db8::1")
		out["hostKeyFingerprint"] = resource.NewStringProperty("SHA256:test")
		out["dnsNames"] = resource.NewPropertyValue([]any{"login.example.org"})
	case typeK3sServer:
		out["token"] = resource.MakeSecret(resource.NewStringProperty("K10token"))
		out["kubeconfig"] = resource.MakeSecret(resource.NewStringProperty("apiVersion: v1"))
		out["serverUrl"] = resource.NewStringProperty("https://203.0.113.7:6443")
		out["node"] = resource.NewStringProperty("vps")
	case typeK3sAgent:
		out["node"] = args.Inputs["name"]
	case typeHelmRelease:
		out["status"] = resource.NewStringProperty("deployed")
		out["revision"] = resource.NewNumberProperty(1)
	case typePassword:
		out["result"] = resource.MakeSecret(resource.NewStringProperty("generated-password-123"))
	}
	return args.Name + "-id", out, nil
}

func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

func (m *mocks) find(t *testing.T, typ, name string) registered {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.all {
		if r.typ == typ && r.name == name {
			return r
		}
	}
	t.Fatalf("no %s %q registered", typ, name)
	return registered{}
}

func (m *mocks) count(typ string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.all {
		if r.typ == typ {
			n++
		}
	}
	return n
}

func testKeyFile(t *testing.T) string {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(f, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func baseConfig(t *testing.T) map[string]string {
	return map[string]string{
		"edgeline:domain":             "example.org",
		"edgeline:acmeEmail":          "ops@example.org",
		"edgeline:hcloudToken":        "hcloud-secret-token",
		"edgeline:deployerAddress":    "198.51.100.23",
		"edgeline:sshKeyFile":         testKeyFile(t),
		"edgeline:certManagerChart":   "vendor/cert-manager",
		"edgeline:rancherChart":       "vendor/rancher",
		"edgeline:appImageRepository": "registry.example.org/team",
		"edgeline:appImageTag":        "v0.3.0",
		"edgeline:databaseUrl":        "postgres://facelogin:db-secret@db.example.org/facelogin",
		"edgeline:network":            "vpn-auth",
		"edgeline:vpnAuth":            "name=tailscale,joinKey=tskey-secret",
		"edgeline:agents": `[
			{"name":"pi-hall-1","host":"10.0.0.21","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","site":"hall","jump":"ops@bastion:2222",
			 "prepare":{"vars":{"edge_ntp_servers":["ntp.example.org"]}}},
			{"name":"pi-gate","host":"10.0.0.22","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			 "labels":{"edgeline.io/site":"gate","edgeline.io/camera":"usb"},"taints":["edgeline.io/edge=true:PreferNoSchedule"]}]`,
	}
}

func run(t *testing.T, cfg map[string]string) (*mocks, error) {
	t.Helper()
	t.Setenv("PULUMI_CONFIG", mustJSON(t, cfg))
	m := &mocks{}
	err := pulumi.RunErr(Program("/srv/infra"), pulumi.WithMocks("edgeline", "prod", m))
	return m, err
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProgramGraph(t *testing.T) {
	m, err := run(t, baseConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ typ, name string }{
		{TypeCloud, "cloud"}, {TypeCluster, "cluster"}, {TypePlatform, "platform"}, {TypeApp, "app"},
		{typeCloudHost, "vps"}, {typeK3sServer, "server"},
		{typeHelmRelease, "cert-manager"}, {typeHelmRelease, "edgeline-issuers"},
		{typeHelmRelease, "rancher"}, {typeHelmRelease, "facelogin"},
		{typePassword, "rancher-bootstrap-password"},
	} {
		m.find(t, c.typ, c.name)
	}
	if n := m.count(typeK3sAgent); n != 2 {
		t.Errorf("%d agents registered, want 2", n)
	}
	// Each resource sits in its layer.
	for _, c := range []struct{ typ, name, layer string }{
		{typeCloudHost, "vps", TypeCloud}, {typeK3sServer, "server", TypeCluster},
		{typeK3sAgent, "agent-pi-gate", TypeCluster}, {typeHelmRelease, "rancher", TypePlatform},
		{typeHelmRelease, "facelogin", TypeApp},
	} {
		if p := m.find(t, c.typ, c.name).parent; !strings.Contains(p, c.layer) {
			t.Errorf("%s's parent is %q, want the %s component", c.name, p, c.layer)
		}
	}

	// Every resource uses the explicit provider instance, which gets no stack config.
	for _, r := range m.all {
		if strings.HasPrefix(r.typ, "edgeline:index:") && !strings.Contains(r.provider, "::pulumi:providers:edgeline::edgeline::") {
			t.Errorf("%s %s uses provider %q, want the explicit edgeline instance", r.typ, r.name, r.provider)
		}
	}
	if p := m.find(t, "pulumi:providers:edgeline", "edgeline"); len(p.inputs) != 0 {
		t.Errorf("the provider instance got inputs: %v", p.inputs)
	}

	vps := m.find(t, typeCloudHost, "vps").inputs
	if vps["name"].StringValue() != "edgeline-prod" || vps["domain"].StringValue() != "example.org" {
		t.Errorf("vps inputs: %v", vps)
	}
	var names []string
	for _, h := range vps["hostnames"].ArrayValue() {
		names = append(names, h.StringValue())
	}
	if !slices.Equal(names, []string{"login.example.org", "rancher.example.org", "k3s.example.org"}) {
		t.Errorf("hostnames = %v", names)
	}
	if !strings.HasPrefix(vps["sshPublicKey"].StringValue(), "ssh-ed25519 ") {
		t.Errorf("the SSH public key was not derived from the key file: %v", vps["sshPublicKey"])
	}

	rel := m.find(t, typeHelmRelease, "cert-manager").inputs
	if rel["chart"].StringValue() != "/srv/infra/vendor/cert-manager" {
		t.Errorf("relative chart path not resolved against the program dir: %v", rel["chart"])
	}
	if rel.HasValue("cacheDir") {
		t.Errorf("cacheDir set without edgeline:chartCacheDir: %v", rel["cacheDir"])
	}
	if rel := m.find(t, typeHelmRelease, "edgeline-issuers").inputs; rel["chart"].StringValue() != "/srv/infra/charts/issuers" {
		t.Errorf("issuers chart = %v", rel["chart"])
	}
}

// TestProgramFirewall is trap 4 of issue 16 in the program: the VPS's firewall lets SSH
// and the k3s API in from the address the run comes from (discovered from a check-IP
// service, here one on loopback standing in for the public one, or given), and from
// everyone only when the config says so.
func TestProgramFirewall(t *testing.T) {
	checkIP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("203.0.113.77\n"))
	}))
	defer checkIP.Close()
	for _, c := range []struct {
		name     string
		set      map[string]string
		ssh, api []string
	}{
		{"discovered", map[string]string{"deployerAddress": "", "addressDiscoveryUrl": checkIP.URL},
			[]string{"203.0.113.77/32"}, []string{"203.0.113.77/32"}},
		{"given", map[string]string{}, []string{"198.51.100.23/32"}, []string{"198.51.100.23/32"}},
		{"explicit lists, everyone to the API", map[string]string{"deployerAddress": "", "addressDiscoveryUrl": checkIP.URL + "/down",
			"sshSourceCidrs": `["192.0.2.0/28"]`, "apiSourceCidrs": "0.0.0.0/0, ::/0"},
			[]string{"192.0.2.0/28"}, []string{"0.0.0.0/0", "::/0"}},
		{"agents with public addresses", map[string]string{"network": "wireguard-native", "vpnAuth": "",
			"agents": `[{"name":"pi-a","host":"203.0.113.40","externalIP":"203.0.113.40","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`},
			[]string{"198.51.100.23/32"}, []string{"198.51.100.23/32", "203.0.113.40/32"}},
	} {
		cfg := baseConfig(t)
		for k, v := range c.set {
			if v == "" {
				delete(cfg, "edgeline:"+k)
			} else {
				cfg["edgeline:"+k] = v
			}
		}
		m, err := run(t, cfg)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		vps := m.find(t, typeCloudHost, "vps").inputs
		if got := strs(vps["sshSourceCidrs"]); !slices.Equal(got, c.ssh) {
			t.Errorf("%s: sshSourceCidrs = %v, want %v", c.name, got, c.ssh)
		}
		if got := strs(vps["apiSourceCidrs"]); !slices.Equal(got, c.api) {
			t.Errorf("%s: apiSourceCidrs = %v, want %v", c.name, got, c.api)
		}
	}

	cfg := baseConfig(t)
	delete(cfg, "edgeline:deployerAddress")
	cfg["edgeline:addressDiscoveryUrl"] = checkIP.URL + "/down"
	m, err := run(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "set edgeline:deployerAddress") {
		t.Errorf("discovery failing: %v, want the fix named", err)
	}
	if n := m.count(typeCloudHost); n != 0 {
		t.Errorf("a run that could not find its address registered %d hosts", n)
	}
}

// strs reads a string array input.
func strs(v resource.PropertyValue) []string {
	var out []string
	if v.IsArray() {
		for _, e := range v.ArrayValue() {
			out = append(out, e.StringValue())
		}
	}
	return out
}

// TestProgramAgentSocket: the ssh-agent the config names reaches every connection (trap
// 2 of issue 16); without the key, no socket enters the state ($SSH_AUTH_SOCK changes
// with each login and would show as a change on every run).
func TestProgramAgentSocket(t *testing.T) {
	cfg := baseConfig(t)
	cfg["edgeline:sshAgentSocket"] = "/run/user/1000/ssh-agent.sock"
	m, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ typ, name string }{{typeK3sServer, "server"}, {typeK3sAgent, "agent-pi-gate"}} {
		conn := m.find(t, r.typ, r.name).inputs["connection"].ObjectValue()
		if got := conn["agentSocket"]; !got.IsString() || got.StringValue() != "/run/user/1000/ssh-agent.sock" {
			t.Errorf("%s connection agentSocket = %v", r.name, got)
		}
	}
	m, err = run(t, baseConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if conn := m.find(t, typeK3sServer, "server").inputs["connection"].ObjectValue(); conn.HasValue("agentSocket") {
		t.Errorf("agentSocket set without the config key: %v", conn["agentSocket"])
	}
}

// TestProgramTimeouts: the Helm and SSH limits of the config reach every release and
// connection (trap 8 of issue 16), with defaults fit for a cold VPS.
func TestProgramTimeouts(t *testing.T) {
	cfg := baseConfig(t)
	cfg["edgeline:helmTimeouts"] = `{"rancher":"25m"}`
	cfg["edgeline:sshRetries"] = "0"
	m, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"cert-manager": 900, "rancher": 1500, "facelogin": 900} {
		if got := m.find(t, typeHelmRelease, name).inputs["timeoutSeconds"]; !got.IsNumber() || got.NumberValue() != want {
			t.Errorf("%s timeoutSeconds = %v, want %v", name, got, want)
		}
	}
	for _, r := range []struct{ typ, name string }{{typeK3sServer, "server"}, {typeK3sAgent, "agent-pi-gate"}} {
		conn := m.find(t, r.typ, r.name).inputs["connection"].ObjectValue()
		if conn["connectTimeoutSeconds"].NumberValue() != 30 || conn["connectRetries"].NumberValue() != -1 {
			t.Errorf("%s connection: timeout %v, retries %v; want 30 and -1 (no retry)", r.name, conn["connectTimeoutSeconds"], conn["connectRetries"])
		}
	}
}

func TestProgramSecrets(t *testing.T) {
	m, err := run(t, baseConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ typ, name, key, plain string }{
		{typeCloudHost, "vps", "hcloudToken", "hcloud-secret-token"},
		{typeK3sServer, "server", "vpnAuth", "tskey-secret"},
		{typeK3sAgent, "agent-pi-hall-1", "token", "K10token"},
		{typeK3sAgent, "agent-pi-hall-1", "vpnAuth", "tskey-secret"},
		{typeHelmRelease, "rancher", "kubeconfig", "apiVersion"},
		{typeHelmRelease, "rancher", "values", "generated-password-123"},
		{typeHelmRelease, "facelogin", "values", "db-secret"},
	} {
		v := m.find(t, c.typ, c.name).inputs[resourceKey(c.key)]
		if !v.IsSecret() && !v.ContainsSecrets() {
			t.Errorf("%s.%s is not secret", c.name, c.key)
		}
		if !strings.Contains(secretText(v), c.plain) {
			t.Errorf("%s.%s does not carry the expected value", c.name, c.key)
		}
	}
}

func resourceKey(k string) resource.PropertyKey { return resource.PropertyKey(k) }

func secretText(v resource.PropertyValue) string {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	if v.IsString() {
		return v.StringValue()
	}
	return ""
}

func TestProgramAgents(t *testing.T) {
	m, err := run(t, baseConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	hall := m.find(t, typeK3sAgent, "agent-pi-hall-1").inputs
	// No labels or taints in the config: the provider applies k3s's edge defaults.
	if _, ok := hall["labels"]; ok {
		t.Errorf("pi-hall-1 got explicit labels %v; want the defaults", hall["labels"])
	}
	if hall["site"].StringValue() != "hall" {
		t.Errorf("pi-hall-1 site = %v", hall["site"])
	}
	jump := hall["connection"].ObjectValue()["jump"].ArrayValue()
	if len(jump) != 1 || jump[0].ObjectValue()["host"].StringValue() != "bastion" || jump[0].ObjectValue()["port"].NumberValue() != 2222 {
		t.Errorf("pi-hall-1 jump = %v", jump)
	}

	prepare := hall["prepare"].ObjectValue()
	if ntp := prepare["vars"].ObjectValue()["edge_ntp_servers"].ArrayValue(); len(ntp) != 1 || ntp[0].StringValue() != "ntp.example.org" || prepare["check"].BoolValue() {
		t.Errorf("pi-hall-1 prepare = %v", prepare)
	}

	gate := m.find(t, typeK3sAgent, "agent-pi-gate").inputs
	if _, ok := gate["prepare"]; ok {
		t.Errorf("pi-gate is prepared without asking: %v", gate["prepare"])
	}
	labels := gate["labels"].ObjectValue()
	if labels["edgeline.io/camera"].StringValue() != "usb" || labels["edgeline.io/site"].StringValue() != "gate" {
		t.Errorf("pi-gate labels = %v", labels)
	}
	taints := gate["taints"].ArrayValue()
	if len(taints) != 1 || taints[0].StringValue() != "edgeline.io/edge=true:PreferNoSchedule" {
		t.Errorf("pi-gate taints = %v", taints)
	}
}

// Trap 6 of issue 16: with vpn-auth nothing installed tailscale, because the program
// passed the repository neither to the VPS's cloud-init nor to the agents' prepare step.
func TestProgramTailscale(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		drop []string
		repo string // the CloudHost's tailscaleRepo and pi-hall-1's edge_tailscale_repo; "" none
	}{
		{"vpn-auth", nil, nil, "https://pkgs.tailscale.com/stable"},
		{"vpn-auth from a mirror", map[string]string{"edgeline:tailscaleAptRepo": "https://mirror.example.org/tailscale/stable"}, nil, "https://mirror.example.org/tailscale/stable"},
		{"wireguard-native", map[string]string{"edgeline:network": "wireguard-native", "edgeline:agents": `[
			{"name":"pi-hall-1","host":"203.0.113.40","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			 "prepare":{"vars":{"edge_ntp_servers":["ntp.example.org"]}}}]`}, []string{"edgeline:vpnAuth"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig(t)
			maps.Copy(cfg, tt.set)
			for _, k := range tt.drop {
				delete(cfg, k)
			}
			m, err := run(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			vps := m.find(t, typeCloudHost, "vps").inputs
			if got := vps["tailscaleRepo"]; tt.repo == "" && got.HasValue() || tt.repo != "" && (!got.IsString() || got.StringValue() != tt.repo) {
				t.Errorf("CloudHost tailscaleRepo = %v, want %q", got, tt.repo)
			}
			vars := m.find(t, typeK3sAgent, "agent-pi-hall-1").inputs["prepare"].ObjectValue()["vars"].ObjectValue()
			if ntp := vars["edge_ntp_servers"].ArrayValue(); len(ntp) != 1 {
				t.Errorf("pi-hall-1 lost its own prepare vars: %v", vars)
			}
			on, repo := vars["edge_tailscale"], vars["edge_tailscale_repo"]
			if tt.repo == "" {
				if on.HasValue() || repo.HasValue() {
					t.Errorf("pi-hall-1 installs tailscale without vpn-auth: %v", vars)
				}
				return
			}
			if !on.IsBool() || !on.BoolValue() || !repo.IsString() || repo.StringValue() != tt.repo {
				t.Errorf("pi-hall-1 prepare vars = %v, want edge_tailscale true and edge_tailscale_repo %q", vars, tt.repo)
			}
			if _, ok := m.find(t, typeK3sAgent, "agent-pi-gate").inputs["prepare"]; ok {
				t.Error("pi-gate, which has no prepare step, got one")
			}
		})
	}
}

func TestProgramAppValues(t *testing.T) {
	cfg := baseConfig(t)
	cfg["edgeline:appValues"] = `{"api":{"replicas":3},"web":{"placement":{"preset":"anywhere"}}}`
	m, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := json.Unmarshal([]byte(secretText(m.find(t, typeHelmRelease, "facelogin").inputs["values"])), &values); err != nil {
		t.Fatal(err)
	}
	want := `{"api":{"image":{"repository":"registry.example.org/team/facelogin-api","tag":"v0.3.0"},"placement":{"preset":"edge-preferred"},"replicas":3},"database":{"url":"postgres://facelogin:db-secret@db.example.org/facelogin"},"host":"login.example.org","ingress":{"clusterIssuer":"letsencrypt-prod"},"postgresql":{"enabled":false},"web":{"image":{"repository":"registry.example.org/team/facelogin-web","tag":"v0.3.0"},"placement":{"preset":"anywhere"}}}`
	if got := mustJSON(t, values); got != want {
		t.Errorf("facelogin values\n got %s\nwant %s", got, want)
	}
}

func TestProgramRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"no domain", map[string]string{"edgeline:domain": ""}, "edgeline:domain is missing"},
		{"bad agent taint", map[string]string{"edgeline:agents": `[{"name":"pi","host":"h","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","taints":["x:Never"]}]`}, `effect "Never" is not NoSchedule`},
		{"unknown key", map[string]string{"edgeline:helmWiat": "false"}, "edgeline:helmWiat is not a setting of edgeline: did you mean edgeline:helmWait?"},
		{"missing key file", map[string]string{"edgeline:sshKeyFile": "/nonexistent/id_ed25519"}, "edgeline:sshKeyFile: open /nonexistent/id_ed25519"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig(t)
			for k, v := range tt.set {
				cfg[k] = v
			}
			m, err := run(t, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if len(m.all) != 0 {
				t.Errorf("a refused config still registered %d resources", len(m.all))
			}
		})
	}
}

// TestProgramHostKeyRotation is trap 3 of issue 16 in the program: the VPS gets the login
// it needs to replace its user-data host key, and everything that reaches the VPS over
// SSH pins the key the CloudHost reports, the replaced one.
func TestProgramHostKeyRotation(t *testing.T) {
	cfg := baseConfig(t)
	cfg["edgeline:sshRetries"] = "0"
	m, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	vps := m.find(t, typeCloudHost, "vps").inputs
	login := vps["login"].ObjectValue()
	if login["keyFile"].StringValue() != cfg["edgeline:sshKeyFile"] || login["user"].StringValue() != "root" || login["port"].NumberValue() != 22 ||
		login["connectTimeoutSeconds"].NumberValue() != 30 || login["connectRetries"].NumberValue() != -1 {
		t.Errorf("vps login = %v", login)
	}
	if vps.HasValue("hostKeyRotation") || vps.HasValue("hostKeyFingerprint") {
		t.Errorf("rotation inputs set without their keys: %v, %v", vps["hostKeyRotation"], vps["hostKeyFingerprint"])
	}
	pinned := map[string]resource.PropertyValue{
		"server":                 m.find(t, typeK3sServer, "server").inputs["connection"],
		"agent pi-gate's server": m.find(t, typeK3sAgent, "agent-pi-gate").inputs["server"],
	}
	for what, conn := range pinned {
		if fp := conn.ObjectValue()["hostKeyFingerprint"]; !fp.IsString() || fp.StringValue() != "SHA256:test" {
			t.Errorf("%s connection pins %v, want the CloudHost's hostKeyFingerprint output", what, fp)
		}
	}

	cfg["edgeline:hostKeyRotation"] = "2026-12"
	cfg["edgeline:hostKeyFingerprint"] = "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	if m, err = run(t, cfg); err != nil {
		t.Fatal(err)
	}
	vps = m.find(t, typeCloudHost, "vps").inputs
	if vps["hostKeyRotation"].StringValue() != "2026-12" || vps["hostKeyFingerprint"].StringValue() != cfg["edgeline:hostKeyFingerprint"] {
		t.Errorf("vps rotation inputs: %v, %v", vps["hostKeyRotation"], vps["hostKeyFingerprint"])
	}
}

// TestProgramChartCacheDir: edgeline:chartCacheDir is a path like the other path keys,
// ~/ expanded and relative to infra/, and reaches every pulled chart.
func TestProgramChartCacheDir(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory to expand ~/ to")
	}
	for dir, want := range map[string]string{"~/.cache/charts": filepath.Join(home, ".cache/charts"), "cache": "/srv/infra/cache"} {
		cfg := baseConfig(t)
		cfg["edgeline:certManagerChart"] = "oci://registry.example.org/charts/cert-manager"
		cfg["edgeline:rancherChart"] = "https://charts.example.org/stable"
		cfg["edgeline:chartCacheDir"] = dir
		m, err := run(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"cert-manager", "rancher"} {
			if got := m.find(t, typeHelmRelease, name).inputs["cacheDir"]; !got.IsString() || got.StringValue() != want {
				t.Errorf("chartCacheDir %s: %s's cacheDir = %v, want %s", dir, name, got, want)
			}
		}
	}
}
