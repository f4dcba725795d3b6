package match

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// randomDescriptor is a stand-in for a dlib descriptor: 128 components with the spread that
// puts two unrelated people ≈ 0.83 apart, as dlib's model does on testdata/faces.
func randomDescriptor(r *rand.Rand) Descriptor {
	var d Descriptor
	for i := range d {
		d[i] = float32(r.NormFloat64() * 0.052)
	}
	return d
}

// near returns d moved by about dist in a random direction, like another photo of the same face.
func near(r *rand.Rand, d Descriptor, dist float64) Descriptor {
	var n Descriptor
	var norm float64
	for i := range n {
		n[i] = float32(r.NormFloat64())
		norm += float64(n[i] * n[i])
	}
	s := dist / math.Sqrt(norm)
	for i := range d {
		d[i] += float32(float64(n[i]) * s)
	}
	return d
}

// bruteForce is the obvious reference implementation of Search.
func bruteForce(people map[UserID][]Descriptor, q Descriptor, threshold, margin float32) Result {
	per := map[UserID]float32{}
	for id, ds := range people {
		best := float32(math.Inf(1))
		for i := range ds {
			best = min(best, Distance(&q, &ds[i]))
		}
		per[id] = best
	}
	r := Result{Distance: float32(math.Inf(1)), Second: float32(math.Inf(1))}
	for id, d := range per {
		switch {
		case d < r.Distance:
			r.Second, r.Distance, r.ID = r.Distance, d, id
		case d < r.Second:
			r.Second = d
		}
	}
	// Distances beyond the cutoff are not measured.
	if cutoff := threshold + margin; r.Distance >= cutoff {
		r = Result{Distance: inf, Second: inf}
	} else if r.Second >= cutoff {
		r.Second = inf
	}
	r.Known = r.Distance <= threshold && r.Second-r.Distance >= margin
	return r
}

func TestDistance(t *testing.T) {
	var a, b Descriptor
	a[0], b[0] = 3, 0
	a[127], b[127] = 0, 4
	if got := Distance(&a, &b); got != 5 {
		t.Fatalf("Distance = %v, want 5", got)
	}
	if got := Distance(&a, &a); got != 0 {
		t.Fatalf("Distance to itself = %v, want 0", got)
	}
}

func TestSearchMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 7, 300, 20000} { // 20000 takes the parallel path
		people := map[UserID][]Descriptor{}
		ix := NewIndex(DefaultThreshold, DefaultMargin)
		for id := UserID(1); len(people) < n; id++ {
			base := randomDescriptor(r)
			ds := []Descriptor{base, near(r, base, 0.3), near(r, base, 0.4)}[:1+int(id)%3]
			people[id] = ds
			ix.Set(id, ds)
		}
		for probe := range 50 {
			var q Descriptor
			if n > 0 && probe%2 == 0 {
				q = near(r, people[UserID(1+probe%n)][0], 0.1*float64(probe%7))
			} else {
				q = randomDescriptor(r)
			}
			got, want := ix.Search(q), bruteForce(people, q, DefaultThreshold, DefaultMargin)
			if got.Known != want.Known || got.ID != want.ID ||
				!close(got.Distance, want.Distance) || !close(got.Second, want.Second) {
				t.Fatalf("n=%d probe %d: Search = %+v, brute force %+v", n, probe, got, want)
			}
		}
	}
}

func close(a, b float32) bool {
	if math.IsInf(float64(a), 1) || math.IsInf(float64(b), 1) {
		return a == b
	}
	return math.Abs(float64(a-b)) < 1e-5
}

func TestThresholdAndMargin(t *testing.T) {
	var amy, amyTwin, probe Descriptor
	amyTwin[0] = 0.2
	probe[1] = 0.3 // 0.3 from amy, 0.36 from the twin
	tests := []struct {
		name              string
		threshold, margin float32
		people            map[UserID][]Descriptor
		want              Result
	}{
		{"empty index is unknown", 0.5, 0.05, nil,
			Result{Distance: inf, Second: inf}},
		{"within threshold, nobody else", 0.5, 0.05, map[UserID][]Descriptor{1: {amy}},
			Result{ID: 1, Distance: 0.3, Second: inf, Known: true}},
		{"beyond threshold and margin", 0.2, 0.05, map[UserID][]Descriptor{1: {amy}},
			Result{Distance: inf, Second: inf}},
		{"beyond threshold, within cutoff", 0.28, 0.05, map[UserID][]Descriptor{1: {amy}},
			Result{ID: 1, Distance: 0.3, Second: inf}},
		{"second person too close", 0.5, 0.1, map[UserID][]Descriptor{1: {amy}, 2: {amyTwin}},
			Result{ID: 1, Distance: 0.3, Second: sqrt32(0.13)}},
		{"second person far enough", 0.5, 0.05, map[UserID][]Descriptor{1: {amy}, 2: {amyTwin}},
			Result{ID: 1, Distance: 0.3, Second: sqrt32(0.13), Known: true}},
		{"own second sample does not count as second person", 0.5, 0.1, map[UserID][]Descriptor{1: {amy, amyTwin}},
			Result{ID: 1, Distance: 0.3, Second: inf, Known: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewIndex(tt.threshold, tt.margin)
			for id, ds := range tt.people {
				ix.Set(id, ds)
			}
			got := ix.Search(probe)
			if got.ID != tt.want.ID || got.Known != tt.want.Known || !close(got.Distance, tt.want.Distance) || !close(got.Second, tt.want.Second) {
				t.Fatalf("Search = %+v, want %+v", got, tt.want)
			}
		})
	}
}

var inf = float32(math.Inf(1))

