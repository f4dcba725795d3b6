package nodetest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
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

// cleanup removes everything a node of this harness may have left: its
// processes (found by cgroup), mounts, the bridge and its veths, nftables
// tables and iptables chains, cgroups, fixed paths and StateDir, and puts
// the recorded sysctls back. It does nothing when nothing is left.
func cleanup() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(killTracked())
	var st hostState
	if b, err := os.ReadFile(statePath); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			add(fmt.Errorf("nodetest: %s: %w", statePath, err))
		}
	}
	add(unmountAll())
	add(removeNetwork(st))
	add(removeCgroups())
	for s, v := range st.Sysctls {
		if err := os.WriteFile("/proc/sys/"+s, []byte(v), 0o644); err != nil {
			add(fmt.Errorf("nodetest: restore %s: %w", s, err))
		}
	}
	for _, p := range st.Created {
		add(os.RemoveAll(p))
	}
	if len(errs) == 0 {
		add(os.RemoveAll(StateDir))
	}
	return errors.Join(errs...)
}

// killTracked kills every process in the tracking cgroup and the kubelet's
// pod cgroups (only this harness's node puts processes there) and waits
// until they are gone.
func killTracked() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := trackedPIDs()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nodetest: processes %v did not die", pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// trackedPIDs lists the processes in the tracking cgroup and under the
// pods cgroup of the pids hierarchy.
func trackedPIDs() []int {
	var pids []int
	for _, root := range []string{trackCgroup, filepath.Join("/sys/fs/cgroup/pids", podCgroup)} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// ownedMount reports whether a mount point is the node's.
func ownedMount(mp string) bool {
	for _, root := range append([]string{StateDir}, fixedPaths...) {
		if mp == root || strings.HasPrefix(mp, root+"/") {
			return true
		}
	}
	return false
}

// mounts lists the node's mount points, deepest first.
func mounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mps []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if ownedMount(mp) {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	return mps, s.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unmountAll() error {
	// A mount can hide another at the same point: repeat until none is left.
	for range 10 {
		mps, err := mounts()
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		for _, mp := range mps {
			_ = syscall.Unmount(mp, syscall.MNT_DETACH)
		}
	}
	mps, _ := mounts()
	return fmt.Errorf("nodetest: still mounted: %v", mps)
}

// removeNetwork deletes the bridge's veths, the bridge (its routes go with
// it), the guard, kube-proxy's tables, the kubelet's iptables chains and
// the iptables-nft tables that did not exist before.
func removeNetwork(st hostState) error {
	var errs []error
	if _, err := os.Stat("/sys/class/net/" + Bridge); err == nil {
		ports, _ := os.ReadDir("/sys/class/net/" + Bridge + "/brif")
		for _, p := range ports {
			if out, err := exec.Command("ip", "link", "del", p.Name()).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find") {
				errs = append(errs, fmt.Errorf("nodetest: ip link del %s: %s", p.Name(), out))
			}
		}
		if out, err := exec.Command("ip", "link", "del", Bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("nodetest: ip link del %s: %s", Bridge, out))
		}
	}
	for _, t := range []string{"inet " + guardTable, "ip kube-proxy", "ip6 kube-proxy"} {
		tables, _ := nftTables()
		if slices.Contains(tables, t) {
			if out, err := exec.Command("nft", append([]string{"delete", "table"}, strings.Fields(t)...)...).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("nodetest: nft delete table %s: %s", t, out))
			}
		}
	}
	for _, ipt := range []string{"iptables", "ip6tables"} {
		errs = append(errs, deleteChains(ipt))
	}
	if st.Tables != nil {
		tables, _ := nftTables()
		for _, t := range tables {
			if slices.Contains(st.Tables, t) || !emptyTable(t) {
				continue
			}
			if out, err := exec.Command("nft", append([]string{"delete", "table"}, strings.Fields(t)...)...).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("nodetest: nft delete table %s: %s", t, out))
			}
		}
	}
	return errors.Join(errs...)
}

