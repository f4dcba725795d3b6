package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// TestJourney runs the whole life of an account on the real engine and real photos, against
// both stores: invite → consent and enrollment with three samples → login over the
// WebSocket with a fourth photo + PIN → profile shows the login → another person is
// unknown → erasure leaves no descriptor in the database or the index, and Amy is unknown
// too. Every log line written meanwhile is checked for secrets and descriptors.
func TestJourney(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		var logs logBuffer
		r := newReplica(t, dsn, newSecrets(t), api.Options{Logger: logs.logger()})
		ctx := context.Background()

		inv, err := api.CreateInvite(ctx, r.st, api.InviteOptions{Name: amy.name, Email: amy.email, Role: store.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		enrolling := r.client()
		res := enrolling.json("POST", "/api/enroll", map[string]any{"token": inv.Token, "consent_version": api.ConsentVersion,
			"accept": false, "pin": amy.pin, "password": amy.password})
		want(t, "enroll without consent", res, http.StatusBadRequest, "consent_required")
		res = enrolling.json("POST", "/api/enroll", map[string]any{"token": inv.Token, "consent_version": api.ConsentVersion,
			"accept": true, "pin": amy.pin, "password": amy.password})
		want(t, "enroll", res, http.StatusCreated, "")
		want(t, "invitation used twice", enrolling.json("POST", "/api/enroll", map[string]any{"token": inv.Token,
			"consent_version": api.ConsentVersion, "accept": true, "pin": amy.pin, "password": amy.password}), http.StatusNotFound, "invite_not_found")

		u, err := r.st.UserByEmail(ctx, amy.email)
		if err != nil {
			t.Fatal(err)
		}
		if u.ConsentVersion != api.ConsentVersion || u.ConsentAt.IsZero() {
			t.Errorf("consent recorded as %q at %v", u.ConsentVersion, u.ConsentAt)
		}
		// Two samples are too few; the account keeps no face data.
		ct, body := samples(t, photo(t, "amy", 1), photo(t, "amy", 2))
		want(t, "two samples", enrolling.do("PUT", "/api/me/face", ct, body), http.StatusBadRequest, "too_few_samples")
		ct, body = samples(t, photo(t, "amy", 1), photo(t, "amy", 2), photo(t, "amy", 3))
		want(t, "three samples", enrolling.do("PUT", "/api/me/face", ct, body), http.StatusOK, "")
		if got := r.descriptors(); got != 3 {
			t.Fatalf("index holds %d descriptors after enrollment, want 3", got)
		}
		stored, err := r.st.Samples(ctx, u.ID)
		if err != nil || len(stored) != 3 {
			t.Fatalf("store holds %d samples (%v), want 3", len(stored), err)
		}
		want(t, "logout", enrolling.json("POST", "/api/logout", struct{}{}), http.StatusNoContent, "")
		want(t, "profile after logout", enrolling.do("GET", "/api/me", "", nil), http.StatusUnauthorized, "unauthorized")

		// A different photo of Amy, at the kiosk: face, then PIN.
		kiosk := r.client()
		msgs := kiosk.faceLogin(photo(t, "amy", 4))
		if got := last(msgs); got.Status != "recognized" || got.Next != "pin" || got.Name != "" {
			t.Fatalf("login with another photo of Amy: %+v", msgs)
		}
		if msgs[0].Code != "hold_still" {
			t.Errorf("first frame answered %+v, want hold_still (no previous face box to compare with)", msgs[0])
		}
		want(t, "profile before the PIN", kiosk.do("GET", "/api/me", "", nil), http.StatusUnauthorized, "unauthorized")
		pending := sessionCookie(t, kiosk)
		want(t, "wrong PIN", kiosk.json("POST", "/api/login/pin", map[string]string{"pin": "000000"}), http.StatusUnauthorized, "wrong_pin")
		want(t, "right PIN", kiosk.json("POST", "/api/login/pin", map[string]string{"pin": amy.pin}), http.StatusOK, "")
		if full := sessionCookie(t, kiosk); full == pending {
			t.Error("the session id was not replaced when the login completed")
		}
		var me struct {
			Name           string
			Email          string
			FaceEnrolledAt *string `json:"face_enrolled_at"`
			Logins         []struct {
				Method  string
				Success bool
			}
		}
		res = kiosk.do("GET", "/api/me", "", nil)
		want(t, "profile", res, http.StatusOK, "")
		res.decode(t, &me)
		if me.Name != amy.name || me.FaceEnrolledAt == nil || len(me.Logins) < 2 ||
			me.Logins[0].Method != "face+pin" || !me.Logins[0].Success || me.Logins[1].Success {
			t.Fatalf("profile %s: want the face+pin login, and the failed PIN before it", res.body)
		}

		// Penny is not enrolled: unknown.
		stranger := r.client()
		if got := last(stranger.faceLogin(photo(t, "penny", 1))); got.Status != "unknown" {
			t.Fatalf("Penny's login: %+v, want unknown", got)
		}

		// Amy erases her face data: nothing remains in the tables or the index.
		want(t, "erase", kiosk.do("DELETE", "/api/me/face", "", nil), http.StatusNoContent, "")
		if n := rawSamples(t, dsn, u.ID); n != 0 {
			t.Errorf("%d face_samples rows of Amy remain after erasure", n)
		}
		if n := r.descriptors(); n != 0 {
			t.Errorf("index holds %d descriptors after erasure", n)
		}
		if got := last(r.client().faceLogin(photo(t, "amy", 4))); got.Status != "unknown" {
			t.Fatalf("Amy after erasure: %+v, want unknown", got)
		}
		// The password path still works without face data.
		pw := r.client()
		res = pw.json("POST", "/api/login/password", map[string]string{"email": amy.email, "password": amy.password})
		want(t, "password login", res, http.StatusOK, "")
		want(t, "PIN after password", pw.json("POST", "/api/login/pin", map[string]string{"pin": amy.pin}), http.StatusOK, "")
		want(t, "profile after password+PIN", pw.do("GET", "/api/me", "", nil), http.StatusOK, "")

		// A PIN change ends her other sessions and keeps this one, under a new id.
		before := sessionCookie(t, pw)
		want(t, "change PIN with a wrong current PIN", pw.json("PUT", "/api/me/pin", map[string]string{"current": "999999", "pin": newPIN}), http.StatusUnauthorized, "wrong_pin")
		want(t, "change PIN", pw.json("PUT", "/api/me/pin", map[string]string{"current": amy.pin, "pin": newPIN}), http.StatusNoContent, "")
		if sessionCookie(t, pw) == before {
			t.Error("the session id was not replaced after the PIN change")
		}
		want(t, "profile on this device", pw.do("GET", "/api/me", "", nil), http.StatusOK, "")
		want(t, "profile on the other device", kiosk.do("GET", "/api/me", "", nil), http.StatusUnauthorized, "unauthorized")
		want(t, "change password with a wrong current one", pw.json("PUT", "/api/me/password",
			map[string]string{"current": "wrong password!", "password": "another long password"}), http.StatusUnauthorized, "wrong_password")

		checkLogs(t, logs.String(), secretsOf(t, inv.Token, r.cookies.all(), stored))
	})
}

