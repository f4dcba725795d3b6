package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// TestResetLinks walks an admin's reset link through: issued once (shown with for whom and
// until when, recorded in the person's history), opened, refused for a weak PIN without
// being spent, used to set a new PIN, which ends every session of the person; single use;
// guessed links count as failures of the address like invitation lookups.
func TestResetLinks(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		r := newReplica(t, dsn, newSecrets(t), api.Options{PublicURL: "https://login.example.test", TrustProxy: true, ClientFailures: 4})
		admin := enrolledWithoutFace(t, r, amy, store.RoleAdmin)
		pennyTab := enrolledWithoutFace(t, r, penny, store.RoleUser)
		u, err := r.st.UserByEmail(t.Context(), penny.email)
		if err != nil {
			t.Fatal(err)
		}
		path := "/api/admin/users/" + itoa(u.ID) + "/reset"
		want(t, "a link that resets nothing", admin.json("POST", path, map[string]bool{}), http.StatusBadRequest, "nothing_to_reset")
		want(t, "a link for nobody", admin.json("POST", "/api/admin/users/999999/reset", map[string]bool{"pin": true}), http.StatusNotFound, "not_found")
		want(t, "a user issues a link", pennyTab.json("POST", path, map[string]bool{"pin": true}), http.StatusForbidden, "forbidden")
		res := admin.json("POST", path, map[string]bool{"pin": true})
		want(t, "issue a PIN reset link", res, http.StatusCreated, "")
		var link struct {
			Token, URL, Name, Email string
			Password, PIN           bool
			ExpiresAt               time.Time `json:"expires_at"`
		}
		res.decode(t, &link)
		if link.Name != penny.name || link.Email != penny.email || link.Password || !link.PIN ||
			link.URL != "https://login.example.test/reset/"+link.Token || time.Until(link.ExpiresAt) < 23*time.Hour {
			t.Fatalf("reset link %+v", link)
		}
		history, _ := r.st.Logins(t.Context(), u.ID, 5)
		if len(history) == 0 || history[0].Method != "reset_issued" {
			t.Errorf("history after issuing: %+v, want reset_issued first", history)
		}

		anon := r.client()
		res = anon.do("GET", "/api/reset/"+link.Token, "", nil)
		want(t, "open the link", res, http.StatusOK, "")
		var shown struct {
			Name          string
			Password, PIN bool
		}
		res.decode(t, &shown)
		if shown.Name != penny.name || shown.Password || !shown.PIN {
			t.Errorf("the link shows %+v", shown)
		}
		want(t, "a trivial PIN", anon.json("POST", "/api/reset", map[string]string{"token": link.Token, "pin": "123456"}), http.StatusBadRequest, "bad_pin")
		const newPIN = "739251"
		res = anon.json("POST", "/api/reset", map[string]string{"token": link.Token, "pin": newPIN})
		want(t, "set a new PIN", res, http.StatusOK, "")
		want(t, "use the link again", anon.json("POST", "/api/reset", map[string]string{"token": link.Token, "pin": newPIN}), http.StatusNotFound, "reset_not_found")
		want(t, "Penny's session after the reset", pennyTab.do("GET", "/api/me", "", nil), http.StatusUnauthorized, "unauthorized")
		if got, _ := r.st.UserByEmail(t.Context(), penny.email); got.PasswordHash != u.PasswordHash {
			t.Error("a PIN reset changed the password")
		}

		again := r.client()
		want(t, "password", again.json("POST", "/api/login/password", map[string]string{"email": penny.email, "password": penny.password}), http.StatusOK, "")
		want(t, "the old PIN", again.json("POST", "/api/login/pin", map[string]string{"pin": penny.pin}), http.StatusUnauthorized, "wrong_pin")
		want(t, "the new PIN", again.json("POST", "/api/login/pin", map[string]string{"pin": newPIN}), http.StatusOK, "")
		res = again.do("GET", "/api/me", "", nil)
		want(t, "profile", res, http.StatusOK, "")
		if !strings.Contains(string(res.body), `"method":"reset"`) || !strings.Contains(string(res.body), `"method":"reset_issued"`) {
			t.Errorf("the profile's history lacks the reset: %s", res.body)
		}

		// Guessing links: every unknown token is a failure of the address, and the address
		// is refused at the limit even for a real link.
		res = admin.json("POST", path, map[string]bool{"password": true, "pin": true})
		want(t, "issue a second link", res, http.StatusCreated, "")
		res.decode(t, &link)
		guesser := r.client()
		guesser.xff = "198.51.100.20"
		for i := range 4 {
			want(t, fmt.Sprint("guess ", i+1), guesser.do("GET", fmt.Sprint("/api/reset/guess", i), "", nil), http.StatusNotFound, "reset_not_found")
		}
		want(t, "a real link from the guessing address", guesser.do("GET", "/api/reset/"+link.Token, "", nil), http.StatusTooManyRequests, "rate_limited")
		want(t, "using it from there", guesser.json("POST", "/api/reset", map[string]string{"token": link.Token, "pin": "739251", "password": "a new long password"}),
			http.StatusTooManyRequests, "rate_limited")
		owner := r.client()
		owner.xff = "203.0.113.10"
		want(t, "the owner opens it", owner.do("GET", "/api/reset/"+link.Token, "", nil), http.StatusOK, "")
	})
}
