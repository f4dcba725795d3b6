package cloud

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// Native builds the VPS in Hetzner Cloud: an SSH key, a firewall, the server (with the
// host key installed by cloud-init) and A/AAAA records in the Hetzner DNS zone.
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

// firewallRules open SSH, HTTP(S) for the ingress, the k3s API for agents and kubectl,
// and WireGuard for flannel's wireguard-native backend.
func firewallRules() []hcloud.FirewallRule {
	any4 := net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
	any6 := net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	rule := func(proto hcloud.FirewallRuleProtocol, port, desc string) hcloud.FirewallRule {
		return hcloud.FirewallRule{
			Direction: hcloud.FirewallRuleDirectionIn, SourceIPs: []net.IPNet{any4, any6},
			Protocol: proto, Port: hcloud.Ptr(port), Description: hcloud.Ptr(desc),
		}
	}
	return []hcloud.FirewallRule{
		rule(hcloud.FirewallRuleProtocolTCP, "22", "ssh"),
		rule(hcloud.FirewallRuleProtocolTCP, "80", "http (ACME HTTP-01, redirect)"),
		rule(hcloud.FirewallRuleProtocolTCP, "443", "https"),
		rule(hcloud.FirewallRuleProtocolTCP, "6443", "k3s API"),
		rule(hcloud.FirewallRuleProtocolUDP, "51820-51821", "flannel wireguard-native"),
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
	key, _, err := c.SSHKey.GetByName(ctx, spec.Name)
	if err != nil {
		return Outputs{}, fmt.Errorf("hetzner: look up SSH key %s: %w", spec.Name, err)
	}
	if key == nil {
		if key, _, err = c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: spec.Name, PublicKey: spec.SSHPublicKey, Labels: labels(spec.Name)}); err != nil {
			return Outputs{}, fmt.Errorf("hetzner: create SSH key %s: %w", spec.Name, err)
		}
	}
	fw, _, err := c.Firewall.GetByName(ctx, spec.Name)
	if err != nil {
		return Outputs{}, fmt.Errorf("hetzner: look up firewall %s: %w", spec.Name, err)
	}
	if fw == nil {
		res, _, err := c.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: spec.Name, Labels: labels(spec.Name), Rules: firewallRules()})
		if err != nil {
			return Outputs{}, fmt.Errorf("hetzner: create firewall %s: %w", spec.Name, err)
		}
		if err := c.Action.WaitFor(ctx, res.Actions...); err != nil {
			return Outputs{}, fmt.Errorf("hetzner: create firewall %s: %w", spec.Name, err)
		}
		fw = res.Firewall
	} else if !sameRules(fw.Rules, firewallRules()) {
		actions, _, err := c.Firewall.SetRules(ctx, fw, hcloud.FirewallSetRulesOpts{Rules: firewallRules()})
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
		userData, err := UserData(spec.HostKey)
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

func sameRules(have, want []hcloud.FirewallRule) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range have {
		h, w := have[i], want[i]
		if h.Direction != w.Direction || h.Protocol != w.Protocol || deref(h.Port) != deref(w.Port) || len(h.SourceIPs) != len(w.SourceIPs) {
			return false
		}
	}
	return true
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

func wantedRecords(out Outputs) []record {
	rs := []record{{hcloud.ZoneRRSetTypeA, out.IPv4}}
	if out.IPv6 != "" {
		rs = append(rs, record{hcloud.ZoneRRSetTypeAAAA, out.IPv6})
	}
	return rs
}

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
// already gone are skipped.
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
	if key != nil {
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
		for _, typ := range []hcloud.ZoneRRSetType{hcloud.ZoneRRSetTypeA, hcloud.ZoneRRSetTypeAAAA} {
			rr, _, err := c.Zone.GetRRSetByNameAndType(ctx, zone, recordName(h, spec.Zone), typ)
			if err != nil {
				return fmt.Errorf("hetzner dns: look up %s %s: %w", h, typ, err)
			}
			if rr == nil || !pointsAt(rr, prev) {
				continue
			}
			rr.Zone = zone
			res, _, err := c.Zone.DeleteRRSet(ctx, rr)
			if err == nil {
				err = c.Action.WaitFor(ctx, res.Action)
			}
			if err != nil {
				return fmt.Errorf("hetzner dns: delete %s %s: %w", h, typ, err)
			}
		}
	}
	return nil
}