// newPIN is the PIN Amy changes to.
const newPIN = "864209"

// sessionCookie returns the client's current session cookie value.
func sessionCookie(t *testing.T, c *client) string {
	t.Helper()
	u, _ := url.Parse(c.base)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == "facelogin" {
			return ck.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// secretsOf lists what must never appear in a log: PINs, passwords, the invitation token,
// every cookie value handed out, and the descriptors' components as text.
func secretsOf(t *testing.T, token string, cookies []string, samples []store.Sample) []string {
	t.Helper()
	s := []string{amy.pin, amy.password, penny.pin, penny.password, newPIN, token}
	s = append(s, cookies...)
	for _, sm := range samples {
		s = append(s, descriptorTexts(sm.Descriptor)...)
	}
	if len(cookies) < 3 || len(samples) == 0 {
		t.Fatalf("the journey handed out %d cookies and %d samples; the log check would prove little", len(cookies), len(samples))
	}
	return s
}

// descriptorTexts renders some components of d as a log line would (JSON float formats).
func descriptorTexts(d match.Descriptor) []string {
	var out []string
	for _, v := range d[:8] {
		out = append(out, strconv.FormatFloat(float64(v), 'g', -1, 32), strconv.FormatFloat(float64(v), 'g', -1, 64))
	}
	return out
}

// checkLogs fails if a log line holds one of secrets. The time field is left out: its
// digits could contain a PIN by chance.
func checkLogs(t *testing.T, logs string, secrets []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) < 10 {
		t.Fatalf("only %d log lines were written during the journey", len(lines))
	}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		delete(rec, "time")
		text, _ := json.Marshal(rec)
		for _, s := range secrets {
			if strings.Contains(string(text), s) {
				t.Errorf("a log line contains the secret %q: %s", s, text)
			}
		}
	}
}

