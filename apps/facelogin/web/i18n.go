package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed i18n/*.json
var i18nFS embed.FS

// languages the front end speaks, the first is the fallback.
var languages = []string{"en", "de"}

// langCookie remembers the language picked with the visible switch.
const langCookie = "facelogin_lang"

// catalog maps language → message key → text.
type catalog map[string]map[string]string

func loadCatalog() (catalog, error) {
	cat := catalog{}
	for _, lang := range languages {
		b, err := i18nFS.ReadFile("i18n/" + lang + ".json")
		if err != nil {
			return nil, fmt.Errorf("web: load %s texts: %w", lang, err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("web: parse i18n/%s.json: %w", lang, err)
		}
		cat[lang] = m
	}
	return cat, nil
}

// text returns the message for key in lang, falling back to English and then to the key
// itself so a missing text is visible instead of blank.
func (c catalog) text(lang, key string) string {
	if s, ok := c[lang][key]; ok {
		return s
	}
	if s, ok := c[languages[0]][key]; ok {
		return s
	}
	return key
}

// scriptTexts returns the messages the page's JavaScript needs (keys starting with "js.").
func (c catalog) scriptTexts(lang string) map[string]string {
	out := map[string]string{}
	for k, v := range c[languages[0]] {
		if strings.HasPrefix(k, "js.") {
			out[strings.TrimPrefix(k, "js.")] = v
		}
	}
	for k, v := range c[lang] {
		if strings.HasPrefix(k, "js.") {
			out[strings.TrimPrefix(k, "js.")] = v
		}
	}
	return out
}

// pickLang chooses the page language: the cookie set by the switch, else the best
// Accept-Language match, else English.
func pickLang(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && slices.Contains(languages, c.Value) {
		return c.Value
	}
	return negotiate(r.Header.Get("Accept-Language"))
}

// negotiate picks the supported language with the highest q-value in an Accept-Language
// header ("de-CH, en;q=0.8" → "de").
func negotiate(header string) string {
	best, bestQ := languages[0], -1.0
	for part := range strings.SplitSeq(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = f
		}
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if slices.Contains(languages, base) && q > bestQ && q > 0 {
			best, bestQ = base, q
		}
	}
	return best
}

// setLang stores the chosen language in a cookie and goes back to the page it came from.
func (s *server) setLang(w http.ResponseWriter, r *http.Request) {
	lang := r.PathValue("lang")
	if !slices.Contains(languages, lang) {
		s.notFound(w, r)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, localPage(r.URL.Query().Get("next")), http.StatusSeeOther)
}

// pages are the paths of this site's pages, the only places a redirect may lead to.
var pages = map[string]bool{"/": true, "/login": true, "/login/pin": true, "/login/password": true, "/signed-out": true,
	"/profile": true, "/profile/face": true, "/admin": true}

// localPage returns the path of p if p names one of this site's pages (an invitation page
// included), else "/". The language switch must not become an open redirect, however a
// browser would read what follows the first slash (tabs, backslashes, encoded characters),
// so only paths known to be pages pass; a query is dropped.
func localPage(p string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Opaque != "" || u.User != nil || u.Host != "" || u.RawPath != "" {
		return "/"
	}
	if pages[u.Path] {
		return u.Path
	}
	if token, ok := strings.CutPrefix(u.Path, "/enroll/"); ok && inviteToken(token) {
		return u.Path
	}
	return "/"
}

// inviteToken reports whether t can be an invitation token: 1 to 128 characters of the URL-safe
// alphabet the tokens are written in (and the bootstrap token's + and =).
func inviteToken(t string) bool {
	if t == "" || len(t) > 128 {
		return false
	}
	for _, c := range t {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-_.~+=", c)) {
			return false
		}
	}
	return true
}

// formatTime renders t in the page language, in UTC with the zone spelled out so a kiosk
// and a phone show the same thing.
func formatTime(lang string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.UTC()
	if lang == "de" {
		return t.Format("02.01.2006, 15:04") + " UTC"
	}
	return t.Format("Jan 2, 2006, 15:04") + " UTC"
}
