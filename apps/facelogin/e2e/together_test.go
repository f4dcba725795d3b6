package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestTogetherBehindExhaustedAddress walks issue 15's newcomer behind an address that
// strangers exhausted, in English and German on a desktop and a phone: in a browser never
// used to sign in, the password alone is refused with the time to try again, and the page
// asks for the PIN as well; a wrong pair says that one of the three is wrong and marks the
// fields; the right password and PIN together sign in at once.
func TestTogetherBehindExhaustedAddress(t *testing.T) {
	c := needConfig(t)
	srv := newServer(t, c, "--client-failures", "2")
	const email, password, pin = "leonard@example.com", "a long enough password", "582914"
	acceptInvite(t, srv.base, invite(t, srv.env(), srv.bin, "Leonard Hofstadter", email, "user"), "en")
	// Strangers behind the same address (every browser here is on 127.0.0.1) mistype.
	stranger := newAPIClient(t, srv.base)
	for i := range 2 {
		if st := stranger.call("POST", "/api/login/password", map[string]string{"email": fmt.Sprintf("stranger%d@example.com", i), "password": "typo"}, nil); st != http.StatusUnauthorized {
			t.Fatalf("stranger's typo %d: %d, want 401", i+1, st)
		}
	}
	b := newChrome(t, c, "leonard", blankCamera(t, t.TempDir()), browserOpts{})
	for _, lang := range []string{"en", "de"} {
		for _, vp := range []viewport{desktop, phone} {
			t.Run(lang+"-"+vp.name, func(t *testing.T) {
				b.t = t
				name := lang + "-" + vp.name + "-password-together"
				// A browser never used to sign in: no known-device cookie.
				if _, err := chromedp.Call(b.tab, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
					t.Fatalf("forget the cookies: %v", err)
				}
				var opts []chromedp.EmulateViewportOption
				if vp.mobile {
					opts = append(opts, chromedp.EmulateMobile)
				}
				b.do("viewport", 10*time.Second, chromedp.EmulateViewport(vp.width, vp.height, opts...))
				b.setLang(srv.base, lang, "/login/password")
				tt := togetherTexts(lang)
				b.do("password alone", 20*time.Second,
					chromedp.Navigate(srv.base+"/login/password"),
					chromedp.WaitVisible(css("#email")),
					chromedp.SendKeys(css("#email"), email),
					chromedp.SendKeys(css("#password"), password),
					chromedp.Click(css(`#password-form button[type="submit"]`)),
					chromedp.WaitVisible(css("#together-pin")))
				got := b.waitText("#password-error", tt.askPIN, 10*time.Second)
				for _, want := range []string{tt.tryAt, tt.askPIN} {
					if !strings.Contains(got, want) {
						t.Errorf("the limited password says %q, want %q", got, want)
					}
				}
				if id := eval[string](b, `document.activeElement.id`); id != "together-pin" {
					t.Errorf("after the limit the focus is on %q, want the PIN field", id)
				}
				wholeWidth(t, b, vp)
				formal(t, b, lang)
				docShot(t, c, b, name)

				b.do("a wrong PIN with the password", 20*time.Second,
					chromedp.SendKeys(css("#together-pin"), "000000"),
					chromedp.Click(css(`#password-form button[type="submit"]`)))
				if got := b.waitText("#password-error", tt.wrongPair, 15*time.Second); !strings.Contains(got, tt.wrongPair) {
					t.Errorf("a wrong pair says %q, want %q", got, tt.wrongPair)
				}
				for _, f := range []string{"#email", "#password", "#together-pin"} {
					invalid(t, b, f, "password-error")
				}
				b.accessible(c, name+"-wrong")

				b.do("the right password and PIN together", 30*time.Second,
					chromedp.Clear(css("#together-pin")),
					chromedp.SendKeys(css("#together-pin"), pin),
					chromedp.Click(css(`#password-form button[type="submit"]`)),
					chromedp.WaitVisible(css("#me")))
				if got := b.text("#me-name"); got != "Leonard Hofstadter" {
					t.Errorf("signed in as %q", got)
				}
				logout(b)
			})
		}
	}
}

// togetherWords are the words TestTogetherBehindExhaustedAddress expects in one language.
type togetherWords struct{ tryAt, askPIN, wrongPair string }

func togetherTexts(lang string) togetherWords {
	if lang == "de" {
		return togetherWords{"wieder versuchen (in etwa", "geben Sie zusätzlich Ihre PIN ein", "E-Mail, Passwort oder PIN ist nicht richtig"}
	}
	return togetherWords{"try again at", "enter your PIN as well", "Email, password or PIN is not correct"}
}
