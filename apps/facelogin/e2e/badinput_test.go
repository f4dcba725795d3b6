package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBadInput checks that every way a camera login can go wrong ends in a clear message on
// the page and nothing waits forever: camera access denied, no camera at all, a camera that
// shows no face, a second tab, the connection dropping mid-login and the backend gone.
func TestBadInput(t *testing.T) {
	c := needConfig(t)
	srv := newServer(t, c)
	cams := t.TempDir()
	face := photoCamera(t, c, cams, "penny", 1)

	t.Run("camera denied", func(t *testing.T) {
		b := newChrome(t, c, "denied", face, browserOpts{denyCamera: true})
		for _, lang := range []string{"en", "de"} {
			b.setLang(srv.base, lang, "/login/password")
			if got := faceLogin(b, srv.base, 30*time.Second); got != "camera-denied" {
				t.Fatalf("%s: state %q, want camera-denied: %s", lang, got, b.describe())
			}
			expectProblem(t, b, map[string]string{"en": "Camera access is blocked", "de": "Kamerazugriff ist blockiert"}[lang])
			if eval[string](b, `document.getElementById("password-link").getAttribute("href")`) != "/login/password" {
				t.Error("no way to the password login next to the camera message")
			}
			// Keyboard users land on the way forward, not at the top of the page.
			if id := eval[string](b, `document.activeElement.id`); id != "retry" {
				t.Errorf("focus after the camera message is on %q, want the retry button", id)
			}
			b.screenshot(c, lang+"-login-camera-denied")
		}
	})

	t.Run("no camera", func(t *testing.T) {
		b := newChrome(t, c, "nocamera", "", browserOpts{noCamera: true})
		if got := faceLogin(b, srv.base, 30*time.Second); got != "camera-missing" {
			t.Fatalf("state %q, want camera-missing: %s", got, b.describe())
		}
		expectProblem(t, b, "No camera found")
		b.screenshot(c, "en-login-no-camera")
	})

	// One browser whose camera sees an empty wall serves the remaining cases.
	b := newChrome(t, c, "blank", blankCamera(t, cams), browserOpts{})

	t.Run("no face", func(t *testing.T) {
		for _, lang := range []string{"de", "en"} {
			b.setLang(srv.base, lang, "/login/password")
			b.do("open login", 20*time.Second, chromedp.Navigate(srv.base+"/login"))
			b.do("wait for the server's no-face guidance", 30*time.Second,
				chromedp.WaitVisible(css(`#guidance[data-code="no_face"]`)))
			want := map[string]string{"en": "No face in view", "de": "Kein Gesicht im Bild"}[lang]
			if got := b.text("#guidance"); !strings.Contains(got, want) {
				t.Errorf("%s guidance %q, want %q", lang, got, want)
			}
			b.screenshot(c, lang+"-login")
		}
		b.do("phone size", 20*time.Second,
			chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
			chromedp.Navigate(srv.base+"/login"),
			chromedp.WaitVisible(css(`#guidance[data-code="no_face"]`)))
		b.screenshot(c, "en-login-phone")
		b.do("kiosk size", 20*time.Second,
			chromedp.EmulateViewport(1920, 1080),
			chromedp.Navigate(srv.base+"/login"),
			chromedp.WaitVisible(css(`#guidance[data-code="no_face"]`)))
		b.screenshot(c, "en-login-kiosk")
		b.do("desktop size", 10*time.Second, chromedp.EmulateViewport(1280, 900))
	})

	t.Run("second tab", func(t *testing.T) {
		b.do("first tab scanning", 30*time.Second,
			chromedp.Navigate(srv.base+"/login"),
			chromedp.WaitVisible(css(`#login[data-state="scanning"]`)))
		second := b.newTab()
		if got := faceLogin(second, srv.base, 20*time.Second); got != "second-tab" {
			t.Fatalf("second tab: state %q, want second-tab: %s", got, second.describe())
		}
		expectProblem(t, second, "Sign-in is open in another tab")
		second.screenshot(c, "en-login-second-tab")
		// Continuing in the second tab switches the first one off, with a message there.
		second.do("take over", 20*time.Second,
			chromedp.Click(css("#takeover")),
			chromedp.WaitVisible(css(`#login[data-state="scanning"]`)))
		b.waitState("login", 20*time.Second, "taken-over")
		expectProblem(t, b, "Continued in another tab")
		second.close()
	})

	t.Run("connection lost and backend down", func(t *testing.T) {
		b.do("scanning", 30*time.Second,
			chromedp.Navigate(srv.base+"/login"),
			chromedp.WaitVisible(css(`#guidance[data-code="no_face"]`)))
		srv.p.kill()
		if got := b.loginOutcome(30 * time.Second); got != "ws-closed" {
			t.Fatalf("after the server died mid-login: state %q, want ws-closed: %s", got, b.describe())
		}
		expectProblem(t, b, "The connection was lost")
		b.screenshot(c, "en-login-connection-lost")
		b.do("retry", 10*time.Second, chromedp.Click(css("#retry")))
		if got := b.loginOutcome(30 * time.Second); got != "backend-down" {
			t.Fatalf("retry with the server down: state %q, want backend-down: %s", got, b.describe())
		}
		expectProblem(t, b, "The service is not reachable")
		b.screenshot(c, "en-login-backend-down")
		// When the service is back, trying again works without reloading the page.
		srv.start()
		b.do("retry after restart", 30*time.Second,
			chromedp.Click(css("#retry")),
			chromedp.WaitVisible(css(`#guidance[data-code="no_face"]`)))
	})
}

// expectProblem checks that the page shows a problem whose title contains want, with an
// explanation under it.
func expectProblem(t *testing.T, b *chrome, want string) {
	t.Helper()
	if visible := eval[bool](b, `!document.getElementById("problem").hidden`); !visible {
		t.Fatalf("%s: no problem message shown: %s", b.name, b.describe())
	}
	if got := b.text("#problem-title"); !strings.Contains(got, want) {
		t.Errorf("%s: problem title %q, want %q", b.name, got, want)
	}
	if b.text("#problem-text") == "" {
		t.Errorf("%s: problem without an explanation", b.name)
	}
}
