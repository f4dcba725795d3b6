package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// viewport is a screen the sign-in pages must work on.
type viewport struct {
	name          string
	width, height int64
	mobile        bool
}

var (
	desktop = viewport{"desktop", 1280, 800, false}
	phone   = viewport{"phone", 390, 844, true}
)

// TestSignInExperience walks through the sign-in as employees meet it (issue 15), in English
// and German, on a desktop and a phone: sign-out lands on its own page and the camera waits
// for a choice; wrong PINs say how many tries are left and the last one closes the form; the
// next sign-in tells of those wrong PINs; a face login keeps looking for --face-time, nudges
// to the password when no face shows, and says "no face" in the page's language; limits say
// when to try again and offer the other way in, never "connection lost"; fields carry their
// errors for screen readers; German pages say "Sie"; no page scrolls sideways and tables
// become cards on the phone.
func TestSignInExperience(t *testing.T) {
	c := needConfig(t)
	// Sign-in limits on still photos, enrolled over the API: the head turn is TestLiveness*'s.
	srv := newServer(t, c, "--liveness=false")
	// A second server whose limits are low, so that a few failures reach them: one wrong
	// password per account, two unknown faces per address.
	limited := newServer(t, c, "--liveness=false", "--account-failures", "1", "--client-unknown-faces", "2", "--face-time", "1s")
	cams := t.TempDir()

	path := invite(t, srv.env(), srv.bin, amyName, amyEmail, "admin")
	enrollByAPI(t, c, srv.base, path, "amy")
	enrollByAPI(t, c, limited.base, invite(t, limited.env(), limited.bin, amyName, amyEmail, "user"), "amy")
	// An open invitation, for the consent box and the "Repeat PIN" field.
	pennyInvite := invite(t, srv.env(), srv.bin, "Penny", "penny@example.com", "user")

	amy := newChrome(t, c, "amy", photoCamera(t, c, cams, "amy", 3), browserOpts{})
	blank := newChrome(t, c, "blank", blankCamera(t, cams), browserOpts{})
	penny := newChrome(t, c, "penny", photoCamera(t, c, cams, "penny", 1), browserOpts{})

	for _, lang := range []string{"en", "de"} {
		for _, vp := range []viewport{desktop, phone} {
			t.Run(lang+"-"+vp.name, func(t *testing.T) {
				// shot checks the page state with axe-core in every language and size, and
				// keeps a picture of half of them.
				shot := func(b *chrome, name string) {
					if (lang == "en") == (vp == desktop) {
						docShot(t, c, b, lang+"-"+vp.name+"-"+name)
					} else {
						b.accessible(c, lang+"-"+vp.name+"-"+name)
					}
				}
				for _, b := range []*chrome{amy, blank, penny} {
					b.t = t
					b.setLang(srv.base, lang, "/login/password")
					var opts []chromedp.EmulateViewportOption
					if vp.mobile {
						opts = append(opts, chromedp.EmulateMobile)
					}
					b.do("viewport", 10*time.Second, chromedp.EmulateViewport(vp.width, vp.height, opts...))
				}
				tt := texts(lang)

				// The password path: the PIN field says what is asked, never "face recognised".
				passwordLogin(amy, srv.base, amyEmail, amyPassword)
				if got := amy.text("#pin-hello"); !strings.Contains(got, tt.passwordOK) {
					t.Errorf("PIN page after the password says %q, want %q", got, tt.passwordOK)
				}
				if desc := eval[string](amy, `document.getElementById("pin").getAttribute("aria-describedby")`); !strings.Contains(desc, "pin-hello") {
					t.Errorf("PIN field described by %q, want the page's question", desc)
				}
				noText(t, amy, tt.faceOK)
				wholeWidth(t, amy, vp)
				enterPIN(amy, amyPIN)

				// Sign-out: its own page, and the camera waits for a choice.
				logout(amy)
				if got := amy.text("#signed-out h1"); got != tt.signedOut {
					t.Errorf("after sign-out the page says %q, want %q", got, tt.signedOut)
				}
				wholeWidth(t, amy, vp)
				formal(t, amy, lang)
				shot(amy, "signed-out")
				amy.do("open the login page", 20*time.Second, chromedp.Navigate(srv.base+"/login"),
					chromedp.WaitVisible(css("#face-start")), chromedp.Sleep(time.Second))
				if on := eval[bool](amy, `!!document.getElementById("preview").srcObject`); on {
					t.Error("the camera started before the person chose face sign-in")
				}
				wholeWidth(t, amy, vp)

				// Three wrong PINs after the face: tries left, then the form closes.
				amy.do("choose face sign-in", 10*time.Second, chromedp.Click(css("#face-start")))
				if got := amy.loginOutcome(60 * time.Second); got != "pin" {
					t.Fatalf("face login ended with %q, want the PIN step: %s", got, amy.describe())
				}
				noName(t, amy)
				if got := amy.text("#pin-hello"); !strings.Contains(got, tt.faceOK) {
					t.Errorf("PIN page after the face says %q, want %q", got, tt.faceOK)
				}
				for i, left := range []string{tt.twoLeft, tt.oneLeft} {
					amy.do("wrong PIN", 20*time.Second,
						chromedp.Clear(css("#pin")),
						chromedp.SendKeys(css("#pin"), fmt.Sprintf("00000%d", i)),
						chromedp.Click(css(`#pin-form button[type="submit"]`)))
					if got := amy.waitText("#pin-error", left, 15*time.Second); !strings.Contains(got, left) {
						t.Errorf("wrong PIN %d says %q, want %q", i+1, got, left)
					}
					invalid(t, amy, "#pin", "pin-error")
					if i == 1 {
						shot(amy, "pin-tries-left")
					}
				}
				amy.do("third wrong PIN", 20*time.Second,
					chromedp.Clear(css("#pin")),
					chromedp.SendKeys(css("#pin"), "000009"),
					chromedp.Click(css(`#pin-form button[type="submit"]`)),
					chromedp.WaitVisible(css("#pin-ended")))
				if eval[bool](amy, `!document.getElementById("pin-form").hidden`) {
					t.Error("the PIN form stays open after the last wrong PIN")
				}
				if id := eval[string](amy, `document.activeElement.id`); id != "pin-start-over" {
					t.Errorf("after the last wrong PIN the focus is on %q, want the start-over button", id)
				}
				shot(amy, "pin-ended")

				// The next sign-in tells of the wrong PINs, with when.
				passwordLogin(amy, srv.base, amyEmail, amyPassword)
				enterPIN(amy, amyPIN)
				amy.do("failed-PIN notice", 10*time.Second, chromedp.WaitVisible(css("#failed-pins")))
				if got := amy.text("#failed-pins-text"); !strings.Contains(got, tt.threeWrong) {
					t.Errorf("notice says %q, want %q", got, tt.threeWrong)
				}
				if n := eval[int](amy, `document.querySelectorAll("#failed-pins-list time").length`); n != 3 {
					t.Errorf("notice lists %d times, want 3", n)
				}
				wholeWidth(t, amy, vp)
				if vp == phone && eval[string](amy, `getComputedStyle(document.querySelector("#history td")).display`) != "block" {
					t.Error("the sign-in history is a table on the phone, not cards")
				}
				shot(amy, "profile-failed-pins")
				amy.do("admin page", 20*time.Second, chromedp.Navigate(srv.base+"/admin"), chromedp.WaitVisible(css("#people")))
				wholeWidth(t, amy, vp)
				if vp == phone && eval[string](amy, `getComputedStyle(document.querySelector("#people td")).display`) != "block" {
					t.Error("the people table is a table on the phone, not cards")
				}
				shot(amy, "admin")
				formal(t, amy, lang)

				// Wrong password: both fields invalid and described by the message.
				logout(amy)
				amy.do("wrong password", 20*time.Second,
					chromedp.Navigate(srv.base+"/login/password"),
					chromedp.WaitVisible(css("#email")),
					chromedp.SendKeys(css("#email"), amyEmail),
					chromedp.SendKeys(css("#password"), "not her password"),
					chromedp.Click(css(`#password-form button[type="submit"]`)))
				amy.waitText("#password-error", tt.badPassword, 15*time.Second)
				invalid(t, amy, "#email", "password-error")
				invalid(t, amy, "#password", "password-error")

				// The invitation: the consent box shows its last line; "Repeat PIN" takes digits only.
				amy.do("open Penny's invitation", 20*time.Second,
					chromedp.Navigate(srv.base+pennyInvite), chromedp.WaitVisible(css("#enroll-form")),
					chromedp.SendKeys(css("#new-pin2"), "12ab34"))
				if got := eval[string](amy, `document.getElementById("new-pin2").value`); got != "1234" {
					t.Errorf("Repeat PIN holds %q after typing 12ab34, want 1234", got)
				}
				if hidden := eval[float64](amy, `(() => { const el = document.getElementById("consent-text");
					el.scrollTop = el.scrollHeight; return el.scrollHeight - el.clientHeight - el.scrollTop; })()`); hidden > 1 {
					t.Errorf("the consent box hides %.0f px of its text", hidden)
				}
				wholeWidth(t, amy, vp)

				// No face in view: a nudge to the password after a few seconds, "no face" after
				// --face-time (10 s), in the page's language, with guidance that does not chatter.
				blank.do("choose face sign-in", 20*time.Second,
					chromedp.Navigate(srv.base+"/login"), chromedp.WaitVisible(css("#face-start")),
					chromedp.Evaluate[chromedp.Void](guidanceRecorder),
					chromedp.Click(css("#face-start")))
				start := time.Now()
				blank.do("nudge", 20*time.Second, chromedp.WaitVisible(css("#nudge")))
				shot(blank, "login-nudge")
				if got := blank.loginOutcome(40 * time.Second); got != "no-face" {
					t.Fatalf("a camera without a face ended in %q, want no-face: %s", got, blank.describe())
				}
				if took := time.Since(start); took < 9*time.Second {
					t.Errorf("no face: gave up after %v, before the 10 s face time", took)
				}
				expectProblem(t, blank, tt.noFace)
				noText(t, blank, "Keep looking", "Not recognised yet;", "start again", "frames")
				if gaps := eval[[]float64](blank, `window.guidanceGaps`); len(gaps) > 0 {
					for _, g := range gaps {
						if g < 1400 {
							t.Errorf("guidance changed %v ms after the previous change: %v", g, gaps)
							break
						}
					}
				}
				formal(t, blank, lang)

				// Limits: the page says when to try again and the other way in, never "lost".
				// Amy's password past her account's limit offers her face.
				amy.setLang(limited.base, lang, "/login/password")
				penny.setLang(limited.base, lang, "/login/password")
				var got string
				for range 2 {
					amy.do("wrong password on the limited server", 20*time.Second,
						chromedp.Navigate(limited.base+"/login/password"),
						chromedp.WaitVisible(css("#email")),
						chromedp.SendKeys(css("#email"), amyEmail),
						chromedp.SendKeys(css("#password"), "a guess"),
						chromedp.Click(css(`#password-form button[type="submit"]`)))
					if got = amy.waitText("#password-error", tt.tryAt, 15*time.Second); strings.Contains(got, tt.tryAt) {
						break
					}
				}
				for _, want := range []string{tt.tryAt, tt.orFace} {
					if !strings.Contains(got, want) {
						t.Errorf("password limit says %q, want %q", got, want)
					}
				}
				wholeWidth(t, amy, vp)
				shot(amy, "password-limited")
				// A stranger's face past the address's unknown-face limit: face sign-in pauses
				// there, with a time, and the password is offered.
				for i := range 4 {
					state := faceLogin(penny, limited.base, 40*time.Second)
					if state == "rate-limited" {
						break
					}
					if state != "unknown" || i == 3 {
						t.Fatalf("face login on the limited server ended in %q, want unknown, then rate-limited: %s", state, penny.describe())
					}
				}
				expectProblem(t, penny, tt.facePaused)
				if got := penny.text("#problem-text"); !strings.Contains(got, tt.tryAt) || !strings.Contains(got, tt.orPassword) {
					t.Errorf("face limit says %q, want %q and %q", got, tt.tryAt, tt.orPassword)
				}
				noText(t, penny, tt.lost)
				wholeWidth(t, penny, vp)
				formal(t, penny, lang)
				shot(penny, "login-limited")
			})
		}
	}
}

