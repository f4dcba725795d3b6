package match

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// enrolled returns an index of n descriptors, 5 per person, and probes: new photos of every
// 97th person, as far from that person's samples as another photo of them would be.
func enrolled(n int) (*Index, []Descriptor) {
	r := rand.New(rand.NewPCG(5, 6))
	ix := NewIndex(DefaultThreshold, DefaultMargin)
	var probes []Descriptor
	for id := UserID(0); ix.Len() < n; id++ {
		base := randomDescriptor(r)
		ds := make([]Descriptor, 5)
		for i := range ds {
			ds[i] = near(r, base, 0.35)
		}
		ix.Set(id, ds)
		if id%97 == 0 {
			probes = append(probes, near(r, base, 0.35))
		}
	}
	return ix, probes
}

// BenchmarkSearch is 1:N identification over n descriptors (5 per person), probing with a new
// photo of an enrolled person. ns/op is the latency of one Search; "ms/search" the same in
// milliseconds, against the aim of 2 ms at 100 000.
func BenchmarkSearch(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		for _, procs := range []int{1, runtime.NumCPU()} {
			b.Run(fmt.Sprintf("n=%d/cpus=%d", n, procs), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				ix, probes := enrolled(n)
				b.ReportAllocs()
				b.ResetTimer()
				known := 0
				for i := 0; b.Loop(); i++ {
					if ix.Search(probes[i%len(probes)]).Known {
						known++
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/search")
				b.ReportMetric(float64(known)/float64(b.N), "known/op")
			})
		}
	}
}

// BenchmarkDistance is one Euclidean distance between two descriptors.
func BenchmarkDistance(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	x, y := randomDescriptor(r), randomDescriptor(r)
	var s float32
	for b.Loop() {
		s += Distance(&x, &y)
	}
	_ = s
}

// BenchmarkSearchVsFullScan runs Search and, side by side, a bare scan that sums every
// component of every row (no bookkeeping, no early abandon) over the same 100 000
// descriptors on one CPU, and reports Search's time as a ratio of the bare scan's: a figure
// that holds on a loaded machine, where absolute times do not.
func BenchmarkSearchVsFullScan(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ix, probes := enrolled(100_000)
	var search, full time.Duration
	var sink float32
	for i := 0; b.Loop(); i++ {
		q := probes[i%len(probes)]
		t0 := time.Now()
		sink += ix.Search(q).Distance
		t1 := time.Now()
		for row := range ix.Len() {
			sink += sqDist(q[:half], ix.head[row*half:(row+1)*half]) + sqDist(q[half:], ix.tail[row*half:(row+1)*half])
		}
		search, full = search+t1.Sub(t0), full+time.Since(t1)
	}
	_ = sink
	b.ReportMetric(float64(search.Nanoseconds())/float64(b.N)/1e6, "search-ms")
	b.ReportMetric(float64(full.Nanoseconds())/float64(b.N)/1e6, "fullscan-ms")
	b.ReportMetric(float64(search)/float64(full), "search/fullscan")
}
