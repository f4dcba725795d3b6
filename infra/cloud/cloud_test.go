package cloud

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

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
		Hostnames: []string{"rancher.example.org", "login.example.org", "example.org"},
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
	ud, err := UserData(key)
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
	if keys, fws, srvs, rrs := api.Counts(); keys != 1 || fws != 1 || srvs != 1 || rrs != 6 {
		t.Errorf("after apply: %d keys, %d firewalls, %d servers, %d rrsets; want 1, 1, 1, 6", keys, fws, srvs, rrs)
	}
	if got := api.Records("example.org", "login", "A"); !slices.Equal(got, []string{"198.51.100.7"}) {
		t.Errorf("login A = %v", got)
	}
	if got := api.Records("example.org", "@", "AAAA"); !slices.Equal(got, []string{"2001:db8:1::1"}) {
		t.Errorf("apex AAAA = %v", got)
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
	for _, f := range []string{"../terraform/variables.tf", "testdata/localmodule/main.tf"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"name", "server_type", "location", "image", "ssh_public_key", "user_data", "zone", "hostnames", "dns_provider"} {
			if !strings.Contains(string(b), `variable "`+v+`"`) {
				t.Errorf("%s does not declare variable %q that the terraform source sets", f, v)
			}
		}
	}
}