// uxTexts are the words the test expects on the pages of one language.
type uxTexts struct {
	passwordOK, faceOK, signedOut, twoLeft, oneLeft, threeWrong, badPassword string
	noFace, tryAt, orFace, orPassword, facePaused, lost                      string
}

func texts(lang string) uxTexts {
	if lang == "de" {
		return uxTexts{"Ihr Passwort ist richtig", "Ihr Gesicht wurde zugeordnet", "Sie haben sich abgemeldet",
			"Noch 2 Versuche", "Noch 1 Versuch", "3-mal eine falsche PIN", "E-Mail oder Passwort ist nicht richtig",
			"Es war kein Gesicht zu sehen", "wieder versuchen (in etwa", "mit Ihrem Gesicht an", "sofort anmelden",
			"Gesicht ist auf diesem Gerät pausiert", "Verbindung"}
	}
	return uxTexts{"Your password is correct", "Your face matched", "You have signed out",
		"2 tries left", "1 try left", "entered 3 times", "Email or password is not correct",
		"No face was seen", "try again at", "sign in with your face instead", "email and password right now",
		"Face sign-in is paused on this device", "connection"}
}

// guidanceRecorder notes the time between changes of the guidance live region's text.
const guidanceRecorder = `(() => {
	const el = document.getElementById("guidance");
	window.guidanceGaps = [];
	let last = 0;
	new MutationObserver(() => {
		const now = performance.now();
		if (last && el.textContent) window.guidanceGaps.push(Math.round(now - last));
		if (el.textContent) last = now;
	}).observe(el, { childList: true, characterData: true, subtree: true });
})()`

