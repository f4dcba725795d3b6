package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// The browser half of the harness: fake cameras, headless Chromium tabs, screenshots.

// photoCamera makes a y4m video of a face photo for Chromium's fake camera: the 150×150 crop
// scaled up and centred on a 640×480 grey wall, so HOG detection finds it as it would a
// person in front of a webcam.
func photoCamera(t *testing.T, c config, dir, person string, n int) string {
	t.Helper()
	photo := filepath.Join(c.faces, "people", person, fmt.Sprintf("%s%d.png", person, n))
	if _, err := os.Stat(photo); err != nil {
		t.Fatalf("face photo: %v", err)
	}
	out := filepath.Join(dir, fmt.Sprintf("%s%d.y4m", person, n))
	ffmpeg(t, "-loop", "1", "-i", photo,
		"-vf", "scale=240:240,pad=640:480:(ow-iw)/2:(oh-ih)/2:color=0x8a8f8c,format=yuv420p",
		"-t", "2", "-r", "10", out)
	return out
}

// posesCamera makes a y4m of real photos of one person at different poses, each a second
// and a half, placed as photoCamera places one: the video loops, so the capture sees every
// pose again and again, as of a person moving their head between samples.
func posesCamera(t *testing.T, c config, dir, person string, ns ...int) string {
	t.Helper()
	var args []string
	name := person + "-poses"
	for _, n := range ns {
		photo := filepath.Join(c.faces, "people", person, fmt.Sprintf("%s%d.png", person, n))
		if _, err := os.Stat(photo); err != nil {
			t.Fatalf("face photo: %v", err)
		}
		args = append(args, "-loop", "1", "-t", "1.5", "-i", photo)
		name += fmt.Sprintf("-%d", n)
	}
	in := ""
	for i := range ns {
		in += fmt.Sprintf("[%d]", i)
	}
	out := filepath.Join(dir, name+".y4m")
	args = append(args, "-filter_complex",
		in+fmt.Sprintf("concat=n=%d:v=1,scale=240:240,pad=640:480:(ow-iw)/2:(oh-ih)/2:color=0x8a8f8c,format=yuv420p", len(ns)),
		"-r", "10", out)
	ffmpeg(t, args...)
	return out
}

// blankCamera makes a y4m of an empty, slightly noisy wall: a camera that shows no face.
func blankCamera(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "blank.y4m")
	ffmpeg(t, "-f", "lavfi", "-i", "color=c=0xc9d3cf:s=640x480:r=10",
		"-vf", "noise=alls=12:allf=t,format=yuv420p", "-t", "2", out)
	return out
}

func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-loglevel", "error", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ---- the browser ------------------------------------------------------------------------

// chrome is one headless Chromium process with one fake camera, and its first tab.
type chrome struct {
	t      *testing.T
	name   string
	tab    context.Context
	cancel context.CancelFunc
}

// browserOpts change how a browser starts.
type browserOpts struct {
	denyCamera bool // the person refuses camera access
	noCamera   bool // the device has no camera at all
}

// newChrome starts Chromium with camera as its webcam. The camera file is fixed for the
// life of the process, so each persona gets a browser of its own.
func newChrome(t *testing.T, c config, name, camera string, o browserOpts) *chrome {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(c.chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("lang", "en-US"),
	}
	if !o.noCamera {
		opts = append(opts,
			chromedp.Flag("use-fake-device-for-media-stream", true),
			chromedp.Flag("use-file-for-fake-video-capture", camera))
	}
	if !o.denyCamera {
		opts = append(opts, chromedp.Flag("use-fake-ui-for-media-stream", true))
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(alloc)
	b := &chrome{t: t, name: name, tab: tab, cancel: func() { cancelTab(); cancelAlloc() }}
	t.Cleanup(b.close)
	// The first action starts the browser; it must run without a deadline (see chromedp.Run).
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium (%s): %v", name, err)
	}
	if o.denyCamera {
		_, err := chromedp.CallBrowser(tab, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: "camera"},
			Setting:    browser.PermissionSettingDenied,
		})
		if err != nil {
			t.Fatalf("deny camera: %v", err)
		}
	}
	return b
}

func (b *chrome) close() {
	if b.cancel != nil {
		b.cancel()
		b.cancel = nil
	}
}

// newTab opens another tab in the same browser (same profile, same camera).
func (b *chrome) newTab() *chrome {
	b.t.Helper()
	tab, cancel := chromedp.NewContext(b.tab)
	nb := &chrome{t: b.t, name: b.name + "-tab", tab: tab, cancel: cancel}
	b.t.Cleanup(nb.close)
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		b.t.Fatalf("open tab: %v", err)
	}
	return nb
}

// do runs steps in the tab, failing the test with what the page showed when a step fails
// or the timeout passes: a wait that never ends is a bug in the page.
func (b *chrome) do(what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := b.try(timeout, steps...); err != nil {
		b.t.Fatalf("%s: %s: %v\npage: %s", b.name, what, err, b.describe())
	}
}

