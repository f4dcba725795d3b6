// Package seal encrypts face descriptors at rest with AES-256-GCM under a keyring of named
// keys. The first key of a keyring is its primary: it seals. Every key opens, so a keyring
// that lists a new primary followed by the old keys reads old blobs while new ones are
// written under the new key; re-sealing everything and then dropping the old keys completes a
// rotation.
//
// A sealed blob is
//
//	version (1 byte, 1) | key id length (1 byte) | key id | nonce (12 bytes) | ciphertext+tag
//
// The version and key id are authenticated together with the caller's additional data, which
// binds a blob to the row it belongs to (for example user id and sample id): a blob copied to
// another row does not open.
//
// Key material never leaves the package in a printable form except through [Key.Encode];
// [Key.String] and [Keyring.String] print key ids only.
package seal

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// version is the blob format written by Seal.
const version = 1

// maxIDLen bounds a key id; ids are short labels, not secrets.
const maxIDLen = 32

// ErrOpen is returned when a blob does not open: it was sealed under a key the keyring does not
// hold, it was altered, or it belongs to another row.
var ErrOpen = errors.New("sealed data does not open")

// Key is one AES-256 key and the short id that names it inside sealed blobs.
type Key struct {
	ID     string
	secret [KeySize]byte
}

// Generate returns a fresh random key with a random id.
func Generate() (Key, error) {
	var k Key
	if _, err := rand.Read(k.secret[:]); err != nil {
		return Key{}, fmt.Errorf("generate key: %w", err)
	}
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Key{}, fmt.Errorf("generate key id: %w", err)
	}
	k.ID = "k" + hex.EncodeToString(id[:])
	return k, nil
}

// NewKey returns a key with the given id and secret (exactly 32 bytes).
func NewKey(id string, secret []byte) (Key, error) {
	if err := checkID(id); err != nil {
		return Key{}, err
	}
	if len(secret) != KeySize {
		return Key{}, fmt.Errorf("key %q is %d bytes, want %d: generate one with 'facelogin admin rotate-key' or `head -c 32 /dev/urandom | base64`", id, len(secret), KeySize)
	}
	k := Key{ID: id}
	copy(k.secret[:], secret)
	return k, nil
}

// Encode returns the key in the key-file form "id:base64(secret)". The result is secret.
func (k Key) Encode() string {
	return k.ID + ":" + base64.StdEncoding.EncodeToString(k.secret[:])
}

// String names the key without revealing it, so a key printed by mistake leaks nothing.
func (k Key) String() string { return "seal.Key(" + k.ID + ")" }

// GoString is like String, for %#v.
func (k Key) GoString() string { return k.String() }

func checkID(id string) error {
	if id == "" {
		return errors.New("key id is empty: write each key as id:base64key, e.g. k1:" + strings.Repeat("A", 43) + "=")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("key id %q is longer than %d characters: use a short label such as k2", id, maxIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("key id %q may only contain letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}

// Keyring holds the keys that seal and open descriptors. It is safe for concurrent use.
type Keyring struct {
	ids   []string // in order; ids[0] is the primary
	aeads map[string]cipher.AEAD
}

// New returns a keyring of keys; the first is the primary. Ids must be unique.
func New(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no descriptor key given: the key file (--key-file, FACELOGIN_KEY_FILE) must hold an id:base64key line (docs/security.md), or let 'facelogin serve' create one in its data directory")
	}
	r := &Keyring{aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if err := checkID(k.ID); err != nil {
			return nil, err
		}
		if _, dup := r.aeads[k.ID]; dup {
			return nil, fmt.Errorf("key id %q appears twice: give every key its own id", k.ID)
		}
		block, err := aes.NewCipher(k.secret[:])
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		r.ids = append(r.ids, k.ID)
		r.aeads[k.ID] = aead
	}
	return r, nil
}

// Parse reads keys in the key-file form: one "id:base64key" per line (several on a line may
// be separated by commas), the first being the primary. Blank lines and lines starting with
// '#' are ignored.
func Parse(text string) (*Keyring, error) {
	var keys []Key
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") {
			continue
		}
		for _, field := range strings.Split(text, ",") {
			field = strings.TrimSpace(field)
			if field == "" {
				continue
			}
			k, err := parseKey(field)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return New(keys...)
}

func parseKey(field string) (Key, error) {
	id, b64, ok := strings.Cut(field, ":")
	if !ok {
		// Do not echo the field: it may be a bare key.
		return Key{}, errors.New("key is not in the form id:base64key (e.g. k1:<44 base64 characters>)")
	}
	id = strings.TrimSpace(id)
	if err := checkID(id); err != nil {
		return Key{}, err
	}
	secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return Key{}, fmt.Errorf("key %q is not valid base64: write 32 random bytes in standard base64, e.g. `head -c 32 /dev/urandom | base64`", id)
	}
	return NewKey(id, secret)
}

// LoadFile reads a keyring from a key file (see Parse).
func LoadFile(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read descriptor key file: %w", err)
	}
	r, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("descriptor key file %s: %w", path, err)
	}
	return r, nil
}

