package liveness_test

import (
	"fmt"
	"image"
	"sort"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/liveness"
	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// poses labels the photos of testdata/faces/people by the head pose seen by eye (not by the
// landmarks): "front", or the way the person's head is turned, in their own terms ("left":
// the nose points to the photo's right).
var poses = map[string]string{
	"amy1": "right", "amy2": "front", "amy3": "front", "amy4": "left", "amy5": "front",
	"bernadette1": "front", "bernadette2": "left", "bernadette3": "left", "bernadette4": "right", "bernadette5": "right",
	"howard1": "front", "howard2": "left", "howard3": "front", "howard4": "front", "howard5": "right",
	"leonard1": "front", "leonard2": "front", "leonard3": "right", "leonard4": "right", "leonard5": "right",
	"penny1": "front", "penny2": "front", "penny3": "right", "penny4": "left", "penny5": "front",
	"raj1": "front", "raj2": "right", "raj3": "left", "raj4": "front", "raj5": "front",
	"sheldon1": "front", "sheldon2": "front", "sheldon3": "right", "sheldon4": "left", "sheldon5": "left",
	"stuart1": "front", "stuart2": "front", "stuart3": "front", "stuart4": "left", "stuart5": "right",
}

// sequence is one presentation: frames (keys of the analysed frames) one step apart, and
// the challenges it is played against.
type sequence struct {
	name   string
	kind   string // "genuine" or the attack's kind
	frames []string
	// dirs are the challenges: the turn shown for a genuine sequence; both for an attack,
	// which counts as accepted if either passes (the attacker sees the challenge).
	dirs []liveness.Direction
}

// frameStep is the time between two frames of a sequence (the page sends about 4 a second).
const frameStep = 250 * time.Millisecond

// attackKinds are the ways a print or screen is moved or degraded: the poses each kind's
// frames show the print at. An attack presentation is the print held at one pose of its
// group (the challenge's first frame) and then at a pose of the kind: "geometric" kinds
// start from any clean pose (upright, rotated, tilted, scaled, moved), bending from a clean
// or bent pose, blur and jpeg from another pose with the same degradation.
var attackKinds = []struct {
	kind  string
	group string // which poses a presentation of this kind may start from
	poses []pose
}{
	{"rotation", "clean", []pose{{Roll: 15}, {Roll: -15}, {Roll: 30}, {Roll: -30}}},
	{"tilt", "clean", []pose{
		{Tilt: 40, Axis: 0}, {Tilt: -40, Axis: 0}, {Tilt: 40, Axis: 45}, {Tilt: -40, Axis: 45},
		{Tilt: 40, Axis: 90}, {Tilt: -40, Axis: 90}, {Tilt: 40, Axis: 135}, {Tilt: -40, Axis: 135},
		{Tilt: 20, Axis: 90}, {Tilt: -20, Axis: 90}, {Tilt: 20, Axis: 45}, {Tilt: -20, Axis: 135},
	}},
	{"scale", "clean", []pose{{Scale: 0.75}, {Scale: 0.85}, {Scale: 1.15}, {Scale: 1.3}}},
	{"translation", "clean", []pose{{DX: 100}, {DX: -100}, {DY: 60}, {DY: -60}}},
	{"bending", "bent", []pose{
		{Bend: 0.002}, {Bend: -0.002},
		{Bend: 0.002, Tilt: 30, Axis: 90}, {Bend: -0.002, Tilt: -30, Axis: 45},
		{Bend: 0.003, Tilt: -30, Axis: 90}, {Bend: -0.003, Tilt: 30, Axis: 90},
	}},
	{"blur", "blur", degraded(pose{Blur: blurRadius})},
	{"jpeg", "jpeg", degraded(pose{JPEG: badJPEG})},
}

// degraded returns the poses of the blur and jpeg kinds: the print upright, tilted, rolled
// and scaled, each with d's degradation.
func degraded(d pose) []pose {
	var out []pose
	for _, p := range []pose{{}, {Tilt: 40, Axis: 45}, {Tilt: -40, Axis: 45}, {Tilt: 40, Axis: 90},
		{Tilt: -40, Axis: 90}, {Roll: 15}, {Roll: -15}, {Scale: 0.85}, {Scale: 1.15}} {
		p.Blur, p.JPEG = d.Blur, d.JPEG
		out = append(out, p)
	}
	return out
}

// frameKey names the frame of photo at p.
func frameKey(photo string, p pose) string {
	return fmt.Sprintf("%s tilt=%g axis=%g roll=%g scale=%g dx=%g dy=%g bend=%g blur=%d jpeg=%d",
		photo, p.Tilt, p.Axis, p.Roll, p.Scale, p.DX, p.DY, p.Bend, p.Blur, p.JPEG)
}

// frontPhotos returns the photos labelled front, sorted.
func frontPhotos() []string {
	var out []string
	for name, p := range poses {
		if p == "front" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// sequences returns the genuine sequences (every front photo of a person, then each of
// their turned photos) and the attacks (the first front photo of every person held as a
// print, every ordered pair of poses of attackKinds), and the frames they need.
func sequences() ([]sequence, map[string]framePlan) {
	plan := map[string]framePlan{}
	add := func(photo string, p pose) string {
		k := frameKey(photo, p)
		plan[k] = framePlan{photo: photo, pose: p}
		return k
	}
	var seqs []sequence
	var names []string
	for name := range poses {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, front := range frontPhotos() {
		person := front[:len(front)-1]
		for _, turned := range names {
			dir := poses[turned]
			if turned[:len(turned)-1] != person || dir == "front" {
				continue
			}
			d := liveness.Left
			if dir == "right" {
				d = liveness.Right
			}
			seqs = append(seqs, sequence{
				name:   front + " → " + turned,
				kind:   "genuine",
				frames: []string{add(front, pose{}), add(front, pose{DX: 4, DY: 2}), add(turned, pose{})},
				dirs:   []liveness.Direction{d},
			})
		}
		if !attackPhoto(front) {
			continue
		}
		groups := map[string][]string{"clean": {add(front, pose{})}}
		for _, a := range attackKinds {
			for _, p := range a.poses {
				k := add(front, p)
				if a.group == "clean" {
					groups["clean"] = append(groups["clean"], k)
				}
			}
		}
		groups["bent"] = append([]string(nil), groups["clean"]...)
		for _, a := range attackKinds {
			for _, p := range a.poses {
				if a.group != "clean" {
					groups[a.group] = append(groups[a.group], add(front, p))
				}
			}
		}
		for _, a := range attackKinds {
			for _, p := range a.poses {
				to := frameKey(front, p)
				for _, from := range groups[a.group] {
					if from == to {
						continue
					}
					seqs = append(seqs, sequence{
						name:   from + " → " + to,
						kind:   a.kind,
						frames: []string{from, to},
						dirs:   []liveness.Direction{liveness.Left, liveness.Right},
					})
				}
			}
		}
	}
	return seqs, plan
}

// attackPhoto reports whether front is the person's first front photo: the one held up in
// the attacks (one photo per person keeps the set small enough to analyse in minutes).
func attackPhoto(front string) bool {
	for _, f := range frontPhotos() {
		if f[:len(f)-1] == front[:len(front)-1] {
			return f == front
		}
	}
	return false
}

// framePlan is how to render one frame.
type framePlan struct {
	photo string
	pose  pose
}

// frameResult is what the face engine found in one frame: the face's landmarks,
// descriptor and grey patch, or why it rejected the frame.
type frameResult struct {
	landmarks  liveness.Landmarks
	descriptor match.Descriptor
	patch      *image.Gray
	patchRect  image.Rectangle
	rejected   string
}

func (r frameResult) observation(at time.Time) liveness.Observation {
	return liveness.Observation{At: at, Landmarks: r.landmarks, Descriptor: r.descriptor, Patch: r.patch, PatchRect: r.patchRect}
}

// issuedAt is when the sets' challenges are issued.
var issuedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// play runs seq against dir with rule; "no_face" when a frame has no usable face (the face
// step refuses such a frame before liveness is asked).
func play(rule liveness.Rule, seq sequence, dir liveness.Direction, frames map[string]frameResult) (liveness.Verdict, error) {
	issued := issuedAt
	var obs []liveness.Observation
	for i, k := range seq.frames {
		r, ok := frames[k]
		if !ok {
			return liveness.Verdict{}, fmt.Errorf("frame %q was not analysed", k)
		}
		if r.rejected != "" {
			return liveness.Verdict{Reason: "no_face"}, nil
		}
		obs = append(obs, r.observation(issued.Add(time.Duration(i+1)*frameStep)))
	}
	return rule.Check(dir, issued, obs), nil
}
