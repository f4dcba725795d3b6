package k3s

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Validation reports every problem of a configuration at once, joined with errors.Join:
// callers that show problems one by one (infra/stackconfig) unwrap them with
// Problems.

var (
	labelNameRe   = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$`)
	dnsSubdomain  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	labelValueRe  = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$`)
	nodeNameRe    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
	disableableRe = regexp.MustCompile(`^[a-z][-a-z0-9]*$`)
	versionRe     = regexp.MustCompile(`^v\d+\.\d+\.\d+(-rc\d+)?\+k3s\d+$`)
	channelRe     = regexp.MustCompile(`^[a-z0-9][-a-z0-9.]*$`)
	sha256Re      = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Problems splits an error from a Validate method into its problems, one sentence each.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func validLabelKey(k string) error {
	name := k
	if i := strings.IndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if prefix == "" || len(prefix) > 253 || !dnsSubdomain.MatchString(prefix) {
			return fmt.Errorf("label key %q: prefix %q is not a DNS subdomain", k, prefix)
		}
	}
	if !labelNameRe.MatchString(name) {
		return fmt.Errorf("label key %q: name part must be 1-63 letters, digits, '-', '_' or '.', starting and ending alphanumeric", k)
	}
	return nil
}

func validateLabels(labels map[string]string) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if err := validLabelKey(k); err != nil {
			errs = append(errs, err)
		} else if len(v) > 63 || !labelValueRe.MatchString(v) {
			errs = append(errs, fmt.Errorf("label %s: value %q must be at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric", k, v))
		}
	}
	return errors.Join(errs...)
}

// taint is a parsed "key=value:Effect" or "key:Effect".
type taint struct{ key, value, effect string }

func parseTaint(s string) (taint, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return taint{}, fmt.Errorf("taint %q: want key=value:Effect", s)
	}
	t := taint{key: s[:i], effect: s[i+1:]}
	if j := strings.IndexByte(t.key, '='); j >= 0 {
		t.key, t.value = t.key[:j], t.key[j+1:]
	}
	switch t.effect {
	case "NoSchedule", "PreferNoSchedule", "NoExecute":
	default:
		return taint{}, fmt.Errorf("taint %q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", s, t.effect)
	}
	if err := validLabelKey(t.key); err != nil {
		return taint{}, fmt.Errorf("taint %q: %w", s, err)
	}
	if len(t.value) > 63 || !labelValueRe.MatchString(t.value) {
		return taint{}, fmt.Errorf("taint %q: value %q is not a valid label value", s, t.value)
	}
	return t, nil
}

func validateTaints(ts []string) error {
	var errs []error
	seen := map[string]bool{}
	for _, s := range ts {
		t, err := parseTaint(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		id := t.key + ":" + t.effect
		if seen[id] {
			errs = append(errs, fmt.Errorf("taint %s:%s is given twice", t.key, t.effect))
		}
		seen[id] = true
	}
	return errors.Join(errs...)
}

func validateIP(field, s string) error {
	if s == "" {
		return nil
	}
	for _, p := range strings.Split(s, ",") {
		if net.ParseIP(p) == nil {
			return fmt.Errorf("%s %q is not an IP address (or comma-separated IPv4,IPv6 pair)", field, s)
		}
	}
	return nil
}

// Validate reports every problem with in.
func (in Install) Validate() error {
	var errs []error
	if in.Version != "" && !versionRe.MatchString(in.Version) {
		errs = append(errs, fmt.Errorf("k3s version %q is not a k3s release name like v1.33.4+k3s1", in.Version))
	}
	if in.Channel != "" && !channelRe.MatchString(in.Channel) {
		errs = append(errs, fmt.Errorf("k3s channel %q is not a channel name like stable or v1.33", in.Channel))
	}
	if in.ScriptURL != "" {
		u, err := url.Parse(in.ScriptURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("k3s install script URL %q is not an http(s) URL", in.ScriptURL))
		}
		if in.ScriptSHA256 == "" {
			errs = append(errs, fmt.Errorf("k3s install script URL %q has no sha256: set ScriptSHA256 to the script's sha256sum, so the host runs exactly that script", in.ScriptURL))
		}
	}
	if in.ScriptSHA256 != "" {
		if in.ScriptURL == "" && in.ScriptSHA256 != DefaultScriptSHA256 {
			errs = append(errs, errors.New("k3s install script sha256 is set without ScriptURL: set both, or neither for the pinned default"))
		}
		if !sha256Re.MatchString(in.ScriptSHA256) {
			errs = append(errs, fmt.Errorf("k3s install script sha256 %q is not 64 lowercase hex digits (sha256sum prints it)", in.ScriptSHA256))
		}
	}
	if a := in.AirGap; a != nil {
		if in.ScriptURL != "" || in.ScriptSHA256 != "" {
			errs = append(errs, errors.New("k3s install: set either ScriptURL and ScriptSHA256 (online) or AirGap, not both"))
		}
		if a.Binary == "" || a.Script == "" {
			errs = append(errs, errors.New("k3s air-gapped install needs both the k3s binary and the install script on the workstation (AirGap.Binary, AirGap.Script)"))
		}
	}
	return errors.Join(errs...)
}

