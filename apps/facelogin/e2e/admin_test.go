package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// apiClient is a person using the app's JSON API directly, with their own cookies: the
// second person the admin pages list.
type apiClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newAPIClient(t *testing.T, base string) *apiClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &apiClient{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// call sends v as JSON (nil: no body) and decodes the answer into out (nil: ignored); it
// returns the status.
func (a *apiClient) call(method, path string, v, out any) int {
	a.t.Helper()
	var body bytes.Buffer
	if v != nil {
		json.NewEncoder(&body).Encode(v)
	}
	req, err := http.NewRequest(method, a.base+path, &body)
	if err != nil {
		a.t.Fatal(err)
	}
	if v != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	if out != nil {
		json.NewDecoder(res.Body).Decode(out)
	}
	return res.StatusCode
}

// TestAdminPages covers #15's consent, invitation, reset-link and phone-layout points in
// Chromium, in English and German at 1280×800 and 390×844: the consent text is binding in
// the page's language and shows its last line; an invitation's panel says for whom and
// until when, the open list follows invite, send-again and revoke without a reload; a reset
// link is issued once and sets a new secret that ends the person's sessions; the admin page
// never scrolls sideways and shows role, face data and actions on a phone; an invitation
// the person used leaves the list by itself; face sign-in set up again on /profile/face in
// German records a new German consent with its version.
func TestAdminPages(t *testing.T) {
	c := needConfig(t)
	srv := newServer(t, c)
	out := run(t, srv.env(), srv.bin, "admin", "invite", "--email", amyEmail, "--name", amyName, "--role", "admin")
	if want := "Public URL " + srv.base + ", from the server's configuration"; !strings.Contains(out, want) {
		t.Errorf("admin invite says %q; want %q", out, want)
	}
	path := invitePath(t, out)

	// Raj enrolls through the API (no face data): the second person on the admin page.
	raj := newAPIClient(t, srv.base)
	rajPath := invitePath(t, run(t, srv.env(), srv.bin, "admin", "invite", "--email", "raj@example.com", "--name", "Raj Koothrappali"))
	var rajInvite struct {
		Consent struct{ Version, Lang string }
	}
	if st := raj.call("GET", "/api/invites/"+strings.TrimPrefix(rajPath, "/enroll/")+"?lang=de", nil, &rajInvite); st != http.StatusOK {
		t.Fatalf("Raj's invitation: %d", st)
	}
	if st := raj.call("POST", "/api/enroll", map[string]any{"token": strings.TrimPrefix(rajPath, "/enroll/"), "accept": true,
		"consent_version": rajInvite.Consent.Version, "consent_lang": rajInvite.Consent.Lang, "pin": "246813", "password": "raj's long password"}, nil); st != http.StatusCreated {
		t.Fatalf("Raj enrolls: %d", st)
	}

	b := newChrome(t, c, "admin", blankCamera(t, t.TempDir()), browserOpts{})
	// Amy accepts the German consent text on a phone and skips the face for now.
	b.do("phone size", 10*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.setLang(srv.base, "de", path)
	checkConsentPage(t, b, c, "de", "phone")
	fillEnrollForm(b)
	b.do("skip the face for now", 30*time.Second,
		chromedp.WaitVisible(css("#capture-skip")),
		chromedp.Click(css("#capture-skip")),
		chromedp.WaitVisible(css("#me")),
	)
	if got := eval[string](b, `(() => { const x = new XMLHttpRequest(); x.open('GET', '/api/me', false); x.send();
		const c = JSON.parse(x.responseText).consent; return c.version + ' ' + c.lang; })()`); !strings.HasSuffix(got, " de") || strings.HasPrefix(got, " ") {
		t.Errorf("consent on record %q, want a version in de", got)
	}

	sizes := []struct {
		name string
		w, h int64
	}{{"desktop", 1280, 800}, {"phone", 390, 844}}
	var rajID string
	for _, lang := range []string{"en", "de"} {
		for _, size := range sizes {
			shot := fmt.Sprintf("%s-%s", lang, size.name)
			opts := []chromedp.EmulateViewportOption{}
			if size.name == "phone" {
				opts = append(opts, chromedp.EmulateMobile)
			}
			b.do("resize", 10*time.Second, chromedp.EmulateViewport(size.w, size.h, opts...))
			b.setLang(srv.base, lang, "/admin")
			b.do("open the admin page", 20*time.Second, chromedp.WaitVisible(css("#invite-form")))
			b.settle()
			noSideScroll(t, b, shot+" admin page")
			// Every cell of Raj's row, and his actions, lie within the screen.
			if off := eval[string](b, `(() => {
				const raj = [...document.querySelectorAll('#people tr[data-user-id]')].find(tr => tr.textContent.includes('raj@example.com'));
				const out = [];
				for (const el of [...raj.cells, ...raj.querySelectorAll('button')]) {
					const r = el.getBoundingClientRect();
					if (r.width === 0 || r.right > innerWidth + 0.5 || r.left < -0.5) out.push(el.textContent.trim() + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
				}
				return out.join('; ');
			})()`); off != "" {
				t.Errorf("%s: parts of Raj's row are off-screen (width %d): %s", shot, size.w, off)
			}
			rajID = eval[string](b, `[...document.querySelectorAll('#people tr[data-user-id]')].find(tr => tr.textContent.includes('raj@example.com')).dataset.userId`)

			// Invite, send again, revoke: the panel names the person, the list follows.
			email := fmt.Sprintf("cleo.%s@example.com", shot)
			b.do("invite Cleo", 20*time.Second,
				chromedp.SendKeys(css("#invite-name"), "Cleo "+shot),
				chromedp.SendKeys(css("#invite-email"), email),
				chromedp.Click(css(`#invite-form button[type="submit"]`)),
				chromedp.WaitVisible(css(`#invite-list li[data-email="`+email+`"]`)),
			)
			until := map[string]string{"en": "valid until", "de": "gültig bis"}[lang]
			if got := b.text("#invite-for"); !strings.Contains(got, "Cleo "+shot) || !strings.Contains(got, email) || !strings.Contains(got, until) {
				t.Errorf("%s: the result panel says %q; want for whom and %q", shot, got, until)
			}
			first := eval[string](b, `document.getElementById('invite-link').value`)
			b.do("send again", 20*time.Second, chromedp.Click(css(`button[data-action="resend-invite"][data-email="`+email+`"]`)))
			deadline := time.Now().Add(15 * time.Second)
			for eval[string](b, `document.getElementById('invite-link').value`) == first && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			second := eval[string](b, `document.getElementById('invite-link').value`)
			if second == first {
				t.Errorf("%s: sending again showed no new link", shot)
			}
			if n := eval[int](b, `document.querySelectorAll('#invite-list li[data-email="`+email+`"]').length`); n != 1 {
				t.Errorf("%s: %d open invitations to %s after sending again, want 1", shot, n, email)
			}
			noSideScroll(t, b, shot+" admin page with an invitation")
			b.screenshot(c, shot+"-admin-invite")

			// The invitation's consent page, in this language and size.
			tab := b.newTab()
			tab.do("resize", 10*time.Second, chromedp.EmulateViewport(size.w, size.h, opts...))
			tab.do("open the invitation", 20*time.Second, chromedp.Navigate(second), chromedp.WaitVisible(css("#enroll-form")))
			checkConsentPage(t, tab, c, lang, size.name)
			tab.close()

			b.do("revoke", 20*time.Second,
				chromedp.Click(css(`button[data-action="revoke-invite"][data-email="`+email+`"]`)),
				chromedp.WaitVisible(css("#confirm-yes")),
				chromedp.Click(css("#confirm-yes")),
				chromedp.WaitNotPresent(css(`#invite-list li[data-email="`+email+`"]`)),
			)
			if got := b.waitText("#invites-status", "Cleo "+shot, 5*time.Second); !strings.Contains(got, "Cleo "+shot) {
				t.Errorf("%s: after revoking the page says %q", shot, got)
			}
			if st := raj.call("GET", "/api/invites/"+second[strings.LastIndex(second, "/")+1:], nil, nil); st != http.StatusNotFound {
				t.Errorf("%s: the revoked link answers %d, want 404", shot, st)
			}

			// An invitation the person uses leaves the open list by itself, and the page
			// says so: Dana joins through her link while the admin looks at the list.
			dana := fmt.Sprintf("dana.%s@example.com", shot)
			b.do("invite Dana", 20*time.Second,
				chromedp.SendKeys(css("#invite-name"), "Dana "+shot),
				chromedp.SendKeys(css("#invite-email"), dana),
				chromedp.Click(css(`#invite-form button[type="submit"]`)),
				chromedp.WaitVisible(css(`#invite-list li[data-email="`+dana+`"]`)),
			)
			acceptInvite(t, srv.base, eval[string](b, `document.getElementById('invite-link').value`), lang)
			b.do("Dana's used invitation leaves the list", 20*time.Second,
				chromedp.WaitNotPresent(css(`#invite-list li[data-email="`+dana+`"]`)))
			closed := map[string]string{"en": "Dana " + shot + "'s invitation is closed", "de": "Die Einladung für Dana " + shot + " ist geschlossen"}[lang]
			if got := b.waitText("#invites-status", closed, 10*time.Second); !strings.Contains(got, closed) {
				t.Errorf("%s: after Dana joined the page says %q, want %q", shot, got, closed)
			}
			b.screenshot(c, shot+"-admin-invite-closed")

			// A reset link for Raj: shown once, with for whom and until when.
			b.do("issue a reset link", 20*time.Second,
				chromedp.SetValue(css("#reset-user"), rajID),
				chromedp.Click(css(`#reset-issue button[type="submit"]`)),
				chromedp.WaitVisible(css("#reset-result")),
			)
			if got := b.waitText("#reset-for", "Raj", 5*time.Second); !strings.Contains(got, "raj@example.com") || !strings.Contains(got, until) {
				t.Errorf("%s: the reset panel says %q", shot, got)
			}
			noSideScroll(t, b, shot+" admin page with a reset link")
			b.screenshot(c, shot+"-admin-reset")
			resetURL := eval[string](b, `document.getElementById('reset-link').value`)
			tab = b.newTab()
			tab.do("resize", 10*time.Second, chromedp.EmulateViewport(size.w, size.h, opts...))
			tab.do("open the reset link", 20*time.Second, chromedp.Navigate(resetURL), chromedp.WaitVisible(css("#reset-pin")))
			noSideScroll(t, tab, shot+" reset page")
			tab.screenshot(c, shot+"-reset")
			tab.close()
			if lang == "de" && size.name == "phone" {
				useReset(t, b, c, raj, resetURL)
			}
		}
	}
	resetupFace(t, c, srv.base)
}

// acceptInvite joins through the invitation link over the API, as its page would, in lang
// and without face data.
func acceptInvite(t *testing.T, base, link, lang string) {
	t.Helper()
	token := link[strings.LastIndex(link, "/")+1:]
	p := newAPIClient(t, base)
	var inv struct {
		Consent struct{ Version, Lang string }
	}
	if st := p.call("GET", "/api/invites/"+token+"?lang="+lang, nil, &inv); st != http.StatusOK {
		t.Fatalf("open the invitation %s: %d", link, st)
	}
	if st := p.call("POST", "/api/enroll", map[string]any{"token": token, "accept": true, "consent_version": inv.Consent.Version,
		"consent_lang": inv.Consent.Lang, "pin": "582914", "password": "a long enough password"}, nil); st != http.StatusCreated {
		t.Fatalf("join through %s: %d", link, st)
	}
}

// useReset sets Raj's new PIN through the reset link, in a tab of the admin's browser (which
// is signed out by it), and checks his other session ended and the new PIN works.
func useReset(t *testing.T, b *chrome, c config, raj *apiClient, link string) {
	t.Helper()
	const newPIN = "739251"
	if st := raj.call("GET", "/api/me", nil, nil); st != http.StatusOK {
		t.Fatalf("Raj's session before the reset: %d", st)
	}
	b.do("set a new PIN", 30*time.Second,
		chromedp.Navigate(link),
		chromedp.WaitVisible(css("#reset-pin")),
		chromedp.SendKeys(css("#reset-pin"), newPIN),
		chromedp.SendKeys(css("#reset-pin2"), newPIN),
		chromedp.Click(css("#reset-submit")),
		chromedp.WaitVisible(css("#reset-done")),
	)
	b.screenshot(c, "de-phone-reset-done")
	if st := raj.call("GET", "/api/me", nil, nil); st != http.StatusUnauthorized {
		t.Errorf("Raj's session after the reset: %d, want 401", st)
	}
	again := newAPIClient(t, raj.base)
	if st := again.call("POST", "/api/login/password", map[string]string{"email": "raj@example.com", "password": "raj's long password"}, nil); st != http.StatusOK {
		t.Fatalf("Raj's password after the reset: %d", st)
	}
	if st := again.call("POST", "/api/login/pin", map[string]string{"pin": newPIN}, nil); st != http.StatusOK {
		t.Errorf("Raj's new PIN: %d, want 200", st)
	}
	var me struct{ Logins []struct{ Method string } }
	again.call("GET", "/api/me", nil, &me)
	var methods []string
	for _, l := range me.Logins {
		methods = append(methods, l.Method)
	}
	if !containsStr(methods, "reset") || !containsStr(methods, "reset_issued") {
		t.Errorf("Raj's history %v lacks reset and reset_issued", methods)
	}
}

// checkConsentPage checks an invitation page shows the binding consent text in lang, whole
// (its last line inside the box), without a notice that the binding text is in another
// language and without sideways scrolling.
func checkConsentPage(t *testing.T, b *chrome, c config, lang, size string) {
	t.Helper()
	want := map[string]string{"en": "You can withdraw this consent at any time", "de": "Sie können diese Einwilligung jederzeit widerrufen"}[lang]
	if got := b.text("#consent-text"); !strings.Contains(got, want) {
		t.Errorf("%s %s: consent text %q lacks %q", lang, size, got, want)
	}
	if got := eval[string](b, `document.getElementById('consent-text').lang`); got != lang {
		t.Errorf("%s %s: the consent text is marked lang=%q", lang, size, got)
	}
	if body := b.text("body"); strings.Contains(body, "nur auf Englisch") || strings.Contains(body, "binding consent text is in English") {
		t.Errorf("%s %s: the page still says the binding text is English only", lang, size)
	}
	// The box is not cut: its content fits (no inner scrolling hides the last line).
	if cut := eval[bool](b, `(() => { const el = document.getElementById('consent-text'); return el.scrollHeight > el.clientHeight + 1; })()`); cut {
		t.Errorf("%s %s: the consent box cuts its text", lang, size)
	}
	noSideScroll(t, b, lang+" "+size+" consent page")
	b.screenshot(c, fmt.Sprintf("%s-%s-enroll-consent", lang, size))
}

// noSideScroll fails when the page is wider than the viewport.
func noSideScroll(t *testing.T, b *chrome, what string) {
	t.Helper()
	if w := eval[string](b, `document.documentElement.scrollWidth + ' ' + window.innerWidth`); func() bool {
		var sw, iw int
		fmt.Sscan(w, &sw, &iw)
		return sw > iw
	}() {
		t.Errorf("%s scrolls sideways: page %s px wide", what, w)
	}
}
