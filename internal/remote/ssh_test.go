package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeline/edgeline/internal/remote"
	"github.com/edgeline/edgeline/internal/remote/sshtest"
	"golang.org/x/crypto/ssh/knownhosts"
)

// These tests talk to real Debian sshd processes started by package sshtest.

func dial(t *testing.T, cfg remote.Config) remote.Executor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := remote.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func baseConfig(h *sshtest.Host, keys *sshtest.Keys, knownHosts string) remote.Config {
	return remote.Config{
		Host: h.IP, Port: h.Port, User: "root",
		KeyFiles:       []string{keys.ED25519},
		KnownHostsFile: knownHosts,
		SSHConfigFile:  "none",
		Retries:        -1,
	}
}

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

func TestKeyTypes(t *testing.T) {
	t.Parallel()
	keys := sshtest.NewKeys(t)
	h := sshtest.Start(t, keys, sshtest.Options{})
	kh := sshtest.WriteKnownHosts(t, h)

	t.Run("rsa-sha2", func(t *testing.T) {
		// OpenSSH 9 refuses SHA-1 RSA signatures (ssh-rsa): this login only works with
		// rsa-sha2-256/512.
		cfg := baseConfig(h, keys, kh)
		cfg.KeyFiles = []string{keys.RSA}
		ex := dial(t, cfg)
		if _, err := ex.Run(context.Background(), remote.Command{Cmd: "true"}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(h.Log(), "Accepted publickey for root") || !strings.Contains(h.Log(), "RSA SHA256:") {
			t.Errorf("sshd log does not show an RSA login:\n%s", h.Log())
		}
	})

	t.Run("agent", func(t *testing.T) {
		cfg := baseConfig(h, keys, kh)
		cfg.KeyFiles = nil
		cfg.UseAgent = true
		cfg.AgentSocket = startAgent(t, keys.ED25519)
		ex := dial(t, cfg)
		if _, err := ex.Run(context.Background(), remote.Command{Cmd: "true"}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("key content", func(t *testing.T) {
		pem, err := os.ReadFile(keys.RSA)
		if err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(h, keys, kh)
		cfg.KeyFiles = nil
		cfg.PrivateKeys = [][]byte{pem}
		dial(t, cfg)
		_, err = remote.Dial(context.Background(), remote.Config{Host: h.IP, Port: h.Port, PrivateKeys: [][]byte{[]byte("not a key")}, KnownHostsFile: kh, SSHConfigFile: "none"})
		if err == nil || !strings.Contains(err.Error(), "parse SSH key PrivateKeys[0]") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		other := sshtest.NewKeys(t)
		cfg := baseConfig(h, keys, kh)
		cfg.KeyFiles = []string{other.ED25519}
		_, err := remote.Dial(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "accepted none of the offered keys") {
			t.Fatalf("err = %v, want a refused login", err)
		}
	})
}

// startAgent runs a real ssh-agent holding key and returns its socket.
func startAgent(t *testing.T, key string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Skipf("ssh-agent not available: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 200 {
			t.Fatal("ssh-agent did not create its socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
	add := exec.Command("ssh-add", key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	return sock
}

func TestSudo(t *testing.T) {
	t.Parallel()
	keys := sshtest.NewKeys(t)
	const password = "s3cret-Pa55word"
	h := sshtest.Start(t, keys, sshtest.Options{User: "edgeline", Password: password})
	kh := sshtest.WriteKnownHosts(t, h)
	ctx := context.Background()

	cfg := baseConfig(h, keys, kh)
	cfg.User = "edgeline"

	t.Run("no password", func(t *testing.T) {
		ex := dial(t, cfg)
		res, err := ex.Run(ctx, remote.Command{Cmd: "id -un"})
		if err != nil || string(res.Stdout) != "edgeline\n" {
			t.Fatalf("login user: %q, %v", res.Stdout, err)
		}
		_, err = ex.Run(ctx, remote.Command{Intent: "become root", Cmd: "id -u", Sudo: true})
		if err == nil || !strings.Contains(err.Error(), "needs a password for sudo") || !strings.Contains(err.Error(), "SudoPassword") {
			t.Fatalf("err = %v, want a message naming SudoPassword", err)
		}
	})

	t.Run("password", func(t *testing.T) {
		cfg := cfg
		cfg.SudoPassword = password
		ex := dial(t, cfg)
		res, err := ex.Run(ctx, remote.Command{Intent: "become root", Cmd: "id -u", Sudo: true})
		if err != nil || string(res.Stdout) != "0\n" {
			t.Fatalf("sudo id -u: %q, %v", res.Stdout, err)
		}
		if strings.Contains(string(res.Stdout)+string(res.Stderr), password) {
			t.Error("the sudo password was echoed")
		}
		// The password line goes to sudo alone; the command's own stdin follows intact.
		res, err = ex.Run(ctx, remote.Command{Cmd: "cat", Stdin: strings.NewReader("payload"), Sudo: true})
		if err != nil || string(res.Stdout) != "payload" {
			t.Fatalf("stdin through sudo: %q, %v", res.Stdout, err)
		}
		if err := ex.Upload(ctx, remote.File{Path: "/etc/rancher/k3s/test.yaml", Content: strings.NewReader("k: v\n"), Mode: 0o600}); err != nil {
			t.Fatal(err)
		}
		res, err = ex.Run(ctx, remote.Command{Cmd: "stat -c '%a %U:%G' /etc/rancher/k3s/test.yaml; cat /etc/rancher/k3s/test.yaml", Sudo: true})
		if err != nil || string(res.Stdout) != "600 root:root\nk: v\n" {
			t.Fatalf("upload through sudo: %q, %v", res.Stdout, err)
		}
		// A failing command under sudo reports stderr, not the password.
		_, err = ex.Run(ctx, remote.Command{Intent: "fail as root", Cmd: "echo boom >&2; exit 4", Sudo: true})
		if err == nil || !strings.Contains(err.Error(), "boom") || strings.Contains(err.Error(), password) {
			t.Fatalf("err = %v", err)
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

	t.Run("wrong password", func(t *testing.T) {
		cfg := cfg
		cfg.SudoPassword = "not-the-password"
		ex := dial(t, cfg)
		_, err := ex.Run(ctx, remote.Command{Intent: "become root", Cmd: "id -u", Sudo: true})
		if err == nil || strings.Contains(err.Error(), "not-the-password") {
			t.Fatalf("err = %v, want a failure that does not echo the password", err)
		}
	})
}

func TestHostKeys(t *testing.T) {
	t.Parallel()
	keys := sshtest.NewKeys(t)
	h := sshtest.Start(t, keys, sshtest.Options{})
	other := sshtest.Start(t, keys, sshtest.Options{})
	ctx := context.Background()

	t.Run("wrong key in known_hosts", func(t *testing.T) {
		// known_hosts says h has other's key: a reinstalled host or a man in the middle.
		kh := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(kh, []byte(wrongLine(h, other)+"\n"), 0o600)
		_, err := remote.Dial(ctx, baseConfig(h, keys, kh))
		if !errors.Is(err, remote.ErrHostKeyMismatch) {
			t.Fatalf("err = %v, want ErrHostKeyMismatch", err)
		}
		for _, want := range []string{"does not match", h.Fingerprint, "ssh-keygen -R", "refusing to connect"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})

	t.Run("wrong key with trust on first use", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(kh, []byte(wrongLine(h, other)+"\n"), 0o600)
		cfg := baseConfig(h, keys, kh)
		cfg.TrustOnFirstUse = true
		if _, err := remote.Dial(ctx, cfg); !errors.Is(err, remote.ErrHostKeyMismatch) {
			t.Fatalf("err = %v, want ErrHostKeyMismatch even with TOFU", err)
		}
	})

	t.Run("unknown host", func(t *testing.T) {
		kh := sshtest.WriteKnownHosts(t, other)
		_, err := remote.Dial(ctx, baseConfig(h, keys, kh))
		if !errors.Is(err, remote.ErrHostKeyUnknown) {
			t.Fatalf("err = %v, want ErrHostKeyUnknown", err)
		}
		for _, want := range []string{"is not in " + kh, h.Fingerprint, "ssh-keyscan", "trust on first use"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})

	t.Run("missing known_hosts", func(t *testing.T) {
		_, err := remote.Dial(ctx, baseConfig(h, keys, filepath.Join(t.TempDir(), "nope")))
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("trust on first use", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "ssh", "known_hosts")
		var out bytes.Buffer
		cfg := baseConfig(h, keys, kh)
		cfg.TrustOnFirstUse = true
		cfg.TOFUOutput = &out
		dial(t, cfg)
		if !strings.Contains(out.String(), h.Fingerprint) || !strings.Contains(out.String(), "first use") {
			t.Errorf("TOFU output %q does not name the fingerprint %s", out.String(), h.Fingerprint)
		}
		// Recorded: the next connection is verified without TOFU.
		cfg.TrustOnFirstUse = false
		out.Reset()
		dial(t, cfg)
		if out.Len() != 0 {
			t.Errorf("second connection printed %q", out.String())
		}
	})

	t.Run("pinned fingerprint", func(t *testing.T) {
		cfg := baseConfig(h, keys, filepath.Join(t.TempDir(), "unused"))
		cfg.HostKeyFingerprint = h.Fingerprint
		dial(t, cfg)
		cfg.HostKeyFingerprint = other.Fingerprint
		_, err := remote.Dial(ctx, cfg)
		if !errors.Is(err, remote.ErrHostKeyMismatch) || !strings.Contains(err.Error(), "HostKeyFingerprint") {
			t.Fatalf("err = %v, want a mismatch naming HostKeyFingerprint", err)
		}
	})
}

func TestProxyJump(t *testing.T) {
	t.Parallel()
	keys := sshtest.NewKeys(t)
	// The bastion lives in its own network namespace, reached over a veth pair; the
	// target listens on that namespace's loopback, so only the bastion can reach it.
	bastion := sshtest.Start(t, keys, sshtest.Options{OwnNetwork: true, Forwarding: true})
	target := sshtest.Start(t, keys, sshtest.Options{NetworkOf: bastion, IP: "127.0.0.77", Port: 2201})
	kh := sshtest.WriteKnownHosts(t, bastion, target)
	ctx := context.Background()

	if _, err := remote.Dial(ctx, baseConfig(target, keys, kh)); err == nil {
		t.Fatal("the target is reachable without the bastion; the test proves nothing")
	}

	check := func(t *testing.T, ex remote.Executor) {
		res, err := ex.Run(ctx, remote.Command{Cmd: "cat /proc/net/tcp | wc -l; echo $SSH_CONNECTION"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(res.Stdout), "127.0.0.77 2201") {
			t.Errorf("SSH_CONNECTION %q: not the target", res.Stdout)
		}
	}

	t.Run("config", func(t *testing.T) {
		cfg := baseConfig(target, keys, kh)
		cfg.Jump = []remote.Config{{Host: bastion.IP, Port: bastion.Port, User: "root"}}
		check(t, dial(t, cfg))
	})

	t.Run("ssh_config", func(t *testing.T) {
		sc := filepath.Join(t.TempDir(), "config")
		os.WriteFile(sc, fmt.Appendf(nil, `Host factory-pi
  HostName %s
  Port %d
  User root
  IdentityFile %s
  ProxyJump root@%s:%d
`, target.IP, target.Port, keys.ED25519, bastion.IP, bastion.Port), 0o600)
		check(t, dial(t, remote.Config{Host: "factory-pi", SSHConfigFile: sc, KnownHostsFile: kh}))
	})

	t.Run("two hops", func(t *testing.T) {
		outer := sshtest.Start(t, keys, sshtest.Options{Forwarding: true})
		sc := filepath.Join(t.TempDir(), "config")
		os.WriteFile(sc, fmt.Appendf(nil, `Host inner
  HostName %s
Host factory-pi
  HostName %s
  Port %d
  ProxyJump root@%s:%d,root@inner
`, bastion.IP, target.IP, target.Port, outer.IP, outer.Port), 0o600)
		cfg := remote.Config{Host: "factory-pi", User: "root", KeyFiles: []string{keys.ED25519}, SSHConfigFile: sc,
			KnownHostsFile: sshtest.WriteKnownHosts(t, outer, bastion, target)}
		check(t, dial(t, cfg))
	})

	t.Run("bastion refuses forwarding", func(t *testing.T) {
		closed := sshtest.Start(t, keys, sshtest.Options{})
		cfg := baseConfig(target, keys, sshtest.WriteKnownHosts(t, closed, target))
		cfg.Jump = []remote.Config{{Host: closed.IP, Port: closed.Port, User: "root"}}
		_, err := remote.Dial(ctx, cfg)
		if err == nil || !strings.Contains(err.Error(), "through jump host root@"+closed.Addr) {
			t.Fatalf("err = %v, want a failure naming the jump host", err)
		}
	})
}

func TestSSHConfigFile(t *testing.T) {
	t.Parallel()
	keys := sshtest.NewKeys(t)
	h := sshtest.Start(t, keys, sshtest.Options{Port: 2022})
	kh := sshtest.WriteKnownHosts(t, h)
	sc := filepath.Join(t.TempDir(), "config")
	os.WriteFile(sc, fmt.Appendf(nil, `Host vps
  HostName %s
  Port 2022
  User root
  IdentityFile %s
  UserKnownHostsFile %s
`, h.IP, keys.RSA, kh), 0o600)
	ex := dial(t, remote.Config{Host: "vps", SSHConfigFile: sc})
	if ex.Host() != "root@"+h.Addr {
		t.Errorf("Host() = %q, want root@%s", ex.Host(), h.Addr)
	}
	if !strings.Contains(h.Log(), "RSA SHA256:") {
		t.Errorf("the IdentityFile from ssh_config (RSA) was not used:\n%s", h.Log())
	}
	// Explicit fields win over ssh_config.
	_, err := remote.Dial(context.Background(), remote.Config{Host: "vps", Port: 1, SSHConfigFile: sc, Retries: -1})
	if err == nil || !strings.Contains(err.Error(), h.IP+":1") {
		t.Errorf("explicit Port did not win: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	keys := sshtest.NewKeys(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, nil, 0o600)
	ctx := context.Background()

	t.Run("refused", func(t *testing.T) {
		// Nothing listens on 127.0.0.9:1.
		start := time.Now()
		_, err := remote.Dial(ctx, remote.Config{Host: "127.0.0.9", Port: 1, User: "root", KeyFiles: []string{keys.ED25519},
			KnownHostsFile: kh, SSHConfigFile: "none", Retries: 2, Backoff: 20 * time.Millisecond})
		if err == nil {
			t.Fatal("dial succeeded")
		}
		for _, want := range []string{"cannot reach root@127.0.0.9:1 after 3 attempts", "connection refused", "sshd listens on port 1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if d := time.Since(start); d < 60*time.Millisecond {
			t.Errorf("3 attempts with 20ms and 40ms backoff took %s: no backoff", d)
		}
	})

	t.Run("dropped", func(t *testing.T) {
		// A server that accepts and hangs up, like sshd over MaxStartups: retried, then
		// reported with the attempt count.
		l, err := net.Listen("tcp", "127.0.0.9:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var accepted atomic.Int32
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				c.Close()
			}
		}()
		port := l.Addr().(*net.TCPAddr).Port
		_, err = remote.Dial(ctx, remote.Config{Host: "127.0.0.9", Port: port, User: "root", KeyFiles: []string{keys.ED25519},
			KnownHostsFile: kh, SSHConfigFile: "none", Retries: 3, Backoff: 10 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "after 4 attempts") {
			t.Fatalf("err = %v", err)
		}
		if n := accepted.Load(); n != 4 {
			t.Errorf("server saw %d connections, want 4", n)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		// A server that accepts and never speaks: the handshake times out.
		l, err := net.Listen("tcp", "127.0.0.9:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		port := l.Addr().(*net.TCPAddr).Port
		_, err = remote.Dial(ctx, remote.Config{Host: "127.0.0.9", Port: port, User: "root", KeyFiles: []string{keys.ED25519},
			KnownHostsFile: kh, SSHConfigFile: "none", Retries: 1, Backoff: 10 * time.Millisecond, Timeout: 200 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "after 2 attempts") || !strings.Contains(err.Error(), "deadline exceeded") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  remote.Config
		want string
	}{
		{"empty host", remote.Config{}, "Host is empty"},
		{"user in host", remote.Config{Host: "pi@10.0.0.2"}, "not a host name"},
		{"port", remote.Config{Host: "h", Port: 70000}, "out of range"},
		{"port in host", remote.Config{Host: "h:2222"}, "put the port in Port"},
		{"fingerprint", remote.Config{Host: "h", HostKeyFingerprint: "MD5:aa"}, "not a SHA256 fingerprint"},
		{"pin and tofu", remote.Config{Host: "h", HostKeyFingerprint: "SHA256:" + strings.Repeat("A", 43), TrustOnFirstUse: true}, "set only one"},
		{"jump", remote.Config{Host: "h", Jump: []remote.Config{{}}}, "jump host 1 of h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLocal(t *testing.T) {
	ex := remote.Local()
	ctx := context.Background()
	res, err := ex.Run(ctx, remote.Command{Cmd: "echo local"})
	if err != nil || string(res.Stdout) != "local\n" {
		t.Fatalf("run: %q, %v", res.Stdout, err)
	}
	_, err = ex.Run(ctx, remote.Command{Intent: "fail locally", Cmd: "echo nope >&2; exit 2"})
	var ce *remote.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 2 || !strings.Contains(err.Error(), "local: fail locally failed with exit status 2: nope") {
		t.Fatalf("err = %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("local upload with an owner needs root")
	}
	p := filepath.Join(t.TempDir(), "sub", "file")
	if err := ex.Upload(ctx, remote.File{Path: p, Content: strings.NewReader("x"), Mode: 0o600, Owner: "nobody"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat: %v %v", fi, err)
	}
}

// wrongLine is a known_hosts line giving h the key of other.
func wrongLine(h, other *sshtest.Host) string {
	return knownhosts.Line([]string{knownhosts.Normalize(h.Addr)}, other.HostKey)
}
