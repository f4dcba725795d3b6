package cloud

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"
)

// Native builds the VPS in Hetzner Cloud: an SSH key, a firewall, the server (with the
// host key installed by cloud-init) and A records in the Hetzner DNS zone.
type Native struct {
	Client *hcloud.Client
}

// NewNative returns a Native source using token; endpoint overrides the API URL when set.
func NewNative(token, endpoint string) *Native {
	opts := []hcloud.ClientOption{
		hcloud.WithToken(token),
		hcloud.WithApplication("edgeline", ""),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(time.Second)}),
	}
	if endpoint != "" {
		opts = append(opts, hcloud.WithEndpoint(endpoint))
	}
	return &Native{Client: hcloud.NewClient(opts...)}
}

// labels marks everything edgeline made, so an operator can find it in the console.
func labels(name string) map[string]string {
	return map[string]string{"managed-by": "edgeline", "edgeline-stack": name}
}

// firewallRules open HTTP(S) for the ingress and WireGuard for flannel's
// wireguard-native backend to everyone, and SSH and the k3s API (agents, kubectl, Helm)
// to spec's source networks only.
func firewallRules(spec Spec) []hcloud.FirewallRule {
	everyone := []string{"0.0.0.0/0", "::/0"}
	rule := func(proto hcloud.FirewallRuleProtocol, port, desc string, sources []string) hcloud.FirewallRule {
		nets := make([]net.IPNet, 0, len(sources))
		for _, s := range sources {
			// validateNew checked every source.
			_, n, _ := net.ParseCIDR(s)
			nets = append(nets, *n)
		}
		return hcloud.FirewallRule{
			Direction: hcloud.FirewallRuleDirectionIn, SourceIPs: nets,
			Protocol: proto, Port: hcloud.Ptr(port), Description: hcloud.Ptr(desc),
		}
	}
	return []hcloud.FirewallRule{
		rule(hcloud.FirewallRuleProtocolTCP, "22", "ssh", spec.SSHSources),
		rule(hcloud.FirewallRuleProtocolTCP, "80", "http (ACME HTTP-01, redirect)", everyone),
		rule(hcloud.FirewallRuleProtocolTCP, "443", "https", everyone),
		rule(hcloud.FirewallRuleProtocolTCP, "6443", "k3s API", spec.APISources),
		rule(hcloud.FirewallRuleProtocolUDP, "51820-51821", "flannel wireguard-native", everyone),
	}
}

// Apply creates what is missing and converges the firewall rules and DNS records.
func (n *Native) Apply(ctx context.Context, spec Spec, _ *Outputs) (Outputs, error) {
	if err := spec.validateNew(); err != nil {
		return Outputs{}, err
	}
	if spec.DNSProvider != "" && spec.DNSProvider != "hetzner" {
		return Outputs{}, fmt.Errorf("hetzner: DNS records in %s are written by the terraform source only", spec.DNSProvider)
	}
	_, fingerprint, err := HostPublicKey(spec.HostKey)
	if err != nil {
		return Outputs{}, err
	}
	c := n.Client
	// The zone is checked first, so a missing one fails before anything is created.
	zone, err := n.zone(ctx, spec)
	if err != nil {
		return Outputs{}, err
	}
	key, err := n.sshKey(ctx, spec)
	if err != nil {
		return Outputs{}, err
	}
	fw, _, err := c.Firewall.GetByName(ctx, spec.Name)
	if err != nil {
		return Outputs{}, fmt.Errorf("hetzner: look up firewall %s: %w", spec.Name, err)
	}
	if fw == nil {
		res, _, err := c.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: spec.Name, Labels: labels(spec.Name), Rules: firewallRules(spec)})
		if err != nil {
			return Outputs{}, fmt.Errorf("hetzner: create firewall %s: %w", spec.Name, err)
		}
		if err := c.Action.WaitFor(ctx, res.Actions...); err != nil {
			return Outputs{}, fmt.Errorf("hetzner: create firewall %s: %w", spec.Name, err)
		}
		fw = res.Firewall
	} else if !sameRules(fw.Rules, firewallRules(spec)) {
		actions, _, err := c.Firewall.SetRules(ctx, fw, hcloud.FirewallSetRulesOpts{Rules: firewallRules(spec)})
		if err == nil {
			err = c.Action.WaitFor(ctx, actions...)
		}
		if err != nil {
			return Outputs{}, fmt.Errorf("hetzner: update firewall %s: %w", spec.Name, err)
		}
	}
	srv, _, err := c.Server.GetByName(ctx, spec.Name)
	if err != nil {
		return Outputs{}, fmt.Errorf("hetzner: look up server %s: %w", spec.Name, err)
	}
	if srv == nil {
		userData, err := UserData(spec)
		if err != nil {
			return Outputs{}, err
		}
		res, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{
			Name:       spec.Name,
			ServerType: &hcloud.ServerType{Name: spec.ServerType},
			Image:      &hcloud.Image{Name: spec.Image},
			Location:   &hcloud.Location{Name: spec.Location},
			SSHKeys:    []*hcloud.SSHKey{key},
			UserData:   userData,
			Labels:     labels(spec.Name),
			Firewalls:  []*hcloud.ServerCreateFirewall{{Firewall: *fw}},
		})
		if err != nil {
			return Outputs{}, fmt.Errorf("hetzner: create server %s (%s in %s): %w", spec.Name, spec.ServerType, spec.Location, err)
		}
		if err := c.Action.WaitFor(ctx, append([]*hcloud.Action{res.Action}, res.NextActions...)...); err != nil {
			return Outputs{}, fmt.Errorf("hetzner: start server %s: %w", spec.Name, err)
		}
		srv = res.Server
	}
	out := serverOutputs(srv, fingerprint)
	if err := n.applyDNS(ctx, spec, zone, out); err != nil {
		return Outputs{}, err
	}
	out.DNSNames = sortedNames(spec.Hostnames)
	return out, nil
}

