package liveness

import (
	"image"
	"math"
)

// The pixel check: does one plane explain how the face changed between two frames?
//
// Each frame's face patch is resampled into small "canonical" images whose grid follows the
// face's own eye line (origin at the midpoint of the eyes, a few levels of pixels per eye
// distance), low-passed, so that size, roll, blur and JPEG recompression matter little. A
// flat picture moved in front of a pinhole camera changes its image by a homography; the
// check fits the homography (and a gain and offset of brightness) that best maps the
// reference frame's face onto the turned frame's, by Levenberg–Marquardt on the pixels,
// coarse to fine, seeded from the landmarks, and reports the normalized cross-correlation of
// the face region it leaves. A picture is explained almost perfectly; a head that turned shows what a plane
// cannot: the nose moving against the cheeks, a cheek hidden, shading changed.

const (
	// canonLeft … canonBottom bound the canonical image, in eye distances from the eye
	// midpoint along the eye line (x) and down from it (y).
	canonLeft, canonRight = -1.25, 1.25
	canonTop, canonBottom = -0.75, 1.75
	// The face region the correlation is taken over, in eye distances likewise.
	regionLeft, regionRight = -1.0, 1.0
	regionTop, regionBottom = -0.5, 1.5
	// fitIterations bounds the Levenberg–Marquardt steps of one fit at one level.
	fitIterations = 25
	// minRegion is the smallest fraction of the face region that must be seen in both
	// frames for the check to judge.
	minRegion = 0.7
)

// level is one resolution of the canonical images: cell pixels per eye distance, low-passed
// by a Gaussian of sigma pixels. The fit runs coarse to fine; the last level is judged.
type level struct {
	cell, sigma float64
	w, h        int
}

func newLevel(cell, sigma float64) level {
	return level{cell: cell, sigma: sigma,
		w: int(math.Round((canonRight - canonLeft) * cell)), h: int(math.Round((canonBottom - canonTop) * cell))}
}

// levels are the resolutions of the fit.
var levels = []level{newLevel(6, 1.0), newLevel(10, 1.0), newLevel(16, 1.0)}

// canon is a face resampled onto its canonical grid at each level; NaN marks pixels outside
// the patch.
type canon struct {
	pix [][]float32 // per level
	// lm are the landmarks in canonical coordinates (eye distances).
	lm [5]Point
}

// forget zeroes the pixels.
func (c *canon) forget() {
	if c == nil {
		return
	}
	for _, p := range c.pix {
		clear(p)
	}
	c.pix = nil
}

// canonImage is one level of a canon.
type canonImage struct {
	l   *level
	pix []float32
}

func (c *canon) level(i int) canonImage { return canonImage{&levels[i], c.pix[i]} }

// at returns the pixel at column x, row y (NaN outside).
func (c canonImage) at(x, y int) float32 {
	if x < 0 || y < 0 || x >= c.l.w || y >= c.l.h {
		return float32(math.NaN())
	}
	return c.pix[y*c.l.w+x]
}

// sample interpolates c bilinearly at pixel coordinates (x, y) and returns the value and its
// gradient; ok is false when any tap is outside the image.
func (c canonImage) sample(x, y float64) (v, gx, gy float64, ok bool) {
	x0, y0 := int(math.Floor(x)), int(math.Floor(y))
	fx, fy := x-float64(x0), y-float64(y0)
	a, b := float64(c.at(x0, y0)), float64(c.at(x0+1, y0))
	d, e := float64(c.at(x0, y0+1)), float64(c.at(x0+1, y0+1))
	v = a*(1-fx)*(1-fy) + b*fx*(1-fy) + d*(1-fx)*fy + e*fx*fy
	if math.IsNaN(v) {
		return 0, 0, 0, false
	}
	gx = (b-a)*(1-fy) + (e-d)*fy
	gy = (d-a)*(1-fx) + (e-b)*fx
	return v, gx, gy, true
}

