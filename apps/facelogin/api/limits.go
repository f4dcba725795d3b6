package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// Failure counters. Each factor has its own account counter, so an attacker who exhausts
// one (guessing passwords for an e-mail) leaves the other path open to its owner; the
// client counter is stricter and stops one source from trying many accounts.
func clientKey(ip string) string      { return "client:" + ip }
func pinKey(id match.UserID) string   { return fmt.Sprintf("account:%d", id) }
func passKey(id match.UserID) string  { return fmt.Sprintf("account:%d:password", id) }
func sessionKey(idHash string) string { return "session:" + idHash[:min(len(idHash), 16)] }

// pinTriesPerSession is how many wrong PINs a pending session survives.
const pinTriesPerSession = 3

func (s *Server) since() time.Time { return time.Now().Add(-s.opts.FailureWindow) }
func limited(what string) *apiError {
	return errorf(http.StatusTooManyRequests, "rate_limited", "Too many failed attempts %s; wait a while and try again, or sign in another way.", what)
}

// allow refuses when the client or the account already has too many failures in the window.
func (s *Server) allow(ctx context.Context, ip, account string) error {
	n, err := s.st.Failures(ctx, clientKey(ip), s.since())
	if err != nil {
		return fmt.Errorf("count failures: %w", err)
	}
	if n >= s.opts.ClientFailures {
		s.metrics.rejects.WithLabelValues("rate_limited").Inc()
		return limited("from this device")
	}
	if account == "" {
		return nil
	}
	if n, err = s.st.Failures(ctx, account, s.since()); err != nil {
		return fmt.Errorf("count failures: %w", err)
	}
	if n >= s.opts.AccountFailures {
		s.metrics.rejects.WithLabelValues("rate_limited").Inc()
		return limited("for this account")
	}
	return nil
}

// decodeAllowed reads the JSON request body into v, then refuses a client that already has
// too many failures. It returns the client's address, under which failures are counted.
func (s *Server) decodeAllowed(w http.ResponseWriter, r *http.Request, v any) (ip string, err error) {
	if err := decodeJSON(w, r, v); err != nil {
		return "", err
	}
	ip = s.clientIP(r)
	return ip, s.allow(r.Context(), ip, "")
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
