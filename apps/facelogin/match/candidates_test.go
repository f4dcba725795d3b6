package match

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// bruteCandidates is the obvious reference implementation of Candidates.
func bruteCandidates(people map[UserID][]Descriptor, q Descriptor, threshold float32, k int) []Candidate {
	var out []Candidate
	for id, ds := range people {
		best := float32(math.Inf(1))
		for i := range ds {
			best = min(best, Distance(&q, &ds[i]))
		}
		if best <= threshold {
			out = append(out, Candidate{id, best})
		}
	}
	slices.SortFunc(out, func(a, b Candidate) int { return cmp.Compare(a.Distance, b.Distance) })
	return out[:min(len(out), k)]
}

func sameCandidates(got, want []Candidate) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].ID != want[i].ID || !close(got[i].Distance, want[i].Distance) {
			return false
		}
	}
	return true
}

// TestCandidatesMatchBruteForce probes indexes of clustered people (groups of look-alikes
// 0.3–0.5 apart) near and far from them and compares with a full scan, for several k and
// on both the single and the parallel path.
func TestCandidatesMatchBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 300, 20000} {
		people := map[UserID][]Descriptor{}
		ix := NewIndex(DefaultThreshold, DefaultMargin)
		var centres []Descriptor
		for id := UserID(1); len(ix.owner) < n; id++ {
			c := randomDescriptor(r)
			if id%4 != 1 { // every four people look alike
				c = near(r, centres[len(centres)-1], 0.3+0.2*r.Float64())
			}
			centres = append(centres, c)
			ds := []Descriptor{near(r, c, 0.15), near(r, c, 0.15), near(r, c, 0.15)}
			people[id] = ds
			ix.Set(id, ds)
		}
		probes, nonEmpty := 0, 0
		for _, c := range centres {
			if probes == 40 {
				break
			}
			probes++
			for _, dist := range []float64{0.1, 0.3, 0.45} {
				q := near(r, c, dist)
				if dist == 0.1 && len(ix.Candidates(q, 3)) > 0 {
					nonEmpty++
				}
				for _, k := range []int{1, 3, 5} {
					got, want := ix.Candidates(q, k), bruteCandidates(people, q, DefaultThreshold, k)
					if !sameCandidates(got, want) {
						t.Fatalf("n=%d k=%d dist %.2f: Candidates = %v, brute force %v", n, k, dist, got, want)
					}
				}
			}
		}
		stranger := randomDescriptor(r)
		if got := ix.Candidates(stranger, 3); len(got) != 0 {
			t.Errorf("n=%d: a stranger got candidates %v", n, got)
		}
		if n >= 300 && nonEmpty < probes {
			t.Errorf("n=%d: only %d of %d probes near enrolled people got candidates", n, nonEmpty, probes)
		}
	}
}

func TestCandidatesThresholdInclusive(t *testing.T) {
	ix := NewIndex(0.5, 0.06)
	var a, b, q Descriptor
	a[0], b[0] = 0.5, -0.5
	ix.Set(1, []Descriptor{a})
	ix.Set(2, []Descriptor{b})
	got := ix.Candidates(q, 3)
	if len(got) != 2 || got[0].Distance != 0.5 || got[1].Distance != 0.5 {
		t.Fatalf("two people exactly at the threshold: %v, want both", got)
	}
	if got := ix.Candidates(q, 1); len(got) != 1 {
		t.Fatalf("k=1: %v", got)
	}
	q[0] = 0.01
	if got := ix.Candidates(q, 0); len(got) != 1 || got[0].ID != 1 {
		t.Fatalf("k=0 is clamped to 1: %v", got)
	}
}

