package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func gen(t *testing.T) Key {
	t.Helper()
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ring(t *testing.T, keys ...Key) *Keyring {
	t.Helper()
	r, err := New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealOpen(t *testing.T) {
	k1, k2 := gen(t), gen(t)
	r := ring(t, k1)
	plain := bytes.Repeat([]byte{0x3f, 0x80, 0, 0}, 128)
	aad := []byte("user=1 sample=7")
	blob, err := r.Seal(plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, plain[:16]) {
		t.Fatal("blob contains plaintext")
	}
	if id, err := KeyID(blob); err != nil || id != k1.ID {
		t.Errorf("KeyID = %q, %v; want %q", id, err, k1.ID)
	}
	if got, err := r.Open(blob, aad); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %v, %v", got, err)
	}
	again, _ := r.Seal(plain, aad)
	if bytes.Equal(again, blob) {
		t.Error("two seals of the same plaintext are equal: nonce reused")
	}

	tampered := func(i int) []byte {
		b := bytes.Clone(blob)
		b[i] ^= 1
		return b
	}
	for _, c := range []struct {
		name string
		r    *Keyring
		blob []byte
		aad  []byte
	}{
		{"other aad (moved to another row)", r, blob, []byte("user=2 sample=7")},
		{"no aad", r, blob, nil},
		{"flipped ciphertext bit", r, tampered(len(blob) - 20), aad},
		{"flipped tag bit", r, tampered(len(blob) - 1), aad},
		{"flipped nonce bit", r, tampered(2 + len(k1.ID)), aad},
		{"unknown version", r, tampered(0), aad},
		{"key not in keyring", ring(t, k2), blob, aad},
		{"truncated", r, blob[:2+len(k1.ID)+5], aad},
		{"empty", r, nil, aad},
	} {
		if _, err := c.r.Open(c.blob, c.aad); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: got %v, want ErrOpen", c.name, err)
		}
	}
	// Renaming the key id inside the blob to another key of the ring fails too: the header
	// is authenticated.
	k3 := k1
	k3.ID = strings.Repeat("z", len(k1.ID))
	both := ring(t, k1, k3)
	renamed := bytes.Clone(blob)
	copy(renamed[2:], k3.ID)
	if _, err := both.Open(renamed, aad); !errors.Is(err, ErrOpen) {
		t.Errorf("renamed key id: got %v, want ErrOpen", err)
	}
}

func TestRotationOrder(t *testing.T) {
	old, cur := gen(t), gen(t)
	blob, _ := ring(t, old).Seal([]byte("descriptor"), []byte("row"))
	r := ring(t, cur, old)
	if r.Primary() != cur.ID {
		t.Errorf("Primary = %q, want the first key %q", r.Primary(), cur.ID)
	}
	if got, err := r.Open(blob, []byte("row")); err != nil || string(got) != "descriptor" {
		t.Errorf("old blob with new primary: %q, %v", got, err)
	}
	fresh, _ := r.Seal([]byte("descriptor"), []byte("row"))
	if id, _ := KeyID(fresh); id != cur.ID {
		t.Errorf("new blob sealed with %q, want primary %q", id, cur.ID)
	}
	if got := r.ids; len(got) != 2 || got[0] != cur.ID || got[1] != old.ID {
		t.Errorf("ids = %v", got)
	}
}

func TestParse(t *testing.T) {
	k1, k2 := gen(t), gen(t)
	file := fmt.Sprintf("# keys, newest first\n\n%s\n  # an old key, kept until rotation ends\n%s\n", k1.Encode(), k2.Encode())
	commas := k1.Encode() + "," + k2.Encode()
	for name, text := range map[string]string{"file": file, "commas": commas, "commas with spaces": " " + k1.Encode() + " , " + k2.Encode() + " "} {
		r, err := Parse(text)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if ids := r.ids; len(ids) != 2 || ids[0] != k1.ID || ids[1] != k2.ID {
			t.Errorf("%s: ids %v", name, ids)
		}
		blob, _ := ring(t, k2).Seal([]byte("x"), nil)
		if _, err := r.Open(blob, nil); err != nil {
			t.Errorf("%s: parsed key does not open: %v", name, err)
		}
	}

	short := "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 16))
	secret := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	for _, c := range []struct {
		name, text, want string
	}{
		{"empty", "", "no descriptor key"},
		{"only comments", "# nothing\n", "no descriptor key"},
		{"short key", short, "16 bytes, want 32"},
		{"bad base64", "k1:not*base64", "not valid base64"},
		{"no id", secret, "not in the form id:base64key"},
		{"empty id", ":" + secret, "key id is empty"},
		{"bad id", "k 1:" + secret, "may only contain"},
		{"duplicate id", "k1:" + secret + "\nk1:" + secret, "appears twice"},
	} {
		_, err := Parse(c.text)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error reveals the key: %v", c.name, err)
		}
	}
}

