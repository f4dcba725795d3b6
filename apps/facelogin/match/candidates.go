package match

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"sync"
)

// Candidate is a person a probe may be: an enrolled person and the distance from the probe
// to that person's nearest sample.
type Candidate struct {
	ID       UserID
	Distance float32
}

// MaxCandidates bounds the k of Candidates.
const MaxCandidates = 16

// Candidates returns the people whose nearest sample is within the index's threshold of q,
// nearest first, at most k of them (k is clamped to 1..MaxCandidates). The margin plays no
// part: the face narrows the people to a few, something else (the PIN) decides among them.
// An empty result means nobody is near enough.
func (ix *Index) Candidates(q Descriptor, k int) []Candidate {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.nearest(&q, k, ix.threshold)
}

// nearest returns the people with a sample within limit of q, nearest first, at most k.
// Call it with ix.mu held.
func (ix *Index) nearest(q *Descriptor, k int, limit float32) []Candidate {
	k = min(max(k, 1), MaxCandidates)
	n := len(ix.owner)
	t := newTopK(k, limit*limit)
	if p := runtime.GOMAXPROCS(0); n >= parallelRows && p > 1 {
		parts := min(p, maxParts)
		results := make([]topK, parts)
		var wg sync.WaitGroup
		for p := range parts {
			lo, hi := n*p/parts, n*(p+1)/parts
			wg.Go(func() {
				q := *q
				results[p] = ix.scanK(&q, lo, hi, newTopK(k, limit*limit))
			})
		}
		wg.Wait()
		for _, r := range results {
			for i := range r.n {
				t.add(r.ids[i], r.d[i])
			}
		}
	} else {
		t = ix.scanK(q, 0, n, t)
	}
	out := make([]Candidate, t.n)
	for i := range t.n {
		out[i] = Candidate{ID: t.ids[i], Distance: sqrt32(t.d[i])}
	}
	return out
}

// SameSampleBound is the largest distance allowed between two enrolment samples of one
// person: above the widest genuine pair of both calibration sets (0.66) with room to spare,
// while 95 % of pairs of different people lie farther apart (docs/face-recognition.md).
// Samples farther apart are refused as not showing the same person: a guard against an
// honest mistake, not against an attacker.
const SameSampleBound float32 = 0.72

// DuplicateBound is the default bound of Duplicate: below the nearest pair of different
// people ever measured (0.32, look-alikes in issue 13; 0.62 in testdata/faces), above the
// spread of frames of one face taken moments apart.
const DuplicateBound float32 = 0.30

// Duplicate reports whether samples of a person enrolling as self look like someone already
// enrolled under another account enrolling again: some sample is within bound of another
// person and nearer to that person than to every other sample given. A look-alike, whose
// samples are nearer to each other than to anyone else or farther than bound, is not a
// duplicate. It never says whom the samples resemble.
func (ix *Index) Duplicate(self UserID, samples []Descriptor, bound float32) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for i := range samples {
		own := float32(math.Inf(1))
		for j := range samples {
			if j != i {
				own = min(own, Distance(&samples[i], &samples[j]))
			}
		}
		for _, c := range ix.nearest(&samples[i], 2, bound) {
			if c.ID != self && c.Distance < own {
				return true
			}
		}
	}
	return false
}

// topK keeps, in squared distances, the k nearest people below a limit, nearest first.
type topK struct {
	k, n  int
	limit float32
	ids   [MaxCandidates]UserID
	d     [MaxCandidates]float32
}

func newTopK(k int, limit float32) topK { return topK{k: k, limit: limit} }

// bound is the squared distance a sample must be under to change the result.
func (t *topK) bound() float32 {
	if t.n < t.k {
		return t.limit
	}
	return t.d[t.n-1]
}