// canonical resamples the patch of o onto its face's canonical grid at every level. It
// returns false when there is no patch or the landmarks are degenerate.
func canonical(o *Observation) (*canon, bool) {
	p, r := o.Patch, o.PatchRect
	if p == nil || p.Rect.Empty() || r.Empty() || p.Rect.Min != (image.Point{}) {
		return nil, false
	}
	l := o.Landmarks
	right := Point{(l[0].X + l[1].X) / 2, (l[0].Y + l[1].Y) / 2}
	left := Point{(l[2].X + l[3].X) / 2, (l[2].Y + l[3].Y) / 2}
	ux, uy := right.X-left.X, right.Y-left.Y
	d := math.Hypot(ux, uy)
	if d < 4 {
		return nil, false
	}
	ux, uy = ux/d, uy/d
	mid := Point{(right.X + left.X) / 2, (right.Y + left.Y) / 2}
	// Frame pixels per patch pixel, separately per axis (the patch shrinks by an integer).
	kx := float64(r.Dx()) / float64(p.Rect.Dx())
	ky := float64(r.Dy()) / float64(p.Rect.Dy())
	c := &canon{}
	for i, q := range l {
		dx, dy := q.X-mid.X, q.Y-mid.Y
		c.lm[i] = Point{(dx*ux + dy*uy) / d, (-dx*uy + dy*ux) / d}
	}
	// Each canonical pixel averages a 2×2 grid of bilinear taps of the patch, a box of its
	// own size, so a coarse grid does not alias.
	taps := [2]float64{-0.25, 0.25}
	for _, lv := range levels {
		pix := make([]float32, lv.w*lv.h)
		for y := range lv.h {
			for x := range lv.w {
				var sum float64
				n := 0
				for _, ty := range taps {
					for _, tx := range taps {
						ex := canonLeft + (float64(x)+tx)/lv.cell
						ey := canonTop + (float64(y)+ty)/lv.cell
						fx := mid.X + (ex*ux-ey*uy)*d
						fy := mid.Y + (ex*uy+ey*ux)*d
						px := (fx-float64(r.Min.X)+0.5)/kx - 0.5
						py := (fy-float64(r.Min.Y)+0.5)/ky - 0.5
						if v, ok := grayAt(p, px, py); ok {
							sum += v
							n++
						}
					}
				}
				if n < len(taps)*len(taps) {
					pix[y*lv.w+x] = float32(math.NaN())
					continue
				}
				pix[y*lv.w+x] = float32(sum / float64(n))
			}
		}
		gaussian(pix, lv.w, lv.h, lv.sigma)
		c.pix = append(c.pix, pix)
	}
	return c, true
}

// grayAt interpolates the patch bilinearly; false outside it.
func grayAt(p *image.Gray, x, y float64) (float64, bool) {
	w, h := p.Rect.Dx(), p.Rect.Dy()
	if x < 0 || y < 0 || x > float64(w-1) || y > float64(h-1) {
		return 0, false
	}
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
	fx, fy := x-float64(x0), y-float64(y0)
	at := func(x, y int) float64 { return float64(p.Pix[y*p.Stride+x]) }
	return at(x0, y0)*(1-fx)*(1-fy) + at(x1, y0)*fx*(1-fy) + at(x0, y1)*(1-fx)*fy + at(x1, y1)*fx*fy, true
}

// gaussian blurs pix (w×h) in place with a separable Gaussian of sigma, ignoring NaN pixels
// (they stay NaN, and a pixel next to them averages only its valid neighbours).
func gaussian(pix []float32, w, h int, sigma float64) {
	rad := int(math.Ceil(2.5 * sigma))
	k := make([]float64, 2*rad+1)
	for i := range k {
		d := float64(i - rad)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
	}
	tmp := make([]float32, len(pix))
	pass := func(src, dst []float32, dx, dy int) {
		for y := range h {
			for x := range w {
				v := src[y*w+x]
				if math.IsNaN(float64(v)) {
					dst[y*w+x] = v
					continue
				}
				var sum, wsum float64
				for i, kv := range k {
					xx, yy := x+(i-rad)*dx, y+(i-rad)*dy
					if xx < 0 || yy < 0 || xx >= w || yy >= h {
						continue
					}
					s := src[yy*w+xx]
					if math.IsNaN(float64(s)) {
						continue
					}
					sum += kv * float64(s)
					wsum += kv
				}
				dst[y*w+x] = float32(sum / wsum)
			}
		}
	}
	pass(pix, tmp, 1, 0)
	pass(tmp, pix, 0, 1)
}

// homography maps canonical coordinates (eye distances) of the reference to the turned
// frame's: (h0·x+h1·y+h2, h3·x+h4·y+h5) / (h6·x+h7·y+1).
type homography [8]float64

var identity = homography{1, 0, 0, 0, 1, 0, 0, 0}

