// Package stackconfig is the typed configuration of an edgeline stack: what the Pulumi
// program and cmd/edgeline read from the stack's config (the "edgeline:" keys of
// Pulumi.<stack>.yaml), parsed and validated in one place before anything remote changes.
package stackconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Namespace is the config namespace of every key ("edgeline:domain").
const Namespace = "edgeline"

// Cloud sources: where the VPS comes from.
const (
	SourceNative    = "native"    // Hetzner Cloud through its API
	SourceTerraform = "terraform" // the Terraform module in infra/terraform
	SourceExisting  = "existing"  // an already running host
)

// Network modes: how edge agents behind NAT reach the server.
const (
	NetworkWireguard = "wireguard-native" // flannel over WireGuard between public IPs
	NetworkVPNAuth   = "vpn-auth"         // a Tailscale/Headscale tailnet
)

// Issuers the ingresses request certificates from.
const (
	IssuerStaging    = "letsencrypt-staging"
	IssuerProduction = "letsencrypt-prod"
)

// Placement presets of the face-login chart.
var placements = []string{"cloud-only", "edge-preferred", "anywhere"}

// Config is a validated stack configuration.
type Config struct {
	// Domain is the DNS zone the hostnames live in, e.g. "example.org".
	Domain string
	// AppHost, RancherHost and APIHost are the public names of the face-login app,
	// Rancher and the k3s API server; they default to login., rancher. and k3s. + Domain.
	AppHost, RancherHost, APIHost string
	// ACMEEmail is the contact address registered with Let's Encrypt.
	ACMEEmail string
	// Issuer is the ClusterIssuer the ingresses use (staging or production).
	Issuer string
	// CloudflareAPIToken, when set, adds a DNS-01 solver (Cloudflare) for Domain to the
	// issuers (a secret).
	CloudflareAPIToken string

	// Cloud says where the VPS comes from.
	Cloud Cloud
	// SSH says how to log in to the VPS.
	SSH SSH
	// Agents are the edge nodes joined to the cluster.
	Agents []Agent
	// Network is NetworkWireguard or NetworkVPNAuth.
	Network string
	// VPNAuth is k3s's vpn-auth value in vpn-auth mode (a secret).
	VPNAuth string
	// Versions pins what gets installed.
	Versions Versions
	// K3sAirGap, when set, uploads k3s from the workstation instead of downloading it.
	K3sAirGap *AirGap
	// Charts says where the platform's and the app's charts come from.
	Charts Charts
	// App configures the face-login release.
	App App
	// Kubeconfig, when set, is used for the Helm releases instead of the one k3s wrote
	// (a secret): for clusters reached through a tunnel or VPN.
	Kubeconfig string
	// HelmWait makes each release wait until its workloads are ready before the next
	// layer starts; default true.
	HelmWait bool
}

// Cloud configures the VPS and its DNS records.
type Cloud struct {
	// Source is SourceNative, SourceTerraform or SourceExisting.
	Source string
	// ServerType and Location are the Hetzner server type and location (native, terraform).
	ServerType, Location string
	// Image is the operating system image (native, terraform).
	Image string
	// HcloudToken is the Hetzner Cloud API token (a secret); empty means $HCLOUD_TOKEN.
	HcloudToken string
	// HcloudEndpoint overrides the Hetzner Cloud API URL (tests, proxies).
	HcloudEndpoint string
	// DNS is "hetzner" (records in the Hetzner zone of Domain), "cloudflare" (terraform
	// source only) or "none".
	DNS string
	// CloudflareZoneID is the Cloudflare zone of Domain when DNS is "cloudflare".
	CloudflareZoneID string
	// TerraformDir is the Terraform module the terraform source applies.
	TerraformDir string
	// TerraformBinary is the terraform or tofu executable; empty means "tofu" on PATH.
	TerraformBinary string
	// Address, IPv6 and HostKeyFingerprint describe the existing host (SourceExisting).
	Address, IPv6, HostKeyFingerprint string
	// HostKey is the VPS's SSH host key (OpenSSH private key, a secret) that cloud-init
	// installs on a new server; empty means one is generated.
	HostKey string
}

