package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgeline/edgeline/internal/remote"
	"github.com/edgeline/edgeline/internal/remote/sshtest"
)

func TestRunUploadAndFailure(t *testing.T) {
	t.Parallel()
	keys := sshtest.NewKeys(t)
	h := sshtest.Start(t, keys, sshtest.Options{})
	ex := dial(t, baseConfig(h, keys, sshtest.WriteKnownHosts(t, h)))
	ctx := context.Background()

	res, err := ex.Run(ctx, remote.Command{Intent: "say hello", Cmd: "echo hello; id -u"})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "hello\n0\n" {
		t.Errorf("stdout = %q, want hello and uid 0", got)
	}

	res, err = ex.Run(ctx, remote.Command{Intent: "fail on purpose", Cmd: "echo out; for i in 1 2 3 4 5 6 7 8 9 10; do echo line$i >&2; done; exit 3"})
	var ce *remote.CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *remote.CommandError", err)
	}
	if res.ExitCode != 3 || ce.ExitCode != 3 {
		t.Errorf("exit code = %d/%d, want 3", res.ExitCode, ce.ExitCode)
	}
	msg := err.Error()
	for _, want := range []string{"root@" + h.Addr, "fail on purpose", "exit status 3", "line10"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "line2 ") || strings.Contains(msg, "for i in") {
		t.Errorf("error %q should keep only the stderr tail and never the command line", msg)
	}

	// Stdin reaches the command.
	res, err = ex.Run(ctx, remote.Command{Intent: "read stdin", Cmd: "cat", Stdin: strings.NewReader("piped")})
	if err != nil || string(res.Stdout) != "piped" {
		t.Errorf("stdin: got %q, %v", res.Stdout, err)
	}

	payload := bytes.Repeat([]byte("edgeline\n"), 100000)
	for _, f := range []remote.File{
		{Path: "/etc/edgeline-test/a/b/secret.conf", Content: bytes.NewReader(payload), Mode: 0o640, Owner: "nobody:nogroup"},
		{Path: "/etc/edgeline-test/plain.txt", Content: strings.NewReader("plain\n")},
	} {
		if err := ex.Upload(ctx, f); err != nil {
			t.Fatalf("upload %s: %v", f.Path, err)
		}
	}
	res, err = ex.Run(ctx, remote.Command{Cmd: "stat -c '%a %U:%G %s' /etc/edgeline-test/a/b/secret.conf /etc/edgeline-test/plain.txt; sha256sum < /etc/edgeline-test/a/b/secret.conf; ls -a /etc/edgeline-test/a/b"})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(res.Stdout), "\n")
	if want := fmt.Sprintf("640 nobody:nogroup %d", len(payload)); lines[0] != want {
		t.Errorf("uploaded file: %q, want %q", lines[0], want)
	}
	if want := "644 root:root 6"; lines[1] != want {
		t.Errorf("default mode and owner: %q, want %q", lines[1], want)
	}
	if want := sha256Hex(payload); !strings.HasPrefix(lines[2], want) {
		t.Errorf("content hash %q, want %s", lines[2], want)
	}
	if strings.Contains(string(res.Stdout), ".edgeline") {
		t.Errorf("staging file left behind: %q", res.Stdout)
	}

	// A bad upload fails before touching the host.
	if err := ex.Upload(ctx, remote.File{Path: "relative/path", Content: strings.NewReader("x")}); err == nil {
		t.Error("upload to a relative path succeeded")
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	keys := sshtest.NewKeys(t)
	h := sshtest.Start(t, keys, sshtest.Options{})
	ex := dial(t, baseConfig(h, keys, sshtest.WriteKnownHosts(t, h)))
	_, err := ex.Run(context.Background(), remote.Command{Intent: "wait forever", Cmd: "sleep 30", Timeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") || !strings.Contains(err.Error(), "wait forever") {
		t.Fatalf("err = %v, want a timeout naming the intent", err)
	}
	// The connection is still usable.
	if _, err := ex.Run(context.Background(), remote.Command{Cmd: "true"}); err != nil {
		t.Fatalf("after a timeout: %v", err)
	}
}

func TestSudo(t *testing.T) {
	t.Parallel()
	keys := sshtest.NewKeys(t)
	// sudo asks this user for a password, which edgeline never sends.
	h := sshtest.Start(t, keys, sshtest.Options{User: "edgeline", Password: "s3cret-Pa55word"})
	kh := sshtest.WriteKnownHosts(t, h)
	ctx := context.Background()

	cfg := baseConfig(h, keys, kh)
	cfg.User = "edgeline"

	t.Run("sudo asks for a password", func(t *testing.T) {
		ex := dial(t, cfg)
		res, err := ex.Run(ctx, remote.Command{Cmd: "id -un"})
		if err != nil || string(res.Stdout) != "edgeline\n" {
			t.Fatalf("login user: %q, %v", res.Stdout, err)
		}
		_, err = ex.Run(ctx, remote.Command{Intent: "become root", Cmd: "id -u", Sudo: true})
		if err == nil || !strings.Contains(err.Error(), "may not use sudo without a password") || !strings.Contains(err.Error(), "edgeline ALL=(ALL) NOPASSWD: ALL") {
			t.Fatalf("err = %v, want a message naming the sudoers line", err)
		}
	})

	t.Run("passwordless sudo", func(t *testing.T) {
		h := sshtest.Start(t, keys, sshtest.Options{User: "deploy"})
		cfg := baseConfig(h, keys, sshtest.WriteKnownHosts(t, h))
		cfg.User = "deploy"
		ex := dial(t, cfg)
		res, err := ex.Run(ctx, remote.Command{Cmd: "cat; id -u", Stdin: strings.NewReader("in\n"), Sudo: true})
		if err != nil || string(res.Stdout) != "in\n0\n" {
			t.Fatalf("sudo without a password: %q, %v", res.Stdout, err)
		}
		if err := ex.Upload(ctx, remote.File{Path: "/etc/edgeline-test/owned", Content: strings.NewReader("x"), Owner: "deploy", Mode: 0o600}); err != nil {
			t.Fatal(err)
		}
		res, err = ex.Run(ctx, remote.Command{Cmd: "stat -c '%a %U' /etc/edgeline-test/owned"})
		if err != nil || string(res.Stdout) != "600 deploy\n" {
			t.Fatalf("upload owned by the login user: %q, %v", res.Stdout, err)
		}
	})
}
