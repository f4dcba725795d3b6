package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// InviteOptions describe an invitation.
type InviteOptions struct {
	Name, Email string
	Role        store.Role
	// CreatedBy is the admin inviting (0 for the command line).
	CreatedBy match.UserID
	// TTL is how long the invitation stays valid (0: DefaultInviteTTL).
	TTL time.Duration
	// PublicURL is put in front of the link's path ("" leaves the path relative).
	PublicURL string
}

// Invitation is a created invitation: the one-time token and the link to give the person.
// The token is shown only here; the store keeps its hash.
type Invitation struct {
	Token     string     `json:"token"`
	URL       string     `json:"url"`
	Name      string     `json:"name"`
	Email     string     `json:"email"`
	Role      store.Role `json:"role"`
	ExpiresAt time.Time  `json:"expires_at"`
}

// CreateInvite checks opts and stores a new invitation, which replaces an open one to the
// same e-mail. The first admin is invited this way from the command line (`facelogin admin
// invite --role admin`).
func CreateInvite(ctx context.Context, st *store.Store, opts InviteOptions) (Invitation, error) {
	opts.Name = strings.TrimSpace(opts.Name)
	opts.Email = normalEmail(opts.Email)
	if opts.Role == "" {
		opts.Role = store.RoleUser
	}
	if err := checkInvitee(opts.Name, opts.Email, opts.Role); err != nil {
		return Invitation{}, err
	}
	if _, err := st.UserByEmail(ctx, opts.Email); err == nil {
		return Invitation{}, errorf(http.StatusConflict, "email_taken", "%s already has an account.", opts.Email)
	} else if !errors.Is(err, store.ErrNotFound) {
		return Invitation{}, fmt.Errorf("look up %s: %w", opts.Email, err)
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultInviteTTL
	}
	token, hash := newToken()
	now := time.Now()
	inv := store.Invite{TokenHash: hash, Name: opts.Name, Email: opts.Email, Role: opts.Role,
		CreatedBy: opts.CreatedBy, CreatedAt: now, ExpiresAt: now.Add(opts.TTL)}
	if err := st.CreateInvite(ctx, inv); err != nil {
		return Invitation{}, fmt.Errorf("store invitation: %w", err)
	}
	return Invitation{Token: token, URL: strings.TrimRight(opts.PublicURL, "/") + "/enroll/" + token,
		Name: inv.Name, Email: inv.Email, Role: inv.Role, ExpiresAt: inv.ExpiresAt}, nil
}

func checkInvitee(name, email string, role store.Role) error {
	if !validName(name) {
		return errorf(http.StatusBadRequest, "bad_name", "Give the person's name: 1 to %d characters, without control or text-direction characters.", maxNameLen)
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		return errorf(http.StatusBadRequest, "bad_email", "Give a valid e-mail address such as amy@example.com.")
	}
	if role != store.RoleUser && role != store.RoleAdmin {
		return errorf(http.StatusBadRequest, "bad_role", "The role must be %q or %q.", store.RoleUser, store.RoleAdmin)
	}
	return nil
}

// maxNameLen is the most characters (not bytes) a name may have.
const maxNameLen = 200

// validName reports whether name is valid UTF-8 of 1 to maxNameLen characters, none of them
// a control character (NUL, newline …), a line or paragraph separator, or a bidirectional
// formatting character (U+202E and the like), which would let a name rearrange the text it is
// shown in. Joiners (U+200C, U+200D) stay allowed: some scripts need them.
func validName(name string) bool {
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameLen {
		return false
	}
	for _, c := range name {
		switch {
		case unicode.IsControl(c), c == '\u2028', c == '\u2029':
			return false
		case c == '\u061c', c == '\u200e', c == '\u200f', '\u202a' <= c && c <= '\u202e', '\u2066' <= c && c <= '\u2069':
			return false
		}
	}
	return true
}

var errNoInvite = errorf(http.StatusNotFound, "invite_not_found", "This invitation does not exist, was used already or has expired; ask an administrator for a new one.")

// invite finds the invitation for token: a stored one, or the bootstrap token while no
// admin exists (then bootstrap is true and the invite names nobody yet).
func (s *Server) invite(ctx context.Context, token string) (inv store.Invite, bootstrap bool, err error) {
	if token == "" || len(token) > 128 {
		return store.Invite{}, false, errNoInvite
	}
	inv, err = s.st.Invite(ctx, hashToken(token), time.Now())
	if err == nil {
		return inv, false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.Invite{}, false, fmt.Errorf("read invitation: %w", err)
	}
	if b := s.opts.BootstrapToken; b != "" && subtle.ConstantTimeCompare([]byte(b), []byte(token)) == 1 {
		n, err := s.st.CountAdmins(ctx)
		if err != nil {
			return store.Invite{}, false, fmt.Errorf("count admins: %w", err)
		}
		if n == 0 {
			return store.Invite{Role: store.RoleAdmin}, true, nil
		}
	}
	return store.Invite{}, false, errNoInvite
}