// SSH says how to log in to the VPS.
type SSH struct {
	// User is the login user; default "root".
	User string
	// Port is the SSH port; default 22.
	Port int
	// KeyFile is the private key on the workstation or CI runner.
	KeyFile string
	// PublicKey is KeyFile's public key in authorized_keys format; it is installed on
	// new servers. Derived from KeyFile when empty.
	PublicKey string
	// KnownHostsFile verifies agents (and jump hosts) without a pinned fingerprint.
	KnownHostsFile string
}

// Agent is one edge node.
type Agent struct {
	// Name is the node name, unique in the stack.
	Name string `json:"name"`
	// Host and Port are where its sshd listens; User logs in (default "root").
	Host string `json:"host"`
	Port int    `json:"port,omitempty"`
	User string `json:"user,omitempty"`
	// Jump is a bastion as [user@]host[:port], for Pis in a factory LAN.
	Jump string `json:"jump,omitempty"`
	// HostKeyFingerprint pins the agent's host key ("SHA256:...").
	HostKeyFingerprint string `json:"hostKeyFingerprint,omitempty"`
	// Site names where it stands (the edgeline.io/site label); default Name.
	Site string `json:"site,omitempty"`
	// Labels and Taints replace the edge defaults when given.
	Labels map[string]string `json:"labels,omitempty"`
	Taints []string          `json:"taints,omitempty"`
	// ExternalIP is the agent's public address (wireguard-native across NAT).
	ExternalIP string `json:"externalIP,omitempty"`
}

// Versions pins what gets installed.
type Versions struct {
	K3s, CertManager, Rancher string
}

// AirGap names the k3s files on the workstation for air-gapped installs.
type AirGap struct {
	Binary string `json:"binary"`
	Script string `json:"script"`
}

// Charts says where each chart comes from: a local directory or .tgz, or a chart
// repository URL (with the chart name and version from Versions).
type Charts struct {
	CertManager, Rancher, Facelogin string
}

// App configures the face-login release.
type App struct {
	// Placement is the chart's placement preset for web and api.
	Placement string
	// DatabaseURL is an external PostgreSQL URL (a secret); empty means the chart's
	// built-in PostgreSQL, whose password the chart generates and keeps in the cluster.
	DatabaseURL string
	// Values are extra chart values (JSON object), merged over the derived ones.
	Values map[string]any
}

// Getter returns the value of a config key (without namespace) and whether it is set.
// Structured values are JSON, as Pulumi hands them out.
type Getter func(key string) (string, bool)

// Keys lists every config key the stack reads, for docs and unknown-key checks.
var Keys = []string{
	"domain", "appHost", "rancherHost", "apiHost", "acmeEmail", "issuer", "cloudflareApiToken",
	"cloud", "serverType", "location", "image", "hcloudToken", "hcloudEndpoint", "dns", "cloudflareZoneId",
	"terraformDir", "terraformBinary", "address", "ipv6", "hostKeyFingerprint", "hostKey",
	"sshUser", "sshPort", "sshKeyFile", "sshPublicKey", "knownHostsFile",
	"agents", "network", "vpnAuth",
	"k3sVersion", "certManagerVersion", "rancherVersion", "k3sAirGap",
	"certManagerChart", "rancherChart", "faceloginChart",
	"placement", "databaseUrl", "appValues", "kubeconfig", "helmWait",
}

// SecretKeys are the keys whose values must be stored as Pulumi secrets.
var SecretKeys = []string{"hcloudToken", "hostKey", "vpnAuth", "databaseUrl", "kubeconfig", "cloudflareApiToken"}

