package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/seal"
	"github.com/edgeline/edgeline/apps/facelogin/store/storetest"
)

const postgresSkip = storetest.SkipMessage

// forEachStore runs fn against a fresh SQLite file and a fresh PostgreSQL schema.
func forEachStore(t *testing.T, fn func(t *testing.T, dsn string)) {
	storetest.ForEachStore(t, "facelogin_test_", fn)
}

// postgresSchema returns a DSN of a fresh schema on the test server, dropped after the test.
func postgresSchema(tb testing.TB) string {
	tb.Helper()
	return storetest.PostgresSchema(tb, "facelogin_test_")
}

func open(tb testing.TB, dsn string, keys *seal.Keyring) *sqlStore {
	tb.Helper()
	st, err := Open(context.Background(), dsn, keys)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	return st.(*sqlStore)
}

func newKey(tb testing.TB) seal.Key {
	tb.Helper()
	k, err := seal.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func keyring(tb testing.TB, keys ...seal.Key) *seal.Keyring {
	tb.Helper()
	r, err := seal.New(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// descriptor returns a descriptor shaped like dlib's (components within about ±0.3).
func descriptor(seed uint64) match.Descriptor {
	r := mrand.New(mrand.NewPCG(seed, 1))
	var d match.Descriptor
	for i := range d {
		d[i] = float32(r.NormFloat64() * 0.1)
	}
	return d
}

func mustUser(tb testing.TB, st Store, name string) User {
	tb.Helper()
	u, err := st.CreateUser(context.Background(), User{Name: name, Email: strings.ToLower(name) + "@example.test", Role: RoleUser})
	if err != nil {
		tb.Fatalf("CreateUser %s: %v", name, err)
	}
	return u
}

// rawCount counts rows of a table with a condition, bypassing the Store interface.
func rawCount(t *testing.T, st *sqlStore, q string, args ...any) int {
	t.Helper()
	var n int64
	if err := st.d.one(context.Background(), q, args, &n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return int(n)
}

// rawBlobs returns the sealed column of every face_samples row.
func rawBlobs(t *testing.T, st *sqlStore) map[int64][]byte {
	t.Helper()
	out := map[int64][]byte{}
	err := st.d.query(context.Background(), `select id, sealed from face_samples`, nil, func(scan func(...any) error) error {
		var id int64
		var b []byte
		err := scan(&id, &b)
		out[id] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func migrationsFor(dsn string) []migration {
	if strings.HasPrefix(dsn, "sqlite:") {
		return sqliteMigrations
	}
	return postgresMigrations
}

func TestUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		consent := time.Date(2026, 11, 1, 9, 30, 0, 123456789, time.UTC)
		ann, err := st.CreateUser(ctx, User{Name: "Ann", Email: "ann@example.test", Role: RoleAdmin,
			PasswordHash: "$argon2id$pw", PINHash: "$argon2id$pin", ConsentVersion: "v1", ConsentAt: consent})
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

		bob.Name, bob.Role, bob.PINHash = "Aaron", RoleAdmin, "$argon2id$new"
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

func TestSamples(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		ann, bob := mustUser(t, st, "Ann"), mustUser(t, st, "Bob")
		annDs := []match.Descriptor{descriptor(1), descriptor(2), descriptor(3)}
		bobDs := []match.Descriptor{descriptor(4), descriptor(5), descriptor(6), descriptor(7)}
		if err := st.ReplaceSamples(ctx, ann.ID, annDs); err != nil {
			t.Fatal(err)
		}
		if err := st.ReplaceSamples(ctx, bob.ID, bobDs); err != nil {
			t.Fatal(err)
		}
		if err := st.ReplaceSamples(ctx, 999999, annDs); !errors.Is(err, ErrNotFound) {
			t.Errorf("ReplaceSamples(missing user): got %v, want ErrNotFound", err)
		}
		ss, err := st.Samples(ctx, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) != 3 {
			t.Fatalf("Samples = %d, want 3", len(ss))
		}
		for i, s := range ss {
			if s.UserID != ann.ID || s.Descriptor != annDs[i] || s.ID == 0 || s.CreatedAt.IsZero() {
				t.Errorf("sample %d = {ID %d, User %d, CreatedAt %v}, descriptor equal %v", i, s.ID, s.UserID, s.CreatedAt, s.Descriptor == annDs[i])
			}
		}
		if u, _ := st.User(ctx, ann.ID); u.FaceEnrolledAt.IsZero() {
			t.Error("ReplaceSamples did not set FaceEnrolledAt")
		}

		// Replacing drops the old samples.
		if err := st.ReplaceSamples(ctx, ann.ID, annDs[:1]); err != nil {
			t.Fatal(err)
		}
		all, err := st.AllSamples(ctx)
		if err != nil {
			t.Fatal(err)
		}
		per := map[match.UserID][]match.Descriptor{}
		for _, s := range all {
			per[s.UserID] = append(per[s.UserID], s.Descriptor)
		}
		if len(all) != 5 || len(per[ann.ID]) != 1 || per[ann.ID][0] != annDs[0] || len(per[bob.ID]) != 4 {
			t.Errorf("AllSamples: %d samples, ann %d, bob %d; want 5, 1, 4", len(all), len(per[ann.ID]), len(per[bob.ID]))
		}
		if n := rawCount(t, st, `select count(*) from face_samples where user_id = $1`, int64(ann.ID)); n != 1 {
			t.Errorf("face_samples rows of ann after replace = %d, want 1", n)
		}
	})
}

// TestNoPlaintextAtRest checks the sealed column, and on SQLite the database files, never
// contain a descriptor's float bytes.
func TestNoPlaintextAtRest(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		u := mustUser(t, st, "Ann")
		ds := []match.Descriptor{descriptor(11), descriptor(12), descriptor(13)}
		if err := st.ReplaceSamples(ctx, u.ID, ds); err != nil {
			t.Fatal(err)
		}
		var files [][]byte
		if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
			for _, p := range []string{path, path + "-wal"} {
				if b, err := os.ReadFile(p); err == nil {
					files = append(files, b)
				}
			}
		}
		blobs := rawBlobs(t, st)
		if len(blobs) != len(ds) {
			t.Fatalf("%d rows, want %d", len(blobs), len(ds))
		}
		for _, d := range ds {
			plain := encodeDescriptor(d)
			// Any 16-byte run of the plaintext (four components) would betray it.
			for off := 0; off+16 <= len(plain); off += 16 {
				w := plain[off : off+16]
				for id, b := range blobs {
					if bytes.Contains(b, w) {
						t.Fatalf("sample %d's sealed column holds plaintext bytes %d..%d", id, off, off+16)
					}
				}
				for i, f := range files {
					if bytes.Contains(f, w) {
						t.Fatalf("database file %d holds plaintext descriptor bytes", i)
					}
				}
			}
		}
		for id, b := range blobs {
			if kid, err := seal.KeyID(b); err != nil || kid != st.keys.Primary() {
				t.Errorf("sample %d: key id %q, %v", id, kid, err)
			}
		}
	})
}

// TestBlobBoundToRow moves sealed blobs between rows, as an attacker with write access to
// the database could, and expects them not to open.
func TestBlobBoundToRow(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		ann, bob := mustUser(t, st, "Ann"), mustUser(t, st, "Bob")
		if err := st.ReplaceSamples(ctx, ann.ID, []match.Descriptor{descriptor(1)}); err != nil {
			t.Fatal(err)
		}
		if err := st.ReplaceSamples(ctx, bob.ID, []match.Descriptor{descriptor(2), descriptor(3)}); err != nil {
			t.Fatal(err)
		}
		annS, _ := st.Samples(ctx, ann.ID)
		bobS, _ := st.Samples(ctx, bob.ID)
		blobs := rawBlobs(t, st)

		// Ann's blob into Bob's first row: another user.
		if _, err := st.d.exec(ctx, `update face_samples set sealed = $1 where id = $2`, blobs[annS[0].ID], bobS[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Samples(ctx, bob.ID); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("blob moved to another user: got %v, want seal.ErrOpen", err)
		}
		if _, err := st.AllSamples(ctx); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("AllSamples with a moved blob: got %v, want seal.ErrOpen", err)
		}
		// Bob's second blob into his first row: same user, another sample.
		if _, err := st.d.exec(ctx, `update face_samples set sealed = $1 where id = $2`, blobs[bobS[1].ID], bobS[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Samples(ctx, bob.ID); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("blob moved to another sample: got %v, want seal.ErrOpen", err)
		}
		// The untouched row still opens.
		if ss, err := st.Samples(ctx, ann.ID); err != nil || ss[0].Descriptor != descriptor(1) {
			t.Errorf("untouched sample: %v", err)
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
		err := st.d.query(ctx, `select * from face_changes`, nil, func(scan func(...any) error) error {
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

func TestRotateKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		oldKey, newK := newKey(t), newKey(t)
		st := open(t, dsn, keyring(t, oldKey))
		var want []match.Descriptor
		for i := range 3 {
			u := mustUser(t, st, fmt.Sprintf("User%d", i))
			ds := []match.Descriptor{descriptor(uint64(100 + 3*i)), descriptor(uint64(101 + 3*i)), descriptor(uint64(102 + 3*i))}
			if err := st.ReplaceSamples(ctx, u.ID, ds); err != nil {
				t.Fatal(err)
			}
			want = append(want, ds...)
		}
		st.Close()

		// Step 1: the new key goes first, the old one stays to open existing blobs.
		both := open(t, dsn, keyring(t, newK, oldKey))
		n, err := both.RotateKey(ctx)
		if err != nil || n != len(want) {
			t.Fatalf("RotateKey = %d, %v; want %d", n, err, len(want))
		}
		for id, b := range rawBlobs(t, both) {
			if kid, _ := seal.KeyID(b); kid != newK.ID {
				t.Errorf("sample %d still sealed with %q", id, kid)
			}
		}
		if n, err := both.RotateKey(ctx); err != nil || n != 0 {
			t.Errorf("second RotateKey = %d, %v; want 0", n, err)
		}
		both.Close()

		// Step 2: the old key is removed; everything still opens.
		onlyNew := open(t, dsn, keyring(t, newK))
		all, err := onlyNew.AllSamples(ctx)
		if err != nil {
			t.Fatalf("AllSamples with only the new key: %v", err)
		}
		if len(all) != len(want) {
			t.Fatalf("%d samples, want %d", len(all), len(want))
		}
		for i, s := range all {
			if s.Descriptor != want[i] {
				t.Errorf("sample %d changed by rotation", i)
			}
		}
		// And the old key alone no longer opens anything.
		onlyOld := open(t, dsn, keyring(t, oldKey))
		if _, err := onlyOld.AllSamples(ctx); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("old key after rotation: got %v, want seal.ErrOpen", err)
		}
		if _, err := onlyOld.RotateKey(ctx); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("RotateKey without the sealing key: got %v, want seal.ErrOpen", err)
		}
	})
}

func TestRotateKeyBatches(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "facelogin.db")
	ctx := context.Background()
	oldKey, newK := newKey(t), newKey(t)
	st := open(t, dsn, keyring(t, oldKey))
	total := 0
	for i := range rotateBatch/5 + 3 {
		u := mustUser(t, st, fmt.Sprintf("User%03d", i))
		ds := make([]match.Descriptor, 5)
		for j := range ds {
			ds[j] = descriptor(uint64(5*i + j))
		}
		if err := st.ReplaceSamples(ctx, u.ID, ds); err != nil {
			t.Fatal(err)
		}
		total += len(ds)
	}
	rot := open(t, dsn, keyring(t, newK, oldKey))
	if n, err := rot.RotateKey(ctx); err != nil || n != total {
		t.Fatalf("RotateKey over %d samples (batch %d) = %d, %v", total, rotateBatch, n, err)
	}
	if all, err := open(t, dsn, keyring(t, newK)).AllSamples(ctx); err != nil || len(all) != total {
		t.Fatalf("after rotation: %d samples, %v", len(all), err)
	}
}

func TestMigrations(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		keys := keyring(t, newKey(t))
		first := open(t, dsn, keys)
		u := mustUser(t, first, "Ann")
		first.Close()
		// Opening again applies nothing and keeps the data.
		again := open(t, dsn, keys)
		if _, err := again.User(ctx, u.ID); err != nil {
			t.Errorf("data lost on reopen: %v", err)
		}
		steps := migrationsFor(dsn)
		if n := rawCount(t, again, `select count(*) from schema_migrations`); n != len(steps) {
			t.Errorf("schema_migrations has %d rows, want %d", n, len(steps))
		}
		// A schema newer than this program is refused rather than used.
		future := int64(steps[len(steps)-1].version + 1)
		if _, err := again.d.exec(ctx, `insert into schema_migrations (version, name) values ($1, 'from the future')`, future); err != nil {
			t.Fatal(err)
		}
		if st, err := Open(ctx, dsn, keys); err == nil {
			st.Close()
			t.Error("Open accepted a schema newer than it knows")
		} else if !strings.Contains(err.Error(), "newer") {
			t.Errorf("Open on a newer schema: %v", err)
		}
	})
}

