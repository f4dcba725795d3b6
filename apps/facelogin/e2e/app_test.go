package e2e

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The person the journeys enroll. PIN and password are what she types into the pages.
const (
	amyName     = "Amy Farrah Fowler"
	amyEmail    = "amy@example.com"
	amyPIN      = "471108"
	amyPassword = "correct horse battery staple"
)

// server is `facelogin serve` on SQLite in a data folder, restartable on the same data.
type server struct {
	t    *testing.T
	c    config
	bin  string
	dir  string // logs
	data string
	addr string
	base string
	p    *proc
	// flags are extra flags of `facelogin serve`.
	flags []string
}

func newServer(t *testing.T, c config, flags ...string) *server {
	dir := t.TempDir()
	addr := freeAddr(t)
	s := &server{t: t, c: c, bin: binary(t, c), dir: dir, data: filepath.Join(dir, "data"), addr: addr, base: "http://" + addr, flags: flags}
	s.start()
	return s
}

// env is the configuration every facelogin command of this server gets.
func (s *server) env() []string {
	return []string{
		"FACELOGIN_DATA_DIR=" + s.data,
		"FACELOGIN_MODELS=" + s.c.models,
	}
}

func (s *server) start() {
	s.t.Helper()
	s.p = start(s.t, s.dir, "serve", s.env(), s.bin, append([]string{"serve", "--addr", s.addr, "--data-dir", s.data, "--models", s.c.models}, s.flags...)...)
	waitReady(s.t, s.p, s.base+"/readyz", 90*time.Second)
}

func (s *server) restart() {
	s.t.Helper()
	s.p.stop()
	s.start()
}

// invite creates an invitation with the admin CLI, as the first admin would, and returns
// the path of its link on this server.
func invite(t *testing.T, env []string, bin, name, email, role string) string {
	t.Helper()
	out := run(t, env, bin, "admin", "invite", "--email", email, "--name", name, "--role", role)
	return invitePath(t, out)
}

var inviteLink = regexp.MustCompile(`\S*/enroll/[A-Za-z0-9_\-.~%]+`)

func invitePath(t *testing.T, out string) string {
	t.Helper()
	m := inviteLink.FindString(out)
	if m == "" {
		t.Fatalf("no invite link in the admin CLI's output:\n%s", out)
	}
	u, err := url.Parse(m)
	if err != nil {
		t.Fatalf("invite link %q: %v", m, err)
	}
	return u.Path
}

// enroll walks through the invitation page: consent, PIN and password, then the guided
// capture with the browser's camera. shots names screenshots (prefix) or is "".
func enroll(b *chrome, c config, base, path, shots string) {
	b.t.Helper()
	b.do("open the invitation", 30*time.Second,
		chromedp.Navigate(base+path),
		chromedp.WaitVisible(css("#enroll-form")),
	)
	if got := b.text("#enroll-consent .lead strong"); got != amyName {
		b.t.Errorf("invitation is for %q, want %q", got, amyName)
	}
	if b.text("#consent-text") == "" {
		b.t.Error("the consent text is empty")
	}
	if shots != "" {
		b.screenshot(c, shots+"-enroll-consent")
	}
	// Without ticking the box the page refuses and says why.
	b.do("submit without consent", 10*time.Second,
		chromedp.Click(css("#enroll-submit")),
		chromedp.WaitVisible(css("#enroll-error")),
	)
	fillEnrollForm(b)
	if shots != "" {
		if b.try(30*time.Second, chromedp.WaitVisible(css("#samples li:nth-child(2)"))) == nil {
			b.screenshot(c, shots+"-enroll-capture")
		}
	}
	if state := captureDone(b); state != "done" {
		b.t.Fatalf("enrollment ended in state %q: %s", state, b.describe())
	}
	if shots != "" {
		b.screenshot(c, shots+"-enroll-done")
	}
}

// captureEnds are the states in which the face capture stopped.
var captureEnds = []string{"done", "not-live", "too-similar", "capture-timeout", "samples-differ", "duplicate",
	"save-failed", "ws-closed", "error", "slow", "camera-denied", "camera-missing", "camera-busy", "camera-unsupported", "camera-timeout"}

// liveTries bounds the attempts a test starts until the server's random direction is one its
// fake camera shows. A looping video of still poses turns one way from the pose the capture
// starts on, so an attempt passes with probability 1/2. A CI run goes through dozens of such
// loops: with 8 tries (odds 1/256 each) about one run in ten failed by chance; with 24 a loop
// fails by chance with odds 2^-24.
const liveTries = 24

