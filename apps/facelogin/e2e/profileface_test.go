package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// meState is what GET /api/me says about a person's consent and face data.
type meState struct {
	Version string `json:"version"`
	Lang    string `json:"lang"`
	At      string `json:"at"`
	Face    string `json:"face"`
}

// readMe asks the API, in the page's session, for the consent on record and the face data.
func readMe(b *chrome) meState {
	b.t.Helper()
	s := eval[string](b, `(() => { const x = new XMLHttpRequest(); x.open('GET', '/api/me', false); x.send();
		const m = JSON.parse(x.responseText);
		return JSON.stringify({ version: m.consent.version, lang: m.consent.lang, at: m.consent.at || '', face: m.face_enrolled_at || '' }); })()`)
	var m meState
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		b.t.Fatalf("GET /api/me: %v: %s", err, s)
	}
	return m
}

// resetupFace sets Amy's face sign-in up again on /profile/face in German, to the end: the
// page asks for the consent again, in German; agreeing records a new consent with its
// version and language; the samples are taken from her camera and the page says it is done.
func resetupFace(t *testing.T, c config, base string) {
	t.Helper()
	amy := newChrome(t, c, "amy-face", posesCamera(t, c, t.TempDir(), "amy", 1, 2, 5), browserOpts{})
	amy.t = t
	amy.setLang(base, "de", "/login/password")
	passwordLogin(amy, base, amyEmail, amyPassword)
	enterPIN(amy, amyPIN)
	before := readMe(amy)
	amy.do("open face set-up", 20*time.Second,
		chromedp.Navigate(base+"/profile/face"),
		chromedp.WaitVisible(css("#capture-start")),
		chromedp.Click(css("#capture-start")),
		chromedp.WaitVisible(css("#reconsent-error")),
	)
	if got := amy.text("#consent-text"); !strings.Contains(got, "Sie können diese Einwilligung jederzeit widerrufen") {
		t.Errorf("the consent on /profile/face in German says %q", got)
	}
	if got := eval[string](amy, `document.getElementById('consent-text').lang`); got != "de" {
		t.Errorf("the consent text on /profile/face is marked lang=%q, want de", got)
	}
	version := eval[string](amy, `document.getElementById('reconsent-box').dataset.consentVersion`)
	if version == "" || !strings.Contains(amy.text("#consent-version"), version) {
		t.Errorf("the page names consent version %q as %q", version, amy.text("#consent-version"))
	}
	formal(t, amy, "de")
	amy.screenshot(c, "de-profile-face-consent")
	amy.do("agree and record", 20*time.Second,
		chromedp.Click(css("#reconsent-box")),
		chromedp.Click(css("#capture-start")),
	)
	if state := captureDone(amy); state != "done" {
		t.Fatalf("setting face sign-in up again in German ended in %q: %s", state, amy.describe())
	}
	amy.do("the page says it is done", 20*time.Second, chromedp.WaitVisible(css("#capture-done")))
	if got := amy.text("#done-title"); got != "Alles eingerichtet" {
		t.Errorf("after setting face sign-in up again the page says %q, want Alles eingerichtet", got)
	}
	formal(t, amy, "de")
	amy.screenshot(c, "de-profile-face-done")
	after := readMe(amy)
	if after.Version != version || after.Lang != "de" || after.At == "" || after.At == before.At {
		t.Errorf("consent on record after setting face sign-in up again: %+v (before %+v), want a new one of version %s in de", after, before, version)
	}
	if after.Face == "" {
		t.Errorf("no face data on record after setting face sign-in up again: %+v", after)
	}
}