// passwordLogin signs in with e-mail and password and waits for the PIN page.
func passwordLogin(b *chrome, base, email, password string) {
	b.t.Helper()
	b.do("password login", 30*time.Second,
		chromedp.Navigate(base+"/login/password"),
		chromedp.WaitVisible(css("#email")),
		chromedp.SendKeys(css("#email"), email),
		chromedp.SendKeys(css("#password"), password),
		chromedp.Click(css(`#password-form button[type="submit"]`)),
		chromedp.WaitVisible(css("#pin")))
	b.settle()
}

// wholeWidth fails the test when the page scrolls sideways.
func wholeWidth(t *testing.T, b *chrome, vp viewport) {
	t.Helper()
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > int(vp.width) {
		t.Errorf("%s at %d px is %d px wide: %s", b.path(), vp.width, w, b.describe())
	}
}

// invalid checks that the field is marked invalid and described by the error element.
func invalid(t *testing.T, b *chrome, field, errID string) {
	t.Helper()
	inv := eval[string](b, fmt.Sprintf(`document.querySelector(%q).getAttribute("aria-invalid") || ""`, field))
	desc := eval[string](b, fmt.Sprintf(`document.querySelector(%q).getAttribute("aria-describedby") || ""`, field))
	if inv != "true" || !strings.Contains(" "+desc+" ", " "+errID+" ") {
		t.Errorf("%s: aria-invalid=%q aria-describedby=%q, want true and %s", field, inv, desc, errID)
	}
}

