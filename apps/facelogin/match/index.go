package match

import (
	"math"
	"runtime"
	"sync"
)

// Result is the answer of Index.Search.
//
// Only distances below the index's cutoff, threshold + margin, are measured exactly: a
// sample farther away can change neither the answer nor the margin test, so Search stops
// summing its distance as soon as the partial sum passes the cutoff. Distance and Second are
// +Inf when nobody, or nobody else, is nearer than the cutoff.
type Result struct {
	// ID is the nearest enrolled person (0 if nobody is nearer than the cutoff). It is the
	// probe's identity only when Known is true.
	ID UserID
	// Distance is the Euclidean distance to ID's nearest sample.
	Distance float32
	// Second is the distance to the nearest sample of any other person.
	Second float32
	// Known reports that Distance is within the threshold and at least the margin smaller
	// than Second: the probe is ID. Otherwise the probe is an unknown face.
	Known bool
}

// Index is an in-memory 1:N index over the enrolled descriptors of many people. It is safe
// for concurrent use: searches run in parallel, Set and Delete wait for them.
type Index struct {
	threshold, margin float32

	// The samples, one row each, split in two halves stored apart, and a half-precision
	// sketch of the first halves: the scan reads the sketches (a quarter of the data) and
	// only the few rows it cannot rule out from them are read in full.
	mu     sync.RWMutex
	head   []float32          // row r's first half is head[r*half : (r+1)*half]
	tail   []float32          // and its second half tail[r*half : (r+1)*half]
	sketch []uint16           // head rounded to IEEE 754 half precision
	slack  float32            // bounds the distance between any first half and its sketch
	owner  []UserID           // owner[r] is the person of row r
	rows   map[UserID][]int32 // the rows of each person
}

// half is the length of a row's half.
const half = Dim / 2

// NewIndex returns an empty index that accepts a probe as a person when its distance to that
// person's nearest sample is at most threshold and at least margin smaller than the distance
// to any other person. DefaultThreshold and DefaultMargin are calibrated values.
func NewIndex(threshold, margin float32) *Index {
	return &Index{threshold: threshold, margin: margin, rows: make(map[UserID][]int32)}
}

// Len returns the number of descriptors in the index.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.owner)
}

// Set replaces the samples of person id with ds; an empty ds removes the person.
func (ix *Index) Set(id UserID, ds []Descriptor) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.remove(id)
	if len(ds) == 0 {
		return
	}
	ix.grow(len(ds))
	rows := make([]int32, 0, len(ds))
	for i := range ds {
		rows = append(rows, int32(len(ix.owner)))
		ix.head = append(ix.head, ds[i][:half]...)
		ix.tail = append(ix.tail, ds[i][half:]...)
		var e float32
		for _, v := range ds[i][:half] {
			h := toHalf(v)
			ix.sketch = append(ix.sketch, h)
			e += (fromHalf(h) - v) * (fromHalf(h) - v)
		}
		// The slack only grows: deleting rows leaves it a little larger than needed.
		ix.slack = max(ix.slack, sqrt32(e)*(1+1e-4)+1e-6)
		ix.owner = append(ix.owner, id)
	}
	ix.rows[id] = rows
}

// Delete removes every sample of person id. The memory they occupied is zeroed.
func (ix *Index) Delete(id UserID) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.remove(id)
}

// remove deletes id's rows by moving the last rows into their places, then zeroes the tail
// so no copy of the descriptors stays behind in the backing array.
func (ix *Index) remove(id UserID) {
	rows, ok := ix.rows[id]
	if !ok {
		return
	}
	delete(ix.rows, id)
	old := len(ix.owner)
	// Highest rows first: then the last row is never one of id's rows still to be removed.
	sortDesc(rows)
	for _, r := range rows {
		last := int32(len(ix.owner) - 1)
		if r != last {
			moved := ix.owner[last]
			moveRow(ix.head, int(r), int(last))
			moveRow(ix.tail, int(r), int(last))
			moveRow(ix.sketch, int(r), int(last))
			ix.owner[r] = moved
			mr := ix.rows[moved]
			for i := range mr {
				if mr[i] == last {
					mr[i] = r
					break
				}
			}
		}
		ix.owner = ix.owner[:last]
	}
	n := len(ix.owner) * half
	clear(ix.head[n : old*half])
	clear(ix.tail[n : old*half])
	clear(ix.sketch[n : old*half])
	ix.head, ix.tail, ix.sketch = ix.head[:n], ix.tail[:n], ix.sketch[:n]
}

// grow makes room for n more rows, zeroing the old backing arrays after the copy.
func (ix *Index) grow(n int) {
	need := len(ix.owner) + n
	if need <= cap(ix.owner) {
		return
	}
	c := max(need, 2*cap(ix.owner), 64)
	ix.head = regrow(ix.head, c*half)
	ix.tail = regrow(ix.tail, c*half)
	ix.sketch = regrow(ix.sketch, c*half)
	owner := make([]UserID, len(ix.owner), c)
	copy(owner, ix.owner)
	ix.owner = owner
}

