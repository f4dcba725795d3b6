package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// pending stores a pending face session with the given candidates.
func pending(t *testing.T, st *Store, id string, at time.Time, cands ...match.UserID) {
	t.Helper()
	err := st.CreateSession(context.Background(), Session{IDHash: id, Stage: StagePending, Method: "face", Candidates: cands,
		CreatedAt: at, LastSeen: at, ExpiresAt: at.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPINCheckOneAtATime fires 100 concurrent checks at one pending session from two
// replicas: exactly one may run; the session is free again once it ends.
func TestPINCheckOneAtATime(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		keys := keyring(t, newKey(t))
		replicas := []*Store{open(t, dsn, keys), open(t, dsn, keys)}
		ann := mustUser(t, replicas[0], "Ann")
		now := time.Now()
		pending(t, replicas[0], "s1", now, ann.ID)
		opts := PINCheckOptions{Session: "s1", At: now, Hold: time.Minute, Candidates: []match.UserID{ann.ID}, FaceLimit: 5,
			Limits: []Limit{{Key: "session:s1", Max: 100, Since: now.Add(-time.Hour)}}}

		var mu sync.Mutex
		var won []PINCheck
		running := 0
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() {
				c, err := replicas[i%2].BeginPINCheck(ctx, opts)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won = append(won, c)
				case errors.Is(err, ErrCheckRunning):
					running++
				default:
					t.Errorf("BeginPINCheck: %v", err)
				}
			})
		}
		wg.Wait()
		if len(won) != 1 || running != 99 {
			t.Fatalf("100 concurrent checks of one session: %d began, %d refused as running; want 1 and 99", len(won), running)
		}
		if n := rawCount(t, replicas[0], `select count(*) from failures where key = $1`, "session:s1"); n != 1 {
			t.Errorf("%d failures recorded, want 1 (refused checks record nothing)", n)
		}
		if err := replicas[1].EndPINCheck(ctx, won[0], 0); err != nil {
			t.Fatal(err)
		}
		if _, err := replicas[0].BeginPINCheck(ctx, opts); err != nil {
			t.Errorf("a check after the first ended: %v", err)
		}
		// A claim whose replica died expires after Hold.
		later := opts
		later.At = now.Add(2 * time.Minute)
		if _, err := replicas[0].BeginPINCheck(ctx, later); err != nil {
			t.Errorf("a check after the hold of an unended one: %v", err)
		}
		for _, tc := range []struct {
			name    string
			session string
		}{{"missing session", "nope"}, {"full session", "full"}} {
			if tc.session == "full" {
				if err := replicas[0].CreateSession(ctx, Session{IDHash: "full", UserID: ann.ID, Stage: StageFull, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			o := opts
			o.Session = tc.session
			if _, err := replicas[0].BeginPINCheck(ctx, o); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: got %v, want ErrNotFound", tc.name, err)
			}
		}
	})
}