// CreateFile writes a new key file at path holding one fresh key, with mode 0600. It fails
// with an error wrapping fs.ErrExist if the file exists, so an existing key is never replaced.
func CreateFile(path string) (Key, error) {
	k, err := Generate()
	if err != nil {
		return Key{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Key{}, fmt.Errorf("create descriptor key file: %w", err)
	}
	_, werr := fmt.Fprintf(f, "# facelogin descriptor keys: id:base64key, first line seals, all open.\n%s\n", k.Encode())
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return Key{}, fmt.Errorf("write descriptor key file: %w", err)
	}
	return k, nil
}

// PrependFile adds a fresh key as the new primary at the top of the key file at path,
// keeping every existing key so old blobs still open. The file is replaced atomically and
// keeps mode 0600.
func PrependFile(path string) (Key, error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("read descriptor key file: %w", err)
	}
	if _, err := Parse(string(old)); err != nil {
		return Key{}, fmt.Errorf("descriptor key file %s: %w", path, err)
	}
	k, err := Generate()
	if err != nil {
		return Key{}, err
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%s\n", k.Encode())
	buf.Write(old)
	if err := replaceFile(path, buf.Bytes()); err != nil {
		return Key{}, err
	}
	return k, nil
}

// RetainPrimaryFile rewrites the key file at path to hold only its primary key (and its
// comments), after every blob has been re-sealed under it. It returns the ids removed.
func RetainPrimaryFile(path string) ([]string, error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read descriptor key file: %w", err)
	}
	r, err := Parse(string(old))
	if err != nil {
		return nil, fmt.Errorf("descriptor key file %s: %w", path, err)
	}
	var buf bytes.Buffer
	for _, line := range strings.Split(string(old), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			if t != "" {
				buf.WriteString(line + "\n")
			}
			continue
		}
		for _, field := range strings.Split(t, ",") {
			field = strings.TrimSpace(field)
			if id, _, _ := strings.Cut(field, ":"); strings.TrimSpace(id) == r.Primary() {
				buf.WriteString(field + "\n")
			}
		}
	}
	if err := replaceFile(path, buf.Bytes()); err != nil {
		return nil, err
	}
	return r.ids[1:], nil
}

func replaceFile(path string, data []byte) error {
	mode := fs.FileMode(0o600)
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("write descriptor key file: %w", err)
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write descriptor key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace descriptor key file: %w", err)
	}
	return nil
}

// Primary returns the id of the key that seals.
func (r *Keyring) Primary() string { return r.ids[0] }

// String lists the key ids, never the keys. It has a value receiver so that printing a
// Keyring value does not fall back to dumping the ciphers' expanded keys.
func (r Keyring) String() string { return "seal.Keyring(" + strings.Join(r.ids, ",") + ")" }

// GoString is like String, for %#v.
func (r Keyring) GoString() string { return r.String() }

// Seal encrypts plaintext under the primary key, authenticating aad with it. aad is not
// stored; Open needs the same aad.
func (r *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	id := r.ids[0]
	aead := r.aeads[id]
	head := header(id)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	out := make([]byte, 0, len(head)+len(nonce)+len(plaintext)+aead.Overhead())
	out = append(out, head...)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, additional(head, aad)), nil
}

// Open decrypts a blob made by Seal with the same aad. It returns an error wrapping ErrOpen
// when the blob was altered, belongs to other aad, or its key is not in the keyring.
func (r *Keyring) Open(blob, aad []byte) ([]byte, error) {
	id, rest, err := split(blob)
	if err != nil {
		return nil, err
	}
	aead, ok := r.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: it was sealed with key %q, which is not in the keyring (add that key back to the key file)", ErrOpen, id)
	}
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: blob truncated", ErrOpen)
	}
	nonce, ct := rest[:aead.NonceSize()], rest[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, additional(blob[:2+len(id)], aad))
	if err != nil {
		return nil, fmt.Errorf("%w: altered, or not sealed for this record (key %q)", ErrOpen, id)
	}
	return pt, nil
}

// KeyID returns the id of the key a blob was sealed with, without opening it.
func KeyID(blob []byte) (string, error) {
	id, _, err := split(blob)
	return id, err
}

func header(id string) []byte {
	return append([]byte{version, byte(len(id))}, id...)
}

func additional(head, aad []byte) []byte {
	return append(append(make([]byte, 0, len(head)+len(aad)), head...), aad...)
}

func split(blob []byte) (id string, rest []byte, err error) {
	if len(blob) < 2 {
		return "", nil, fmt.Errorf("%w: blob too short", ErrOpen)
	}
	if blob[0] != version {
		return "", nil, fmt.Errorf("%w: unknown format version %d", ErrOpen, blob[0])
	}
	n := int(blob[1])
	if n == 0 || len(blob) < 2+n {
		return "", nil, fmt.Errorf("%w: blob too short", ErrOpen)
	}
	return string(blob[2 : 2+n]), blob[2+n:], nil
}
