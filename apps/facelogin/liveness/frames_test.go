package liveness_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"image"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/face"
	"github.com/edgeline/edgeline/apps/facelogin/liveness"
)

var update = flag.Bool("update", false, "render every frame of the sequences and rewrite testdata/frames.json with what the face engine finds")

// engine loads the dlib models or skips the test.
func engine(t *testing.T, workers int) (*face.Engine, string) {
	t.Helper()
	models, faces := os.Getenv("EDGELINE_MODELS"), os.Getenv("EDGELINE_FACES")
	if models == "" || faces == "" {
		t.Skip("needs the dlib models and testdata/faces: set EDGELINE_MODELS and EDGELINE_FACES (make unit PKGS=./apps/facelogin/liveness/... does)")
	}
	e, err := face.New(face.Options{ModelsDir: models, Workers: workers, MaxWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, faces
}

// analyzeFrame renders plan and runs the real face engine on it, as the API does on a
// camera frame.
func analyzeFrame(e *face.Engine, facesDir string, plan framePlan, photos map[string]*image.Gray) (frameResult, error) {
	jpg, err := render(photos[plan.photo], plan.pose)
	if err != nil {
		return frameResult{}, err
	}
	f, err := e.AnalyzeFrame(context.Background(), jpg)
	var fe *face.Error
	if errors.As(err, &fe) {
		return frameResult{Rejected: string(fe.Reason)}, nil
	}
	if err != nil {
		return frameResult{}, err
	}
	var r frameResult
	for i, p := range f.Landmarks {
		r.Landmarks[i] = [2]int{p.X, p.Y}
	}
	r.Descriptor = encodeDescriptor(f.Descriptor)
	return r, nil
}

func loadPhotos(t *testing.T, facesDir string) map[string]*image.Gray {
	t.Helper()
	photos := map[string]*image.Gray{}
	for name := range poses {
		img, err := loadPhoto(facesDir, name)
		if err != nil {
			t.Fatal(err)
		}
		photos[name] = img
	}
	return photos
}

// TestFrames runs the real models end to end on one genuine sequence and one tilted print,
// rendered afresh, and checks that they give the stored landmarks and the same verdicts;
// with -update it renders and analyses every frame of the sets and rewrites
// testdata/frames.json.
func TestFrames(t *testing.T) {
	workers := 1
	if *update {
		workers = 2
	}
	e, facesDir := engine(t, workers)
	photos := loadPhotos(t, facesDir)
	seqs, plan := sequences()
	if *update {
		if err := updateFrames(t, e, facesDir, plan, photos, workers); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := readFrames()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sheldon1 → sheldon4", frameKey("sheldon1", pose{Tilt: 40, Axis: 45})} {
		var seq sequence
		for _, s := range seqs {
			if s.name == name {
				seq = s
			}
		}
		if seq.frames == nil {
			t.Fatalf("no sequence %q", name)
		}
		fresh := map[string]frameResult{}
		for _, k := range seq.frames {
			r, err := analyzeFrame(e, facesDir, plan[k], photos)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rejected != "" {
				t.Fatalf("%s: the face engine rejected the frame: %s", k, r.Rejected)
			}
			for i, p := range r.Landmarks {
				q := stored[k].Landmarks[i]
				if abs(p[0]-q[0]) > 1 || abs(p[1]-q[1]) > 1 {
					t.Errorf("%s: landmark %d at %v, %s has %v; run go test -run TestFrames -update ./apps/facelogin/liveness", k, i, p, framesFile, q)
				}
			}
			fresh[k] = r
		}
		for _, dir := range seq.dirs {
			got, err := play(liveness.DefaultRule, seq, dir, fresh)
			if err != nil {
				t.Fatal(err)
			}
			want, err := play(liveness.DefaultRule, seq, dir, stored)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s, challenge %v: %s (turn %.3f, parallax %.3f)", name, dir, got.Reason, got.Turn, got.Parallax)
			if got.Reason != want.Reason {
				t.Errorf("%s, challenge %v: %s on fresh frames, %s on the stored ones", name, dir, got.Reason, want.Reason)
			}
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// updateFrames analyses every planned frame not yet in the frames file, saving as it goes
// (a run cut short resumes), and drops the frames no sequence uses. Delete the file after
// changing the renderer.
func updateFrames(t *testing.T, e *face.Engine, facesDir string, plan map[string]framePlan, photos map[string]*image.Gray, workers int) error {
	out, err := readFrames()
	if err != nil {
		out = map[string]frameResult{}
	}
	for k := range out {
		if _, ok := plan[k]; !ok {
			delete(out, k)
		}
	}
	var keys []string
	for k := range plan {
		if _, ok := out[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	t.Logf("%d frames to render and analyse, %d stored", len(keys), len(out))
	var mu sync.Mutex
	save := func() error {
		raw, err := json.MarshalIndent(out, "", " ")
		if err != nil {
			return err
		}
		return os.WriteFile(framesFile, append(raw, '\n'), 0o644)
	}
	var wg sync.WaitGroup
	work := make(chan string)
	errs := make(chan error, len(keys)+1)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				r, err := analyzeFrame(e, facesDir, plan[k], photos)
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				out[k] = r
				if len(out)%20 == 0 {
					if err := save(); err != nil {
						errs <- err
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	errs <- save()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkFrameCost is the per-frame cost of a login frame before liveness (the face
// engine's analysis, which guidance spends anyway) and after (the same analysis, then the
// landmarks and descriptor it returned added to a challenge), side by side on one rendered
// 640×480 frame. The check adds no recognizer pass; the ratio shows what it adds.
func BenchmarkFrameCost(b *testing.B) {
	models, faces := os.Getenv("EDGELINE_MODELS"), os.Getenv("EDGELINE_FACES")
	if models == "" || faces == "" {
		b.Skip("needs the dlib models and testdata/faces: set EDGELINE_MODELS and EDGELINE_FACES")
	}
	e, err := face.New(face.Options{ModelsDir: models, Workers: 1, MaxWait: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	img, err := loadPhoto(faces, "sheldon1")
	if err != nil {
		b.Fatal(err)
	}
	jpg, err := render(img, pose{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var before, after time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := e.AnalyzeFrame(ctx, jpg); err != nil {
			b.Fatal(err)
		}
		before += time.Since(start)

		start = time.Now()
		f, err := e.AnalyzeFrame(ctx, jpg)
		if err != nil {
			b.Fatal(err)
		}
		c, err := liveness.NewChallenge(liveness.DefaultRule, start)
		if err != nil {
			b.Fatal(err)
		}
		for range 2 {
			o := liveness.Observation{At: time.Now(), Descriptor: f.Descriptor}
			for i, p := range f.Landmarks {
				o.Landmarks[i] = liveness.Point{X: float64(p.X), Y: float64(p.Y)}
			}
			c.Add(o)
		}
		after += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(before.Microseconds())/n/1000, "ms/frame-before")
	b.ReportMetric(float64(after.Microseconds())/n/1000, "ms/frame-after")
	b.ReportMetric(float64(after)/float64(before), "after/before")
}