// lookupInvite is invite for a client: the lookup is reserved as a failure of the client's
// address first and released when the invitation exists, so guessing tokens is limited like
// guessing passwords.
func (s *Server) lookupInvite(ctx context.Context, ip, token string) (store.Invite, bool, error) {
	res, err := s.st.ReserveFailure(ctx, time.Now(), s.limits(ip, "")...)
	if err != nil {
		return store.Invite{}, false, s.limitError(err)
	}
	inv, bootstrap, err := s.invite(ctx, token)
	if errors.Is(err, errNoInvite) {
		s.metrics.rejects.WithLabelValues("invite_not_found").Inc()
		return inv, bootstrap, err
	}
	return inv, bootstrap, errors.Join(err, s.st.Release(ctx, res))
}

// getInvite shows an invitation and the consent text, in the language asked for (?lang=de),
// to the person invited.
func (s *Server) getInvite(w http.ResponseWriter, r *http.Request) {
	inv, _, err := s.lookupInvite(r.Context(), s.clientIP(r), r.PathValue("token"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": inv.Name, "email": inv.Email, "role": inv.Role, "expires_at": inv.ExpiresAt, "pin_min_length": s.opts.PINMinLength,
		"consent": ConsentFor(r.URL.Query().Get("lang")),
	})
}

// enroll creates the account of an invited person who accepted the consent text, and
// signs them in; the face samples follow with PUT /api/me/face.
func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token          string `json:"token"`
		ConsentVersion string `json:"consent_version"`
		ConsentLang    string `json:"consent_lang"`
		Accept         bool   `json:"accept"`
		PIN            string `json:"pin"`
		Password       string `json:"password"`
		// Name and Email are used only with the bootstrap token, whose invite names nobody.
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	inv, bootstrap, err := s.lookupInvite(ctx, s.clientIP(r), req.Token)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	consent, err := checkConsent(req.Accept, req.ConsentVersion, req.ConsentLang)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if bootstrap {
		inv.Name, inv.Email = strings.TrimSpace(req.Name), normalEmail(req.Email)
		if err := checkInvitee(inv.Name, inv.Email, inv.Role); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if req.PIN != "" || !s.opts.PINOptional {
		if err := s.checkNewPIN(req.PIN); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if err := checkNewPassword(req.Password); err != nil {
		s.fail(w, r, err)
		return
	}
	now := time.Now()
	u := store.User{Name: inv.Name, Email: inv.Email, Role: inv.Role,
		PasswordHash: hashSecret(s.opts.Pepper, req.Password), ConsentVersion: consent.Version, ConsentLang: consent.Lang, ConsentAt: now}
	if req.PIN != "" {
		u.PINHash = hashSecret(s.opts.Pepper, req.PIN)
	}
	u, err = s.st.CreateUser(ctx, u)
	if errors.Is(err, store.ErrConflict) {
		s.fail(w, r, errorf(http.StatusConflict, "email_taken", "%s already has an account; sign in instead.", inv.Email))
		return
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("create user: %w", err))
		return
	}
	if !bootstrap {
		err = s.st.UseInvite(ctx, inv.TokenHash, now)
	} else if n, cerr := s.st.CountAdmins(ctx); cerr != nil || n != 1 {
		// Two people raced with the bootstrap token: only the first keeps the account.
		err = errors.Join(cerr, store.ErrNotFound)
	}
	if err != nil {
		derr := s.st.DeleteUser(ctx, u.ID)
		if errors.Is(err, store.ErrNotFound) && derr == nil {
			err = errNoInvite
		}
		s.fail(w, r, errors.Join(err, derr))
		return
	}
	s.log.Info("enrolled", "user", u.ID, "role", u.Role, "consent_version", consent.Version, "consent_lang", consent.Lang, "bootstrap", bootstrap)
	var old *store.Session
	if sess, err := s.session(r); err == nil {
		old = &sess
	}
	if _, err := s.startSession(w, r, old, u.ID, store.StageFull, "enroll"); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"stage": store.StageFull, "user": toUserJSON(u)})
}
