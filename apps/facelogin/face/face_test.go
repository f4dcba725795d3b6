package face

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// People are the eight people of testdata/faces, five photos each.
var people = []string{"amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart"}

var (
	sharedOnce sync.Once
	shared     *Engine
	sharedErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}

// modelsDir returns the dlib models directory or skips the test.
func modelsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EDGELINE_MODELS")
	if dir == "" {
		t.Skip("needs the dlib models: set EDGELINE_MODELS to their directory (run make test, which does)")
	}
	return dir
}

// facesDir returns testdata/faces or skips the test.
func facesDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EDGELINE_FACES")
	if dir == "" {
		t.Skip("needs the photos of testdata/faces: set EDGELINE_FACES (run make test, which does)")
	}
	return dir
}

// engine returns an Engine shared by the tests, with the default options, two workers and
// no practical limit on the wait for one (TestBusy tests that limit).
func engine(t testing.TB) *Engine {
	t.Helper()
	dir := modelsDir(t)
	sharedOnce.Do(func() { shared, sharedErr = New(Options{ModelsDir: dir, Workers: 2, MaxWait: time.Hour}) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func readPhoto(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(facesDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func personPhoto(t testing.TB, name string, n int) []byte {
	return readPhoto(t, fmt.Sprintf("people/%s/%s%d.png", name, name, n))
}

func decodeImage(t testing.TB, b []byte) image.Image {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// inFrame draws photo, scaled, at the centre of a w×h colour frame with a plain background,
// like a webcam picture of someone in front of a wall. tint, if not nil, recolours the photo.
func inFrame(photo image.Image, w, h int, scale float64, tint func(color.Color) color.Color) []byte {
	frame := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(frame, frame.Bounds(), image.NewUniform(color.RGBA{170, 160, 140, 255}), image.Point{}, draw.Src)
	pb := photo.Bounds()
	sw, sh := int(float64(pb.Dx())*scale), int(float64(pb.Dy())*scale)
	at := image.Pt((w-sw)/2, (h-sh)/2)
	for y := range sh {
		for x := range sw {
			c := photo.At(pb.Min.X+int(float64(x)/scale), pb.Min.Y+int(float64(y)/scale))
			if tint != nil {
				c = tint(c)
			}
			frame.Set(at.X+x, at.Y+y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, frame, &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// warm gives a grey pixel a skin-like colour, so a grey photo becomes a colour one.
func warm(c color.Color) color.Color {
	g := color.GrayModel.Convert(c).(color.Gray).Y
	return color.RGBA{uint8(min(255, int(g)*11/10)), g, uint8(int(g) * 85 / 100), 255}
}

func analyze(t testing.TB, e *Engine, frame []byte) Face {
	t.Helper()
	f, err := e.Analyze(context.Background(), frame)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func wantReason(t *testing.T, err error, want Reason) {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *face.Error with reason %q", err, want)
	}
	if fe.Reason != want {
		t.Fatalf("reason %q (%v), want %q", fe.Reason, fe, want)
	}
}

// TestAnalyzePeople finds one face in every photo of testdata/faces and checks that the
// nearest enrolled person of each fifth photo, among everyone's first four, is its own.
func TestAnalyzePeople(t *testing.T) {
	e := engine(t)
	facesDir(t)
	ix := match.NewIndex(match.DefaultThreshold, match.DefaultMargin)
	probes := map[match.UserID]match.Descriptor{}
	for i, name := range people {
		var enrolled []match.Descriptor
		for n := 1; n <= 5; n++ {
			f := analyze(t, e, personPhoto(t, name, n))
			if !f.Box.In(f.Frame) || f.Frame != image.Rect(0, 0, 150, 150) {
				t.Errorf("%s%d: box %v not inside frame %v", name, n, f.Box, f.Frame)
			}
			t.Logf("%s%d: box %v (%d px), brightness %.0f, landmarks %v", name, n, f.Box, f.Box.Dx(), f.Brightness, f.Landmarks)
			if err := faceLayout(f); err != nil {
				t.Errorf("%s%d: %v", name, n, err)
			}
			if n < 5 {
				enrolled = append(enrolled, f.Descriptor)
			} else {
				probes[match.UserID(i+1)] = f.Descriptor
			}
		}
		ix.Set(match.UserID(i+1), enrolled)
	}
	for id, d := range probes {
		if r := ix.Search(d); r.ID != id {
			t.Errorf("%s5: nearest person is %s (%.3f), want %s", people[id-1], people[r.ID-1], r.Distance, people[id-1])
		}
	}
}

// faceLayout checks that f's landmarks lie where an upright face has them: inside the box
// (with a little slack), the image-left eye left of the image-right one, each eye's outer
// corner outside its inner one, the nose between the eyes and below them.
func faceLayout(f Face) error {
	l := f.Landmarks
	slack := f.Box.Dx() / 10
	for i, p := range l {
		if !p.In(f.Box.Inset(-slack)) {
			return fmt.Errorf("landmark %d at %v is outside the box %v", i, p, f.Box)
		}
	}
	rightOuter, rightInner, leftOuter, leftInner, nose := l[0], l[1], l[2], l[3], l[4]
	if !(leftOuter.X < leftInner.X && leftInner.X < rightInner.X && rightInner.X < rightOuter.X) {
		return fmt.Errorf("eye corners %v are not in left-to-right order outer, inner, inner, outer", l[:4])
	}
	if nose.X <= leftInner.X-slack || nose.X >= rightInner.X+slack || nose.Y <= max(leftInner.Y, rightInner.Y)+slack {
		return fmt.Errorf("nose %v is not between and below the eyes %v", nose, l[:4])
	}
	return nil
}

// patchAgrees checks f's patch: at most PatchSide wide, inside the frame, around the box,
// shrunk by one integer factor, and as bright inside the box as Brightness says.
func patchAgrees(f Face) error {
	p, r := f.Patch, f.PatchRect
	if p == nil || p.Rect.Min != (image.Point{}) || p.Rect.Dx() > PatchSide || p.Rect.Empty() {
		return fmt.Errorf("patch %v, want one at most %d px wide from 0,0", p, PatchSide)
	}
	k := r.Dx() / p.Rect.Dx()
	if !r.In(f.Frame) || r.Dx() != k*p.Rect.Dx() || r.Dy() != k*p.Rect.Dy() {
		return fmt.Errorf("patch %v shows %v of frame %v: not one integer scale inside the frame", p.Rect, r, f.Frame)
	}
	in := f.Box.Intersect(r).Sub(r.Min)
	inner := image.Rectangle{Min: in.Min.Div(k), Max: in.Max.Div(k)}.Intersect(p.Rect)
	if inner.Dx() < f.Box.Dx()/k-2 {
		return fmt.Errorf("patch rectangle %v cuts the box %v", r, f.Box)
	}
	var sum int
	for y := inner.Min.Y; y < inner.Max.Y; y++ {
		for x := inner.Min.X; x < inner.Max.X; x++ {
			sum += int(p.GrayAt(x, y).Y)
		}
	}
	if mean := float64(sum) / float64(inner.Dx()*inner.Dy()); math.Abs(mean-f.Brightness) > 3 {
		return fmt.Errorf("patch mean %.1f inside the box, brightness %.1f", mean, f.Brightness)
	}
	return nil
}

// TestAnalyzeFormats finds the same face in a grey PNG crop, a grey JPEG, a colour PNG and
// a 640×480 colour JPEG frame made from it, with the same landmarks in frame coordinates.
func TestAnalyzeFormats(t *testing.T) {
	e := engine(t)
	crop := personPhoto(t, "amy", 1)
	ref := analyze(t, e, crop)
	photo := decodeImage(t, crop)
	colourFrame := inFrame(photo, 640, 480, 2, warm)
	tests := []struct {
		name  string
		frame []byte
		// scale and at place the crop in the frame, as inFrame did.
		scale int
		at    image.Point
		// tol is how far, in frame pixels, a landmark may be from the crop's, scaled.
		tol int
	}{
		{"grey JPEG crop", encodeJPEG(t, photo), 1, image.Point{}, 2},
		{"colour PNG crop", encodePNG(t, toRGBA(decodeImage(t, inFrame(photo, 150, 150, 1, warm)))), 1, image.Point{}, 2},
		{"colour JPEG 640x480 frame", colourFrame, 2, image.Pt(170, 90), 4},
		{"grey PNG 640x480 frame", encodePNG(t, toGray(decodeImage(t, colourFrame))), 2, image.Pt(170, 90), 4},
		// Detection runs on a copy shrunk 3×: landmarks come back in steps of 3 pixels.
		{"colour JPEG 3600x2400 photo, shrunk for detection", inFrame(photo, 3600, 2400, 8, warm), 8, image.Pt(1200, 600), 24},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := analyze(t, e, tt.frame)
			for i, p := range f.Landmarks {
				want := ref.Landmarks[i].Mul(tt.scale).Add(tt.at)
				if d := p.Sub(want); max(d.X, -d.X, d.Y, -d.Y) > tt.tol {
					t.Errorf("landmark %d at %v, want %v ± %d (the crop's %v)", i, p, want, tt.tol, ref.Landmarks[i])
				}
			}
			if err := patchAgrees(f); err != nil {
				t.Error(err)
			}
			if d := match.Distance(&ref.Descriptor, &f.Descriptor); d > match.DefaultThreshold {
				t.Errorf("distance to the grey PNG's descriptor is %.3f, over the threshold %.2f", d, match.DefaultThreshold)
			}
			if !f.Box.In(f.Frame) || f.Box.Dx() < e.opts.MinFaceSize {
				t.Errorf("box %v in frame %v", f.Box, f.Frame)
			}
			// Every frame here has the face in its middle.
			c, mid := f.Box.Min.Add(f.Box.Max).Div(2), f.Frame.Max.Div(2)
			if d := c.Sub(mid); max(d.X, -d.X, d.Y, -d.Y) > f.Frame.Dx()/8 {
				t.Errorf("box %v is off the middle of frame %v", f.Box, f.Frame)
			}
		})
	}
}

// toRGBA converts img to 8-bit RGBA, as a browser canvas holds it: Go's PNG encoder writes
// other colour models, such as a decoded JPEG's YCbCr, as 16-bit PNGs, which Analyze refuses.
func toRGBA(img image.Image) *image.RGBA {
	m := image.NewRGBA(img.Bounds())
	draw.Draw(m, m.Bounds(), img, img.Bounds().Min, draw.Src)
	return m
}

func toGray(img image.Image) *image.Gray {
	g := image.NewGray(img.Bounds())
	draw.Draw(g, g.Bounds(), img, img.Bounds().Min, draw.Src)
	return g
}

// TestAnalyzeRejects checks each rejection reason on a real frame through the real models.
func TestAnalyzeRejects(t *testing.T) {
	e := engine(t)
	photo := decodeImage(t, personPhoto(t, "amy", 2))
	dark := func(c color.Color) color.Color {
		r, g, b, _ := c.RGBA()
		return color.RGBA{uint8(r >> 8 / 6), uint8(g >> 8 / 6), uint8(b >> 8 / 6), 255}
	}
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, photo, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		frame []byte
		want  Reason
	}{
		{"empty wall", encodeJPEG(t, gradient(640, 480)), NoFace},
		{"face far away", inFrame(photo, 640, 480, 0.7, warm), TooSmall},
		{"face in the dark", inFrame(photo, 640, 480, 2, dark), TooDark},
		{"zero bytes", nil, BadImage},
		{"GIF", gifBuf.Bytes(), UnsupportedFormat},
	}
	for i := 1; i <= 5; i++ {
		tests = append(tests, struct {
			name  string
			frame []byte
			want  Reason
		}{fmt.Sprintf("group photo bbt%d", i), readPhoto(t, fmt.Sprintf("groups/bbt%d.jpg", i)), ManyFaces})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := e.Analyze(context.Background(), tt.frame)
			wantReason(t, err, tt.want)
			t.Logf("%v: box %v brightness %.0f", err, f.Box, f.Brightness)
		})
	}
}

// TestAnalyzeConcurrent runs many analyses at once over the two recognizers and checks each
// gives the descriptor a lone analysis of the same photo gives.
func TestAnalyzeConcurrent(t *testing.T) {
	e := engine(t)
	photos := make([][]byte, len(people))
	want := make([]match.Descriptor, len(people))
	for i, name := range people {
		photos[i] = personPhoto(t, name, 3)
		want[i] = analyze(t, e, photos[i]).Descriptor
	}
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Go(func() {
			for k := range 2 {
				i := (g + k) % len(people)
				f, err := e.Analyze(context.Background(), photos[i])
				if err != nil {
					t.Error(err)
					return
				}
				if f.Descriptor != want[i] {
					t.Errorf("goroutine %d: %s's descriptor differs from the lone analysis (distance %.4f)", g, people[i], match.Distance(&f.Descriptor, &want[i]))
				}
			}
		})
	}
	wg.Wait()
}

// TestClose closes an engine while analyses run: each ends with a face or ErrClosed, Close
// waits for the running ones, and later calls fail with ErrClosed instead of blocking.
func TestClose(t *testing.T) {
	e, err := New(Options{ModelsDir: modelsDir(t), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	frame := personPhoto(t, "penny", 1)
	var wg sync.WaitGroup
	started := make(chan struct{}, 3)
	for range 3 {
		wg.Go(func() {
			started <- struct{}{}
			if _, err := e.Analyze(context.Background(), frame); err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("Analyze during Close: %v, want a face or ErrClosed", err)
			}
		})
	}
	for range 3 {
		<-started
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	e.Close()
	if _, err := e.Analyze(context.Background(), frame); !errors.Is(err, ErrClosed) {
		t.Fatalf("Analyze after Close: %v, want ErrClosed", err)
	}
}

func TestNewMissingModels(t *testing.T) {
	_, err := New(Options{ModelsDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make models") {
		t.Fatalf("New on an empty directory: %v, want an error saying to run make models", err)
	}
}

// TestAnalyzeCNN checks the CNN detector option on a frame and a group photo.
func TestAnalyzeCNN(t *testing.T) {
	e, err := New(Options{ModelsDir: modelsDir(t), Workers: 1, CNN: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	photo := personPhoto(t, "sheldon", 1)
	hog := analyze(t, engine(t), photo)
	cnn := analyze(t, e, inFrame(decodeImage(t, photo), 640, 480, 2, warm))
	if d := match.Distance(&hog.Descriptor, &cnn.Descriptor); d > match.DefaultThreshold {
		t.Errorf("CNN and HOG descriptors of the same photo are %.3f apart", d)
	}
	_, err = e.Analyze(context.Background(), readPhoto(t, "groups/bbt2.jpg"))
	wantReason(t, err, ManyFaces)
}

// TestBusy holds the only recognizer and checks that Analyze waits at most MaxWait for it,
// then answers *BusyError with a retry time, or stops waiting when its context ends; and
// that the header check still answers at once.
func TestBusy(t *testing.T) {
	e, err := New(Options{ModelsDir: modelsDir(t), Workers: 1, MaxWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	frame := inFrame(decodeImage(t, personPhoto(t, "leonard", 1)), 640, 480, 2, warm)
	rec := <-e.pool

	start := time.Now()
	_, err = e.AnalyzeFrame(context.Background(), frame)
	var be *BusyError
	if !errors.As(err, &be) {
		t.Fatalf("Analyze with every recognizer held: %v, want a *BusyError", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 5*time.Second {
		t.Errorf("gave up after %v, want MaxWait (100ms)", took)
	}
	if be.RetryAfter < time.Second {
		t.Errorf("RetryAfter %v, want at least a second", be.RetryAfter)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := e.AnalyzeFrame(ctx, frame); !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze cancelled while waiting: %v, want context.Canceled", err)
	}
	_, err = e.AnalyzeFrame(context.Background(), []byte("GIF89a"))
	wantReason(t, err, UnsupportedFormat)

	e.pool <- rec
	if _, err := e.AnalyzeFrame(context.Background(), frame); err != nil {
		t.Fatalf("Analyze with the recognizer back: %v", err)
	}
}

// TestAnalyzeFrame checks the camera-frame pixel cap: a 1920×1080 frame is analysed, a
// larger one refused from its header although Analyze would take it as a photo.
func TestAnalyzeFrame(t *testing.T) {
	e := engine(t)
	photo := decodeImage(t, personPhoto(t, "raj", 1))
	ctx := context.Background()
	if _, err := e.AnalyzeFrame(ctx, inFrame(photo, 1920, 1080, 3, warm)); err != nil {
		t.Fatalf("1920x1080 frame: %v", err)
	}
	big := inFrame(photo, 2560, 1440, 3, warm)
	_, err := e.AnalyzeFrame(ctx, big)
	wantReason(t, err, TooLarge)
	if _, err := e.Analyze(ctx, big); err != nil {
		t.Fatalf("2560x1440 photo through Analyze: %v", err)
	}
}
