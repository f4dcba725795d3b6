package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// The sign-in: a first factor, the password here or the face over the WebSocket (ws.go),
// then, when required, the PIN; completeLogin starts the full session.

var errBadCredentials = errorf(http.StatusUnauthorized, "bad_credentials", "E-mail or password is not correct.")

// loginPassword is the non-biometric login; the PIN follows when it is required.
func (s *Server) loginPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	ip, err := s.decodeAllowed(w, r, &req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
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

// needPIN reports whether u must give the PIN after the face or password.
func (s *Server) needPIN(u store.User) bool { return !s.opts.PINOptional && u.PINHash != "" }

func normalEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }
