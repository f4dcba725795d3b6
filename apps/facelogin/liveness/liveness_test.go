package liveness

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// front are sheldon1's landmarks as the face engine places them on testdata/faces (frame
// pixels): a real face looking into the camera.
var front = Landmarks{{114, 44}, {90, 45}, {34, 43}, {57, 45}, {73, 88}}

// affine maps l by the 2-D affine map (a b; c d) + (e, f).
func affine(l Landmarks, a, b, c, d, e, f float64) Landmarks {
	var out Landmarks
	for i, p := range l {
		out[i] = Point{a*p.X + b*p.Y + e, c*p.X + d*p.Y + f}
	}
	return out
}

// TestMeasurePlane checks that any affine map of the plane, including one shearing the nose
// sideways as far as a real turn moves it, shows no parallax and no residual.
func TestMeasurePlane(t *testing.T) {
	rad := 25 * math.Pi / 180
	tests := []struct {
		name       string
		l          Landmarks
		wantTurned bool
	}{
		{"moved", affine(front, 1, 0, 0, 1, 40, -20), false},
		{"rotated and scaled", affine(front, 1.2*math.Cos(rad), -1.2*math.Sin(rad), 1.2*math.Sin(rad), 1.2*math.Cos(rad), 0, 0), false},
		{"sheared", affine(front, 1, 0.4, 0, 1, -20, 0), true},
		{"squeezed", affine(front, 0.7, 0, 0, 1, 0, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := Measure(front, tt.l)
			if !ok {
				t.Fatal("degenerate landmarks")
			}
			if math.Abs(m.Parallax) > 1e-9 || m.Residual > 1e-9 {
				t.Errorf("parallax %g, residual %g, want 0 for a plane", m.Parallax, m.Residual)
			}
			if turned := math.Abs(m.Turn) >= DefaultRule.MinTurn; turned != tt.wantTurned {
				t.Errorf("turn %.3f: turned = %v, want %v", m.Turn, turned, tt.wantTurned)
			}
		})
	}
}

// turned is front with the head turned to the person's left as a 3-D head does: the nose
// toward the frame's right, the frame-right (far) eye narrower.
func turned(nose, narrow float64) Landmarks {
	l := front
	l[4].X += nose
	l[0].X -= narrow // outer corner of the frame-right eye comes closer to its inner corner
	return l
}

// texture is a smooth grey pattern over the plane (a sum of random waves about a face's
// size and finer), standing in for a face's pixels: seed picks the pattern.
type texture struct{ kx, ky, phase, amp [12]float64 }

func newTexture(seed uint64) texture {
	r := rand.New(rand.NewPCG(seed, 1))
	var t texture
	for i := range t.kx {
		freq := 0.03 + 0.15*r.Float64() // radians per pixel: waves 40 to 200 px long
		dir := 2 * math.Pi * r.Float64()
		t.kx[i], t.ky[i] = freq*math.Cos(dir), freq*math.Sin(dir)
		t.phase[i], t.amp[i] = 2*math.Pi*r.Float64(), 10+20*r.Float64()
	}
	return t
}

func (t texture) at(x, y float64) float64 {
	v := 128.0
	for i := range t.kx {
		v += t.amp[i] * math.Sin(t.kx[i]*x+t.ky[i]*y+t.phase[i])
	}
	return v
}

// patch draws the frame rectangle r of a scene, where scene gives the grey at a frame
// point, at one patch pixel per k frame pixels, as face.Face.Patch is.
func patch(r image.Rectangle, k int, scene func(x, y float64) float64) (*image.Gray, image.Rectangle) {
	p := image.NewGray(image.Rect(0, 0, r.Dx()/k, r.Dy()/k))
	for y := range p.Rect.Dy() {
		for x := range p.Rect.Dx() {
			fx := float64(r.Min.X) + float64(x*k) + float64(k-1)/2
			fy := float64(r.Min.Y) + float64(y*k) + float64(k-1)/2
			p.Pix[y*p.Stride+x] = uint8(max(0, min(255, scene(fx, fy))))
		}
	}
	return p, image.Rectangle{Min: r.Min, Max: r.Min.Add(p.Rect.Size().Mul(k))}
}

// observe is an observation of landmarks l whose face shows scene.
func observe(at time.Time, l Landmarks, d match.Descriptor, scene func(x, y float64) float64) Observation {
	p, r := patch(image.Rect(-40, -40, 190, 190), 2, scene)
	return Observation{At: at, Landmarks: l, Descriptor: d, Patch: p, PatchRect: r}
}

