package provider

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blang/semver"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi-go-provider/integration"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/property"

	"github.com/edgeline/edgeline/infra/cloud"
	"github.com/edgeline/edgeline/infra/cloud/hetznerfake"
	"github.com/edgeline/edgeline/internal/kubetest"
)

// The tests drive each resource through the provider's gRPC surface in-process
// (pulumi-go-provider's integration server): check, create, diff, update, delete, as
// the engine calls them. What the resources act on is real: sshd test hosts, a real
// Kubernetes API server, the real tofu; only the Hetzner API is the local stand-in.

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// Type tokens of the resources, as Annotate sets them.
const (
	TypePassword    = "edgeline:index:Password"
	TypeCloudHost   = "edgeline:index:CloudHost"
	TypeK3sServer   = "edgeline:index:K3sServer"
	TypeK3sAgent    = "edgeline:index:K3sAgent"
	TypeHelmRelease = "edgeline:index:HelmRelease"
)

// driver runs one resource's lifecycle.
type driver struct {
	t     *testing.T
	s     integration.Server
	urn   resource.URN
	id    string
	state property.Map
}

func newDriver(t *testing.T, typ string) *driver {
	t.Helper()
	prov, err := New()
	if err != nil {
		t.Fatal(err)
	}
	s, err := integration.NewServer(context.Background(), Name, semver.MustParse(Version), integration.WithProvider(prov))
	if err != nil {
		t.Fatal(err)
	}
	return &driver{t: t, s: s, urn: resource.NewURN("test", "edgeline", "", tokens.Type(typ), "r")}
}

// props converts plain Go values to a property map; keys listed in secret are marked
// secret, as a program marks them.
func props(m map[string]any, secret ...string) property.Map {
	pm := resource.FromResourcePropertyMap(resource.NewPropertyMapFromMap(m))
	out := pm.AsMap()
	for _, k := range secret {
		out[k] = out[k].WithSecret(true)
	}
	return property.NewMap(out)
}

func (d *driver) check(inputs property.Map) property.Map {
	d.t.Helper()
	res, err := d.s.Check(p.CheckRequest{Urn: d.urn, State: d.state, Inputs: inputs})
	if err != nil {
		d.t.Fatalf("check: %v", err)
	}
	if len(res.Failures) > 0 {
		d.t.Fatalf("check failures: %+v", res.Failures)
	}
	return res.Inputs
}

func (d *driver) create(inputs property.Map) property.Map {
	d.t.Helper()
	in := d.check(inputs)
	if _, err := d.s.Create(p.CreateRequest{Urn: d.urn, Properties: in, DryRun: true}); err != nil {
		d.t.Fatalf("preview create: %v", err)
	}
	res, err := d.s.Create(p.CreateRequest{Urn: d.urn, Properties: in})
	if err != nil {
		d.t.Fatalf("create: %v", err)
	}
	d.id, d.state = res.ID, res.Properties
	return res.Properties
}

func (d *driver) diff(inputs property.Map) p.DiffResponse {
	d.t.Helper()
	res, err := d.s.Diff(p.DiffRequest{ID: d.id, Urn: d.urn, State: d.state, Inputs: d.check(inputs)})
	if err != nil {
		d.t.Fatalf("diff: %v", err)
	}
	return res
}

func (d *driver) update(inputs property.Map) property.Map {
	d.t.Helper()
	in := d.check(inputs)
	res, err := d.s.Update(p.UpdateRequest{ID: d.id, Urn: d.urn, State: d.state, Inputs: in})
	if err != nil {
		d.t.Fatalf("update: %v", err)
	}
	d.state = res.Properties
	return res.Properties
}

// read refreshes the resource; it returns "" as ID when the resource is gone.
func (d *driver) read() (string, property.Map) {
	d.t.Helper()
	res, err := d.s.Read(p.ReadRequest{ID: d.id, Urn: d.urn, Properties: d.state})
	if err != nil {
		d.t.Fatalf("read: %v", err)
	}
	return res.ID, res.Properties
}

