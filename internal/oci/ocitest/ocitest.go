// Package ocitest serves a real OCI registry on loopback for tests and runs an unpacked
// image's root file system as a container runtime would: a read-only root with a tmpfs
// /tmp, as the image's user 65532:65532, in mount and PID namespaces of its own, the
// binary started from inside the root (chroot), optionally through a static QEMU user
// emulator for another CPU. Running needs root and util-linux's unshare.
package ocitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry serves go-containerregistry's registry (the distribution API, blobs in
// memory) on a loopback port until the test ends, wrapped by wrap when given (to refuse
// credentials or fail requests). It returns the host:port to push to.
func Registry(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// Options says how to run a program in a root file system.
type Options struct {
	// Args is the command line inside the root: the program first ("/app", "serve").
	Args []string
	// Env is the environment, KEY=value; the image's own environment is not applied.
	Env []string
	// Emulator is a static QEMU user emulator on this machine (qemu-aarch64-static),
	// bound into the root and run in front of Args; empty runs Args natively.
	Emulator string
	// EmulatorArgs go between the emulator and Args ("-cpu", "cortex-a72").
	EmulatorArgs []string
	// Mounts binds directories of this machine read-only into the root (path here →
	// absolute path in the root), as a pod's Secret volumes are.
	Mounts map[string]string
	// Output receives the program's stdout and stderr; nil keeps them for Process.Output.
	Output io.Writer
}

// Process is a program running in a root file system.
type Process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// Start runs opts.Args inside root (an unpacked image) and stops it when the test ends.
// It skips the test when this machine cannot: not root, or no unshare.
func Start(t testing.TB, root string, opts Options) *Process {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running an image's root file system needs root (mount and PID namespaces, chroot, setuid 65532)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("running an image's root file system needs unshare (util-linux)")
	}
	args := opts.Args
	if opts.Emulator != "" {
		// The emulator is bound onto an empty file in the root, so the program finds
		// it after the chroot; the root itself stays read-only.
		target := filepath.Join(root, ".emulator")
		if err := os.WriteFile(target, nil, 0o755); err != nil {
			t.Fatal(err)
		}
		args = append(append([]string{"/.emulator"}, opts.EmulatorArgs...), args...)
	}
	// Mount points are made in the root first, as a container runtime does.
	binds := ""
	for src, dst := range opts.Mounts {
		if err := os.MkdirAll(filepath.Join(root, dst), 0o755); err != nil {
			t.Fatal(err)
		}
		binds += fmt.Sprintf("mount --bind %q \"$r\"%q\nmount -o remount,bind,ro \"$r\"%q\n", src, dst, dst)
	}
	// Inside new mount and PID namespaces: make the root a read-only bind mount, put a
	// tmpfs on /tmp (and the emulator and mounts in), then chroot into it as 65532:65532.
	script := `set -e
r="$1"; shift
mount --make-rprivate /
mount --bind "$r" "$r"
if [ -n "$EMULATOR" ]; then mount --bind "$EMULATOR" "$r/.emulator"; fi
` + binds + `mount -o remount,bind,ro "$r"
mount -t tmpfs -o mode=1777,size=64m tmpfs "$r/tmp"
exec unshare --root "$r" --wd / --setgid ` + strconv.Itoa(65532) + ` --setuid ` + strconv.Itoa(65532) + ` -- "$@"`
	cmd := exec.Command(unshare, append([]string{"--mount", "--pid", "--fork", "--kill-child=SIGKILL", "--",
		"/bin/sh", "-c", script, "sh", root}, args...)...)
	cmd.Env = append([]string{"EMULATOR=" + opts.Emulator, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, opts.Env...)
	p := &Process{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	var w io.Writer = p.out
	if opts.Output != nil {
		w = io.MultiWriter(p.out, opts.Output)
	}
	cmd.Stdout, cmd.Stderr = w, w
	// A process group of its own, so Stop reaches the program behind unshare's fork.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v in %s: %v", args, root, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.Stop() })
	return p
}

// Stop ends the program (SIGTERM to its process group, SIGKILL after 10 s) and waits.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Wait waits for the program to end and returns its error (nil for exit status 0).
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Exited reports whether the program has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output is what the program wrote so far.
func (p *Process) Output() string { return p.out.String() }

// WaitHTTP polls url until it answers 200 or ctx ends; it fails early when the program
// exits.
func (p *Process) WaitHTTP(ctx context.Context, url string) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 in time (last error %v); output:\n%s", url, err, p.Output())
		case <-p.done:
			return fmt.Errorf("the program exited (%v) before %s answered; output:\n%s", p.err, url, p.Output())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// FreePort returns a loopback TCP port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