// noText fails the test when the page shows any of the words.
func noText(t *testing.T, b *chrome, words ...string) {
	t.Helper()
	text := eval[string](b, `document.body.innerText`)
	for _, w := range words {
		if strings.Contains(text, w) {
			t.Errorf("%s shows %q: %q", b.path(), w, text)
		}
	}
}

var informal = regexp.MustCompile(`(?i)\b(du|dich|dir|dein|deine|deinen|deinem|deiner|deines)\b`)

// formal fails the test when a German page addresses the reader as "du".
func formal(t *testing.T, b *chrome, lang string) {
	t.Helper()
	if lang != "de" {
		return
	}
	if w := informal.FindString(eval[string](b, `document.body.innerText`)); w != "" {
		t.Errorf("%s says %q; German pages say Sie", b.path(), w)
	}
}

// docPictures are the screenshots docs/operations.md shows.
var docPictures = map[string]bool{"en-desktop-signed-out": true, "de-phone-pin-tries-left": true,
	"en-desktop-login-limited": true, "de-phone-profile-failed-pins": true}

// docShot saves the viewport as artifacts/screenshots/name.png and, with -update-readme, the
// docPictures as small 128-colour docs/img/name.png.
func docShot(t *testing.T, c config, b *chrome, name string) {
	t.Helper()
	path := b.capture(c, name, chromedp.CaptureScreenshot())
	if *updateReadme && docPictures[name] {
		ffmpeg(t, "-i", path, "-vf", "scale='min(800,iw)':-1:flags=lanczos,split[a][b];[a]palettegen=max_colors=128[p];[b][p]paletteuse=dither=none",
			filepath.Join(c.root, "docs", "img", name+".png"))
	}
}

// enrollByAPI accepts the invitation at path and records the face from photos 1–3 of person
// over the real API, as the enrollment page would; TestJourney walks that page itself.
func enrollByAPI(t *testing.T, c config, base, path, person string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 60 * time.Second}
	token := strings.TrimPrefix(path, "/enroll/")
	call := func(method, p, ctype string, body []byte, wantStatus int) []byte {
		req, err := http.NewRequest(method, base+p, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, p, err)
		}
		defer res.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(res.Body)
		if res.StatusCode != wantStatus {
			t.Fatalf("%s %s: %d %s", method, p, res.StatusCode, buf.String())
		}
		return buf.Bytes()
	}
	var inv struct{ Consent struct{ Version string } }
	if err := json.Unmarshal(call("GET", "/api/invites/"+token, "", nil, http.StatusOK), &inv); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"token": token, "consent_version": inv.Consent.Version, "accept": true,
		"pin": amyPIN, "password": amyPassword})
	call("POST", "/api/enroll", "application/json", body, http.StatusCreated)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 1; i <= 3; i++ {
		b, err := os.ReadFile(filepath.Join(c.faces, "people", person, fmt.Sprintf("%s%d.png", person, i)))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := mw.CreateFormFile("sample", fmt.Sprintf("sample%d.png", i))
		w.Write(b)
	}
	mw.Close()
	call("PUT", "/api/me/face", mw.FormDataContentType(), buf.Bytes(), http.StatusOK)
}
