package face

import (
	"context"
	"errors"
	"image"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// wildFrame returns the photo of testdata/faces/wild at rel scaled to cover w×h and cut to
// it around its centre (nearest neighbour), as a JPEG: a camera frame of a real scene.
func wildFrame(t testing.TB, rel string, w, h int) []byte {
	t.Helper()
	src := decodeImage(t, readPhoto(t, rel))
	sb := src.Bounds()
	k := math.Max(float64(w)/float64(sb.Dx()), float64(h)/float64(sb.Dy()))
	ox, oy := (float64(sb.Dx())*k-float64(w))/2, (float64(sb.Dy())*k-float64(h))/2
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			dst.Set(x, y, src.At(sb.Min.X+int((float64(x)+ox)/k), sb.Min.Y+int((float64(y)+oy)/k)))
		}
	}
	return encodeJPEG(t, dst)
}

// TestAnalyzeFrameHalved compares AnalyzeFrame's default path (the face detected in the
// frame halved in size, landmarks and descriptor on the full frame) with the full-size
// detection (FullFrameDetect) on real frames: people of testdata/faces on a wall at two
// sizes, faces from the wild set cut to 640×480, and a face too small for the
// half frame. Both must give the same answer; for an accepted face, a box whose centre and
// width are within a quarter of the full-size box's width, the five landmarks within
// max(3 px, a twentieth of the box width) and descriptors within 0.12 of each other: the
// same order as what moving the frame by 1 px or zooming it by 2 % does to the full-size
// path's descriptor (0.03–0.08 on these frames), far below the match threshold (0.5).
// Every frame must also be identified alike: with the people enrolled from photos
// 2–5 through Analyze (as enrollment does), each frame is the same known person on both
// paths (each people frame) or unknown on both (each wild frame).
func TestAnalyzeFrameHalved(t *testing.T) {
	half := engine(t)
	full, err := New(Options{ModelsDir: modelsDir(t), Workers: 1, MaxWait: time.Hour, FullFrameDetect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()

	type frameCase struct {
		name  string
		frame []byte
	}
	var cases []frameCase
	for _, name := range people {
		photo := decodeImage(t, personPhoto(t, name, 1))
		cases = append(cases,
			frameCase{name + "1 ×2 in 640×480", inFrame(photo, 640, 480, 2, warm)},
			frameCase{name + "1 ×3 in 1280×720", inFrame(photo, 1280, 720, 3, warm)})
	}
	wild, err := filepath.Glob(filepath.Join(facesDir(t), "wild", "*", "*.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range wild {
		rel, _ := filepath.Rel(facesDir(t), path)
		cases = append(cases, frameCase{filepath.Base(path) + " in 640×480", wildFrame(t, rel, 640, 480)})
	}
	small := inFrame(decodeImage(t, personPhoto(t, "penny", 2)), 640, 480, 1, warm)
	cases = append(cases, frameCase{"penny2 ×1 in 640×480 (small face)", small})

	ctx := context.Background()
	ix := match.NewIndex(match.DefaultThreshold, match.DefaultMargin)
	for i, name := range people {
		var ds []match.Descriptor
		for n := 2; n <= 5; n++ {
			ds = append(ds, analyze(t, half, personPhoto(t, name, n)).Descriptor)
		}
		ix.Set(match.UserID(i+1), ds)
	}
	var accepted int
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, werr := full.AnalyzeFrame(ctx, c.frame)
			got, gerr := half.AnalyzeFrame(ctx, c.frame)
			if reason(werr) != reason(gerr) {
				t.Fatalf("halved: %v; full size: %v", gerr, werr)
			}
			if werr != nil {
				t.Logf("both %v", werr)
				return
			}
			accepted++
			d := match.Distance(&got.Descriptor, &want.Descriptor)
			var worst float64
			for i := range got.Landmarks {
				worst = math.Max(worst, dist(got.Landmarks[i], want.Landmarks[i]))
			}
			t.Logf("box %v (full size: %v), landmarks %.1f px apart at most, descriptors %.3f apart", got.Box, want.Box, worst, d)
			tol := float64(want.Box.Dx()) / 4
			centre := func(r image.Rectangle) image.Point { return r.Min.Add(r.Max).Div(2) }
			if dist(centre(got.Box), centre(want.Box)) > tol || math.Abs(float64(got.Box.Dx()-want.Box.Dx())) > tol {
				t.Errorf("box %v, full size %v: centres or widths more than %.0f px apart", got.Box, want.Box, tol)
			}
			if lim := math.Max(3, float64(want.Box.Dx())/20); worst > lim {
				t.Errorf("landmarks %v, full size %v: %.1f px apart, want ≤ %.1f", got.Landmarks, want.Landmarks, worst, lim)
			}
			if err := faceLayout(got); err != nil {
				t.Error(err)
			}
			if d > 0.12 {
				t.Errorf("descriptors %.3f apart, want ≤ 0.12", d)
			}
			if g, w := ix.Search(got.Descriptor), ix.Search(want.Descriptor); g.Known != w.Known || (g.Known && g.ID != w.ID) {
				t.Errorf("identified as %d (known %v, %.3f), full size as %d (known %v, %.3f)", g.ID, g.Known, g.Distance, w.ID, w.Known, w.Distance)
			}
		})
	}
	if accepted < len(people)*2 {
		t.Errorf("only %d frames had an accepted face", accepted)
	}
}

// reason returns the Reason of a *Error, "" for nil, or the error's text.
func reason(err error) string {
	var fe *Error
	if errors.As(err, &fe) {
		return string(fe.Reason)
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func dist(a, b image.Point) float64 {
	return math.Hypot(float64(a.X-b.X), float64(a.Y-b.Y))
}