// settle waits until a navigation the page started itself (a redirect after a result) has
// finished loading, so element queries do not hit the document that is going away.
func (b *chrome) settle() {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if state, err := evalErr[string](b, "document.readyState"); err == nil && state == "complete" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// try runs steps with a timeout and returns the error.
func (b *chrome) try(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.tab, timeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// describe returns the URL, the login state and the visible text of the page, for failures.
func (b *chrome) describe() string {
	ctx, cancel := context.WithTimeout(b.tab, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " state=" +
		((document.querySelector("[data-state]") || {dataset: {}}).dataset.state) + "\n" +
		document.body.innerText.slice(0, 1500)`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// text returns the text content of the element matched by the CSS selector.
func (b *chrome) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.tab, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("%s: read %s: %v\npage: %s", b.name, sel, err, b.describe())
	}
	return strings.TrimSpace(s)
}

// waitText waits until the element matched by sel contains want (scripts may still be
// filling it in) and returns its text.
func (b *chrome) waitText(sel, want string, timeout time.Duration) string {
	b.t.Helper()
	var got string
	deadline := time.Now().Add(timeout)
	for {
		got = b.text(sel)
		if strings.Contains(got, want) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *chrome, expr string) T {
	b.t.Helper()
	v, err := evalErr[T](b, expr)
	if err != nil {
		b.t.Fatalf("%s: eval %s: %v", b.name, expr, err)
	}
	return v
}

func evalErr[T any](b *chrome, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.tab, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// location returns the tab's current URL path.
func (b *chrome) path() string {
	return eval[string](b, "location.pathname")
}

// screenshot saves the whole page as artifacts/screenshots/name.png and checks the page
// with axe-core (every picture is a page state).
func (b *chrome) screenshot(c config, name string) string {
	return b.capture(c, name, chromedp.FullScreenshot(100))
}

// viewShot saves only the visible viewport (a modal dialog's backdrop covers only that).
func (b *chrome) viewShot(c config, name string) string {
	return b.capture(c, name, chromedp.CaptureScreenshot())
}

func (b *chrome) capture(c config, name string, shot chromedp.Action[[]byte]) string {
	b.t.Helper()
	dir := filepath.Join(c.root, "artifacts", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	// Let fonts, images and the guidance text settle before the picture.
	b.try(2*time.Second, chromedp.Sleep(300*time.Millisecond))
	ctx, cancel := context.WithTimeout(b.tab, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.accessible(c, name)
	return path
}

// updateReadme makes the journey also write docs/img/login.png, the README's screenshot.
var updateReadme = flag.Bool("update-readme", false, "write docs/img/login.png from the journey's login page")

// readmeShot saves the visible viewport as a screenshot and, with -update-readme, as the
// README's small 256-colour PNG. It pictures the greeting after a face is recognised, which
// the page shows for 600 ms before it moves on by itself: the picture may miss it (then only
// -update-readme fails), and axe-core is not run on it, as the next page can replace it while
// axe runs, and holding that page load stalls the tab. The greeting is the login page with
// its guidance text changed; axe-core checks that page in its other states.
func readmeShot(t *testing.T, c config, b *chrome, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.tab, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		if *updateReadme {
			t.Errorf("screenshot %s: %v", name, err)
		} else {
			t.Logf("screenshot %s: %v (the page moved on)", name, err)
		}
		return
	}
	dir := filepath.Join(c.root, "artifacts", "screenshots")
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if *updateReadme {
		ffmpeg(t, "-i", path, "-vf", "scale=800:-1:flags=lanczos,split[a][b];[a]palettegen=max_colors=128[p];[b][p]paletteuse=dither=none",
			filepath.Join(c.root, "docs", "img", "login.png"))
	}
}

// css is shorthand for a CSS selector.
func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// setLang picks the page language with the visible switch, as a person would.
func (b *chrome) setLang(base, lang, next string) {
	b.t.Helper()
	b.do("switch language to "+lang, 15*time.Second,
		chromedp.Navigate(base+next),
		chromedp.WaitVisible(css(`.lang a[lang="`+lang+`"]`)),
		chromedp.Click(css(`.lang a[lang="`+lang+`"]`)),
		chromedp.WaitVisible(css(`html[lang="`+lang+`"] body`)),
	)
}

// waitState waits until the element with id has data-state equal to one of states and
// returns the state reached.
func (b *chrome) waitState(id string, timeout time.Duration, states ...string) string {
	b.t.Helper()
	sels := make([]string, len(states))
	for i, s := range states {
		sels[i] = fmt.Sprintf(`#%s[data-state="%s"]`, id, s)
	}
	b.do("wait for "+id+" state "+strings.Join(states, "|"), timeout,
		chromedp.WaitReady(css(strings.Join(sels, ", "))))
	return eval[string](b, fmt.Sprintf(`document.getElementById(%q).dataset.state`, id))
}