// validateNodeName reports whether n may name a node: a lowercase DNS subdomain (letters,
// digits, '-' and '.', at most 253 characters), as Kubernetes requires. Empty means the
// host name and is valid.
func validateNodeName(n string) error {
	if n != "" && !nodeNameRe.MatchString(n) {
		return fmt.Errorf("node name %q is not a lowercase DNS name (letters, digits, '-' and '.', like pi-hall-1)", n)
	}
	return nil
}

// Validate reports every problem with c.
func (c ServerConfig) Validate() error {
	errs := []error{validateNodeName(c.NodeName)}
	for _, s := range c.TLSSANs {
		if net.ParseIP(s) == nil && !dnsSubdomain.MatchString(strings.TrimPrefix(s, "*.")) {
			errs = append(errs, fmt.Errorf("tls-san %q is neither an IP address nor a DNS name", s))
		}
	}
	errs = append(errs,
		validateIP("node-ip", c.NodeIP),
		validateIP("node-external-ip", c.NodeExternalIP),
		validateLabels(c.Labels),
		validateTaints(c.Taints),
	)
	switch c.FlannelBackend {
	case "", FlannelVXLAN, FlannelHostGW, FlannelWireguardNative, FlannelNone:
	default:
		errs = append(errs, fmt.Errorf("flannel backend %q is not vxlan, host-gw, wireguard-native or none", c.FlannelBackend))
	}
	if c.FlannelExternalIP && c.NodeExternalIP == "" {
		errs = append(errs, errors.New("flannel-external-ip needs the server's node-external-ip"))
	}
	if c.VPNAuth != "" && c.FlannelBackend != "" && c.FlannelBackend != FlannelVXLAN {
		// k3s sets up flannel over the tailnet itself.
		errs = append(errs, errors.New("vpn-auth brings its own node-to-node tunnel: leave FlannelBackend empty"))
	}
	errs = append(errs, validateVPNAuth(c.VPNAuth))
	for _, d := range c.Disable {
		if !disableableRe.MatchString(d) {
			errs = append(errs, fmt.Errorf("disable %q is not a k3s component name (traefik, servicelb, local-storage, metrics-server, coredns)", d))
		}
	}
	if strings.ContainsAny(c.Token, "\n\r") {
		errs = append(errs, errors.New("k3s token contains a line break"))
	}
	if c.APIServerURL != "" {
		u, err := url.Parse(c.APIServerURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("API server URL %q is not an https URL", c.APIServerURL))
		}
	}
	return errors.Join(append(errs, c.Install.Validate())...)
}

// Validate reports every problem with c.
func (c AgentConfig) Validate() error {
	errs := []error{validateNodeName(c.NodeName)}
	if c.Labels == nil && c.Site == "" {
		errs = append(errs, errors.New("edge agent has no Site: set the site name (it becomes the edgeline.io/site label) or give Labels explicitly"))
	} else {
		errs = append(errs, validateLabels(c.labels()))
	}
	return errors.Join(append(errs,
		validateTaints(c.taints()),
		validateIP("node-ip", c.NodeIP),
		validateIP("node-external-ip", c.NodeExternalIP),
		validateVPNAuth(c.VPNAuth),
		c.Install.Validate(),
	)...)
}

// validateVPNAuth reports whether s is a k3s vpn-auth value for Tailscale or Headscale;
// empty means none and is valid.
func validateVPNAuth(s string) error {
	if s == "" {
		return nil
	}
	if strings.ContainsAny(s, "\n\r\"") {
		return errors.New("vpn-auth contains a line break or quote")
	}
	if !strings.HasPrefix(s, "name=tailscale,") && s != "name=tailscale" {
		return errors.New(`vpn-auth must start with "name=tailscale" (k3s supports Tailscale and Headscale), e.g. name=tailscale,joinKey=KEY[,controlServerURL=https://headscale.example]`)
	}
	return nil
}