func (h *homography) apply(x, y float64) (float64, float64, float64) {
	d := h[6]*x + h[7]*y + 1
	return (h[0]*x + h[1]*y + h[2]) / d, (h[3]*x + h[4]*y + h[5]) / d, d
}

// fitPoints fits the homography taking from to to in least squares (the direct linear
// transform with h8 = 1); false when the points do not determine one.
func fitPoints(from, to [5]Point, ridge float64) (homography, bool) {
	var a [8][8]float64
	var b [8]float64
	add := func(row [8]float64, rhs float64) {
		for i := range 8 {
			for j := range 8 {
				a[i][j] += row[i] * row[j]
			}
			b[i] += row[i] * rhs
		}
	}
	for i, p := range from {
		q := to[i]
		add([8]float64{p.X, p.Y, 1, 0, 0, 0, -p.X * q.X, -p.Y * q.X}, q.X)
		add([8]float64{0, 0, 0, p.X, p.Y, 1, -p.X * q.Y, -p.Y * q.Y}, q.Y)
	}
	// Five points on a face leave the perspective terms weakly determined: a ridge keeps
	// them near zero unless the points insist (a huge one fits an affine map).
	a[6][6] += ridge
	a[7][7] += ridge
	rows := make([][]float64, 8)
	for i := range rows {
		rows[i] = a[i][:]
	}
	x, ok := solve(rows, b[:])
	if !ok {
		return homography{}, false
	}
	var h homography
	copy(h[:], x)
	return h, true
}

// params are what a fit adjusts: the homography and a gain and offset of brightness.
type params struct {
	h            homography
	gain, offset float64
}

// normal accumulates the Gauss–Newton normal equations of one evaluation of a fit.
type normal struct {
	jtj  [10][10]float64
	jtr  [10]float64
	cost float64 // mean squared residual
	n    int     // pixels seen in both frames
	corr ncc
}

// evaluate measures p over the face region of ref against cur at one level.
func evaluate(ref, cur canonImage, p params) normal {
	var e normal
	l := ref.l
	x0, x1 := int(math.Ceil((regionLeft-canonLeft)*l.cell)), int((regionRight-canonLeft)*l.cell)
	y0, y1 := int(math.Ceil((regionTop-canonTop)*l.cell)), int((regionBottom-canonTop)*l.cell)
	var j [10]float64
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			t := float64(ref.at(x, y))
			if math.IsNaN(t) {
				continue
			}
			ex, ey := canonLeft+float64(x)/l.cell, canonTop+float64(y)/l.cell
			u, v, d := p.h.apply(ex, ey)
			iv, gx, gy, ok := cur.sample((u-canonLeft)*l.cell, (v-canonTop)*l.cell)
			if !ok || d <= 0 {
				continue
			}
			e.n++
			e.corr.add(t, iv)
			gx, gy = gx*l.cell*p.gain/d, gy*l.cell*p.gain/d
			w := gx*u + gy*v
			j = [10]float64{gx * ex, gx * ey, gx, gy * ex, gy * ey, gy, -w * ex, -w * ey, iv, 1}
			r := p.gain*iv + p.offset - t
			e.cost += r * r
			for a := range 10 {
				for b := a; b < 10; b++ {
					e.jtj[a][b] += j[a] * j[b]
				}
				e.jtr[a] -= j[a] * r
			}
		}
	}
	for a := range 10 {
		for b := range a {
			e.jtj[a][b] = e.jtj[b][a]
		}
	}
	if e.n > 0 {
		e.cost /= float64(e.n)
	}
	return e
}

// regionSize is the number of pixels of the face region at level l.
func regionSize(l *level) int {
	x0, x1 := int(math.Ceil((regionLeft-canonLeft)*l.cell)), int((regionRight-canonLeft)*l.cell)
	y0, y1 := int(math.Ceil((regionTop-canonTop)*l.cell)), int((regionBottom-canonTop)*l.cell)
	return (x1 - x0 + 1) * (y1 - y0 + 1)
}

// fit refines p by Levenberg–Marquardt so that gain·cur(h(x)) + offset matches ref(x) over
// the face region at one level, in at most fitIterations steps, and returns the refined
// parameters and their evaluation; false when too little of the region is seen in both.
func fit(ref, cur canonImage, p params) (params, normal, bool) {
	need := int(minRegion * float64(regionSize(ref.l)))
	e := evaluate(ref, cur, p)
	if e.n < need {
		return p, e, false
	}
	lambda := 1e-3
	for range fitIterations {
		rows := make([][]float64, 10)
		for a := range 10 {
			rows[a] = append([]float64(nil), e.jtj[a][:]...)
			rows[a][a] *= 1 + lambda
		}
		step, ok := solve(rows, e.jtr[:])
		if !ok {
			break
		}
		q := p
		var size float64
		for a := range 8 {
			q.h[a] += step[a]
			size = max(size, math.Abs(step[a]))
		}
		q.gain += step[8]
		q.offset += step[9]
		f := evaluate(ref, cur, q)
		if f.n < need || f.cost >= e.cost {
			lambda *= 10
			if lambda > 1e6 {
				break
			}
			continue
		}
		gain := e.cost - f.cost
		p, e, lambda = q, f, max(lambda/10, 1e-6)
		if size < 1e-4 || gain < 1e-4*e.cost {
			break
		}
	}
	return p, e, true
}

// ncc accumulates a normalized cross-correlation.
type ncc struct{ n, sa, sb, saa, sbb, sab float64 }

func (s *ncc) add(a, b float64) {
	s.n++
	s.sa += a
	s.sb += b
	s.saa += a * a
	s.sbb += b * b
	s.sab += a * b
}

func (s *ncc) value() float64 {
	va := s.saa - s.sa*s.sa/s.n
	vb := s.sbb - s.sb*s.sb/s.n
	if va <= 0 || vb <= 0 {
		return 0
	}
	return (s.sab - s.sa*s.sb/s.n) / math.Sqrt(va*vb)
}

// planarity returns how well one plane explains the change of the face between ref and
// cur: the normalized cross-correlation (at most 1) of the reference face region with the
// turned frame's warped onto it by the best homography found. The fit starts from three
// seeds — the identity of the eye-aligned grids, the affine map and the homography the
// landmarks fit — at the coarser levels, and refines the best of them at the finest. It is
// taken both ways (the first frame's face region against the turned frame's, and back) and
// the better kept: a region that shows the print's edge one way may not the other. False
// when the check cannot judge either way (too little of the face seen in both).
func planarity(ref, cur *canon) (float64, bool) {
	a, okA := planarityFrom(ref, cur)
	b, okB := planarityFrom(cur, ref)
	switch {
	case okA && okB:
		return max(a, b), true
	case okA:
		return a, true
	case okB:
		return b, true
	}
	return 0, false
}

// planarityFrom is the check one way: ref's face region against cur warped onto it.
func planarityFrom(ref, cur *canon) (float64, bool) {
	seeds := []homography{identity}
	for _, ridge := range []float64{1e6, 1} {
		if h, ok := fitPoints(ref.lm, cur.lm, ridge); ok {
			seeds = append(seeds, h)
		}
	}
	fine := len(levels) - 1
	var best params
	bestCorr, judged := -2.0, false
	for _, s := range seeds {
		p := params{h: s, gain: 1}
		var e normal
		ok := true
		for i := range fine {
			if p, e, ok = fit(ref.level(i), cur.level(i), p); !ok {
				break
			}
		}
		if ok && e.corr.value() > bestCorr {
			best, bestCorr, judged = p, e.corr.value(), true
		}
	}
	if !judged {
		return 0, false
	}
	_, e, ok := fit(ref.level(fine), cur.level(fine), best)
	if !ok {
		return 0, false
	}
	return e.corr.value(), true
}

// solve solves the square system a·x = b by Gaussian elimination with partial pivoting.
func solve(a [][]float64, b []float64) ([]float64, bool) {
	n := len(b)
	m := make([][]float64, n)
	for i := range n {
		m[i] = append(append(make([]float64, 0, n+1), a[i][:n]...), b[i])
	}
	for c := range n {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(m[r][c]) > math.Abs(m[p][c]) {
				p = r
			}
		}
		if math.Abs(m[p][c]) < 1e-12 {
			return nil, false
		}
		m[c], m[p] = m[p], m[c]
		for r := c + 1; r < n; r++ {
			f := m[r][c] / m[c][c]
			for k := c; k <= n; k++ {
				m[r][k] -= f * m[c][k]
			}
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := m[r][n]
		for k := r + 1; k < n; k++ {
			s -= m[r][k] * x[k]
		}
		x[r] = s / m[r][r]
	}
	return x, true
}
