package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// pageScripts names each page's JavaScript entry module under static/.
var pageScripts = map[string]string{
	"login":     "login.js",
	"pin":       "pin.js",
	"password":  "password.js",
	"enroll":    "enroll.js",
	"face":      "enroll.js",
	"profile":   "profile.js",
	"admin":     "admin.js",
	"reset":     "reset.js",
	"error":     "page.js",
	"signedout": "page.js",
}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for name := range pageScripts {
		files := []string{"templates/layout.html", "templates/" + name + ".html"}
		if name == "enroll" || name == "face" {
			files = append(files, "templates/capture.html")
		}
		t, err := template.ParseFS(templateFS, files...)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s page: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// me is the signed-in person as GET /api/me describes them.
type me struct {
	ID             int64     `json:"id"`
	Name           string    `json:"name"`
	Email          string    `json:"email"`
	Role           string    `json:"role"`
	FaceEnrolledAt time.Time `json:"face_enrolled_at"`
	Logins         []login   `json:"logins"`
	PINMinLength   int       `json:"pin_min_length"`
}

type login struct {
	At      time.Time `json:"at"`
	Method  string    `json:"method"`
	Client  string    `json:"client"`
	Success bool      `json:"success"`
}

// invite is GET /api/invites/{token}.
type invite struct {
	Name         string  `json:"name"`
	Email        string  `json:"email"`
	Role         string  `json:"role"`
	PINMinLength int     `json:"pin_min_length"`
	Consent      consent `json:"consent"`
}

// consent is the binding consent text in one language, as GET /api/consent gives it.
type consent struct {
	Version string `json:"version"`
	Lang    string `json:"lang"`
	Text    string `json:"text"`
}

// openInvite is one entry of GET /api/admin/invites.
type openInvite struct {
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at"`
}

// page is what every template sees.
type page struct {
	Name  string // template and body data-page
	Title string // message key
	Lang  string
	Path  string // for the language switch, always local
	Me    *me
	Data  any
	cat   catalog
}

type langLink struct {
	Code, Label string
	Current     bool
}

// T returns the text for key in the page language.
func (p *page) T(key string) string { return p.cat.text(p.Lang, key) }

// TWith returns the text for key with {name} replaced by value.
func (p *page) TWith(key, name string, value any) string {
	return strings.ReplaceAll(p.T(key), "{"+name+"}", fmt.Sprint(value))
}

// Texts returns the JavaScript's texts.
func (p *page) Texts() map[string]string { return p.cat.scriptTexts(p.Lang) }

// Script is the page's entry module.
func (p *page) Script() string { return pageScripts[p.Name] }

// Langs lists the language switch entries.
func (p *page) Langs() []langLink {
	var out []langLink
	for _, l := range languages {
		out = append(out, langLink{Code: l, Label: p.cat.text(l, "lang.name"), Current: l == p.Lang})
	}
	return out
}

// Time renders t as a <time> element the script localises to the viewer's zone.
func (p *page) Time(t time.Time) template.HTML {
	if t.IsZero() {
		return ""
	}
	return template.HTML(fmt.Sprintf(`<time datetime="%s">%s</time>`,
		template.HTMLEscapeString(t.UTC().Format(time.RFC3339)), template.HTMLEscapeString(formatTime(p.Lang, t))))
}

// Method names a login method ("face+pin") in the page language.
func (p *page) Method(m string) string {
	key := "method." + m
	if s := p.cat.text(p.Lang, key); s != key {
		return s
	}
	return m
}

func (s *server) newPage(r *http.Request, name, title string) *page {
	path := r.URL.Path
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	return &page{Name: name, Title: title, Lang: pickLang(r), Path: localPage(path), cat: s.catalog}
}

// render writes a page; a template failure becomes a plain 500 rather than half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, p *page) {
	var buf bytes.Buffer
	if err := s.pages[p.Name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render page", "page", p.Name, "err", err)
		http.Error(w, "Internal error while rendering the page.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Language", p.Lang)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorInfo is the error page's content.
type errorInfo struct {
	Code, Title, Text string
	Retry             bool
}

func (s *server) renderError(w http.ResponseWriter, r *http.Request, status int, e errorInfo) {
	p := s.newPage(r, "error", e.Title)
	p.Data = e
	s.render(w, r, status, p)
}

// apiDownRetry is the Retry-After of the page shown while the API or its store is down.
const apiDownRetry = "5"

func (s *server) apiDown(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", apiDownRetry)
	s.renderError(w, r, http.StatusServiceUnavailable, errorInfo{
		Code: "backend_down", Title: "error.down_title", Text: "error.down_text", Retry: true,
	})
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusNotFound, errorInfo{
		Code: "not_found", Title: "error.notfound_title", Text: "error.notfound_text",
	})
}

// currentUser asks the API who is signed in; nil when nobody (fully) is.
func (s *server) currentUser(w http.ResponseWriter, r *http.Request) (*me, error) {
	var m me
	status, err := s.getJSON(w, r, "/api/me", &m)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, nil
	}
	return &m, nil
}

