package face

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goface "github.com/Kagami/go-face"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// benchFrame is a 640×480 colour JPEG with one face: a photo of testdata/faces at twice
// its size on a plain wall, made in memory.
func benchFrame(b *testing.B) []byte {
	return inFrame(decodeImage(b, personPhoto(b, "amy", 1)), 640, 480, 2, warm)
}

// cpuTime returns the CPU time (user + system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFrame compares, frame by frame, the service path (Analyze: check, decode,
// convert, detect, describe, measure brightness; then a 1:N search over 1 000 people) with
// a bare go-face Recognize of the same JPEG on a recognizer of its own, and reports the
// ratio of their wall-clock times ("service/bare") and of the CPU time the process spent on
// each ("service/bare-cpu", which other processes on a loaded machine do not distort: the
// two paths run one after the other). The "png" case sends the same frame as PNG, which Analyze must
// convert to JPEG for dlib, against the bare Recognize of the JPEG.
func BenchmarkFrame(b *testing.B) {
	dir := modelsDir(b)
	jpg := benchFrame(b)
	frames := map[string][]byte{"jpeg": jpg, "png": encodePNG(b, toRGBA(decodeImage(b, jpg)))}
	e, err := New(Options{ModelsDir: dir, Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	bare, err := goface.NewRecognizer(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer bare.Close()
	ix := match.NewIndex(match.DefaultThreshold, match.DefaultMargin)
	for id := range match.UserID(1000) {
		var d match.Descriptor
		for i := range d {
			d[i] = float32(int(id)*(i+1)%97) / 400
		}
		ix.Set(id, []match.Descriptor{d})
	}
	ctx := context.Background()
	for _, format := range []string{"jpeg", "png"} {
		b.Run(format, func(b *testing.B) {
			frame := frames[format]
			var service, plain, serviceCPU, plainCPU time.Duration
			for b.Loop() {
				t0, c0 := time.Now(), cpuTime(b)
				f, err := e.Analyze(ctx, frame)
				if err != nil {
					b.Fatal(err)
				}
				ix.Search(f.Descriptor)
				t1, c1 := time.Now(), cpuTime(b)
				faces, err := bare.Recognize(jpg)
				if err != nil || len(faces) != 1 {
					b.Fatalf("bare Recognize: %d faces, %v", len(faces), err)
				}
				c2 := cpuTime(b)
				service, plain = service+t1.Sub(t0), plain+time.Since(t1)
				serviceCPU, plainCPU = serviceCPU+c1-c0, plainCPU+c2-c1
			}
			b.ReportMetric(float64(serviceCPU)/float64(plainCPU), "service/bare-cpu")
			b.ReportMetric(float64(service.Milliseconds())/float64(b.N), "service-ms")
			b.ReportMetric(float64(plain.Milliseconds())/float64(b.N), "bare-ms")
			b.ReportMetric(float64(service)/float64(plain), "service/bare")
		})
	}
}

// BenchmarkWorkers measures throughput with one and with two recognizers, four goroutines
// feeding 640×480 frames, alternating between the two engines on every iteration so both
// see the same machine load, and reports frames per second and the ratio.
func BenchmarkWorkers(b *testing.B) {
	dir := modelsDir(b)
	frame := benchFrame(b)
	var engines [2]*Engine
	for i := range engines {
		e, err := New(Options{ModelsDir: dir, Workers: i + 1, MaxWait: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		engines[i] = e
	}
	const frames = 8
	var took [2]time.Duration
	for b.Loop() {
		for i, e := range engines {
			start := time.Now()
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for range frames / 4 {
						if _, err := e.Analyze(context.Background(), frame); err != nil {
							b.Errorf("goroutine %d: %v", g, err)
						}
					}
				})
			}
			wg.Wait()
			took[i] += time.Since(start)
		}
	}
	fps := func(d time.Duration) float64 { return float64(frames*b.N) / d.Seconds() }
	b.ReportMetric(fps(took[0]), "fps-1worker")
	b.ReportMetric(fps(took[1]), "fps-2workers")
	b.ReportMetric(fps(took[1])/fps(took[0]), "speedup")
}

// BenchmarkRSS starts this test binary again as a process that loads the models (with one
// and with two workers, and one worker detecting with the CNN) and reports its resident memory right after New ("RSS-MB") and
// after every worker has analysed a 640×480 frame ("warm-RSS-MB": dlib allocates its
// network's buffers on first use).
func BenchmarkRSS(b *testing.B) {
	dir := modelsDir(b)
	facesDir(b) // the child analyses a photo
	for _, c := range []struct {
		workers int
		cnn     bool
	}{{1, false}, {2, false}, {1, true}} {
		workers := c.workers
		name := fmt.Sprintf("workers=%d", workers)
		if c.cnn {
			name += "/cnn"
		}
		b.Run(name, func(b *testing.B) {
			var kb, warm int
			for b.Loop() {
				cmd := exec.Command(os.Args[0], "-test.run=^TestRSSChild$")
				cmd.Env = append(os.Environ(), "EDGELINE_MODELS="+dir, "FACE_RSS_CHILD="+strconv.Itoa(workers), fmt.Sprintf("FACE_RSS_CNN=%v", c.cnn))
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("%v: %s", err, out)
				}
				for line := range strings.Lines(string(out)) {
					if v, ok := strings.CutPrefix(line, "VmRSS-kB "); ok {
						kb, _ = strconv.Atoi(strings.TrimSpace(v))
					}
					if v, ok := strings.CutPrefix(line, "warm-VmRSS-kB "); ok {
						warm, _ = strconv.Atoi(strings.TrimSpace(v))
					}
				}
			}
			if kb == 0 || warm == 0 {
				b.Fatal("the child reported no VmRSS")
			}
			b.ReportMetric(float64(kb)/1024, "RSS-MB")
			b.ReportMetric(float64(warm)/1024, "warm-RSS-MB")
		})
	}
}

// TestRSSChild is BenchmarkRSS's child process; it is skipped unless FACE_RSS_CHILD is set.
func TestRSSChild(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FACE_RSS_CHILD"))
	if n == 0 {
		t.Skip("the child process of BenchmarkRSS (run go test -bench RSS)")
	}
	cnn := os.Getenv("FACE_RSS_CNN") == "true"
	e, err := New(Options{ModelsDir: modelsDir(t), Workers: n, CNN: cnn})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fmt.Printf("VmRSS-kB %d\n", vmRSS(t))
	frame := inFrame(decodeImage(t, personPhoto(t, "amy", 1)), 640, 480, 2, warm)
	// Take every recognizer out of the pool so that each one analyses a frame.
	recs := make([]*goface.Recognizer, n)
	for i := range recs {
		recs[i] = <-e.pool
		recognize := recs[i].Recognize
		if cnn {
			recognize = recs[i].RecognizeCNN
		}
		if faces, err := recognize(frame); err != nil || len(faces) != 1 {
			t.Fatalf("recognizer %d: %d faces, %v", i, len(faces), err)
		}
	}
	for _, rec := range recs {
		e.pool <- rec
	}
	fmt.Printf("warm-VmRSS-kB %d\n", vmRSS(t))
}

// vmRSS reads this process's resident set size in kB from /proc/self/status.
func vmRSS(t testing.TB) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// BenchmarkOneRecognizer calls a single go-face recognizer from one goroutine and from two at
// once, alternating, and reports the speedup: go-face holds one mutex around detection and
// another around the descriptor network, so a single recognizer cannot use two cores, and
// the Engine keeps a pool of them instead.
func BenchmarkOneRecognizer(b *testing.B) {
	rec, err := goface.NewRecognizer(modelsDir(b))
	if err != nil {
		b.Fatal(err)
	}
	defer rec.Close()
	frame := benchFrame(b)
	const frames = 8
	var took [2]time.Duration
	for b.Loop() {
		for i, goroutines := range []int{1, 2} {
			start := time.Now()
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					for range frames / goroutines {
						if _, err := rec.Recognize(frame); err != nil {
							b.Error(err)
						}
					}
				})
			}
			wg.Wait()
			took[i] += time.Since(start)
		}
	}
	b.ReportMetric(float64(took[0])/float64(took[1]), "speedup-2goroutines")
}

