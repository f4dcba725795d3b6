package ansible

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/edgeline/edgeline/internal/apttest"
	"github.com/edgeline/edgeline/internal/remote"
	"github.com/edgeline/edgeline/internal/remote/sshtest"
)

// TestPlaybook runs the real playbook with Debian's ansible-playbook against two real sshd
// test hosts (package sshtest), with strict host key checking: first in check mode, then
// for real, then again to prove nothing changes. Test hosts are not Pis and run no
// systemd, so the test points the role at fake boot partitions (one per cmdline.txt
// layout), does not reboot, load kernel modules or manage services; everything else
// (cmdline edits, swap in fstab, host name, time servers, sshd drop-in) runs for real on
// the hosts' private /etc. The first host is in a vpn-auth site (trap 6 of issue 16):
// the role installs tailscale there from a signed apt repository on loopback laid out
// as Tailscale's (package apttest, a stand-in package; apt checks the signature for
// real). A real tailnet cannot be reached from here.
func TestPlaybook(t *testing.T) {
	bin := os.Getenv("EDGELINE_TEST_ANSIBLE")
	if bin == "" {
		t.Skip("set EDGELINE_TEST_ANSIBLE=ansible-playbook to run the playbook against sshd test hosts (make test does when ansible is installed)")
	}
	sshtest.SSHD(t)
	repo := apttest.Start(t, apttest.Options{}, apttest.Tailscale())
	keys := sshtest.NewKeys(t)
	hosts := []*sshtest.Host{sshtest.Start(t, keys, sshtest.Options{}), sshtest.Start(t, keys, sshtest.Options{})}
	kh := sshtest.WriteKnownHosts(t, hosts...)
	ctx := context.Background()

	const cmdline = "console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 fsck.repair=yes rootwait\n"
	layouts := []string{"/opt/fakeboot/firmware/cmdline.txt", "/opt/fakeboot/cmdline.txt"}
	var exs []remote.Executor
	for i, h := range hosts {
		ex, err := remote.Dial(ctx, remote.Config{Host: h.IP, Port: h.Port, User: "root", KeyFiles: []string{keys.ED25519}, KnownHostsFile: kh})
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		exs = append(exs, ex)
		if err := ex.Upload(ctx, remote.File{Path: layouts[i], Content: strings.NewReader(cmdline)}); err != nil {
			t.Fatal(err)
		}
		if _, err := ex.Run(ctx, remote.Command{Cmd: "echo '/var/swap none swap sw 0 0' >> /etc/fstab"}); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"pi-berlin-01", "pi-berlin-02"}
	p := Prepare{
		KnownHostsFile:  kh,
		AnsiblePlaybook: bin,
		Vars: map[string]any{
			"edge_boot_root":       "/opt/fakeboot",
			"edge_reboot":          false,
			"edge_load_modules":    false,
			"edge_manage_services": false,
			"edge_ntp_servers":     []string{"ntp.example.org"},
			"edge_packages":        []string{},
		},
	}
	for i, h := range hosts {
		p.Hosts = append(p.Hosts, Host{Name: names[i], Address: h.IP, Port: h.Port, User: "root", KeyFile: keys.ED25519})
	}
	p.Hosts[0].Vars = map[string]any{"edge_tailscale": true, "edge_tailscale_repo": repo.URL}
	state := func(ex remote.Executor, i int) string {
		res, err := ex.Run(ctx, remote.Command{Cmd: "cat " + layouts[i] + "; hostname; grep swap /etc/fstab; cat /etc/ssh/sshd_config.d/10-edgeline.conf /etc/modules-load.d/edgeline-k3s.conf /etc/systemd/timesyncd.conf.d/edgeline.conf /etc/apt/sources.list.d/tailscale.list 2>&1; tailscale 2>/dev/null || echo no-tailscale; true"})
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Stdout)
	}
	before := []string{state(exs[0], 0), state(exs[1], 1)}

	var out bytes.Buffer
	p.Check, p.Output = true, &out
	recaps, err := p.Run(ctx)
	if err != nil {
		t.Fatalf("check mode: %v\n%s", err, out.String())
	}
	for i, name := range names {
		if recaps[name].Changed == 0 {
			t.Errorf("check mode reports no changes for %s:\n%s", name, out.String())
		}
		if got := state(exs[i], i); got != before[i] {
			t.Errorf("check mode changed %s:\n%s\nwas:\n%s", name, got, before[i])
		}
	}

	out.Reset()
	p.Check = false
	if recaps, err = p.Run(ctx); err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "needs a reboot to enable memory cgroups") {
		t.Errorf("the play does not report the pending reboot:\n%s", out.String())
	}
	tailscale := "deb [signed-by=/etc/apt/keyrings/tailscale-archive-keyring.gpg] " + repo.URL + "/" + repo.ID + " " + repo.Codename + " main\n1.84.0-standin\n"
	if got := state(exs[0], 0); !strings.Contains(got, tailscale) {
		t.Errorf("%s (vpn-auth) after the play has no tailscale from the repository:\n%s", names[0], got)
	}
	if got := state(exs[1], 1); !strings.Contains(got, "no-tailscale") {
		t.Errorf("%s (no vpn-auth) got tailscale:\n%s", names[1], got)
	}
	for i, name := range names {
		got := state(exs[i], i)
		for _, want := range []string{
			strings.TrimSuffix(cmdline, "\n") + " cgroup_memory=1 cgroup_enable=memory\n" + name + "\n",
			"# /var/swap none swap sw 0 0",
			"PasswordAuthentication no",
			"vxlan\nwireguard",
			"NTP=ntp.example.org",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("%s after the play lacks %q:\n%s", name, want, got)
			}
		}
	}

	out.Reset()
	if recaps, err = p.Run(ctx); err != nil {
		t.Fatalf("second apply: %v\n%s", err, out.String())
	}
	for _, name := range names {
		if r, ok := recaps[name]; !ok || r.Changed != 0 {
			t.Errorf("second run on %s: %+v, want changed=0:\n%s", name, r, out.String())
		}
	}
	if strings.Contains(out.String(), "needs a reboot") {
		t.Error("second run asks for a reboot again")
	}
}