func TestNoKeyInStrings(t *testing.T) {
	k := gen(t)
	secret := strings.TrimPrefix(k.Encode(), k.ID+":")
	r := ring(t, k)
	raw, _ := base64.StdEncoding.DecodeString(secret)
	dec := strings.Trim(fmt.Sprint(raw[:8]), "[]") // the first bytes as %v prints a byte slice
	for _, s := range []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %x", k, k, k, k, k),
		fmt.Sprint(r), fmt.Sprintf("%v %+v %#v %s", r, r, r, r), fmt.Sprintf("%v %+v %#v", *r, *r, *r),
	} {
		if strings.Contains(s, secret) || strings.Contains(s, dec) || strings.Contains(s, fmt.Sprintf("%x", raw[:8])) {
			t.Errorf("formatting reveals the key: %s", s)
		}
		if !strings.Contains(s, k.ID) {
			t.Errorf("formatting does not name the key id: %s", s)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "descriptor.key")
	first, err := CreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if _, err := CreateFile(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateFile over an existing key: got %v, want fs.ErrExist", err)
	}
	r, err := LoadFile(path)
	if err != nil || r.Primary() != first.ID {
		t.Fatalf("LoadFile = %v, %v", r, err)
	}
	blob, _ := r.Seal([]byte("d"), nil)

	second, err := PrependFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err = LoadFile(path)
	if err != nil || r.Primary() != second.ID || len(r.ids) != 2 {
		t.Fatalf("after PrependFile: %v, %v", r, err)
	}
	if _, err := r.Open(blob, nil); err != nil {
		t.Errorf("old blob after PrependFile: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after PrependFile: %v", fi.Mode())
	}

	removed, err := RetainPrimaryFile(path)
	if err != nil || len(removed) != 1 || removed[0] != first.ID {
		t.Fatalf("RetainPrimaryFile = %v, %v", removed, err)
	}
	r, err = LoadFile(path)
	if err != nil || len(r.ids) != 1 || r.Primary() != second.ID {
		t.Fatalf("after RetainPrimaryFile: %v, %v", r, err)
	}
	if _, err := r.Open(blob, nil); !errors.Is(err, ErrOpen) {
		t.Errorf("blob under the removed key: got %v, want ErrOpen", err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "\n# facelogin descriptor keys") {
		t.Errorf("comments dropped:\n%s", b)
	}

	// A broken key file is reported, and left as it was.
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("k1:short\n"), 0o600)
	if _, err := PrependFile(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("PrependFile on a broken file: %v", err)
	}
	if b, _ := os.ReadFile(bad); string(b) != "k1:short\n" {
		t.Errorf("broken key file changed to %q", b)
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadFile(missing): %v", err)
	}
}

func BenchmarkOpen(b *testing.B) {
	k, _ := Generate()
	r, _ := New(k)
	plain := make([]byte, 512) // one 128-float32 descriptor
	aad := []byte("facelogin/face_samples/v1\x00user=42\x00sample=4242")
	blob, _ := r.Seal(plain, aad)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		if _, err := r.Open(blob, aad); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzOpen feeds arbitrary blobs, as a corrupted or hostile database row would hold, to Open:
// it must refuse them with ErrOpen and never panic; and arbitrary key-file text to Parse.
func FuzzOpen(f *testing.F) {
	k, err := NewKey("k1", bytes.Repeat([]byte{1}, KeySize))
	if err != nil {
		f.Fatal(err)
	}
	r, _ := New(k)
	good, _ := r.Seal([]byte("descriptor"), []byte("row"))
	f.Add(good, "k1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, KeySize)))
	f.Add([]byte{1, 2, 'k', '1'}, "k1:AAAA,k2:")
	f.Add([]byte{}, "# comment\n")
	f.Fuzz(func(t *testing.T, blob []byte, keyText string) {
		if pt, err := r.Open(blob, []byte("row")); err == nil {
			// Only "descriptor" was ever sealed under this key and aad (the seed may come from
			// another fuzz worker, with another nonce).
			if string(pt) != "descriptor" {
				t.Fatalf("a forged blob opened: %x", blob)
			}
		} else if !errors.Is(err, ErrOpen) {
			t.Fatalf("Open error does not wrap ErrOpen: %v", err)
		}
		if parsed, err := Parse(keyText); err == nil && len(parsed.ids) == 0 {
			t.Fatal("Parse returned an empty keyring")
		}
	})
}