// BenchmarkPatch measures what the grey face patch for the liveness check adds to a frame:
// each iteration analyses the 640×480 frame, then cuts the patch from its decoded pixels
// again, and reports both times and their ratio ("patch/analyze").
func BenchmarkPatch(b *testing.B) {
	e, err := New(Options{ModelsDir: modelsDir(b), Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	frame := benchFrame(b)
	src := decodeImage(b, frame)
	var analyze, cut time.Duration
	for b.Loop() {
		t0 := time.Now()
		f, err := e.Analyze(context.Background(), frame)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if p, _ := patch(src, f.PatchRect, PatchSide); p.Rect.Dx() != f.Patch.Rect.Dx() {
			b.Fatalf("patch %v, Analyze's %v", p.Rect, f.Patch.Rect)
		}
		analyze, cut = analyze+t1.Sub(t0), cut+time.Since(t1)
	}
	b.ReportMetric(float64(analyze.Microseconds())/float64(b.N)/1000, "analyze-ms")
	b.ReportMetric(float64(cut.Microseconds())/float64(b.N), "patch-us")
	b.ReportMetric(float64(cut)/float64(analyze), "patch/analyze")
}

// BenchmarkFrameDetect compares the cost of one 640×480 camera frame through AnalyzeFrame
// on the full-size detection path (Options.FullFrameDetect, the path before) and on the
// default path, which detects on the frame halved in size: frame by frame, alternating
// the two engines (one recognizer each), so machine load hits both alike. It reports the
// CPU time of the process per frame on each path ("full-cpu-ms", "half-cpu-ms"; other
// processes on a loaded machine do not count in it) and the ratio full/half of CPU time and
// of wall-clock time: the frames per second one core gains. "amy" is the benchmark frame of
// BenchmarkFrame, "wild" a real photo of testdata/faces/wild cut to 640×480.
func BenchmarkFrameDetect(b *testing.B) {
	dir := modelsDir(b)
	var engines [2]*Engine
	for i := range engines {
		e, err := New(Options{ModelsDir: dir, Workers: 1, FullFrameDetect: i == 0})
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		engines[i] = e
	}
	frames := map[string][]byte{"amy": benchFrame(b), "wild": wildFrame(b, "wild/jolie/jolie2.jpg", 640, 480)}
	ctx := context.Background()
	for _, name := range []string{"amy", "wild"} {
		b.Run(name, func(b *testing.B) {
			frame := frames[name]
			var wall, cpu [2]time.Duration
			for b.Loop() {
				for i, e := range engines {
					t0, c0 := time.Now(), cpuTime(b)
					if _, err := e.AnalyzeFrame(ctx, frame); err != nil {
						b.Fatal(err)
					}
					wall[i] += time.Since(t0)
					cpu[i] += cpuTime(b) - c0
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(cpu[0].Microseconds())/n/1000, "full-cpu-ms")
			b.ReportMetric(float64(cpu[1].Microseconds())/n/1000, "half-cpu-ms")
			b.ReportMetric(float64(cpu[0])/float64(cpu[1]), "full/half-cpu")
			b.ReportMetric(float64(wall[0])/float64(wall[1]), "full/half-wall")
		})
	}
}