// TestPINCheckFaceLimit guesses PINs after face matches of Ann in 60 concurrent sessions over
// two replicas: exactly FaceLimit checks may include her, the last pauses her face sign-in,
// and her look-alike Bob, a candidate of the same sessions, gets back the failures once his
// PIN is the one given.
func TestPINCheckFaceLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		keys := keyring(t, newKey(t))
		replicas := []*Store{open(t, dsn, keys), open(t, dsn, keys)}
		ann, bob := mustUser(t, replicas[0], "Ann"), mustUser(t, replicas[0], "Bob")
		now := time.Now()
		const limit, sessions = 5, 60
		for i := range sessions {
			pending(t, replicas[0], fmt.Sprint("s", i), now, ann.ID)
		}
		var mu sync.Mutex
		var withAnn []PINCheck
		paused := 0
		var wg sync.WaitGroup
		for i := range sessions {
			wg.Go(func() {
				c, err := replicas[i%2].BeginPINCheck(ctx, PINCheckOptions{Session: fmt.Sprint("s", i), At: now, Hold: time.Minute,
					Candidates: []match.UserID{ann.ID}, FaceLimit: limit})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("BeginPINCheck: %v", err)
				case len(c.Candidates) == 0:
					paused++
				default:
					withAnn = append(withAnn, c)
				}
			})
		}
		wg.Wait()
		if len(withAnn) != limit || paused != sessions-limit {
			t.Fatalf("%d concurrent checks: %d included Ann, %d found her paused; want %d and %d", sessions, len(withAnn), paused, limit, sessions-limit)
		}
		for _, c := range withAnn {
			if err := replicas[1].EndPINCheck(ctx, c, 0); err != nil {
				t.Fatal(err)
			}
		}
		u, err := replicas[0].User(ctx, ann.ID)
		if err != nil || u.FacePINFailures != limit || u.FacePausedAt.IsZero() {
			t.Fatalf("Ann after %d wrong PINs: failures %d, paused at %v (%v); want %d and a time", limit, u.FacePINFailures, u.FacePausedAt, err, limit)
		}
		// A password sign-in resumes face sign-in.
		if err := replicas[1].ResumeFace(ctx, ann.ID); err != nil {
			t.Fatal(err)
		}
		if u, _ := replicas[0].User(ctx, ann.ID); u.FacePINFailures != 0 || !u.FacePausedAt.IsZero() {
			t.Fatalf("after ResumeFace: failures %d, paused at %v", u.FacePINFailures, u.FacePausedAt)
		}

		// Ann and Bob are both candidates; four wrong PINs count for both.
		check := func(session string, cands ...match.UserID) PINCheck {
			t.Helper()
			pending(t, replicas[0], session, now, cands...)
			c, err := replicas[0].BeginPINCheck(ctx, PINCheckOptions{Session: session, At: now, Hold: time.Minute, Candidates: cands, FaceLimit: limit,
				Limits: []Limit{{Key: "client:192.0.2.1", Max: 100, Since: now.Add(-time.Hour)}}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Candidates, cands) {
				t.Fatalf("candidates %v, want %v", c.Candidates, cands)
			}
			return c
		}
		for i := range 4 {
			if err := replicas[0].EndPINCheck(ctx, check(fmt.Sprint("ab", i), ann.ID, bob.ID), 0); err != nil {
				t.Fatal(err)
			}
		}
		// Bob's PIN: Bob starts again from zero, Ann gets her reserved failure back, and the
		// client's failure is released.
		if err := replicas[1].EndPINCheck(ctx, check("bob", ann.ID, bob.ID), bob.ID); err != nil {
			t.Fatal(err)
		}
		a, _ := replicas[0].User(ctx, ann.ID)
		b, _ := replicas[0].User(ctx, bob.ID)
		if a.FacePINFailures != 4 || b.FacePINFailures != 0 || !a.FacePausedAt.IsZero() {
			t.Errorf("after Bob's right PIN: Ann %d failures (paused %v), Bob %d; want 4 and 0", a.FacePINFailures, a.FacePausedAt, b.FacePINFailures)
		}
		if n := rawCount(t, replicas[0], `select count(*) from failures where key = $1`, "client:192.0.2.1"); n != 4 {
			t.Errorf("client failures %d, want 4", n)
		}
		// A cancelled check (nothing compared) leaves no trace.
		if err := replicas[0].CancelPINCheck(ctx, check("cancelled", ann.ID)); err != nil {
			t.Fatal(err)
		}
		if a, _ := replicas[0].User(ctx, ann.ID); a.FacePINFailures != 4 || !a.FacePausedAt.IsZero() {
			t.Errorf("after a cancelled check: Ann %d failures, paused %v; want 4, not paused", a.FacePINFailures, a.FacePausedAt)
		}
		// The fifth wrong PIN pauses Ann: she is no longer a candidate; Bob still is.
		if err := replicas[0].EndPINCheck(ctx, check("fifth", ann.ID), 0); err != nil {
			t.Fatal(err)
		}
		pending(t, replicas[0], "after", now, ann.ID, bob.ID)
		c, err := replicas[1].BeginPINCheck(ctx, PINCheckOptions{Session: "after", At: now, Hold: time.Minute, Candidates: []match.UserID{ann.ID, bob.ID}, FaceLimit: limit})
		if err != nil || !slices.Equal(c.Candidates, []match.UserID{bob.ID}) {
			t.Errorf("check after Ann's pause: candidates %v, %v; want only Bob", c.Candidates, err)
		}
		// Without FaceLimit (a PIN after the password) the pause does not matter.
		pending(t, replicas[0], "password", now)
		c, err = replicas[1].BeginPINCheck(ctx, PINCheckOptions{Session: "password", At: now, Hold: time.Minute, Candidates: []match.UserID{ann.ID}})
		if err != nil || !slices.Equal(c.Candidates, []match.UserID{ann.ID}) {
			t.Errorf("PIN check after the password while face sign-in is paused: %v, %v", c.Candidates, err)
		}
	})
}

func TestFailedPINs(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		ann := mustUser(t, st, "Ann")
		t0 := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
		if n, es, err := st.FailedPINs(ctx, ann.ID, 10); err != nil || n != 0 || len(es) != 0 {
			t.Fatalf("FailedPINs of a new account = %d, %v, %v", n, es, err)
		}
		add := func(min int, method string, ok bool) LoginEvent {
			e := LoginEvent{UserID: ann.ID, At: t0.Add(time.Duration(min) * time.Minute), Method: method, Client: fmt.Sprint("c", min), Success: ok}
			if err := st.AddLogin(ctx, e); err != nil {
				t.Fatal(err)
			}
			return e
		}
		add(0, "face+pin", false) // before the last success: told already
		add(1, "password+pin", true)
		add(2, "face+pin", false)
		add(3, "password", false) // a wrong password is not a PIN
		e4 := add(4, "password+pin", false)
		e5 := add(5, "face+pin", false)
		n, es, err := st.FailedPINs(ctx, ann.ID, 2)
		if err != nil || n != 3 || !slices.Equal(es, []LoginEvent{e5, e4}) {
			t.Errorf("FailedPINs = %d, %+v, %v; want 3, the newest two", n, es, err)
		}
		add(6, "face+pin", true)
		if n, _, _ := st.FailedPINs(ctx, ann.ID, 2); n != 0 {
			t.Errorf("after a success: %d failed PINs, want 0", n)
		}
	})
}
