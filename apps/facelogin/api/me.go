package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// userJSON is a person as the API shows them.
type userJSON struct {
	ID             int64      `json:"id"`
	Name           string     `json:"name"`
	Email          string     `json:"email"`
	Role           string     `json:"role"`
	FaceEnrolledAt *time.Time `json:"face_enrolled_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

func toUserJSON(u store.User) userJSON {
	j := userJSON{ID: int64(u.ID), Name: u.Name, Email: u.Email, Role: string(u.Role), CreatedAt: u.CreatedAt}
	if !u.FaceEnrolledAt.IsZero() {
		t := u.FaceEnrolledAt
		j.FaceEnrolledAt = &t
	}
	return j
}

type loginJSON struct {
	At      time.Time `json:"at"`
	Method  string    `json:"method"`
	Client  string    `json:"client"`
	Success bool      `json:"success"`
}

// historyLen is how many logins the profile shows.
const historyLen = 20

func (s *Server) getMe(w http.ResponseWriter, r *http.Request, c caller) {
	events, err := s.st.Logins(r.Context(), c.user.ID, historyLen)
	if err != nil {
		s.fail(w, r, fmt.Errorf("read login history: %w", err))
		return
	}
	logins := make([]loginJSON, 0, len(events))
	for _, e := range events {
		logins = append(logins, loginJSON{At: e.At, Method: e.Method, Client: e.Client, Success: e.Success})
	}
	type consentJSON struct {
		Version string     `json:"version"`
		Lang    string     `json:"lang"`
		At      *time.Time `json:"at"`
	}
	consent := consentJSON{Version: c.user.ConsentVersion, Lang: c.user.ConsentLang}
	if !c.user.ConsentAt.IsZero() {
		consent.At = &c.user.ConsentAt
	}
	writeJSON(w, http.StatusOK, struct {
		userJSON
		Logins       []loginJSON `json:"logins"`
		PINMinLength int         `json:"pin_min_length"`
		// Consent is the consent to face sign-in on record (empty when withdrawn).
		Consent consentJSON `json:"consent"`
	}{toUserJSON(c.user), logins, s.opts.PINMinLength, consent})
}

// putPIN changes the PIN after checking the current one.
func (s *Server) putPIN(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Current string `json:"current"`
		PIN     string `json:"pin"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkNewPIN(req.PIN); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkCurrent(r, c, pinKey(c.user.ID), c.user.PINHash, req.Current, errWrongPIN); err != nil {
		s.fail(w, r, err)
		return
	}
	c.user.PINHash = hashSecret(s.opts.Pepper, req.PIN)
	if err := s.st.UpdateUser(r.Context(), c.user); err != nil {
		s.fail(w, r, fmt.Errorf("update PIN: %w", err))
		return
	}
	if err := s.restartSessions(w, r, c); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("PIN changed", "user", c.user.ID)
	w.WriteHeader(http.StatusNoContent)
}

// putPassword changes the password after checking the current one.
func (s *Server) putPassword(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Current  string `json:"current"`
		Password string `json:"password"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := checkNewPassword(req.Password); err != nil {
		s.fail(w, r, err)
		return
	}
	wrong := errorf(http.StatusUnauthorized, "wrong_password", "The current password is not correct.")
	if err := s.checkCurrent(r, c, passKey(c.user.ID), c.user.PasswordHash, req.Current, wrong); err != nil {
		s.fail(w, r, err)
		return
	}
	c.user.PasswordHash = hashSecret(s.opts.Pepper, req.Password)
	if err := s.st.UpdateUser(r.Context(), c.user); err != nil {
		s.fail(w, r, fmt.Errorf("update password: %w", err))
		return
	}
	if err := s.restartSessions(w, r, c); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("password changed", "user", c.user.ID)
	w.WriteHeader(http.StatusNoContent)
}

// checkCurrent verifies a current secret before it is changed, counting failures like a
// login does (a stolen session must not become a PIN oracle): the attempt is reserved
// before the secret is compared and released when it was right.
func (s *Server) checkCurrent(r *http.Request, c caller, account, hash, current string, wrong *apiError) error {
	ctx := r.Context()
	res, err := s.st.ReserveFailure(ctx, time.Now(), s.limits(s.clientIP(r), account)...)
	if err != nil {
		return s.limitError(err)
	}
	if hash == "" {
		hash = dummyHash
	}
	ok, err := s.verify(ctx, hash, current)
	if err != nil {
		return errors.Join(fmt.Errorf("check secret of user %d: %w", c.user.ID, err), s.st.Release(context.WithoutCancel(ctx), res))
	}
	if !ok || hash == dummyHash {
		return wrong
	}
	return s.st.Release(ctx, res)
}

// restartSessions ends every session of the caller (other devices included) and gives this
// one a new id, after a credential change.
func (s *Server) restartSessions(w http.ResponseWriter, r *http.Request, c caller) error {
	if err := s.st.DeleteUserSessions(r.Context(), c.user.ID); err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	_, err := s.startSession(w, r, nil, c.user.ID, store.StageFull, c.sess.Method)
	return err
}
