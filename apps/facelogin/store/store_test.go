package store

import (
	"context"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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

func open(tb testing.TB, dsn string, keys *seal.Keyring) *Store {
	tb.Helper()
	st, err := Open(context.Background(), dsn, keys)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
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

func mustUser(tb testing.TB, st *Store, name string) User {
	tb.Helper()
	u, err := st.CreateUser(context.Background(), User{Name: name, Email: strings.ToLower(name) + "@example.test", Role: RoleUser})
	if err != nil {
		tb.Fatalf("CreateUser %s: %v", name, err)
	}
	return u
}

// rawCount counts rows of a table with a condition, bypassing the Store methods.
func rawCount(t *testing.T, st *Store, q string, args ...any) int {
	t.Helper()
	n, err := count(context.Background(), st.db, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// rawBlobs returns the sealed column of every face_samples row.
func rawBlobs(t *testing.T, st *Store) map[int64][]byte {
	t.Helper()
	out := map[int64][]byte{}
	err := st.db.query(context.Background(), `select id, sealed from face_samples`, nil, func(scan func(...any) error) error {
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
		steps := schema
		if n := rawCount(t, again, `select count(*) from schema_migrations`); n != len(steps) {
			t.Errorf("schema_migrations has %d rows, want %d", n, len(steps))
		}
		// A schema newer than this program is refused rather than used.
		future := int64(steps[len(steps)-1].version + 1)
		if _, err := again.db.exec(ctx, `insert into schema_migrations (version, name) values ($1, 'from the future')`, future); err != nil {
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
		stores := make([]*Store, replicas)
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
		if n := rawCount(t, stores[1], `select count(*) from schema_migrations`); n != len(schema) {
			t.Errorf("schema_migrations has %d rows after concurrent opens", n)
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
