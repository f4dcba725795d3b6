package nodetest

import (
	"bufio"
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
