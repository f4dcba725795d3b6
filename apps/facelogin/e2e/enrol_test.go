package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The texts the capture must show (web/i18n), per language.
var (
	enrolTurn = map[string]map[string]string{
		"en": {"left": "Turn your head a little to your left, then look back into the camera.",
			"right": "Turn your head a little to your right, then look back into the camera."},
		"de": {"left": "Drehen Sie den Kopf ein wenig nach links und schauen Sie dann wieder in die Kamera.",
			"right": "Drehen Sie den Kopf ein wenig nach rechts und schauen Sie dann wieder in die Kamera."},
	}
	enrolRefused = map[string]map[string]string{
		"en": {"not-live": "We ask for a head turn so that a photo cannot be enrolled. Start again and turn your head the way the page asks.",
			"too-similar": "We keep only pictures that differ a little, so that one photo cannot be enrolled five times. Start again and turn your head slowly a little to one side and back while the pictures are taken."},
		"de": {"not-live": "Wir bitten um eine Kopfdrehung, damit sich kein Foto einrichten lässt. Beginnen Sie neu und drehen Sie den Kopf in die angezeigte Richtung.",
			"too-similar": "Wir behalten nur Bilder, die sich ein wenig unterscheiden, damit nicht ein Foto fünfmal eingerichtet wird. Beginnen Sie neu und drehen Sie den Kopf langsam ein wenig zur Seite und zurück, während die Bilder aufgenommen werden."},
	}
)

// watchGuidance records every text the capture's live region shows, in window.guides: the
// challenge may give way to the next guidance before a test reads it.
func watchGuidance(b *chrome) {
	b.t.Helper()
	b.do("watch the guidance", 10*time.Second, chromedp.Evaluate[chromedp.Void](`(() => {
		const el = document.getElementById("guidance");
		window.guides = [];
		new MutationObserver(() => window.guides.push(el.textContent)).observe(el, {childList: true, characterData: true, subtree: true});
	})()`))
}

// challengeShown waits until the capture shows the server's challenge (watchGuidance first)
// and checks its text in lang; it returns the direction.
func challengeShown(t *testing.T, b *chrome, lang string) string {
	t.Helper()
	var dir string
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) && dir == "" {
		dir, _ = chromedpEval(b, `document.getElementById("capture").dataset.turn || ""`)
		time.Sleep(100 * time.Millisecond)
	}
	if dir != "left" && dir != "right" {
		t.Fatalf("%s: no challenge shown within 45 s: %s", b.name, b.describe())
	}
	// The live region changes at most every 1.5 s.
	want := enrolTurn[lang][dir]
	var shown []string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if shown = eval[[]string](b, `window.guides`); slices.Contains(shown, want) {
			return dir
		}
	}
	t.Errorf("%s: the %s challenge to turn %s was not shown as %q; the guidance showed %q", b.name, lang, dir, want, shown)
	return dir
}

// refusedCapture waits for the capture's end and checks it refused the camera with the
// translated text of lang.
func refusedCapture(t *testing.T, b *chrome, lang, what string) {
	t.Helper()
	state := b.waitState("capture", 120*time.Second, captureEnds...)
	want, ok := enrolRefused[lang][state]
	if !ok {
		t.Fatalf("%s: enrolment ended in %q, want it refused (not-live or too-similar): %s", what, state, b.describe())
	}
	if got := b.text("#problem-text"); got != want {
		t.Errorf("%s: refused with %q, want the %s text %q", what, got, lang, want)
	}
	t.Logf("%s: refused (%s)", what, state)
}

