package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

func (s *Server) adminUsers(w http.ResponseWriter, r *http.Request, c caller) {
	users, err := s.st.Users(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("list users: %w", err))
		return
	}
	list := make([]userJSON, 0, len(users))
	for _, u := range users {
		list = append(list, toUserJSON(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": list})
}

// lookAlikes lists the enrolled people whose faces lie within the login threshold of each
// other: a face match names both of them as candidates, so they rely on their PINs more than
// others. The distance is that between their nearest samples.
func (s *Server) lookAlikes(w http.ResponseWriter, r *http.Request, c caller) {
	pairs := s.index.Pairs(s.opts.Threshold)
	type person struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	type pairJSON struct {
		A        person  `json:"a"`
		B        person  `json:"b"`
		Distance float32 `json:"distance"`
	}
	list := make([]pairJSON, 0, len(pairs))
	names := map[match.UserID]string{}
	name := func(id match.UserID) (string, error) {
		if n, ok := names[id]; ok {
			return n, nil
		}
		u, err := s.st.User(r.Context(), id)
		if err != nil {
			return "", err
		}
		names[id] = u.Name
		return u.Name, nil
	}
	for _, p := range pairs {
		a, err := name(p.A)
		if err == nil {
			var b string
			if b, err = name(p.B); err == nil {
				list = append(list, pairJSON{person{int64(p.A), a}, person{int64(p.B), b}, float32(math.Round(float64(p.Distance)*1000) / 1000)})
				continue
			}
		}
		if !errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, fmt.Errorf("read look-alike: %w", err))
			return
		}
		// Deleted on another replica since this index last polled: left out.
	}
	writeJSON(w, http.StatusOK, map[string]any{"within": s.opts.Threshold, "pairs": list})
}

// pathUser parses the {id} path value.
func pathUser(r *http.Request) (match.UserID, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errorf(http.StatusBadRequest, "bad_request", "The user id must be a positive number.")
	}
	return match.UserID(id), nil
}

var errNoUser = errorf(http.StatusNotFound, "not_found", "There is no such person.")

// adminDeleteUser removes a person and everything held about them.
func (s *Server) adminDeleteUser(w http.ResponseWriter, r *http.Request, c caller) {
	id, err := pathUser(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if id == c.user.ID {
		s.fail(w, r, errorf(http.StatusConflict, "self", "You cannot delete your own account here; ask another administrator."))
		return
	}
	if err := s.st.DeleteUser(r.Context(), id); err != nil {
		s.fail(w, r, notFoundAs(err, errNoUser))
		return
	}
	s.index.Delete(id)
	s.log.Info("user deleted", "user", id, "by", c.user.ID)
	w.WriteHeader(http.StatusNoContent)
}

// adminDeleteFace erases a person's face data.
func (s *Server) adminDeleteFace(w http.ResponseWriter, r *http.Request, c caller) {
	id, err := pathUser(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.st.User(r.Context(), id); err != nil {
		s.fail(w, r, notFoundAs(err, errNoUser))
		return
	}
	if err := s.eraseFace(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminCreateInvite(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Name  string     `json:"name"`
		Email string     `json:"email"`
		Role  store.Role `json:"role"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	inv, err := CreateInvite(r.Context(), s.st, InviteOptions{Name: req.Name, Email: req.Email, Role: req.Role,
		CreatedBy: c.user.ID, TTL: s.opts.InviteTTL, PublicURL: s.opts.PublicURL})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("invitation created", "by", c.user.ID, "role", req.Role)
	writeJSON(w, http.StatusCreated, inv)
}

var errNoOpenInvite = errorf(http.StatusNotFound, "invite_not_found", "There is no open invitation to this e-mail address.")

// adminRevokeInvite withdraws the open invitation to an e-mail: its link stops working.
func (s *Server) adminRevokeInvite(w http.ResponseWriter, r *http.Request, c caller) {
	email := normalEmail(r.PathValue("email"))
	if err := s.st.RevokeInvite(r.Context(), email); err != nil {
		s.fail(w, r, notFoundAs(err, errNoOpenInvite))
		return
	}
	s.log.Info("invitation revoked", "by", c.user.ID)
	w.WriteHeader(http.StatusNoContent)
}

// adminResendInvite replaces the invitation to an e-mail (open or expired, not used) by a
// new one for the same person and role: a new link, valid for InviteTTL from now.
func (s *Server) adminResendInvite(w http.ResponseWriter, r *http.Request, c caller) {
	if err := needType(r, "application/json"); err != nil {
		s.fail(w, r, err)
		return
	}
	old, err := s.st.InviteByEmail(r.Context(), normalEmail(r.PathValue("email")))
	if err != nil {
		s.fail(w, r, notFoundAs(err, errNoOpenInvite))
		return
	}
	inv, err := CreateInvite(r.Context(), s.st, InviteOptions{Name: old.Name, Email: old.Email, Role: old.Role,
		CreatedBy: c.user.ID, TTL: s.opts.InviteTTL, PublicURL: s.opts.PublicURL})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("invitation sent again", "by", c.user.ID, "role", old.Role)
	writeJSON(w, http.StatusCreated, inv)
}

func (s *Server) adminInvites(w http.ResponseWriter, r *http.Request, c caller) {
	invs, err := s.st.Invites(r.Context(), time.Now())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, fmt.Errorf("list invitations: %w", err))
		return
	}
	type inviteJSON struct {
		Name      string    `json:"name"`
		Email     string    `json:"email"`
		Role      string    `json:"role"`
		CreatedAt time.Time `json:"created_at"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	list := make([]inviteJSON, 0, len(invs))
	for _, inv := range invs {
		list = append(list, inviteJSON{inv.Name, inv.Email, string(inv.Role), inv.CreatedAt, inv.ExpiresAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"invites": list})
}