func TestSetDeleteLeaveNothingBehind(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ix := NewIndex(DefaultThreshold, DefaultMargin)
	people := map[UserID][]Descriptor{}
	for id := UserID(1); id <= 50; id++ {
		people[id] = []Descriptor{randomDescriptor(r), randomDescriptor(r), randomDescriptor(r)}
		ix.Set(id, people[id])
	}
	// Replace, delete and re-add in an order that moves rows around.
	for id := UserID(1); id <= 50; id += 3 {
		people[id] = []Descriptor{randomDescriptor(r)}
		ix.Set(id, people[id])
	}
	for id := UserID(2); id <= 50; id += 4 {
		delete(people, id)
		ix.Delete(id)
	}
	ix.Set(7, nil)
	delete(people, 7)
	want := 0
	for _, ds := range people {
		want += len(ds)
	}
	if ix.Len() != want || len(ix.rows) != len(people) {
		t.Fatalf("Len %d, %d people, want %d and %d", ix.Len(), len(ix.rows), want, len(people))
	}
	for id, ds := range people {
		for _, d := range ds {
			if res := ix.Search(d); res.ID != id || res.Distance != 0 {
				t.Fatalf("person %d's own sample finds %+v", id, res)
			}
		}
	}
	// Deleting everybody leaves a backing array of zeros: no descriptor stays in memory.
	for id := range people {
		ix.Delete(id)
	}
	if ix.Len() != 0 {
		t.Fatalf("Len %d after deleting everybody", ix.Len())
	}
	for _, v := range [][]float32{ix.head, ix.tail} {
		for i, x := range v[:cap(v)] {
			if x != 0 {
				t.Fatalf("component %d of a backing array is %v after deleting everybody", i, x)
			}
		}
	}
	for i, x := range ix.sketch[:cap(ix.sketch)] {
		if x != 0 {
			t.Fatalf("component %d of the sketch is %#x after deleting everybody", i, x)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	ix := NewIndex(DefaultThreshold, DefaultMargin)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for i := range 200 {
				id := UserID(w*1000 + i%20)
				d := randomDescriptor(r)
				ix.Set(id, []Descriptor{d})
				if got := ix.Search(d); got.Distance != 0 {
					// Another writer may have replaced id's sample meanwhile only if it owns id;
					// ids are per writer, so the own sample must be there.
					t.Errorf("writer %d: own fresh sample at distance %v", w, got.Distance)
				}
				if i%3 == 0 {
					ix.Delete(id)
				}
			}
		})
	}
	wg.Wait()
}

// TestSqDistsHalfPortable checks the CPU-specific sqDistsHalf against the portable one.
func TestSqDistsHalfPortable(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	q := randomDescriptor(r)
	qh := (*[half]float32)(q[:half])
	for _, n := range []int{0, 1, 3, block} {
		rows := make([]uint16, n*half)
		for i := range rows {
			rows[i] = toHalf(float32(r.NormFloat64() * 0.05))
		}
		got, want := make([]float32, n), make([]float32, n)
		sqDistsHalf(qh, rows, got)
		sqDistsHalfGo(qh, rows, want)
		for i := range got {
			if math.Abs(float64(got[i]-want[i])) > 1e-5 {
				t.Fatalf("n=%d row %d: sqDistsHalf %v, portable %v", n, i, got[i], want[i])
			}
		}
	}
}

func TestHalf(t *testing.T) {
	tests := []struct {
		f    float32
		bits uint16
		back float32
	}{
		{0, 0x0000, 0},
		{1, 0x3c00, 1},
		{-2, 0xc000, -2},
		{0.1, 0x2e66, 0.0999755859375},
		{65504, 0x7bff, 65504},
		{1e6, 0x7c00, float32(math.Inf(1))},
		{1.0 / (1 << 24), 0x0001, 1.0 / (1 << 24)}, // smallest subnormal
		{1.5 / (1 << 24), 0x0002, 2.0 / (1 << 24)}, // tie to even, upwards
		{2.5 / (1 << 24), 0x0002, 2.0 / (1 << 24)}, // tie to even, downwards
		{1 + 1.0/2048, 0x3c00, 1},                  // tie to even within normals
		{1 + 3.0/2048, 0x3c02, 1 + 2.0/1024},       // tie to even, upwards
		{1e-9, 0x0000, 0},
	}
	for _, tt := range tests {
		if got := toHalf(tt.f); got != tt.bits {
			t.Errorf("toHalf(%v) = %#04x, want %#04x", tt.f, got, tt.bits)
		}
		if got := fromHalf(tt.bits); got != tt.back {
			t.Errorf("fromHalf(%#04x) = %v, want %v", tt.bits, got, tt.back)
		}
	}
	// Every finite half survives the round trip.
	for h := range uint16(0x7c00) {
		if got := toHalf(fromHalf(h)); got != h {
			t.Fatalf("toHalf(fromHalf(%#04x)) = %#04x", h, got)
		}
	}
}

// TestHugeComponents checks that a descriptor beyond the half-precision range, which dlib
// never produces, still gets exact answers (the sketches then rule nothing out).
func TestHugeComponents(t *testing.T) {
	ix := NewIndex(DefaultThreshold, DefaultMargin)
	var huge, probe Descriptor
	huge[3] = 1e6
	probe[3] = 0.1
	ix.Set(1, []Descriptor{huge})
	ix.Set(2, []Descriptor{{}})
	if r := ix.Search(probe); !r.Known || r.ID != 2 || !close(r.Distance, 0.1) {
		t.Fatalf("Search = %+v, want person 2 at 0.1", r)
	}
}
