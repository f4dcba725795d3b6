// Package cloud brings up the VPS the k3s server runs on, from one of three sources that
// yield the same Outputs: Native (Hetzner Cloud server, firewall, SSH key and DNS records
// through the Hetzner API), Terraform (the module in infra/terraform through
// terraform-exec) and Existing (a host that already runs).
//
// The VPS's first SSH host key is made on the workstation and installed by cloud-init,
// so its fingerprint is known before the first connection; because user data stays
// readable on the server, the provider replaces that key after the first verified login
// (infra/provider, remote.RotateHostKey).
package cloud

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Spec says what to build.
type Spec struct {
	// Name names the server, its firewall and its SSH key, e.g. "edgeline-prod".
	Name string
	// ServerType, Location and Image choose the VPS (Native, Terraform).
	ServerType, Location, Image string
	// SSHPublicKey is installed for root on the new server (authorized_keys format).
	SSHPublicKey string
	// HostKey is the server's SSH host key, an OpenSSH private key (see NewHostKey).
	HostKey string
	// Zone is the DNS zone the Hostnames live in; empty means no DNS records are made
	// (the operator points the Hostnames at the server).
	Zone string
	// Hostnames get A records pointing at the server (no AAAA: the cluster is IPv4-only).
	Hostnames []string
	// DNSProvider is where the Zone lives: "hetzner" (default) or "cloudflare"
	// (Terraform only), with CloudflareZoneID.
	DNSProvider, CloudflareZoneID string
	// Address, IPv6 and HostKeyFingerprint describe an Existing host.
	Address, IPv6, HostKeyFingerprint string
	// SSHSources and APISources are the networks (CIDR notation) the firewall lets in to
	// SSH (TCP 22) and the k3s API (TCP 6443); both are needed for a new server, and
	// nothing opens them to everyone unless they say 0.0.0.0/0 and ::/0 (Native,
	// Terraform).
	SSHSources, APISources []string
	// TailscaleRepo, when set, is the base URL of Tailscale's stable apt repository
	// (the one whose ID/CODENAME.noarmor.gpg is the signing key); cloud-init then installs
	// tailscale from it on a new server, for k3s's vpn-auth (Native, Terraform).
	TailscaleRepo string
}

// Outputs are what every source reports about the VPS.
type Outputs struct {
	// ServerID identifies the server at the source ("" for Existing).
	ServerID string
	// IPv4 and IPv6 are its public addresses (IPv6 may be empty).
	IPv4, IPv6 string
	// HostKeyFingerprint is its SSH host key's SHA256 fingerprint.
	HostKeyFingerprint string
	// DNSNames are the hostnames that resolve to it, sorted.
	DNSNames []string
	// State is source-private state to hand back to the next call (the Terraform
	// state for Terraform); it may hold secrets.
	State string
}

// Source creates, reads and removes the VPS. Apply converges: run again with the same
// Spec it changes nothing. prev is what the previous Apply returned (nil on the first).
type Source interface {
	Apply(ctx context.Context, spec Spec, prev *Outputs) (Outputs, error)
	// Read reports the VPS as it is now; ok is false when it is gone.
	Read(ctx context.Context, spec Spec, prev Outputs) (out Outputs, ok bool, err error)
	Destroy(ctx context.Context, spec Spec, prev Outputs) error
}

// NewHostKey makes an ed25519 SSH host key and returns it as an OpenSSH private key.
func NewHostKey() (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "edgeline host key")
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(block)), nil
}

// HostPublicKey returns the public half of an OpenSSH private host key, in
// authorized_keys format, and its SHA256 fingerprint.
func HostPublicKey(privateKey string) (authorized, fingerprint string, err error) {
	signer, err := ssh.ParsePrivateKey([]byte(privateKey))
	if err != nil {
		return "", "", fmt.Errorf("host key: %w", err)
	}
	pub := signer.PublicKey()
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), ssh.FingerprintSHA256(pub), nil
}

