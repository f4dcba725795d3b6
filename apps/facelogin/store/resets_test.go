package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestResets checks reset links: one open link per person (a new one replaces it), single
// use even under concurrent use, expiry, and that using one sets only the secrets it allows,
// ends every session of the person and lands in their login history.
func TestResets(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		now := time.Now()
		admin, ann := mustUser(t, st, "Admin"), mustUser(t, st, "Ann")
		ann.PasswordHash, ann.PINHash = "$argon2id$old-pw", "$argon2id$old-pin"
		if err := st.UpdateUser(ctx, ann); err != nil {
			t.Fatal(err)
		}
		mk := func(hash string, password, pin bool, expires time.Time) Reset {
			return Reset{TokenHash: hash, UserID: ann.ID, Password: password, PIN: pin, CreatedBy: admin.ID, CreatedAt: now, ExpiresAt: expires}
		}
		if err := st.CreateReset(ctx, Reset{TokenHash: "h-none", UserID: ann.ID, ExpiresAt: now.Add(time.Hour)}); err == nil {
			t.Error("a link that sets nothing was stored")
		}
		if err := st.CreateReset(ctx, Reset{TokenHash: "h-x", UserID: 999999, PIN: true, ExpiresAt: now.Add(time.Hour)}); !errors.Is(err, ErrNotFound) {
			t.Errorf("a link for nobody: %v, want ErrNotFound", err)
		}
		for _, r := range []Reset{mk("h-1", true, true, now.Add(time.Hour)), mk("h-2", false, true, now.Add(time.Hour))} {
			if err := st.CreateReset(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.Reset(ctx, "h-1", now); !errors.Is(err, ErrNotFound) {
			t.Errorf("the replaced link still works: %v", err)
		}
		got, err := st.Reset(ctx, "h-2", now)
		if err != nil || got.UserID != ann.ID || got.Password || !got.PIN || got.CreatedBy != admin.ID {
			t.Fatalf("Reset = %+v, %v", got, err)
		}
		if _, err := st.Reset(ctx, "h-2", now.Add(2*time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Errorf("an expired link still works: %v", err)
		}
		for _, id := range []string{"s-1", "s-2"} {
			if err := st.CreateSession(ctx, Session{IDHash: id, UserID: ann.ID, Stage: StageFull, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}

		// Eight tabs use the link at once: one sets the PIN, the others are refused.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, losses := 0, 0
		for range 8 {
			wg.Go(func() {
				id, err := st.UseReset(ctx, "h-2", now, "$argon2id$new-pw", "$argon2id$new-pin", LoginEvent{Method: "reset", Client: "test", Success: true})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && id == ann.ID:
					wins++
				case errors.Is(err, ErrNotFound):
					losses++
				default:
					t.Errorf("UseReset: %v, %v", id, err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || losses != 7 {
			t.Errorf("concurrent UseReset: %d succeeded, %d refused; want 1 and 7", wins, losses)
		}
		u, _ := st.User(ctx, ann.ID)
		if u.PINHash != "$argon2id$new-pin" || u.PasswordHash != "$argon2id$old-pw" {
			t.Errorf("after a PIN-only reset: password %q, PIN %q", u.PasswordHash, u.PINHash)
		}
		if n := rawCount(t, st, `select count(*) from sessions`); n != 0 {
			t.Errorf("%d sessions left after the reset, want none", n)
		}
		history, err := st.Logins(ctx, ann.ID, 5)
		if err != nil || len(history) != 1 || history[0].Method != "reset" || !history[0].Success {
			t.Errorf("login history after the reset: %+v, %v", history, err)
		}

		// Deleting the person deletes their links.
		if err := st.CreateReset(ctx, mk("h-3", true, false, now.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteUser(ctx, ann.ID); err != nil {
			t.Fatal(err)
		}
		if n := rawCount(t, st, `select count(*) from resets`); n != 0 {
			t.Errorf("%d reset links left after deleting the person", n)
		}
	})
}
