package e2e

import (
	"bufio"
	"context"
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

	"github.com/edgeline/edgeline/internal/nodetest"
)

// config is what the tests need from the machine, from the environment make test sets.
type config struct {
	chromium string // EDGELINE_TEST_CHROMIUM
	faces    string // EDGELINE_FACES
	models   string // EDGELINE_MODELS
	axe      string // EDGELINE_TEST_AXE: axe-core's axe.min.js
	root     string // repository root
}

func needConfig(t *testing.T) config {
	t.Helper()
	c := config{
		chromium: os.Getenv("EDGELINE_TEST_CHROMIUM"),
		faces:    os.Getenv("EDGELINE_FACES"),
		models:   os.Getenv("EDGELINE_MODELS"),
		axe:      os.Getenv("EDGELINE_TEST_AXE"),
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
	if c.axe == "" {
		t.Fatal("set EDGELINE_TEST_AXE to axe-core's axe.min.js: the browser tests check every page with it (make axe fetches it, make test sets it)")
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
	code := nodetest.Main(m)
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
			if dir := os.Getenv("EDGELINE_E2E_LOGS"); dir != "" {
				keepLogs(t, dir, l.(*logs).paths)
			}
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

// keepLogs copies the logs of a test's processes into dir (EDGELINE_E2E_LOGS), passed or not,
// for reading what the servers said during a test that passed only after retries.
func keepLogs(t *testing.T, dir string, paths []string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+filepath.Base(p)), b, 0o600)
		}
		if err != nil {
			t.Logf("keep the logs in EDGELINE_E2E_LOGS: %v", err)
		}
	}
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
