package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/edgeline/edgeline/apps/facelogin/api"
)

// TestOfficeBehindOneAddress checks, on SQLite and on PostgreSQL with two replicas sharing
// the store, that strangers' failures behind one address (an office, a kiosk) never stop a
// person who gives a right password and PIN: in a browser where they signed in before (the
// known device), and in a browser never used before when they give both together; that
// both answer a wrong guess alike and the account's limit holds over both replicas; that an
// attack on the account's password from elsewhere closes the password path only on devices
// the person never used; and that the device's own failures still stop guessing on it.
func TestOfficeBehindOneAddress(t *testing.T) {
	const office = "203.0.113.1"
	forEachStore(t, func(t *testing.T, dsn string) {
		sec := newSecrets(t)
		opts := api.Options{TrustProxy: true, ClientFailures: 3, AccountFailures: 5}
		replicas := []*replica{newReplica(t, dsn, sec, opts), newReplica(t, dsn, sec, opts)}
		a, b := replicas[0], replicas[1]
		signUp(t, a, amy)
		raj := person{"Raj", "raj@example.com", "246813", "raj's long password", "raj"}
		signUp(t, a, raj)
		newcomer := person{"Leonard", "leonard@example.com", "581347", "leonard's long password", "leonard"}
		signUp(t, a, newcomer)
		password := func(p person, pw string) map[string]string {
			return map[string]string{"email": p.email, "password": pw}
		}
		together := func(p person, pw, pin string) map[string]string {
			return map[string]string{"email": p.email, "password": pw, "pin": pin}
		}
		at := func(r *replica, addr string) *client {
			c := r.client()
			c.xff = addr
			return c
		}
		signIn := func(c *client, what string) {
			t.Helper()
			want(t, what+": password", c.json("POST", "/api/login/password", password(amy, amy.password)), http.StatusOK, "")
			want(t, what+": PIN", c.json("POST", "/api/login/pin", map[string]string{"pin": amy.pin}), http.StatusOK, "")
		}
		amysDesk := at(a, office)
		signIn(amysDesk, "first sign-in at her desk")
		want(t, "sign out", amysDesk.json("POST", "/api/logout", struct{}{}), http.StatusNoContent, "")

		// Colleagues behind the same address mistype their passwords, on both replicas: the
		// address's limit.
		for i := range 3 {
			want(t, fmt.Sprintf("colleague's typo %d", i+1), at(replicas[i%2], office).json("POST", "/api/login/password",
				map[string]string{"email": fmt.Sprintf("colleague%d@example.com", i), "password": "typo"}), http.StatusUnauthorized, "bad_credentials")
		}

		type answer struct {
			status     int
			code       string
			scope      string // of a 429
			retryAfter bool
		}
		for _, step := range []struct {
			what string
			c    *client
			body map[string]string
			want answer
		}{
			{"a new browser behind the limited address, password alone", at(b, office), password(newcomer, newcomer.password),
				answer{http.StatusTooManyRequests, "rate_limited", "client", true}},
			{"a new browser behind the limited address, wrong password with a PIN", at(a, office), together(newcomer, "not his password", newcomer.pin),
				answer{http.StatusUnauthorized, "bad_password_or_pin", "", false}},
			{"a new browser behind the limited address, right password, wrong PIN", at(b, office), together(newcomer, newcomer.password, "000000"),
				answer{http.StatusUnauthorized, "bad_password_or_pin", "", false}},
			{"a new browser behind the limited address, PIN that is no PIN", at(a, office), together(newcomer, newcomer.password, "12ab"),
				answer{http.StatusBadRequest, "bad_pin", "", false}},
			{"a new browser behind the limited address, password and PIN together", at(b, office), together(newcomer, newcomer.password, newcomer.pin),
				answer{http.StatusOK, "", "", false}},
			{"an unknown e-mail with a password and a PIN", at(a, office), together(person{email: "nobody@example.com"}, "a guess", "135790"),
				answer{http.StatusUnauthorized, "bad_password_or_pin", "", false}},
		} {
			res := step.c.json("POST", "/api/login/password", step.body)
			want(t, step.what, res, step.want.status, step.want.code)
			var body struct {
				Stage string
				Error struct{ Scope string }
			}
			res.decode(t, &body)
			if body.Error.Scope != step.want.scope {
				t.Errorf("%s: scope %q, want %q", step.what, body.Error.Scope, step.want.scope)
			}
			if got := res.header.Get("Retry-After") != ""; got != step.want.retryAfter {
				t.Errorf("%s: Retry-After %q, want one: %v", step.what, res.header.Get("Retry-After"), step.want.retryAfter)
			}
			if step.want.status == http.StatusOK && body.Stage != "full" {
				t.Errorf("%s: stage %q, want full", step.what, body.Stage)
			}
		}
		signIn(amysDesk, "Amy at her desk behind the limited address")

		// Guesses of Raj's password and PIN together from the limited address, over both
		// replicas: each answered alike, and his account's limit closes the way after five,
		// even for the right secrets, with a time to come back.
		for i := range 5 {
			pw := "not his password"
			if i%2 == 1 {
				pw = raj.password
			}
			want(t, fmt.Sprintf("guess %d at Raj's password and PIN", i+1), at(replicas[i%2], office).json("POST", "/api/login/password",
				together(raj, pw, fmt.Sprintf("10000%d", i))), http.StatusUnauthorized, "bad_password_or_pin")
		}
		res := at(b, office).json("POST", "/api/login/password", together(raj, raj.password, raj.pin))
		want(t, "Raj's right password and PIN past his account's limit", res, http.StatusTooManyRequests, "rate_limited")
		if res.header.Get("Retry-After") == "" {
			t.Error("the account's limit answers without Retry-After")
		}

		// Someone guesses Amy's password from elsewhere until her account's limit.
		for i := range 5 {
			want(t, fmt.Sprintf("guess %d", i+1), at(replicas[i%2], fmt.Sprintf("198.51.100.%d", i+1)).json("POST", "/api/login/password",
				password(amy, "not her password")), http.StatusUnauthorized, "bad_credentials")
		}
		want(t, "Amy's password on a new device after the attack", at(a, "192.0.2.77").json("POST", "/api/login/password",
			password(amy, amy.password)), http.StatusTooManyRequests, "rate_limited")
		signIn(amysDesk, "Amy at her desk after the attack on her password")

		// A forged device cookie is no device.
		forged := at(a, office)
		u, _ := url.Parse(a.ts.URL + "/api/")
		forged.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "facelogin-device", Value: "AAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}})
		want(t, "a forged device cookie", forged.json("POST", "/api/login/password", password(amy, amy.password)), http.StatusTooManyRequests, "rate_limited")

		// Guessing on Amy's own device stops at the device's limit.
		for i := range 3 {
			want(t, fmt.Sprintf("wrong password on her device %d", i+1), amysDesk.json("POST", "/api/login/password",
				password(amy, "not her password")), http.StatusUnauthorized, "bad_credentials")
		}
		want(t, "her device past its own limit", amysDesk.json("POST", "/api/login/password", password(amy, amy.password)), http.StatusTooManyRequests, "rate_limited")
	})
}

