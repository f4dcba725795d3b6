package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// cannedAPI answers the few GET requests the pages make while rendering, in the shapes the
// contract gives. It stands in for the recognition API only in these unit tests of the
// templates and routing; the e2e tests drive the real API in the real binary.
func cannedAPI(t *testing.T, signedIn bool) http.Handler {
	t.Helper()
	mux := http.NewServeMux()
	enrolled := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, `{"status":"ok","models":true,"descriptors":2}`+"\n")
	})
	mux.HandleFunc("GET /api/me", func(w http.ResponseWriter, r *http.Request) {
		if !signedIn {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":"unauthorized","message":"Sign in first."}}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"id": 7, "name": "Amy <Fowler>", "email": "amy@example.com", "role": "admin",
			"face_enrolled_at": enrolled, "pin_min_length": 7,
			"logins": []map[string]any{{"at": enrolled, "method": "face+pin", "client": "Chromium on Linux", "success": true}},
		})
	})
	mux.HandleFunc("GET /api/admin/users", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"users":[{"id":7,"name":"Amy <Fowler>","email":"amy@example.com","role":"admin"},{"id":8,"name":"Raj","email":"raj@example.com","role":"user"}]}`)
	})
	mux.HandleFunc("GET /api/admin/invites", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `[{"name":"Penny","email":"penny@example.com","role":"user","expires_at":"2026-03-04T00:00:00Z"}]`)
	})
	mux.HandleFunc("GET /api/admin/lookalikes", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"within":0.5,"pairs":[{"a":{"id":7,"name":"Amy <Fowler>"},"b":{"id":8,"name":"Raj"},"distance":0.412}]}`)
	})
	mux.HandleFunc("GET /api/admin/settings", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"pin_optional":true,"liveness":true}`)
	})
	mux.HandleFunc("GET /api/invites/{token}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("token") != "good" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		texts := map[string]string{"en": "We keep descriptors <only>.", "de": "Wir speichern nur Deskriptoren."}
		lang := r.URL.Query().Get("lang")
		fmt.Fprintf(w, `{"name":"Penny","email":"penny@example.com","role":"user","pin_min_length":6,"consent":{"version":"v1","lang":%q,"text":%q}}`, lang, texts[lang])
	})
	mux.HandleFunc("GET /api/reset/{token}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("token") != "good" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		io.WriteString(w, `{"name":"Penny","email":"penny@example.com","password":false,"pin":true,"expires_at":"2026-03-04T00:00:00Z","pin_min_length":6}`)
	})
	mux.HandleFunc("GET /api/consent", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"version":"v1","lang":%q,"text":"Binding text in %s."}`, r.URL.Query().Get("lang"), r.URL.Query().Get("lang"))
	})
	mux.HandleFunc("GET /api/ws/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, b, err := c.Read(r.Context())
		if err != nil {
			return
		}
		c.Write(r.Context(), typ, append([]byte("echo:"), b...))
		c.Close(websocket.StatusNormalClosure, "")
	})
	return mux
}