// TestLivenessEnrolPage enrols with --liveness in the browser: a still photo of Amy (English,
// desktop) and a tilted print of her (German, phone) are refused with a translated message;
// a camera of her really turning (real photos at three poses) enrols on /profile/face once a
// challenge asks for a way it turns. Each capture shows the server's challenge in the
// page's language.
func TestLivenessEnrolPage(t *testing.T) {
	c := needConfig(t)
	srv := newServer(t, c, "--liveness", "--face-time", "30s")
	cams := t.TempDir()
	path := invite(t, srv.env(), srv.bin, amyName, amyEmail, "admin")

	still := newChrome(t, c, "amy-still", photoCamera(t, c, cams, "amy", 2), browserOpts{})
	still.setLang(srv.base, "en", "/login/password")
	still.do("desktop size and the invitation", 30*time.Second,
		chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(srv.base+path),
		chromedp.WaitVisible(css("#enroll-form")))
	watchGuidance(still)
	fillEnrollForm(still)
	challengeShown(t, still, "en")
	refusedCapture(t, still, "en", "a still photo")
	if n := eval[int](still, `document.querySelectorAll("#samples li").length`); n > 1 {
		t.Errorf("a still photo shows %d pictures taken, want at most 1", n)
	}
	still.close()

	print := newChrome(t, c, "amy-print", tiltedPrintCamera(t, c, cams, "amy", 2), browserOpts{})
	print.setLang(srv.base, "de", "/login/password")
	print.do("phone size", 10*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	passwordSignIn(print, srv.base)
	startProfileCapture(print, srv.base)
	for try := 1; try <= 2; try++ {
		if try > 1 {
			print.do("start again", 10*time.Second, chromedp.Evaluate[chromedp.Void](`window.guides = []`),
				chromedp.Click(css("#capture-restart")))
		}
		challengeShown(t, print, "de")
		refusedCapture(t, print, "de", "a tilted print")
		noSideScroll(t, print, "the refused capture on a phone")
	}
	print.close()

	// amy1 is turned to her right (by-eye labels in apps/facelogin/liveness/sets_test.go);
	// amy2 and amy3 look ahead. The challenge is drawn per capture: start again until one
	// asks for a way the camera turns.
	amy := newChrome(t, c, "amy-turn", posesCamera(t, c, cams, "amy", 2, 1, 3), browserOpts{})
	amy.setLang(srv.base, "en", "/login/password")
	amy.do("desktop size", 10*time.Second, chromedp.EmulateViewport(1280, 800))
	passwordSignIn(amy, srv.base)
	startProfileCapture(amy, srv.base)
	done := false
	for try := 1; try <= liveTries && !done; try++ {
		if try > 1 {
			amy.do("start again", 10*time.Second, chromedp.Evaluate[chromedp.Void](`window.guides = []`),
				chromedp.Click(css("#capture-restart")))
		}
		dir := challengeShown(t, amy, "en")
		state := amy.waitState("capture", 120*time.Second, captureEnds...)
		t.Logf("capture %d asked to turn %s: %s", try, dir, state)
		switch state {
		case "done":
			done = true
		case "not-live":
			// The camera turned the other way, or not within the window.
		default:
			t.Fatalf("a real turn: capture %d ended in %q: %s", try, state, amy.describe())
		}
	}
	if !done {
		t.Fatalf("%d captures in a row did not see the turn asked for", liveTries)
	}
	amy.do("open the profile", 20*time.Second,
		chromedp.Navigate(srv.base+"/profile"), chromedp.WaitVisible(css("#me")))
	if got := amy.text("#face-status"); strings.Contains(got, "None stored") {
		t.Errorf("face status after enrolling with the turn: %q", got)
	}
}

// passwordSignIn signs Amy in with her e-mail, password and PIN.
func passwordSignIn(b *chrome, base string) {
	b.t.Helper()
	passwordLogin(b, base, amyEmail, amyPassword)
	enterPIN(b, amyPIN)
}

// startProfileCapture opens /profile/face, agrees to the consent again and starts the camera.
func startProfileCapture(b *chrome, base string) {
	b.t.Helper()
	b.do("open face set-up and start", 30*time.Second,
		chromedp.Navigate(base+"/profile/face"),
		chromedp.WaitVisible(css("#capture-start")))
	watchGuidance(b)
	b.do("agree and start", 30*time.Second,
		chromedp.Click(css("#reconsent-box")),
		chromedp.Click(css("#capture-start")),
	)
}

// TestEnrolStillPhoto enrols without liveness from a camera that shows one still photo: the
// capture keeps one picture, tells the person (in German) that the picture is too much like
// one already taken, and ends saying the pictures were too much alike; nothing is stored.
func TestEnrolStillPhoto(t *testing.T) {
	c := needConfig(t)
	srv := newServer(t, c, "--liveness=false")
	path := invite(t, srv.env(), srv.bin, amyName, amyEmail, "user")
	b := newChrome(t, c, "amy-still", photoCamera(t, c, t.TempDir(), "amy", 2), browserOpts{})
	b.setLang(srv.base, "de", "/login/password")
	b.do("open the invitation", 30*time.Second,
		chromedp.Navigate(srv.base+path), chromedp.WaitVisible(css("#enroll-form")))
	watchGuidance(b)
	fillEnrollForm(b)
	const alike = "Dieses Bild gleicht einem schon aufgenommenen zu sehr. Drehen Sie den Kopf ein wenig."
	var shown []string
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && !slices.Contains(shown, alike); time.Sleep(200 * time.Millisecond) {
		shown = eval[[]string](b, `window.guides`)
	}
	if !slices.Contains(shown, alike) {
		t.Errorf("a still photo: the guidance showed %q, want %q", shown, alike)
	}
	refusedCapture(t, b, "de", "a still photo without liveness")
	if n := eval[int](b, `document.querySelectorAll("#samples li").length`); n != 1 {
		t.Errorf("a still photo shows %d pictures taken, want 1", n)
	}
	b.do("open the profile", 20*time.Second, chromedp.Navigate(srv.base+"/profile"), chromedp.WaitVisible(css("#me")))
	if got := b.text("#face-status"); !strings.Contains(got, "Keine") {
		t.Errorf("face status after a refused capture: %q, want none stored", got)
	}
}