// Parse reads the configuration through get, fills in defaults and validates it. The
// error lists every problem found, one sentence each, so a user fixes them in one go.
func Parse(get Getter) (*Config, error) {
	p := parser{get: get}
	c := &Config{
		Domain:             strings.ToLower(p.str("domain", "")),
		ACMEEmail:          p.str("acmeEmail", ""),
		Issuer:             p.str("issuer", IssuerProduction),
		CloudflareAPIToken: p.str("cloudflareApiToken", ""),
		Network:            p.str("network", NetworkWireguard),
		VPNAuth:            p.str("vpnAuth", ""),
		Cloud: Cloud{
			Source:             p.str("cloud", SourceNative),
			ServerType:         p.str("serverType", "cx22"),
			Location:           p.str("location", "nbg1"),
			Image:              p.str("image", "ubuntu-24.04"),
			HcloudToken:        p.str("hcloudToken", os.Getenv("HCLOUD_TOKEN")),
			HcloudEndpoint:     p.str("hcloudEndpoint", ""),
			DNS:                p.str("dns", "hetzner"),
			CloudflareZoneID:   p.str("cloudflareZoneId", ""),
			TerraformDir:       p.str("terraformDir", "terraform"),
			TerraformBinary:    p.str("terraformBinary", ""),
			Address:            p.str("address", ""),
			IPv6:               p.str("ipv6", ""),
			HostKeyFingerprint: p.str("hostKeyFingerprint", ""),
			HostKey:            p.str("hostKey", ""),
		},
		SSH: SSH{
			User:           p.str("sshUser", "root"),
			Port:           p.integer("sshPort", 22),
			KeyFile:        p.str("sshKeyFile", ""),
			PublicKey:      p.str("sshPublicKey", ""),
			KnownHostsFile: p.str("knownHostsFile", ""),
		},
		Versions: Versions{
			K3s:         p.str("k3sVersion", "v1.33.4+k3s1"),
			CertManager: p.str("certManagerVersion", "v1.18.2"),
			Rancher:     p.str("rancherVersion", "2.12.1"),
		},
		Charts: Charts{
			CertManager: p.str("certManagerChart", ""),
			Rancher:     p.str("rancherChart", ""),
			Facelogin:   p.str("faceloginChart", "../charts/facelogin"),
		},
		App:        App{Placement: p.str("placement", "edge-preferred"), DatabaseURL: p.str("databaseUrl", "")},
		Kubeconfig: p.str("kubeconfig", ""),
		HelmWait:   p.boolean("helmWait", true),
	}
	c.AppHost = strings.ToLower(p.str("appHost", prefixed("login", c.Domain)))
	c.RancherHost = strings.ToLower(p.str("rancherHost", prefixed("rancher", c.Domain)))
	c.APIHost = strings.ToLower(p.str("apiHost", prefixed("k3s", c.Domain)))
	p.object("agents", &c.Agents)
	p.object("appValues", &c.App.Values)
	if _, ok := get("k3sAirGap"); ok {
		c.K3sAirGap = &AirGap{}
		p.object("k3sAirGap", c.K3sAirGap)
	}
	c.validate(&p)
	if len(p.errs) > 0 {
		return nil, &Error{Problems: p.errs}
	}
	return c, nil
}

// Error reports every problem of a configuration.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "stack config: " + e.Problems[0]
	}
	return "stack config has " + strconv.Itoa(len(e.Problems)) + " problems:\n  - " + strings.Join(e.Problems, "\n  - ")
}

func prefixed(label, domain string) string {
	if domain == "" {
		return ""
	}
	return label + "." + domain
}

type parser struct {
	get  Getter
	errs []string
}

func (p *parser) errorf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Sprintf(format, args...))
}

func (p *parser) str(key, def string) string {
	v, ok := p.get(key)
	if !ok || v == "" {
		return def
	}
	return strings.TrimSpace(v)
}

func (p *parser) integer(key string, def int) int {
	v, ok := p.get(key)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		p.errorf("%s:%s %q is not a whole number", Namespace, key, v)
		return def
	}
	return n
}