func TestPairs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	people := map[UserID][]Descriptor{}
	ix := NewIndex(DefaultThreshold, DefaultMargin)
	var prev Descriptor
	for id := UserID(1); id <= 60; id++ {
		c := randomDescriptor(r)
		if id%3 == 0 {
			c = near(r, prev, 0.3+0.25*r.Float64())
		}
		prev = c
		ds := []Descriptor{near(r, c, 0.12), near(r, c, 0.12)}
		people[id] = ds
		ix.Set(id, ds)
	}
	var want []Pair
	for a := UserID(1); a <= 60; a++ {
		for b := a + 1; b <= 60; b++ {
			d := float32(math.Inf(1))
			for i := range people[a] {
				for j := range people[b] {
					d = min(d, Distance(&people[a][i], &people[b][j]))
				}
			}
			if d < 0.5 {
				want = append(want, Pair{a, b, d})
			}
		}
	}
	slices.SortFunc(want, func(x, y Pair) int { return cmp.Compare(x.Distance, y.Distance) })
	got := ix.Pairs(0.5)
	if len(want) < 5 || len(got) != len(want) {
		t.Fatalf("Pairs(0.5) found %d pairs, brute force %d (want at least 5 to test anything)", len(got), len(want))
	}
	for i := range got {
		if got[i].A != want[i].A || got[i].B != want[i].B || !close(got[i].Distance, want[i].Distance) {
			t.Fatalf("pair %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestMean(t *testing.T) {
	var a, b Descriptor
	a[0], b[0], a[127], b[127] = 1, 3, -2, 2
	m := Mean([]Descriptor{a, b})
	if m[0] != 2 || m[127] != 0 || m[5] != 0 {
		t.Fatalf("Mean = %v...", m[:2])
	}
	if Mean(nil) != (Descriptor{}) {
		t.Fatal("Mean(nil) is not zero")
	}
}

// TestLookAlikePolicy builds pairs of people whose faces are 0.30 to 0.50 apart, closer than
// the login threshold, as dlib puts look-alikes (no real look-alike photos can be shipped).
// For each: the second can enrol beside the first; the same person enrolling again under
// another account is refused; a probe of either gets a candidate set holding its owner, at
// most k people; and the pair shows on the administrator's list of look-alikes.
func TestLookAlikePolicy(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, apart := range []float64{0.30, 0.35, 0.40, 0.45, 0.50} {
		t.Run(fmt.Sprintf("%.2f apart", apart), func(t *testing.T) {
			ix := NewIndex(DefaultThreshold, DefaultMargin)
			// Some unrelated people around them.
			for id := UserID(10); id < 40; id++ {
				c := randomDescriptor(r)
				ix.Set(id, []Descriptor{near(r, c, 0.15), near(r, c, 0.15), near(r, c, 0.15)})
			}
			ca := randomDescriptor(r)
			cb := near(r, ca, apart)
			sample := func(c Descriptor) []Descriptor {
				return []Descriptor{near(r, c, 0.12), near(r, c, 0.12), near(r, c, 0.12)}
			}
			a := sample(ca)
			if ix.Duplicate(1, a, DuplicateBound) {
				t.Fatal("the first person is refused as a duplicate")
			}
			ix.Set(1, a)
			b := sample(cb)
			if ix.Duplicate(2, b, DuplicateBound) {
				t.Fatalf("a look-alike %.2f apart cannot enrol", apart)
			}
			ix.Set(2, b)
			// Replacing one's own samples is never a duplicate.
			if ix.Duplicate(1, sample(ca), DuplicateBound) {
				t.Error("re-enrolling one's own face is refused")
			}
			// Amy's own captures, enrolled again under a third account, are refused.
			again := []Descriptor{near(r, a[0], 0.05), near(r, a[1], 0.05), near(r, a[2], 0.05)}
			if !ix.Duplicate(3, again, DuplicateBound) {
				t.Error("the same person enrolling under a second account is not refused")
			}
			for who, c := range map[UserID]Descriptor{1: ca, 2: cb} {
				for range 20 {
					got := ix.Candidates(near(r, c, 0.2), 3)
					if len(got) == 0 || len(got) > 3 || !slices.ContainsFunc(got, func(x Candidate) bool { return x.ID == who }) {
						t.Fatalf("probe of %d: candidates %v, want at most 3 holding %d", who, got, who)
					}
				}
			}
			nearestAB := float32(math.Inf(1))
			for i := range a {
				for j := range b {
					nearestAB = min(nearestAB, Distance(&a[i], &b[j]))
				}
			}
			listed := slices.ContainsFunc(ix.Pairs(DefaultThreshold), func(p Pair) bool { return p.A == 1 && p.B == 2 })
			if listed != (nearestAB < DefaultThreshold) || (apart <= 0.45 && !listed) {
				t.Errorf("look-alikes %.2f apart (nearest samples %.3f): listed %v", apart, nearestAB, listed)
			}
		})
	}
}
