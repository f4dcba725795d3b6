package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/seal"
)

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
		if _, err := st.db.exec(ctx, `update face_samples set sealed = $1 where id = $2`, blobs[annS[0].ID], bobS[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Samples(ctx, bob.ID); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("blob moved to another user: got %v, want seal.ErrOpen", err)
		}
		if _, err := st.AllSamples(ctx); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("AllSamples with a moved blob: got %v, want seal.ErrOpen", err)
		}
		// Bob's second blob into his first row: same user, another sample.
		if _, err := st.db.exec(ctx, `update face_samples set sealed = $1 where id = $2`, blobs[bobS[1].ID], bobS[0].ID); err != nil {
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
