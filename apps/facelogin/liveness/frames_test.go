package liveness_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/face"
	"github.com/edgeline/edgeline/apps/facelogin/liveness"
)

var update = flag.Bool("update", false, "rewrite the liveness tables of docs/benchmarks.md and docs/face-recognition.md")

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
func analyzeFrame(e *face.Engine, plan framePlan, photos map[string]*image.Gray) (frameResult, error) {
	jpg, err := render(photos[plan.photo], plan.pose)
	if err != nil {
		return frameResult{}, err
	}
	f, err := e.AnalyzeFrame(context.Background(), jpg)
	var fe *face.Error
	if errors.As(err, &fe) {
		return frameResult{rejected: string(fe.Reason)}, nil
	}
	if err != nil {
		return frameResult{}, err
	}
	r := frameResult{descriptor: f.Descriptor, patch: f.Patch, patchRect: f.PatchRect}
	for i, p := range f.Landmarks {
		r.landmarks[i] = liveness.Point{X: float64(p.X), Y: float64(p.Y)}
	}
	return r, nil
}

func loadPhotos(t testing.TB, facesDir string) map[string]*image.Gray {
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

// analyseAll renders every frame of plan and runs the real face engine on it, with as many
// workers as the engine has.
func analyseAll(t *testing.T, e *face.Engine, facesDir string, plan map[string]framePlan, workers int) map[string]frameResult {
	t.Helper()
	photos := loadPhotos(t, facesDir)
	var keys []string
	for k := range plan {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]frameResult, len(keys))
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan string)
	errs := make(chan error, len(keys))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				r, err := analyzeFrame(e, plan[k], photos)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", k, err)
					continue
				}
				mu.Lock()
				out[k] = r
				mu.Unlock()
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

// BenchmarkFrameCost is the per-frame cost of a login frame before liveness (the face
// engine's analysis, which guidance spends anyway) and after (the same analysis, then the
// frame added to a challenge whose first frame is the person looking ahead), side by side.
// The frame is a real turn the challenge asked for, so the pixel check runs in full: the
// most a frame costs. The check adds no recognizer pass; the ratio shows what it adds.
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
	photos := loadPhotos(b, faces)
	front, err := analyzeFrame(e, framePlan{photo: "sheldon1"}, photos)
	if err != nil || front.rejected != "" {
		b.Fatalf("analyse the front frame: %v %s", err, front.rejected)
	}
	jpg, err := render(photos["sheldon4"], pose{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var before, after time.Duration
	var v liveness.Verdict
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
		turned := frameResult{descriptor: f.Descriptor, patch: f.Patch, patchRect: f.PatchRect}
		for i, p := range f.Landmarks {
			turned.landmarks[i] = liveness.Point{X: float64(p.X), Y: float64(p.Y)}
		}
		v = liveness.DefaultRule.Check(liveness.Left, start, []liveness.Observation{front.observation(start), turned.observation(start)})
		after += time.Since(start)
	}
	if !v.Live() || v.Planarity == 0 {
		b.Fatalf("verdict %+v: want a passed turn judged by the pixel check", v)
	}
	n := float64(b.N)
	b.ReportMetric(float64(before.Microseconds())/n/1000, "ms/frame-before")
	b.ReportMetric(float64(after.Microseconds())/n/1000, "ms/frame-after")
	b.ReportMetric(float64(after)/float64(before), "after/before")
}