// TestConcurrentOpen starts two replicas on one empty database at the same time, as two pods
// of a deployment do; both must come up on one schema.
func TestConcurrentOpen(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		keys := keyring(t, newKey(t))
		const replicas = 4
		stores := make([]Store, replicas)
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i := range replicas {
			wg.Go(func() { stores[i], errs[i] = Open(ctx, dsn, keys) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("replica %d: %v", i, err)
			}
			t.Cleanup(func() { stores[i].Close() })
		}
		u := mustUser(t, stores[0], "Ann")
		if err := stores[0].ReplaceSamples(ctx, u.ID, []match.Descriptor{descriptor(1)}); err != nil {
			t.Fatal(err)
		}
		ss, err := stores[replicas-1].Samples(ctx, u.ID)
		if err != nil || len(ss) != 1 {
			t.Errorf("other replica reads %d samples, %v", len(ss), err)
		}
		if n := rawCount(t, stores[1].(*sqlStore), `select count(*) from schema_migrations`); n != len(migrationsFor(dsn)) {
			t.Errorf("schema_migrations has %d rows after concurrent opens", n)
		}
	})
}

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
		if got, err := st.Session(ctx, "anon", t0.Add(time.Minute)); err != nil || got != anon {
			t.Errorf("Session(anon) = %+v, %v; want %+v", got, err, anon)
		}
		// Absolute expiry.
		if _, err := st.Session(ctx, "anon", t0.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired session: got %v, want ErrNotFound", err)
		}
		// Anonymous to pending: the login names the user.
		anon.UserID, anon.Stage, anon.Method, anon.LastSeen = ann.ID, StagePending, "face", t0.Add(2*time.Minute)
		if err := st.UpdateSession(ctx, anon); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Session(ctx, "anon", t0.Add(3*time.Minute)); got != anon {
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

func TestLogins(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		ann, bob := mustUser(t, st, "Ann"), mustUser(t, st, "Bob")
		t0 := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
		events := []LoginEvent{
			{UserID: ann.ID, At: t0, Method: "password", Client: "a", Success: false},
			{UserID: ann.ID, At: t0.Add(time.Minute), Method: "face+pin", Client: "b", Success: true},
			{UserID: bob.ID, At: t0.Add(2 * time.Minute), Method: "face", Client: "c", Success: true},
			{UserID: ann.ID, At: t0.Add(3 * time.Minute), Method: "face", Client: "d", Success: false},
		}
		for _, e := range events {
			if err := st.AddLogin(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.AddLogin(ctx, LoginEvent{UserID: 999999, At: t0, Method: "face"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("login of missing user: got %v, want ErrNotFound", err)
		}
		got, err := st.Logins(ctx, ann.ID, 2)
		if err != nil {
			t.Fatal(err)
		}
		want := []LoginEvent{events[3], events[1]}
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("Logins(ann, 2) = %+v, want %+v", got, want)
		}
		if got, _ := st.Logins(ctx, ann.ID, 10); len(got) != 3 {
			t.Errorf("Logins(ann, 10) = %d events, want 3", len(got))
		}
	})
}

func TestFailures(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		add := func(key string, at time.Time) {
			t.Helper()
			if err := st.AddFailure(ctx, key, at); err != nil {
				t.Fatal(err)
			}
		}
		// Recorded in time order, as a live server does; each AddFailure prunes old rows.
		add("client:192.0.2.1", now.Add(-25*time.Hour))
		add("account:1", now.Add(-2*time.Hour))
		add("account:1", now.Add(-30*time.Minute))
		add("account:1", now.Add(-time.Minute))
		add("client:192.0.2.1", now.Add(-5*time.Minute))

		for _, c := range []struct {
			key   string
			since time.Time
			want  int
		}{
			{"account:1", now.Add(-time.Hour), 2},
			{"account:1", now.Add(-3 * time.Hour), 3},
			{"account:1", now.Add(-30 * time.Minute), 2}, // at or after since
			{"client:192.0.2.1", now.Add(-48 * time.Hour), 1},
			{"account:2", now.Add(-time.Hour), 0},
		} {
			if n, err := st.Failures(ctx, c.key, c.since); err != nil || n != c.want {
				t.Errorf("Failures(%s, since %v) = %d, %v; want %d", c.key, now.Sub(c.since), n, err, c.want)
			}
		}
		if n := rawCount(t, st, `select count(*) from failures`); n != 4 {
			t.Errorf("failures older than 24h not pruned: %d rows, want 4", n)
		}
		if err := st.ClearFailures(ctx, "account:1"); err != nil {
			t.Fatal(err)
		}
		if n, _ := st.Failures(ctx, "account:1", now.Add(-3*time.Hour)); n != 0 {
			t.Errorf("after ClearFailures: %d", n)
		}
		if n, _ := st.Failures(ctx, "client:192.0.2.1", now.Add(-time.Hour)); n != 1 {
			t.Errorf("ClearFailures touched another key: %d", n)
		}
	})
}

