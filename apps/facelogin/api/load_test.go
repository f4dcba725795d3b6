package api_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/face"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

var loadDuration = flag.Duration("load.duration", 15*time.Second, "how long BenchmarkLoad drives each number of sockets on each detection path")

// frameGap is the pause between an answer and the next frame, as the login page makes it.
const frameGap = 300 * time.Millisecond

// loadPeople are enrolled on the load benchmark's replicas; client i shows loadPeople[i%8].
var loadPeople = []string{"amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart"}

// BenchmarkLoad drives N = 1, 4, 16 and 64 login WebSockets at once against a replica with
// the default limits, each a browser of its own address (X-Forwarded-For through a trusted
// proxy) that does what the login page does: a session, the socket, a 640×480 JPEG frame of
// an enrolled person (their photo of testdata/faces at twice its size on a wall), the
// answer, 300 ms, the next frame; a result starts a new attempt, and "busy" (or a refused
// session or socket) waits the seconds it names. Each N runs -load.duration on two
// replicas side by side, alternating: one whose engine detects faces on the full frame
// (face.Options.FullFrameDetect, the path before) and one on the frame halved (the
// default). It logs per path the answered frames per second and per CPU second of this
// process (server and clients), the p50/p95/p99 latency of answered frames, the busy
// answers, refused sessions or sockets, and the process's RSS at rest and at its peak, and
// reports the ratios half/full. Run it with OPENBLAS_NUM_THREADS=1 (as the api image
// does), -benchtime 1x and -run '^$'.
func BenchmarkLoad(b *testing.B) {
	models := os.Getenv("EDGELINE_MODELS")
	if models == "" {
		b.Skip("set EDGELINE_MODELS to the dlib models folder (make test does)")
	}
	paths := []struct {
		name string
		full bool
	}{{"full", true}, {"half", false}}
	replicas := make([]*replica, len(paths))
	sec := newSecrets(b)
	for i, p := range paths {
		eng, err := face.New(face.Options{ModelsDir: models, FullFrameDetect: p.full})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { eng.Close() })
		r := newReplica(b, "sqlite:"+b.TempDir()+"/f.db", sec, api.Options{Engine: eng, TrustProxy: true})
		for _, name := range loadPeople {
			enroll(b, r, person{name: name, email: name + "@example.com", pin: "471108", password: "correct horse battery staple", photos: name}, store.RoleUser)
		}
		replicas[i] = r
	}
	frames := make([][]byte, len(loadPeople))
	for i, name := range loadPeople {
		frames[i] = cameraFrame(b, name)
	}
	for _, n := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			stats := make([]loadStats, len(paths))
			for b.Loop() {
				for i := range paths {
					stats[i].add(runLoad(b, replicas[i], frames, n, *loadDuration))
				}
			}
			for i, p := range paths {
				b.Logf("| %d | %s | %s |", n, p.name, stats[i])
			}
			full, half := stats[0], stats[1]
			b.ReportMetric(half.fps(), "fps-half")
			b.ReportMetric(full.fps(), "fps-full")
			b.ReportMetric(half.fps()/full.fps(), "fps-half/full")
			b.ReportMetric(half.perCPU()/full.perCPU(), "per-cpu-half/full")
			b.ReportMetric(half.percentile(0.99).Seconds()*1000, "p99-ms-half")
			b.ReportMetric(float64(half.busy), "busy-half")
		})
	}
}

// loadStats are the figures of one or more load runs on one path.
type loadStats struct {
	took      time.Duration // wall-clock time
	cpu       time.Duration // CPU time of the process
	latencies []time.Duration
	busy      int // frames answered "busy"
	refused   int // sessions or sockets refused (429, 503)
	restKB    int // RSS before the run
	peakKB    int // highest RSS seen during the run
}

func (s *loadStats) add(o loadStats) {
	s.took += o.took
	s.cpu += o.cpu
	s.latencies = append(s.latencies, o.latencies...)
	s.busy += o.busy
	s.refused += o.refused
	s.restKB = max(s.restKB, o.restKB)
	s.peakKB = max(s.peakKB, o.peakKB)
}

func (s loadStats) fps() float64    { return float64(len(s.latencies)) / s.took.Seconds() }
func (s loadStats) perCPU() float64 { return float64(len(s.latencies)) / s.cpu.Seconds() }

func (s loadStats) percentile(q float64) time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	l := slices.Clone(s.latencies)
	slices.Sort(l)
	return l[min(len(l)-1, int(q*float64(len(l))))]
}

