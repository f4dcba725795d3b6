package provider

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/edgeline/edgeline/infra/cloud"
	"github.com/edgeline/edgeline/infra/cloud/hetznerfake"
	"github.com/edgeline/edgeline/internal/remote"
	"github.com/edgeline/edgeline/internal/remote/sshtest"
)

// TestCloudHostRotatesHostKey is trap 3 of issue 16, wired: the host key a new VPS gets
// from cloud-init stays readable in its user data, so the CloudHost replaces it after
// the first login that key verified, and pins the new one. The VPS is a real sshd test
// host started with the very key the user data carries, laid out as a stock server
// (the rotation finds sshd's files with sshd -T and reloads it through its PidFile);
// the Hetzner API is the local stand-in, reporting the test host's address.
func TestCloudHostRotatesHostKey(t *testing.T) {
	sshtest.SSHD(t)
	ctx := context.Background()
	keys := sshtest.NewKeys(t)
	userDataKey, err := cloud.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	_, userDataFP, err := cloud.HostPublicKey(userDataKey)
	if err != nil {
		t.Fatal(err)
	}
	vps := sshtest.Start(t, keys, sshtest.Options{HostKey: userDataKey, SystemLayout: true})
	api := hetznerfake.Start(vps.IP, "2001:db8:1::", "example.org")
	defer api.Close()
	login := func(fp string) remote.Config {
		return remote.Config{Host: vps.IP, Port: vps.Port, User: "root", KeyFiles: []string{keys.ED25519}, HostKeyFingerprint: fp, Retries: -1}
	}
	hostHas := func(what, fp string) {
		t.Helper()
		ex, err := remote.Dial(ctx, login(fp))
		if err != nil {
			t.Fatalf("%s: a login pinned to %s: %v\nsshd log:\n%s", what, fp, err, vps.Log())
		}
		ex.Close()
	}
	refuses := func(what, fp string) {
		t.Helper()
		if _, err := remote.Dial(ctx, login(fp)); !errors.Is(err, remote.ErrHostKeyMismatch) {
			t.Errorf("%s: a login pinned to %s: %v, want a host key mismatch", what, fp, err)
		}
	}

	args := map[string]any{
		"cloud": "native", "name": "edgeline-prod", "serverType": "cx32", "location": "nbg1", "image": "ubuntu-24.04",
		"sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDiR2x1m3l6Xq8Xo3s6o8Gm3G3yCwq8f8x6o5m5t5m5t ops",
		"hostKey":      userDataKey, "hcloudToken": hetznerfake.Token, "hcloudEndpoint": api.URL,
		"sshSourceCidrs": []any{"198.51.100.23/32"}, "apiSourceCidrs": []any{"198.51.100.23/32"},
		"login": map[string]any{"port": vps.Port, "keyFile": keys.ED25519, "connectRetries": -1},
	}
	d := newDriver(t, TypeCloudHost)

	// First up: the server comes up with the key from user data, which verifies the
	// first login; then it has a new key, pinned in the state.
	out := d.create(props(args, "hcloudToken", "hostKey"))
	fp := str(out, "hostKeyFingerprint")
	if fp == userDataFP || !remote.ValidFingerprint(fp) || str(out, "userDataHostKeyFingerprint") != userDataFP {
		t.Fatalf("after the first up: pinned %q, user data key %q (want a new key, not %s)", fp, str(out, "userDataHostKeyFingerprint"), userDataFP)
	}
	if !strings.Contains(api.UserData("edgeline-prod"), strings.Split(userDataKey, "\n")[1]) {
		t.Fatal("the server was not created with the given host key in its user data")
	}
	hostHas("after the first up", fp)
	refuses("the key from user data after the first up", userDataFP)

	// Second up: nothing to do, and a converging update or a refresh rotates nothing.
	wantDiff(t, "second up", d.diff(props(args, "hcloudToken", "hostKey")))
	if out := d.update(props(args, "hcloudToken", "hostKey")); str(out, "hostKeyFingerprint") != fp {
		t.Errorf("an update with the same inputs changed the pinned key to %s", str(out, "hostKeyFingerprint"))
	}
	if _, st := d.read(); str(st, "hostKeyFingerprint") != fp {
		t.Errorf("a refresh changed the pinned key to %s", str(st, "hostKeyFingerprint"))
	}
	hostHas("after the second up", fp)

	// Downstream: the k3s server is installed over a connection pinned to the new key,
	// as the program wires the CloudHost's output into it.
	conn := map[string]any{"host": vps.IP, "port": vps.Port, "keyFile": keys.ED25519, "hostKeyFingerprint": fp, "connectRetries": -1}
	server := map[string]any{"connection": conn, "name": "vps-1", "externalIP": vps.IP, "flannelBackend": "wireguard-native", "install": standin}
	sd := newDriver(t, TypeK3sServer)
	sd.create(props(server))

	// An explicit request rotates again.
	args["hostKeyRotation"] = "2026-12"
	wantDiff(t, "rotation asked", d.diff(props(args, "hcloudToken", "hostKey")), "hostKeyRotation")
	fp2 := str(d.update(props(args, "hcloudToken", "hostKey")), "hostKeyFingerprint")
	if fp2 == fp || fp2 == userDataFP {
		t.Fatalf("asked rotation: pinned %s, want a new key", fp2)
	}
	hostHas("after the asked rotation", fp2)
	refuses("the previous key after the asked rotation", fp)
	conn = maps.Clone(conn)
	conn["hostKeyFingerprint"] = fp2
	server["connection"] = conn
	sd.update(props(server))

	// The host key changes behind edgeline's back (a rebuild, or someone in the middle):
	// the next run stops, naming the fix.
	fp3, err := remote.RotateHostKey(ctx, login(fp2))
	if err != nil {
		t.Fatal(err)
	}
	server["labels"] = map[string]any{"edgeline.io/role": "cloud"}
	_, err = sd.s.Update(p.UpdateRequest{ID: sd.id, Urn: sd.urn, State: sd.state, Inputs: sd.check(props(server))})
	if err == nil || !strings.Contains(err.Error(), "offered SSH host key "+fp3) || !strings.Contains(err.Error(), "pulumi config set edgeline:hostKeyFingerprint") {
		t.Errorf("k3s server after the host key changed: %v\nwant a refusal naming edgeline:hostKeyFingerprint", err)
	}
	args["hostKeyRotation"] = "2027-01"
	_, err = d.s.Update(p.UpdateRequest{ID: d.id, Urn: d.urn, State: d.state, Inputs: d.check(props(args, "hcloudToken", "hostKey"))})
	if err == nil || !strings.Contains(err.Error(), "pulumi config set edgeline:hostKeyFingerprint") {
		t.Errorf("rotation after the host key changed: %v\nwant a refusal naming edgeline:hostKeyFingerprint", err)
	}
	hostHas("after the refused rotation", fp3)

	// The fix: the operator pins the key read on the console; it is adopted once, so
	// a later rotation is not undone by the value left in the config.
	args["hostKeyRotation"] = "2026-12"
	args["hostKeyFingerprint"] = fp3
	wantDiff(t, "fingerprint pinned by hand", d.diff(props(args, "hcloudToken", "hostKey")), "hostKeyFingerprint")
	if got := str(d.update(props(args, "hcloudToken", "hostKey")), "hostKeyFingerprint"); got != fp3 {
		t.Fatalf("after pinning %s by hand: pinned %s", fp3, got)
	}
	hostHas("after pinning by hand", fp3)
	wantDiff(t, "fingerprint pinned before", d.diff(props(args, "hcloudToken", "hostKey")))
	args["hostKeyRotation"] = "2027-02"
	fp4 := str(d.update(props(args, "hcloudToken", "hostKey")), "hostKeyFingerprint")
	if fp4 == fp3 {
		t.Fatal("asked rotation after pinning by hand: the key stayed")
	}
	hostHas("after the last rotation", fp4)
	wantDiff(t, "fingerprint left in the config after a rotation", d.diff(props(args, "hcloudToken", "hostKey")))
	delete(args, "hostKeyFingerprint")
	wantDiff(t, "fingerprint removed from the config", d.diff(props(args, "hcloudToken", "hostKey")))
	d.delete()
}