// sshKey returns the project's SSH key for spec.SSHPublicKey. Hetzner refuses a second
// key with the same fingerprint, so a key already in the project (the user's own, or one
// another stack made) is looked up by fingerprint and used as it is; only when there is
// none does edgeline create one, named and labelled for the stack.
func (n *Native) sshKey(ctx context.Context, spec Spec) (*hcloud.SSHKey, error) {
	c := n.Client
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(spec.SSHPublicKey))
	if err != nil {
		return nil, fmt.Errorf("cloud: SSH public key is not an authorized_keys line: %w", err)
	}
	fp := ssh.FingerprintLegacyMD5(pub)
	key, _, err := c.SSHKey.GetByFingerprint(ctx, fp)
	if err != nil {
		return nil, fmt.Errorf("hetzner: look up SSH key %s: %w", fp, err)
	}
	if key != nil {
		return key, nil
	}
	named, _, err := c.SSHKey.GetByName(ctx, spec.Name)
	if err != nil {
		return nil, fmt.Errorf("hetzner: look up SSH key %s: %w", spec.Name, err)
	}
	if named != nil {
		// The name is taken by another key. One this stack made for a public key it no
		// longer uses is replaced (keys only matter when a server is created); anyone
		// else's is left alone.
		if !ownedBy(named.Labels, spec.Name) {
			return nil, fmt.Errorf("hetzner: an SSH key named %s with another public key exists and was not made by this stack: rename or delete it in the Hetzner console, or use its public key", spec.Name)
		}
		if _, err := c.SSHKey.Delete(ctx, named); err != nil {
			return nil, fmt.Errorf("hetzner: replace SSH key %s: %w", spec.Name, err)
		}
	}
	key, _, err = c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: spec.Name, PublicKey: spec.SSHPublicKey, Labels: labels(spec.Name)})
	if err != nil {
		return nil, fmt.Errorf("hetzner: create SSH key %s: %w", spec.Name, err)
	}
	return key, nil
}

// ownedBy reports whether an object carries the labels edgeline puts on what stack made.
func ownedBy(l map[string]string, stack string) bool {
	return l["managed-by"] == "edgeline" && l["edgeline-stack"] == stack
}

func serverOutputs(srv *hcloud.Server, fingerprint string) Outputs {
	out := Outputs{ServerID: strconv.FormatInt(srv.ID, 10), HostKeyFingerprint: fingerprint}
	if ip := srv.PublicNet.IPv4.IP; ip != nil {
		out.IPv4 = ip.String()
	}
	if ip := srv.PublicNet.IPv6.IP; ip != nil && !ip.IsUnspecified() {
		// Hetzner assigns a /64; the server answers on ::1 of it.
		v6 := slices.Clone(ip.To16())
		v6[15] |= 1
		out.IPv6 = v6.String()
	}
	return out
}