func (d *driver) delete() {
	d.t.Helper()
	if err := d.s.Delete(p.DeleteRequest{ID: d.id, Urn: d.urn, Properties: d.state}); err != nil {
		d.t.Fatalf("delete: %v", err)
	}
}

func pCreate(d *driver, in property.Map) p.CreateRequest {
	return p.CreateRequest{Urn: d.urn, Properties: in}
}

func str(m property.Map, key string) string { return m.Get(key).AsString() }

// changed lists the properties a diff reports, with "!" after those that replace.
func changed(d p.DiffResponse) []string {
	var out []string
	for k, v := range d.DetailedDiff {
		if v.Kind == p.UpdateReplace {
			k += "!"
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func wantDiff(t *testing.T, what string, d p.DiffResponse, want ...string) {
	t.Helper()
	if got := changed(d); !slices.Equal(got, want) || d.HasChanges != (len(want) > 0) {
		t.Errorf("%s: diff %v (has changes %v), want %v", what, got, d.HasChanges, want)
	}
}

func TestPassword(t *testing.T) {
	d := newDriver(t, TypePassword)
	in := props(map[string]any{"length": 24})
	out := d.create(in)
	pw := out.Get("result")
	if !pw.Secret() || len(pw.AsString()) != 24 {
		t.Errorf("result secret=%v length=%d, want a 24-character secret", pw.Secret(), len(pw.AsString()))
	}
	wantDiff(t, "same length", d.diff(in))
	wantDiff(t, "new length", d.diff(props(map[string]any{"length": 32})), "length!")
	d.delete()

	bad := newDriver(t, TypePassword)
	in = bad.check(props(map[string]any{"length": 4}))
	if _, err := bad.s.Create(p.CreateRequest{Urn: bad.urn, Properties: in}); err == nil || !strings.Contains(err.Error(), "want 16 to 256") {
		t.Errorf("short password: %v", err)
	}
}

// TestCloudHost runs the native source against hetznerfake, the local stand-in for the
// Hetzner Cloud and DNS API (no machine here reaches api.hetzner.cloud).
func TestCloudHost(t *testing.T) {
	api := hetznerfake.Start("198.51.100.7", "2001:db8:1::", "example.org")
	defer api.Close()
	args := map[string]any{
		"cloud": "native", "name": "edgeline-prod", "serverType": "cx22", "location": "nbg1", "image": "ubuntu-24.04",
		"sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDiR2x1m3l6Xq8Xo3s6o8Gm3G3yCwq8f8x6o5m5t5m5t ops",
		"domain":       "example.org", "hostnames": []any{"login.example.org", "rancher.example.org"},
		"hcloudToken": hetznerfake.Token, "hcloudEndpoint": api.URL,
		"sshSourceCidrs": []any{"198.51.100.23/32"}, "apiSourceCidrs": []any{"198.51.100.23/32"},
		"tailscaleRepo": "https://pkgs.tailscale.com/stable",
	}
	d := newDriver(t, TypeCloudHost)
	out := d.create(props(args, "hcloudToken"))

	key := out.Get("generatedHostKey")
	if !key.Secret() || key.AsString() == "" {
		t.Fatalf("generated host key: secret=%v empty=%v", key.Secret(), key.AsString() == "")
	}
	_, fp, err := cloud.HostPublicKey(key.AsString())
	if err != nil {
		t.Fatal(err)
	}
	if str(out, "hostKeyFingerprint") != fp || str(out, "ipv4Address") != "198.51.100.7" || str(out, "ipv6Address") != "2001:db8:1::1" {
		t.Errorf("outputs: fingerprint %s (want %s), ipv4 %s, ipv6 %s", str(out, "hostKeyFingerprint"), fp, str(out, "ipv4Address"), str(out, "ipv6Address"))
	}
	if !out.Get("hcloudToken").Secret() {
		t.Error("the API token is not secret in the state")
	}
	if !strings.Contains(api.UserData("edgeline-prod"), strings.Split(key.AsString(), "\n")[1]) {
		t.Error("the server was not created with the generated host key")
	}
	// Trap 6 of issue 16: vpn-auth's tailscale comes from cloud-init on the VPS.
	if ud := api.UserData("edgeline-prod"); !strings.Contains(ud, "edgeline-install-tailscale\n    - \"https://pkgs.tailscale.com/stable\"") {
		t.Errorf("the server's cloud-init does not install tailscale from the tailscaleRepo input:\n%s", ud)
	}

	calls := len(api.Calls())
	wantDiff(t, "unchanged", d.diff(props(args, "hcloudToken")))
	args["hostnames"] = []any{"login.example.org", "app.example.org"}
	wantDiff(t, "hostnames", d.diff(props(args, "hcloudToken")), "hostnames")
	out = d.update(props(args, "hcloudToken"))
	if got := api.Records("example.org", "rancher", "A"); len(got) != 0 {
		t.Errorf("rancher A record still there after it left the list: %v", got)
	}
	if got := api.Records("example.org", "app", "A"); !slices.Equal(got, []string{"198.51.100.7"}) {
		t.Errorf("app A = %v", got)
	}
	if str(out, "hostKeyFingerprint") != fp {
		t.Error("the host key changed on update")
	}
	for _, c := range api.Calls()[calls:] {
		if strings.Contains(c, "/servers") {
			t.Errorf("a DNS change touched the server: %s", c)
		}
	}
	// Trap 4 of issue 16: the firewall follows the allowed networks in place.
	args["sshSourceCidrs"] = []any{"192.0.2.0/28"}
	wantDiff(t, "ssh sources", d.diff(props(args, "hcloudToken")), "sshSourceCidrs")
	d.update(props(args, "hcloudToken"))
	if got := api.FirewallSources("edgeline-prod", "22"); !slices.Equal(got, []string{"192.0.2.0/28"}) {
		t.Errorf("SSH open to %v after the update, want 192.0.2.0/28", got)
	}
	args["serverType"] = "cx32"
	wantDiff(t, "server type", d.diff(props(args, "hcloudToken")), "serverType!")

	if id, st := d.read(); id != "edgeline-prod" || str(st, "ipv4Address") != "198.51.100.7" {
		t.Errorf("refresh: id %q, ipv4 %q", id, str(st, "ipv4Address"))
	}

	d.delete()
	if keys, fws, srvs, rrs := api.Counts(); keys+fws+srvs+rrs != 0 {
		t.Errorf("after delete: %d keys, %d firewalls, %d servers, %d rrsets left", keys, fws, srvs, rrs)
	}
	// A server deleted behind Pulumi's back is reported gone on refresh.
	if id, _ := d.read(); id != "" {
		t.Errorf("refresh of a deleted server: id %q, want gone", id)
	}
}

// TestCloudHostTerraform applies testdata/localmodule-equivalent infra/cloud test module
// through the resource with the real tofu binary, and keeps Terraform's state secret.
func TestCloudHostTerraform(t *testing.T) {
	bin := os.Getenv("EDGELINE_TEST_TOFU")
	if bin == "" {
		t.Skip("set EDGELINE_TEST_TOFU to a tofu or terraform binary (make test does)")
	}
	args := map[string]any{
		"cloud": "terraform", "name": "edgeline-tf", "serverType": "cx22", "location": "nbg1", "image": "ubuntu-24.04",
		"sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDiR2x1m3l6Xq8Xo3s6o8Gm3G3yCwq8f8x6o5m5t5m5t ops",
		"domain":       "example.org", "hostnames": []any{"login.example.org"},
		"terraformBinary": bin, "terraformDir": "../cloud/testdata/localmodule",
		"sshSourceCidrs": []any{"198.51.100.23/32"}, "apiSourceCidrs": []any{"198.51.100.23/32"},
	}
	d := newDriver(t, TypeCloudHost)
	out := d.create(props(args))
	if str(out, "ipv4Address") != "203.0.113.10" || !out.Get("sourceState").Secret() || !strings.Contains(out.Get("sourceState").AsString(), "terraform_data") {
		t.Errorf("terraform outputs: ipv4 %s, state secret %v", str(out, "ipv4Address"), out.Get("sourceState").Secret())
	}
	wantDiff(t, "unchanged", d.diff(props(args)))
	d.delete()
}

// TestCloudHostExisting checks that an existing host's pinned fingerprint, an input,
// comes back as the hostKeyFingerprint output: one name, one value in the state.
func TestCloudHostExisting(t *testing.T) {
	const fp = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	args := map[string]any{"cloud": "existing", "name": "edgeline-old", "address": "198.51.100.9", "hostKeyFingerprint": fp, "hostnames": []any{"login.example.org"}}
	d := newDriver(t, TypeCloudHost)
	out := d.create(props(args))
	if str(out, "hostKeyFingerprint") != fp || str(out, "ipv4Address") != "198.51.100.9" {
		t.Errorf("outputs: fingerprint %q, ipv4 %q", str(out, "hostKeyFingerprint"), str(out, "ipv4Address"))
	}
	wantDiff(t, "unchanged", d.diff(props(args)))
	args["hostKeyFingerprint"] = "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	wantDiff(t, "new fingerprint", d.diff(props(args)), "hostKeyFingerprint")
	if out := d.update(props(args)); str(out, "hostKeyFingerprint") != args["hostKeyFingerprint"] {
		t.Errorf("after update: fingerprint %q", str(out, "hostKeyFingerprint"))
	}
	d.delete()
}

// TestDiffNamesInputs runs every resource's Diff once: a replace input that names no
// field of the resource's Args panics.
func TestDiffNamesInputs(t *testing.T) {
	ctx := context.Background()
	for name, run := range map[string]func() error{
		"Password": func() error {
			_, err := (&Password{}).Diff(ctx, infer.DiffRequest[PasswordArgs, PasswordState]{})
			return err
		},
		"CloudHost": func() error {
			_, err := (&CloudHost{}).Diff(ctx, infer.DiffRequest[CloudHostArgs, CloudHostState]{})
			return err
		},
		"K3sServer": func() error {
			_, err := (&K3sServer{}).Diff(ctx, infer.DiffRequest[K3sServerArgs, K3sServerState]{})
			return err
		},
		"K3sAgent": func() error {
			_, err := (&K3sAgent{}).Diff(ctx, infer.DiffRequest[K3sAgentArgs, K3sAgentState]{})
			return err
		},
		"HelmRelease": func() error {
			_, err := (&HelmRelease{}).Diff(ctx, infer.DiffRequest[HelmReleaseArgs, HelmReleaseState]{})
			return err
		},
	} {
		if err := run(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestConnectionLimits: a Connection's connect timeout and retries reach remote, with
// defaults that ride out a booting VPS (trap 8 of issue 16: ≈ 35 s of retries were not
// enough for cloud-init to start sshd).
func TestConnectionLimits(t *testing.T) {
	for _, c := range []struct {
		name    string
		conn    Connection
		timeout time.Duration
		retries int
	}{
		{"defaults", Connection{}, DefaultConnectTimeout, DefaultConnectRetries},
		{"set", Connection{ConnectTimeoutSeconds: 45, ConnectRetries: 3}, 45 * time.Second, 3},
		{"no retry", Connection{ConnectRetries: -1}, DefaultConnectTimeout, -1},
	} {
		cfg := c.conn.config()
		if cfg.Timeout != c.timeout || cfg.Retries != c.retries {
			t.Errorf("%s: timeout %v, retries %d; want %v, %d", c.name, cfg.Timeout, cfg.Retries, c.timeout, c.retries)
		}
	}
	if DefaultConnectRetries < 12 {
		t.Errorf("DefaultConnectRetries = %d: fewer than 12 retries (2 s doubling to 10 s) do not cover two minutes of boot", DefaultConnectRetries)
	}
}