// TestCloudHostRotationDue: the key is replaced while it is still the one from user
// data (a server made before the rotation was wired, or one whose rotation failed),
// and when asked; never for an existing host or without a login.
func TestCloudHostRotationDue(t *testing.T) {
	key, err := cloud.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	_, userData, err := cloud.HostPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	const other = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	state := func(cloud, pinned, rotation string, login bool) CloudHostState {
		st := CloudHostState{CloudHostArgs: CloudHostArgs{Cloud: cloud, Name: "edgeline-prod", HostKeyRotation: rotation}, GeneratedHostKey: key, HostKeyFingerprint: pinned}
		if login {
			st.Login = &Login{KeyFile: "/k"}
		}
		if cloud == "existing" {
			st.CloudHostArgs.HostKeyFingerprint = pinned
		}
		return st
	}
	for _, c := range []struct {
		name        string
		st          CloudHostState
		oldRotation string
		want        bool
	}{
		{"existing host", state("existing", userData, "", true), "", false},
		{"no login", state("native", userData, "", false), "", false},
		{"still the user data key", state("native", userData, "", true), "", true},
		{"terraform, still the user data key", state("terraform", userData, "", true), "", true},
		{"rotated", state("native", other, "", true), "", false},
		{"rotated, asked again", state("native", other, "2027", true), "2026", true},
		{"rotated, asked before", state("native", other, "2026", true), "2026", false},
	} {
		if got := c.st.rotationDue(c.oldRotation); got != c.want {
			t.Errorf("%s: rotation due %v, want %v", c.name, got, c.want)
		}
		if c.oldRotation != c.st.HostKeyRotation {
			continue
		}
		d, err := (&CloudHost{}).Diff(context.Background(), infer.DiffRequest[CloudHostArgs, CloudHostState]{State: c.st, Inputs: c.st.CloudHostArgs})
		if err != nil {
			t.Fatal(err)
		}
		if _, got := d.DetailedDiff["hostKeyRotation"]; got != c.want || d.HasChanges != c.want {
			t.Errorf("%s: diff %v, want an update to rotate: %v", c.name, changed(d), c.want)
		}
	}
}