// sameRules compares rules as edgeline writes them, source networks included (in any
// order).
func sameRules(have, want []hcloud.FirewallRule) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range have {
		h, w := have[i], want[i]
		if h.Direction != w.Direction || h.Protocol != w.Protocol || deref(h.Port) != deref(w.Port) || !slices.Equal(networks(h.SourceIPs), networks(w.SourceIPs)) {
			return false
		}
	}
	return true
}

// networks writes ns in CIDR notation, sorted.
func networks(ns []net.IPNet) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.String()
	}
	slices.Sort(out)
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type record struct {
	typ   hcloud.ZoneRRSetType
	value string
}

// wantedRecords are the records each hostname gets: A only. The cluster is IPv4-only
// (k3s dual-stack needs an IPv6 address on every node, and Pis behind NAT rarely have
// one), so an AAAA record would send IPv6 clients to an address where neither Traefik
// nor the k3s API listens.
func wantedRecords(out Outputs) []record {
	return []record{{hcloud.ZoneRRSetTypeA, out.IPv4}}
}

// unwantedTypes are record types edgeline once wrote and now removes when they still
// point at the server.
var unwantedTypes = []hcloud.ZoneRRSetType{hcloud.ZoneRRSetTypeAAAA}

// zone returns the DNS zone the hostnames go in, nil when there are none.
func (n *Native) zone(ctx context.Context, spec Spec) (*hcloud.Zone, error) {
	if spec.Zone == "" || len(spec.Hostnames) == 0 {
		return nil, nil
	}
	zone, _, err := n.Client.Zone.Get(ctx, spec.Zone)
	if err != nil {
		return nil, fmt.Errorf("hetzner dns: look up zone %s: %w", spec.Zone, err)
	}
	if zone == nil {
		return nil, fmt.Errorf("hetzner dns: zone %s does not exist in this project: create it in the Hetzner console (DNS) and point the domain's name servers at it", spec.Zone)
	}
	return zone, nil
}