func (s *server) root(w http.ResponseWriter, r *http.Request) {
	u, err := s.currentUser(w, r)
	switch {
	case errors.Is(err, errAPIDown):
		s.apiDown(w, r)
	case u != nil:
		http.Redirect(w, r, "/profile", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	}
}

// loginPage offers face and password sign-in; Data is true when the camera starts by itself.
func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "login", "login.title")
	p.Data = s.kiosk
	s.render(w, r, http.StatusOK, p)
}

// pinPage asks for the PIN; Data is the first factor it follows ("face", "password" or ""),
// so the PIN field's description says what was accepted and what is asked.
func (s *server) pinPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "pin", "pin.title")
	if via := r.URL.Query().Get("via"); via == "face" || via == "password" {
		p.Data = via
	} else {
		p.Data = ""
	}
	s.render(w, r, http.StatusOK, p)
}

// signedOutPage confirms the sign-out; the camera stays off until the person chooses again.
func (s *server) signedOutPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, s.newPage(r, "signedout", "signedout.title"))
}

func (s *server) passwordPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, s.newPage(r, "password", "password.title"))
}

// linkFound reads a one-time link's details from the API into v. When the link is unknown,
// used or expired, or the API fails, it renders the error page of kind ("invite", "reset":
// the error.<kind>_title and error.<kind>_text texts) and returns false.
func (s *server) linkFound(w http.ResponseWriter, r *http.Request, target string, v any, kind string) bool {
	status, err := s.getJSON(w, r, target, v)
	switch {
	case err != nil:
		s.apiDown(w, r)
		return false
	case status == http.StatusNotFound || status == http.StatusGone || status == http.StatusBadRequest:
		s.renderError(w, r, http.StatusNotFound, errorInfo{
			Code: kind + "_invalid", Title: "error." + kind + "_title", Text: "error." + kind + "_text",
		})
		return false
	case status != http.StatusOK:
		s.renderError(w, r, status, errorInfo{
			Code: kind + "_error", Title: "error." + kind + "_title", Text: "error.generic_text", Retry: true,
		})
		return false
	}
	return true
}

// enrollData is the enrollment page's content.
type enrollData struct {
	Token  string
	Invite invite
}

func (s *server) enrollPage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	var inv invite
	if !s.linkFound(w, r, "/api/invites/"+url.PathEscape(token)+"?lang="+pickLang(r), &inv, "invite") {
		return
	}
	p := s.newPage(r, "enroll", "enroll.title")
	p.Data = enrollData{Token: token, Invite: inv}
	s.render(w, r, http.StatusOK, p)
}

// resetLink is GET /api/reset/{token}.
type resetLink struct {
	Name         string    `json:"name"`
	Email        string    `json:"email"`
	Password     bool      `json:"password"`
	PIN          bool      `json:"pin"`
	ExpiresAt    time.Time `json:"expires_at"`
	PINMinLength int       `json:"pin_min_length"`
}