// warp returns the scene of a picture showing t, moved by the affine map (a b; c d) + (e, f)
// as affine moves landmarks.
func (t texture) warp(a, b, c, d, e, f float64) func(x, y float64) float64 {
	det := a*d - b*c
	return func(x, y float64) float64 {
		x, y = x-e, y-f
		return t.at((d*x-b*y)/det, (-c*x+a*y)/det)
	}
}

// TestPlanarity checks the pixel check on synthetic pictures: one picture moved, rotated,
// sheared or blurred is explained by a plane; a different picture in the turned frame is
// not; a frame without a patch cannot be judged.
func TestPlanarity(t *testing.T) {
	now := time.Now()
	var d match.Descriptor
	face := newTexture(1)
	first := observe(now, front, d, face.at)
	blurred := func(x, y float64) float64 {
		var s float64
		for _, o := range [][2]float64{{-2, 0}, {2, 0}, {0, -2}, {0, 2}, {0, 0}} {
			s += face.warp(1, 0.2, 0, 1, -10, 0)(x+o[0], y+o[1])
		}
		return s / 5
	}
	rad := 10 * math.Pi / 180
	tests := []struct {
		name     string
		o        Observation
		flat     bool
		unjudged bool
	}{
		{"moved", observe(now, affine(front, 1, 0, 0, 1, 8, 5), d, face.warp(1, 0, 0, 1, 8, 5)), true, false},
		{"rotated", observe(now, affine(front, math.Cos(rad), -math.Sin(rad), math.Sin(rad), math.Cos(rad), 10, -5), d,
			face.warp(math.Cos(rad), -math.Sin(rad), math.Sin(rad), math.Cos(rad), 10, -5)), true, false},
		{"sheared", observe(now, affine(front, 1, 0.2, 0, 1, -10, 0), d, face.warp(1, 0.2, 0, 1, -10, 0)), true, false},
		{"sheared and blurred", observe(now, affine(front, 1, 0.2, 0, 1, -10, 0), d, blurred), true, false},
		{"other pixels", observe(now, turned(10, 5), d, newTexture(2).at), false, false},
		{"no patch", Observation{At: now, Landmarks: turned(10, 5)}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := Planarity(first, tt.o)
			if ok == tt.unjudged {
				t.Fatalf("judged %v, want %v", ok, !tt.unjudged)
			}
			if ok && (p >= DefaultRule.MaxPlanarity) != tt.flat {
				t.Errorf("planarity %.3f: flat = %v, want %v (MaxPlanarity %.2f)", p, !tt.flat, tt.flat, DefaultRule.MaxPlanarity)
			}
		})
	}
}

// TestChallenge walks a challenge through the verdicts of its frames. Its pictures are
// synthetic: a turned head shows pixels no plane maps the first frame's to.
func TestChallenge(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var me, other match.Descriptor
	for i := range me {
		me[i], other[i] = 0.01, -0.05
	}
	face, head := newTexture(1), newTexture(2)
	frame := func(after time.Duration, l Landmarks, d match.Descriptor, scene func(x, y float64) float64) Observation {
		return observe(issued.Add(after), l, d, scene)
	}
	sec := time.Second
	shear := affine(front, 1, 0.3, 0, 1, -15, 0)
	tests := []struct {
		name   string
		dir    Direction
		frames []Observation
		want   Reason
	}{
		{"turn as asked", Left, []Observation{frame(sec, front, me, face.at), frame(2*sec, turned(10, 5), me, head.at)}, Passed},
		{"turn the other way", Right, []Observation{frame(sec, front, me, face.at), frame(2*sec, turned(10, 5), me, head.at)}, WrongWay},
		{"picture sheared", Left, []Observation{frame(sec, front, me, face.at), frame(2*sec, shear, me, face.warp(1, 0.3, 0, 1, -15, 0))}, Pending},
		{"picture sheared, then time up", Left, []Observation{frame(sec, front, me, face.at), frame(2*sec, shear, me, face.warp(1, 0.3, 0, 1, -15, 0)),
			frame(9*sec, shear, me, face.at)}, Flat},
		{"turn without pixels", Left, []Observation{{At: issued.Add(sec), Landmarks: front, Descriptor: me}, {At: issued.Add(2 * sec), Landmarks: turned(10, 5), Descriptor: me}}, Pending},
		{"a small move the other way first", Left, []Observation{frame(sec, front, me, face.at), frame(2*sec, turned(-3, -1), me, head.at),
			frame(3*sec, turned(10, 5), me, head.at)}, Passed},
		{"still", Left, []Observation{frame(sec, front, me, face.at), frame(2*sec, front, me, face.at)}, Pending},
		{"too late", Left, []Observation{frame(sec, front, me, face.at), frame(9*sec, turned(10, 5), me, head.at)}, Expired},
		{"someone else turns", Left, []Observation{frame(sec, front, me, face.at), frame(2*sec, turned(10, 5), other, head.at)}, OtherPerson},
		{"swept across", Left, []Observation{frame(sec, front, me, face.at), frame(2*sec, affine(turned(10, 5), 1, 0, 0, 1, 80, 0), me, head.at)}, Pending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DefaultRule.Check(tt.dir, issued, tt.frames)
			if got.Reason != tt.want {
				t.Errorf("verdict %s (turn %.3f, parallax %.3f, planarity %.3f), want %s", got.Reason, got.Turn, got.Parallax, got.Planarity, tt.want)
			}
		})
	}
}

