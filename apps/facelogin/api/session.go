package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// touchEvery limits how often a session's LastSeen is written.
const touchEvery = time.Minute

// newToken returns 32 random bytes in URL-safe base64 and the hex SHA-256 of that text,
// which is all the store keeps.
func newToken() (token, hash string) {
	var b [32]byte
	rand.Read(b[:])
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token)
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// session returns the request's valid session, or store.ErrNotFound. A session idle for
// longer than IdleTimeout is deleted and not returned.
func (s *Server) session(r *http.Request) (store.Session, error) {
	c, err := r.Cookie(s.cookie)
	if err != nil || c.Value == "" || len(c.Value) > 64 {
		return store.Session{}, store.ErrNotFound
	}
	ctx := r.Context()
	now := time.Now()
	sess, err := s.st.Session(ctx, hashToken(c.Value), now)
	if err != nil {
		return store.Session{}, err
	}
	if now.Sub(sess.LastSeen) > s.opts.IdleTimeout {
		if err := s.st.DeleteSession(ctx, sess.IDHash); err != nil {
			return store.Session{}, fmt.Errorf("delete idle session: %w", err)
		}
		return store.Session{}, store.ErrNotFound
	}
	if now.Sub(sess.LastSeen) > min(touchEvery, s.opts.IdleTimeout/10) {
		sess.LastSeen = now
		if err := s.st.UpdateSession(ctx, sess); err != nil {
			return store.Session{}, fmt.Errorf("touch session: %w", err)
		}
	}
	return sess, nil
}

// startSession replaces the request's session (if any) with a new one under a fresh id and
// sets its cookie: used on every change of who is signed in or how far.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, old *store.Session, user match.UserID, stage store.SessionStage, method string) (store.Session, error) {
	ctx := r.Context()
	if old != nil && old.IDHash != "" {
		if err := s.st.DeleteSession(ctx, old.IDHash); err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.Session{}, fmt.Errorf("delete old session: %w", err)
		}
	}
	token, hash := newToken()
	now := time.Now()
	life := s.opts.AbsoluteTimeout
	if stage != store.StageFull {
		life = min(life, s.opts.SignInTimeout)
	}
	sess := store.Session{
		IDHash:    hash,
		UserID:    user,
		Stage:     stage,
		Method:    method,
		Client:    s.clientSummary(r),
		CreatedAt: now,
		LastSeen:  now,
		ExpiresAt: now.Add(life),
	}
	if err := s.st.CreateSession(ctx, sess); err != nil {
		return store.Session{}, fmt.Errorf("create session: %w", err)
	}
	http.SetCookie(w, s.newCookie(token, int(life.Seconds())))
	return sess, nil
}

func (s *Server) newCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     s.cookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   !s.opts.InsecureCookies,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}
}

// clearCookie tells the browser to forget the session cookie.
func (s *Server) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, s.newCookie("", -1))
}

// caller is a fully signed-in person.
type caller struct {
	sess store.Session
	user store.User
}

// full wraps a handler that needs a fully signed-in person.
func (s *Server) full(h func(http.ResponseWriter, *http.Request, caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.caller(r.Context(), r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		h(w, r, c)
	}
}

// admin wraps a handler that needs a fully signed-in administrator.
func (s *Server) admin(h func(http.ResponseWriter, *http.Request, caller)) http.HandlerFunc {
	return s.full(func(w http.ResponseWriter, r *http.Request, c caller) {
		if c.user.Role != store.RoleAdmin {
			s.fail(w, r, errForbidden)
			return
		}
		h(w, r, c)
	})
}

func (s *Server) caller(ctx context.Context, r *http.Request) (caller, error) {
	sess, err := s.session(r)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (sess.Stage != store.StageFull || sess.UserID == 0)) {
		return caller{}, errUnauthorized
	}
	if err != nil {
		return caller{}, err
	}
	u, err := s.st.User(ctx, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return caller{}, errUnauthorized
	}
	if err != nil {
		return caller{}, fmt.Errorf("read user: %w", err)
	}
	return caller{sess: sess, user: u}, nil
}

// postSession ensures the browser holds a session (an anonymous one if none) and says how
// far its login has come.
func (s *Server) postSession(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	sess, err := s.session(r)
	if errors.Is(err, store.ErrNotFound) {
		err = s.countNewSession(r)
		if err == nil {
			sess, err = s.startSession(w, r, nil, 0, store.StageAnonymous, "")
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stage": sess.Stage, "pin_min_length": s.opts.PINMinLength})
}

// countNewSession counts a new anonymous session against the client's SessionRate.
func (s *Server) countNewSession(r *http.Request) error {
	wait, limited, full := s.newSessions.take(s.clientIP(r), time.Now())
	switch {
	case limited:
		s.metrics.rejects.WithLabelValues("session_rate").Inc()
		return errorf(http.StatusTooManyRequests, "rate_limited", "Too many new sessions from this device; wait a minute and try again.").after(wait)
	case full:
		s.metrics.rejects.WithLabelValues("session_rate").Inc()
		return busy(wait)
	}
	return nil
}

// logout ends the session.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	sess, err := s.session(r)
	if err == nil {
		err = s.st.DeleteSession(r.Context(), sess.IDHash)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	s.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
}