// deleteChains flushes and deletes the iptables chains the kubelet and the
// CNI plugins make (KUBE-*, CNI-*), and the rules that jump to them.
func deleteChains(ipt string) error {
	out, err := exec.Command(ipt + "-save").Output()
	if err != nil {
		return fmt.Errorf("nodetest: %s-save: %w", ipt, err)
	}
	var errs []error
	table := ""
	var chains []string
	type rule struct{ table, spec string }
	var jumps []rule
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":KUBE-") || strings.HasPrefix(l, ":CNI-"):
			chains = append(chains, table+" "+strings.Fields(l[1:])[0])
		case strings.HasPrefix(l, "-A ") && (strings.Contains(l, " -j KUBE-") || strings.Contains(l, " -j CNI-")) &&
			!strings.HasPrefix(l, "-A KUBE-") && !strings.HasPrefix(l, "-A CNI-"):
			jumps = append(jumps, rule{table, strings.TrimPrefix(l, "-A ")})
		}
	}
	for _, j := range jumps {
		args := append([]string{"-t", j.table, "-D"}, splitRule(j.spec)...)
		if o, err := exec.Command(ipt, args...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("nodetest: %s %v: %s", ipt, args, o))
		}
	}
	for _, op := range []string{"-F", "-X"} {
		for _, c := range chains {
			tc := strings.Fields(c)
			if o, err := exec.Command(ipt, "-t", tc[0], op, tc[1]).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("nodetest: %s -t %s %s %s: %s", ipt, tc[0], op, tc[1], o))
			}
		}
	}
	return errors.Join(errs...)
}

// splitRule splits an iptables-save rule into arguments, keeping quoted
// comments whole.
func splitRule(s string) []string {
	var args []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				args = append(args, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		args = append(args, cur.String())
	}
	return args
}

// nftTables lists the nftables tables as "family name".
func nftTables() ([]string, error) {
	out, err := exec.Command("nft", "list", "tables").Output()
	if err != nil {
		return nil, fmt.Errorf("nodetest: nft list tables: %w", err)
	}
	var ts []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "table" {
			ts = append(ts, f[1]+" "+f[2])
		}
	}
	return ts, nil
}

// emptyTable reports whether an nftables table holds no rule and no set.
func emptyTable(t string) bool {
	out, err := exec.Command("nft", append([]string{"list", "table"}, strings.Fields(t)...)...).Output()
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == "}" || strings.HasPrefix(l, "table ") || strings.HasPrefix(l, "chain ") || strings.HasPrefix(l, "type ") {
			continue
		}
		return false
	}
	return true
}

// removeCgroups removes the pods' cgroups in every v1 hierarchy and the
// tracking cgroup, deepest first.
func removeCgroups() error {
	hier, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hier {
		for _, name := range []string{podCgroup, filepath.Base(trackCgroup)} {
			root := filepath.Join("/sys/fs/cgroup", h.Name(), name)
			var dirs []string
			_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
					errs = append(errs, fmt.Errorf("nodetest: rmdir %s: %w", dirs[i], err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists what a node of this harness left on the host: processes,
// mounts, interfaces, routes, nftables tables and rules, iptables chains,
// cgroups, changed sysctls and files. Empty after Stop.
func Leftovers() []string {
	var left []string
	if pids := trackedPIDs(); len(pids) > 0 {
		left = append(left, fmt.Sprintf("processes %v", pids))
	}
	if mps, _ := mounts(); len(mps) > 0 {
		left = append(left, fmt.Sprintf("mounts %v", mps))
	}
	if _, err := os.Stat("/sys/class/net/" + Bridge); err == nil {
		left = append(left, "interface "+Bridge)
	}
	for _, fam := range []string{"-4", "-6"} {
		out, _ := exec.Command("ip", fam, "route", "show", "table", "all").Output()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, Bridge) || strings.Contains(l, "10.88.0.") || strings.HasPrefix(l, ServiceCIDR) {
				left = append(left, "route "+l)
			}
		}
	}
	out, _ := exec.Command("ip", "-o", "addr").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "10.88.0.") {
			left = append(left, "address "+l)
		}
	}
	tables, _ := nftTables()
	for _, t := range tables {
		if strings.HasSuffix(t, " kube-proxy") || strings.HasSuffix(t, " "+guardTable) {
			left = append(left, "nftables table "+t)
		}
	}
	ruleset, _ := exec.Command("nft", "list", "ruleset").Output()
	for _, l := range strings.Split(string(ruleset), "\n") {
		if strings.Contains(l, "KUBE-") || strings.Contains(l, "CNI-") || strings.Contains(l, "10.88.0.") || strings.Contains(l, Bridge) {
			left = append(left, "nftables rule "+strings.TrimSpace(l))
		}
	}
	for _, ipt := range []string{"iptables-save", "ip6tables-save"} {
		out, _ := exec.Command(ipt).Output()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "KUBE-") || strings.Contains(l, "CNI-") || strings.Contains(l, "10.88.0.") {
				left = append(left, ipt+" "+l)
			}
		}
	}
	hier, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hier {
		for _, name := range []string{podCgroup, filepath.Base(trackCgroup)} {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h.Name(), name)); err == nil {
				left = append(left, "cgroup "+filepath.Join(h.Name(), name))
			}
		}
	}
	for _, p := range append([]string{StateDir}, fixedPaths...) {
		if _, err := os.Lstat(p); err == nil {
			left = append(left, "path "+p)
		}
	}
	return left
}
