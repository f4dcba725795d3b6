package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// DefaultResetTTL is how long a reset link stays valid when Options.ResetTTL is zero.
const DefaultResetTTL = 24 * time.Hour

// Login history methods of reset links: an admin issued one, and the person used it.
const (
	methodResetIssued = "reset_issued"
	methodReset       = "reset"
)

// resetLink is an issued reset link. The token is shown only here; the store keeps its hash.
type resetLink struct {
	Token     string    `json:"token"`
	URL       string    `json:"url"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Password  bool      `json:"password"`
	PIN       bool      `json:"pin"`
	ExpiresAt time.Time `json:"expires_at"`
}

// adminIssueReset issues a one-time link with which a person sets a new password and/or
// PIN; it replaces an open one of theirs and is recorded in their login history.
func (s *Server) adminIssueReset(w http.ResponseWriter, r *http.Request, c caller) {
	id, err := pathUser(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		Password bool `json:"password"`
		PIN      bool `json:"pin"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if !req.Password && !req.PIN {
		s.fail(w, r, errorf(http.StatusBadRequest, "nothing_to_reset", "Choose what the link resets: the password, the PIN or both."))
		return
	}
	ctx := r.Context()
	u, err := s.st.User(ctx, id)
	if err != nil {
		s.fail(w, r, notFoundAs(err, errNoUser))
		return
	}
	token, hash := newToken()
	now := time.Now()
	rs := store.Reset{TokenHash: hash, UserID: id, Password: req.Password, PIN: req.PIN, CreatedBy: c.user.ID,
		CreatedAt: now, ExpiresAt: now.Add(s.opts.ResetTTL)}
	if err := s.st.CreateReset(ctx, rs); err != nil {
		s.fail(w, r, notFoundAs(err, errNoUser))
		return
	}
	if err := s.st.AddLogin(ctx, store.LoginEvent{UserID: id, At: now, Method: methodResetIssued, Client: s.clientSummary(r), Success: true}); err != nil {
		s.fail(w, r, notFoundAs(err, errNoUser))
		return
	}
	s.log.Info("reset link issued", "user", id, "by", c.user.ID, "password", req.Password, "pin", req.PIN)
	writeJSON(w, http.StatusCreated, resetLink{Token: token, URL: strings.TrimRight(s.opts.PublicURL, "/") + "/reset/" + token,
		Name: u.Name, Email: u.Email, Password: req.Password, PIN: req.PIN, ExpiresAt: rs.ExpiresAt})
}

var errNoReset = errorf(http.StatusNotFound, "reset_not_found", "This reset link does not exist, was used already or has expired; ask an administrator for a new one.")

// lookupReset finds the open reset link of token for a client. Like an invitation lookup,
// it is reserved as a failure of the client's address first and released when the link
// exists, so guessing links is limited like guessing passwords.
func (s *Server) lookupReset(ctx context.Context, ip, token string) (store.Reset, error) {
	res, err := s.st.ReserveFailure(ctx, time.Now(), s.limits(ip, "")...)
	if err != nil {
		return store.Reset{}, s.limitError(err)
	}
	if token == "" || len(token) > 128 {
		s.metrics.rejects.WithLabelValues("reset_not_found").Inc()
		return store.Reset{}, errNoReset
	}
	rs, err := s.st.Reset(ctx, hashToken(token), time.Now())
	if errors.Is(err, store.ErrNotFound) {
		s.metrics.rejects.WithLabelValues("reset_not_found").Inc()
		return rs, errNoReset
	}
	if err != nil {
		return rs, errors.Join(err, s.st.Release(context.WithoutCancel(ctx), res))
	}
	return rs, s.st.Release(ctx, res)
}

// getReset shows a reset link to the person it was issued for: whose it is and what it sets.
func (s *Server) getReset(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rs, err := s.lookupReset(ctx, s.clientIP(r), r.PathValue("token"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.st.User(ctx, rs.UserID)
	if err != nil {
		s.fail(w, r, notFoundAs(err, errNoReset))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": u.Name, "email": u.Email, "password": rs.Password, "pin": rs.PIN,
		"expires_at": rs.ExpiresAt, "pin_min_length": s.opts.PINMinLength})
}

// useReset sets the new secrets a reset link allows, spends the link and ends every
// session of the person, this browser's included: they sign in again with the new secret.
func (s *Server) useReset(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token    string `json:"token"`
		Password string `json:"password"`
		PIN      string `json:"pin"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	rs, err := s.lookupReset(ctx, s.clientIP(r), req.Token)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var pwHash, pinHash string
	if rs.Password {
		if err := checkNewPassword(req.Password); err != nil {
			s.fail(w, r, err)
			return
		}
		pwHash = hashSecret(s.opts.Pepper, req.Password)
	}
	if rs.PIN {
		if err := s.checkNewPIN(req.PIN); err != nil {
			s.fail(w, r, err)
			return
		}
		pinHash = hashSecret(s.opts.Pepper, req.PIN)
	}
	id, err := s.st.UseReset(ctx, rs.TokenHash, time.Now(), pwHash, pinHash,
		store.LoginEvent{Method: methodReset, Client: s.clientSummary(r), Success: true})
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, errNoReset)
		return
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("use reset link: %w", err))
		return
	}
	s.clearCookie(w)
	s.log.Info("secrets reset with a link, sessions ended", "user", id, "password", rs.Password, "pin", rs.PIN)
	writeJSON(w, http.StatusOK, map[string]any{"password": rs.Password, "pin": rs.PIN, "next": "/login"})
}
