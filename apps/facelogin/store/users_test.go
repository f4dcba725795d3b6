package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

func TestUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		consent := time.Date(2026, 11, 1, 9, 30, 0, 123456789, time.UTC)
		ann, err := st.CreateUser(ctx, User{Name: "Ann", Email: "ann@example.test", Role: RoleAdmin,
			PasswordHash: "$argon2id$pw", PINHash: "$argon2id$pin", ConsentVersion: "v1", ConsentLang: "de", ConsentAt: consent})
		if err != nil {
			t.Fatal(err)
		}
		if ann.ID == 0 || ann.CreatedAt.IsZero() {
			t.Fatalf("CreateUser did not set ID and CreatedAt: %+v", ann)
		}
		bob := mustUser(t, st, "Bob")
		if _, err := st.CreateUser(ctx, User{Name: "Ann 2", Email: "ann@example.test", Role: RoleUser}); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate e-mail: got %v, want ErrConflict", err)
		}
		if _, err := st.CreateUser(ctx, User{Name: "X", Email: "x@example.test", Role: "root"}); err == nil {
			t.Error("unknown role accepted")
		}

		got, err := st.User(ctx, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := ann
		want.ConsentAt = consent.Truncate(time.Microsecond)
		if got != want {
			t.Errorf("User = %+v, want %+v", got, want)
		}
		if got, err := st.UserByEmail(ctx, "bob@example.test"); err != nil || got.ID != bob.ID {
			t.Errorf("UserByEmail = %+v, %v", got, err)
		}
		if _, err := st.User(ctx, 999999); !errors.Is(err, ErrNotFound) {
			t.Errorf("User(missing): got %v, want ErrNotFound", err)
		}
		if _, err := st.UserByEmail(ctx, "nobody@example.test"); !errors.Is(err, ErrNotFound) {
			t.Errorf("UserByEmail(missing): got %v, want ErrNotFound", err)
		}

		// Setting up face sign-in again records the consent given then: version, language, time.
		bob.Name, bob.Role, bob.PINHash = "Aaron", RoleAdmin, "$argon2id$new"
		bob.ConsentVersion, bob.ConsentLang, bob.ConsentAt = "v2", "en", consent.Add(time.Hour).Truncate(time.Microsecond)
		if err := st.UpdateUser(ctx, bob); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.User(ctx, bob.ID); got != bob {
			t.Errorf("after UpdateUser: %+v, want %+v", got, bob)
		}
		dup := bob
		dup.Email = "ann@example.test"
		if err := st.UpdateUser(ctx, dup); !errors.Is(err, ErrConflict) {
			t.Errorf("UpdateUser to a taken e-mail: got %v, want ErrConflict", err)
		}
		if err := st.UpdateUser(ctx, User{ID: 999999, Name: "n", Email: "n@example.test", Role: RoleUser}); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateUser(missing): got %v, want ErrNotFound", err)
		}

		us, err := st.Users(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(us) != 2 || us[0].Name != "Aaron" || us[1].Name != "Ann" {
			t.Errorf("Users not ordered by name: %+v", us)
		}
		if n, err := st.CountAdmins(ctx); err != nil || n != 2 {
			t.Errorf("CountAdmins = %d, %v; want 2", n, err)
		}
		if err := st.DeleteUser(ctx, bob.ID); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteUser(ctx, bob.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("DeleteUser twice: got %v, want ErrNotFound", err)
		}
		if n, _ := st.CountAdmins(ctx); n != 1 {
			t.Errorf("CountAdmins after delete = %d, want 1", n)
		}
		if err := st.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

func TestErasure(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		ann, bob := mustUser(t, st, "Ann"), mustUser(t, st, "Bob")
		for i, u := range []User{ann, bob} {
			if err := st.ReplaceSamples(ctx, u.ID, []match.Descriptor{descriptor(uint64(10 * i)), descriptor(uint64(10*i + 1)), descriptor(uint64(10*i + 2))}); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now()
		if err := st.CreateSession(ctx, Session{IDHash: "s-ann", UserID: ann.ID, Stage: StageFull, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := st.AddLogin(ctx, LoginEvent{UserID: ann.ID, At: now, Method: "face+pin", Client: "test", Success: true}); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{fmt.Sprintf("account:%d", ann.ID), fmt.Sprintf("account:%d:password", ann.ID)} {
			if err := st.AddFailure(ctx, key, now); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CreateInvite(ctx, Invite{TokenHash: "h-ann", Name: "Ann", Email: ann.Email, Role: RoleUser,
			CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), UsedAt: now}); err != nil {
			t.Fatal(err)
		}
		annBlobs := map[int64][]byte{}
		for id, b := range rawBlobs(t, st) {
			annBlobs[id] = b
		}

		if err := st.DeleteSamples(ctx, ann.ID); err != nil {
			t.Fatal(err)
		}
		if n := rawCount(t, st, `select count(*) from face_samples where user_id = $1`, int64(ann.ID)); n != 0 {
			t.Errorf("after DeleteSamples %d face_samples rows of the user remain", n)
		}
		if n := rawCount(t, st, `select count(*) from face_samples where user_id = $1`, int64(bob.ID)); n != 3 {
			t.Errorf("DeleteSamples touched another user: %d rows of bob, want 3", n)
		}
		if u, _ := st.User(ctx, ann.ID); !u.FaceEnrolledAt.IsZero() {
			t.Error("DeleteSamples left FaceEnrolledAt set")
		}
		if ss, err := st.Samples(ctx, ann.ID); err != nil || len(ss) != 0 {
			t.Errorf("Samples after erase = %d, %v", len(ss), err)
		}

		if err := st.DeleteUser(ctx, bob.ID); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteUser(ctx, ann.ID); err != nil {
			t.Fatal(err)
		}
		for table, q := range map[string]string{
			"face_samples": `select count(*) from face_samples`,
			"sessions":     `select count(*) from sessions`,
			"logins":       `select count(*) from logins`,
			"failures":     `select count(*) from failures`,
			"users":        `select count(*) from users`,
			"invites":      `select count(*) from invites`,
		} {
			if n := rawCount(t, st, q); n != 0 {
				t.Errorf("after DeleteUser %d rows remain in %s", n, table)
			}
		}
		// The change feed holds user ids only: its columns are seq, user_id and at.
		cols := 0
		err := st.db.query(ctx, `select * from face_changes`, nil, func(scan func(...any) error) error {
			var seq, uid int64
			var at time.Time
			cols++
			return scan(&seq, &uid, timeCol{&at})
		})
		if err != nil || cols == 0 {
			t.Errorf("face_changes is not (seq, user_id, at): %v", err)
		}

		// On SQLite, deleted pages are zeroed (secure_delete) and the WAL is checkpointed and
		// truncated, so not even the sealed bytes of erased samples stay on disk.
		if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
			for _, p := range []string{path, path + "-wal"} {
				b, err := os.ReadFile(p)
				if err != nil {
					continue
				}
				for id, blob := range annBlobs {
					if bytes.Contains(b, blob[len(blob)-32:]) {
						t.Errorf("%s still holds the sealed bytes of erased sample %d", filepath.Base(p), id)
					}
				}
			}
		}
	})
}