func (p *parser) boolean(key string, def bool) bool {
	v, ok := p.get(key)
	if !ok || v == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		p.errorf("%s:%s %q is neither true nor false", Namespace, key, v)
		return def
	}
	return b
}

func (p *parser) object(key string, dst any) {
	v, ok := p.get(key)
	if !ok || v == "" {
		return
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		p.errorf("%s:%s is not valid: %v (set it with `pulumi config set --path` or as YAML in Pulumi.<stack>.yaml)", Namespace, key, err)
	}
}

var (
	dnsNameRe     = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
	nodeNameRe    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	serverTypeRe  = regexp.MustCompile(`^[a-z]+[0-9]+[a-z]*$`)
	locationRe    = regexp.MustCompile(`^[a-z]{3}[0-9]$`)
	k3sVersionRe  = regexp.MustCompile(`^v\d+\.\d+\.\d+(-rc\d+)?\+k3s\d+$`)
	semverRe      = regexp.MustCompile(`^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	fingerprintRe = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)
)

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
		if !strings.HasPrefix(c.VPNAuth, "name=tailscale") {
			p.errorf(`edgeline:network vpn-auth needs edgeline:vpnAuth (secret) like "name=tailscale,joinKey=KEY": set it with pulumi config set --secret`)
		}
	default:
		p.errorf("edgeline:network %q is neither wireguard-native nor vpn-auth", c.Network)
	}
	c.validateAgents(p)
	if !k3sVersionRe.MatchString(c.Versions.K3s) {
		p.errorf("edgeline:k3sVersion %q is not a k3s release like v1.33.4+k3s1", c.Versions.K3s)
	}
	if !semverRe.MatchString(c.Versions.CertManager) {
		p.errorf("edgeline:certManagerVersion %q is not a version like v1.18.2", c.Versions.CertManager)
	}
	if !semverRe.MatchString(c.Versions.Rancher) {
		p.errorf("edgeline:rancherVersion %q is not a version like 2.12.1", c.Versions.Rancher)
	}
	if a := c.K3sAirGap; a != nil && (a.Binary == "" || a.Script == "") {
		p.errorf("edgeline:k3sAirGap needs both binary and script (paths on this machine)")
	}
	for _, ch := range []struct{ key, v, fetch string }{
		{"certManagerChart", c.Charts.CertManager, "helm pull oci://quay.io/jetstack/charts/cert-manager --version " + c.Versions.CertManager + " --untar -d vendor"},
		{"rancherChart", c.Charts.Rancher, "helm repo add rancher-stable https://releases.rancher.com/server-charts/stable && helm pull rancher-stable/rancher --version " + c.Versions.Rancher + " --untar -d vendor"},
		{"faceloginChart", c.Charts.Facelogin, ""},
	} {
		switch {
		case ch.v == "" && ch.fetch != "":
			p.errorf("edgeline:%s is missing: fetch the chart once (%s) and set it to the directory", ch.key, ch.fetch)
		case ch.v == "":
			p.errorf("edgeline:%s is empty: give the chart's directory", ch.key)
		case strings.Contains(ch.v, "://"):
			p.errorf("edgeline:%s %q is a URL: charts are installed from a local directory or .tgz; fetch it with helm pull and give the path", ch.key, ch.v)
		}
	}
	if u := c.App.DatabaseURL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		p.errorf("edgeline:databaseUrl is not a postgres:// URL")
	}
	if !slices.Contains(placements, c.App.Placement) {
		p.errorf("edgeline:placement %q is not one of %s", c.App.Placement, strings.Join(placements, ", "))
	}
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
		if cl.Source == SourceTerraform && cl.TerraformDir == "" {
			p.errorf("edgeline:terraformDir is empty: name the Terraform module directory")
		}
	case SourceExisting:
		if net.ParseIP(cl.Address) == nil || net.ParseIP(cl.Address).To4() == nil {
			p.errorf("edgeline:address %q is not an IPv4 address: the existing source needs the host's public IPv4", cl.Address)
		}
		if cl.IPv6 != "" && (net.ParseIP(cl.IPv6) == nil || net.ParseIP(cl.IPv6).To4() != nil) {
			p.errorf("edgeline:ipv6 %q is not an IPv6 address", cl.IPv6)
		}
		if !fingerprintRe.MatchString(cl.HostKeyFingerprint) {
			p.errorf("edgeline:hostKeyFingerprint %q is not an SSH fingerprint like SHA256:... (ssh-keyscan HOST | ssh-keygen -lf -)", cl.HostKeyFingerprint)
		}
	default:
		p.errorf("edgeline:cloud %q is not native, terraform or existing", cl.Source)
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
	if s.PublicKey != "" {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.PublicKey)); err != nil {
			p.errorf("edgeline:sshPublicKey is not an authorized_keys line: %v", err)
		}
	}
}

func (c *Config) validateAgents(p *parser) {
	names := map[string]bool{}
	for i, a := range c.Agents {
		at := fmt.Sprintf("edgeline:agents[%d]", i)
		if !nodeNameRe.MatchString(a.Name) {
			p.errorf("%s.name %q is not a lowercase node name like pi-hall-1", at, a.Name)
		} else if names[a.Name] {
			p.errorf("%s.name %q is used twice", at, a.Name)
		}
		names[a.Name] = true
		if a.Host == "" {
			p.errorf("%s (%s).host is missing", at, a.Name)
		}
		if a.Port == 0 {
			c.Agents[i].Port = 22
		} else if a.Port < 0 || a.Port > 65535 {
			p.errorf("%s (%s).port %d is not a TCP port", at, a.Name, a.Port)
		}
		if a.User == "" {
			c.Agents[i].User = "root"
		}
		if a.Site == "" {
			c.Agents[i].Site = a.Name
		}
		if a.Jump != "" {
			if _, err := ParseJump(a.Jump); err != nil {
				p.errorf("%s (%s).jump: %v", at, a.Name, err)
			}
		}
		if a.HostKeyFingerprint != "" && !fingerprintRe.MatchString(a.HostKeyFingerprint) {
			p.errorf("%s (%s).hostKeyFingerprint %q is not like SHA256:...", at, a.Name, a.HostKeyFingerprint)
		}
		if a.HostKeyFingerprint == "" && c.SSH.KnownHostsFile == "" {
			p.errorf("%s (%s) has no hostKeyFingerprint and edgeline:knownHostsFile is not set: host keys are always verified", at, a.Name)
		}
		for _, t := range a.Taints {
			if err := checkTaint(t); err != nil {
				p.errorf("%s (%s).taints: %v", at, a.Name, err)
			}
		}
		if a.ExternalIP != "" && net.ParseIP(a.ExternalIP) == nil {
			p.errorf("%s (%s).externalIP %q is not an IP address", at, a.Name, a.ExternalIP)
		}
	}
}

func checkTaint(s string) error {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return fmt.Errorf("taint %q is not key=value:Effect", s)
	}
	switch s[i+1:] {
	case "NoSchedule", "PreferNoSchedule", "NoExecute":
		return nil
	}
	return fmt.Errorf("taint %q: effect must be NoSchedule, PreferNoSchedule or NoExecute", s)
}

// Jump is a parsed bastion address.
type Jump struct {
	User string
	Host string
	Port int
}

// ParseJump parses [user@]host[:port].
func ParseJump(s string) (Jump, error) {
	j := Jump{User: "root", Port: 22}
	if u, rest, ok := strings.Cut(s, "@"); ok {
		j.User, s = u, rest
	}
	if h, port, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return Jump{}, fmt.Errorf("jump host %q has a bad port", s)
		}
		j.Host, j.Port = h, n
	} else {
		j.Host = s
	}
	if j.Host == "" || j.User == "" || strings.ContainsAny(j.Host, " /") {
		return Jump{}, errors.New("jump host is not [user@]host[:port]")
	}
	return j, nil
}