func (n *Native) applyDNS(ctx context.Context, spec Spec, zone *hcloud.Zone, out Outputs) error {
	if zone == nil {
		return nil
	}
	c := n.Client
	for _, h := range sortedNames(spec.Hostnames) {
		name := recordName(h, spec.Zone)
		for _, r := range wantedRecords(out) {
			rr, _, err := c.Zone.GetRRSetByNameAndType(ctx, zone, name, r.typ)
			if err != nil {
				return fmt.Errorf("hetzner dns: look up %s %s: %w", h, r.typ, err)
			}
			recs := []hcloud.ZoneRRSetRecord{{Value: r.value}}
			switch {
			case rr == nil:
				res, _, err := c.Zone.CreateRRSet(ctx, zone, hcloud.ZoneRRSetCreateOpts{Name: name, Type: r.typ, TTL: hcloud.Ptr(300), Labels: labels(spec.Name), Records: recs})
				if err == nil {
					err = c.Action.WaitFor(ctx, res.Action)
				}
				if err != nil {
					return fmt.Errorf("hetzner dns: create %s %s: %w", h, r.typ, err)
				}
			case len(rr.Records) != 1 || rr.Records[0].Value != r.value:
				rr.Zone = zone
				a, _, err := c.Zone.SetRRSetRecords(ctx, rr, hcloud.ZoneRRSetSetRecordsOpts{Records: recs})
				if err == nil {
					err = c.Action.WaitFor(ctx, a)
				}
				if err != nil {
					return fmt.Errorf("hetzner dns: point %s %s at %s: %w", h, r.typ, r.value, err)
				}
			}
		}
		for _, typ := range unwantedTypes {
			if err := n.deleteRecord(ctx, zone, h, name, typ, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteRecord removes the typ RRSet of hostname h (record name) when it still points at
// the server described by out; records someone repointed elsewhere are left alone.
func (n *Native) deleteRecord(ctx context.Context, zone *hcloud.Zone, h, name string, typ hcloud.ZoneRRSetType, out Outputs) error {
	c := n.Client
	rr, _, err := c.Zone.GetRRSetByNameAndType(ctx, zone, name, typ)
	if err != nil {
		return fmt.Errorf("hetzner dns: look up %s %s: %w", h, typ, err)
	}
	if rr == nil || !pointsAt(rr, out) {
		return nil
	}
	rr.Zone = zone
	res, _, err := c.Zone.DeleteRRSet(ctx, rr)
	if err == nil {
		err = c.Action.WaitFor(ctx, res.Action)
	}
	if err != nil {
		return fmt.Errorf("hetzner dns: delete %s %s: %w", h, typ, err)
	}
	return nil
}

// Read reports the server as Hetzner sees it now.
func (n *Native) Read(ctx context.Context, spec Spec, prev Outputs) (Outputs, bool, error) {
	srv, _, err := n.Client.Server.GetByName(ctx, spec.Name)
	if err != nil {
		return Outputs{}, false, fmt.Errorf("hetzner: look up server %s: %w", spec.Name, err)
	}
	if srv == nil {
		return Outputs{}, false, nil
	}
	out := serverOutputs(srv, prev.HostKeyFingerprint)
	out.DNSNames = prev.DNSNames
	return out, true, nil
}

// Destroy removes the DNS records, the server, the firewall and the SSH key; parts
// already gone are skipped. An SSH key edgeline did not create (one found by its
// fingerprint) stays.
func (n *Native) Destroy(ctx context.Context, spec Spec, prev Outputs) error {
	if err := n.DestroyRecords(ctx, spec, prev); err != nil {
		return err
	}
	c := n.Client
	srv, _, err := c.Server.GetByName(ctx, spec.Name)
	if err != nil {
		return fmt.Errorf("hetzner: look up server %s: %w", spec.Name, err)
	}
	if srv != nil {
		res, _, err := c.Server.DeleteWithResult(ctx, srv)
		if err == nil {
			err = c.Action.WaitFor(ctx, res.Action)
		}
		if err != nil {
			return fmt.Errorf("hetzner: delete server %s: %w", spec.Name, err)
		}
	}
	fw, _, err := c.Firewall.GetByName(ctx, spec.Name)
	if err != nil {
		return fmt.Errorf("hetzner: look up firewall %s: %w", spec.Name, err)
	}
	if fw != nil {
		if _, err := c.Firewall.Delete(ctx, fw); err != nil {
			return fmt.Errorf("hetzner: delete firewall %s: %w", spec.Name, err)
		}
	}
	key, _, err := c.SSHKey.GetByName(ctx, spec.Name)
	if err != nil {
		return fmt.Errorf("hetzner: look up SSH key %s: %w", spec.Name, err)
	}
	if key != nil && ownedBy(key.Labels, spec.Name) {
		if _, err := c.SSHKey.Delete(ctx, key); err != nil {
			return fmt.Errorf("hetzner: delete SSH key %s: %w", spec.Name, err)
		}
	}
	return nil
}

// pointsAt reports whether rr still points at the server: records someone repointed
// elsewhere are left alone.
func pointsAt(rr *hcloud.ZoneRRSet, out Outputs) bool {
	for _, r := range rr.Records {
		if r.Value == out.IPv4 || (out.IPv6 != "" && r.Value == out.IPv6) {
			return true
		}
	}
	return false
}

// DestroyRecords removes the A and AAAA records of spec's hostnames that still point at
// the server described by prev.
func (n *Native) DestroyRecords(ctx context.Context, spec Spec, prev Outputs) error {
	c := n.Client
	if spec.Zone == "" || len(spec.Hostnames) == 0 {
		return nil
	}
	zone, _, err := c.Zone.Get(ctx, spec.Zone)
	if err != nil {
		return fmt.Errorf("hetzner dns: look up zone %s: %w", spec.Zone, err)
	}
	for _, h := range spec.Hostnames {
		if zone == nil {
			break
		}
		for _, typ := range append([]hcloud.ZoneRRSetType{hcloud.ZoneRRSetTypeA}, unwantedTypes...) {
			if err := n.deleteRecord(ctx, zone, h, recordName(h, spec.Zone), typ, prev); err != nil {
				return err
			}
		}
	}
	return nil
}