// TestChallengeForgets checks that a decided challenge holds no face pixels and that
// Forget drops them from an undecided one.
func TestChallengeForgets(t *testing.T) {
	now := time.Now()
	var me match.Descriptor
	face, head := newTexture(1), newTexture(2)
	c := &Challenge{Direction: Left, Issued: now, rule: DefaultRule, verdict: Verdict{Reason: Pending}}
	c.Add(observe(now, front, me, face.at))
	if c.ref == nil || len(c.ref.pix) == 0 {
		t.Fatal("the challenge kept no reference face")
	}
	pix := c.ref.pix[0]
	if v := c.Add(observe(now, turned(10, 5), me, head.at)); !v.Live() {
		t.Fatalf("verdict %+v, want passed", v)
	}
	if c.ref != nil || pix[len(pix)/2] != 0 {
		t.Error("a decided challenge still holds the reference face's pixels")
	}
	c = &Challenge{Direction: Left, Issued: now, rule: DefaultRule, verdict: Verdict{Reason: Pending}}
	c.Add(observe(now, front, me, face.at))
	pix = c.ref.pix[0]
	c.Forget()
	if c.ref != nil || pix[len(pix)/2] != 0 {
		t.Error("Forget left the reference face's pixels")
	}
}

// TestChallengeBounded checks that a challenge stops after MaxFrames frames without a turn.
func TestChallengeBounded(t *testing.T) {
	c, err := NewChallenge(DefaultRule, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var v Verdict
	for i := range DefaultRule.MaxFrames + 5 {
		v = c.Add(Observation{At: c.Issued.Add(time.Duration(i) * time.Millisecond), Landmarks: front})
	}
	if v.Reason != Expired {
		t.Errorf("after %d still frames: %s, want %s", DefaultRule.MaxFrames+5, v.Reason, Expired)
	}
	if v.Frames != DefaultRule.MaxFrames {
		t.Errorf("the verdict counts %d frames judged, want %d", v.Frames, DefaultRule.MaxFrames)
	}
}

// TestRandomDirection checks that both directions are drawn.
func TestRandomDirection(t *testing.T) {
	seen := map[Direction]int{}
	for range 200 {
		d, err := RandomDirection()
		if err != nil {
			t.Fatal(err)
		}
		seen[d]++
	}
	if seen[Left] == 0 || seen[Right] == 0 || len(seen) != 2 {
		t.Errorf("directions drawn in 200 tries: %v, want both left and right", seen)
	}
}

// BenchmarkAdd is the cost of the check on a first frame and a turned one with its pixel
// check, to set beside the face engine's analysis of a frame (docs/benchmarks.md).
func BenchmarkAdd(b *testing.B) {
	var d match.Descriptor
	now := time.Now()
	first, turn := observe(now, front, d, newTexture(1).at), observe(now, turned(10, 5), d, newTexture(2).at)
	for b.Loop() {
		c := &Challenge{Direction: Left, Issued: now, rule: DefaultRule, verdict: Verdict{Reason: Pending}}
		c.Add(first)
		if !c.Add(turn).Live() {
			b.Fatal("the turn did not pass")
		}
	}
}
