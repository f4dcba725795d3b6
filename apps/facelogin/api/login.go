package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
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

var errWrongPIN = errorf(http.StatusUnauthorized, "wrong_pin", "That PIN is not correct.")

// loginPIN checks the second factor of a pending session and completes the login under a
// new session id.
func (s *Server) loginPIN(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PIN string `json:"pin"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	sess, err := s.session(r)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (sess.Stage != store.StagePending || sess.UserID == 0)) {
		s.fail(w, r, errorf(http.StatusUnauthorized, "unauthorized", "Sign in with your face or password first."))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ip := s.clientIP(r)
	if err := s.allow(ctx, ip, pinKey(sess.UserID)); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.st.User(ctx, sess.UserID)
	if err != nil {
		s.fail(w, r, notFoundAs(err, errUnauthorized))
		return
	}
	ok := false
	if u.PINHash != "" && validPIN(req.PIN) {
		if ok, err = checkSecret(s.opts.Pepper, u.PINHash, req.PIN); err != nil {
			s.fail(w, r, fmt.Errorf("check PIN of user %d: %w", u.ID, err))
			return
		}
	}
	method := sess.Method + "+pin"
	if !ok {
		skey := sessionKey(sess.IDHash)
		err := errors.Join(s.failed(ctx, clientKey(ip), pinKey(u.ID), skey),
			s.st.AddLogin(ctx, store.LoginEvent{UserID: u.ID, At: time.Now(), Method: method, Client: s.clientSummary(r)}))
		s.metrics.rejects.WithLabelValues("wrong_pin").Inc()
		s.log.Info("login failed", "user", u.ID, "method", method, "reason", "wrong_pin")
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// A few wrong PINs end the pending session: each further guess costs a new face or
		// password check, not just a request.
		n, err := s.st.Failures(ctx, skey, s.since())
		if err != nil {
			s.fail(w, r, fmt.Errorf("count failures: %w", err))
			return
		}
		if n >= pinTriesPerSession {
			err := errors.Join(s.st.DeleteSession(ctx, sess.IDHash), s.st.ClearFailures(ctx, skey))
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				s.fail(w, r, err)
				return
			}
			s.clearCookie(w)
			s.fail(w, r, errorf(http.StatusUnauthorized, "unauthorized", "That PIN was wrong %d times; sign in again.", n))
			return
		}
		s.fail(w, r, errWrongPIN)
		return
	}
	if err := s.completeLogin(w, r, &sess, u, method); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"stage": string(store.StageFull), "next": "done", "name": u.Name})
}

// completeLogin starts a full session for u and records the login.
func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request, old *store.Session, u store.User, method string) error {
	if _, err := s.startSession(w, r, old, u.ID, store.StageFull, method); err != nil {
		return err
	}
	if err := s.st.AddLogin(r.Context(), store.LoginEvent{UserID: u.ID, At: time.Now(), Method: method, Client: s.clientSummary(r), Success: true}); err != nil {
		return fmt.Errorf("record login: %w", err)
	}
	s.log.Info("login", "user", u.ID, "method", method)
	return nil
}

var errBadCredentials = errorf(http.StatusUnauthorized, "bad_credentials", "E-mail or password is not correct.")

// loginPassword is the non-biometric login; the PIN follows when it is required.
func (s *Server) loginPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	ip := s.clientIP(r)
	if err := s.allow(ctx, ip, ""); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.st.UserByEmail(ctx, normalEmail(req.Email))
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.PasswordHash == "") {
		checkSecret(s.opts.Pepper, dummyHash, req.Password)
		s.metrics.rejects.WithLabelValues("bad_credentials").Inc()
		if err := s.failed(ctx, clientKey(ip)); err != nil {
			s.fail(w, r, err)
			return
		}
		s.fail(w, r, errBadCredentials)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.allow(ctx, ip, passKey(u.ID)); err != nil {
		s.fail(w, r, err)
		return
	}
	ok, err := checkSecret(s.opts.Pepper, u.PasswordHash, req.Password)
	if err != nil {
		s.fail(w, r, fmt.Errorf("check password of user %d: %w", u.ID, err))
		return
	}
	if !ok {
		err := errors.Join(s.failed(ctx, clientKey(ip), passKey(u.ID)),
			s.st.AddLogin(ctx, store.LoginEvent{UserID: u.ID, At: time.Now(), Method: "password", Client: s.clientSummary(r)}))
		s.metrics.rejects.WithLabelValues("bad_credentials").Inc()
		s.log.Info("login failed", "user", u.ID, "method", "password", "reason", "bad_credentials")
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.fail(w, r, errBadCredentials)
		return
	}
	var old *store.Session
	if sess, err := s.session(r); err == nil {
		old = &sess
	}
	if s.needPIN(u) {
		if _, err := s.startSession(w, r, old, u.ID, store.StagePending, "password"); err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"stage": string(store.StagePending), "next": "pin", "name": u.Name})
		return
	}
	if err := s.completeLogin(w, r, old, u, "password"); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"stage": string(store.StageFull), "next": "done", "name": u.Name})
}

// needPIN reports whether u must give the PIN after the face or password.
func (s *Server) needPIN(u store.User) bool { return !s.opts.PINOptional && u.PINHash != "" }

func normalEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// notFoundAs maps store.ErrNotFound to e.
func notFoundAs(err error, e *apiError) error {
	if errors.Is(err, store.ErrNotFound) {
		return e
	}
	return err
}
