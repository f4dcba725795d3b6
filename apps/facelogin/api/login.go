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

// The sign-in: a first factor, the password here or the face over the WebSocket (ws.go),
// then, when required, the PIN, which after a face match decides who signs in;
// completeLogin starts the full session.

var errBadCredentials = errorf(http.StatusUnauthorized, "bad_credentials", "E-mail or password is not correct.")

// loginPassword is the non-biometric login; the PIN follows when it is required, or comes
// with the password (loginTogether). The attempt
// is reserved before the password is checked, under the account, or for an address without
// one under the address, so the answers for both are the same.
func (s *Server) loginPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		// PIN, if given, is checked with the password in one step (together.go).
		PIN string `json:"pin"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.PIN != "" {
		s.loginTogether(w, r, normalEmail(req.Email), req.Password, req.PIN)
		return
	}
	ctx := r.Context()
	ip := s.clientIP(r)
	email := normalEmail(req.Email)
	u, err := s.st.UserByEmail(ctx, email)
	known := err == nil && u.PasswordHash != ""
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	account, hash := s.emailKey(email), dummyHash
	var ids []match.UserID
	if known {
		account, hash, ids = passKey(u.ID), u.PasswordHash, []match.UserID{u.ID}
	}
	res, err := s.st.ReserveFailure(ctx, time.Now(), s.deviceLimits(r, ip, account, ids...)...)
	if err != nil {
		s.fail(w, r, s.limitError(err))
		return
	}
	ok, err := s.verify(ctx, hash, req.Password)
	if err != nil {
		s.fail(w, r, errors.Join(err, s.st.Release(context.WithoutCancel(ctx), res)))
		return
	}
	if !ok || !known {
		s.metrics.rejects.WithLabelValues("bad_credentials").Inc()
		if known {
			if err := s.st.AddLogin(ctx, store.LoginEvent{UserID: u.ID, At: time.Now(), Method: "password", Client: s.clientSummary(r)}); err != nil {
				s.fail(w, r, err)
				return
			}
			s.log.Info("login failed", "user", u.ID, "method", "password", "reason", "bad_credentials")
		}
		s.fail(w, r, errBadCredentials)
		return
	}
	if err := s.st.Release(ctx, res); err != nil {
		s.fail(w, r, err)
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
		writeJSON(w, http.StatusOK, map[string]string{"stage": string(store.StagePending), "next": "pin"})
		return
	}
	if err := s.st.ResumeFace(ctx, u.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	told, err := s.completeLogin(w, r, old, u, "password")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stage": store.StageFull, "next": "done", "name": u.Name, "failed_pins": told})
}

var (
	errWrongPIN   = errorf(http.StatusUnauthorized, "wrong_pin", "That PIN is not correct.")
	errNotPending = errorf(http.StatusUnauthorized, "unauthorized", "Sign in with your face or password first.")
	errFacePaused = errorf(http.StatusForbidden, "face_paused",
		"Face sign-in is paused after too many wrong PINs; sign in with your e-mail and password.").with("next", "password")
)

// loginPIN checks the PIN of a pending session and completes the login under a new session
// id. After a face match the PIN decides who signs in: it is tried against the candidates
// nearest first, and the first whose PIN it is signs in (PINs need not be unique, so two
// matching candidates are impossible by construction: the nearer wins). The check is
// reserved in the store before any PIN is compared: one at a time per session, counted
// against the client, the session and every candidate.
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
	if errors.Is(err, store.ErrNotFound) {
		err = errNotPending
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	face := sess.Method == "face"
	cands := sess.Candidates
	if !face {
		cands = []match.UserID{sess.UserID}
	}
	if sess.Stage != store.StagePending || len(cands) == 0 || cands[0] == 0 {
		s.fail(w, r, errNotPending)
		return
	}
	if !validPIN(req.PIN, minPINLen) {
		s.fail(w, r, errorf(http.StatusBadRequest, "bad_pin", "A PIN is %d to %d digits.", minPINLen, maxPINLen))
		return
	}
	ip := s.clientIP(r)
	limits := s.deviceLimits(r, ip, "", cands...)
	onDevice := len(limits) == 1 && strings.HasPrefix(limits[0].Key, "device:")
	opts := store.PINCheckOptions{Session: sess.IDHash, At: time.Now(), Hold: checkHold, Candidates: cands,
		Limits: limits}
	opts.Limits = append(opts.Limits, store.Limit{Key: sessionKey(sess.IDHash), Max: pinTriesPerSession, Since: s.since()})
	if face {
		opts.FaceLimit = s.opts.FacePINFailures
	} else if !onDevice {
		opts.Limits = append(opts.Limits, store.Limit{Key: passPINKey(sess.UserID), Max: s.opts.AccountFailures, Since: s.since()})
	}
	check, err := s.st.BeginPINCheck(ctx, opts)
	var le *store.LimitError
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.fail(w, r, errNotPending)
		return
	case errors.Is(err, store.ErrCheckRunning):
		s.fail(w, r, errorf(http.StatusConflict, "check_running", "Your PIN is being checked; wait for the answer.").after(time.Second))
		return
	case errors.As(err, &le) && le.Limit.Key == sessionKey(sess.IDHash):
		s.endPending(w, r, sess)
		return
	case err != nil:
		s.fail(w, r, s.limitError(err))
		return
	}
	if len(check.Candidates) == 0 {
		// Every candidate's face sign-in was paused since the face was matched.
		err := errors.Join(s.st.CancelPINCheck(ctx, check), s.st.DeleteSession(ctx, sess.IDHash))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.clearCookie(w)
		s.fail(w, r, errFacePaused)
		return
	}
	u, checked, err := s.matchPIN(ctx, check.Candidates, req.PIN)
	if err != nil {
		// Nothing was compared (matchPIN compares all or nothing): the attempt is not counted.
		s.fail(w, r, errors.Join(err, s.st.CancelPINCheck(context.WithoutCancel(ctx), check)))
		return
	}
	if err := s.st.EndPINCheck(ctx, check, u.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	method := sess.Method + "+pin"
	if u.ID == 0 {
		s.wrongPIN(w, r, sess, method, checked)
		return
	}
	if !face {
		// A password sign-in ends a pause of face sign-in.
		if err := s.st.ResumeFace(ctx, u.ID); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	told, err := s.completeLogin(w, r, &sess, u, method)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stage": store.StageFull, "next": "done", "name": u.Name,
		"failed_pins": told, "pin_too_short": len(req.PIN) < s.opts.PINMinLength})
}

// matchPIN tries pin against the candidates in order and returns the first whose PIN it is
// (a zero User for none) and the candidates whose PIN was compared before. It compares in
// one argon2 slot, so under load it compares either every PIN it needs or none (busy).
func (s *Server) matchPIN(ctx context.Context, cands []match.UserID, pin string) (store.User, []match.UserID, error) {
	var us []store.User
	for _, id := range cands {
		u, err := s.st.User(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return store.User{}, nil, fmt.Errorf("read candidate: %w", err)
		}
		if u.PINHash != "" {
			us = append(us, u)
		}
	}
	done, err := s.argonSlot(ctx)
	if err != nil {
		return store.User{}, nil, err
	}
	defer done()
	var checked []match.UserID
	for _, u := range us {
		ok, err := checkSecret(s.opts.Pepper, u.PINHash, pin)
		if err != nil {
			return store.User{}, nil, fmt.Errorf("check PIN of user %d: %w", u.ID, err)
		}
		if ok {
			return u, checked, nil
		}
		checked = append(checked, u.ID)
	}
	return store.User{}, checked, nil
}

// wrongPIN answers a PIN that matched no candidate. Each candidate whose PIN was compared
// finds the failed attempt in their history and is told at the next sign-in; the third
// wrong PIN ends the pending session.
func (s *Server) wrongPIN(w http.ResponseWriter, r *http.Request, sess store.Session, method string, checked []match.UserID) {
	ctx := r.Context()
	var err error
	for _, id := range checked {
		err = errors.Join(err, notFoundAs(s.st.AddLogin(ctx, store.LoginEvent{UserID: id, At: time.Now(), Method: method, Client: s.clientSummary(r)}), nil))
		s.log.Info("login failed", "user", id, "method", method, "reason", "wrong_pin")
	}
	s.metrics.rejects.WithLabelValues("wrong_pin").Inc()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := s.st.Failures(ctx, sessionKey(sess.IDHash), s.since())
	if err != nil {
		s.fail(w, r, fmt.Errorf("count failures: %w", err))
		return
	}
	if n >= pinTriesPerSession {
		s.endPending(w, r, sess)
		return
	}
	s.fail(w, r, errWrongPIN.with("tries_left", pinTriesPerSession-n))
}

// endPending ends a pending session after its last wrong PIN: each further guess needs a new
// face match or the password again, not just a request.
func (s *Server) endPending(w http.ResponseWriter, r *http.Request, sess store.Session) {
	ctx := r.Context()
	if err := errors.Join(s.st.DeleteSession(ctx, sess.IDHash), s.st.ClearFailures(ctx, sessionKey(sess.IDHash))); err != nil {
		s.fail(w, r, err)
		return
	}
	s.clearCookie(w)
	s.fail(w, r, errorf(http.StatusUnauthorized, "unauthorized", "That PIN was wrong %d times; sign in again.", pinTriesPerSession).
		with("tries_left", 0))
}

// failedPINs is what a person is told at sign-in about wrong PINs given since the last one.
type failedPINs struct {
	Count int         `json:"count"`
	Last  []failedPIN `json:"last"`
}

type failedPIN struct {
	At     time.Time `json:"at"`
	Method string    `json:"method"`
	Client string    `json:"client"`
}

// completeLogin starts a full session for u, records the login and returns what the person
// is to be told about failed PINs since their previous login.
func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request, old *store.Session, u store.User, method string) (failedPINs, error) {
	ctx := r.Context()
	n, events, err := s.st.FailedPINs(ctx, u.ID, 10)
	if err != nil {
		return failedPINs{}, err
	}
	told := failedPINs{Count: n, Last: make([]failedPIN, 0, len(events))}
	for _, e := range events {
		told.Last = append(told.Last, failedPIN{At: e.At, Method: e.Method, Client: e.Client})
	}
	if _, err := s.startSession(w, r, old, u.ID, store.StageFull, method); err != nil {
		return failedPINs{}, err
	}
	s.rememberDevice(w, u.ID)
	if err := s.st.AddLogin(ctx, store.LoginEvent{UserID: u.ID, At: time.Now(), Method: method, Client: s.clientSummary(r), Success: true}); err != nil {
		return failedPINs{}, fmt.Errorf("record login: %w", err)
	}
	s.log.Info("login", "user", u.ID, "method", method, "failed_pins_before", n)
	return told, nil
}

// needPIN reports whether u must give the PIN after the face or password.
func (s *Server) needPIN(u store.User) bool { return !s.opts.PINOptional && u.PINHash != "" }

func normalEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }
