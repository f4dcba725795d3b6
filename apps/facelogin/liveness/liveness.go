// Package liveness decides whether the frames of a face step show a real head turning as it
// was asked, rather than a photo or a screen held up to the camera. It works on what the face
// engine already returns for every frame — the five landmarks, the descriptor and a small
// grey patch of the face — so it costs no extra recognizer pass, and it is pure Go.
//
// The server challenges each attempt with a direction drawn with crypto/rand (NewChallenge).
// The landmarks tell which way the face moved: a head turning moves the nose between the
// eyes (Turn). They cannot tell a head from a tilted print, whose perspective also shifts the
// nose and narrows the far eye. The pixels can: a flat picture moved in front of a camera
// changes its image by a homography, so the check fits the best one between the first frame's
// face and the turned frame's and measures how well it explains them (Planarity); a head
// that turned leaves the nose moved against the cheeks, a cheek hidden, the shading changed.
// The rule, its thresholds, what they were measured on and their limits are described in
// docs/face-recognition.md.
package liveness

import (
	"crypto/rand"
	"fmt"
	"image"
	"math"
	"math/big"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// Direction is the way a person is asked to turn their head, in their own terms: Left is
// the person's left, which is the right of an unmirrored camera frame.
type Direction int

// The two directions of a challenge.
const (
	Left Direction = iota + 1
	Right
)

// String returns "left" or "right".
func (d Direction) String() string {
	switch d {
	case Left:
		return "left"
	case Right:
		return "right"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// sign is +1 when the nose moves toward the frame's right (the person turns to their left).
func (d Direction) sign() float64 {
	if d == Left {
		return 1
	}
	return -1
}

// RandomDirection draws Left or Right with crypto/rand, so a page cannot predict it.
func RandomDirection() (Direction, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(2))
	if err != nil {
		return 0, fmt.Errorf("draw a liveness direction: %w", err)
	}
	return Left + Direction(n.Int64()), nil
}

// Point is a position in frame pixels.
type Point struct{ X, Y float64 }

// Landmarks are the five points of dlib's 5-point shape predictor, in its order (the order
// of face.Landmarks): outer and inner corner of the eye on the frame's right (the person's
// left eye), outer and inner corner of the eye on the frame's left, bottom of the nose.
type Landmarks [5]Point

// Observation is what the face engine found in one frame of a challenge.
type Observation struct {
	// At is when the frame arrived.
	At time.Time
	// Landmarks are the face's five landmarks, in full-resolution frame coordinates.
	Landmarks Landmarks
	// Descriptor is the face's descriptor. It is biometric data: never log it.
	Descriptor match.Descriptor
	// Patch is a grey picture of the face (face.Face.Patch) and PatchRect the frame
	// rectangle it shows, for the pixel check. They are biometric data too: never log
	// them. A Challenge keeps no reference to them, only a small resampled copy of the
	// first frame's, zeroed when it is decided or forgotten.
	Patch     *image.Gray
	PatchRect image.Rectangle
}

// Rule holds the thresholds of the decision. DefaultRule is the measured one.
type Rule struct {
	// MinTurn is the smallest movement of the nose, in the challenged direction and as a
	// fraction of the eye distance, between the challenge's first frame and a later one.
	MinTurn float64
	// MinWrongWay is the smallest movement the other way that ends the challenge as
	// WrongWay: larger than MinTurn, so that a head settling or wobbling before it turns
	// does not end the attempt.
	MinWrongWay float64
	// MinParallax is the smallest Parallax (see Motion) that must come with that movement,
	// signed for the challenged direction: the far eye narrowing. A tilted print narrows it
	// too, so this is a consistency check; the pixel check (MaxPlanarity) decides attacks.
	MinParallax float64
	// MaxPlanarity is the highest Planarity (see Verdict) a turned frame may show: at or
	// above it, one plane explains the change of the face's pixels and the frame shows a
	// picture, not a head.
	MaxPlanarity float64
	// MaxShift bounds how far the eye midpoint may move between the first and the turned
	// frame, in eye distances: a head turns in place, a picture swept across the view does not.
	MaxShift float64
	// MaxDistance is the largest descriptor distance between the first frame and any later
	// one: the same person must be in view throughout.
	MaxDistance float32
	// Window is how long after the challenge is issued the turn must be seen.
	Window time.Duration
	// MaxFrames bounds the frames a Challenge judges.
	MaxFrames int
}

// DefaultRule holds the thresholds chosen on the sets of testdata/faces; their measured
// error rates are in docs/benchmarks.md.
var DefaultRule = Rule{
	MinTurn:      0.03,
	MinWrongWay:  0.08,
	MinParallax:  0,
	MaxPlanarity: 0.90,
	MaxShift:     1.0,
	MaxDistance:  0.6,
	Window:       8 * time.Second,
	MaxFrames:    32,
}

// Reason says why a challenge was not (yet) passed.
type Reason string

// The reasons of a Verdict.
const (
	// Passed: a real head turned as asked.
	Passed Reason = "passed"
	// Pending: no frame has shown the turn yet; keep sending frames.
	Pending Reason = "pending"
	// Expired: the window closed without the turn.
	Expired Reason = "expired"
	// OtherPerson: a frame showed someone else than the first frame.
	OtherPerson Reason = "other_person"
	// Flat: the face turned as asked only as a picture turns: one plane explained it.
	Flat Reason = "flat"
	// WrongWay: the head turned, but not in the challenged direction.
	WrongWay Reason = "wrong_way"
)

// Verdict is the state of a challenge after a frame.
type Verdict struct {
	// Reason is Passed when the turn was seen, Pending while it may still be, and otherwise
	// why the challenge failed.
	Reason Reason
	// Turn and Parallax are the best frame's measures (see Rule), for the logs and the docs.
	Turn, Parallax float64
	// Planarity is the highest normalized cross-correlation (at most 1) between the first
	// frame's face and a turned frame's warped onto it by the homography that fits best:
	// near 1 when one plane explains the change, as for a print or a screen. 0 until a
	// turned frame was judged.
	Planarity float64
	// Frames is how many frames the challenge judged, the first included.
	Frames int
}

// Live reports whether the challenge was passed.
func (v Verdict) Live() bool { return v.Reason == Passed }

// Done reports whether the challenge is decided either way.
func (v Verdict) Done() bool { return v.Reason != Pending }

// geometry is what the rule reads from one frame's landmarks.
type geometry struct {
	mid  Point   // midpoint of the two eye centres
	dist float64 // distance between the eye centres
	nose float64 // nose offset along the eye axis from mid, in eye distances (+: frame right)
}

func measure(l Landmarks) (geometry, bool) {
	right := Point{(l[0].X + l[1].X) / 2, (l[0].Y + l[1].Y) / 2}
	left := Point{(l[2].X + l[3].X) / 2, (l[2].Y + l[3].Y) / 2}
	ux, uy := right.X-left.X, right.Y-left.Y
	d := math.Hypot(ux, uy)
	if d < 1 {
		return geometry{}, false
	}
	mid := Point{(right.X + left.X) / 2, (right.Y + left.Y) / 2}
	return geometry{
		mid:  mid,
		dist: d,
		nose: ((l[4].X-mid.X)*ux + (l[4].Y-mid.Y)*uy) / (d * d),
	}, true
}

// Motion is how a frame's landmarks moved against the challenge's first frame.
type Motion struct {
	// Turn is the nose's movement along the eye axis toward the frame's right, in eye
	// distances; positive when the person turns to their left.
	Turn float64
	// Parallax is what the best 2-D affine map from the first frame's landmarks to these
	// leaves unexplained in the eye corners, along the eye axis and signed so that it is
	// positive when the frame-right eye narrows against the frame-left one, as it does when
	// a head turns to its left; in eye distances. A flat picture, whatever its affine
	// motion, leaves it at zero.
	Parallax float64
	// Shift is how far the eye midpoint moved, in eye distances of the first frame.
	Shift float64
	// Residual is the root mean square error of that affine map over all five points, in
	// eye distances.
	Residual float64
}

// narrowing is, for each landmark, the direction along the eye axis (+: toward the frame's
// right) in which it moves when the frame-right eye narrows and the frame-left eye widens:
// the outer corner of the right eye inward, its inner corner outward, the outer corner of the
// left eye outward, its inner corner inward. The nose does not count.
var narrowing = [5]float64{-1, 1, -1, 1, 0}

// Measure returns how the landmarks moved from first to l, or false when either set is
// degenerate (eyes on top of each other).
func Measure(first, l Landmarks) (Motion, bool) {
	g0, ok0 := measure(first)
	g, ok := measure(l)
	if !ok0 || !ok {
		return Motion{}, false
	}
	res, ok := affineResiduals(first, l)
	if !ok {
		return Motion{}, false
	}
	ux, uy := (l[0].X+l[1].X-l[2].X-l[3].X)/2/g.dist, (l[0].Y+l[1].Y-l[2].Y-l[3].Y)/2/g.dist
	var par, sq float64
	for i, r := range res {
		par += narrowing[i] * (r.X*ux + r.Y*uy)
		sq += r.X*r.X + r.Y*r.Y
	}
	return Motion{
		Turn:     g.nose - g0.nose,
		Parallax: par / g.dist,
		Shift:    math.Hypot(g.mid.X-g0.mid.X, g.mid.Y-g0.mid.Y) / g0.dist,
		Residual: math.Sqrt(sq/float64(len(res))) / g.dist,
	}, true
}

// affineResiduals fits the affine map that takes from to to best in least squares and
// returns what it leaves at each point.
func affineResiduals(from, to Landmarks) ([5]Point, bool) {
	// Normal equations of [x y 1] · [a b c]ᵀ = target, once for x and once for y.
	var m [3][3]float64
	var rx, ry [3]float64
	for i, p := range from {
		v := [3]float64{p.X, p.Y, 1}
		for r := range 3 {
			for c := range 3 {
				m[r][c] += v[r] * v[c]
			}
			rx[r] += v[r] * to[i].X
			ry[r] += v[r] * to[i].Y
		}
	}
	var res [5]Point
	cx, okx := solve3(m, rx)
	cy, oky := solve3(m, ry)
	if !okx || !oky {
		return res, false
	}
	for i, p := range from {
		res[i] = Point{to[i].X - (cx[0]*p.X + cx[1]*p.Y + cx[2]), to[i].Y - (cy[0]*p.X + cy[1]*p.Y + cy[2])}
	}
	return res, true
}

// solve3 solves m·x = b by Cramer's rule.
func solve3(m [3][3]float64, b [3]float64) ([3]float64, bool) {
	det := func(a [3][3]float64) float64 {
		return a[0][0]*(a[1][1]*a[2][2]-a[1][2]*a[2][1]) -
			a[0][1]*(a[1][0]*a[2][2]-a[1][2]*a[2][0]) +
			a[0][2]*(a[1][0]*a[2][1]-a[1][1]*a[2][0])
	}
	d := det(m)
	if math.Abs(d) < 1e-9 {
		return [3]float64{}, false
	}
	var x [3]float64
	for c := range 3 {
		a := m
		for r := range 3 {
			a[r][c] = b[r]
		}
		x[c] = det(a) / d
	}
	return x, true
}

// Challenge is one liveness challenge: a direction, when it was issued, and the frames seen
// since. It is not safe for concurrent use.
type Challenge struct {
	// Direction is the way the person is asked to turn.
	Direction Direction
	// Issued is when the challenge was sent.
	Issued time.Time

	rule     Rule
	first    *Observation // without its patch
	ref      *canon       // the first frame's face, resampled for the pixel check
	seen     int
	flatSeen bool // a frame turned as asked, but as a plane
	verdict  Verdict
}

// NewChallenge draws a direction with crypto/rand and starts a challenge at now.
func NewChallenge(rule Rule, now time.Time) (*Challenge, error) {
	dir, err := RandomDirection()
	if err != nil {
		return nil, err
	}
	return &Challenge{Direction: dir, Issued: now, rule: rule, verdict: Verdict{Reason: Pending}}, nil
}

// Same reports whether d is within Rule.MaxDistance of the challenge's first face: the face a
// decision is taken on must be the one that turned. False before the first frame.
func (c *Challenge) Same(d *match.Descriptor) bool {
	return c.first != nil && match.Distance(&c.first.Descriptor, d) <= c.rule.MaxDistance
}

// Forget zeroes the descriptor and the face pixels the challenge holds.
func (c *Challenge) Forget() {
	if c.first != nil {
		clear(c.first.Descriptor[:])
	}
	c.ref.forget()
	c.ref = nil
}

// Verdict returns the state after the frames added so far.
func (c *Challenge) Verdict() Verdict { return c.verdict }

// Add judges one more frame and returns the verdict. Once the challenge is decided, or
// after Rule.MaxFrames frames, further frames change nothing (a challenge without a turn
// by then ends Expired, or Flat if the turn was seen only as a plane). The challenge keeps
// no reference to o.Patch.
func (c *Challenge) Add(o Observation) Verdict {
	if c.verdict.Done() {
		return c.verdict
	}
	c.seen++
	c.verdict.Frames = c.seen
	if c.first == nil {
		first := o
		first.Patch = nil
		c.first = &first
		c.ref, _ = canonical(&o)
		return c.verdict
	}
	v := c.judge(o)
	if v.Done() {
		c.ref.forget()
		c.ref = nil
	}
	return v
}

func (c *Challenge) judge(o Observation) Verdict {
	r := c.rule
	end := Expired
	if c.flatSeen {
		end = Flat
	}
	switch {
	case match.Distance(&c.first.Descriptor, &o.Descriptor) > r.MaxDistance:
		c.verdict.Reason = OtherPerson
		return c.verdict
	case o.At.Sub(c.Issued) > r.Window:
		c.verdict.Reason = end
		return c.verdict
	}
	m, ok := Measure(c.first.Landmarks, o.Landmarks)
	if !ok {
		return c.verdict
	}
	s := c.Direction.sign()
	if turn := m.Turn * s; turn > c.verdict.Turn {
		c.verdict.Turn, c.verdict.Parallax = turn, m.Parallax*s
	}
	switch r.decide(m, c.Direction, func() (float64, bool) { return c.planarity(o) }) {
	case Passed:
		c.verdict.Reason = Passed
		return c.verdict
	case WrongWay:
		c.verdict.Reason = WrongWay
		return c.verdict
	case Flat:
		c.flatSeen, end = true, Flat
	}
	if c.seen >= r.MaxFrames {
		c.verdict.Reason = end
	}
	return c.verdict
}

// decide returns what one frame's motion against the first frame decides for a challenge
// in direction dir: Passed, WrongWay, Flat (turned as asked, but as a plane; the challenge
// goes on) or Pending. planarity is called only for a frame that turned.
func (r Rule) decide(m Motion, dir Direction, planarity func() (float64, bool)) Reason {
	s := dir.sign()
	turn, parallax := m.Turn*s, m.Parallax*s
	if m.Shift > r.MaxShift {
		return Pending
	}
	switch {
	case -turn >= max(r.MinTurn, r.MinWrongWay) && -parallax >= r.MinParallax:
		if p, ok := planarity(); ok && p < r.MaxPlanarity {
			return WrongWay
		}
	case turn >= r.MinTurn && parallax >= r.MinParallax:
		if p, ok := planarity(); ok && p < r.MaxPlanarity {
			return Passed
		}
		return Flat
	}
	return Pending
}

// planarity runs the pixel check of o's face against the first frame's (see planarity in
// planar.go); false when it cannot judge (no patch, too little of the face seen in both).
func (c *Challenge) planarity(o Observation) (float64, bool) {
	if c.ref == nil {
		return 0, false
	}
	cur, ok := canonical(&o)
	if !ok {
		return 0, false
	}
	defer cur.forget()
	p, ok := planarity(c.ref, cur)
	if ok {
		c.verdict.Planarity = max(c.verdict.Planarity, p)
	}
	return p, ok
}
