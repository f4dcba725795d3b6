package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// Failure counters, kept in the store so every replica shares them. Each way in has its own
// account counter, so guessing one never closes another to the owner: PINs guessed after a
// face match count against the candidates' consecutive face PIN failures (in the users
// table), passwords under passKey, PINs after a right password under passPINKey. The client
// counter is stricter and stops one source from trying many accounts.
func clientKey(ip string) string        { return "client:" + ip }
func passKey(id match.UserID) string    { return fmt.Sprintf("account:%d:password", id) }
func passPINKey(id match.UserID) string { return fmt.Sprintf("account:%d:password-pin", id) }
func pinKey(id match.UserID) string     { return fmt.Sprintf("account:%d:pin", id) }
func sessionKey(idHash string) string   { return "session:" + idHash[:min(len(idHash), 16)] }

// faceKey counts the face logins from a client that ended with a face nobody's: no secret
// was compared, so they do not count with wrong secrets under clientKey; past
// Options.ClientUnknownFaces of them only face sign-in from that client pauses.
func faceKey(ip string) string { return "client-face:" + ip }

// emailKey counts wrong passwords for an e-mail address that has no account, exactly as
// passKey does for one that has: past the limit both answer alike, so the answer does not
// tell which addresses have accounts. The address is kept only as a keyed hash.
func (s *Server) emailKey(email string) string {
	m := hmac.New(sha256.New, s.opts.Pepper)
	m.Write([]byte("unknown e-mail\x00" + email))
	return "email:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// pinTriesPerSession is how many wrong PINs a pending session survives.
const pinTriesPerSession = 3

// checkHold is how long a PIN check holds its session if its replica dies before ending it.
const checkHold = 30 * time.Second

func (s *Server) since() time.Time { return time.Now().Add(-s.opts.FailureWindow) }

func limited(what string) *apiError {
	return errorf(http.StatusTooManyRequests, "rate_limited", "Too many failed attempts %s; wait a while and try again, or sign in another way.", what)
}

// allow refuses when the client or the account already has too many failures in the window.
// It only reads the counters: use it to turn away a client early, and a reservation where
// a secret is checked.
func (s *Server) allow(ctx context.Context, ip, account string) error {
	return s.under(ctx, store.Limit{Key: clientKey(ip), Max: s.opts.ClientFailures}, store.Limit{Key: account, Max: s.opts.AccountFailures})
}

// under refuses when a key already has its Max failures in the window (keys "" are skipped).
func (s *Server) under(ctx context.Context, limits ...store.Limit) error {
	for _, l := range limits {
		if l.Key == "" {
			continue
		}
		n, err := s.st.Failures(ctx, l.Key, s.since())
		if err != nil {
			return fmt.Errorf("count failures: %w", err)
		}
		if n >= l.Max {
			return s.limitError(&store.LimitError{Limit: l, RetryAfter: s.opts.FailureWindow / 4})
		}
	}
	return nil
}

// limits returns the store limits of the client and, if given, an account key.
func (s *Server) limits(ip, account string) []store.Limit {
	since := s.since()
	ls := []store.Limit{{Key: clientKey(ip), Max: s.opts.ClientFailures, Since: since}}
	if account != "" {
		ls = append(ls, store.Limit{Key: account, Max: s.opts.AccountFailures, Since: since})
	}
	return ls
}

// limitError turns a reservation refused by a limit into the answer; other errors pass.
func (s *Server) limitError(err error) error {
	var le *store.LimitError
	if !errors.As(err, &le) {
		return err
	}
	s.metrics.rejects.WithLabelValues("rate_limited").Inc()
	// scope tells the page which way in is closed: "account" (this factor of one account:
	// the other way in stays open), "face" (face sign-in from this client: the password
	// stays open), "client" (everything from this client but the password and PIN given
	// together) or "all" (that too).
	what, scope := "for this account", "account"
	switch {
	case strings.HasPrefix(le.Limit.Key, "client-together:"):
		what, scope = "from this device", "all"
	case strings.HasPrefix(le.Limit.Key, "client-face:"):
		what, scope = "from this device", "face"
	case strings.HasPrefix(le.Limit.Key, "client:"):
		what, scope = "from this device", "client"
	}
	return limited(what).after(le.RetryAfter).with("scope", scope)
}

// failed records a failure under each key.
func (s *Server) failed(ctx context.Context, keys ...string) error {
	now := time.Now()
	for _, k := range keys {
		if k == "" {
			continue
		}
		if err := s.st.AddFailure(ctx, k, now); err != nil {
			return fmt.Errorf("record failure: %w", err)
		}
	}
	return nil
}
