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
		dup := live
		dup.Email = "cleo2@example.test"
		if err := st.CreateInvite(ctx, dup); !errors.Is(err, ErrConflict) {
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

// TestInviteOnePerEmail checks a new invite replaces the open one to the same e-mail,
// revoking deletes it, an invite can be read by e-mail to send it again, and an invite to
// someone who has an account by now is closed: not listed, not usable, pruned.
func TestInviteOnePerEmail(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		now := time.Now()
		mk := func(hash, email string) Invite {
			return Invite{TokenHash: hash, Name: "Cleo", Email: email, Role: RoleUser, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		}
		for _, inv := range []Invite{mk("h-1", "cleo@example.test"), mk("h-2", "cleo@example.test"), mk("h-dan", "dan@example.test")} {
			if err := st.CreateInvite(ctx, inv); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.Invite(ctx, "h-1", now); !errors.Is(err, ErrNotFound) {
			t.Errorf("the replaced invite still works: %v", err)
		}
		if got, err := st.InviteByEmail(ctx, "cleo@example.test"); err != nil || got.TokenHash != "h-2" {
			t.Errorf("InviteByEmail = %+v, %v; want h-2", got, err)
		}
		if list, _ := st.Invites(ctx, now); len(list) != 2 {
			t.Errorf("Invites = %+v, want h-2 and h-dan", list)
		}
		if err := st.RevokeInvite(ctx, "cleo@example.test"); err != nil {
			t.Fatal(err)
		}
		if err := st.RevokeInvite(ctx, "cleo@example.test"); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking twice: %v, want ErrNotFound", err)
		}
		if _, err := st.Invite(ctx, "h-2", now); !errors.Is(err, ErrNotFound) {
			t.Errorf("a revoked invite still works: %v", err)
		}

		// Dan enrolls some other way (the bootstrap token): his open invite closes.
		if _, err := st.CreateUser(ctx, User{Name: "Dan", Email: "dan@example.test", Role: RoleUser}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Invite(ctx, "h-dan", now); !errors.Is(err, ErrNotFound) {
			t.Errorf("an invite to an enrolled e-mail still works: %v", err)
		}
		if _, err := st.InviteByEmail(ctx, "dan@example.test"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an invite to an enrolled e-mail can be sent again: %v", err)
		}
		if list, _ := st.Invites(ctx, now); len(list) != 0 {
			t.Errorf("Invites = %+v, want none", list)
		}
		if err := st.CreateInvite(ctx, mk("h-eve", "eve@example.test")); err != nil {
			t.Fatal(err)
		}
		if n := rawCount(t, st, `select count(*) from invites where token_hash = 'h-dan'`); n != 0 {
			t.Errorf("the closed invite to an enrolled e-mail is still stored")
		}

		// The public URL a server recorded.
		if _, err := st.Setting(ctx, SettingPublicURL); !errors.Is(err, ErrNotFound) {
			t.Errorf("unset setting: %v, want ErrNotFound", err)
		}
		for _, u := range []string{"http://127.0.0.1:9", "https://login.example.test"} {
			if err := st.SetSetting(ctx, SettingPublicURL, u); err != nil {
				t.Fatal(err)
			}
			if got, err := st.Setting(ctx, SettingPublicURL); got != u || err != nil {
				t.Errorf("Setting = %q, %v; want %q", got, err, u)
			}
		}
	})
}
