package cloud

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/edgeline/edgeline/internal/apttest"
	"github.com/edgeline/edgeline/internal/remote"
	"github.com/edgeline/edgeline/internal/remote/sshtest"
)

// userData renders spec's cloud-init configuration and decodes it as cloud-init would.
func userData(t *testing.T, spec Spec) (string, map[string]any) {
	t.Helper()
	ud, err := UserData(spec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ud, "#cloud-config\n") {
		t.Fatalf("user data does not start with #cloud-config:\n%s", ud)
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(ud), &doc); err != nil {
		t.Fatalf("user data is not YAML: %v\n%s", err, ud)
	}
	return ud, doc
}

// TestUserDataTailscale is the VPS half of trap 6 of issue 16: with vpn-auth, cloud-init
// must install tailscale (from Tailscale's own apt repository), or k3s cannot join the
// tailnet. The rendered runcmd is decoded as cloud-init decodes it and run, as root, on
// a real sshd test host against a signed apt repository on loopback (package apttest)
// laid out as Tailscale's, with a stand-in tailscale package: apt checks the signature
// for real. A real tailnet cannot be reached from here.
func TestUserDataTailscale(t *testing.T) {
	key, err := NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	_, plain := userData(t, Spec{HostKey: key})
	if _, ok := plain["runcmd"]; ok {
		t.Errorf("runcmd without vpn-auth: %v", plain["runcmd"])
	}
	if _, err := UserData(Spec{HostKey: key, TailscaleRepo: "https://example.org/$(reboot)"}); err == nil {
		t.Error("a repository URL with shell syntax was accepted")
	}

	sshtest.SSHD(t)
	apttest.Tools(t)
	repo := apttest.Start(t, apttest.Options{}, apttest.Tailscale())
	ud, doc := userData(t, Spec{HostKey: key, TailscaleRepo: repo.URL})
	if keys, _ := doc["ssh_keys"].(map[string]any); keys["ed25519_private"] == nil {
		t.Errorf("the host key is gone from the user data:\n%s", ud)
	}
	cmds, _ := doc["runcmd"].([]any)
	if len(cmds) != 1 {
		t.Fatalf("runcmd = %v, want one command", doc["runcmd"])
	}
	argv, _ := cmds[0].([]any)
	if len(argv) != 5 || argv[0] != "sh" || argv[1] != "-c" || argv[4] != repo.URL {
		t.Fatalf("runcmd[0] = %q, want sh -c SCRIPT NAME %s", argv, repo.URL)
	}
	script := argv[2].(string)
	if strings.TrimSpace(script) != strings.TrimSpace(TailscaleInstallScript) {
		t.Errorf("the script in runcmd differs from TailscaleInstallScript:\n%s", script)
	}
	cmd := "sh -c " + remote.Quote(script) + " " + remote.Quote(argv[3].(string)) + " " + remote.Quote(argv[4].(string))

	keys := sshtest.NewKeys(t)
	hosts := []*sshtest.Host{sshtest.Start(t, keys, sshtest.Options{}), sshtest.Start(t, keys, sshtest.Options{})}
	kh := sshtest.WriteKnownHosts(t, hosts...)
	ctx := context.Background()
	dial := func(h *sshtest.Host) remote.Executor {
		ex, err := remote.Dial(ctx, remote.Config{Host: h.IP, Port: h.Port, User: "root", KeyFiles: []string{keys.ED25519}, KnownHostsFile: kh})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ex.Close() })
		return ex
	}
	ex := dial(hosts[0])
	for run := 1; run <= 2; run++ {
		if _, err := ex.Run(ctx, remote.Command{Intent: "cloud-init runcmd", Cmd: cmd, Sudo: true, Timeout: 3 * 60e9}); err != nil {
			t.Fatalf("run %d of the rendered runcmd: %v", run, err)
		}
	}
	res, err := ex.Run(ctx, remote.Command{Cmd: "tailscale; cat /etc/apt/sources.list.d/tailscale.list; dpkg-query -W -f='${Status}\\n' tailscale"})
	if err != nil {
		t.Fatal(err)
	}
	want := "1.84.0-standin\ndeb [signed-by=/etc/apt/keyrings/tailscale-archive-keyring.gpg] " + repo.URL + "/" + repo.ID + " " + repo.Codename + " main\ninstall ok installed\n"
	if string(res.Stdout) != want {
		t.Errorf("after the runcmd:\n%s\nwant:\n%s", res.Stdout, want)
	}
	kr, err := ex.Run(ctx, remote.Command{Cmd: "cat /etc/apt/keyrings/tailscale-archive-keyring.gpg"})
	if err != nil || !bytes.Equal(kr.Stdout, repo.Keyring) {
		t.Errorf("the keyring on the host is not the repository's signing key (%v)", err)
	}

	// A repository signed by a key other than the one it publishes (a tampered mirror):
	// apt refuses it, and nothing is installed.
	bad := apttest.Start(t, apttest.Options{WrongKey: true}, apttest.Tailscale())
	other := dial(hosts[1])
	badCmd := strings.Replace(cmd, remote.Quote(repo.URL), remote.Quote(bad.URL), 1)
	_, err = other.Run(ctx, remote.Command{Intent: "cloud-init runcmd", Cmd: badCmd, Sudo: true, Timeout: 3 * 60e9})
	if err == nil || !slices.ContainsFunc([]string{"NO_PUBKEY", "not signed", "signatures couldn't be verified"}, func(s string) bool { return strings.Contains(err.Error(), s) }) {
		t.Errorf("repository with the wrong key: %v", err)
	}
	if res, _ := other.Run(ctx, remote.Command{Cmd: "command -v tailscale || echo none"}); strings.TrimSpace(string(res.Stdout)) != "none" {
		t.Errorf("tailscale was installed from a repository with the wrong key: %s", res.Stdout)
	}
}