// moveRow copies half-row from over half-row to.
func moveRow[T float32 | uint16](v []T, to, from int) {
	copy(v[to*half:(to+1)*half], v[from*half:(from+1)*half])
}

// regrow returns a copy of v with capacity c and zeroes v's whole backing array.
func regrow[T float32 | uint16](v []T, c int) []T {
	w := make([]T, len(v), c)
	copy(w, v)
	clear(v[:cap(v)])
	return w
}

func sortDesc(r []int32) {
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && r[j] > r[j-1]; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
}

// parallelRows is the index size from which Search splits the scan across CPUs.
const parallelRows = 16384

// Search returns the person nearest to q and whether q is close enough, and far enough from
// everybody else, to be that person.
func (ix *Index) Search(q Descriptor) Result {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := len(ix.owner)
	cutoff := ix.threshold + ix.margin
	start := best{d1: cutoff * cutoff, d2: cutoff * cutoff}
	var b best
	if p := runtime.GOMAXPROCS(0); n >= parallelRows && p > 1 {
		b = ix.scanParallel(q, min(p, maxParts), start)
	} else {
		b = ix.scan(&q, 0, n, start)
	}
	r := Result{Distance: inf32, Second: inf32}
	if b.found {
		r.ID, r.Distance = b.id1, sqrt32(b.d1)
		if b.d2 < start.d2 {
			r.Second = sqrt32(b.d2)
		}
	}
	r.Known = b.found && r.Distance <= ix.threshold && r.Second-r.Distance >= ix.margin
	return r
}

// maxParts bounds the goroutines of one search.
const maxParts = 8

// scanParallel splits the rows into parts scanned concurrently.
func (ix *Index) scanParallel(q Descriptor, parts int, start best) best {
	n := len(ix.owner)
	var results [maxParts]best
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := n*p/parts, n*(p+1)/parts
		wg.Go(func() {
			q := q
			results[p] = ix.scan(&q, lo, hi, start)
		})
	}
	wg.Wait()
	b := results[0]
	for _, o := range results[1:parts] {
		b = b.merge(o)
	}
	return b
}

// best tracks, in squared distances, the nearest person and the nearest other person. It
// starts with both distances at the squared cutoff, so farther samples are never counted.
type best struct {
	id1    UserID
	found  bool // id1 and d1 are a real sample's
	d1, d2 float32
}

// add accounts for a sample of person id at squared distance d < b.d2 (or < b.d1 if id is
// the current best person).
func (b *best) add(id UserID, d float32) {
	switch {
	case b.found && id == b.id1:
		b.d1 = min(b.d1, d)
	case d < b.d1:
		if b.found {
			b.d2 = b.d1
		}
		b.d1, b.id1, b.found = d, id, true
	case d < b.d2:
		b.d2 = d
	}
}

// merge combines the results of two scans over disjoint rows. o.d2 may belong to b.id1, but
// then o.d1 (another person, and no farther) already bounds the second distance.
func (b best) merge(o best) best {
	if o.found {
		b.add(o.id1, o.d1)
	}
	b.d2 = min(b.d2, o.d2)
	return b
}

// block is the number of rows whose sketches scan measures in one go.
const block = 256

// scan looks at rows lo to hi and returns the updated best. It measures the sketches of a
// block of rows at a time (with SIMD instructions where the CPU has them). A sketch is within
// ix.slack of its first half, so a row whose sketch is farther than the bound plus the slack
// can change neither answer; only the others are measured exactly, abandoning as soon as the
// sum passes the bound.
func (ix *Index) scan(q *Descriptor, lo, hi int, b best) best {
	qh, qt := (*[half]float32)(q[:half]), q[half:]
	var dists [block]float32
	own, other := ix.relax(b.d1), ix.relax(b.d2)
	for start := lo; start < hi; start += block {
		end := min(start+block, hi)
		part := dists[:end-start]
		sqDistsHalf(qh, ix.sketch[start*half:end*half], part)
		for i, d := range part {
			r := start + i
			id := ix.owner[r]
			bound, relaxed := b.d2, other
			if b.found && id == b.id1 {
				bound, relaxed = b.d1, own
			}
			if d >= relaxed {
				continue
			}
			d, ok := sqDistBounded(qh[:], ix.head[r*half:(r+1)*half], 0, bound)
			if ok {
				d, ok = sqDistBounded(qt, ix.tail[r*half:(r+1)*half], d, bound)
			}
			if ok {
				b.add(id, d)
				own, other = ix.relax(b.d1), ix.relax(b.d2)
			}
		}
	}
	return b
}

// relax returns the squared sketch distance at and beyond which a row's exact squared
// distance is at least bound: (√bound + slack)², rounded up for the float32 arithmetic.
// Components beyond the half-precision range (never seen from dlib) make the slack
// infinite; then nothing is ruled out.
func (ix *Index) relax(bound float32) float32 {
	r := sqrt32(bound) + ix.slack
	if math.IsInf(float64(r), 1) || math.IsNaN(float64(r)) {
		return float32(math.NaN()) // d >= NaN is always false
	}
	return r*r*(1+1e-4) + 1e-6
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

var inf32 = float32(math.Inf(1))