// String is a row of the table in docs/benchmarks.md, after N and the path.
func (s loadStats) String() string {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	return fmt.Sprintf("%.1f | %.1f | %s | %s | %s | %d | %d | %d | %d",
		s.fps(), s.perCPU(), ms(s.percentile(0.50)), ms(s.percentile(0.95)), ms(s.percentile(0.99)),
		s.busy, s.refused, s.restKB/1024, s.peakKB/1024)
}

// runLoad drives n login clients against r for d and returns what they saw.
func runLoad(b *testing.B, r *replica, frames [][]byte, n int, d time.Duration) loadStats {
	b.Helper()
	var st loadStats
	st.restKB = rssKB(b)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var peak sync.WaitGroup
	peakKB := st.restKB
	peak.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				peakKB = max(peakKB, rssKB(b))
			}
		}
	})
	var mu sync.Mutex
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), cpuTime(b)
	for i := range n {
		wg.Go(func() {
			lc := &loadClient{base: r.ts.URL, xff: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), frame: frames[i%len(frames)]}
			lc.hc = newJarClient()
			got, err := lc.run(ctx)
			if err != nil {
				b.Errorf("login client %s: %v", lc.xff, err)
			}
			mu.Lock()
			st.add(got)
			mu.Unlock()
		})
	}
	wg.Wait()
	st.took, st.cpu = time.Since(start), cpuTime(b)-cpu0
	peak.Wait()
	st.peakKB = peakKB
	return st
}

// loadClient is one browser on the login page.
type loadClient struct {
	base, xff string
	hc        *http.Client
	frame     []byte
}

// run signs in again and again until ctx ends. Anything else than a sign-in, busy or a
// refusal is an error.
func (c *loadClient) run(ctx context.Context) (loadStats, error) {
	var st loadStats
	for ctx.Err() == nil {
		wait, err := c.attempt(ctx, &st)
		if err != nil && ctx.Err() == nil {
			return st, err
		}
		if wait > 0 {
			// As the page does: the seconds named, spread by up to half a second.
			sleep(ctx, wait+time.Duration(rand.IntN(500))*time.Millisecond)
		}
	}
	return st, nil
}

// attempt opens a session and a login socket and sends frames until a result, busy or
// the end of ctx; it returns how long to wait before the next attempt.
func (c *loadClient) attempt(ctx context.Context, st *loadStats) (time.Duration, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", c.base+"/api/session", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", c.xff)
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("start session: %w", err)
	}
	res.Body.Close()
	if wait, refused := refusal(res); refused {
		st.refused++
		return wait, nil
	}
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("start session: %s", res.Status)
	}
	conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.base, "http")+"/api/ws/login",
		&websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: http.Header{"Origin": {c.base}, "X-Forwarded-For": {c.xff}}})
	if res != nil {
		if wait, refused := refusal(res); refused {
			st.refused++
			return wait, nil
		}
	}
	if err != nil {
		return 0, fmt.Errorf("open login socket: %w", err)
	}
	defer conn.CloseNow()
	for {
		t0 := time.Now()
		if err := conn.Write(ctx, websocket.MessageBinary, c.frame); err != nil {
			return 0, fmt.Errorf("send frame: %w", err)
		}
		var m wsMsg
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			return 0, fmt.Errorf("read answer: %w", err)
		}
		took := time.Since(t0)
		switch {
		case m.Type == "guidance" && m.Code == "busy":
			st.busy++
			_, _, err := conn.Read(ctx)
			if websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
				return 0, fmt.Errorf("after busy the socket ended with %v, want 1013", err)
			}
			return time.Duration(max(1, m.RetryAfter)) * time.Second, nil
		case m.Type == "guidance":
			st.latencies = append(st.latencies, took)
			if !sleep(ctx, frameGap) {
				return 0, nil
			}
		case m.Type == "result":
			st.latencies = append(st.latencies, took)
			if m.Status != "recognized" {
				return 0, fmt.Errorf("login ended %q, want recognized", m.Status)
			}
			conn.Close(websocket.StatusNormalClosure, "")
			return 0, nil
		default:
			return 0, fmt.Errorf("unexpected answer %+v", m)
		}
	}
}

// refusal reports whether res refused the client for load or its rate (429, 503), and the
// wait its Retry-After names (1 s if none).
func refusal(res *http.Response) (time.Duration, bool) {
	if res.StatusCode != http.StatusTooManyRequests && res.StatusCode != http.StatusServiceUnavailable {
		return 0, false
	}
	secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || secs < 1 {
		secs = 1
	}
	return time.Duration(secs) * time.Second, true
}

// sleep waits d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// cpuTime returns the CPU time (user + system) this process has used.
func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssKB returns this process's resident set size in kB.
func rssKB(t testing.TB) int { return int(procStatus(t, os.Getpid(), "VmRSS") >> 10) }
