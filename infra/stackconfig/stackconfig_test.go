package stackconfig

import (
	"encoding/json"
	"maps"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/edgeline/edgeline/infra/allowlist"
	"github.com/edgeline/edgeline/internal/remote"
)

// valid is a minimal complete configuration; each case below changes one thing.
func valid() map[string]string {
	return map[string]string{
		"domain":             "example.org",
		"acmeEmail":          "ops@example.org",
		"hcloudToken":        "token",
		"sshKeyFile":         "/home/ops/.ssh/id_ed25519",
		"certManagerChart":   "vendor/cert-manager",
		"rancherChart":       "vendor/rancher",
		"appImageRepository": "registry.example.org/team",
		"agents": `[{"name":"pi-hall-1","host":"10.0.0.5","jump":"ops@bastion.example.org:2222","externalIP":"203.0.113.40",
			"hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			"labels":{"edgeline.io/site":"hall"},"taints":["edgeline.io/edge=true:NoSchedule"]}]`,
	}
}

// source is a stack config holding m (keys without the namespace), nothing secret.
func source(m map[string]string) Source {
	var keys []string
	for k := range m {
		keys = append(keys, Namespace+":"+k)
	}
	return Source{Get: func(k string) (string, bool) { v, ok := m[k]; return v, ok }, Keys: keys}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse(source(valid()))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"app host", c.AppHost, "login.example.org"},
		{"rancher host", c.RancherHost, "rancher.example.org"},
		{"api host", c.APIHost, "k3s.example.org"},
		{"issuer", c.Issuer, IssuerProduction},
		{"source", c.Cloud.Source, SourceNative},
		// Trap 8 of issue 16: a 4 GB cx22 cannot carry k3s, Rancher and the app.
		{"server type", c.Cloud.ServerType, "cx32"},
		{"network", c.Network, NetworkWireguard},
		{"agent user", c.Agents[0].User, "root"},
		{"agent site", c.Agents[0].Site, "pi-hall-1"},
		{"placement", c.App.Placement, "edge-preferred"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.SSH.Port != 22 || c.Agents[0].Port != 22 {
		t.Errorf("ports = %d, %d, want 22", c.SSH.Port, c.Agents[0].Port)
	}
	if got := c.Agents[0].Taints; len(got) != 1 || got[0] != "edgeline.io/edge=true:NoSchedule" {
		t.Errorf("taints = %v", got)
	}
	if j := c.Agents[0].Jump; j == nil || *j != (remote.Endpoint{User: "ops", Host: "bastion.example.org", Port: 2222}) {
		t.Errorf("jump = %+v", j)
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		drop []string
		want string // a part of the error
	}{
		{"no domain", nil, []string{"domain"}, "edgeline:domain is missing"},
		{"bad domain", map[string]string{"domain": "exa mple"}, nil, `edgeline:domain "exa mple" is not a DNS name`},
		{"no email", nil, []string{"acmeEmail"}, "edgeline:acmeEmail is missing"},
		{"bad email", map[string]string{"acmeEmail": "ops"}, nil, `edgeline:acmeEmail "ops" is not an e-mail address`},
		{"bad issuer", map[string]string{"issuer": "prod"}, nil, `edgeline:issuer "prod" is neither staging nor production`},
		{"bad cloud", map[string]string{"cloud": "aws"}, nil, `edgeline:cloud "aws" is not native, terraform or existing`},
		{"bad server type", map[string]string{"serverType": "big one"}, nil, `edgeline:serverType "big one" is not a Hetzner server type`},
		{"bad location", map[string]string{"location": "frankfurt"}, nil, `edgeline:location "frankfurt" is not a Hetzner location`},
		{"no token", nil, []string{"hcloudToken"}, "edgeline:hcloudToken is missing"},
		{"bad host key", map[string]string{"hostKey": "nope"}, nil, "edgeline:hostKey is not an unencrypted OpenSSH private key"},
		{"existing without address", map[string]string{"cloud": "existing", "hostKeyFingerprint": "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, nil, `edgeline:address "" is not an IPv4 address`},
		{"existing without fingerprint", map[string]string{"cloud": "existing", "address": "203.0.113.7"}, nil, "edgeline:hostKeyFingerprint"},
		{"bad fingerprint to pin on a new VPS", map[string]string{"hostKeyFingerprint": "abc"}, nil, `edgeline:hostKeyFingerprint "abc" is not an SSH fingerprint like SHA256:... (on the VPS's console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)`},
		{"host key rotation of an existing host", map[string]string{"cloud": "existing", "address": "203.0.113.7", "hostKeyFingerprint": "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "hostKeyRotation": "2026-12"}, nil, "edgeline:hostKeyRotation replaces the host key of a VPS edgeline created, but edgeline:cloud is existing"},
		{"no ssh key", nil, []string{"sshKeyFile"}, "edgeline:sshKeyFile is missing"},
		{"bad ssh port", map[string]string{"sshPort": "99999"}, nil, "edgeline:sshPort 99999 is not a TCP port"},
		{"ssh port not a number", map[string]string{"sshPort": "twenty"}, nil, `edgeline:sshPort "twenty" is not a whole number`},
		{"bad network", map[string]string{"network": "vxlan"}, nil, `edgeline:network "vxlan" is neither wireguard-native nor vpn-auth`},
		{"vpn-auth without key", map[string]string{"network": "vpn-auth"}, nil, "edgeline:network vpn-auth needs edgeline:vpnAuth"},
		{"vpnAuth without mode", map[string]string{"vpnAuth": "name=tailscale,joinKey=k"}, nil, "edgeline:vpnAuth is set but edgeline:network is wireguard-native"},
		{"agents not a list", map[string]string{"agents": `{"name":"x"}`}, nil, "edgeline:agents is not valid"},
		{"agent unknown field", map[string]string{"agents": `[{"name":"pi","host":"h","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","lables":{}}]`}, nil, `unknown field "lables"`},
		{"agent bad name", map[string]string{"agents": `[{"name":"Pi_1","host":"h","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`}, nil, `edgeline:agents[0] (Pi_1): node name "Pi_1" is not a lowercase DNS name`},
		{"agent no name", map[string]string{"agents": `[{"host":"h","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`}, nil, `edgeline:agents[0].name is missing`},
		{"agent bad label", map[string]string{"agents": `[{"name":"pi","host":"h","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","labels":{"bad key!":"x"}}]`}, nil, `edgeline:agents[0] (pi): label key "bad key!"`},
		{"agent bad external IP", map[string]string{"agents": `[{"name":"pi","host":"h","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","externalIP":"300.1.1.1"}]`}, nil, `edgeline:agents[0] (pi): node-external-ip "300.1.1.1" is not an IP address`},
		{"agent host with user", map[string]string{"agents": `[{"name":"pi","host":"pi@h","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`}, nil, `edgeline:agents[0] (pi): ssh config: host "pi@h" is not a host name`},
		{"agent twice", map[string]string{"agents": `[{"name":"pi","host":"a","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},{"name":"pi","host":"b","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`}, nil, `edgeline:agents[1].name "pi" is used twice`},
		{"agent no host", map[string]string{"agents": `[{"name":"pi","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`}, nil, "edgeline:agents[0] (pi).host is missing"},
		{"agent unverifiable", map[string]string{"agents": `[{"name":"pi","host":"h"}]`}, nil, "host keys are always verified"},
		{"agent bad taint", map[string]string{"agents": `[{"name":"pi","host":"h","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","taints":["edge=true:Sometimes"]}]`}, nil, `edgeline:agents[0] (pi): taint "edge=true:Sometimes": effect "Sometimes" is not NoSchedule`},
		{"agent bad jump", map[string]string{"agents": `[{"name":"pi","host":"h","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","jump":"ops@bastion:http"}]`}, nil, `edgeline:agents[0] (pi).jump "ops@bastion:http": port "http" is not a TCP port`},
		{"bad k3s version", map[string]string{"k3sVersion": "1.33"}, nil, `edgeline:k3sVersion: k3s version "1.33" is not a k3s release name like v1.33.4+k3s1`},
		{"bad vpnAuth", map[string]string{"network": "vpn-auth", "vpnAuth": "name=zerotier"}, nil, `edgeline:vpnAuth: vpn-auth must start with "name=tailscale"`},
		{"agent prepare with a role variable that does not exist", map[string]string{"agents": `[{"name":"pi","host":"h","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","prepare":{"vars":{"edge_ntp_server":["ntp.example.org"]}}}]`}, nil, "edgeline:agents[0] (pi).prepare.vars: edge_ntp_server is not a variable of the edge_node role"},
		{"agent prepare unknown field", map[string]string{"agents": `[{"name":"pi","host":"h","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","prepare":{"dry":true}}]`}, nil, `unknown field "dry"`},
		{"tailscale repo over http", map[string]string{"tailscaleAptRepo": "http://pkgs.tailscale.com/stable"}, nil, `edgeline:tailscaleAptRepo "http://pkgs.tailscale.com/stable" is not an https URL: give the base URL of Tailscale's stable apt repository (default https://pkgs.tailscale.com/stable)`},
		{"tailscale repo not a URL", map[string]string{"tailscaleAptRepo": "pkgs.tailscale.com/stable"}, nil, `edgeline:tailscaleAptRepo "pkgs.tailscale.com/stable" is not an https URL`},
		{"tailscale repo with shell characters", map[string]string{"tailscaleAptRepo": "https://mirror.example.org/$(reboot)"}, nil, `edgeline:tailscaleAptRepo "https://mirror.example.org/$(reboot)" is not an https URL`},
		{"agent prepare sets a derived tailscale variable", map[string]string{"agents": `[{"name":"pi","host":"203.0.113.9","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","prepare":{"vars":{"edge_tailscale":true}}}]`}, nil, "edgeline:agents[0] (pi).prepare.vars: edge_tailscale is set by edgeline from edgeline:network and edgeline:tailscaleAptRepo: remove it"},
		{"unknown key", map[string]string{"domian": "example.org"}, nil, "edgeline:domian is not a setting of edgeline: did you mean edgeline:domain?"},
		{"unknown key far from any", map[string]string{"favouriteColour": "blue"}, nil, "edgeline:favouriteColour is not a setting of edgeline: remove it"},
		{"bad cert-manager version", map[string]string{"certManagerVersion": "latest"}, nil, `edgeline:certManagerVersion "latest"`},
		{"half an air gap", map[string]string{"k3sAirGap": `{"binary":"/tmp/k3s"}`}, nil, "edgeline:k3sAirGap: k3s air-gapped install needs both the k3s binary and the install script"},
		{"bad placement", map[string]string{"placement": "moon"}, nil, `edgeline:placement "moon" is not one of cloud-only, edge-preferred, anywhere`},
		{"chart URL of another kind", map[string]string{"rancherChart": "ftp://charts.example.org/stable"}, nil, `edgeline:rancherChart "ftp://charts.example.org/stable" is neither an oci:// reference nor an http(s) chart repository URL`},
		{"bad chart digest", map[string]string{"certManagerChartDigest": "md5:abc"}, nil, `edgeline:certManagerChartDigest "md5:abc" is not sha256:`},
		{"chart version range", map[string]string{"rancherVersion": "^2.12"}, nil, `edgeline:rancherVersion "^2.12" is not an exact version`},
		{"helmWait not a bool", map[string]string{"helmWait": "maybe"}, nil, `edgeline:helmWait "maybe" is neither true nor false`},
		{"cloudflare with native", map[string]string{"dns": "cloudflare", "cloudflareZoneId": "z"}, nil, "edgeline:dns cloudflare needs edgeline:cloud terraform"},
		{"cloudflare without zone", map[string]string{"dns": "cloudflare", "cloud": "terraform"}, nil, "needs edgeline:cloudflareZoneId"},
		{"same host twice", map[string]string{"appHost": "a.example.org", "rancherHost": "a.example.org"}, nil, "give each its own name"},
		{"no image repository", nil, []string{"appImageRepository"}, "edgeline:appImageRepository is missing: publish the app's images (edgeline images push --repository REGISTRY/PATH, docs/deploy.md)"},
		{"image repository without a registry", map[string]string{"appImageRepository": "team/facelogin"}, nil, `edgeline:appImageRepository "team/facelogin" is not REGISTRY/PATH`},
		{"image repository with a tag", map[string]string{"appImageRepository": "registry.example.org/team:v1"}, nil, "no tag, no digest"},
		{"bad image tag", map[string]string{"appImageTag": "v1 final"}, nil, `edgeline:appImageTag "v1 final" is not an image tag`},
		{"bad image digest", map[string]string{"appImageDigests": `{"api":"sha256:abc"}`}, nil, `edgeline:appImageDigests.api "sha256:abc" is not a digest`},
		{"bad helm timeout", map[string]string{"helmTimeout": "ten minutes"}, nil, `edgeline:helmTimeout "ten minutes" is not a duration like 90s or 15m`},
		{"timeout of an unknown release", map[string]string{"helmTimeouts": `{"ranch":"20m"}`}, nil, `edgeline:helmTimeouts: "ranch" is not a release of the stack`},
		{"bad release timeout", map[string]string{"helmTimeouts": `{"rancher":"-1m"}`}, nil, `edgeline:helmTimeouts.rancher "-1m" is not a duration`},
		{"bad ssh timeout", map[string]string{"sshConnectTimeout": "0s"}, nil, `edgeline:sshConnectTimeout "0s" is not a duration`},
		{"negative ssh retries", map[string]string{"sshRetries": "-2"}, nil, "edgeline:sshRetries -2 is negative"},
		{"wireguard-native Pi behind NAT", map[string]string{"agents": `[{"name":"pi","host":"192.168.10.21","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`}, nil,
			"edgeline:agents[0] (pi) has no public address (host 192.168.10.21, no externalIP): edgeline:network wireguard-native needs one on every Pi; for Pis behind NAT set edgeline:network vpn-auth"},
		{"wireguard-native Pi behind a jump host", map[string]string{"agents": `[{"name":"pi","host":"203.0.113.9","jump":"bastion","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`}, nil, "has no public address"},
		{"relative agent socket", map[string]string{"sshAgentSocket": "agent.sock"}, nil, `edgeline:sshAgentSocket "agent.sock" is not an absolute path`},
		{"ssh sources not networks", map[string]string{"sshSourceCidrs": "office"}, nil, `edgeline:sshSourceCidrs: "office" is neither an address nor a network`},
		{"api sources empty list", map[string]string{"apiSourceCidrs": "[]"}, nil, "edgeline:apiSourceCidrs: the list is empty"},
		{"bad deployer address", map[string]string{"deployerAddress": "my-laptop"}, nil, `edgeline:deployerAddress "my-laptop" is not an IP address`},
		{"bad discovery url", map[string]string{"addressDiscoveryUrl": "checkip"}, nil, `edgeline:addressDiscoveryUrl "checkip" is not an http(s) URL`},
		{"firewall lists with an existing host", map[string]string{"cloud": "existing", "address": "203.0.113.7", "hostKeyFingerprint": "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "sshSourceCidrs": "0.0.0.0/0"}, nil, "edgeline:sshSourceCidrs sets the firewall of a new VPS, but edgeline:cloud is existing"},
		{"image digest of another image", map[string]string{"appImageDigests": `{"db":"sha256:abc"}`}, nil, `unknown field "db"`},
	}
	t.Setenv("HCLOUD_TOKEN", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			for _, k := range tt.drop {
				delete(m, k)
			}
			for k, v := range tt.set {
				m[k] = v
			}
			c, err := Parse(source(m))
			if err == nil {
				t.Fatalf("Parse accepted the config: %+v", c)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// TestParseFirewall is trap 4 of issue 16 in the config: SSH and the k3s API are let in
// from the deployer's address by default, the whole internet only when written.
// Trap 6 of issue 16: with vpn-auth, nothing installed tailscale. The repository
// reaches the prepare step of every prepared agent in vpn-auth mode, and no other.
func TestParseTailscale(t *testing.T) {
	agents := `[{"name":"pi-hall-1","host":"203.0.113.40","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","prepare":{"vars":{"edge_hostname":"hall"}}},
		{"name":"pi-gate","host":"203.0.113.41","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`
	tests := []struct {
		name     string
		set      map[string]string
		repo     string         // Config.TailscaleAptRepo
		vars     map[string]any // PrepareVars of pi-hall-1
		warnings []string       // parts of the warnings, in order
	}{
		{"wireguard", nil, DefaultTailscaleAptRepo, map[string]any{"edge_hostname": "hall"}, nil},
		{"vpn-auth", map[string]string{"network": "vpn-auth", "vpnAuth": "name=tailscale,joinKey=k"}, DefaultTailscaleAptRepo,
			map[string]any{"edge_hostname": "hall", "edge_tailscale": true, "edge_tailscale_repo": "https://pkgs.tailscale.com/stable"},
			[]string{"agents pi-gate have no prepare step, so edgeline does not install tailscale on them"}},
		{"vpn-auth from a mirror", map[string]string{"network": "vpn-auth", "vpnAuth": "name=tailscale,joinKey=k", "tailscaleAptRepo": "https://mirror.example.org/tailscale/stable/"},
			"https://mirror.example.org/tailscale/stable",
			map[string]any{"edge_hostname": "hall", "edge_tailscale": true, "edge_tailscale_repo": "https://mirror.example.org/tailscale/stable"},
			[]string{"pi-gate have no prepare step"}},
		{"vpn-auth on an existing host", map[string]string{"network": "vpn-auth", "vpnAuth": "name=tailscale,joinKey=k", "cloud": "existing", "address": "203.0.113.7", "hostKeyFingerprint": "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
			DefaultTailscaleAptRepo,
			map[string]any{"edge_hostname": "hall", "edge_tailscale": true, "edge_tailscale_repo": "https://pkgs.tailscale.com/stable"},
			[]string{"does not install tailscale on an existing host", "pi-gate have no prepare step"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			m["agents"] = agents
			maps.Copy(m, tt.set)
			c, err := Parse(source(m))
			if err != nil {
				t.Fatal(err)
			}
			if c.TailscaleAptRepo != tt.repo {
				t.Errorf("TailscaleAptRepo = %q, want %q", c.TailscaleAptRepo, tt.repo)
			}
			if got := c.PrepareVars(c.Agents[0]); !reflect.DeepEqual(got, tt.vars) {
				t.Errorf("PrepareVars(pi-hall-1) = %v, want %v", got, tt.vars)
			}
			if got := c.PrepareVars(c.Agents[1]); got != nil {
				t.Errorf("PrepareVars(pi-gate) = %v, want nil: it has no prepare step", got)
			}
			if _, ok := c.Agents[0].Prepare.Vars["edge_tailscale"]; ok {
				t.Error("PrepareVars changed the agent's own prepare.vars")
			}
			var ours []string
			for _, w := range c.Warnings {
				if strings.Contains(w, "tailscale") {
					ours = append(ours, w)
				}
			}
			if len(ours) != len(tt.warnings) {
				t.Fatalf("tailscale warnings = %q, want %d", ours, len(tt.warnings))
			}
			for i, w := range tt.warnings {
				if !strings.Contains(ours[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, ours[i], w)
				}
			}
		})
	}
}

func TestParseFirewall(t *testing.T) {
	deployer := netip.MustParseAddr("198.51.100.23")
	cases := []struct {
		name       string
		set        map[string]string
		discovered netip.Addr
		needs      bool
		ssh, api   string
		warns      bool
	}{
		{"defaults: the discovered address", nil, deployer, true, "198.51.100.23/32", "198.51.100.23/32 203.0.113.40/32", false},
		{"given address", map[string]string{"deployerAddress": "2001:db8::7"}, netip.Addr{}, false, "2001:db8::7/128", "203.0.113.40/32 2001:db8::7/128", false},
		{"agents behind NAT", map[string]string{"network": "vpn-auth", "vpnAuth": "name=tailscale,joinKey=k", "agents": `[{"name":"pi","host":"10.0.0.5","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`},
			deployer, true, "198.51.100.23/32", "198.51.100.23/32", true},
		{"agents' external IPs join the API list", map[string]string{"agents": `[{"name":"pi","host":"203.0.113.40","externalIP":"203.0.113.40","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`},
			deployer, true, "198.51.100.23/32", "198.51.100.23/32 203.0.113.40/32", false},
		{"everyone, when said", map[string]string{"sshSourceCidrs": "0.0.0.0/0,::/0", "apiSourceCidrs": `["0.0.0.0/0"]`}, netip.Addr{}, false, "0.0.0.0/0 ::/0", "0.0.0.0/0", false},
		{"one list given, the other from the address", map[string]string{"sshSourceCidrs": "192.0.2.0/28"}, deployer, true, "192.0.2.0/28", "198.51.100.23/32 203.0.113.40/32", false},
	}
	for _, c := range cases {
		m := valid()
		maps.Copy(m, c.set)
		cfg, err := Parse(source(m))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := cfg.NeedsDeployerAddress(); got != c.needs {
			t.Errorf("%s: NeedsDeployerAddress = %v, want %v", c.name, got, c.needs)
		}
		ssh, api := cfg.Firewall(c.discovered)
		if got := strings.Join(allowlist.Strings(ssh), " "); got != c.ssh {
			t.Errorf("%s: SSH from %s, want %s", c.name, got, c.ssh)
		}
		if got := strings.Join(allowlist.Strings(api), " "); got != c.api {
			t.Errorf("%s: API from %s, want %s", c.name, got, c.api)
		}
		warned := slices.ContainsFunc(cfg.Warnings, func(w string) bool { return strings.Contains(w, "add it to edgeline:apiSourceCidrs") })
		if warned != c.warns {
			t.Errorf("%s: warned of agents outside the API list: %v, want %v (%q)", c.name, warned, c.warns, cfg.Warnings)
		}
	}
	m := valid()
	maps.Copy(m, map[string]string{"cloud": "existing", "address": "203.0.113.7", "hostKeyFingerprint": "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
	if cfg, err := Parse(source(m)); err != nil || cfg.NeedsDeployerAddress() {
		t.Errorf("an existing host needs no address for a firewall edgeline does not manage: %v", err)
	}
}

// TestParseTimeouts is trap 8 of issue 16: Helm's 5 minutes and ≈ 35 s of SSH retries
// are too short for a cold VPS; the defaults are longer and each is configurable.
func TestParseTimeouts(t *testing.T) {
	c, err := Parse(source(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if c.ReleaseTimeout("rancher") != 15*time.Minute || c.SSH.ConnectTimeout != 30*time.Second || c.SSH.ConnectRetries != 15 {
		t.Errorf("defaults: rancher %v, ssh timeout %v, retries %d", c.ReleaseTimeout("rancher"), c.SSH.ConnectTimeout, c.SSH.ConnectRetries)
	}
	m := valid()
	maps.Copy(m, map[string]string{"helmTimeout": "10m", "helmTimeouts": `{"rancher":"25m"}`, "sshConnectTimeout": "45s", "sshRetries": "0"})
	if c, err = Parse(source(m)); err != nil {
		t.Fatal(err)
	}
	if c.ReleaseTimeout("rancher") != 25*time.Minute || c.ReleaseTimeout("facelogin") != 10*time.Minute || c.SSH.ConnectTimeout != 45*time.Second || c.SSH.ConnectRetries != 0 {
		t.Errorf("set: rancher %v, facelogin %v, ssh timeout %v, retries %d", c.ReleaseTimeout("rancher"), c.ReleaseTimeout("facelogin"), c.SSH.ConnectTimeout, c.SSH.ConnectRetries)
	}
}

func TestParseImages(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  map[string]string
		want App
	}{
		{"repository and tag", map[string]string{"appImageRepository": "registry.example.org:5000/team/", "appImageTag": "v0.3.0"},
			App{ImageRepository: "registry.example.org:5000/team", ImageTag: "v0.3.0"}},
		{"digests", map[string]string{"appImageDigests": `{"api":"sha256:` + strings.Repeat("a", 64) + `","web":"sha256:` + strings.Repeat("b", 64) + `"}`},
			App{ImageRepository: "registry.example.org/team", ImageDigests: ImageDigests{API: "sha256:" + strings.Repeat("a", 64), Web: "sha256:" + strings.Repeat("b", 64)}}},
		{"both images in appValues instead", map[string]string{"appImageRepository": "",
			"appValues": `{"api":{"image":{"repository":"r.example.org/a"}},"web":{"image":{"repository":"r.example.org/w"}}}`}, App{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			for k, v := range tt.set {
				m[k] = v
			}
			c, err := Parse(source(m))
			if err != nil {
				t.Fatal(err)
			}
			got := App{ImageRepository: c.App.ImageRepository, ImageTag: c.App.ImageTag, ImageDigests: c.App.ImageDigests}
			if got.ImageRepository != tt.want.ImageRepository || got.ImageTag != tt.want.ImageTag || got.ImageDigests != tt.want.ImageDigests {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseListsEveryProblem(t *testing.T) {
	_, err := Parse(source(map[string]string{"hcloudToken": "t", "sshKeyFile": "k", "certManagerChart": "c", "rancherChart": "r",
		"appImageRepository": "registry.example.org/team"}))
	if err == nil {
		t.Fatal("empty config accepted")
	}
	e, ok := err.(*Error)
	if !ok || len(e.Problems) != 2 {
		t.Fatalf("want 2 problems (domain, acmeEmail), got %v", err)
	}
	if !strings.Contains(err.Error(), "stack config has 2 problems") {
		t.Errorf("error = %q", err)
	}
}

// TestParseWarnsOfPlainSecrets: a secret stored in plain text is reported, not refused.
func TestParseWarnsOfPlainSecrets(t *testing.T) {
	m := valid()
	m["apiSourceCidrs"] = "198.51.100.23, 203.0.113.0/28"
	src := source(m)
	secret := []string{}
	src.Secret = func(k string) bool { return slices.Contains(secret, k) }
	c, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	want := "edgeline:hcloudToken is stored in plain text: set it with `pulumi config set --secret edgeline:hcloudToken`"
	if !slices.Equal(c.Warnings, []string{want}) {
		t.Errorf("warnings = %q, want %q", c.Warnings, want)
	}
	secret = append(secret, "hcloudToken")
	if c, err := Parse(src); err != nil || len(c.Warnings) != 0 {
		t.Errorf("with the token secret: warnings %q, %v", c.Warnings, err)
	}
}

// TestParseListsEveryAgentProblem: the problems of every agent are reported together,
// including every one k3s finds in one agent.
func TestParseListsEveryAgentProblem(t *testing.T) {
	m := valid()
	m["agents"] = `[{"name":"pi-1","host":"h","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","jump":"@","taints":["x:Never"],"externalIP":"nope"},
		{"name":"pi-2","hostKeyFingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]`
	_, err := Parse(source(m))
	e, ok := err.(*Error)
	if !ok || len(e.Problems) != 4 {
		t.Fatalf("want 4 problems (pi-1's jump, taint and external IP, pi-2's host), got %v", err)
	}
}

func TestParseTokenFromEnvironment(t *testing.T) {
	t.Setenv("HCLOUD_TOKEN", "from-env")
	m := valid()
	delete(m, "hcloudToken")
	c, err := Parse(source(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cloud.HcloudToken != "from-env" {
		t.Errorf("token = %q", c.Cloud.HcloudToken)
	}
}

// TestExampleConfig checks that infra/Pulumi.example.yaml, which docs/deploy.md tells
// users to copy, is a valid configuration (given the API token it leaves out).
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../Pulumi.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	values := map[string]string{"hcloudToken": "from-pulumi-config-set---secret", "vpnAuth": "name=tailscale,joinKey=from-pulumi-config-set---secret"}
	for k, v := range file.Config {
		key, ok := strings.CutPrefix(k, Namespace+":")
		if !ok {
			t.Fatalf("key %q is not in the %s namespace", k, Namespace)
		}
		if s, ok := v.(string); ok {
			values[key] = s
			continue
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		values[key] = string(j)
	}
	src := source(values)
	src.Secret = func(k string) bool { return k == "hcloudToken" || k == "vpnAuth" }
	c, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("the example config stores secrets in plain text: %q", c.Warnings)
	}
	if len(c.Agents) == 0 || c.Issuer != IssuerStaging {
		t.Errorf("example config parsed to %+v", c)
	}
}

// TestChartDefaults: without chart keys the platform's charts are pulled from their
// registries at the pinned versions (trap 5 of issue 16: no helm pull by hand), with
// digests recorded in charts.lock.
func TestChartDefaults(t *testing.T) {
	m := valid()
	delete(m, "certManagerChart")
	delete(m, "rancherChart")
	c, err := Parse(source(m))
	if err != nil {
		t.Fatal(err)
	}
	want := Charts{CertManager: DefaultCertManagerChart, Rancher: DefaultRancherChart, Facelogin: "../charts/facelogin", LockFile: "charts.lock"}
	if c.Charts != want {
		t.Errorf("charts = %+v, want %+v", c.Charts, want)
	}
}