// UserData is the cloud-init configuration of a new server: it installs the host key,
// keeps pods away from the metadata service (MetadataBlock) and, with
// spec.TailscaleRepo, installs tailscale from Tailscale's apt repository.
func UserData(spec Spec) (string, error) {
	pub, _, err := HostPublicKey(spec.HostKey)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(pub, "ssh-ed25519 ") {
		return "", errors.New("host key: cloud-init installs ed25519 host keys only")
	}
	var b strings.Builder
	b.WriteString("#cloud-config\n# Written by edgeline: the host key is made on the workstation so its fingerprint is pinned from the first login.\nssh_deletekeys: true\nssh_genkeytypes: []\nssh_keys:\n  ed25519_private: |\n")
	for _, l := range strings.Split(strings.TrimSpace(spec.HostKey), "\n") {
		b.WriteString("    " + l + "\n")
	}
	fmt.Fprintf(&b, "  ed25519_public: %s\n", pub)
	b.WriteString("# Pods must not read the metadata service (it serves this user data): every boot, before k3s starts,\n# traffic to it that enters the host from elsewhere (pods) is dropped; the host itself still reaches it.\nbootcmd:\n")
	fmt.Fprintf(&b, "  - [sh, -c, %s]\n", strconv.Quote(MetadataBlock))
	if spec.TailscaleRepo != "" {
		if err := checkRepoURL(spec.TailscaleRepo); err != nil {
			return "", err
		}
		// sh -c SCRIPT NAME URL: the URL reaches the script as $1, never inside it.
		b.WriteString("# vpn-auth: k3s joins the tailnet with tailscale, installed from Tailscale's own apt repository.\nruncmd:\n  - - sh\n    - -c\n    - |\n")
		for _, l := range strings.Split(strings.TrimSpace(TailscaleInstallScript), "\n") {
			b.WriteString(strings.TrimRight("      "+l, " ") + "\n")
		}
		fmt.Fprintf(&b, "    - edgeline-install-tailscale\n    - %s\n", strconv.Quote(spec.TailscaleRepo))
	}
	return b.String(), nil
}

// MetadataAddress is the cloud's metadata service (Hetzner's, like most clouds').
const MetadataAddress = "169.254.169.254"

// MetadataBlock drops packets to the metadata service that arrive on any interface
// (pods' traffic enters the host through the CNI bridge), in the raw table, before
// routing and before anything k3s adds; the host's own requests leave through OUTPUT
// and are not affected. It is idempotent: cloud-init runs it on every boot.
const MetadataBlock = "iptables -w -t raw -C PREROUTING -d " + MetadataAddress + "/32 -j DROP 2>/dev/null || iptables -w -t raw -I PREROUTING -d " + MetadataAddress + "/32 -j DROP"

// TailscaleInstallScript installs tailscale from the apt repository whose base URL is
// its first argument: the signing key into /etc/apt/keyrings, the source with signed-by,
// then the package. Only Tailscale's source is refreshed, unless the package needs more.
// It waits for other apt runs at first boot (unattended upgrades) instead of failing.
const TailscaleInstallScript = `set -eu
repo=$1
. /etc/os-release
keyring=/etc/apt/keyrings/tailscale-archive-keyring.gpg
install -d -m 0755 /etc/apt/keyrings
curl -fsSL --retry 5 --retry-connrefused -o "$keyring.part" "$repo/$ID/$VERSION_CODENAME.noarmor.gpg"
chmod 0644 "$keyring.part"
mv -f "$keyring.part" "$keyring"
echo "deb [signed-by=$keyring] $repo/$ID $VERSION_CODENAME main" > /etc/apt/sources.list.d/tailscale.list
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@"; }
apt_get update -o Dir::Etc::sourcelist=sources.list.d/tailscale.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0
apt_get install -y --no-install-recommends tailscale || { apt_get update; apt_get install -y --no-install-recommends tailscale; }
command -v tailscale >/dev/null
`

// checkRepoURL accepts an http(s) URL without characters that would need quoting.
func checkRepoURL(u string) error {
	if (!strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://")) || strings.ContainsAny(u, " \t\n\"'`$\\") {
		return fmt.Errorf("cloud: Tailscale apt repository %q is not an http(s) URL", u)
	}
	return nil
}

// Validate reports the first problem with spec for a source that creates servers.
func (s Spec) validateNew() error {
	switch {
	case s.Name == "":
		return errors.New("cloud: no server name")
	case s.ServerType == "" || s.Location == "" || s.Image == "":
		return errors.New("cloud: server type, location and image are all needed")
	case s.SSHPublicKey == "":
		return errors.New("cloud: no SSH public key to install")
	case s.HostKey == "":
		return errors.New("cloud: no host key to install")
	case len(s.SSHSources) == 0 || len(s.APISources) == 0:
		return errors.New("cloud: the firewall needs the networks allowed to SSH and the k3s API (edgeline:sshSourceCidrs, edgeline:apiSourceCidrs)")
	}
	for _, list := range [][]string{s.SSHSources, s.APISources} {
		for _, n := range list {
			if p, err := netip.ParsePrefix(n); err != nil || p.Masked() != p {
				return fmt.Errorf("cloud: firewall source %q is not a network in CIDR notation like 203.0.113.0/24", n)
			}
		}
	}
	for _, h := range s.Hostnames {
		if s.Zone != "" && h != s.Zone && !strings.HasSuffix(h, "."+s.Zone) {
			return fmt.Errorf("cloud: hostname %q is not in DNS zone %q", h, s.Zone)
		}
	}
	return nil
}

// recordName is hostname relative to zone, "@" for the apex.
func recordName(hostname, zone string) string {
	if hostname == zone {
		return "@"
	}
	return strings.TrimSuffix(hostname, "."+zone)
}

func sortedNames(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}
