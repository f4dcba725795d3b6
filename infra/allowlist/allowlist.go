// Package allowlist reads the source address lists the VPS's firewall lets in to SSH and
// the k3s API, and finds the public address a run comes from, which is their default.
// It is a leaf package (standard library only), shared by the stack config, the Pulumi
// program and the cloud sources.
package allowlist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Everyone is the list that opens a port to the whole internet. It is never a default:
// a stack gets it only by saying so.
var Everyone = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// DefaultDiscoveryURL answers an HTTPS GET with the caller's public address as plain
// text (Amazon's check-IP service, served from every region).
const DefaultDiscoveryURL = "https://checkip.amazonaws.com"

// Parse reads a list of networks written as a JSON array or separated by commas or
// spaces: CIDRs ("203.0.113.0/24") or single addresses (a /32 or /128). Networks are
// returned masked, sorted and without duplicates; "0.0.0.0/0" stands for IPv4 only.
func Parse(s string) ([]netip.Prefix, error) {
	var items []string
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "[") {
		if err := json.Unmarshal([]byte(t), &items); err != nil {
			return nil, fmt.Errorf("not a JSON list of strings: %w", err)
		}
	} else {
		items = strings.FieldsFunc(t, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	}
	var out []netip.Prefix
	for _, it := range items {
		p, err := parseOne(strings.TrimSpace(it))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("the list is empty")
	}
	return Normalize(out), nil
}

func parseOne(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a network like 203.0.113.0/24", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a network like 203.0.113.0/24", s)
	}
	return Host(a), nil
}

// Host is the network of one address: a /32, or a /128 for IPv6.
func Host(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen())
}

// Normalize masks, sorts and de-duplicates networks.
func Normalize(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}

// Strings writes networks in CIDR notation, as the Hetzner API and Terraform take them.
func Strings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// Public reports whether a is an address the internet can route to: not loopback,
// private, link-local, shared (100.64.0.0/10, carrier-grade NAT) or unspecified.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Discover asks url (an HTTP(S) service answering with the caller's address as plain
// text, like DefaultDiscoveryURL) for the public address this machine's connections come
// from. It gives up after 15 seconds.
func Discover(ctx context.Context, client *http.Client, url string) (netip.Addr, error) {
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("discover this machine's public address: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("discover this machine's public address at %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("discover this machine's public address at %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return netip.Addr{}, fmt.Errorf("discover this machine's public address at %s: %s", url, resp.Status)
	}
	a, err := netip.ParseAddr(strings.TrimSpace(string(body)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("discover this machine's public address: %s answered %q, not an address", url, strings.TrimSpace(string(body)))
	}
	return a.Unmap(), nil
}
