package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// hashSecret returns an argon2id PHC string of secret, peppered with an HMAC under pepper
// so a stolen database alone does not allow guessing the short PINs offline.
func hashSecret(pepper []byte, secret string) string {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key := argon2.IDKey(pepped(pepper, secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// checkSecret reports whether secret matches the PHC string phc made by hashSecret.
func checkSecret(pepper []byte, phc, secret string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("stored hash is not an argon2id PHC string")
	}
	var version int
	var mem, iters uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("stored hash has an unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil {
		return false, fmt.Errorf("stored hash parameters: %w", err)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("stored hash salt: %w", err)
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("stored hash: %w", err)
	}
	got := argon2.IDKey(pepped(pepper, secret), salt, iters, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func pepped(pepper []byte, secret string) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// dummyHash is checked against when an account does not exist, so the answer takes as
// long as for a wrong password.
var dummyHash = hashSecret([]byte("dummy pepper for timing only"), "x")

// PIN lengths. A PIN given at login may be as short as minPINLen, so PINs chosen before
// Options.PINMinLength was raised keep working; new PINs must have PINMinLength digits.
const (
	minPINLen = 4
	maxPINLen = 12
)

// validPIN reports whether pin is min to maxPINLen ASCII digits.
func validPIN(pin string, min int) bool {
	if len(pin) < min || len(pin) > maxPINLen {
		return false
	}
	for _, c := range pin {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Password length bounds (ASVS 2.1.1 and 2.1.2).
const (
	minPasswordLen = 12
	maxPasswordLen = 128
)

func checkNewPassword(p string) error {
	n := len([]rune(p))
	if n < minPasswordLen || n > maxPasswordLen {
		return errorf(http.StatusBadRequest, "weak_password", "Choose a password of %d to %d characters.", minPasswordLen, maxPasswordLen)
	}
	return nil
}

// checkNewPIN checks a PIN being chosen: PINMinLength to 12 digits, and not one a guesser
// tries first (one digit repeated, or a run up or down such as 123456).
func (s *Server) checkNewPIN(p string) error {
	if !validPIN(p, s.opts.PINMinLength) {
		return errorf(http.StatusBadRequest, "bad_pin", "Choose a PIN of %d to %d digits.", s.opts.PINMinLength, maxPINLen).
			with("min_length", s.opts.PINMinLength)
	}
	if trivialPIN(p) {
		return errorf(http.StatusBadRequest, "bad_pin", "Choose a PIN that is harder to guess than one digit repeated or a run such as 123456.").
			with("min_length", s.opts.PINMinLength)
	}
	return nil
}

// trivialPIN reports whether p is one digit repeated or a run of digits going up or down by
// one (wrapping: 890123).
func trivialPIN(p string) bool {
	same, up, down := true, true, true
	for i := 1; i < len(p); i++ {
		d := (int(p[i]) - int(p[i-1]) + 10) % 10
		same, up, down = same && d == 0, up && d == 1, down && d == 9
	}
	return same || up || down
}

// argonSlot takes one of the server's slots for argon2 work (19 MiB and tens of
// milliseconds per hash), so a flood of guesses cannot exhaust memory or CPU; call the
// returned func to give it back. When no slot frees up within SecretWait it answers busy.
func (s *Server) argonSlot(ctx context.Context) (func(), error) {
	t := time.NewTimer(s.opts.SecretWait)
	defer t.Stop()
	select {
	case s.argon <- struct{}{}:
		return func() { <-s.argon }, nil
	case <-t.C:
		s.metrics.rejects.WithLabelValues("busy").Inc()
		return nil, busy(time.Second)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// verify checks secret against the PHC string phc in an argon2 slot.
func (s *Server) verify(ctx context.Context, phc, secret string) (bool, error) {
	done, err := s.argonSlot(ctx)
	if err != nil {
		return false, err
	}
	defer done()
	return checkSecret(s.opts.Pepper, phc, secret)
}