func newServer(t *testing.T, api http.Handler) *httptest.Server {
	t.Helper()
	h, err := New(Options{API: api})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// noRedirect is a client that reports redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestNegotiate(t *testing.T) {
	tests := []struct{ header, want string }{
		{"", "en"},
		{"de", "de"},
		{"de-CH, en;q=0.8", "de"},
		{"en-GB,en;q=0.9,de;q=0.8", "en"},
		{"fr, de;q=0.5", "de"},
		{"fr", "en"},
		{"de;q=0, en;q=0.1", "en"},
		{"DE-at", "de"},
		{"de;q=bogus, en", "en"},
	}
	for _, tt := range tests {
		if got := negotiate(tt.header); got != tt.want {
			t.Errorf("negotiate(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

func TestLocalPage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/profile", "/profile"},
		{"/login/password", "/login/password"},
		{"/login?x=1", "/login"},
		{"/enroll/Ab-9_xyz", "/enroll/Ab-9_xyz"},
		{"", "/"},
		{"/nothing", "/"},
		{"/login/../admin", "/"},
		{"/enroll/a/b", "/"},
		{"/enroll/", "/"},
		{"//evil.example/x", "/"},
		{"/\\evil.example", "/"},
		{"/\t/127.0.0.1:18199/pwned", "/"},
		{"/%09/127.0.0.1:18199/pwned", "/"},
		{"/%2F/evil.example", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"/a\r\nSet-Cookie: x", "/"},
	}
	for _, tt := range tests {
		if got := localPage(tt.in); got != tt.want {
			t.Errorf("localPage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestTexts checks that both languages have the same keys and that every key the templates
// and scripts use exists, so no page shows a raw key.
func TestTexts(t *testing.T) {
	cat, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	en, de := slices.Sorted(maps.Keys(cat["en"])), slices.Sorted(maps.Keys(cat["de"]))
	if !slices.Equal(en, de) {
		t.Errorf("en and de texts differ:\n en only: %v\n de only: %v", minus(en, de), minus(de, en))
	}
	used := map[string]string{}
	tmplKey := regexp.MustCompile(`\.T "([a-z0-9_.+]+)"`)
	jsKey := regexp.MustCompile("\\bt\\('([a-z0-9_.]+)'")
	check := func(dir string, re *regexp.Regexp, prefix string, fsys fs.FS) {
		fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, _ := fs.ReadFile(fsys, p)
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				used[prefix+m[1]] = p
			}
			return nil
		})
	}
	check("templates", tmplKey, "", templateFS)
	check("static", jsKey, "js.", staticFS)
	if len(used) < 50 {
		t.Fatalf("found only %d text keys in templates and scripts; the pattern is broken", len(used))
	}
	for key, file := range used {
		if _, ok := cat["en"][key]; !ok {
			t.Errorf("%s uses text %q, missing in i18n/en.json", file, key)
		}
	}
	// Guidance codes of the WebSocket protocol and the face package's reasons all have texts.
	for _, code := range []string{"no_face", "many_faces", "move_closer", "too_dark", "hold_still", "unknown",
		"bad_image", "too_small", "too_large", "unsupported_format", "busy"} {
		if _, ok := cat["en"]["js.guide."+code]; !ok {
			t.Errorf("no text for guidance code %q", code)
		}
	}
}

// TestGermanFormal keeps the German texts in the formal "Sie" a company addresses its
// employees with: no du, dich, dir, dein… anywhere.
func TestGermanFormal(t *testing.T) {
	cat, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	informal := regexp.MustCompile(`(?i)\b(du|dich|dir|dein|deine|deinen|deinem|deiner|deines)\b`)
	for key, text := range cat["de"] {
		if w := informal.FindString(text); w != "" {
			t.Errorf("de %s says %q; address people as Sie: %s", key, w, text)
		}
	}
}

// TestServerCodesTranslated finds every error code the API answers with, every guidance code
// of the login WebSocket and every reason of the face package in their sources, and checks
// that the page has a text for each in every language: the server's own sentences are English
// and never reach a page.
func TestServerCodesTranslated(t *testing.T) {
	cat, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	errorCode := regexp.MustCompile(`(?:errorf|writeError)\([^,]+, "([a-z_]+)"|code: "([a-z_]+)"`)
	guideCode := regexp.MustCompile(`say\("([a-z_]+)"|Code: "([a-z_]+)"`)
	reason := regexp.MustCompile(`Reason = "([a-z_]+)"`)
	codes := map[string]string{} // text key → where the code came from
	scan := func(glob string, re *regexp.Regexp, prefixes ...string) {
		files, err := filepath.Glob(glob)
		if err != nil || len(files) == 0 {
			t.Fatalf("no sources at %s: %v", glob, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				code := m[1]
				if code == "" && len(m) > 2 {
					code = m[2]
				}
				for _, p := range prefixes {
					codes[p+code] = f
				}
			}
		}
	}
	scan("../api/*.go", errorCode, "js.code.")
	scan("../api/ws.go", guideCode, "js.guide.")
	scan("../api/enrol.go", regexp.MustCompile(`"guidance", "([a-z_]+)"|code, msg = "([a-z_]+)"`), "js.guide.")
	scan("../face/*.go", reason, "js.guide.", "js.code.")
	if len(codes) < 30 {
		t.Fatalf("found only %d codes; the patterns are broken", len(codes))
	}
	for key, from := range codes {
		for _, lang := range languages {
			if _, ok := cat[lang][key]; !ok {
				t.Errorf("%s: no %s text %q for a code of %s", lang, lang, key, from)
			}
		}
	}
}

func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func TestPages(t *testing.T) {
	in := newServer(t, cannedAPI(t, true))
	out := newServer(t, cannedAPI(t, false))
	tests := []struct {
		name     string
		srv      *httptest.Server
		path     string
		lang     string
		status   int
		location string
		contains []string
	}{
		{"root signed in", in, "/", "en", 303, "/profile", nil},
		{"root signed out", out, "/", "en", 303, "/login", nil},
		{"login en", out, "/login", "en", 200, "", []string{`<html lang="en">`, "Sign in with email and password", `src="/static/login.js"`}},
		{"login de", out, "/login", "de-DE,de;q=0.9", 200, "", []string{`<html lang="de">`, "Mit E-Mail und Passwort anmelden", `aria-live="polite"`}},
		{"pin", out, "/login/pin", "en", 200, "", []string{`id="pin-form"`, `autocomplete="one-time-code"`}},
		{"login waits for a choice", out, "/login", "en", 200, "", []string{`data-state="idle">`, `id="face-start"`}},
		{"pin after the password", out, "/login/pin?via=password", "en", 200, "", []string{"Your password is correct", `data-digits aria-describedby="pin-hello pin-error"`}},
		{"pin after the face", out, "/login/pin?via=face", "de", 200, "", []string{"Ihr Gesicht wurde zugeordnet", `id="pin-ended"`}},
		{"signed out", out, "/signed-out", "de", 200, "", []string{"Sie haben sich abgemeldet", `href="/login?start=face"`, `href="/login/password"`}},
		{"password", out, "/login/password", "de", 200, "", []string{"Mit Passwort anmelden"}},
		{"profile", in, "/profile", "en", 200, "", []string{"Amy &lt;Fowler&gt;", "Face and PIN", "Chromium on Linux", `datetime="2026-03-01T09:30:00Z"`, "Delete my face data",
			`id="pin-new" type="password" inputmode="numeric" pattern="[0-9]*" autocomplete="new-password" minlength="7"`, "7 to 12 digits"}},
		{"profile needs login", out, "/profile", "en", 303, "/login", nil},
		{"admin", in, "/admin", "de", 200, "", []string{"Person einladen", "raj@example.com", "penny@example.com", `data-action="delete-user" data-id="8"`,
			"Ähnliche Gesichter", "näher als 0.50", "Die PIN ist ausgeschaltet", "--require-pin=false", `data-action="revoke-invite" data-email="penny@example.com"`, "Erneut senden",
			`<td data-label="Rolle">`, "<strong>Amy &lt;Fowler&gt;</strong> · <strong>Raj</strong> <span class=\"muted\">· 0.41</span>"}},
		{"admin needs login", out, "/admin", "en", 303, "/login", nil},
		{"enroll", out, "/enroll/good", "en", 200, "", []string{"We keep descriptors &lt;only&gt;.", `data-consent-version="v1"`, `data-token="good"`,
			`minlength="6" maxlength="12" required data-digits aria-describedby="pin-hint enroll-error"`, "6 to 12 digits", `lang="en"`, "Binding version v1."}},
		// The German consent text is binding itself: shown in German, recorded as German.
		{"enroll de", out, "/enroll/good", "de", 200, "", []string{"Wir speichern nur Deskriptoren.", `id="consent-text" lang="de"`,
			`data-consent-version="v1" data-consent-lang="de"`, "Verbindliche Fassung v1."}},
		{"face set-up de", in, "/profile/face", "de", 200, "", []string{"Binding text in de.", `id="consent-text" lang="de"`,
			`data-consent-version="v1" data-consent-lang="de"`, "Einwilligung zur Gesichtserkennung"}},
		{"reset link", out, "/reset/good", "de", 200, "", []string{"Neues Geheimnis festlegen", "<strong>Penny</strong>", `id="reset-pin"`, `src="/static/reset.js"`}},
		{"reset link used", out, "/reset/nope", "en", 404, "", []string{"This reset link cannot be used"}},
		{"admin reset card", in, "/admin", "en", 200, "", []string{"Create reset link", `<option value="8">Raj (raj@example.com)</option>`}},
		{"enroll bad token", out, "/enroll/nope", "en", 404, "", []string{"This invitation cannot be used"}},
		{"not found", out, "/nothing", "de", 404, "", []string{"Seite nicht gefunden"}},
		{"static", out, "/static/login.js", "en", 200, "", []string{"WebSocket"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(t, tt.srv.URL+tt.path, map[string]string{"Accept-Language": tt.lang})
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body:\n%s", res.StatusCode, tt.status, body)
			}
			if loc := res.Header.Get("Location"); loc != tt.location {
				t.Errorf("Location %q, want %q", loc, tt.location)
			}
			for _, s := range tt.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q", s)
				}
			}
		})
	}
}

