package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/face"
	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/seal"
	"github.com/edgeline/edgeline/apps/facelogin/store"
	"github.com/edgeline/edgeline/apps/facelogin/store/storetest"
)

var (
	engineOnce sync.Once
	engine     *face.Engine
	engineErr  error
)

// realEngine returns the face engine on the real dlib models, loaded once per test binary,
// waiting as long as it takes for a recognizer (the tests of load shedding make their own).
func realEngine(t testing.TB) *face.Engine {
	t.Helper()
	dir := os.Getenv("EDGELINE_MODELS")
	if dir == "" {
		t.Skip("set EDGELINE_MODELS to the dlib models folder (make test does)")
	}
	engineOnce.Do(func() { engine, engineErr = face.New(face.Options{ModelsDir: dir, Workers: 2, MaxWait: time.Hour}) })
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engine
}

// photo returns person's n-th photo from EDGELINE_FACES as an RGB JPEG, the tight 150×150
// crop padded with a 75 px grey border as a camera would show a face.
func photo(t testing.TB, person string, n int) []byte {
	t.Helper()
	src := peoplePhoto(t, person, n)
	const pad = 75
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx()+2*pad, b.Dy()+2*pad))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.Gray{Y: 128}), image.Point{}, draw.Src)
	draw.Draw(dst, b.Sub(b.Min).Add(image.Pt(pad, pad)), src, b.Min, draw.Src)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 92}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// cameraFrame returns the first photos of people at twice their size, side by side and
// tinted to a skin colour, in the middle of a 640×480 colour JPEG of a plain wall: what a
// webcam sends of someone (or, with two, of two people) in front of it.
func cameraFrame(t testing.TB, people ...string) []byte {
	t.Helper()
	const w, h, scale = 640, 480, 2
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(dst, dst.Rect, image.NewUniform(color.RGBA{170, 160, 140, 255}), image.Point{}, draw.Src)
	const side = 150 * scale // the photos are 150×150
	at := image.Pt((w-len(people)*side)/2, (h-side)/2)
	for _, person := range people {
		src := peoplePhoto(t, person, 1)
		sb := src.Bounds()
		for y := range sb.Dy() * scale {
			for x := range sb.Dx() * scale {
				g := color.GrayModel.Convert(src.At(sb.Min.X+x/scale, sb.Min.Y+y/scale)).(color.Gray).Y
				dst.SetRGBA(at.X+x, at.Y+y, color.RGBA{uint8(min(255, int(g)*11/10)), g, uint8(int(g) * 85 / 100), 255})
			}
		}
		at.X += sb.Dx() * scale
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// peoplePhoto decodes person's n-th photo of EDGELINE_FACES/people, a 150×150 grey crop.
func peoplePhoto(t testing.TB, person string, n int) image.Image {
	t.Helper()
	dir := os.Getenv("EDGELINE_FACES")
	if dir == "" {
		t.Skip("set EDGELINE_FACES to testdata/faces (make test does)")
	}
	f, err := os.Open(filepath.Join(dir, "people", person, fmt.Sprintf("%s%d.png", person, n)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s%d.png: %v", person, n, err)
	}
	return src
}

// forEachStore runs fn against a fresh SQLite file and a fresh PostgreSQL schema.
func forEachStore(t *testing.T, fn func(t *testing.T, dsn string)) {
	storetest.ForEachStore(t, "facelogin_api_test_", fn)
}

// rawSamples counts the rows of face_samples of a user straight from the database,
// bypassing the store.
func rawSamples(t *testing.T, dsn string, id match.UserID) int {
	t.Helper()
	return rawCount(t, dsn, "select count(*) from face_samples where user_id = $1", int64(id))
}

// rawCount runs q, a count with at most one parameter, straight on the database.
func rawCount(t *testing.T, dsn string, q string, args ...any) int {
	t.Helper()
	ctx := context.Background()
	var n int
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRowContext(ctx, strings.Replace(q, "$1", "?", 1), args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// secrets shared by the replicas of one test, as a cluster Secret would hold them.
type secrets struct {
	keys   *seal.Keyring
	pepper []byte
}

func newSecrets(t testing.TB) secrets {
	t.Helper()
	k, err := seal.Generate()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.New(k)
	if err != nil {
		t.Fatal(err)
	}
	pepper := make([]byte, 32)
	rand.Read(pepper)
	return secrets{keys: keys, pepper: pepper}
}

// replica is one api.Server on its own store connection, served over real HTTP.
type replica struct {
	t       testing.TB
	st      *store.Store
	srv     *api.Server
	ts      *httptest.Server
	cookies *cookieLog
}

// newReplica starts an api.Server on dsn. opts.Store and Pepper are filled in, and Engine
// unless given.
func newReplica(t testing.TB, dsn string, sec secrets, opts api.Options) *replica {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, sec.keys)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return newReplicaOn(t, st, sec, opts)
}

// newReplicaOn starts an api.Server on an open store, as newReplica does.
func newReplicaOn(t testing.TB, st *store.Store, sec secrets, opts api.Options) *replica {
	t.Helper()
	opts.Store, opts.Pepper = st, sec.pepper
	if opts.Engine == nil {
		opts.Engine = realEngine(t)
	}
	opts.InsecureCookies = true
	if opts.FaceTime == 0 {
		// Decide on UnknownFrames alone, as fast as the frames come; TestFaceTime sets it.
		opts.FaceTime = -1
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	srv, err := api.New(opts)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return &replica{t: t, st: st, srv: srv, ts: ts, cookies: &cookieLog{}}
}

// descriptors returns how many descriptors the replica's index holds, as its /readyz says.
func (r *replica) descriptors() int {
	r.t.Helper()
	res, err := http.Get(r.ts.URL + "/readyz")
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	var ready struct{ Descriptors int }
	if err := json.NewDecoder(res.Body).Decode(&ready); err != nil || res.StatusCode != http.StatusOK {
		r.t.Fatalf("readyz: %d, %v", res.StatusCode, err)
	}
	return ready.Descriptors
}

// cookieLog records every cookie value a replica's clients were given.
type cookieLog struct {
	mu     sync.Mutex
	values []string
}

func (l *cookieLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.values...)
}

// RoundTrip records the Set-Cookie values of the answer.
func (l *cookieLog) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		l.mu.Lock()
		for _, c := range res.Cookies() {
			if c.Value != "" {
				l.values = append(l.values, c.Value)
			}
		}
		l.mu.Unlock()
	}
	return res, err
}

// client is a browser: a cookie jar and the replica it talks to.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
	xff  string // X-Forwarded-For, for replicas that trust a proxy
}

func (r *replica) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: r.t, base: r.ts.URL, hc: &http.Client{Jar: jar, Transport: r.cookies}}
}

