package liveness_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/liveness"
	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// framesFile holds what the real face engine found in every frame the sequences use; the
// -update flag of TestFrames renders the frames and rewrites it.
const framesFile = "testdata/frames.json"

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

// sequence is one presentation: frames (keys of the frames file) one step apart, and the
// challenges it is played against.
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

// attackKinds are the ways a print or screen is moved or degraded, each a list of end poses
// reached from the upright print in two steps.
var attackKinds = []struct {
	kind  string
	poses []pose
}{
	{"rotation", []pose{{Roll: 15}, {Roll: -15}, {Roll: 30}, {Roll: -30}}},
	{"tilt", []pose{
		{Tilt: 40, Axis: 0}, {Tilt: -40, Axis: 0}, {Tilt: 40, Axis: 45}, {Tilt: -40, Axis: 45},
		{Tilt: 40, Axis: 90}, {Tilt: -40, Axis: 90}, {Tilt: 40, Axis: 135}, {Tilt: -40, Axis: 135},
	}},
	{"scale", []pose{{Scale: 0.75}, {Scale: 1.3}}},
	{"translation", []pose{{DX: 100}, {DX: -100}}},
	{"bending", []pose{
		{Bend: 0.002}, {Bend: -0.002},
		{Bend: 0.002, Tilt: 30, Axis: 90}, {Bend: -0.002, Tilt: -30, Axis: 45},
	}},
	{"blur", []pose{
		{Blur: blurRadius, Tilt: 40, Axis: 45}, {Blur: blurRadius, Tilt: -40, Axis: 45},
	}},
	{"jpeg", []pose{
		{JPEG: badJPEG, Tilt: 40, Axis: 135}, {JPEG: badJPEG, Tilt: -40, Axis: 135},
	}},
}

// halfway returns the pose halfway from the upright print to p, keeping its degradation.
func halfway(p pose) pose {
	s := p.Scale
	if s != 0 {
		s = (1 + s) / 2
	}
	return pose{Tilt: p.Tilt / 2, Axis: p.Axis, Roll: p.Roll / 2, Scale: s, DX: p.DX / 2, DY: p.DY / 2,
		Bend: p.Bend / 2, Blur: p.Blur, JPEG: p.JPEG}
}

// upright is the print held straight with p's degradation.
func upright(p pose) pose { return pose{Blur: p.Blur, JPEG: p.JPEG} }

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
// their turned photos) and the attacks (every front photo moved as a print in each way of
// attackKinds), and the frames they need with their poses.
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
		for _, a := range attackKinds {
			for _, p := range a.poses {
				seqs = append(seqs, sequence{
					name:   frameKey(front, p),
					kind:   a.kind,
					frames: []string{add(front, upright(p)), add(front, halfway(p)), add(front, p)},
					dirs:   []liveness.Direction{liveness.Left, liveness.Right},
				})
			}
		}
	}
	return seqs, plan
}

// attackPhoto reports whether front is the person's first front photo: the one held up in
// the attacks (one photo per person keeps the set small enough to render in minutes).
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

// frameResult is what the face engine found in one frame: its landmarks and descriptor, or
// why it rejected the frame.
type frameResult struct {
	Landmarks  [5][2]int `json:"landmarks,omitempty"`
	Descriptor string    `json:"descriptor,omitempty"` // little-endian float32s, base64
	Rejected   string    `json:"rejected,omitempty"`
}

func (r frameResult) observation(at time.Time) liveness.Observation {
	o := liveness.Observation{At: at}
	for i, p := range r.Landmarks {
		o.Landmarks[i] = liveness.Point{X: float64(p[0]), Y: float64(p[1])}
	}
	raw, _ := base64.StdEncoding.DecodeString(r.Descriptor)
	for i := range min(len(raw)/4, match.Dim) {
		o.Descriptor[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return o
}

func encodeDescriptor(d match.Descriptor) string {
	raw := make([]byte, 4*len(d))
	for i, v := range d {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return base64.StdEncoding.EncodeToString(raw)
}

func readFrames() (map[string]frameResult, error) {
	raw, err := os.ReadFile(framesFile)
	if err != nil {
		return nil, fmt.Errorf("%w (run go test -run TestFrames -update ./apps/facelogin/liveness with the models)", err)
	}
	var out map[string]frameResult
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("read %s: %w", framesFile, err)
	}
	return out, nil
}

// play runs seq against dir with rule: false when a frame has no usable face (the face
// step refuses such a frame before liveness is asked).
func play(rule liveness.Rule, seq sequence, dir liveness.Direction, frames map[string]frameResult) (liveness.Verdict, error) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var obs []liveness.Observation
	for i, k := range seq.frames {
		r, ok := frames[k]
		if !ok {
			return liveness.Verdict{}, fmt.Errorf("frame %q is not in %s; run go test -run TestFrames -update ./apps/facelogin/liveness", k, framesFile)
		}
		if r.Rejected != "" {
			return liveness.Verdict{Reason: "no_face"}, nil
		}
		obs = append(obs, r.observation(issued.Add(time.Duration(i+1)*frameStep)))
	}
	return rule.Check(dir, issued, obs), nil
}
