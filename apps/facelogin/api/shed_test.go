package api_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/face"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// hammer keeps e's recognizers busy until the test ends, analysing a group photo scaled
// up to 12 MP (hundreds of milliseconds a time) from as many goroutines as e has workers.
func hammer(t *testing.T, e *face.Engine) {
	t.Helper()
	big := scaleJPEG(t, groupPhoto(t), 4000, 3000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	for range e.Workers() {
		go func() {
			defer func() { done <- struct{}{} }()
			for ctx.Err() == nil {
				e.Analyze(ctx, big)
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		for range e.Workers() {
			<-done
		}
	})
}

// scaleJPEG returns jpg scaled to w×h (nearest neighbour).
func scaleJPEG(t *testing.T, jpg []byte, w, h int) []byte {
	t.Helper()
	src, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		t.Fatal(err)
	}
	sb := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			dst.Set(x, y, src.At(sb.Min.X+x*sb.Dx()/w, sb.Min.Y+y*sb.Dy()/h))
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBusy checks that an overloaded replica sheds load instead of queueing it: with its
// only recognizer kept busy and a wait of 1 ms allowed, a login frame is answered with
// the guidance "busy" and a retry time, then the WebSocket closes with 1013 (try again
// later); an enrollment check is answered 503 busy with Retry-After.
func TestBusy(t *testing.T) {
	models := os.Getenv("EDGELINE_MODELS")
	if models == "" {
		t.Skip("set EDGELINE_MODELS to the dlib models folder (make test does)")
	}
	eng, err := face.New(face.Options{ModelsDir: models, Workers: 1, MaxWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{Engine: eng})
	amyc, _ := enroll(t, r, amy, store.RoleUser)
	hammer(t, eng)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	frame := photo(t, "amy", 1)
	// The hammer leaves its recognizer free for moments between two photos: a frame that
	// arrives in such a moment is analysed. A few attempts make sure one meets it busy.
	busy := false
	for i := 0; i < 5 && !busy; i++ {
		c := r.client()
		want(t, "session", c.json("POST", "/api/session", struct{}{}), http.StatusOK, "")
		conn, _, err := c.dialLogin(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Write(ctx, websocket.MessageBinary, frame); err != nil {
			t.Fatal(err)
		}
		var m wsMsg
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			t.Fatal(err)
		}
		if m.Code != "busy" {
			t.Logf("attempt %d answered %+v", i+1, m)
			conn.CloseNow()
			continue
		}
		busy = true
		if m.Type != "guidance" || m.RetryAfter < 1 || m.Message == "" {
			t.Errorf("busy answer %+v: want guidance with a message and retry_after ≥ 1", m)
		}
		_, _, err = conn.Read(ctx)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusTryAgainLater {
			t.Errorf("after busy the socket ended with %v, want close 1013 (try again later)", err)
		}
	}
	if !busy {
		t.Fatal("no login frame was told busy while the only recognizer was kept busy")
	}

	busy = false
	for i := 0; i < 5 && !busy; i++ {
		res := amyc.do("POST", "/api/face/check", "image/jpeg", frame)
		if res.errorCode() != "busy" {
			t.Logf("check %d answered %d %s", i+1, res.status, res.body)
			continue
		}
		busy = true
		want(t, "busy check", res, http.StatusServiceUnavailable, "busy")
		if secs, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || secs < 1 {
			t.Errorf("busy check: Retry-After %q, want whole seconds ≥ 1", res.header.Get("Retry-After"))
		}
	}
	if !busy {
		t.Fatal("no enrollment check was told busy while the only recognizer was kept busy")
	}
}