// TestReplicas runs two api Servers on one database, as the cluster runs its replicas
// behind a load balancer: Amy enrolls on one and is recognised on the other without a
// restart; her session works on both; her erasure on one reaches the other's index.
func TestReplicas(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		sec := newSecrets(t)
		a := newReplica(t, dsn, sec, api.Options{})
		b := newReplica(t, dsn, sec, api.Options{})

		_, id := enroll(t, a, amy, store.RoleUser)
		eventually(t, "replica B holds Amy's 3 descriptors", func() bool { return b.descriptors() == 3 })

		kiosk := b.client()
		if got := last(kiosk.faceLogin(photo(t, "amy", 5))); got.Status != "recognized" || got.Name != "" {
			t.Fatalf("login on replica B: %+v", got)
		}
		// The PIN goes to the other replica: the session lives in the store.
		want(t, "PIN on replica A", kiosk.on(a).json("POST", "/api/login/pin", map[string]string{"pin": amy.pin}), http.StatusOK, "")
		want(t, "profile on replica B", kiosk.do("GET", "/api/me", "", nil), http.StatusOK, "")

		// Replica C starts now (its index is built from the store) and never polls again.
		c := newReplica(t, dsn, sec, api.Options{PollInterval: time.Hour})
		if n := c.descriptors(); n != 3 {
			t.Fatalf("replica C started with %d descriptors, want 3", n)
		}

		want(t, "erase on replica A", kiosk.on(a).do("DELETE", "/api/me/face", "", nil), http.StatusNoContent, "")
		// C has not heard of the erasure, but the store has the last word: Amy is unknown.
		if got := last(c.client().faceLogin(photo(t, "amy", 5))); got.Status != "unknown" {
			t.Fatalf("Amy on a replica that has not polled since her erasure: %+v, want unknown", got)
		}
		eventually(t, "replica B dropped Amy's descriptors", func() bool { return b.descriptors() == 0 })
		if n := rawSamples(t, dsn, id); n != 0 {
			t.Errorf("%d face_samples rows remain after erasure", n)
		}
		if got := last(b.client().faceLogin(photo(t, "amy", 5))); got.Status != "unknown" {
			t.Fatalf("Amy on replica B after erasure: %+v, want unknown", got)
		}

		// An admin deleting the whole account reaches the other replica too.
		admin, _ := enroll(t, a, penny, store.RoleAdmin)
		_, id2 := enroll(t, a, person{"Raj", "raj@example.com", "246813", "raj's long password", "raj"}, store.RoleUser)
		eventually(t, "replica B holds Penny's and Raj's descriptors", func() bool { return b.descriptors() == 6 })
		want(t, "delete Raj", admin.do("DELETE", "/api/admin/users/"+itoa(id2), "", nil), http.StatusNoContent, "")
		eventually(t, "replica B dropped Raj", func() bool { return b.descriptors() == 3 })
		if n := rawSamples(t, dsn, id2); n != 0 {
			t.Errorf("%d face_samples rows of a deleted account remain", n)
		}
	})
}
