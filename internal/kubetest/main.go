package kubetest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

var (
	mainRan  bool
	once     sync.Once
	shared   *Cluster
	startErr error
)

// Main runs the tests of a package that uses Get and stops the control
// plane, if a test started one. Use it as TestMain's body:
// os.Exit(kubetest.Main(m)).
func Main(m *testing.M) int {
	mainRan = true
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Get returns the test binary's control plane, starting it on first use. It
// skips t when EDGELINE_TEST_KUBE is unset and fails it when the control
// plane cannot start.
func Get(t testing.TB) *Cluster {
	t.Helper()
	dir := os.Getenv(EnvVar)
	if dir == "" {
		t.Skipf("no Kubernetes control plane: set %s to the directory with kube-apiserver, kube-controller-manager, kube-scheduler, kine and kwok (make test does)", EnvVar)
	}
	if !mainRan {
		t.Fatal("kubetest: call kubetest.Main from TestMain, so that the control plane is stopped")
	}
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		shared, startErr = Start(ctx, Options{BinDir: dir})
	})
	if startErr != nil {
		t.Fatalf("control plane did not start: %v", startErr)
	}
	return shared
}
