package api_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

func itoa(id match.UserID) string { return strconv.FormatInt(int64(id), 10) }

// TestRateLimits checks the failure limits on the real store: a client is stopped after
// ClientFailures wrong passwords; many clients together stop the password path of one
// account after AccountFailures, while its owner still signs in with face + PIN; and the
// window slides, so nobody is locked out for good.
func TestRateLimits(t *testing.T) {
	if _, err := api.New(api.Options{Store: nil}); err == nil {
		t.Fatal("api.New accepted options without a store")
	}
	forEachStore(t, func(t *testing.T, dsn string) {
		const window = 6 * time.Second
		r := newReplica(t, dsn, newSecrets(t), api.Options{
			TrustProxy: true, ClientFailures: 3, AccountFailures: 5, FailureWindow: window,
		})
		enroll(t, r, amy, store.RoleUser)
		wrong := map[string]string{"email": amy.email, "password": "not her password"}

		// One client: three failures, then refused even with the right password.
		attacker := r.client()
		attacker.xff = "192.0.2.1"
		for i := range 3 {
			want(t, fmt.Sprintf("wrong password %d", i+1), attacker.json("POST", "/api/login/password", wrong), http.StatusUnauthorized, "bad_credentials")
		}
		res := attacker.json("POST", "/api/login/password", map[string]string{"email": amy.email, "password": amy.password})
		want(t, "client over its limit", res, http.StatusTooManyRequests, "rate_limited")
		if res.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}

		// More clients: the account's password path closes after 5 failures in all.
		for i := range 2 {
			c := r.client()
			c.xff = fmt.Sprintf("192.0.2.%d", 10+i)
			want(t, "wrong password from another client", c.json("POST", "/api/login/password", wrong), http.StatusUnauthorized, "bad_credentials")
		}
		lastFailure := time.Now()
		fresh := r.client()
		fresh.xff = "198.51.100.7"
		want(t, "account over its limit", fresh.json("POST", "/api/login/password",
			map[string]string{"email": amy.email, "password": amy.password}), http.StatusTooManyRequests, "rate_limited")

		// Amy herself still signs in with her face and PIN.
		amyAtKiosk := r.client()
		amyAtKiosk.xff = "203.0.113.5"
		if got := last(amyAtKiosk.faceLogin(photo(t, "amy", 4))); got.Status != "recognized" {
			t.Fatalf("face login while the password path is limited: %+v", got)
		}
		want(t, "PIN while the password path is limited", amyAtKiosk.json("POST", "/api/login/pin", map[string]string{"pin": amy.pin}), http.StatusOK, "")

		// Three wrong PINs end a pending session: the next guess needs the face again.
		guesser := r.client()
		guesser.xff = "203.0.113.99"
		if got := last(guesser.faceLogin(photo(t, "amy", 5))); got.Status != "recognized" {
			t.Fatalf("face login: %+v", got)
		}
		for i, pin := range []string{"000001", "000002"} {
			want(t, fmt.Sprintf("wrong PIN %d", i+1), guesser.json("POST", "/api/login/pin", map[string]string{"pin": pin}), http.StatusUnauthorized, "wrong_pin")
		}
		want(t, "third wrong PIN", guesser.json("POST", "/api/login/pin", map[string]string{"pin": "000003"}), http.StatusUnauthorized, "unauthorized")
		want(t, "right PIN after the session ended", guesser.json("POST", "/api/login/pin", map[string]string{"pin": amy.pin}), http.StatusUnauthorized, "unauthorized")

		// The window slides: once the failures are older than it, the password works again.
		time.Sleep(window - time.Since(lastFailure) + 200*time.Millisecond)
		want(t, "password after the window", fresh.json("POST", "/api/login/password",
			map[string]string{"email": amy.email, "password": amy.password}), http.StatusOK, "")
	})
}

// TestAccountLimitCapped checks the ASVS 2.2.1 bound is enforced on the configuration.
func TestAccountLimitCapped(t *testing.T) {
	dsn := "sqlite:" + t.TempDir() + "/f.db"
	sec := newSecrets(t)
	st, err := store.Open(t.Context(), dsn, sec.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = api.New(api.Options{Store: st, Engine: realEngine(t), Pepper: sec.pepper, AccountFailures: 101})
	if err == nil {
		t.Fatal("api.New accepted 101 failures per account and hour")
	}
}

// TestInviteLookups checks that looking up invitations that do not exist counts as failures
// of the address, like wrong passwords: guessing tokens stops at the client limit; looking up
// a real invitation is not counted.
func TestInviteLookups(t *testing.T) {
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{TrustProxy: true, ClientFailures: 5})
	inv, err := api.CreateInvite(t.Context(), r.st, api.InviteOptions{Name: penny.name, Email: penny.email})
	if err != nil {
		t.Fatal(err)
	}
	invitee := r.client()
	invitee.xff = "203.0.113.10"
	for i := range 8 {
		want(t, fmt.Sprint("real invitation ", i+1), invitee.do("GET", "/api/invites/"+inv.Token, "", nil), http.StatusOK, "")
	}
	guesser := r.client()
	guesser.xff = "198.51.100.20"
	for i := range 5 {
		want(t, fmt.Sprint("guessed token ", i+1), guesser.do("GET", "/api/invites/guess"+strconv.Itoa(i), "", nil), http.StatusNotFound, "invite_not_found")
	}
	res := guesser.do("GET", "/api/invites/guess-again", "", nil)
	want(t, "sixth guess", res, http.StatusTooManyRequests, "rate_limited")
	if res.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	want(t, "a real token from the guessing address", guesser.do("GET", "/api/invites/"+inv.Token, "", nil), http.StatusTooManyRequests, "rate_limited")
	want(t, "enrolling from the guessing address", guesser.json("POST", "/api/enroll", map[string]any{"token": "guess", "consent_version": api.ConsentVersion,
		"accept": true, "pin": penny.pin, "password": penny.password}), http.StatusTooManyRequests, "rate_limited")
	want(t, "the invitee still opens it", invitee.do("GET", "/api/invites/"+inv.Token, "", nil), http.StatusOK, "")
}
