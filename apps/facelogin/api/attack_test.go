package api_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// signUp invites p and creates the account with PIN and password over HTTP, without face
// data, and returns its id.
func signUp(t *testing.T, r *replica, p person) match.UserID {
	t.Helper()
	inv, err := api.CreateInvite(context.Background(), r.st, api.InviteOptions{Name: p.name, Email: p.email})
	if err != nil {
		t.Fatal(err)
	}
	res := r.client().json("POST", "/api/enroll", map[string]any{"token": inv.Token, "consent_version": api.ConsentVersion,
		"accept": true, "pin": p.pin, "password": p.password})
	want(t, "sign up "+p.email, res, http.StatusCreated, "")
	var created struct{ User struct{ ID int64 } }
	res.decode(t, &created)
	return match.UserID(created.User.ID)
}

// pendingFace stores a pending session naming cands, nearest first, exactly as the login
// WebSocket leaves it after a face match, and returns a client holding its cookie. It
// stands in for the face match where a test is about what follows it (the face match
// itself is tested with real photos in TestJourney and TestFacePause).
func pendingFace(t *testing.T, r *replica, cands ...match.UserID) *client {
	t.Helper()
	var b [32]byte
	rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	now := time.Now()
	err := r.st.CreateSession(context.Background(), store.Session{IDHash: hex.EncodeToString(sum[:]), Stage: store.StagePending,
		Method: "face", Candidates: cands, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	c := r.client()
	u, _ := url.Parse(r.ts.URL)
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "facelogin", Value: token, Path: "/"}})
	return c
}

// pinChecks counts the PINs of a person that were compared: the failed PIN logins in their
// history, and the successful ones.
func pinChecks(t *testing.T, st *store.Store, id match.UserID) (wrong, right int) {
	t.Helper()
	es, err := st.Logins(context.Background(), id, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Method != "face+pin" && e.Method != "password+pin" {
			continue
		}
		if e.Success {
			right++
		} else {
			wrong++
		}
	}
	return wrong, right
}

// tally counts answers by status and error code.
type tally struct {
	mu sync.Mutex
	n  map[string]int
}

func (t *tally) add(res response) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n = map[string]int{}
	}
	t.n[fmt.Sprintf("%d %s", res.status, res.errorCode())]++
}

