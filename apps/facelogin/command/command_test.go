package command

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/config"
)

func parse(t *testing.T, args ...string) config.Config {
	t.Helper()
	cfg, err := config.Parse(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return cfg
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// running is a server command (serve, api or web) run in this process.
type running struct {
	cancel context.CancelFunc
	done   chan error
	logs   *bytes.Buffer
}

func start(t *testing.T, cfg config.Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), logs: &bytes.Buffer{}}
	go func() { r.done <- Run(ctx, cfg, io.Discard, r.logs) }()
	deadline := time.Now().Add(90 * time.Second)
	for {
		res, err := http.Get("http://" + cfg.Addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return r
			}
		}
		select {
		case err := <-r.done:
			t.Fatalf("%s ended before it was ready: %v", cfg.Command, err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("%s not ready after 90 s", cfg.Command)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the run as SIGTERM would and waits for the graceful shutdown.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("serve ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down within 30 s")
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestServe runs `facelogin serve` on a fresh data folder with the real models: it creates
// the SQLite file, the descriptor key and the pepper (owner-only), serves the pages, the api
// and the health answers of docs/api.md, takes an invitation made by `facelogin admin
// invite`, shuts down gracefully, and after a restart keeps the same key and the invitation.
func TestServe(t *testing.T) {
	models := os.Getenv("EDGELINE_MODELS")
	if models == "" {
		t.Skip("set EDGELINE_MODELS to the dlib models folder (make test does)")
	}
	data := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	cfg := parse(t, "serve", "--addr", addr, "--data-dir", data, "--models", models, "--workers", "1")
	if !cfg.InsecureCookies {
		t.Fatal("serve on loopback http should use development cookies")
	}
	r := start(t, cfg)
	wantHealth(t, "http://"+addr+"/healthz", http.StatusOK, map[string]any{"status": "ok"})
	wantHealth(t, "http://"+addr+"/readyz", http.StatusOK, ready)
	for _, name := range []string{"facelogin.db", "descriptor.key", "pin.pepper"} {
		fi, err := os.Stat(filepath.Join(data, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	key, _ := os.ReadFile(filepath.Join(data, "descriptor.key"))

	// Without --public-url the invitation link starts with the address the server runs on,
	// and the command says where it took it from.
	var out bytes.Buffer
	inv := parse(t, "admin", "invite", "--data-dir", data, "--email", "amy@example.com", "--name", "Amy", "--role", "admin")
	if err := Run(context.Background(), inv, &out, io.Discard); err != nil {
		t.Fatalf("admin invite: %v", err)
	}
	if want := "Public URL http://" + addr + ", from the server's configuration"; !strings.Contains(out.String(), want) {
		t.Errorf("admin invite says %q, want %q", out.String(), want)
	}
	var flagged bytes.Buffer
	if err := Run(context.Background(), parse(t, "admin", "invite", "--data-dir", data, "--email", "raj@example.com", "--name", "Raj",
		"--public-url", "https://login.example.test"), &flagged, io.Discard); err != nil {
		t.Fatalf("admin invite --public-url: %v", err)
	}
	if !strings.Contains(flagged.String(), "Public URL https://login.example.test, from --public-url.") ||
		!strings.Contains(flagged.String(), "https://login.example.test/enroll/") {
		t.Errorf("admin invite --public-url says %q", flagged.String())
	}
	link := regexp.MustCompile(`http://\S+/enroll/(\S+)`).FindStringSubmatch(out.String())
	if link == nil {
		t.Fatalf("no invitation link in %q", out.String())
	}
	if code := get(t, link[0]); code != http.StatusOK {
		t.Errorf("invitation page: %d", code)
	}
	if code := get(t, "http://"+addr+"/api/invites/"+link[1]); code != http.StatusOK {
		t.Errorf("invitation through the api: %d", code)
	}
	r.stop(t)
	if !strings.Contains(r.logs.String(), `"msg":"shutting down"`) {
		t.Errorf("no shutdown in the log:\n%s", r.logs.String())
	}
	if strings.Contains(r.logs.String(), link[1]) {
		t.Error("the log contains the invitation token")
	}

	r = start(t, cfg)
	defer r.stop(t)
	if again, _ := os.ReadFile(filepath.Join(data, "descriptor.key")); !bytes.Equal(again, key) {
		t.Error("the descriptor key changed across a restart")
	}
	if code := get(t, "http://"+addr+"/api/invites/"+link[1]); code != http.StatusOK {
		t.Errorf("invitation after a restart: %d", code)
	}
}

// TestRotateKey runs the key rotation steps of docs/security.md through the commands.
func TestRotateKey(t *testing.T) {
	data := t.TempDir()
	var out bytes.Buffer
	run := func(args ...string) string {
		t.Helper()
		out.Reset()
		if err := Run(context.Background(), parse(t, append([]string{"admin", "rotate-key", "--data-dir", data}, args...)...), &out, io.Discard); err != nil {
			t.Fatalf("rotate-key %v: %v", args, err)
		}
		return out.String()
	}
	// The invite creates the data folder's store and key, as on a fresh `serve`.
	if err := Run(context.Background(), parse(t, "admin", "invite", "--data-dir", data, "--email", "a@example.com", "--name", "A"), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := run("--new-key"); !strings.Contains(got, "new primary") {
		t.Fatalf("--new-key said %q", got)
	}
	if got := run(); !strings.Contains(got, "Re-sealed 0 face samples") {
		t.Fatalf("rotate-key said %q", got)
	}
	if got := run("--drop-old-keys"); !strings.Contains(got, "Removed keys") {
		t.Fatalf("--drop-old-keys said %q", got)
	}
}
