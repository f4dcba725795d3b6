package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// Password and PIN together: one request that gives the e-mail, the password and the PIN.
// It counts like the two steps do (under the client's address, or the known device, and the
// account's password and password-PIN keys), with one difference: when the address has
// reached its failure limit (an office or a kiosk behind one address that strangers
// exhausted), it is still checked and counted under the account's keys alone, so the
// newcomer who gives both right secrets signs in at once. A guess there must hit the
// password and the PIN at once, the answer never says which of the two was wrong, and each
// account still takes at most AccountFailures of them in the window: spraying passwords
// from an exhausted address gains nothing. What those attempts cost is bounded per replica
// by TogetherChecks, which answers busy at once rather than queueing (docs/security.md).
// Wrong pairs past the address's limit count under togetherKey too, at togetherPerClient
// times the address's limit: strangers' typos never fill it, while one address cannot use
// the path to close the password of every account in turn.

// togetherPerClient is how many times ClientFailures wrong pairs an exhausted address may
// give in the window.
const togetherPerClient = 5

// togetherKey counts the wrong pairs given from an address past its limit.
func togetherKey(ip string) string { return "client-together:" + ip }

var errBadTogether = errorf(http.StatusUnauthorized, "bad_password_or_pin", "E-mail, password or PIN is not correct.")

// loginTogether signs in with the e-mail, password and PIN of one request.
func (s *Server) loginTogether(w http.ResponseWriter, r *http.Request, email, password, pin string) {
	if !validPIN(pin, minPINLen) {
		s.fail(w, r, errorf(http.StatusBadRequest, "bad_pin", "A PIN is %d to %d digits.", minPINLen, maxPINLen))
		return
	}
	ctx := r.Context()
	u, err := s.st.UserByEmail(ctx, email)
	known := err == nil && u.PasswordHash != ""
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	// An unknown e-mail, or an account without a PIN, is checked against the dummy hash:
	// every answer takes two hashes, and no answer tells which secret was wrong.
	account, pwHash, pinHash := s.emailKey(email), dummyHash, dummyHash
	var ids []match.UserID
	if known {
		account, pwHash, ids = passKey(u.ID), u.PasswordHash, []match.UserID{u.ID}
		if u.PINHash != "" {
			pinHash = u.PINHash
		}
	}
	since := s.since()
	accountLimits := []store.Limit{{Key: account, Max: s.opts.AccountFailures, Since: since}}
	if known {
		accountLimits = append(accountLimits, store.Limit{Key: passPINKey(u.ID), Max: s.opts.AccountFailures, Since: since})
	}
	ip := s.clientIP(r)
	limits := s.deviceLimits(r, ip, account, ids...)
	if !strings.HasPrefix(limits[0].Key, "device:") {
		limits = append(limits, accountLimits[1:]...)
	}
	now := time.Now()
	res, err := s.st.ReserveFailure(ctx, now, limits...)
	var le *store.LimitError
	if errors.As(err, &le) && strings.HasPrefix(le.Limit.Key, "client:") {
		// The address is exhausted: the account's limits alone, in a slot of their own.
		done, errBusy := s.togetherSlot()
		if errBusy != nil {
			s.fail(w, r, errBusy)
			return
		}
		defer done()
		res, err = s.st.ReserveFailure(ctx, now, append(accountLimits,
			store.Limit{Key: togetherKey(ip), Max: togetherPerClient * s.opts.ClientFailures, Since: since})...)
	}
	if err != nil {
		s.fail(w, r, s.limitError(err))
		return
	}
	pwOK, pinOK, err := s.verifyBoth(ctx, pwHash, password, pinHash, pin)
	if err != nil {
		s.fail(w, r, errors.Join(err, s.st.Release(context.WithoutCancel(ctx), res)))
		return
	}
	if !known || !pwOK || !pinOK || u.PINHash == "" {
		s.metrics.rejects.WithLabelValues("bad_credentials").Inc()
		if known {
			// A right password with a wrong PIN is a wrong PIN the owner is told of.
			method := "password"
			if pwOK {
				method = "password+pin"
			}
			if err := s.st.AddLogin(ctx, store.LoginEvent{UserID: u.ID, At: now, Method: method, Client: s.clientSummary(r)}); err != nil {
				s.fail(w, r, err)
				return
			}
			s.log.Info("login failed", "user", u.ID, "method", "password+pin", "reason", "bad_password_or_pin")
		}
		s.fail(w, r, errBadTogether)
		return
	}
	if err := s.st.Release(ctx, res); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.st.ResumeFace(ctx, u.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	var old *store.Session
	if sess, err := s.session(r); err == nil {
		old = &sess
	}
	told, err := s.completeLogin(w, r, old, u, "password+pin")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stage": store.StageFull, "next": "done", "name": u.Name, "failed_pins": told,
		"pin_too_short": len(pin) < s.opts.PINMinLength})
}

// togetherSlot takes one of the replica's slots for password-and-PIN sign-ins past their
// address's limit, or answers busy at once; call the returned func to give it back.
func (s *Server) togetherSlot() (func(), error) {
	select {
	case s.together <- struct{}{}:
		return func() { <-s.together }, nil
	default:
		s.metrics.rejects.WithLabelValues("busy").Inc()
		return nil, busy(time.Second)
	}
}

// verifyBoth checks the password and the PIN in one argon2 slot, always both.
func (s *Server) verifyBoth(ctx context.Context, pwHash, password, pinHash, pin string) (pwOK, pinOK bool, err error) {
	done, err := s.argonSlot(ctx)
	if err != nil {
		return false, false, err
	}
	defer done()
	if pwOK, err = checkSecret(s.opts.Pepper, pwHash, password); err != nil {
		return false, false, err
	}
	if pinOK, err = checkSecret(s.opts.Pepper, pinHash, pin); err != nil {
		return false, false, err
	}
	return pwOK, pinOK, nil
}