// add accounts for a sample of person id at squared distance d.
func (t *topK) add(id UserID, d float32) {
	if d > t.limit {
		return
	}
	i := slices.Index(t.ids[:t.n], id)
	switch {
	case i >= 0 && d >= t.d[i]:
		return
	case i >= 0:
		t.d[i] = d
	case t.n < t.k:
		i = t.n
		t.n++
		t.ids[i], t.d[i] = id, d
	case d < t.d[t.n-1]:
		i = t.n - 1
		t.ids[i], t.d[i] = id, d
	default:
		return
	}
	for ; i > 0 && t.d[i] < t.d[i-1]; i-- {
		t.ids[i], t.ids[i-1] = t.ids[i-1], t.ids[i]
		t.d[i], t.d[i-1] = t.d[i-1], t.d[i]
	}
}

// scanK is scan for Candidates: rows whose sketch rules them out of the current bound are
// skipped, the others measured exactly.
func (ix *Index) scanK(q *Descriptor, lo, hi int, t topK) topK {
	qh, qt := (*[half]float32)(q[:half]), q[half:]
	var dists [block]float32
	b := t.bound()
	relaxed := ix.relax(b)
	for start := lo; start < hi; start += block {
		end := min(start+block, hi)
		part := dists[:end-start]
		sqDistsHalf(qh, ix.sketch[start*half:end*half], part)
		for i, d := range part {
			if d >= relaxed {
				continue
			}
			r := start + i
			// A distance equal to the threshold still counts: bound it just above.
			d, ok := sqDistBounded(qh[:], ix.head[r*half:(r+1)*half], 0, nextUp(b))
			if ok {
				d, ok = sqDistBounded(qt, ix.tail[r*half:(r+1)*half], d, nextUp(b))
			}
			if ok {
				t.add(ix.owner[r], d)
				if nb := t.bound(); nb != b {
					b, relaxed = nb, ix.relax(nb)
				}
			}
		}
	}
	return t
}

// nextUp is the smallest float32 above x.
func nextUp(x float32) float32 { return math.Nextafter32(x, float32(math.Inf(1))) }

// Pair is two enrolled people and the distance between their nearest samples.
type Pair struct {
	A, B     UserID
	Distance float32
}

// Pairs returns every pair of different people with samples closer than within, nearest
// first: the look-alikes the face alone cannot tell apart. It compares every sample with
// every other, so it is meant for an administrator's page, not for each login.
func (ix *Index) Pairs(within float32) []Pair {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := len(ix.owner)
	bound := within * within
	relaxed := ix.relax(bound)
	nearest := map[[2]UserID]float32{}
	var dists [block]float32
	for r := range n {
		qh := (*[half]float32)(ix.head[r*half : (r+1)*half])
		qt := ix.tail[r*half : (r+1)*half]
		a := ix.owner[r]
		for start := r + 1; start < n; start += block {
			end := min(start+block, n)
			part := dists[:end-start]
			sqDistsHalf(qh, ix.sketch[start*half:end*half], part)
			for i, d := range part {
				o := start + i
				b := ix.owner[o]
				if b == a || d >= relaxed {
					continue
				}
				d, ok := sqDistBounded(qh[:], ix.head[o*half:(o+1)*half], 0, bound)
				if ok {
					d, ok = sqDistBounded(qt, ix.tail[o*half:(o+1)*half], d, bound)
				}
				if !ok {
					continue
				}
				key := [2]UserID{min(a, b), max(a, b)}
				if old, seen := nearest[key]; !seen || d < old {
					nearest[key] = d
				}
			}
		}
	}
	out := make([]Pair, 0, len(nearest))
	for k, d := range nearest {
		out = append(out, Pair{A: k[0], B: k[1], Distance: sqrt32(d)})
	}
	slices.SortFunc(out, func(x, y Pair) int {
		return cmp.Or(cmp.Compare(x.Distance, y.Distance), cmp.Compare(x.A, y.A), cmp.Compare(x.B, y.B))
	})
	return out
}

// Mean returns the component-wise mean of ds (the zero descriptor for none): the
// descriptor of several frames of one face, steadier than any one of them.
func Mean(ds []Descriptor) Descriptor {
	var m Descriptor
	if len(ds) == 0 {
		return m
	}
	var sum [Dim]float64
	for i := range ds {
		for j, v := range ds[i] {
			sum[j] += float64(v)
		}
	}
	for j := range m {
		m[j] = float32(sum[j] / float64(len(ds)))
	}
	return m
}
