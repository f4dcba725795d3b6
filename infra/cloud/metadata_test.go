package cloud

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMetadataBlockedFromPods runs the bootcmd of the rendered user data in network
// namespaces made for the test, laid out like the VPS: "vps" routes for a "pod" behind
// it (as the CNI bridge does) and reaches a "cloud" namespace that answers on the
// metadata address. Before the rule the pod reads the metadata (which serves the user
// data); after it the pod cannot, while the host still can. Needs root, ip, iptables and
// python3 (the metadata stand-in); EDGELINE_TEST_SSHD gates it with the other root tests.
func TestMetadataBlockedFromPods(t *testing.T) {
	if os.Getenv("EDGELINE_TEST_SSHD") == "" || os.Geteuid() != 0 {
		t.Skip("needs root and network namespaces: set EDGELINE_TEST_SSHD (make test does) and run as root")
	}
	for _, tool := range []string{"ip", "iptables", "/usr/bin/python3", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing (make setup installs it)", tool)
		}
	}
	key, err := NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	_, doc := userData(t, Spec{HostKey: key})
	boot, _ := doc["bootcmd"].([]any)
	if len(boot) != 1 {
		t.Fatalf("bootcmd = %v, want one command", doc["bootcmd"])
	}
	argv, _ := boot[0].([]any)
	if len(argv) != 3 || argv[0] != "sh" || argv[1] != "-c" {
		t.Fatalf("bootcmd[0] = %q, want sh -c CMD", argv)
	}

	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	vps, pod, cloud := "edl-vps-"+id, "edl-pod-"+id, "edl-cld-"+id
	run := func(args ...string) (string, error) {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) {
		t.Helper()
		if out, err := run(args...); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{vps, pod, cloud} {
		must("ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	in := func(ns string, args ...string) []string { return append([]string{"ip", "netns", "exec", ns}, args...) }
	// pod <-> vps: 10.42.0.0/30 (the pod network); vps <-> cloud: 172.31.1.0/30, and the
	// metadata address on the cloud side, routed like Hetzner's.
	must("ip", "link", "add", "p"+id, "netns", pod, "type", "veth", "peer", "name", "v"+id, "netns", vps)
	must("ip", "link", "add", "c"+id, "netns", cloud, "type", "veth", "peer", "name", "u"+id, "netns", vps)
	for _, c := range [][]string{
		in(pod, "ip", "addr", "add", "10.42.0.2/30", "dev", "p"+id),
		in(pod, "ip", "link", "set", "p"+id, "up"),
		in(pod, "ip", "route", "add", "default", "via", "10.42.0.1"),
		in(vps, "ip", "addr", "add", "10.42.0.1/30", "dev", "v"+id),
		in(vps, "ip", "link", "set", "v"+id, "up"),
		in(vps, "ip", "addr", "add", "172.31.1.2/30", "dev", "u"+id),
		in(vps, "ip", "link", "set", "u"+id, "up"),
		in(vps, "ip", "route", "add", MetadataAddress+"/32", "via", "172.31.1.1"),
		in(vps, "sysctl", "-qw", "net.ipv4.ip_forward=1"),
		in(cloud, "ip", "addr", "add", "172.31.1.1/30", "dev", "c"+id),
		in(cloud, "ip", "link", "set", "c"+id, "up"),
		in(cloud, "ip", "link", "set", "lo", "up"),
		in(cloud, "ip", "addr", "add", MetadataAddress+"/32", "dev", "lo"),
		in(cloud, "ip", "route", "add", "10.42.0.0/30", "via", "172.31.1.2"),
	} {
		must(c...)
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/user-data", []byte("#cloud-config\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("ip", in(cloud, "/usr/bin/python3", "-m", "http.server", "--bind", MetadataAddress, "--directory", dir, "80")[1:]...)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	fetch := func(ns string) error {
		_, err := run(in(ns, "curl", "-fsS", "-m", "3", "http://"+MetadataAddress+"/user-data")...)
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for fetch(vps) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the metadata stand-in did not answer the host")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := fetch(pod); err != nil {
		t.Fatalf("before the rule the pod cannot reach the metadata stand-in either (%v): the setup is wrong", err)
	}

	for boot := 1; boot <= 2; boot++ {
		must(in(vps, "sh", "-c", argv[2].(string))...)
	}
	if out, _ := run(in(vps, "iptables", "-t", "raw", "-S", "PREROUTING")...); strings.Count(out, MetadataAddress) != 1 {
		t.Errorf("after two boots the raw table holds:\n%s\nwant the rule once", out)
	}
	if err := fetch(pod); err == nil {
		t.Error("a pod still reads the metadata service (and the user data with it)")
	}
	if err := fetch(vps); err != nil {
		t.Errorf("the host lost the metadata service (cloud-init needs it): %v", err)
	}
}