// TestKiosk: only a kiosk's login page starts the camera by itself.
func TestKiosk(t *testing.T) {
	h, err := New(Options{API: cannedAPI(t, false), Kiosk: true})
	if err != nil {
		t.Fatal(err)
	}
	kiosk := httptest.NewServer(h)
	t.Cleanup(kiosk.Close)
	desk := newServer(t, cannedAPI(t, false))
	for _, tt := range []struct {
		srv  *httptest.Server
		auto bool
	}{{kiosk, true}, {desk, false}} {
		_, body := get(t, tt.srv.URL+"/login", nil)
		if got := strings.Contains(body, `data-autostart="true"`); got != tt.auto {
			t.Errorf("kiosk %v: login page starts the camera by itself: %v", tt.auto, got)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	srv := newServer(t, cannedAPI(t, false))
	res, _ := get(t, srv.URL+"/login", nil)
	want := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Permissions-Policy":      "camera=(self)",
		"Content-Security-Policy": "frame-ancestors 'none'",
	}
	for k, v := range want {
		if got := res.Header.Get(k); !strings.Contains(got, v) {
			t.Errorf("%s = %q, want it to contain %q", k, got, v)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	if strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP allows inline script or lacks script-src: %q", csp)
	}
}

func TestLanguageSwitch(t *testing.T) {
	srv := newServer(t, cannedAPI(t, false))
	res, _ := get(t, srv.URL+"/lang/de?next=/login/password", nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login/password" {
		t.Fatalf("switch: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == langCookie {
			cookie = c
		}
	}
	if cookie == nil || cookie.Value != "de" {
		t.Fatalf("no language cookie in %v", res.Cookies())
	}
	// The cookie beats the browser's language.
	_, body := get(t, srv.URL+"/login", map[string]string{"Cookie": langCookie + "=de", "Accept-Language": "en"})
	if !strings.Contains(body, `<html lang="de">`) {
		t.Error("language cookie ignored")
	}
	for _, next := range []string{"//evil.example/", "/%09/127.0.0.1:18199/pwned", "/%5C%5Cevil.example"} {
		res, _ = get(t, srv.URL+"/lang/de?next="+next, nil)
		if res.Header.Get("Location") != "/" {
			t.Errorf("open redirect with next=%s: Location %q", next, res.Header.Get("Location"))
		}
	}
	res, _ = get(t, srv.URL+"/lang/fr", nil)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown language: status %d", res.StatusCode)
	}
}

// TestWebSocketForwarding upgrades a real WebSocket through the front end's middleware to
// the API handler, as the login page does.
func TestWebSocketForwarding(t *testing.T) {
	srv := newServer(t, cannedAPI(t, false))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/api/ws/echo", nil)
	if err != nil {
		t.Fatalf("dial through web: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageBinary, []byte("frame")); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "echo:frame" {
		t.Errorf("got %q", b)
	}
}

// TestBehindReverseProxy runs the front end as `facelogin web` does: the API is another
// HTTP server reached through httputil.ReverseProxy, WebSocket included.
func TestBehindReverseProxy(t *testing.T) {
	api := httptest.NewServer(cannedAPI(t, true))
	t.Cleanup(api.Close)
	u, err := url.Parse(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, httputil.NewSingleHostReverseProxy(u))
	res, body := get(t, srv.URL+"/profile", map[string]string{"Accept-Language": "en"})
	if res.StatusCode != 200 || !strings.Contains(body, "Amy &lt;Fowler&gt;") {
		t.Fatalf("profile through the proxy: %d\n%s", res.StatusCode, body)
	}
	if res, _ := get(t, srv.URL+"/readyz", nil); res.StatusCode != 200 {
		t.Errorf("readyz through the proxy: %d", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/api/ws/echo", nil)
	if err != nil {
		t.Fatalf("WebSocket through web and the proxy: %v", err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageBinary, []byte("x"))
	if _, b, err := c.Read(ctx); err != nil || string(b) != "echo:x" {
		t.Errorf("echo: %q, %v", b, err)
	}
	// The API gone: pages say so.
	api.Close()
	res, body = get(t, srv.URL+"/profile", map[string]string{"Accept-Language": "de"})
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Der Dienst ist nicht erreichbar") {
		t.Errorf("profile with the API down: %d\n%s", res.StatusCode, body)
	}
}

// TestReadyz checks /healthz and /readyz answer in the api's JSON (docs/api.md): /readyz
// relays the api's own answer, ready or not, and says "api unreachable" when the api fails
// to answer in its way.
func TestReadyz(t *testing.T) {
	health := func(t *testing.T, url string, wantStatus int, wantBody string) {
		t.Helper()
		res, body := get(t, url, nil)
		if res.StatusCode != wantStatus || body != wantBody+"\n" || res.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("GET %s = %d %s %q; want %d application/json %s", url, res.StatusCode, res.Header.Get("Content-Type"), body, wantStatus, wantBody)
		}
	}
	up := newServer(t, cannedAPI(t, false))
	health(t, up.URL+"/healthz", 200, `{"status":"ok"}`)
	health(t, up.URL+"/readyz", 200, `{"status":"ok","models":true,"descriptors":2}`)

	storeDown := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":"store unreachable"}`+"\n")
	}))
	health(t, storeDown.URL+"/readyz", http.StatusServiceUnavailable, `{"status":"store unreachable"}`)

	down := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "models not loaded", http.StatusServiceUnavailable)
	}))
	health(t, down.URL+"/readyz", http.StatusServiceUnavailable, `{"status":"api unreachable"}`)
	health(t, down.URL+"/healthz", 200, `{"status":"ok"}`)
	// A page that needs the API says so instead of hanging or showing a blank page.
	res, body := get(t, down.URL+"/profile", map[string]string{"Accept-Language": "en"})
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "The service is not reachable") {
		t.Errorf("profile with api down: %d\n%s", res.StatusCode, body)
	}
	res, body = get(t, up.URL+"/metrics", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "facelogin_web_requests_total") {
		t.Errorf("metrics: %d, missing request counter", res.StatusCode)
	}
}
