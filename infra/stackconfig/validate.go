package stackconfig

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/edgeline/edgeline/ansible"
	"github.com/edgeline/edgeline/infra/allowlist"
	"github.com/edgeline/edgeline/internal/k3s"
	"github.com/edgeline/edgeline/internal/remote"
)

// Rules of values only the stack config has. The rules of what k3s and SSH take (node
// names, labels, taints, versions, fingerprints, hosts) are theirs: validate asks
// internal/k3s and internal/remote and reports each problem they find.
var (
	dnsNameRe    = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
	serverTypeRe = regexp.MustCompile(`^[a-z]+[0-9]+[a-z]*$`)
	locationRe   = regexp.MustCompile(`^[a-z]{3}[0-9]$`)
	semverRe     = regexp.MustCompile(`^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	// An image repository without tag or digest whose first element is a registry host.
	imageRepoRe = regexp.MustCompile(`^(localhost|[a-z0-9-]+(\.[a-z0-9-]+)+|[a-z0-9.-]+:[0-9]+)(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$`)
	imageTagRe  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// k3sProblems reports each problem k3s finds in a value under key.
func (p *parser) k3sProblems(key string, err error) {
	for _, e := range k3s.Problems(err) {
		p.errorf("%s: %v", key, e)
	}
}

// Where the platform's charts come from by default: cert-manager's OCI registry and
// Rancher's chart repository (chart "rancher"), pulled at the pinned versions.
const (
	DefaultCertManagerChart = "oci://quay.io/jetstack/charts/cert-manager"
	DefaultRancherChart     = "https://releases.rancher.com/server-charts/stable"
)

var digestRe = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (c *Config) validate(p *parser) {
	switch {
	case c.Domain == "":
		p.errorf("edgeline:domain is missing: set the DNS zone your hosts live in (pulumi config set edgeline:domain example.org)")
	case !dnsNameRe.MatchString(c.Domain):
		p.errorf("edgeline:domain %q is not a DNS name like example.org", c.Domain)
	}
	for _, h := range []struct{ key, v string }{{"appHost", c.AppHost}, {"rancherHost", c.RancherHost}, {"apiHost", c.APIHost}} {
		if h.v != "" && !dnsNameRe.MatchString(h.v) {
			p.errorf("edgeline:%s %q is not a DNS name", h.key, h.v)
		}
	}
	if c.AppHost != "" && c.AppHost == c.RancherHost {
		p.errorf("edgeline:appHost and edgeline:rancherHost are both %q: give each its own name", c.AppHost)
	}
	if c.ACMEEmail == "" {
		p.errorf("edgeline:acmeEmail is missing: Let's Encrypt needs a contact address (pulumi config set edgeline:acmeEmail you@example.org)")
	} else if a, err := mail.ParseAddress(c.ACMEEmail); err != nil || a.Address != c.ACMEEmail || !strings.Contains(a.Address[strings.LastIndexByte(a.Address, '@')+1:], ".") {
		p.errorf("edgeline:acmeEmail %q is not an e-mail address like you@example.org", c.ACMEEmail)
	}
	switch c.Issuer {
	case "staging":
		c.Issuer = IssuerStaging
	case "production":
		c.Issuer = IssuerProduction
	case IssuerStaging, IssuerProduction:
	default:
		p.errorf("edgeline:issuer %q is neither staging nor production", c.Issuer)
	}
	c.validateCloud(p)
	c.validateSSH(p)
	switch c.Network {
	case NetworkWireguard:
		if c.VPNAuth != "" {
			p.errorf("edgeline:vpnAuth is set but edgeline:network is %s: set network to vpn-auth or remove vpnAuth", NetworkWireguard)
		}
	case NetworkVPNAuth:
		if c.VPNAuth == "" {
			p.errorf(`edgeline:network vpn-auth needs edgeline:vpnAuth (secret) like "name=tailscale,joinKey=KEY": set it with pulumi config set --secret`)
		} else {
			p.k3sProblems("edgeline:vpnAuth", k3s.ServerConfig{VPNAuth: c.VPNAuth}.Validate())
		}
	default:
		p.errorf("edgeline:network %q is neither wireguard-native nor vpn-auth", c.Network)
	}
	if !aptRepoRe.MatchString(c.TailscaleAptRepo) {
		p.errorf("edgeline:tailscaleAptRepo %q is not an https URL: give the base URL of Tailscale's stable apt repository (default %s) or of a mirror of it", c.TailscaleAptRepo, DefaultTailscaleAptRepo)
	}
	c.validateAgents(p)
	c.warnUnreachableAgents()
	c.warnNoTailscale()
	p.k3sProblems("edgeline:k3sVersion", k3s.Install{Version: c.Versions.K3s}.Validate())
	if !semverRe.MatchString(c.Versions.CertManager) {
		p.errorf("edgeline:certManagerVersion %q is not an exact version like v1.18.2", c.Versions.CertManager)
	}
	if !semverRe.MatchString(c.Versions.Rancher) {
		p.errorf("edgeline:rancherVersion %q is not an exact version like 2.12.1", c.Versions.Rancher)
	}
	if a := c.K3sAirGap; a != nil {
		p.k3sProblems("edgeline:k3sAirGap", k3s.Install{AirGap: &k3s.AirGap{Binary: a.Binary, Script: a.Script}}.Validate())
	}
	for _, ch := range []struct {
		key, v, digestKey, digest string
	}{
		{"certManagerChart", c.Charts.CertManager, "certManagerChartDigest", c.Charts.CertManagerDigest},
		{"rancherChart", c.Charts.Rancher, "rancherChartDigest", c.Charts.RancherDigest},
		{"faceloginChart", c.Charts.Facelogin, "", ""},
	} {
		switch {
		case ch.v == "":
			p.errorf("edgeline:%s is empty: give an oci:// reference, a chart repository URL or the chart's directory", ch.key)
		case strings.Contains(ch.v, "://") && !strings.HasPrefix(ch.v, "oci://") && !strings.HasPrefix(ch.v, "https://") && !strings.HasPrefix(ch.v, "http://"):
			p.errorf("edgeline:%s %q is neither an oci:// reference nor an http(s) chart repository URL", ch.key, ch.v)
		}
		if ch.digest != "" && !digestRe.MatchString(ch.digest) {
			p.errorf("edgeline:%s %q is not sha256:<64 hex digits> (sha256sum of the chart archive)", ch.digestKey, ch.digest)
		}
	}
	if c.Charts.LockFile == "" {
		p.errorf("edgeline:chartLockFile is empty: name the file that records the charts' digests (default charts.lock)")
	}
	if u := c.App.DatabaseURL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		p.errorf("edgeline:databaseUrl is not a postgres:// URL")
	}
	if !slices.Contains(placements, c.App.Placement) {
		p.errorf("edgeline:placement %q is not one of %s", c.App.Placement, strings.Join(placements, ", "))
	}
	c.validateImages(p)
}

// validateImages checks where the app's images come from: nothing is published under a
// name of the project's, so the repository is required (or both images in appValues).
func (c *Config) validateImages(p *parser) {
	a := &c.App
	switch {
	case a.ImageRepository == "" && !(valuesImage(a.Values, "api") && valuesImage(a.Values, "web")):
		p.errorf("edgeline:appImageRepository is missing: publish the app's images (edgeline images push --repository REGISTRY/PATH, docs/deploy.md) and set it to that REGISTRY/PATH")
	case a.ImageRepository != "" && !imageRepoRe.MatchString(a.ImageRepository):
		p.errorf("edgeline:appImageRepository %q is not REGISTRY/PATH like registry.example.org/team (a registry host first; no tag, no digest)", a.ImageRepository)
	}
	if a.ImageTag != "" && !imageTagRe.MatchString(a.ImageTag) {
		p.errorf("edgeline:appImageTag %q is not an image tag like v0.3.0", a.ImageTag)
	}
	for _, d := range []struct{ key, v string }{{"api", a.ImageDigests.API}, {"web", a.ImageDigests.Web}} {
		if d.v != "" && !digestRe.MatchString(d.v) {
			p.errorf("edgeline:appImageDigests.%s %q is not a digest like sha256:<64 hex digits> (edgeline images push prints them)", d.key, d.v)
		}
	}
}

// valuesImage reports whether chart values set <component>.image.repository.
func valuesImage(v map[string]any, component string) bool {
	c, _ := v[component].(map[string]any)
	img, _ := c["image"].(map[string]any)
	r, _ := img["repository"].(string)
	return r != ""
}

func (c *Config) validateCloud(p *parser) {
	cl := &c.Cloud
	switch cl.Source {
	case SourceNative, SourceTerraform:
		if !serverTypeRe.MatchString(cl.ServerType) {
			p.errorf("edgeline:serverType %q is not a Hetzner server type like cx22 or cax11", cl.ServerType)
		}
		if !locationRe.MatchString(cl.Location) {
			p.errorf("edgeline:location %q is not a Hetzner location like nbg1, fsn1, hel1 or ash", cl.Location)
		}
		if cl.Image == "" {
			p.errorf("edgeline:image is empty: name an OS image like ubuntu-24.04")
		}
		switch cl.DNS {
		case "hetzner", "none":
		case "cloudflare":
			if cl.Source != SourceTerraform {
				p.errorf("edgeline:dns cloudflare needs edgeline:cloud terraform: the native source writes records to Hetzner DNS only")
			}
			if cl.CloudflareZoneID == "" {
				p.errorf("edgeline:dns cloudflare needs edgeline:cloudflareZoneId (the zone ID on the domain's Cloudflare overview page)")
			}
		default:
			p.errorf("edgeline:dns %q is not hetzner, cloudflare or none", cl.DNS)
		}
		if cl.Source == SourceNative && cl.HcloudToken == "" {
			p.errorf("edgeline:hcloudToken is missing: create an API token in the Hetzner Cloud console and set it with pulumi config set --secret edgeline:hcloudToken (or export HCLOUD_TOKEN)")
		}
		if cl.HostKey != "" {
			if _, err := ssh.ParseRawPrivateKey([]byte(cl.HostKey)); err != nil {
				p.errorf("edgeline:hostKey is not an unencrypted OpenSSH private key: %v", err)
			}
		}
		if cl.HostKeyFingerprint != "" && !remote.ValidFingerprint(cl.HostKeyFingerprint) {
			p.errorf("edgeline:hostKeyFingerprint %q is not an SSH fingerprint like SHA256:... (on the VPS's console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)", cl.HostKeyFingerprint)
		}
		if cl.Source == SourceTerraform && cl.TerraformDir == "" {
			p.errorf("edgeline:terraformDir is empty: name the Terraform module directory")
		}
	case SourceExisting:
		for _, k := range []struct {
			key string
			set bool
		}{{"sshSourceCidrs", cl.SSHSources != nil}, {"apiSourceCidrs", cl.APISources != nil}} {
			if k.set {
				p.errorf("edgeline:%s sets the firewall of a new VPS, but edgeline:cloud is existing: open the ports on your host's firewall yourself (docs/deploy.md) and remove the key", k.key)
			}
		}
		if cl.HostKeyRotation != "" {
			p.errorf("edgeline:hostKeyRotation replaces the host key of a VPS edgeline created, but edgeline:cloud is existing: rotate your host's key yourself, set edgeline:hostKeyFingerprint to the new one and remove edgeline:hostKeyRotation")
		}
		if net.ParseIP(cl.Address) == nil || net.ParseIP(cl.Address).To4() == nil {
			p.errorf("edgeline:address %q is not an IPv4 address: the existing source needs the host's public IPv4", cl.Address)
		}
		if cl.IPv6 != "" && (net.ParseIP(cl.IPv6) == nil || net.ParseIP(cl.IPv6).To4() != nil) {
			p.errorf("edgeline:ipv6 %q is not an IPv6 address", cl.IPv6)
		}
		if !remote.ValidFingerprint(cl.HostKeyFingerprint) {
			p.errorf("edgeline:hostKeyFingerprint %q is not an SSH fingerprint like SHA256:... (ssh-keyscan HOST | ssh-keygen -lf -)", cl.HostKeyFingerprint)
		}
	default:
		p.errorf("edgeline:cloud %q is not native, terraform or existing", cl.Source)
	}
	if u := cl.DiscoveryURL; !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		p.errorf("edgeline:addressDiscoveryUrl %q is not an http(s) URL", u)
	}
	if cl.HcloudEndpoint != "" && !strings.HasPrefix(cl.HcloudEndpoint, "http://") && !strings.HasPrefix(cl.HcloudEndpoint, "https://") {
		p.errorf("edgeline:hcloudEndpoint %q is not an http(s) URL", cl.HcloudEndpoint)
	}
}

func (c *Config) validateSSH(p *parser) {
	s := &c.SSH
	if s.Port < 1 || s.Port > 65535 {
		p.errorf("edgeline:sshPort %d is not a TCP port", s.Port)
	}
	if s.User == "" || strings.ContainsAny(s.User, " @:/") {
		p.errorf("edgeline:sshUser %q is not a user name", s.User)
	}
	if s.KeyFile == "" {
		p.errorf("edgeline:sshKeyFile is missing: name the private key that logs in to the VPS and the agents (e.g. ~/.ssh/id_ed25519)")
	}
	if s.ConnectRetries < 0 {
		p.errorf("edgeline:sshRetries %d is negative: 0 tries once, 15 (the default) rides out a booting VPS", s.ConnectRetries)
	}
	if a := s.AgentSocket; a != "" && !strings.HasPrefix(a, "/") && !strings.HasPrefix(a, "~/") {
		p.errorf("edgeline:sshAgentSocket %q is not an absolute path: give the agent's socket as ssh-agent prints it (SSH_AUTH_SOCK=/tmp/ssh-.../agent.123)", a)
	}
	if s.PublicKey != "" {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.PublicKey)); err != nil {
			p.errorf("edgeline:sshPublicKey is not an authorized_keys line: %v", err)
		}
	}
}

func (c *Config) validateAgents(p *parser) {
	names := map[string]bool{}
	for i := range c.Agents {
		a := &c.Agents[i]
		at := fmt.Sprintf("edgeline:agents[%d]", i)
		switch {
		case a.Name == "":
			p.errorf("%s.name is missing: name the node, like pi-hall-1", at)
		case names[a.Name]:
			p.errorf("%s.name %q is used twice", at, a.Name)
		}
		names[a.Name] = true
		at = fmt.Sprintf("%s (%s)", at, a.Name)
		if a.Host == "" {
			p.errorf("%s.host is missing", at)
		} else if err := (remote.Config{Host: a.Host, Port: a.Port}).Validate(); err != nil {
			p.errorf("%s: %v", at, err)
		}
		a.Port = cmp.Or(a.Port, remote.DefaultPort)
		a.User = cmp.Or(a.User, remote.DefaultUser)
		a.Site = cmp.Or(a.Site, a.Name)
		if a.jump != "" {
			j, err := remote.ParseEndpoint(a.jump)
			if err != nil {
				p.errorf("%s.jump %v", at, err)
			} else {
				a.Jump = &j
			}
		}
		if a.HostKeyFingerprint != "" && !remote.ValidFingerprint(a.HostKeyFingerprint) {
			p.errorf("%s.hostKeyFingerprint %q is not like SHA256:... (ssh-keygen -lf prints it)", at, a.HostKeyFingerprint)
		}
		if a.HostKeyFingerprint == "" && c.SSH.KnownHostsFile == "" {
			p.errorf("%s has no hostKeyFingerprint and edgeline:knownHostsFile is not set: host keys are always verified", at)
		}
		if c.Network == NetworkWireguard && a.ExternalIP == "" && (a.Jump != nil || !publicAddress(a.Host)) {
			p.errorf("%s has no public address (host %s, no externalIP): edgeline:network wireguard-native needs one on every Pi; for Pis behind NAT set edgeline:network vpn-auth and edgeline:vpnAuth (docs/edge-nodes.md), or give the Pi's public address as externalIP", at, a.Host)
		}
		p.k3sProblems(at, k3s.AgentConfig{NodeName: a.Name, Site: a.Site, Labels: a.Labels, Taints: a.Taints, NodeExternalIP: a.ExternalIP}.Validate())
		if a.Prepare != nil {
			for _, k := range slices.Sorted(maps.Keys(a.Prepare.Vars)) {
				switch {
				case !slices.Contains(roleVars, k):
					p.errorf("%s.prepare.vars: %s is not a variable of the edge_node role (%s)", at, k, strings.Join(roleVars, ", "))
				case slices.Contains(TailscaleVars, k):
					p.errorf("%s.prepare.vars: %s is set by edgeline from edgeline:network and edgeline:tailscaleAptRepo: remove it", at, k)
				}
			}
		}
	}
}

// warnUnreachableAgents warns when the firewall's default API list (the deployer's
// address and the agents' externalIPs) leaves out agents that join from an address of
// their own: behind NAT, k3s on a Pi reaches the server's public address from its site's.
func (c *Config) warnUnreachableAgents() {
	if c.Cloud.Source == SourceExisting || c.Cloud.APISources != nil {
		return
	}
	var names []string
	for _, a := range c.Agents {
		if a.ExternalIP == "" {
			names = append(names, a.Name)
		}
	}
	if len(names) > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("edgeline:apiSourceCidrs is not set, so the firewall lets only this machine's address in to the k3s API: agents %s join from their site's address; add it to edgeline:apiSourceCidrs unless they share this machine's", strings.Join(names, ", ")))
	}
}

// warnNoTailscale names, in vpn-auth mode, the machines edgeline does not install
// tailscale on: an existing VPS (no cloud-init) and agents without a prepare step.
func (c *Config) warnNoTailscale() {
	if c.Network != NetworkVPNAuth {
		return
	}
	if c.Cloud.Source == SourceExisting {
		c.Warnings = append(c.Warnings, "edgeline:network is vpn-auth and edgeline:cloud is existing: edgeline does not install tailscale on an existing host, install it there yourself (docs/edge-nodes.md)")
	}
	var names []string
	for _, a := range c.Agents {
		if a.Prepare == nil {
			names = append(names, a.Name)
		}
	}
	if len(names) > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("edgeline:network is vpn-auth but agents %s have no prepare step, so edgeline does not install tailscale on them: add \"prepare\": {} or install it yourself", strings.Join(names, ", ")))
	}
}

// publicAddress reports whether host is known to be reachable from the internet: a
// public IP literal, or a name (which the operator vouches for).
func publicAddress(host string) bool {
	a, err := netip.ParseAddr(host)
	return err != nil || allowlist.Public(a)
}

// aptRepoRe is an https URL that the cloud-init script and the edge_node role can use
// unquoted (the role checks the same characters).
var aptRepoRe = regexp.MustCompile(`^https://[A-Za-z0-9][-A-Za-z0-9._~:/%@+]*$`)

// roleVars are the variables the edge_node role takes.
var roleVars = ansible.Variables()
