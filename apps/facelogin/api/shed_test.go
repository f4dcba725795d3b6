package api_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
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
		wantRetryAfter(t, "busy check", res, time.Minute)
	}
	if !busy {
		t.Fatal("no enrollment check was told busy while the only recognizer was kept busy")
	}
}

// wantRetryAfter checks that res tells the client to come back after whole seconds, at
// least one and at most most.
func wantRetryAfter(t *testing.T, what string, res response, most time.Duration) {
	t.Helper()
	if secs, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || secs < 1 || secs > int(most.Seconds()) {
		t.Errorf("%s: Retry-After %q, want 1 to %v seconds", what, res.header.Get("Retry-After"), most.Seconds())
	}
}

// busyClose reads from conn until the server closes it and checks it was told busy with a
// retry time, then closed with 1013 (try again later), as the login page expects.
func busyClose(t *testing.T, ctx context.Context, what string, conn *websocket.Conn) {
	t.Helper()
	var m wsMsg
	if err := wsjson.Read(ctx, conn, &m); err != nil {
		t.Fatalf("%s: no busy answer: %v", what, err)
	}
	if m.Type != "guidance" || m.Code != "busy" || m.RetryAfter < 1 || m.Message == "" {
		t.Fatalf("%s: answered %+v, want guidance busy with a message and retry_after ≥ 1", what, m)
	}
	_, _, err := conn.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusTryAgainLater {
		t.Fatalf("%s: after busy the socket ended with %v, want close 1013 (try again later)", what, err)
	}
}

// TestSocketCaps checks the caps on open login WebSockets: past the cap of its address,
// or past the replica's total, a socket is told busy and closed with 1013; one closing
// makes room again. Addresses come from X-Forwarded-For (TrustProxy), as behind web.
func TestSocketCaps(t *testing.T) {
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{
		TrustProxy: true, MaxSockets: 3, MaxClientSockets: 2,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func(ip string) *websocket.Conn {
		t.Helper()
		c := r.client()
		c.xff = ip
		want(t, "session", c.json("POST", "/api/session", struct{}{}), http.StatusOK, "")
		conn, _, err := c.dialLogin(ctx, "")
		if err != nil {
			t.Fatalf("dial from %s: %v", ip, err)
		}
		t.Cleanup(func() { conn.CloseNow() })
		return conn
	}
	// answered sends a frame and expects a guidance that is not busy: the socket is served.
	answered := func(conn *websocket.Conn, what string) {
		t.Helper()
		if err := conn.Write(ctx, websocket.MessageBinary, []byte("not an image")); err != nil {
			t.Fatal(err)
		}
		var m wsMsg
		if err := wsjson.Read(ctx, conn, &m); err != nil || m.Code != "unsupported_format" {
			t.Fatalf("%s: answered %+v, %v; want guidance unsupported_format", what, m, err)
		}
	}
	a1, a2 := open("192.0.2.1"), open("192.0.2.1")
	answered(a1, "first socket of an address")
	answered(a2, "second socket of an address")
	busyClose(t, ctx, "third socket of an address", open("192.0.2.1"))
	b1 := open("192.0.2.2")
	answered(b1, "socket of another address")
	busyClose(t, ctx, "socket over the replica's total", open("192.0.2.3"))

	a1.Close(websocket.StatusNormalClosure, "")
	eventually(t, "a socket is served again after one closed", func() bool {
		conn := open("192.0.2.3")
		conn.Write(ctx, websocket.MessageBinary, []byte("not an image"))
		var m wsMsg
		err := wsjson.Read(ctx, conn, &m)
		conn.CloseNow()
		return err == nil && m.Code == "unsupported_format"
	})
}

// metric returns the value of an unlabelled metric of the replica's /metrics.
func (r *replica) metric(name string) float64 {
	r.t.Helper()
	res, err := http.Get(r.ts.URL + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				r.t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	r.t.Fatalf("no metric %s", name)
	return 0
}

// TestBytesInFlight checks the budget of bytes held at once: while one socket is in the
// middle of sending a large frame, another's frame and an uploaded image find no room and
// are answered busy (1013 on the socket, 503 with Retry-After over HTTP); once the large
// frame has been answered, both are served.
func TestBytesInFlight(t *testing.T) {
	const frameCap = 256 << 10
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{
		MaxFrameBytes: frameCap, MaxBytesInFlight: frameCap + 16<<10,
	})
	amyc, _ := enroll(t, r, amy, store.RoleUser)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dial := func() *websocket.Conn {
		t.Helper()
		c := r.client()
		want(t, "session", c.json("POST", "/api/session", struct{}{}), http.StatusOK, "")
		conn, _, err := c.dialLogin(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.CloseNow() })
		return conn
	}

	// The first socket sends 200 KB of a frame and holds the rest back.
	big := dial()
	w, err := big.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 200<<10)); err != nil {
		t.Fatal(err)
	}
	// The server holds those bytes once it has read them.
	frame := photo(t, "amy", 1)
	var held float64
	eventually(t, "the server holds the large frame's bytes", func() bool {
		held = r.metric("facelogin_bytes_in_flight")
		return held >= 200<<10
	})
	res := amyc.do("POST", "/api/face/check", "image/jpeg", frame)
	want(t, "upload while the budget is held", res, http.StatusServiceUnavailable, "busy")
	wantRetryAfter(t, "busy upload", res, time.Minute)
	small := dial()
	if err := small.Write(ctx, websocket.MessageBinary, frame); err != nil {
		t.Fatal(err)
	}
	busyClose(t, ctx, "frame while the budget is held", small)

	// The large frame ends (zeros: not an image) and is answered; its bytes are free again.
	if _, err := w.Write(make([]byte, 10<<10)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var m wsMsg
	if err := wsjson.Read(ctx, big, &m); err != nil || m.Code != "unsupported_format" {
		t.Fatalf("large frame answered %+v, %v; want guidance unsupported_format", m, err)
	}
	want(t, "upload after the large frame", amyc.do("POST", "/api/face/check", "image/jpeg", frame), http.StatusOK, "")
	if msgs := r.client().faceLogin(frame); last(msgs).Type != "result" {
		t.Fatalf("login after the large frame: %v", msgs)
	}
}