// TestConcurrentGuesses fires at least 100 concurrent guesses over two replicas on one
// store, on SQLite and on PostgreSQL, and checks that no more than the limits were compared:
// each attempt is reserved in the store before its secret is checked.
func TestConcurrentGuesses(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		sec := newSecrets(t)
		// A long SecretWait: every guess that gets past its reservation is compared, so the
		// counts below are exactly the limits, not fewer because the server was busy.
		opts := api.Options{TrustProxy: true, SecretWait: 5 * time.Minute}
		replicas := []*replica{newReplica(t, dsn, sec, opts), newReplica(t, dsn, sec, opts)}
		a := replicas[0]
		amyID := signUp(t, a, amy)
		pennyID := signUp(t, a, penny)
		raj := person{"Raj", "raj@example.com", "246813", "raj's long password", "raj"}
		rajID := signUp(t, a, raj)

		// 1. One pending session, 100 concurrent PINs over both replicas, one of them right:
		// one check at a time runs, and at most three are compared before the session ends.
		var one tally
		session := pendingFace(t, a, amyID)
		var wg sync.WaitGroup
		for i := range 100 {
			pin := fmt.Sprintf("%06d", 100000+i)
			if i == 50 {
				pin = amy.pin
			}
			wg.Go(func() {
				one.add(session.on(replicas[i%2]).json("POST", "/api/login/pin", map[string]string{"pin": pin}))
			})
		}
		wg.Wait()
		wrong, right := pinChecks(t, a.st, amyID)
		t.Logf("one session, 100 concurrent PINs: %v; compared %d wrong, %d right", one.n, wrong, right)
		if wrong+right == 0 || wrong+right > 3 || one.n["500 internal"] > 0 {
			t.Errorf("one session: %d PINs compared (%d wrong, %d right), answers %v; want 1 to 3 and no 500", wrong+right, wrong, right, one.n)
		}

		// 2. 100 guesses at Penny's PIN from 50 face-matched sessions and 100 addresses: her
		// face sign-in pauses after exactly FacePINFailures compared PINs.
		var many tally
		sessions := make([]*client, 50)
		for i := range sessions {
			sessions[i] = pendingFace(t, a, pennyID)
		}
		for i := range 100 {
			c := sessions[i/2].on(replicas[i%2])
			c.xff = fmt.Sprintf("198.51.100.%d", i+1)
			wg.Go(func() {
				many.add(c.json("POST", "/api/login/pin", map[string]string{"pin": fmt.Sprintf("%06d", 200000+i)}))
			})
		}
		wg.Wait()
		wrong, _ = pinChecks(t, a.st, pennyID)
		t.Logf("50 sessions, 100 PINs: %v; compared %d", many.n, wrong)
		if wrong != api.DefaultFacePINFailures || many.n["500 internal"] > 0 {
			t.Errorf("%d of Penny's PINs compared, want exactly %d; answers %v", wrong, api.DefaultFacePINFailures, many.n)
		}
		// Penny, from a new session: password + PIN still works (the face guesses did not
		// close that path), tells her about the guesses and resumes face sign-in.
		owner := a.client()
		owner.xff = "203.0.113.50"
		want(t, "Penny's password", owner.json("POST", "/api/login/password", map[string]string{"email": penny.email, "password": penny.password}), http.StatusOK, "")
		res := owner.on(replicas[1]).json("POST", "/api/login/pin", map[string]string{"pin": penny.pin})
		want(t, "Penny's PIN after her password", res, http.StatusOK, "")
		var done struct {
			Name       string
			FailedPINs struct{ Count int } `json:"failed_pins"`
		}
		res.decode(t, &done)
		if done.Name != penny.name || done.FailedPINs.Count != api.DefaultFacePINFailures {
			t.Errorf("Penny's sign-in answered %s; want her name and %d failed PINs", res.body, api.DefaultFacePINFailures)
		}

		// 3. 100 concurrent wrong passwords from one address over both replicas: exactly
		// ClientFailures are compared, the others refused before any hashing.
		var fromOne tally
		for i := range 100 {
			c := replicas[i%2].client()
			c.xff = "192.0.2.66"
			wg.Go(func() {
				fromOne.add(c.json("POST", "/api/login/password", map[string]string{"email": raj.email, "password": fmt.Sprint("guess number ", i)}))
			})
		}
		wg.Wait()
		t.Logf("100 passwords from one address: %v", fromOne.n)
		if fromOne.n["401 bad_credentials"] != api.DefaultClientFailures || fromOne.n["429 rate_limited"] != 100-api.DefaultClientFailures {
			t.Errorf("100 passwords from one address: %v; want %d compared and the rest 429", fromOne.n, api.DefaultClientFailures)
		}

		// 4. 100 concurrent wrong passwords from 100 addresses: exactly AccountFailures are
		// compared for Raj's account (20 of his were counted in 3 already).
		var fromMany, nobody tally
		for i := range 100 {
			c := replicas[i%2].client()
			c.xff = fmt.Sprintf("2001:db8::%x", i+1)
			wg.Go(func() {
				fromMany.add(c.json("POST", "/api/login/password", map[string]string{"email": raj.email, "password": fmt.Sprint("other guess ", i)}))
			})
			// The same for an address without an account: it must not answer differently.
			c = replicas[i%2].client()
			c.xff = fmt.Sprintf("2001:db8::1:%x", i+1)
			wg.Go(func() {
				nobody.add(c.json("POST", "/api/login/password", map[string]string{"email": "nobody@example.com", "password": fmt.Sprint("other guess ", i)}))
			})
		}
		wg.Wait()
		t.Logf("100 passwords for Raj from 100 addresses: %v; for an unknown address: %v", fromMany.n, nobody.n)
		if left := api.DefaultAccountFailures - api.DefaultClientFailures; fromMany.n["401 bad_credentials"] != left || fromMany.n["429 rate_limited"] != 100-left {
			t.Errorf("Raj: %v; want %d compared, the rest 429", fromMany.n, left)
		}
		if nobody.n["401 bad_credentials"] != api.DefaultAccountFailures || nobody.n["429 rate_limited"] != 100-api.DefaultAccountFailures {
			t.Errorf("unknown address: %v; want %d answered as wrong, the rest 429 like a known one", nobody.n, api.DefaultAccountFailures)
		}
		known := replicas[0].client()
		known.xff = "192.0.2.200"
		unknown := replicas[1].client()
		unknown.xff = "192.0.2.201"
		k := known.json("POST", "/api/login/password", map[string]string{"email": raj.email, "password": raj.password})
		u := unknown.json("POST", "/api/login/password", map[string]string{"email": "nobody@example.com", "password": raj.password})
		if k.status != http.StatusTooManyRequests || u.status != k.status || errorBody(t, k) != errorBody(t, u) {
			t.Errorf("past the limit, a known and an unknown e-mail answer differently:\n%d %s\n%d %s", k.status, k.body, u.status, u.body)
		}
		// Raj still signs in with face + PIN: the password guesses closed only that path.
		want(t, "Raj's PIN after a face match", pendingFace(t, replicas[1], rajID).json("POST", "/api/login/pin", map[string]string{"pin": raj.pin}), http.StatusOK, "")
	})
}

// errorBody returns an error answer's body without retry_after, which differs by when the
// oldest counted failure was made.
func errorBody(t *testing.T, res response) string {
	t.Helper()
	var e struct{ Error map[string]any }
	res.decode(t, &e)
	delete(e.Error, "retry_after")
	b, _ := json.Marshal(e.Error)
	return string(b)
}

// TestSecretSlots bounds the argon2 work: with one slot and a short wait, concurrent wrong
// passwords are either compared or answered 503 busy with Retry-After, never left waiting,
// and a busy answer leaves no failure counted (nothing was compared).
func TestSecretSlots(t *testing.T) {
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{TrustProxy: true, SecretChecks: 1, SecretWait: 5 * time.Millisecond})
	signUp(t, r, amy)
	var answers tally
	var retry sync.Map
	var wg sync.WaitGroup
	for i := range 30 {
		c := r.client()
		c.xff = fmt.Sprintf("192.0.2.%d", i+1)
		wg.Go(func() {
			res := c.json("POST", "/api/login/password", map[string]string{"email": amy.email, "password": fmt.Sprint("guess ", i)})
			answers.add(res)
			if res.status == http.StatusServiceUnavailable {
				retry.Store(res.header.Get("Retry-After"), true)
			}
		})
	}
	wg.Wait()
	t.Logf("30 concurrent passwords, one argon2 slot: %v", answers.n)
	compared, busy := answers.n["401 bad_credentials"], answers.n["503 busy"]
	if busy == 0 || compared == 0 || compared+busy != 30 {
		t.Fatalf("answers %v; want some compared, some busy, nothing else", answers.n)
	}
	if _, ok := retry.Load("1"); !ok {
		t.Error("busy answers without Retry-After: 1")
	}
	u, err := r.st.UserByEmail(t.Context(), amy.email)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.st.Failures(t.Context(), fmt.Sprintf("account:%d:password", u.ID), time.Now().Add(-time.Hour)); err != nil || n != compared {
		t.Errorf("%d password failures counted (%v), want the %d compared", n, err, compared)
	}
}
