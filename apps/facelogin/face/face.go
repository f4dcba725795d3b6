// Package face turns a camera frame into a face descriptor with dlib's models (through
// github.com/Kagami/go-face), rejecting frames that cannot give a reliable one: unreadable or
// oversized images, no face, several faces, a face too small or too dark. It is the only
// package of the app that uses cgo.
//
// The files follow a frame: face.go (the Engine, its recognizers and Analyze, which runs the
// steps in order), image.go (the header check before a recognizer is taken, then decoding
// and conversion for dlib), quality.go (the checks on the face found) and error.go (the
// reasons a frame is rejected).
package face

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	goface "github.com/Kagami/go-face"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// The model files Options.ModelsDir must hold.
var ModelFiles = []string{
	"dlib_face_recognition_resnet_model_v1.dat",
	"shape_predictor_5_face_landmarks.dat",
	"mmod_human_face_detector.dat",
}

// Defaults for the zero values of Options.
const (
	DefaultMaxBytes       = 8 << 20     // bytes of an encoded image
	DefaultMaxPixels      = 12_000_000  // width × height of a photo (Analyze)
	DefaultMaxFramePixels = 1920 * 1080 // width × height of a camera frame (AnalyzeFrame)
	DefaultMaxWait        = 500 * time.Millisecond
	DefaultMinFaceSize    = 100 // px; HOG finds faces from ≈ 80 px, descriptors want more
	DefaultMinBrightness  = 40  // mean luma 0–255 of the face box
)

// Options configure an Engine. Zero values mean the defaults above.
type Options struct {
	// ModelsDir holds the dlib models named in ModelFiles.
	ModelsDir string
	// Workers is the number of recognizers, each analysing one frame at a time and each
	// holding ≈ 35 MB of models; 0 means runtime.NumCPU(). dlib's matrix products run in
	// OpenBLAS, which by default uses every core for one frame: with several workers, set
	// OPENBLAS_NUM_THREADS=1 in the environment (docs/face-recognition.md).
	Workers int
	// CNN selects dlib's CNN face detector (≈ 20× slower, finds more faces) over HOG.
	CNN bool
	// FullFrameDetect makes AnalyzeFrame look for the face in the camera frame at full
	// size, as Analyze does. By default it looks in the frame halved in size, which takes
	// about a quarter of the detector's time, and again at full size only when the half
	// frame shows no face (see AnalyzeFrame).
	FullFrameDetect bool
	// MaxBytes caps the size of an encoded image.
	MaxBytes int64
	// MaxPixels caps width × height of an image given to Analyze, checked from its header
	// before any pixel is decoded.
	MaxPixels int
	// MaxFramePixels caps width × height of a camera frame given to AnalyzeFrame, checked
	// likewise; it cannot exceed MaxPixels.
	MaxFramePixels int
	// MaxWait bounds how long Analyze waits for a free recognizer before it gives up with
	// a *BusyError.
	MaxWait time.Duration
	// MinFaceSize is the smallest accepted width of the face box, in pixels.
	MinFaceSize int
	// MinBrightness is the smallest accepted mean luma (0–255) inside the face box.
	MinBrightness float64
}

// Face is the single face found in a frame.
type Face struct {
	// Descriptor is the face's descriptor. It is biometric data: never log it.
	Descriptor match.Descriptor
	// Box is the face's bounding box, in frame coordinates, clipped to Frame.
	Box image.Rectangle
	// Frame is the bounds of the whole frame, origin at 0,0.
	Frame image.Rectangle
	// Brightness is the mean luma (0–255) inside Box.
	Brightness float64
	// Landmarks are the five points dlib's shape predictor places on the face (the ones
	// that align it for the descriptor), in frame coordinates.
	Landmarks Landmarks
	// Patch is a grey copy of the frame around the face — Box and a quarter of its width
	// around it, clipped to Frame, shrunk by an integer factor to at most PatchSide pixels
	// wide — for checks that compare the pixels of successive frames (liveness).
	// PatchRect is the frame rectangle it shows. Both are set only for accepted faces.
	Patch     *image.Gray
	PatchRect image.Rectangle
}

// PatchSide is the largest width of Face.Patch.
const PatchSide = 128

// Landmarks are the five points of dlib's shape_predictor_5_face_landmarks, in its order:
// the outer and inner corner of the eye on the image's right (the person's left eye), the
// outer and inner corner of the eye on the image's left, and the bottom of the nose.
type Landmarks [5]image.Point

