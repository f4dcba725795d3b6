package kubetest_test

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeline/edgeline/internal/kubetest"
)

// BenchmarkStart starts and stops a whole control plane (both nodes Ready)
// and reports the resident memory of each component after start.
//
//	EDGELINE_TEST_KUBE=$PWD/.cache/bin go test -run '^$' -bench Start -benchtime 3x ./internal/kubetest
func BenchmarkStart(b *testing.B) {
	dir := os.Getenv(kubetest.EnvVar)
	if dir == "" {
		b.Skipf("set %s to the directory with the control-plane binaries (make test does)", kubetest.EnvVar)
	}
	rss := map[string]float64{}
	var start time.Duration
	for b.Loop() {
		t0 := time.Now()
		c, err := kubetest.Start(b.Context(), kubetest.Options{BinDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		start += time.Since(t0)
		for name, pid := range c.PIDs() {
			rss[name] += float64(vmRSS(b, pid)) / (1 << 20)
		}
		c.Stop()
	}
	total := 0.0
	for name, v := range rss {
		b.ReportMetric(v/float64(b.N), name+"-MiB")
		total += v
	}
	b.ReportMetric(total/float64(b.N), "total-MiB")
	b.ReportMetric(start.Seconds()/float64(b.N), "start-s")
}

func vmRSS(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmRSS for pid %d", pid)
	return 0
}
