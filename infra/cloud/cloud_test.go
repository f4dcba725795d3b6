package cloud

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"

	"github.com/edgeline/edgeline/infra/cloud/hetznerfake"
)

const testPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDiR2x1m3l6Xq8Xo3s6o8Gm3G3yCwq8f8x6o5m5t5m5t ops@example.org"

func testSpec(t *testing.T) Spec {
	t.Helper()
	key, err := NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{
		Name: "edgeline-test", ServerType: "cx22", Location: "nbg1", Image: "ubuntu-24.04",
		SSHPublicKey: testPublicKey, HostKey: key, Zone: "example.org",
		Hostnames:  []string{"rancher.example.org", "login.example.org", "example.org"},
		SSHSources: []string{"198.51.100.23/32"}, APISources: []string{"198.51.100.23/32", "203.0.113.50/32"},
	}
}

func TestHostKey(t *testing.T) {
	key, err := NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	pub, fp, err := HostPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if fp != ssh.FingerprintSHA256(signer.PublicKey()) || !strings.HasPrefix(pub, "ssh-ed25519 ") {
		t.Errorf("HostPublicKey = %q, %q", pub, fp)
	}
	ud, err := UserData(Spec{HostKey: key})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#cloud-config\n", "ssh_deletekeys: true", "    -----BEGIN OPENSSH PRIVATE KEY-----", "ed25519_public: " + pub} {
		if !strings.Contains(ud, want) {
			t.Errorf("user data lacks %q:\n%s", want, ud)
		}
	}
}

