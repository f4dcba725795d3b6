package e2e

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// config is what the tests need from the machine, from the environment make test sets.
type config struct {
	chromium string // EDGELINE_TEST_CHROMIUM
	faces    string // EDGELINE_FACES
	models   string // EDGELINE_MODELS
	root     string // repository root
}

func needConfig(t *testing.T) config {
	t.Helper()
	c := config{
		chromium: os.Getenv("EDGELINE_TEST_CHROMIUM"),
		faces:    os.Getenv("EDGELINE_FACES"),
		models:   os.Getenv("EDGELINE_MODELS"),
		root:     repoRoot(),
	}
	if c.chromium == "" {
		t.Skip("set EDGELINE_TEST_CHROMIUM to Debian's /usr/bin/chromium to run the browser tests (make test does when it is installed; make setup installs it)")
	}
	if c.faces == "" {
		t.Skip("set EDGELINE_FACES to testdata/faces to run the browser tests (make test does)")
	}
	if c.models == "" {
		t.Skip("set EDGELINE_MODELS to the dlib models folder (make test does)")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is needed for the fake cameras; run make setup")
	}
	return c
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds cmd/facelogin once per test run: the tests run the real program.
func binary(t *testing.T, c config) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "facelogin-e2e-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "facelogin")
		goCmd, err := exec.LookPath("go")
		if err != nil {
			goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(goCmd, "build", "-o", binPath, "./cmd/facelogin")
		cmd.Dir = c.root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/facelogin: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a process the test started; it is stopped by its PID when the test ends.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

// logs collects the output files of every process a test started, printed when it fails.
type logs struct {
	mu    sync.Mutex
	paths []string
}

var procLogs sync.Map // *testing.T → *logs

func logsOf(t *testing.T) *logs {
	l, loaded := procLogs.LoadOrStore(t, &logs{})
	if !loaded {
		t.Cleanup(func() {
			procLogs.Delete(t)
			if !t.Failed() {
				return
			}
			for _, p := range l.(*logs).paths {
				t.Logf("---- last lines of %s ----\n%s", filepath.Base(p), tail(p, 40))
			}
		})
	}
	return l.(*logs)
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// start runs name (a label) as bin args... with extra environment; output goes to a log file
// in dir that survives restarts.
func start(t *testing.T, dir, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "==== %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	l := logsOf(t)
	l.mu.Lock()
	if !containsStr(l.paths, logPath) {
		l.paths = append(l.paths, logPath)
	}
	l.mu.Unlock()
	t.Cleanup(p.stop)
	return p
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// stop ends the process gracefully (SIGTERM), by force after 15 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the process abruptly, as a crash or an OOM kill would.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady polls url until it answers 200, failing the test when p exits or after timeout.
func waitReady(t *testing.T, p *proc, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			t.Fatalf("%s exited before it was ready:\n%s", p.name, tail(p.logPath, 30))
		}
		res, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("status %d: %s", res.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %v: %s", url, timeout, last)
}

// run runs a short command (the admin CLI) and returns its standard output.
func run(t *testing.T, env []string, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// ---- fake cameras -------------------------------------------------------------------------

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

// screenshot saves the whole page as artifacts/screenshots/name.png.
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
	return path
}

// updateReadme makes the journey also write docs/img/login.png, the README's screenshot.
var updateReadme = flag.Bool("update-readme", false, "write docs/img/login.png from the journey's login page")

// readmeShot saves the visible viewport as a screenshot and, with -update-readme, as the
// README's small 256-colour PNG.
func readmeShot(t *testing.T, c config, b *chrome, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.tab, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
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