func TestPrepareValidate(t *testing.T) {
	kh := t.TempDir() + "/known_hosts"
	os.WriteFile(kh, nil, 0o600)
	for _, tc := range []struct {
		name string
		p    Prepare
		want string
	}{
		{"no hosts", Prepare{KnownHostsFile: kh}, "no hosts"},
		{"no known_hosts", Prepare{Hosts: []Host{{Name: "pi", Address: "10.0.0.2"}}}, "known_hosts"},
		{"bad name", Prepare{KnownHostsFile: kh, Hosts: []Host{{Name: "pi 1", Address: "10.0.0.2"}}}, "not a host name"},
		{"twice", Prepare{KnownHostsFile: kh, Hosts: []Host{{Name: "pi", Address: "a"}, {Name: "pi", Address: "b"}}}, "twice"},
		{"quote", Prepare{KnownHostsFile: kh, Hosts: []Host{{Name: "pi", Address: "a", Jump: "x' -oProxyCommand=sh"}}}, "quote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.p.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestPlaybookThroughJumpHost runs the playbook in check mode on a Pi that only its
// site's bastion reaches (sshtest: the Pi listens inside the bastion's network
// namespace). Both keys are checked against the run's known_hosts file alone: without the
// bastion's key there, the Pi is unreachable.
func TestPlaybookThroughJumpHost(t *testing.T) {
	bin := os.Getenv("EDGELINE_TEST_ANSIBLE")
	if bin == "" {
		t.Skip("set EDGELINE_TEST_ANSIBLE=ansible-playbook to run the playbook against sshd test hosts (make test does when ansible is installed)")
	}
	sshtest.SSHD(t)
	keys := sshtest.NewKeys(t)
	bastion := sshtest.Start(t, keys, sshtest.Options{OwnNetwork: true, Forwarding: true})
	pi := sshtest.Start(t, keys, sshtest.Options{NetworkOf: bastion, IP: "127.0.0.78", Port: 2201})
	p := Prepare{
		Hosts: []Host{{Name: "pi-gate", Address: pi.IP, Port: pi.Port, User: "root", KeyFile: keys.ED25519,
			Jump: "root@" + bastion.Addr}},
		KnownHostsFile:  sshtest.WriteKnownHosts(t, bastion, pi),
		Vars:            map[string]any{"edge_boot_root": "/opt/fakeboot", "edge_reboot": false, "edge_load_modules": false, "edge_manage_services": false, "edge_packages": []string{}},
		Check:           true,
		AnsiblePlaybook: bin,
	}
	var out bytes.Buffer
	p.Output = &out
	// Check mode on a host without a boot partition: the role fails at the command line
	// step, after it has logged in; a host that is reached has ok > 0.
	recaps, _ := p.Run(context.Background())
	if r := recaps["pi-gate"]; r.Unreachable != 0 || r.OK == 0 {
		t.Fatalf("through the bastion: %+v\n%s", r, out.String())
	}

	p.KnownHostsFile = sshtest.WriteKnownHosts(t, pi)
	out.Reset()
	recaps, err := p.Run(context.Background())
	// The only change from the run above is the bastion's key missing from the file.
	if r := recaps["pi-gate"]; err == nil || r.Unreachable == 0 {
		t.Fatalf("the bastion's key was not checked against the run's known_hosts: %+v, %v\n%s", r, err, out.String())
	}
}

func TestVariables(t *testing.T) {
	vars := Variables()
	for _, want := range []string{"edge_boot_root", "edge_hostname", "edge_ntp_servers", "edge_reboot", "edge_tailscale"} {
		if !slices.Contains(vars, want) {
			t.Errorf("Variables() = %v, lacks %s", vars, want)
		}
	}
}
