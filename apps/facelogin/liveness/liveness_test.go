package liveness

import (
	"math"
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

// TestChallenge walks a challenge through the verdicts of its frames.
func TestChallenge(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var me, other match.Descriptor
	for i := range me {
		me[i], other[i] = 0.01, -0.05
	}
	frame := func(after time.Duration, l Landmarks, d match.Descriptor) Observation {
		return Observation{At: issued.Add(after), Landmarks: l, Descriptor: d}
	}
	sec := time.Second
	tests := []struct {
		name   string
		dir    Direction
		frames []Observation
		want   Reason
	}{
		{"turn as asked", Left, []Observation{frame(sec, front, me), frame(2*sec, turned(10, 5), me)}, Passed},
		{"turn the other way", Right, []Observation{frame(sec, front, me), frame(2*sec, turned(10, 5), me)}, WrongWay},
		{"picture sheared", Left, []Observation{frame(sec, front, me), frame(2*sec, affine(front, 1, 0.3, 0, 1, -15, 0), me)}, Flat},
		{"still", Left, []Observation{frame(sec, front, me), frame(2*sec, front, me)}, Pending},
		{"too late", Left, []Observation{frame(sec, front, me), frame(9*sec, turned(10, 5), me)}, Expired},
		{"someone else turns", Left, []Observation{frame(sec, front, me), frame(2*sec, turned(10, 5), other)}, OtherPerson},
		{"swept across", Left, []Observation{frame(sec, front, me), frame(2*sec, affine(turned(10, 5), 1, 0, 0, 1, 80, 0), me)}, Pending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DefaultRule.Check(tt.dir, issued, tt.frames)
			if got.Reason != tt.want {
				t.Errorf("verdict %s (turn %.3f, parallax %.3f), want %s", got.Reason, got.Turn, got.Parallax, tt.want)
			}
		})
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

// BenchmarkAdd is the per-frame cost of the check, to set beside the face engine's analysis
// of the same frame (docs/benchmarks.md).
func BenchmarkAdd(b *testing.B) {
	var d match.Descriptor
	for b.Loop() {
		c := &Challenge{Direction: Left, Issued: time.Now(), rule: DefaultRule, verdict: Verdict{Reason: Pending}}
		c.Add(Observation{At: c.Issued, Landmarks: front, Descriptor: d})
		c.Add(Observation{At: c.Issued, Landmarks: turned(1, 0), Descriptor: d})
	}
}
