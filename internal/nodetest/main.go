package nodetest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeline/edgeline/internal/kubetest"
)

// The node of this test binary: started by the first Get, stopped when
// the last test holding it ends (or, at the latest, by Main).
var (
	mainRan bool
	mu      sync.Mutex
	shared  *Node
	users   int
)

// Main runs the tests of a package that uses Get (or kubetest.Get) and
// stops the node and the control plane, if a test started them. Use it as
// TestMain's body: os.Exit(nodetest.Main(m)).
func Main(m *testing.M) int {
	mainRan = true
	code := kubetest.Main(m)
	mu.Lock()
	n := shared
	shared = nil
	mu.Unlock()
	if n != nil {
		if err := n.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "nodetest: teardown: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Available says why tests cannot have a real node here, or returns nil
// when they can: EnvVar names the binaries and the machine can host the
// node (root, cgroup v1). Its error reads as a skip message.
func Available() error {
	if os.Getenv(EnvVar) == "" {
		why := ""
		if err := hostSupport(cgroupRoot, os.Geteuid()); err != nil {
			why = " (and this machine cannot host it: " + err.Error() + ")"
		}
		return fmt.Errorf("no real Kubernetes node: run as root on a cgroup v1 machine with %s set to the directory with kubelet, kube-proxy, containerd, runc, coredns, cni/ and the control plane; make test does when the machine can host the node, see mk/node.mk%s", EnvVar, why)
	}
	if err := hostSupport(cgroupRoot, os.Geteuid()); err != nil {
		return fmt.Errorf("no real Kubernetes node although %s is set: %w", EnvVar, err)
	}
	return nil
}

// Get returns the test binary's node. Tests that run at the same time
// share it; the first starts it (waiting while another package's tests
// hold the machine's node), and it stops when the last of them ends, so
// that the machine's node is free for other packages as soon as possible.
// Get skips t, saying why, when Available reports an error
// (EDGELINE_TEST_NODE unset, not root, cgroup v2) and fails it when the
// node cannot start.
func Get(t testing.TB) *Node {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	if !mainRan {
		t.Fatal("nodetest: call nodetest.Main from TestMain, so that the node is stopped")
	}
	mu.Lock()
	defer mu.Unlock()
	if shared == nil {
		// Another package's tests may hold the node for a while; wait at
		// most until 10 minutes before the test binary's deadline.
		wait := 20 * time.Minute
		if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
			if dl, ok := d.Deadline(); ok {
				wait = max(min(wait, time.Until(dl)-10*time.Minute), time.Minute)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		n, err := Start(ctx, Options{BinDir: os.Getenv(EnvVar), Log: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
		if err != nil {
			t.Fatalf("real node did not start: %v", err)
		}
		shared = n
	}
	n := shared
	users++
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if users--; users == 0 && shared == n {
			shared = nil
			if err := n.Stop(); err != nil {
				t.Errorf("nodetest: teardown: %v", err)
			}
		}
	})
	return n
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Running lists the containers (pod sandboxes included) that containerd