// TestNative runs the native source against hetznerfake, which stands in for the Hetzner
// Cloud API (api.hetzner.cloud, servers and DNS zones): no machine here reaches it.
func TestNative(t *testing.T) {
	api := hetznerfake.Start("198.51.100.7", "2001:db8:1::", "example.org")
	defer api.Close()
	src := NewNative(hetznerfake.Token, api.URL)
	ctx := context.Background()
	spec := testSpec(t)

	out, err := src.Apply(ctx, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, fp, _ := HostPublicKey(spec.HostKey)
	want := Outputs{ServerID: out.ServerID, IPv4: "198.51.100.7", IPv6: "2001:db8:1::1", HostKeyFingerprint: fp,
		DNSNames: []string{"example.org", "login.example.org", "rancher.example.org"}}
	if !equal(out, want) || out.ServerID == "" {
		t.Errorf("Apply = %+v, want %+v", out, want)
	}
	if keys, fws, srvs, rrs := api.Counts(); keys != 1 || fws != 1 || srvs != 1 || rrs != 3 {
		t.Errorf("after apply: %d keys, %d firewalls, %d servers, %d rrsets; want 1, 1, 1, 3", keys, fws, srvs, rrs)
	}
	if got := api.Records("example.org", "login", "A"); !slices.Equal(got, []string{"198.51.100.7"}) {
		t.Errorf("login A = %v", got)
	}
	// Trap 9 of issue 16: the cluster is IPv4-only, so no name may send clients to IPv6.
	for _, name := range []string{"@", "login", "rancher"} {
		if got := api.Records("example.org", name, "AAAA"); len(got) != 0 {
			t.Errorf("%s AAAA = %v: the cluster does not listen on IPv6", name, got)
		}
	}
	if ud := api.UserData(spec.Name); !strings.Contains(ud, strings.Split(strings.TrimSpace(spec.HostKey), "\n")[1]) {
		t.Errorf("the server was not created with the host key in its user data:\n%s", ud)
	}

	before := len(api.Calls())
	again, err := src.Apply(ctx, spec, &out)
	if err != nil {
		t.Fatal(err)
	}
	if calls := api.Calls()[before:]; len(calls) != 0 {
		t.Errorf("second apply changed something: %v", calls)
	}
	if !equal(again, out) {
		t.Errorf("second apply = %+v, want %+v", again, out)
	}

	read, ok, err := src.Read(ctx, spec, out)
	if err != nil || !ok || !equal(read, out) {
		t.Errorf("Read = %+v, %v, %v", read, ok, err)
	}

	if err := src.Destroy(ctx, spec, out); err != nil {
		t.Fatal(err)
	}
	if keys, fws, srvs, rrs := api.Counts(); keys+fws+srvs+rrs != 0 {
		t.Errorf("after destroy: %d keys, %d firewalls, %d servers, %d rrsets left", keys, fws, srvs, rrs)
	}
	if _, ok, err := src.Read(ctx, spec, out); ok || err != nil {
		t.Errorf("Read after destroy = %v, %v; want gone", ok, err)
	}
	if err := src.Destroy(ctx, spec, out); err != nil {
		t.Errorf("second destroy: %v", err)
	}
}

// TestNativeSSHKeyReuse is trap 1 of issue 16: Hetzner refuses a second SSH key with the
// fingerprint of one already in the project (the user's own key, or a key another stack
// made). The native source must find that key by fingerprint and use it, and destroy
// must leave it, while a key of its own is created and removed again. hetznerfake stands
// in for the Hetzner Cloud API and enforces the same uniqueness.
func TestNativeSSHKeyReuse(t *testing.T) {
	ctx := context.Background()
	t.Run("the fake refuses a duplicate fingerprint as Hetzner does", func(t *testing.T) {
		api := hetznerfake.Start("198.51.100.7", "")
		defer api.Close()
		if _, err := api.AddKey("laptop", testPublicKey, nil); err != nil {
			t.Fatal(err)
		}
		_, err := api.AddKey("other-name", testPublicKey+" same key, other comment", nil)
		if err == nil || !strings.Contains(err.Error(), "same fingerprint") {
			t.Errorf("second key with the same fingerprint: %v", err)
		}
	})
	t.Run("a key already in the project is reused and kept", func(t *testing.T) {
		api := hetznerfake.Start("198.51.100.7", "", "example.org")
		defer api.Close()
		if _, err := api.AddKey("ops laptop", testPublicKey, map[string]string{"owner": "ops"}); err != nil {
			t.Fatal(err)
		}
		src := NewNative(hetznerfake.Token, api.URL)
		spec := testSpec(t)
		out, err := src.Apply(ctx, spec, nil)
		if err != nil {
			t.Fatalf("apply with the user's key already in the project: %v", err)
		}
		if got := api.Keys(); !slices.Equal(got, []string{"ops laptop"}) {
			t.Errorf("keys after apply = %v, want only the user's", got)
		}
		if err := src.Destroy(ctx, spec, out); err != nil {
			t.Fatal(err)
		}
		if got := api.Keys(); !slices.Equal(got, []string{"ops laptop"}) {
			t.Errorf("keys after destroy = %v: a key edgeline did not create was deleted", got)
		}
	})
	t.Run("two stacks with one key", func(t *testing.T) {
		api := hetznerfake.Start("198.51.100.7", "", "example.org")
		defer api.Close()
		src := NewNative(hetznerfake.Token, api.URL)
		a, b := testSpec(t), testSpec(t)
		b.Name = "edgeline-second"
		outA, err := src.Apply(ctx, a, nil)
		if err != nil {
			t.Fatal(err)
		}
		outB, err := src.Apply(ctx, b, nil)
		if err != nil {
			t.Fatalf("second stack with the same SSH key: %v", err)
		}
		if got := api.Keys(); !slices.Equal(got, []string{a.Name}) {
			t.Errorf("keys = %v, want the first stack's only", got)
		}
		if err := src.Destroy(ctx, b, outB); err != nil {
			t.Fatal(err)
		}
		if got := api.Keys(); !slices.Equal(got, []string{a.Name}) {
			t.Errorf("the second stack's destroy removed the first stack's key: %v", got)
		}
		if err := src.Destroy(ctx, a, outA); err != nil {
			t.Fatal(err)
		}
		if got := api.Keys(); len(got) != 0 {
			t.Errorf("keys after both destroys = %v, want none", got)
		}
	})
	t.Run("a foreign key holding the stack's name is not touched", func(t *testing.T) {
		api := hetznerfake.Start("198.51.100.7", "", "example.org")
		defer api.Close()
		other := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKPnb5yqEu6LJmlE7B+j0WmTq2hZoPpOIe7dTBcKLsKZ someone@example.org"
		if _, err := api.AddKey("edgeline-test", other, nil); err != nil {
			t.Fatal(err)
		}
		_, err := NewNative(hetznerfake.Token, api.URL).Apply(ctx, testSpec(t), nil)
		if err == nil || !strings.Contains(err.Error(), "was not made by this stack") {
			t.Errorf("apply over a foreign key of the same name: %v", err)
		}
		if got := api.Keys(); !slices.Equal(got, []string{"edgeline-test"}) {
			t.Errorf("keys = %v", got)
		}
	})
}

// TestNativeRemovesOldAAAA upgrades a stack whose DNS an older edgeline wrote with AAAA
// records (trap 9 of issue 16): the ones still pointing at the server go, one someone
// pointed elsewhere stays.
func TestNativeRemovesOldAAAA(t *testing.T) {
	api := hetznerfake.Start("198.51.100.7", "2001:db8:1::", "example.org")
	defer api.Close()
	for _, r := range [][2]string{{"login", "2001:db8:1::1"}, {"@", "2001:db8:1::1"}, {"rancher", "2001:db8:ffff::5"}} {
		if err := api.AddRecord("example.org", r[0], "AAAA", r[1]); err != nil {
			t.Fatal(err)
		}
	}
	spec := testSpec(t)
	if _, err := NewNative(hetznerfake.Token, api.URL).Apply(context.Background(), spec, nil); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{"login": nil, "@": nil, "rancher": {"2001:db8:ffff::5"}} {
		if got := api.Records("example.org", name, "AAAA"); !slices.Equal(got, want) {
			t.Errorf("%s AAAA after apply = %v, want %v", name, got, want)
		}
	}
}

// TestNativeWithoutDNS makes the server only: with no zone the operator points the
// hostnames at it.
func TestNativeWithoutDNS(t *testing.T) {
	api := hetznerfake.Start("198.51.100.7", "", "example.org")
	defer api.Close()
	spec := testSpec(t)
	spec.Zone = ""
	out, err := NewNative(hetznerfake.Token, api.URL).Apply(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, srvs, rrs := api.Counts(); srvs != 1 || rrs != 0 {
		t.Errorf("%d servers, %d rrsets; want 1, 0", srvs, rrs)
	}
	if len(out.DNSNames) != 3 || out.IPv6 != "" {
		t.Errorf("outputs = %+v", out)
	}
}

func TestNativeRefuses(t *testing.T) {
	api := hetznerfake.Start("198.51.100.7", "", "example.org")
	defer api.Close()
	ctx := context.Background()

	spec := testSpec(t)
	spec.Zone, spec.Hostnames = "example.net", []string{"login.example.net"}
	_, err := NewNative(hetznerfake.Token, api.URL).Apply(ctx, spec, nil)
	if err == nil || !strings.Contains(err.Error(), "zone example.net does not exist in this project") {
		t.Errorf("missing zone: %v", err)
	}

	_, err = NewNative("wrong", api.URL).Apply(ctx, testSpec(t), nil)
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("wrong token: %v", err)
	}

	spec = testSpec(t)
	spec.Hostnames = []string{"login.example.net"}
	_, err = NewNative(hetznerfake.Token, api.URL).Apply(ctx, spec, nil)
	if err == nil || !strings.Contains(err.Error(), `hostname "login.example.net" is not in DNS zone "example.org"`) {
		t.Errorf("hostname outside zone: %v", err)
	}
	if _, _, srvs, _ := api.Counts(); srvs != 0 {
		t.Errorf("a refused apply created %d servers", srvs)
	}
}

// TestNativeFirewall is trap 4 of issue 16: SSH and the k3s API were open to the whole
// internet. The firewall the native source writes to hetznerfake (standing in for the
// Hetzner Cloud API, which refuses sources that are not networks, as the fake does) lets
// in only the given networks, follows a change of them, and a spec without them creates
// nothing.
func TestNativeFirewall(t *testing.T) {
	api := hetznerfake.Start("198.51.100.7", "", "example.org")
	defer api.Close()
	ctx := context.Background()
	src := NewNative(hetznerfake.Token, api.URL)
	spec := testSpec(t)
	check := func(when string, want map[string][]string) {
		t.Helper()
		for port, w := range want {
			if got := api.FirewallSources(spec.Name, port); !slices.Equal(got, w) {
				t.Errorf("%s: port %s open to %v, want %v", when, port, got, w)
			}
		}
	}
	out, err := src.Apply(ctx, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	everyone := []string{"0.0.0.0/0", "::/0"}
	check("first apply", map[string][]string{
		"22": {"198.51.100.23/32"}, "6443": {"198.51.100.23/32", "203.0.113.50/32"},
		"80": everyone, "443": everyone, "51820-51821": everyone,
	})

	// The deployer moved (a new office, another CI runner): the rules follow.
	spec.SSHSources = []string{"192.0.2.0/28", "2001:db8:5::/48"}
	before := len(api.Calls())
	if _, err := src.Apply(ctx, spec, &out); err != nil {
		t.Fatal(err)
	}
	check("after the sources changed", map[string][]string{"22": {"192.0.2.0/28", "2001:db8:5::/48"}, "6443": {"198.51.100.23/32", "203.0.113.50/32"}})
	if !slices.ContainsFunc(api.Calls()[before:], func(c string) bool { return strings.Contains(c, "set_rules") }) {
		t.Errorf("changed sources did not update the rules: %v", api.Calls()[before:])
	}
	before = len(api.Calls())
	if _, err := src.Apply(ctx, spec, &out); err != nil {
		t.Fatal(err)
	}
	if calls := api.Calls()[before:]; len(calls) != 0 {
		t.Errorf("an unchanged apply changed something: %v", calls)
	}

	// The fake refuses what the real API refuses.
	_, _, err = src.Client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "loose", Rules: []hcloud.FirewallRule{{
		Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP, Port: hcloud.Ptr("22"),
		SourceIPs: []net.IPNet{{IP: net.IPv4(198, 51, 100, 23), Mask: net.CIDRMask(24, 32)}},
	}}})
	if err == nil || !strings.Contains(err.Error(), "not a valid network") {
		t.Errorf("hetznerfake took a source that is not a network: %v", err)
	}

	for _, c := range []struct {
		name     string
		ssh, api []string
		want     string
	}{
		{"no SSH sources", nil, []string{"198.51.100.23/32"}, "needs the networks allowed"},
		{"no API sources", []string{"198.51.100.23/32"}, nil, "needs the networks allowed"},
		{"an address, not a network", []string{"198.51.100.23/24"}, []string{"198.51.100.23/32"}, `"198.51.100.23/24" is not a network`},
	} {
		fresh := hetznerfake.Start("198.51.100.8", "", "example.org")
		spec := testSpec(t)
		spec.SSHSources, spec.APISources = c.ssh, c.api
		_, err := NewNative(hetznerfake.Token, fresh.URL).Apply(ctx, spec, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if calls := fresh.Calls(); len(calls) != 0 {
			t.Errorf("%s: the refused spec changed something: %v", c.name, calls)
		}
		fresh.Close()
	}
}

func TestExisting(t *testing.T) {
	spec := Spec{Address: "203.0.113.9", HostKeyFingerprint: "SHA256:abc", Hostnames: []string{"login.example.org"}}
	out, err := Existing{}.Apply(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Outputs{IPv4: "203.0.113.9", HostKeyFingerprint: "SHA256:abc", DNSNames: []string{"login.example.org"}}
	if !equal(out, want) {
		t.Errorf("Apply = %+v, want %+v", out, want)
	}
	if _, err := (Existing{}).Apply(context.Background(), Spec{Address: "nowhere"}, nil); err == nil {
		t.Error("bad address accepted")
	}
}

// TestTerraform drives the real OpenTofu binary through terraform-exec on
// testdata/localmodule, a local-only variant of infra/terraform (terraform_data in place
// of hcloud resources: no registry provider can be downloaded here).
func TestTerraform(t *testing.T) {
	bin := os.Getenv("EDGELINE_TEST_TOFU")
	if bin == "" {
		t.Skip("set EDGELINE_TEST_TOFU to a tofu or terraform binary (make test does)")
	}
	src := &Terraform{Binary: bin, Module: "testdata/localmodule"}
	ctx := context.Background()
	spec := testSpec(t)

	out, err := src.Apply(ctx, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Trap 4 of issue 16: infra/terraform's firewall.tf opens SSH and the API to the
	// given networks only.
	rules := firewallOutput(t, out.State)
	everyone := []string{"0.0.0.0/0", "::/0"}
	for port, want := range map[string][]string{"22": spec.SSHSources, "6443": spec.APISources, "443": everyone, "80": everyone, "51820-51821": everyone} {
		if got := rules[port]; !slices.Equal(got, want) {
			t.Errorf("rendered firewall: port %s open to %v, want %v", port, got, want)
		}
	}
	_, fp, _ := HostPublicKey(spec.HostKey)
	if !strings.HasPrefix(out.ServerID, "tf-") || out.IPv4 != "203.0.113.10" || out.IPv6 != "2001:db8::1" || out.HostKeyFingerprint != fp ||
		!slices.Equal(out.DNSNames, []string{"example.org", "login.example.org", "rancher.example.org"}) {
		t.Errorf("Apply = %+v", out)
	}
	if !strings.Contains(out.State, `"terraform_data"`) {
		t.Fatalf("state does not record the resources:\n%s", out.State)
	}

	again, err := src.Apply(ctx, spec, &out)
	if err != nil {
		t.Fatal(err)
	}
	if again.ServerID != out.ServerID {
		t.Errorf("second apply replaced the server: %s -> %s", out.ServerID, again.ServerID)
	}

	read, ok, err := src.Read(ctx, spec, again)
	if err != nil || !ok || read.IPv4 != out.IPv4 {
		t.Errorf("Read = %+v, %v, %v", read, ok, err)
	}

	if err := src.Destroy(ctx, spec, again); err != nil {
		t.Fatal(err)
	}
}

// TestTerraformFirewallRefuses gives infra/terraform's firewall.tf empty and malformed
// source lists: the real tofu refuses them before anything is made.
func TestTerraformFirewallRefuses(t *testing.T) {
	bin := os.Getenv("EDGELINE_TEST_TOFU")
	if bin == "" {
		t.Skip("set EDGELINE_TEST_TOFU to a tofu or terraform binary (make test does)")
	}
	src := &Terraform{Binary: bin, Module: "testdata/localmodule"}
	for _, c := range []struct {
		name     string
		ssh, api []string
	}{
		{"empty SSH list", []string{}, []string{"198.51.100.23/32"}},
		{"not a network", []string{"198.51.100.23/32"}, []string{"k3s.example.org"}},
	} {
		spec := testSpec(t)
		spec.SSHSources, spec.APISources = c.ssh, c.api
		// Past validateNew, so the module's own validation is what refuses.
		tf, _, cleanup, err := src.workdir(context.Background(), spec, "")
		if err != nil {
			t.Fatal(err)
		}
		err = tf.Apply(context.Background())
		cleanup()
		if err == nil || !strings.Contains(err.Error(), "at least one network") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// firewallOutput reads the firewall_rules output from a Terraform state: the source
// networks of each port.
func firewallOutput(t *testing.T, state string) map[string][]string {
	t.Helper()
	var st struct {
		Outputs map[string]struct {
			Value json.RawMessage `json:"value"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(state), &st); err != nil {
		t.Fatal(err)
	}
	var value []struct {
		Port      string   `json:"port"`
		SourceIPs []string `json:"source_ips"`
	}
	if err := json.Unmarshal(st.Outputs["firewall_rules"].Value, &value); err != nil {
		t.Fatalf("firewall_rules output: %v\n%s", err, state)
	}
	rules := map[string][]string{}
	for _, r := range value {
		rules[r.Port] = r.SourceIPs
	}
	if len(rules) == 0 {
		t.Fatalf("the state has no firewall_rules output:\n%s", state)
	}
	return rules
}

func equal(a, b Outputs) bool {
	return a.ServerID == b.ServerID && a.IPv4 == b.IPv4 && a.IPv6 == b.IPv6 &&
		a.HostKeyFingerprint == b.HostKeyFingerprint && slices.Equal(a.DNSNames, b.DNSNames)
}

// TestTerraformModuleParses checks infra/terraform, the module for real Hetzner and
// Cloudflare accounts, with the real tofu: it parses and is canonically formatted.
// `tofu validate` would need the hcloud and cloudflare providers, which cannot be
// downloaded here; the module's variables and outputs are the ones testdata/localmodule
// has, which TestTerraform applies.
func TestTerraformModuleParses(t *testing.T) {
	bin := os.Getenv("EDGELINE_TEST_TOFU")
	if bin == "" {
		t.Skip("set EDGELINE_TEST_TOFU to a tofu or terraform binary (make test does)")
	}
	out, err := exec.Command(bin, "fmt", "-check", "-diff", "-recursive", "../terraform").CombinedOutput()
	if err != nil {
		t.Fatalf("tofu fmt -check infra/terraform: %v\n%s", err, out)
	}
	// Trap 4 of issue 16: no rule of the real module opens a port to everyone by itself;
	// firewall.tf decides, and TestTerraform evaluates it.
	if b, err := os.ReadFile("../terraform/main.tf"); err != nil || strings.Contains(string(b), "0.0.0.0/0") || !strings.Contains(string(b), "local.firewall_rules") {
		t.Errorf("infra/terraform/main.tf must take its firewall rules from firewall.tf (local.firewall_rules) and name no source itself (%v)", err)
	}
	for _, f := range []string{"../terraform/variables.tf", "testdata/localmodule/main.tf"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"name", "server_type", "location", "image", "ssh_public_key", "ssh_key_fingerprint", "user_data", "zone", "hostnames", "dns_provider"} {
			if !strings.Contains(string(b), `variable "`+v+`"`) {
				t.Errorf("%s does not declare variable %q that the terraform source sets", f, v)
			}
		}
	}
}