// TestAnonymousSessions checks that sessions cannot be piled up: POST /api/session creates
// at most SessionRate new sessions per address and minute (then 429 with Retry-After; a
// browser that holds a session is not counted), and a session that never signs in expires
// after SignInTimeout and its row is deleted, on SQLite and PostgreSQL.
func TestAnonymousSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		const rate, life = 5, 2 * time.Second
		r := newReplica(t, dsn, newSecrets(t), api.Options{TrustProxy: true, SessionRate: rate, SignInTimeout: life})
		from := func(ip string) *client {
			c := r.client()
			c.xff = ip
			return c
		}
		for i := range rate {
			want(t, "new session "+strconv.Itoa(i+1), from("192.0.2.1").json("POST", "/api/session", struct{}{}), http.StatusOK, "")
		}
		res := from("192.0.2.1").json("POST", "/api/session", struct{}{})
		want(t, "one new session too many", res, http.StatusTooManyRequests, "rate_limited")
		wantRetryAfter(t, "session rate", res, time.Minute)
		other := from("192.0.2.2")
		for range 2 * rate {
			want(t, "a browser holding its session", other.json("POST", "/api/session", struct{}{}), http.StatusOK, "")
		}
		const count = "select count(*) from sessions"
		if n := rawCount(t, dsn, count); n != rate+1 {
			t.Fatalf("%d session rows, want %d", n, rate+1)
		}
		before := sessionCookie(t, other)
		eventually(t, "the sessions that never signed in are deleted", func() bool {
			return rawCount(t, dsn, count) == 0
		})
		// A browser that kept the old cookie gets a new session.
		late := from("192.0.2.2")
		u, _ := url.Parse(late.base)
		late.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "facelogin", Value: before, Path: "/"}})
		want(t, "session after the old one expired", late.json("POST", "/api/session", struct{}{}), http.StatusOK, "")
		if sessionCookie(t, late) == before {
			t.Error("an expired session was still accepted")
		}
		// A signed-in session is not cut short.
		signUp(t, r, amy)
		amyc := signedIn(t, r, amy)
		time.Sleep(life + time.Second)
		want(t, "signed in past the sign-in timeout", amyc.do("GET", "/api/me", "", nil), http.StatusOK, "")
	})
}
