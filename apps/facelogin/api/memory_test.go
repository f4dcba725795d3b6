package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/face"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// memoryChild is the environment variable that makes TestMemoryChild serve.
const memoryChild = "FACELOGIN_TEST_MEMORY_CHILD"

// Figures of TestHostileSocketsMemory: the child's recognizers, the sockets attacking it
// and for how long, and the bound its peak RSS must stay under — the api's memory limit
// in the chart (charts/facelogin/values.yaml), sized there for two workers.
const (
	hostileWorkers = 2
	hostileSockets = 64
	hostileFor     = 15 * time.Second
	rssBound       = 512 << 20
)

// TestMemoryChild is the api server TestHostileSocketsMemory starts in a process of its
// own, so that its memory is measured alone: it prints its URL and serves until its
// standard input closes.
func TestMemoryChild(t *testing.T) {
	if os.Getenv(memoryChild) == "" {
		t.Skip("runs only as the child process of TestHostileSocketsMemory")
	}
	eng, err := face.New(face.Options{ModelsDir: os.Getenv("EDGELINE_MODELS"), Workers: hostileWorkers})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	sec := newSecrets(t)
	st, err := store.Open(context.Background(), "sqlite:"+t.TempDir()+"/f.db", sec.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Every socket comes from 127.0.0.1: the cap per address is lifted to the attack's
	// size, so that the sockets meet the byte budget and the recognizers, not that cap.
	srv, err := api.New(api.Options{Store: st, Engine: eng, Pepper: sec.pepper, InsecureCookies: true,
		MaxClientSockets: hostileSockets, ClientFailures: 1 << 20, FaceTime: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	fmt.Println(ts.URL)
	bufio.NewReader(os.Stdin).ReadString('\n')
}

// TestHostileSocketsMemory attacks an api server in a child process with 64 login
// WebSockets, each with only an anonymous session, sending for 15 s the frames of issue 12
// and worse: the 99 KB 16-bit 4000×2990 PNG, frames just over 1920×1080, 1920×1080 PNGs and
// noise JPEGs that decode in full, 2 MB of junk, and frames sent slowly to hold their bytes.
// The child's peak resident memory (VmHWM) must stay under the chart's limit for the api.
func TestHostileSocketsMemory(t *testing.T) {
	if os.Getenv("EDGELINE_MODELS") == "" {
		t.Skip("set EDGELINE_MODELS to the dlib models folder (make test does)")
	}
	if testing.Short() {
		t.Skip("attacks a child server for 15 s; runs without -short")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryChild$")
	cmd.Env = append(os.Environ(), memoryChild+"=1", "OPENBLAS_NUM_THREADS=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child server: %v", err)
	}
	base := strings.TrimSpace(line)
	pid := cmd.Process.Pid

	frames := hostileFrames(t)
	// One honest login frame first, so the baseline includes a recognizer's working memory.
	c := &client{t: t, base: base, hc: newJarClient()}
	c.faceLogin(photo(t, "amy", 1))
	idle := procStatus(t, pid, "VmHWM")

	ctx, cancel := context.WithTimeout(context.Background(), hostileFor)
	defer cancel()
	var answers, busy, closes atomic.Int64
	var wg sync.WaitGroup
	names := make([]string, 0, len(frames))
	for name := range frames {
		names = append(names, name)
	}
	for i := range hostileSockets {
		wg.Go(func() {
			name := names[i%len(names)]
			for ctx.Err() == nil {
				n, b, err := attack(ctx, base, frames[name], name == slowName)
				answers.Add(int64(n))
				busy.Add(int64(b))
				if err == nil {
					closes.Add(1)
				}
			}
		})
	}
	var peakNow int64
	for ctx.Err() == nil {
		peakNow = max(peakNow, procStatus(t, pid, "VmRSS"))
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	peak := procStatus(t, pid, "VmHWM")
	t.Logf("%d sockets for %v against %d workers: %d answers, %d busy, %d closes; RSS idle %d MiB, peak %d MiB (sampled %d MiB), bound %d MiB",
		hostileSockets, hostileFor, hostileWorkers, answers.Load(), busy.Load(), closes.Load(), idle>>20, peak>>20, peakNow>>20, rssBound>>20)
	if answers.Load() == 0 {
		t.Fatal("no frame was answered: the attack did not reach the server")
	}
	if peak > rssBound {
		t.Errorf("peak RSS %d MiB over the bound of %d MiB", peak>>20, rssBound>>20)
	}
}

// slowName names the frame sent slowly.
const slowName = "slow 2 MB"

// hostileFrames returns the attack's frames by name.
func hostileFrames(t *testing.T) map[string][]byte {
	noise := image.NewRGBA(image.Rect(0, 0, 1920, 1080))
	rand.Read(noise.Pix)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, noise, &jpeg.Options{Quality: 60}); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, api.DefaultMaxFrameBytes)
	rand.Read(junk)
	copy(junk, "\xff\xd8\xff")
	return map[string][]byte{
		"16-bit 4000×2990 PNG":  flatPNG(t, 4000, 2990, 16, 6),
		"PNG over 1920×1080":    flatPNG(t, 1921, 1080, 8, 6),
		"RGBA PNG 1920×1080":    flatPNG(t, 1920, 1080, 8, 6),
		"noise 1920×1080 JPEG":  buf.Bytes(),
		"2 MB of junk":          junk,
		slowName:                junk,
		"group photo, 4 people": groupPhoto(t),
	}
}

// attack opens a login socket with a fresh anonymous session and sends frame until the
// server closes it or ctx ends, slowly (a tenth at a time, a second apart) if slow. It
// returns the answers and the busy answers it got; err is nil when the server closed.
func attack(ctx context.Context, base string, frame []byte, slow bool) (answers, busy int, err error) {
	hc := newJarClient()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/session", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	res.Body.Close()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/ws/login",
		&websocket.DialOptions{HTTPClient: hc, HTTPHeader: http.Header{"Origin": {base}}})
	if err != nil {
		return 0, 0, err
	}
	defer conn.CloseNow()
	for {
		if slow {
			w, err := conn.Writer(ctx, websocket.MessageBinary)
			if err != nil {
				return answers, busy, err
			}
			for part := range slices.Chunk(frame, len(frame)/10+1) {
				if _, err := w.Write(part); err != nil {
					return answers, busy, err
				}
				select {
				case <-ctx.Done():
					return answers, busy, ctx.Err()
				case <-time.After(time.Second):
				}
			}
			if err := w.Close(); err != nil {
				return answers, busy, err
			}
		} else if err := conn.Write(ctx, websocket.MessageBinary, frame); err != nil {
			return answers, busy, err
		}
		var m wsMsg
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return answers, busy, nil
			}
			return answers, busy, err
		}
		answers++
		if m.Code == "busy" {
			busy++
		}
		time.Sleep(150 * time.Millisecond) // under the frame rate
	}
}

func newJarClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

// procStatus returns a memory figure (VmRSS, VmHWM) of process pid in bytes.
func procStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the child's memory: %v", err)
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s in /proc/%d/status: %v", field, pid, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