// Engine analyses frames with a pool of dlib recognizers. One recognizer runs one detection
// and one descriptor computation at a time (go-face guards each with a mutex), so concurrent
// frames need recognizers of their own. A frame's pixels are decoded only once it holds a
// recognizer, so at most Workers frames are in memory decoded at any time, and a caller
// waits at most MaxWait for one. An Engine is safe for concurrent use.
type Engine struct {
	opts   Options
	pool   chan *goface.Recognizer
	loaded int // recognizers made, all of them in pool or in use
	closed chan struct{}
	once   sync.Once

	mu      sync.Mutex    // guards waiting and hold
	waiting int           // callers waiting for a recognizer
	hold    time.Duration // moving average of how long an analysis holds a recognizer
}

// New loads the models into opts.Workers recognizers.
func New(opts Options) (*Engine, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxPixels <= 0 {
		opts.MaxPixels = DefaultMaxPixels
	}
	if opts.MaxFramePixels <= 0 {
		opts.MaxFramePixels = DefaultMaxFramePixels
	}
	opts.MaxFramePixels = min(opts.MaxFramePixels, opts.MaxPixels)
	if opts.MaxWait <= 0 {
		opts.MaxWait = DefaultMaxWait
	}
	if opts.MinFaceSize <= 0 {
		opts.MinFaceSize = DefaultMinFaceSize
	}
	if opts.MinBrightness <= 0 {
		opts.MinBrightness = DefaultMinBrightness
	}
	for _, name := range ModelFiles {
		if _, err := os.Stat(filepath.Join(opts.ModelsDir, name)); err != nil {
			return nil, fmt.Errorf("face models: %w (run make models, or point --models at the directory holding %s)", err, name)
		}
	}
	e := &Engine{
		opts:   opts,
		pool:   make(chan *goface.Recognizer, opts.Workers),
		closed: make(chan struct{}),
	}
	for i := range opts.Workers {
		rec, err := goface.NewRecognizer(opts.ModelsDir)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("load face models from %s (recognizer %d): %w", opts.ModelsDir, i+1, err)
		}
		e.pool <- rec
		e.loaded++
	}
	return e, nil
}

// Workers returns the number of recognizers.
func (e *Engine) Workers() int { return e.opts.Workers }

// Close waits for running analyses and frees the models. Analyze fails with ErrClosed after.
func (e *Engine) Close() error {
	e.once.Do(func() {
		close(e.closed)
		// Every recognizer comes back to the pool when its analysis ends.
		for range e.loaded {
			(<-e.pool).Close()
		}
	})
	return nil
}

// Analyze finds exactly one face in an image (JPEG or PNG, colour or grey, up to MaxPixels)
// and returns its descriptor. An image that cannot give one is rejected with a *Error; a
// caller that waited MaxWait for a recognizer gets a *BusyError; other errors
// (cancellation, a closed engine, a dlib failure) are the server's. When the face is
// rejected as too small or too dark, the returned Face still tells where it is and how
// bright it is.
func (e *Engine) Analyze(ctx context.Context, img []byte) (Face, error) {
	return e.analyze(ctx, img, limits{maxBytes: e.opts.MaxBytes, maxPixels: e.opts.MaxPixels}, false)
}

// AnalyzeFrame is Analyze for a camera frame: it refuses images over MaxFramePixels, and
// unless Options.FullFrameDetect is set, it detects the face in the frame halved in size
// when the frame's shorter side is at least HalveFrom pixels: the detector then costs about
// a quarter, while the landmarks and the descriptor are still computed on the full frame.
// A face narrower than about 160 px (twice the detector's 80 px window) is not found in the
// half frame; when the half frame shows no face, the full frame is searched, so such a face
// is still answered (too small, or accepted), but a second face that small beside a larger
// one is not seen, where Analyze would answer ManyFaces.
func (e *Engine) AnalyzeFrame(ctx context.Context, frame []byte) (Face, error) {
	return e.analyze(ctx, frame, limits{maxBytes: e.opts.MaxBytes, maxPixels: e.opts.MaxFramePixels}, !e.opts.FullFrameDetect)
}

// HalveFrom is the shorter side, in pixels of the image dlib reads, from which AnalyzeFrame
// detects faces on the image halved: a 640×480 frame is searched at 320×240.
const HalveFrom = 480

func (e *Engine) analyze(ctx context.Context, img []byte, lim limits, halve bool) (Face, error) {
	f, rerr := inspect(img, lim)
	if rerr != nil {
		return Face{}, rerr
	}
	rec, err := e.acquire(ctx)
	if err != nil {
		return Face{}, err
	}
	defer e.release(rec, time.Now())
	faces, err := e.recognize(rec, f, halve)
	if err != nil {
		return Face{}, err
	}
	switch len(faces) {
	case 0:
		return Face{}, reject(NoFace, "No face was found; look straight into the camera.")
	case 1:
	default:
		return Face{}, reject(ManyFaces, fmt.Sprintf("%d faces are in view; make sure only you are in front of the camera.", len(faces)))
	}
	got := Face{
		Descriptor: match.Descriptor(faces[0].Descriptor),
		Box:        scale(faces[0].Rectangle.Sub(f.offset), f.shrink).Intersect(f.bounds),
		Frame:      f.bounds,
	}
	if len(faces[0].Shapes) != len(got.Landmarks) {
		return Face{}, fmt.Errorf("face landmarks: the shape predictor gave %d points, want %d", len(faces[0].Shapes), len(got.Landmarks))
	}
	for i, p := range faces[0].Shapes {
		got.Landmarks[i] = p.Sub(f.offset).Mul(f.shrink)
	}
	got.Brightness = brightness(f.src, got.Box)
	if rerr := e.judge(got); rerr != nil {
		return got, rerr
	}
	got.Patch, got.PatchRect = patch(f.src, got.Box.Inset(-got.Box.Dx()/4).Intersect(f.bounds), PatchSide)
	return got, nil
}

