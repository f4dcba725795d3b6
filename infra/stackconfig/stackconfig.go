// Package stackconfig is the typed configuration of an edgeline stack: what the Pulumi
// program and cmd/edgeline read from the stack's config (the "edgeline:" keys of
// Pulumi.<stack>.yaml), parsed and validated in one place before anything remote changes.
// The rest of the code receives the parsed values (a jump host as a remote.Endpoint, SSH
// defaults filled in) and parses nothing again.
package stackconfig

import (
	"maps"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/edgeline/edgeline/infra/allowlist"
	"github.com/edgeline/edgeline/internal/remote"
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
	// TailscaleAptRepo is the base URL of Tailscale's stable apt repository (https, no
	// trailing slash; DefaultTailscaleAptRepo): in vpn-auth mode, cloud-init installs
	// tailscale from it on a new VPS and the edge_node role on every prepared agent.
	TailscaleAptRepo string
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
	// HelmTimeout bounds each release's install, upgrade and wait (DefaultHelmTimeout);
	// HelmTimeouts overrides it per release name (ReleaseNames).
	HelmTimeout  time.Duration
	HelmTimeouts map[string]time.Duration

	// Warnings are findings that do not stop a run (a secret stored in plain text),
	// one sentence each, for the caller to show.
	Warnings []string
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
	// For a new server, HostKeyFingerprint is the key it has now, read on its console
	// after the key changed outside edgeline: pinned once, instead of the recorded one.
	Address, IPv6, HostKeyFingerprint string
	// HostKey is the VPS's first SSH host key (OpenSSH private key, a secret) that
	// cloud-init installs on a new server; empty means one is generated. edgeline
	// replaces it on the server after the first verified login.
	HostKey string
	// HostKeyRotation asks for a new host key on the VPS whenever it changes (native,
	// terraform).
	HostKeyRotation string
	// SSHSources and APISources are the networks the firewall lets in to SSH (TCP 22)
	// and the k3s API (TCP 6443) (native, terraform); nil means the deployer's address
	// (see Firewall). allowlist.Everyone only when the stack config says 0.0.0.0/0.
	SSHSources, APISources []netip.Prefix
	// DeployerAddress is the public address edgeline runs from, when given; the zero
	// Addr means it is discovered at DiscoveryURL when a firewall list needs it.
	DeployerAddress netip.Addr
	// DiscoveryURL answers with the caller's public address (allowlist.Discover).
	DiscoveryURL string
}

// NeedsDeployerAddress reports whether Firewall needs the deployer's address and none
// was given: the program then discovers it before registering the VPS.
func (c *Config) NeedsDeployerAddress() bool {
	cl := c.Cloud
	return cl.Source != SourceExisting && !cl.DeployerAddress.IsValid() && (cl.SSHSources == nil || cl.APISources == nil)
}

// Firewall returns the networks let in to SSH and to the k3s API. A list the stack
// config leaves out is the deployer's address (given, else the discovered one passed
// as deployer); the API list also holds every agent's externalIP, from where an agent
// with a public address reaches the server.
func (c *Config) Firewall(deployer netip.Addr) (ssh, api []netip.Prefix) {
	if c.Cloud.DeployerAddress.IsValid() {
		deployer = c.Cloud.DeployerAddress
	}
	ssh, api = c.Cloud.SSHSources, c.Cloud.APISources
	if ssh == nil && deployer.IsValid() {
		ssh = []netip.Prefix{allowlist.Host(deployer)}
	}
	if c.Cloud.APISources == nil {
		if deployer.IsValid() {
			api = []netip.Prefix{allowlist.Host(deployer)}
		}
		for _, a := range c.Agents {
			if ip, err := netip.ParseAddr(a.ExternalIP); err == nil {
				api = append(api, allowlist.Host(ip))
			}
		}
		api = allowlist.Normalize(api)
	}
	return ssh, api
}

