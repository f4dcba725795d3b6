package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestInvites(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		admin := mustUser(t, st, "Admin")
		live := Invite{TokenHash: "h-live", Name: "Cleo", Email: "cleo@example.test", Role: RoleUser,
			CreatedBy: admin.ID, CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)}
		boot := Invite{TokenHash: "h-boot", Name: "First", Email: "first@example.test", Role: RoleAdmin,
			CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(time.Hour)}
		old := Invite{TokenHash: "h-old", Name: "Old", Email: "old@example.test", Role: RoleUser,
			CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-time.Minute)}
		for _, inv := range []Invite{live, boot, old} {
			if err := st.CreateInvite(ctx, inv); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CreateInvite(ctx, live); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate token: got %v, want ErrConflict", err)
		}
		got, err := st.Invite(ctx, "h-live", now)
		if err != nil || got != live {
			t.Errorf("Invite = %+v, %v; want %+v", got, err, live)
		}
		if got, _ := st.Invite(ctx, "h-boot", now); got.CreatedBy != 0 {
			t.Errorf("bootstrap invite CreatedBy = %d, want 0", got.CreatedBy)
		}
		if _, err := st.Invite(ctx, "h-old", now); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired invite: got %v, want ErrNotFound", err)
		}
		if err := st.UseInvite(ctx, "h-old", now); !errors.Is(err, ErrNotFound) {
			t.Errorf("UseInvite(expired): got %v, want ErrNotFound", err)
		}
		list, err := st.Invites(ctx, now)
		if err != nil || len(list) != 2 || list[0].TokenHash != "h-boot" || list[1].TokenHash != "h-live" {
			t.Errorf("Invites = %+v, %v; want h-boot, h-live", list, err)
		}

		// Single use, even when several requests race for the same invite.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, losses := 0, 0
		for range 8 {
			wg.Go(func() {
				err := st.UseInvite(ctx, "h-live", now)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, ErrNotFound):
					losses++
				default:
					t.Errorf("UseInvite: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || losses != 7 {
			t.Errorf("concurrent UseInvite: %d succeeded, %d refused; want 1 and 7", wins, losses)
		}
		if _, err := st.Invite(ctx, "h-live", now); !errors.Is(err, ErrNotFound) {
			t.Errorf("used invite still readable: %v", err)
		}
		if list, _ := st.Invites(ctx, now); len(list) != 1 {
			t.Errorf("Invites after use = %+v, want only h-boot", list)
		}

		// Expired invites are forgotten 30 days after expiry, when the next invite is made.
		later := old.ExpiresAt.Add(inviteRetention + time.Minute)
		if err := st.CreateInvite(ctx, Invite{TokenHash: "h-next", Name: "Dan", Email: "dan@example.test", Role: RoleUser,
			CreatedAt: later, ExpiresAt: later.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if n := rawCount(t, st, `select count(*) from invites where token_hash = 'h-old'`); n != 0 {
			t.Errorf("invite expired over 30 days ago still stored")
		}
		if n := rawCount(t, st, `select count(*) from invites`); n != 3 {
			t.Errorf("%d invites stored, want 3 (h-live, h-boot, h-next)", n)
		}
	})
}
