package nodetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// trackCgroup is the cgroup (v1 pids hierarchy) every node process starts
// in; containerd's shims stay there, the containers move to kubepods.
const trackCgroup = "/sys/fs/cgroup/pids/edgeline-node"

// podCgroup is the kubelet's cgroup for pods, in every v1 hierarchy.
const podCgroup = "kubepods"

var containerdSock = filepath.Join(StateDir, "containerd", "containerd.sock")

// guardTable is the nftables table that drops anything from or to the pod
// range crossing any interface but the bridge.
const guardTable = "edgeline-node"

// fixedPaths are the host paths outside StateDir that containerd, the CNI
// library and the kubelet write to whatever they are told (constants in
// their code). Start refuses to run when one exists that a node of ours
// did not create, so nothing of another Kubernetes installation is touched.
var fixedPaths = []string{
	"/run/containerd",     // shim sockets (/run/containerd/s)
	"/var/lib/kubelet",    // device-plugins, pod-resources
	"/var/lib/cni",        // libcni's result cache
	"/var/log/containers", // the kubelet's log symlinks
}

// kernelSysctls are the host settings the kubelet (kernel tunables) and the
// bridge plugin (forwarding) change; Stop puts the values from before back.
var kernelSysctls = []string{
	"net/ipv4/ip_forward",
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

// hostState is what the host looked like before the node started, kept in
// StateDir so that the cleanup after a crash restores it too.
type hostState struct {
	Sysctls map[string]string `json:"sysctls"`
	// Created lists the fixed paths that did not exist before.
	Created []string `json:"created"`
	// Tables lists the nftables tables that existed before.
	Tables []string `json:"tables"`
}

var statePath = filepath.Join(StateDir, "host.json")

// cgroupRoot is where the machine mounts its cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// hostSupport says why a machine with its cgroups under root, run as user
// euid, cannot host the node, or nil when it can.
func hostSupport(root string, euid int) error {
	if euid != 0 {
		return errors.New("a real node needs root (namespaces, mounts, the bridge)")
	}
	if _, err := os.Stat(filepath.Join(root, "pids", "cgroup.procs")); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return fmt.Errorf("this machine has cgroup v2 (the unified hierarchy at %s), and the test node supports cgroup v1 only: it tracks its processes in the v1 pids hierarchy and reads pod memory from v1's memory.stat; run it on a cgroup v1 machine (or boot with systemd.unified_cgroup_hierarchy=0)", root)
	}
	return fmt.Errorf("a real node needs the cgroup v1 pids hierarchy at %s/pids, which this machine does not mount", root)
}

// preflight checks what a node needs before touching anything.
func preflight(binDir string) error {
	if err := hostSupport(cgroupRoot, os.Geteuid()); err != nil {
		return fmt.Errorf("nodetest: %w", err)
	}
	for _, b := range []string{"kubelet", "kube-proxy", "containerd", "ctr", "containerd-shim-runc-v2", "runc", "coredns",
		"cni/bridge", "cni/host-local", "cni/loopback"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return fmt.Errorf("nodetest: %s is missing in %s: run `make node`", b, binDir)
		}
	}
	for _, c := range []string{"ip", "nft", "iptables-save", "ip6tables-save", "iptables", "ip6tables", "go"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("nodetest: %s is not installed: run `make setup`", c)
		}
	}
	return nil
}

// acquire takes the machine-wide node lock, waiting while another process
// holds it. The kernel releases it when the holder dies, however it dies.
func acquire(ctx context.Context, logf func(string, ...any)) (*os.File, error) {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("nodetest: node lock: %w", err)
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("nodetest: node lock: %w", err)
		}
		if !said {
			holder, _ := os.ReadFile(lockPath)
			logf("nodetest: waiting for the real node, held by %s", strings.TrimSpace(string(holder)))
			said = true
		}
		select {
		case <-ctx.Done():
			holder, _ := os.ReadFile(lockPath)
			f.Close()
			return nil, fmt.Errorf("nodetest: the real node stayed busy (held by %s): %w", strings.TrimSpace(string(holder)), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	exe, _ := os.Executable()
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d (%s)\n", os.Getpid(), filepath.Base(exe))), 0)
	return f, nil
}

// setupHost records the host state, then makes the state folders, the
// tracking cgroup, the bridge with the Service-range route, and the guard.
func setupHost() error {
	st := hostState{Sysctls: map[string]string{}}
	for _, s := range kernelSysctls {
		b, err := os.ReadFile("/proc/sys/" + s)
		if err != nil {
			return fmt.Errorf("nodetest: read %s: %w", s, err)
		}
		st.Sysctls[s] = strings.TrimSpace(string(b))
	}
	for _, p := range fixedPaths {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("nodetest: %s exists and no node of this harness made it: this machine seems to run Kubernetes or containerd already; a test node would disturb it", p)
		}
		st.Created = append(st.Created, p)
	}
	tables, err := nftTables()
	if err != nil {
		return err
	}
	st.Tables = tables
	for _, d := range []string{"logs", "containerd", "kubelet", "kube-proxy", "cni/net.d", "registry", "images"} {
		if err := os.MkdirAll(filepath.Join(StateDir, d), 0o755); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(statePath, b, 0o600); err != nil {
		return err
	}
	if err := os.Mkdir(trackCgroup, 0o755); err != nil {
		return fmt.Errorf("nodetest: tracking cgroup: %w", err)
	}
	steps := [][]string{
		{"ip", "link", "add", Bridge, "type", "bridge"},
		{"ip", "addr", "add", IP + "/24", "dev", Bridge},
		{"ip", "link", "set", Bridge, "up"},
		// Service IPs without a kube-proxy rule stay on the bridge too.
		{"ip", "route", "add", ServiceCIDR, "dev", Bridge},
		{"nft", "-f", "-"},
	}
	guard := fmt.Sprintf(`table inet %[1]s {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		ip saddr %[2]s oifname != %[3]q counter drop comment "pods never leave this machine"
		ip daddr %[2]s iifname != %[3]q counter drop comment "nothing outside reaches the pods"
	}
}
`, guardTable, PodCIDR, Bridge)
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		if s[0] == "nft" {
			cmd.Stdin = strings.NewReader(guard)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("nodetest: %s: %w: %s", strings.Join(s, " "), err, out)
		}
	}
	return nil
}
