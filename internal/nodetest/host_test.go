package nodetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostSupport checks which machines may host the node against cgroup
// trees laid out as each kind of machine mounts them: cgroup v1 (with or
// without the hybrid unified mount) is supported, cgroup v2 and a machine
// without the pids hierarchy are refused with the reason, and so is a
// user other than root.
func TestHostSupport(t *testing.T) {
	tests := []struct {
		name  string
		files []string // created under the cgroup root
		euid  int
		want  string // "" means supported
	}{
		{"cgroup v1", []string{"pids/cgroup.procs", "memory/memory.stat"}, 0, ""},
		{"cgroup v1 with the unified mount", []string{"pids/cgroup.procs", "unified/cgroup.controllers"}, 0, ""},
		{"cgroup v2", []string{"cgroup.controllers", "cgroup.procs"}, 0, "cgroup v2"},
		{"no pids hierarchy", []string{"memory/memory.stat"}, 0, "pids hierarchy"},
		{"not root", []string{"pids/cgroup.procs"}, 1000, "needs root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tt.files {
				p := filepath.Join(root, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := hostSupport(root, tt.euid)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("hostSupport = %v, want supported", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("hostSupport = %v, want an error about %q", err, tt.want)
			}
		})
	}
}
