package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// TestSessionCookie checks the production cookie: __Host- prefix, Secure, HttpOnly,
// SameSite=Strict, Path=/, and a 32-byte random value of which the store holds only a hash.
func TestSessionCookie(t *testing.T) {
	sec := newSecrets(t)
	st, err := store.Open(t.Context(), "sqlite:"+t.TempDir()+"/f.db", sec.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := api.New(api.Options{Store: st, Engine: realEngine(t), Pepper: sec.pepper})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	req := httptest.NewRequest("POST", "https://login.example.com/api/session", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusOK || len(cookies) != 1 {
		t.Fatalf("POST /api/session: %d, cookies %v", rec.Code, cookies)
	}
	c := cookies[0]
	if c.Name != "__Host-facelogin" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie %s", c.String())
	}
	if len(c.Value) != 43 { // 32 bytes, unpadded base64url
		t.Errorf("cookie value has %d characters, want 43 (32 random bytes)", len(c.Value))
	}
	if _, err := st.Session(t.Context(), c.Value, time.Now()); err == nil {
		t.Error("the store finds the session by the raw cookie value; it must hold only a hash")
	}
}

// TestIdleTimeout checks a session unused for longer than IdleTimeout ends.
func TestIdleTimeout(t *testing.T) {
	const idle = 2 * time.Second
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{IdleTimeout: idle, PINOptional: true})
	enroll(t, r, amy, store.RoleUser)
	// A fresh sign-in, so the idle time counts from a quick request: enrollment's face
	// analysis can take longer than the timeout on a loaded machine.
	c := r.client()
	want(t, "password login", c.json("POST", "/api/login/password", map[string]string{"email": amy.email, "password": amy.password}), http.StatusOK, "")
	want(t, "profile while active", c.do("GET", "/api/me", "", nil), http.StatusOK, "")
	time.Sleep(idle + 500*time.Millisecond)
	want(t, "profile after the idle timeout", c.do("GET", "/api/me", "", nil), http.StatusUnauthorized, "unauthorized")

	// Without the PIN step a face alone signs in, under a session id issued for this attempt.
	kiosk := r.client()
	msgs := kiosk.faceLogin(photo(t, "amy", 4))
	if got := last(msgs); got.Status != "recognized" || got.Next != "done" {
		t.Fatalf("face login without PIN: %+v", msgs)
	}
	want(t, "profile after face-only login", kiosk.do("GET", "/api/me", "", nil), http.StatusOK, "")
}

// TestBootstrapToken checks the bootstrap secret works as an admin invitation only while no
// admin exists.
func TestBootstrapToken(t *testing.T) {
	const token = "a-long-random-bootstrap-secret-for-tests"
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{BootstrapToken: token})
	c := r.client()
	res := c.do("GET", "/api/invites/"+token, "", nil)
	want(t, "bootstrap invitation", res, http.StatusOK, "")
	if !strings.Contains(string(res.body), `"role":"admin"`) {
		t.Fatalf("bootstrap invitation %s, want role admin", res.body)
	}
	res = c.json("POST", "/api/enroll", map[string]any{"token": token, "consent_version": api.ConsentVersion, "accept": true,
		"pin": amy.pin, "password": amy.password, "name": amy.name, "email": amy.email})
	want(t, "enroll with the bootstrap token", res, http.StatusCreated, "")
	want(t, "admin list as the first admin", c.do("GET", "/api/admin/users", "", nil), http.StatusOK, "")
	want(t, "bootstrap token once an admin exists", r.client().do("GET", "/api/invites/"+token, "", nil), http.StatusNotFound, "invite_not_found")

	// The admin invites a user; that user may not use admin endpoints.
	res = c.json("POST", "/api/admin/invites", map[string]string{"name": penny.name, "email": penny.email, "role": "user"})
	want(t, "create invitation", res, http.StatusCreated, "")
	var inv struct{ Token, URL string }
	res.decode(t, &inv)
	if !strings.HasSuffix(inv.URL, "/enroll/"+inv.Token) {
		t.Errorf("invitation URL %q does not end in /enroll/<token>", inv.URL)
	}
	res = c.do("GET", "/api/admin/invites", "", nil)
	want(t, "list invitations", res, http.StatusOK, "")
	if !strings.Contains(string(res.body), penny.email) || strings.Contains(string(res.body), inv.Token) {
		t.Errorf("invitation list %s: want Penny, never the token", res.body)
	}
	p := r.client()
	want(t, "Penny enrolls", p.json("POST", "/api/enroll", map[string]any{"token": inv.Token, "consent_version": api.ConsentVersion,
		"accept": true, "pin": penny.pin, "password": penny.password}), http.StatusCreated, "")
	want(t, "admin list as a user", p.do("GET", "/api/admin/users", "", nil), http.StatusForbidden, "forbidden")
}

// TestHealth checks /healthz, /readyz (store reachable) and /metrics after some traffic.
func TestHealth(t *testing.T) {
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{})
	c, _ := enroll(t, r, amy, store.RoleUser)
	if got := last(r.client().faceLogin(photo(t, "amy", 4))); got.Status != "recognized" {
		t.Fatalf("login: %+v", got)
	}
	want(t, "face check", c.do("POST", "/api/face/check", "image/jpeg", nil), http.StatusBadRequest, "bad_image")
	health := func(what string, status int, body string) {
		t.Helper()
		res := c.do("GET", "/"+what, "", nil)
		want(t, what, res, status, "")
		if string(res.body) != body+"\n" || res.header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%s: %s %q, want application/json %s (docs/api.md)", what, res.header.Get("Content-Type"), res.body, body)
		}
	}
	health("healthz", http.StatusOK, `{"status":"ok"}`)
	health("readyz", http.StatusOK, `{"descriptors":3,"models":true,"status":"ok"}`)
	res := c.do("GET", "/metrics", "", nil)
	want(t, "metrics", res, http.StatusOK, "")
	for _, m := range []string{
		`facelogin_stage_duration_seconds_count{stage="decode+detect+describe"}`,
		`facelogin_stage_duration_seconds_count{stage="match"}`,
		`facelogin_login_results_total{result="recognized"} 1`,
		`facelogin_index_descriptors 3`,
	} {
		if !strings.Contains(string(res.body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	r.st.Close()
	health("readyz", http.StatusServiceUnavailable, `{"status":"store unreachable"}`)
}
