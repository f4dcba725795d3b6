package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/seal"
)

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