// SSH says how to log in to the VPS.
type SSH struct {
	// User is the login user; default remote.DefaultUser.
	User string
	// Port is the SSH port; default remote.DefaultPort.
	Port int
	// KeyFile is the private key on the workstation or CI runner.
	KeyFile string
	// PublicKey is KeyFile's public key in authorized_keys format; it is installed on
	// new servers. Derived from KeyFile when empty.
	PublicKey string
	// KnownHostsFile verifies agents (and jump hosts) without a pinned fingerprint.
	KnownHostsFile string
	// AgentSocket is the ssh-agent holding KeyFile's key when the file has a passphrase
	// or is not on this machine; empty means $SSH_AUTH_SOCK where the provider runs.
	AgentSocket string
	// ConnectTimeout bounds each connection attempt; ConnectRetries is how many more
	// attempts follow a failed connection (cold VPS: sshd starts after cloud-init).
	ConnectTimeout time.Duration
	ConnectRetries int
}

// Agent is one edge node. In the stack config it is a JSON object with the keys named
// in the tags.
type Agent struct {
	// Name is the node name, unique in the stack.
	Name string `json:"name"`
	// Host and Port are where its sshd listens (Port default remote.DefaultPort); User
	// logs in (default remote.DefaultUser).
	Host string `json:"host"`
	Port int    `json:"port,omitempty"`
	User string `json:"user,omitempty"`
	// Jump is the bastion for Pis in a factory LAN, written [user@]host[:port] under
	// "jump"; nil means none.
	Jump *remote.Endpoint `json:"-"`
	// HostKeyFingerprint pins the agent's host key ("SHA256:...").
	HostKeyFingerprint string `json:"hostKeyFingerprint,omitempty"`
	// Site names where it stands (the edgeline.io/site label); default Name.
	Site string `json:"site,omitempty"`
	// Labels and Taints replace the edge defaults when given.
	Labels map[string]string `json:"labels,omitempty"`
	Taints []string          `json:"taints,omitempty"`
	// ExternalIP is the agent's public address (wireguard-native across NAT).
	ExternalIP string `json:"externalIP,omitempty"`
	// Prepare, when set, runs the Pi preparation on the agent before it joins.
	Prepare *Prepare `json:"prepare,omitempty"`

	jump string // "jump" as written, parsed by Parse
}