// resetData is the reset page's content.
type resetData struct {
	Token string
	Link  resetLink
}

// resetPage lets the person a reset link was issued for set a new PIN and/or password.
func (s *server) resetPage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	var link resetLink
	if !s.linkFound(w, r, "/api/reset/"+url.PathEscape(token), &link, "reset") {
		return
	}
	p := s.newPage(r, "reset", "reset.title")
	p.Data = resetData{Token: token, Link: link}
	s.render(w, r, http.StatusOK, p)
}

// signedIn renders the page only for a signed-in user, else sends them to /login.
func (s *server) signedIn(w http.ResponseWriter, r *http.Request) *me {
	u, err := s.currentUser(w, r)
	if err != nil {
		s.apiDown(w, r)
		return nil
	}
	if u == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	return u
}

// mePage returns the handler of a page about the signed-in person: the profile, and the
// face capture of /profile/face, which shows the consent text in the page's language.
func (s *server) mePage(name, titleKey string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := s.signedIn(w, r)
		if u == nil {
			return
		}
		p := s.newPage(r, name, titleKey)
		p.Me = u
		if name == "face" {
			var c consent
			if status, err := s.getJSON(w, r, "/api/consent?lang="+p.Lang, &c); err != nil || status != http.StatusOK {
				s.apiDown(w, r)
				return
			}
			p.Data = c
		}
		s.render(w, r, http.StatusOK, p)
	}
}

// adminData is the admin page's content.
type adminData struct {
	Users      []me
	Invites    []openInvite
	LookAlikes lookAlikes
	Settings   adminSettings
}

// adminSettings is GET /api/admin/settings: how sign-in is configured.
type adminSettings struct {
	PINOptional bool `json:"pin_optional"`
	Liveness    bool `json:"liveness"`
}

// lookAlikes is GET /api/admin/lookalikes: enrolled people whose faces lie within Within.
type lookAlikes struct {
	Within float64 `json:"within"`
	Pairs  []struct {
		A, B     struct{ Name string }
		Distance float64 `json:"distance"`
	} `json:"pairs"`
}

func (s *server) adminPage(w http.ResponseWriter, r *http.Request) {
	u := s.signedIn(w, r)
	if u == nil {
		return
	}
	if u.Role != "admin" {
		s.renderError(w, r, http.StatusForbidden, errorInfo{
			Code: "forbidden", Title: "error.forbidden_title", Text: "error.forbidden_text",
		})
		return
	}
	var d adminData
	if err := s.getList(w, r, "/api/admin/users", "users", &d.Users); err != nil {
		s.apiDown(w, r)
		return
	}
	if err := s.getList(w, r, "/api/admin/invites", "invites", &d.Invites); err != nil {
		s.apiDown(w, r)
		return
	}
	if status, err := s.getJSON(w, r, "/api/admin/lookalikes", &d.LookAlikes); err != nil || status != http.StatusOK {
		s.apiDown(w, r)
		return
	}
	if status, err := s.getJSON(w, r, "/api/admin/settings", &d.Settings); err != nil || status != http.StatusOK {
		s.apiDown(w, r)
		return
	}
	p := s.newPage(r, "admin", "admin.title")
	p.Me = u
	p.Data = d
	s.render(w, r, http.StatusOK, p)
}

// getList reads a JSON list that the API returns either bare or wrapped as {key: [...]}.
func (s *server) getList(w http.ResponseWriter, r *http.Request, target, key string, v any) error {
	var raw json.RawMessage
	status, err := s.getJSON(w, r, target, &raw)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s: status %d: %w", target, status, errAPIDown)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var wrapped map[string]json.RawMessage
		if err := json.Unmarshal(raw, &wrapped); err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
		raw = wrapped[key]
		if raw == nil {
			return nil
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	return nil
}