// acquire takes a free recognizer, waiting at most MaxWait.
func (e *Engine) acquire(ctx context.Context) (*goface.Recognizer, error) {
	select {
	case <-e.closed:
		return nil, ErrClosed
	default:
	}
	select {
	case rec := <-e.pool:
		return rec, nil
	default:
	}
	e.mu.Lock()
	e.waiting++
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.waiting--
		e.mu.Unlock()
	}()
	timer := time.NewTimer(e.opts.MaxWait)
	defer timer.Stop()
	select {
	case <-e.closed:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a face recognizer: %w", context.Cause(ctx))
	case <-timer.C:
		return nil, &BusyError{RetryAfter: e.retryAfter()}
	case rec := <-e.pool:
		return rec, nil
	}
}

// release gives rec back and counts how long it was held since start.
func (e *Engine) release(rec *goface.Recognizer, start time.Time) {
	took := time.Since(start)
	e.mu.Lock()
	if e.hold == 0 {
		e.hold = took
	} else {
		e.hold += (took - e.hold) / 8
	}
	e.mu.Unlock()
	e.pool <- rec
}

// retryAfter estimates when the callers waiting now will have been served: their number
// (and one more) times the average analysis, spread over the recognizers, in whole seconds
// and at least one.
func (e *Engine) retryAfter() time.Duration {
	e.mu.Lock()
	queue, hold := e.waiting+1, e.hold
	e.mu.Unlock()
	wait := float64(queue) * hold.Seconds() / float64(e.opts.Workers)
	return time.Duration(max(1, math.Ceil(wait))) * time.Second
}

// recognize runs dlib with rec on f, decoding and converting it first if dlib cannot read it
// as it is. For a JPEG that goes through as it is, the pixels are decoded for the
// brightness check while dlib works. With halve, a frame that is not a padded crop and
// whose shorter side is at least HalveFrom is searched for faces at half size.
func (e *Engine) recognize(rec *goface.Recognizer, f *frame, halve bool) ([]goface.Face, error) {
	if rerr := f.load(); rerr != nil {
		return nil, rerr
	}
	halvings := 0
	if size := f.bounds.Size().Div(f.shrink); halve && f.offset == (image.Point{}) && min(size.X, size.Y) >= HalveFrom {
		halvings = 1
	}
	var pixels chan *Error
	if f.passthrough {
		pixels = make(chan *Error, 1)
		go func() { pixels <- f.decodePixels() }()
	}
	faces, err := e.detect(rec, f.jpeg, halvings)
	if pixels != nil {
		if rerr := <-pixels; rerr != nil {
			return nil, rerr
		}
	}
	if rerr := (*Error)(nil); errors.As(err, &rerr) && f.passthrough {
		// libjpeg is stricter than Go's decoder (it fails on warnings): try a clean copy.
		if rerr = f.convert(); rerr != nil {
			return nil, rerr
		}
		faces, err = e.detect(rec, f.jpeg, halvings)
	}
	return faces, err
}

// detect finds the faces in an RGB JPEG, on the image halved halvings times, and
// describes them on the full image.
func (e *Engine) detect(rec *goface.Recognizer, jpg []byte, halvings int) ([]goface.Face, error) {
	var faces []goface.Face
	var err error
	if e.opts.CNN {
		faces, err = rec.RecognizeHalvedCNN(jpg, halvings)
	} else {
		faces, err = rec.RecognizeHalved(jpg, halvings)
	}
	if err != nil {
		var le goface.ImageLoadError
		if errors.As(err, &le) {
			return nil, &Error{Reason: BadImage, Msg: "The image could not be read; send a JPEG or PNG photo.", err: err}
		}
		return nil, fmt.Errorf("recognize faces: %w", err)
	}
	return faces, nil
}

// scale returns r with every coordinate multiplied by k.
func scale(r image.Rectangle, k int) image.Rectangle {
	return image.Rect(r.Min.X*k, r.Min.Y*k, r.Max.X*k, r.Max.Y*k)
}