// Prepare asks the provisioner to run the Pi preparation (the edge_node role of
// ansible/site.yml) on an agent, over the agent's SSH connection, before it joins.
type Prepare struct {
	// Vars are the role's variables (ansible/roles/edge_node/defaults/main.yml).
	Vars map[string]any `json:"vars,omitempty"`
	// Check only verifies that the Pi is prepared, changing nothing on it: the agent
	// does not join while the role would change anything.
	Check bool `json:"check,omitempty"`
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

// Defaults fit for a cold VPS: its first image pulls (Rancher's are ≈ 1 GB) outlast
// Helm's 5 minutes, and sshd answers only after cloud-init has run.
const (
	DefaultHelmTimeout       = 15 * time.Minute
	DefaultSSHConnectTimeout = 30 * time.Second
	DefaultSSHRetries        = 15
)

// DefaultTailscaleAptRepo is Tailscale's official stable apt repository; its
// <ID>/<CODENAME>.noarmor.gpg is the signing key (pkgs.tailscale.com/stable).
const DefaultTailscaleAptRepo = "https://pkgs.tailscale.com/stable"

// TailscaleVars are the edge_node role's variables that edgeline derives from
// edgeline:network and edgeline:tailscaleAptRepo: an agent's prepare.vars may not set them.
var TailscaleVars = []string{"edge_tailscale", "edge_tailscale_repo"}

// PrepareVars are the edge_node role's variables for agent a's prepare step: its
// prepare.vars, plus, in vpn-auth mode, the ones that install tailscale from
// TailscaleAptRepo. nil when a has no prepare step.
func (c *Config) PrepareVars(a Agent) map[string]any {
	if a.Prepare == nil {
		return nil
	}
	vars := maps.Clone(a.Prepare.Vars)
	if vars == nil {
		vars = map[string]any{}
	}
	if c.Network == NetworkVPNAuth {
		vars["edge_tailscale"] = true
		vars["edge_tailscale_repo"] = c.TailscaleAptRepo
	}
	return vars
}

// ReleaseNames are the Helm releases the stack installs, as helmTimeouts names them.
var ReleaseNames = []string{"cert-manager", "edgeline-issuers", "rancher", "facelogin"}

// ReleaseTimeout is the timeout of the release called name.
func (c *Config) ReleaseTimeout(name string) time.Duration {
	if d, ok := c.HelmTimeouts[name]; ok {
		return d
	}
	return c.HelmTimeout
}

// DefaultServerType holds what the VPS carries (k3s, Traefik, cert-manager, Rancher,
// the web pods and PostgreSQL; docs/deploy.md, "Sizing the VPS"): 4 vCPU, 8 GB.
const DefaultServerType = "cx32"

// Charts says where each chart comes from: a local directory or .tgz, an oci://
// reference, or a chart repository URL (the chart named as its release, at the version
// from Versions), and how pulled charts are checked and kept.
type Charts struct {
	CertManager, Rancher, Facelogin string
	// CertManagerDigest and RancherDigest pin the archives ("sha256:..."); empty means
	// the digests LockFile records on the first pull.
	CertManagerDigest, RancherDigest string
	// LockFile records the digests of pulled charts (relative to the project directory).
	LockFile string
	// CacheDir keeps verified archives; empty means the user's cache directory.
	CacheDir string
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
	// ImageRepository is the registry and path the app's images were pushed under
	// (`edgeline images push --repository`), e.g. "registry.example.org/team": the chart
	// runs <ImageRepository>/facelogin-api and /facelogin-web.
	ImageRepository string
	// ImageTag is the tag both images carry; empty means the chart's appVersion.
	ImageTag string
	// ImageDigests pins each image by digest, winning over the tag.
	ImageDigests ImageDigests
}

// ImageDigests are the app images' digests ("sha256:…"); either may be empty.
type ImageDigests struct {
	API string `json:"api,omitempty"`
	Web string `json:"web,omitempty"`
}

// Keys lists every config key the stack reads (without the namespace): docs/deploy.md has
// a row for each, and Parse refuses a key of the namespace that is not listed.
var Keys = []string{
	"domain", "appHost", "rancherHost", "apiHost", "acmeEmail", "issuer", "cloudflareApiToken",
	"cloud", "serverType", "location", "image", "hcloudToken", "hcloudEndpoint", "dns", "cloudflareZoneId",
	"terraformDir", "terraformBinary", "address", "ipv6", "hostKeyFingerprint", "hostKey", "hostKeyRotation",
	"sshSourceCidrs", "apiSourceCidrs", "deployerAddress", "addressDiscoveryUrl",
	"sshUser", "sshPort", "sshKeyFile", "sshPublicKey", "knownHostsFile", "sshAgentSocket",
	"agents", "network", "vpnAuth", "tailscaleAptRepo",
	"k3sVersion", "certManagerVersion", "rancherVersion", "k3sAirGap",
	"certManagerChart", "rancherChart", "faceloginChart", "certManagerChartDigest", "rancherChartDigest",
	"chartLockFile", "chartCacheDir",
	"placement", "databaseUrl", "appValues", "kubeconfig", "helmWait", "helmTimeout", "helmTimeouts",
	"sshConnectTimeout", "sshRetries",
	"appImageRepository", "appImageTag", "appImageDigests",
}

// SecretKeys are the keys whose values belong in Pulumi secrets: Parse warns when one is
// stored in plain text.
var SecretKeys = []string{"hcloudToken", "hostKey", "vpnAuth", "databaseUrl", "kubeconfig", "cloudflareApiToken"}

// Source is a stack's config as Pulumi hands it to the program or to the Automation API.
type Source struct {
	// Get returns the value of a key (without the namespace) and whether it is set.
	// Structured values are JSON, as Pulumi hands them out.
	Get func(key string) (string, bool)
	// Secret reports whether a key's value is stored as a secret; nil skips that check.
	Secret func(key string) bool
	// Keys lists every key the stack sets, with its namespace ("edgeline:domain"); nil
	// skips the unknown-key check.
	Keys []string
}

// Parse reads the configuration from src, fills in defaults and validates it. The
// error lists every problem found, one sentence each, so a user fixes them in one go.
func Parse(src Source) (*Config, error) {
	p := parser{get: src.Get}
	c := &Config{
		Domain:             strings.ToLower(p.str("domain", "")),
		ACMEEmail:          p.str("acmeEmail", ""),
		Issuer:             p.str("issuer", IssuerProduction),
		CloudflareAPIToken: p.str("cloudflareApiToken", ""),
		Network:            p.str("network", NetworkWireguard),
		VPNAuth:            p.str("vpnAuth", ""),
		TailscaleAptRepo:   strings.TrimSuffix(p.str("tailscaleAptRepo", DefaultTailscaleAptRepo), "/"),
		Cloud: Cloud{
			Source:             p.str("cloud", SourceNative),
			ServerType:         p.str("serverType", DefaultServerType),
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
			HostKeyRotation:    p.str("hostKeyRotation", ""),
			SSHSources:         p.networks("sshSourceCidrs"),
			APISources:         p.networks("apiSourceCidrs"),
			DeployerAddress:    p.address("deployerAddress"),
			DiscoveryURL:       p.str("addressDiscoveryUrl", allowlist.DefaultDiscoveryURL),
		},
		SSH: SSH{
			User:           p.str("sshUser", remote.DefaultUser),
			Port:           p.integer("sshPort", remote.DefaultPort),
			KeyFile:        p.str("sshKeyFile", ""),
			PublicKey:      p.str("sshPublicKey", ""),
			KnownHostsFile: p.str("knownHostsFile", ""),
			AgentSocket:    p.str("sshAgentSocket", ""),
			ConnectTimeout: p.duration("sshConnectTimeout", DefaultSSHConnectTimeout),
			ConnectRetries: p.integer("sshRetries", DefaultSSHRetries),
		},
		Versions: Versions{
			K3s:         p.str("k3sVersion", "v1.33.4+k3s1"),
			CertManager: p.str("certManagerVersion", "v1.18.2"),
			Rancher:     p.str("rancherVersion", "2.12.1"),
		},
		Charts: Charts{
			CertManager:       p.str("certManagerChart", DefaultCertManagerChart),
			Rancher:           p.str("rancherChart", DefaultRancherChart),
			Facelogin:         p.str("faceloginChart", "../charts/facelogin"),
			CertManagerDigest: p.str("certManagerChartDigest", ""),
			RancherDigest:     p.str("rancherChartDigest", ""),
			LockFile:          p.str("chartLockFile", "charts.lock"),
			CacheDir:          p.str("chartCacheDir", ""),
		},
		App: App{Placement: p.str("placement", "edge-preferred"), DatabaseURL: p.str("databaseUrl", ""),
			ImageRepository: strings.TrimSuffix(p.str("appImageRepository", ""), "/"), ImageTag: p.str("appImageTag", "")},
		Kubeconfig:  p.str("kubeconfig", ""),
		HelmWait:    p.boolean("helmWait", true),
		HelmTimeout: p.duration("helmTimeout", DefaultHelmTimeout),
	}
	c.AppHost = strings.ToLower(p.str("appHost", prefixed("login", c.Domain)))
	c.RancherHost = strings.ToLower(p.str("rancherHost", prefixed("rancher", c.Domain)))
	c.APIHost = strings.ToLower(p.str("apiHost", prefixed("k3s", c.Domain)))
	p.object("agents", &c.Agents)
	p.object("appValues", &c.App.Values)
	p.object("appImageDigests", &c.App.ImageDigests)
	c.HelmTimeouts = p.durations("helmTimeouts")
	if _, ok := src.Get("k3sAirGap"); ok {
		c.K3sAirGap = &AirGap{}
		p.object("k3sAirGap", c.K3sAirGap)
	}
	c.validate(&p)
	p.unknown(src.Keys)
	if src.Secret != nil {
		for _, k := range SecretKeys {
			if v, ok := src.Get(k); ok && v != "" && !src.Secret(k) {
				c.Warnings = append(c.Warnings, Namespace+":"+k+" is stored in plain text: set it with `pulumi config set --secret "+Namespace+":"+k+"`")
			}
		}
	}
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
