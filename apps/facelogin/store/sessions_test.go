package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

func TestSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		ann := mustUser(t, st, "Ann")
		t0 := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
		anon := Session{IDHash: "anon", Stage: StageAnonymous, Client: "Firefox", CreatedAt: t0, LastSeen: t0, ExpiresAt: t0.Add(time.Hour)}
		full := Session{IDHash: "full", UserID: ann.ID, Stage: StageFull, Method: "face+pin", Client: "Chromium", CreatedAt: t0, LastSeen: t0, ExpiresAt: t0.Add(8 * time.Hour)}
		for _, s := range []Session{anon, full} {
			if err := st.CreateSession(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CreateSession(ctx, anon); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate session: got %v, want ErrConflict", err)
		}
		if err := st.CreateSession(ctx, Session{IDHash: "ghost", UserID: 999999, Stage: StageFull, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); !errors.Is(err, ErrNotFound) {
			t.Errorf("session of a missing user: got %v, want ErrNotFound", err)
		}
		if got, err := st.Session(ctx, "anon", t0.Add(time.Minute)); err != nil || !reflect.DeepEqual(got, anon) {
			t.Errorf("Session(anon) = %+v, %v; want %+v", got, err, anon)
		}
		// Absolute expiry.
		if _, err := st.Session(ctx, "anon", t0.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired session: got %v, want ErrNotFound", err)
		}
		// Anonymous to pending: the face names the candidates, nearest first.
		anon.Stage, anon.Method, anon.LastSeen, anon.Candidates = StagePending, "face", t0.Add(2*time.Minute), []match.UserID{ann.ID, 7, 3}
		if err := st.UpdateSession(ctx, anon); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Session(ctx, "anon", t0.Add(3*time.Minute)); !reflect.DeepEqual(got, anon) {
			t.Errorf("after UpdateSession: %+v, want %+v", got, anon)
		}
		if err := st.UpdateSession(ctx, Session{IDHash: "missing", Stage: StageFull, ExpiresAt: t0}); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateSession(missing): got %v, want ErrNotFound", err)
		}
		if err := st.DeleteSession(ctx, "anon"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Session(ctx, "anon", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted session: got %v", err)
		}
		if err := st.DeleteUserSessions(ctx, ann.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Session(ctx, "full", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("DeleteUserSessions left a session: %v", err)
		}

		// Sweeping: idle since before idleBefore, or past the absolute timeout.
		mk := func(id string, last, exp time.Time) {
			t.Helper()
			if err := st.CreateSession(ctx, Session{IDHash: id, Stage: StageAnonymous, CreatedAt: t0, LastSeen: last, ExpiresAt: exp}); err != nil {
				t.Fatal(err)
			}
		}
		now := t0.Add(2 * time.Hour)
		mk("idle", now.Add(-31*time.Minute), now.Add(time.Hour))
		mk("past", now.Add(-time.Minute), now)
		mk("fresh", now.Add(-time.Minute), now.Add(time.Hour))
		n, err := st.DeleteExpiredSessions(ctx, now, now.Add(-30*time.Minute))
		if err != nil || n != 2 {
			t.Errorf("DeleteExpiredSessions = %d, %v; want 2", n, err)
		}
		if _, err := st.Session(ctx, "fresh", now); err != nil {
			t.Errorf("fresh session swept: %v", err)
		}
	})
}
