package nodetest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// runs for pods of namespace ns; stopped ones the kubelet has yet to
// garbage-collect are not listed.
func (n *Node) Running(ns string) ([]string, error) {
	ids, err := n.ctrOut("containers", "ls", "-q", fmt.Sprintf(`labels."io.kubernetes.pod.namespace"==%s`, ns))
	if err != nil {
		return nil, err
	}
	tasks, err := n.ctrOut("tasks", "ls")
	if err != nil {
		return nil, err
	}
	of := map[string]bool{}
	for _, id := range strings.Fields(ids) {
		of[id] = true
	}
	var running []string
	for _, l := range strings.Split(tasks, "\n") {
		if f := strings.Fields(l); len(f) == 3 && of[f[0]] && f[2] != "STOPPED" {
			running = append(running, f[0])
		}
	}
	return running, nil
}

// Memory is a pod's memory as its memory cgroup counts it.
type Memory struct {
	// RSS is resident memory: anonymous plus mapped file pages (what the
	// processes' RSS adds up to).
	RSS uint64
	// WorkingSet is usage less inactive file cache: what the kubelet
	// compares with the limit and evicts on.
	WorkingSet uint64
	// Peak is the highest usage since the pod started (the memory cgroup's
	// max_usage_in_bytes): what the limit must hold.
	Peak uint64
}

// PodMemory returns the memory of the pod with the given UID, all its
// containers together.
func (n *Node) PodMemory(uid string) (Memory, error) {
	var dir string
	_ = filepath.WalkDir("/sys/fs/cgroup/memory/kubepods", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "pod"+uid {
			dir = p
			return filepath.SkipAll
		}
		return nil
	})
	if dir == "" {
		return Memory{}, fmt.Errorf("nodetest: no memory cgroup for pod %s", uid)
	}
	b, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return Memory{}, err
	}
	stat := map[string]uint64{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			stat[f[0]], _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	u, err := os.ReadFile(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		return Memory{}, err
	}
	usage, _ := strconv.ParseUint(strings.TrimSpace(string(u)), 10, 64)
	p, err := os.ReadFile(filepath.Join(dir, "memory.max_usage_in_bytes"))
	if err != nil {
		return Memory{}, err
	}
	peak, _ := strconv.ParseUint(strings.TrimSpace(string(p)), 10, 64)
	m := Memory{RSS: stat["total_rss"] + stat["total_mapped_file"], Peak: peak}
	if inactive := stat["total_inactive_file"]; usage > inactive {
		m.WorkingSet = usage - inactive
	}
	return m, nil
}