// on returns a client for another replica sharing this client's cookies (a load balancer).
func (c *client) on(r *replica) *client {
	return &client{t: c.t, base: r.ts.URL, hc: c.hc, xff: c.xff}
}

// response is a buffered answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorCode returns the "error.code" of a JSON error answer.
func (r response) errorCode() string {
	var e struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request with a body of the given content type ("" for none).
func (c *client) do(method, path, contentType string, body []byte) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.xff != "" {
		req.Header.Set("X-Forwarded-For", c.xff)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// json sends v as a JSON body.
func (c *client) json(method, path string, v any) response {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(method, path, "application/json", b)
}

// want fails the test unless res has the status (and, if code is given, the error code).
func want(t testing.TB, what string, res response, status int, code string) {
	t.Helper()
	if res.status != status || (code != "" && res.errorCode() != code) {
		t.Fatalf("%s: got %d %s, want %d %s", what, res.status, res.body, status, code)
	}
}

// samples builds a multipart body with one "sample" part per image.
func samples(t testing.TB, images ...[]byte) (contentType string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i, img := range images {
		w, err := mw.CreateFormFile("sample", fmt.Sprintf("sample%d.jpg", i+1))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(img)
	}
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

// person is someone the tests enroll.
type person struct {
	name, email, pin, password string
	photos                     string // folder name under people/
}

var (
	amy   = person{"Amy Farrah Fowler", "amy@example.com", "471108", "correct horse battery staple", "amy"}
	penny = person{"Penny", "penny@example.com", "192874", "penny's long password", "penny"}
)

// enroll invites p, enrolls them over HTTP with photos 1–3, and returns their signed-in
// client and user id.
func enroll(t testing.TB, r *replica, p person, role store.Role) (*client, match.UserID) {
	t.Helper()
	c, id := account(t, r, p, role)
	ct, body := samples(t, photo(t, p.photos, 1), photo(t, p.photos, 2), photo(t, p.photos, 3))
	want(t, "enroll face", c.do("PUT", "/api/me/face", ct, body), http.StatusOK, "")
	return c, id
}

// wsMsg is any message of the login WebSocket.
type wsMsg struct {
	Type, Code, Message, Status, Next, Name string
	RetryAfter                              int `json:"retry_after"`
}

// dialLogin opens the login WebSocket with the client's cookies and the given Origin
// (the replica's own origin when "").
func (c *client) dialLogin(ctx context.Context, origin string) (*websocket.Conn, *http.Response, error) {
	if origin == "" {
		origin = c.base
	}
	h := http.Header{"Origin": {origin}}
	if c.xff != "" {
		h.Set("X-Forwarded-For", c.xff)
	}
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.base, "http")+"/api/ws/login",
		&websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: h})
}

// faceLogin runs a login attempt: a session, then the frame sent until the server gives a
// result (at most 10 frames). It returns every message received.
func (c *client) faceLogin(frame []byte) []wsMsg {
	c.t.Helper()
	want(c.t, "start session", c.json("POST", "/api/session", struct{}{}), http.StatusOK, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, _, err := c.dialLogin(ctx, "")
	if err != nil {
		c.t.Fatalf("dial login WebSocket: %v", err)
	}
	defer conn.CloseNow()
	var msgs []wsMsg
	for range 10 {
		if err := conn.Write(ctx, websocket.MessageBinary, frame); err != nil {
			c.t.Fatalf("send frame: %v", err)
		}
		var m wsMsg
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			c.t.Fatalf("read answer after %v: %v", msgs, err)
		}
		msgs = append(msgs, m)
		if m.Type == "result" {
			return msgs
		}
	}
	c.t.Fatalf("no result after 10 frames: %v", msgs)
	return nil
}

func last(msgs []wsMsg) wsMsg { return msgs[len(msgs)-1] }

// logBuffer collects a Server's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// eventually waits up to 30 s for cond, polling; it fails the test with what otherwise.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s still not: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