func TestFaceChanges(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		keys := keyring(t, newKey(t))
		st := open(t, dsn, keys)
		if seq, err := st.LastFaceChange(ctx); err != nil || seq != 0 {
			t.Fatalf("LastFaceChange on empty store = %d, %v", seq, err)
		}
		ann, bob := mustUser(t, st, "Ann"), mustUser(t, st, "Bob")
		ops := []struct {
			user match.UserID
			op   func() error
		}{
			{ann.ID, func() error { return st.ReplaceSamples(ctx, ann.ID, []match.Descriptor{descriptor(1)}) }},
			{bob.ID, func() error { return st.ReplaceSamples(ctx, bob.ID, []match.Descriptor{descriptor(2)}) }},
			{ann.ID, func() error { return st.DeleteSamples(ctx, ann.ID) }},
			{bob.ID, func() error { return st.DeleteUser(ctx, bob.ID) }},
		}
		for _, o := range ops {
			if err := o.op(); err != nil {
				t.Fatal(err)
			}
		}
		cs, err := st.FaceChanges(ctx, 0)
		if err != nil || len(cs) != len(ops) {
			t.Fatalf("FaceChanges(0) = %+v, %v", cs, err)
		}
		for i, c := range cs {
			if c.UserID != ops[i].user || (i > 0 && c.Seq <= cs[i-1].Seq) {
				t.Errorf("change %d = %+v, want user %d after seq %d", i, c, ops[i].user, cs[max(i-1, 0)].Seq)
			}
		}
		if last, _ := st.LastFaceChange(ctx); last != cs[len(cs)-1].Seq {
			t.Errorf("LastFaceChange = %d, want %d", last, cs[len(cs)-1].Seq)
		}
		if tail, _ := st.FaceChanges(ctx, cs[1].Seq); len(tail) != 2 || tail[0] != cs[2] {
			t.Errorf("FaceChanges(after %d) = %+v", cs[1].Seq, tail)
		}

		// Two replicas write while a third polls from its last seen Seq, as the api does: the
		// poller must see every change exactly once, which fails if sequence numbers could
		// commit out of order.
		a, b := open(t, dsn, keys), open(t, dsn, keys)
		users := make([]User, 6)
		for i := range users {
			users[i] = mustUser(t, a, fmt.Sprintf("W%d", i))
		}
		cursor, _ := st.LastFaceChange(ctx)
		const rounds = 15
		done := make(chan struct{})
		var wg sync.WaitGroup
		for i, u := range users {
			replica := a
			if i%2 == 1 {
				replica = b
			}
			wg.Go(func() {
				for r := range rounds {
					if err := replica.ReplaceSamples(ctx, u.ID, []match.Descriptor{descriptor(uint64(r))}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		go func() { wg.Wait(); close(done) }()
		seen := map[int64]bool{}
		poll := func() {
			cs, err := st.FaceChanges(ctx, cursor)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if seen[c.Seq] {
					t.Fatalf("change %d delivered twice", c.Seq)
				}
				seen[c.Seq] = true
				cursor = c.Seq
			}
		}
		for running := true; running; {
			select {
			case <-done:
				running = false
			default:
				poll()
			}
		}
		poll()
		all, _ := st.FaceChanges(ctx, cs[len(cs)-1].Seq)
		if len(all) != len(users)*rounds {
			t.Errorf("%d changes recorded, want %d", len(all), len(users)*rounds)
		}
		for _, c := range all {
			if !seen[c.Seq] {
				t.Errorf("poller following the feed missed change %d", c.Seq)
			}
		}
	})
}

func TestOpenErrors(t *testing.T) {
	keys := keyring(t, newKey(t))
	dir := t.TempDir()
	for _, c := range []struct {
		dsn, want string
	}{
		{"", "FACELOGIN_DB"},
		{"mysql://root@localhost/x", "unsupported"},
		{"sqlite::memory:", "not a plain file path"},
		{"sqlite:" + filepath.Join(dir, "missing", "x.db"), "does not exist"},
		{"postgres://u:hunter2@127.0.0.1:1/x?connect_timeout=2", "xxxxx"},
	} {
		st, err := Open(context.Background(), c.dsn, keys)
		if err == nil {
			st.Close()
			t.Errorf("Open(%q) succeeded", c.dsn)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) = %v; want it to mention %q and no password", c.dsn, err, c.want)
		}
	}
	if _, err := Open(context.Background(), filepath.Join(dir, "bare.db"), nil); err == nil {
		t.Error("Open without a keyring succeeded")
	}
	// A bare path is SQLite.
	st, err := Open(context.Background(), filepath.Join(dir, "bare.db"), keys)
	if err != nil {
		t.Fatalf("Open(bare path): %v", err)
	}
	defer st.Close()
	mustUser(t, st, "Ann") // so the write-ahead log exists
	for _, name := range []string{"bare.db", "bare.db-wal", "bare.db-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("SQLite file: %v", err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
}
