package stackconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgeline/edgeline/infra/allowlist"
)

// parser reads the keys of one Source and collects the problems it finds.
type parser struct {
	get  func(key string) (string, bool)
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

// duration reads a Go duration ("90s", "15m").
func (p *parser) duration(key string, def time.Duration) time.Duration {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.errorf("%s:%s %q is not a duration like 90s or 15m", Namespace, key, v)
		return def
	}
	return d
}

// durations reads an object of durations by release name.
func (p *parser) durations(key string) map[string]time.Duration {
	var raw map[string]string
	p.object(key, &raw)
	if raw == nil {
		return nil
	}
	out := map[string]time.Duration{}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		d, err := time.ParseDuration(raw[name])
		switch {
		case !slices.Contains(ReleaseNames, name):
			p.errorf("%s:%s: %q is not a release of the stack (%s)", Namespace, key, name, strings.Join(ReleaseNames, ", "))
		case err != nil || d <= 0:
			p.errorf("%s:%s.%s %q is not a duration like 20m", Namespace, key, name, raw[name])
		default:
			out[name] = d
		}
	}
	return out
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

// networks reads a list of networks (allowlist.Parse); nil when the key is not set.
func (p *parser) networks(key string) []netip.Prefix {
	v, ok := p.get(key)
	if !ok || strings.TrimSpace(v) == "" {
		return nil
	}
	ps, err := allowlist.Parse(v)
	if err != nil {
		p.errorf("%s:%s: %v: list networks like [\"203.0.113.7/32\"] (0.0.0.0/0 opens the port to everyone)", Namespace, key, err)
		return nil
	}
	return ps
}

// address reads an IP address; the zero Addr when the key is not set.
func (p *parser) address(key string) netip.Addr {
	v := p.str(key, "")
	if v == "" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		p.errorf("%s:%s %q is not an IP address like 203.0.113.7", Namespace, key, v)
		return netip.Addr{}
	}
	return a.Unmap()
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

// UnmarshalJSON reads an agent as the stack config writes it. The jump host is kept as
// written and parsed by Parse with the other checks, so one bad value does not hide the
// problems of the other agents.
func (a *Agent) UnmarshalJSON(b []byte) error {
	type fields Agent
	v := struct {
		*fields
		Jump string `json:"jump,omitempty"`
	}{fields: (*fields)(a)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	a.jump = v.Jump
	return nil
}

// unknown reports every key of the namespace in keys that the stack does not read.
func (p *parser) unknown(keys []string) {
	for _, full := range keys {
		k, ok := strings.CutPrefix(full, Namespace+":")
		if !ok || slices.Contains(Keys, k) {
			continue
		}
		if near := nearest(k); near != "" {
			p.errorf("%s is not a setting of edgeline: did you mean %s:%s? (every key is listed in docs/deploy.md)", full, Namespace, near)
		} else {
			p.errorf("%s is not a setting of edgeline: remove it (every key is listed in docs/deploy.md)", full)
		}
	}
}

// nearest is the known key closest to k, within two edits (case aside), or "".
func nearest(k string) string {
	best, bestDist := "", 3
	for _, known := range Keys {
		if d := distance(strings.ToLower(k), strings.ToLower(known)); d < bestDist {
			best, bestDist = known, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