// captureDone waits for the end of a face capture and returns its state. With liveness (on by
// default) the direction is drawn per capture and a fake camera turns one way: a capture
// that ends not-live is started again, at most liveTries times.
func captureDone(b *chrome) string {
	b.t.Helper()
	var state string
	for try := 1; try <= liveTries; try++ {
		if state = b.waitState("capture", 120*time.Second, captureEnds...); state != "not-live" {
			return state
		}
		b.t.Logf("%s: capture %d saw no turn the asked way; start again", b.name, try)
		b.do("start again", 10*time.Second, chromedp.Click(css("#capture-restart")))
	}
	return state
}

// fillEnrollForm accepts the consent, chooses Amy's PIN and password on the invitation page
// and submits, then waits for the face capture step.
func fillEnrollForm(b *chrome) {
	b.t.Helper()
	b.do("fill the form", 20*time.Second,
		chromedp.Click(css("#accept")),
		chromedp.SendKeys(css("#new-pin"), amyPIN),
		chromedp.SendKeys(css("#new-pin2"), amyPIN),
		chromedp.SendKeys(css("#new-password"), amyPassword),
		chromedp.SendKeys(css("#new-password2"), amyPassword),
		chromedp.Click(css("#enroll-submit")),
		chromedp.WaitVisible(css("#capture")),
	)
}

// faceLogin opens /login, chooses face sign-in and returns how it ended: "pin" (recognised,
// PIN asked), "profile" (recognised, signed in) or the login page's state ("unknown",
// "ws-closed", ...). With liveness (on by default) the direction is drawn per attempt and a
// fake camera turns one way: an attempt that ends not-live is started again, at most liveTries
// times.
func faceLogin(b *chrome, base string, timeout time.Duration) string {
	b.t.Helper()
	var got string
	for try := 1; try <= liveTries; try++ {
		if got = faceLoginOnce(b, base, timeout); got != "not-live" {
			return got
		}
		b.t.Logf("%s: login %d saw no turn the asked way; start again", b.name, try)
	}
	return got
}

// faceLoginOnce opens the login page, chooses face sign-in and returns how that one attempt
// ended.
func faceLoginOnce(b *chrome, base string, timeout time.Duration) string {
	b.t.Helper()
	b.do("open the login page and choose face sign-in", 20*time.Second,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(css("#face-start")),
		chromedp.Click(css("#face-start")))
	return b.loginOutcome(timeout)
}

// loginOutcome waits until the login page reached an end.
func (b *chrome) loginOutcome(timeout time.Duration) string {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		v, err := chromedpEval(b, `location.pathname + "|" + ((document.getElementById("login") || {dataset: {}}).dataset.state || "")`)
		if err == nil {
			path, state, _ := strings.Cut(v, "|")
			switch {
			case path == "/login/pin":
				b.settle()
				return "pin"
			case path == "/profile":
				b.settle()
				return "profile"
			case path == "/login" && state != "" && !transient[state]:
				return state
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.t.Fatalf("%s: the login page did not reach an end in %v: %s", b.name, timeout, b.describe())
	return ""
}

// transient login states: the page is still working.
var transient = map[string]bool{"idle": true, "starting": true, "connecting": true, "scanning": true, "recognized": true}

func chromedpEval(b *chrome, expr string) (string, error) {
	return evalErr[string](b, expr)
}

// enterPIN completes the second factor and waits for the profile.
func enterPIN(b *chrome, pin string) {
	b.t.Helper()
	b.settle()
	b.do("enter the PIN", 30*time.Second,
		chromedp.WaitVisible(css("#pin")),
		chromedp.Clear(css("#pin")),
		chromedp.SendKeys(css("#pin"), pin),
		chromedp.Click(css(`#pin-form button[type="submit"]`)),
		chromedp.WaitVisible(css("#me")),
	)
}

// logout uses the sign-out button in the header, once the page's scripts have run (a click
// before that reaches a button without its handler).
func logout(b *chrome) {
	b.t.Helper()
	b.settle()
	b.do("sign out", 20*time.Second,
		chromedp.Click(css("#logout")),
		chromedp.WaitVisible(css("#signed-out")),
	)
}

// loginHistory returns the rows of the profile's sign-in table as "method|client|result".
func loginHistory(b *chrome) []string {
	b.t.Helper()
	rows := eval[[]string](b, `[...document.querySelectorAll("#history tbody tr")].map(
		tr => [...tr.cells].slice(1).map(td => td.textContent.trim()).join("|"))`)
	return rows
}

func describeRows(rows []string) string {
	return fmt.Sprintf("%d rows:\n  %s", len(rows), strings.Join(rows, "\n  "))
}