// TestTogetherBusy checks that password-and-PIN sign-ins past their address's limit are
// checked a bounded number at a time: with one slot, a burst of them is answered busy with
// Retry-After instead of queueing, and the right secrets work once the burst has passed.
func TestTogetherBusy(t *testing.T) {
	const office = "203.0.113.2"
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{TrustProxy: true, ClientFailures: 1, TogetherChecks: 1})
	signUp(t, r, amy)
	c := r.client()
	c.xff = office
	want(t, "a typo that exhausts the address", c.json("POST", "/api/login/password", map[string]string{"email": "x@example.com", "password": "typo"}),
		http.StatusUnauthorized, "bad_credentials")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		answers = map[string]int{}
	)
	for i := range 8 {
		g := r.client()
		g.xff = office
		wg.Go(func() {
			res := g.json("POST", "/api/login/password", map[string]string{"email": fmt.Sprintf("guess%d@example.com", i), "password": "a guess", "pin": "135790"})
			mu.Lock()
			defer mu.Unlock()
			answers[fmt.Sprint(res.status, " ", res.errorCode())]++
			if res.status == http.StatusServiceUnavailable && res.header.Get("Retry-After") == "" {
				t.Error("busy without Retry-After")
			}
		})
	}
	wg.Wait()
	t.Logf("8 password-and-PIN guesses at once past the address's limit: %v", answers)
	if answers["503 busy"] == 0 || answers["503 busy"]+answers["401 bad_password_or_pin"] != 8 {
		t.Errorf("answers %v; want some 503 busy and the rest 401 bad_password_or_pin", answers)
	}
	want(t, "Amy's password and PIN after the burst", c.json("POST", "/api/login/password",
		map[string]string{"email": amy.email, "password": amy.password, "pin": amy.pin}), http.StatusOK, "")
}

// TestTogetherAddressCap checks, on SQLite and on PostgreSQL with two replicas, that wrong
// password-and-PIN pairs from an exhausted address stop at five times the address's limit
// (so one address cannot close the password of account after account), answered with
// Retry-After and scope "all", while the person at a known device still signs in.
func TestTogetherAddressCap(t *testing.T) {
	const office = "203.0.113.3"
	forEachStore(t, func(t *testing.T, dsn string) {
		sec := newSecrets(t)
		opts := api.Options{TrustProxy: true, ClientFailures: 2}
		replicas := []*replica{newReplica(t, dsn, sec, opts), newReplica(t, dsn, sec, opts)}
		signUp(t, replicas[0], amy)
		at := func(i int) *client {
			c := replicas[i%2].client()
			c.xff = office
			return c
		}
		desk := at(0)
		want(t, "Amy at her desk", desk.json("POST", "/api/login/password", map[string]string{"email": amy.email, "password": amy.password, "pin": amy.pin}), http.StatusOK, "")
		for i := range 2 {
			want(t, fmt.Sprintf("typo %d", i+1), at(i).json("POST", "/api/login/password",
				map[string]string{"email": fmt.Sprintf("colleague%d@example.com", i), "password": "typo"}), http.StatusUnauthorized, "bad_credentials")
		}
		for i := range 10 {
			want(t, fmt.Sprintf("wrong pair %d", i+1), at(i).json("POST", "/api/login/password",
				map[string]string{"email": fmt.Sprintf("target%d@example.com", i), "password": "a guess", "pin": "135790"}), http.StatusUnauthorized, "bad_password_or_pin")
		}
		res := at(1).json("POST", "/api/login/password", map[string]string{"email": amy.email, "password": amy.password, "pin": amy.pin})
		want(t, "a right pair from a new browser past the cap", res, http.StatusTooManyRequests, "rate_limited")
		var body struct{ Error struct{ Scope string } }
		res.decode(t, &body)
		if body.Error.Scope != "all" || res.header.Get("Retry-After") == "" {
			t.Errorf("past the cap: scope %q, Retry-After %q; want all and a time", body.Error.Scope, res.header.Get("Retry-After"))
		}
		want(t, "Amy at her desk past the cap", desk.on(replicas[1]).json("POST", "/api/login/password",
			map[string]string{"email": amy.email, "password": amy.password, "pin": amy.pin}), http.StatusOK, "")
	})
}
