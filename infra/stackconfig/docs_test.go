package stackconfig

import (
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docTable reads the rows of the markdown table that follows heading in docs/deploy.md:
// first cell (without backticks) to the second.
func docTable(t *testing.T, heading string) (keys []string, defaults map[string]string) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), heading)
	if !ok {
		t.Fatalf("docs/deploy.md has no %q", heading)
	}
	defaults = map[string]string{}
	inTable := false
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(line, " | ")
		key := strings.Trim(strings.TrimPrefix(cells[0], "| "), "`")
		if len(cells) < 3 || !strings.HasPrefix(cells[0], "| `") {
			continue // header and separator
		}
		keys = append(keys, key)
		defaults[key] = cells[1]
	}
	return keys, defaults
}

// TestDocsConfigKeys keeps docs/deploy.md's table of config keys and the code in step:
// the same keys, and for every default the table gives as a literal, the default Parse
// fills in. Defaults made outside Parse are listed here with where the code makes them.
func TestDocsConfigKeys(t *testing.T) {
	keys, defaults := docTable(t, "### Every config key")
	if missing, extra := diffSets(Keys, keys); len(missing)+len(extra) > 0 {
		t.Errorf("docs/deploy.md's key table lacks %v and lists %v, which the stack does not read", missing, extra)
	}

	required := []string{"domain", "acmeEmail", "sshKeyFile", "appImageRepository"}
	minimal := map[string]string{"domain": "example.org", "acmeEmail": "ops@example.org", "hcloudToken": "t",
		"sshKeyFile": "/k", "appImageRepository": "registry.example.org/team"}
	c, err := Parse(source(minimal))
	if err != nil {
		t.Fatal(err)
	}
	// short writes a duration as the docs do: 15m, not 15m0s.
	short := func(d time.Duration) string {
		s := d.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	}
	empty := func(n int, s string) string {
		if n == 0 {
			return s
		}
		return "set"
	}
	got := map[string]string{
		"cloudflareApiToken": c.CloudflareAPIToken, "issuer": strings.Replace(strings.TrimPrefix(c.Issuer, "letsencrypt-"), "prod", "production", 1),
		"cloud": c.Cloud.Source, "serverType": c.Cloud.ServerType, "location": c.Cloud.Location, "image": c.Cloud.Image,
		"dns": c.Cloud.DNS, "cloudflareZoneId": c.Cloud.CloudflareZoneID, "terraformDir": c.Cloud.TerraformDir,
		"address": c.Cloud.Address, "ipv6": c.Cloud.IPv6, "hostKeyFingerprint": c.Cloud.HostKeyFingerprint,
		"hostKeyRotation": c.Cloud.HostKeyRotation, "addressDiscoveryUrl": c.Cloud.DiscoveryURL,
		"sshUser": c.SSH.User, "sshPort": strconv.Itoa(c.SSH.Port), "knownHostsFile": c.SSH.KnownHostsFile,
		"sshConnectTimeout": short(c.SSH.ConnectTimeout), "sshRetries": strconv.Itoa(c.SSH.ConnectRetries),
		"agents": empty(len(c.Agents), "[]"), "network": c.Network, "vpnAuth": c.VPNAuth, "tailscaleAptRepo": c.TailscaleAptRepo,
		"k3sVersion": c.Versions.K3s, "certManagerVersion": c.Versions.CertManager, "rancherVersion": c.Versions.Rancher,
		"k3sAirGap":        empty(map[bool]int{true: 1}[c.K3sAirGap != nil], ""),
		"certManagerChart": c.Charts.CertManager, "rancherChart": c.Charts.Rancher, "faceloginChart": c.Charts.Facelogin,
		"chartLockFile": c.Charts.LockFile, "placement": c.App.Placement, "databaseUrl": c.App.DatabaseURL,
		"appImageDigests": c.App.ImageDigests.API + c.App.ImageDigests.Web, "appValues": empty(len(c.App.Values), "{}"),
		"helmWait": strconv.FormatBool(c.HelmWait), "helmTimeout": short(c.HelmTimeout), "helmTimeouts": empty(len(c.HelmTimeouts), ""),
		"appHost": c.AppHost, "rancherHost": c.RancherHost, "apiHost": c.APIHost,
	}
	// Keys whose default is not made by Parse: where it is made instead.
	elsewhere := map[string]string{
		"hcloudToken":            "$HCLOUD_TOKEN: Parse reads the environment (TestParseTokenFromEnvironment)",
		"hcloudEndpoint":         "empty: infra/cloud talks to Hetzner's own API",
		"terraformBinary":        "empty: the CloudHost runs tofu from PATH",
		"hostKey":                "empty: the CloudHost generates one",
		"sshSourceCidrs":         "nil: Config.Firewall uses the deployer's address",
		"apiSourceCidrs":         "nil: Config.Firewall uses the deployer's address and the agents' externalIPs",
		"deployerAddress":        "zero: the program discovers it (NeedsDeployerAddress)",
		"sshPublicKey":           "empty: the program reads it from sshKeyFile",
		"sshAgentSocket":         "empty: the provider uses $SSH_AUTH_SOCK",
		"certManagerChartDigest": "empty: the digest chartLockFile records",
		"rancherChartDigest":     "empty: the digest chartLockFile records",
		"chartCacheDir":          "empty: internal/helm uses the user's cache directory",
		"appImageTag":            "empty: the chart's appVersion",
		"kubeconfig":             "empty: the kubeconfig k3s wrote",
	}
	for _, k := range keys {
		doc := defaults[k]
		switch {
		case slices.Contains(required, k):
			if doc != "— (required)" {
				t.Errorf("docs/deploy.md: %s's default is %q; Parse requires it: want — (required)", k, doc)
			}
			m := maps.Clone(minimal)
			delete(m, k)
			if _, err := Parse(source(m)); err == nil || !strings.Contains(err.Error(), "edgeline:"+k) {
				t.Errorf("a config without %s: %v, want a problem naming edgeline:%s", k, err, k)
			}
		case elsewhere[k] != "":
		default:
			g, ok := got[k]
			if !ok {
				t.Errorf("%s: the test does not know where Parse keeps it: add it to got or elsewhere", k)
				continue
			}
			want := literal(strings.ReplaceAll(doc, "<domain>", "example.org"))
			if doc == "—" {
				want = ""
			} else if want == "" {
				t.Errorf("docs/deploy.md: %s's default %s is neither — nor one `literal`", k, doc)
				continue
			}
			if g != want {
				t.Errorf("%s: docs/deploy.md says the default is %s, Parse gives %q", k, doc, g)
			}
		}
	}
}

// TestDocsAgentFields keeps docs/deploy.md's table of agent fields and Agent in step.
func TestDocsAgentFields(t *testing.T) {
	fields, _ := docTable(t, "Each entry of `agents`:")
	var tags []string
	at := reflect.TypeFor[Agent]()
	for i := range at.NumField() {
		name, _, _ := strings.Cut(at.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			tags = append(tags, name)
		}
	}
	tags = append(tags, "jump") // kept as written, parsed into Agent.Jump
	if missing, extra := diffSets(tags, fields); len(missing)+len(extra) > 0 {
		t.Errorf("docs/deploy.md's agent table lacks %v and lists %v, which an agent does not have", missing, extra)
	}
}

// literal is the text of a cell that is exactly one `code span`, else "".
func literal(cell string) string {
	if len(cell) > 2 && strings.HasPrefix(cell, "`") && strings.HasSuffix(cell, "`") && strings.Count(cell, "`") == 2 {
		return cell[1 : len(cell)-1]
	}
	return ""
}

// diffSets returns what want has and got lacks, and what got has and want lacks.
func diffSets(want, got []string) (missing, extra []string) {
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	return missing, extra
}
