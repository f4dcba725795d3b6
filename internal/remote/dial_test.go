package remote_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/edgeline/edgeline/internal/remote"
	"github.com/edgeline/edgeline/internal/remote/sshtest"
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
		Retries:        -1,
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
		cfg.AgentSocket = sshtest.Agent(t, keys.ED25519)
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
		_, err = remote.Dial(context.Background(), remote.Config{Host: h.IP, Port: h.Port, PrivateKeys: [][]byte{[]byte("not a key")}, KnownHostsFile: kh})
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

	t.Run("unknown host", func(t *testing.T) {
		kh := sshtest.WriteKnownHosts(t, other)
		_, err := remote.Dial(ctx, baseConfig(h, keys, kh))
		if !errors.Is(err, remote.ErrHostKeyUnknown) {
			t.Fatalf("err = %v, want ErrHostKeyUnknown", err)
		}
		for _, want := range []string{"is not in " + kh, h.Fingerprint, "ssh-keyscan", "HostKeyFingerprint"} {
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
		cfg.Jump = []remote.Config{{Host: bastion.IP, Port: bastion.Port}}
		ex := dial(t, cfg)
		check(t, ex)
		// The route names every hop as logged in to, defaults applied, with the key
		// verified there.
		route, err := remote.Route(ex)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			h    *sshtest.Host
			line string
		}{{bastion, bastion.KnownHostsLine()}, {target, target.KnownHostsLine()}}
		if len(route) != len(want) {
			t.Fatalf("route = %+v, want bastion then target", route)
		}
		for i, w := range want {
			if e := (remote.Endpoint{User: "root", Host: w.h.IP, Port: w.h.Port}); route[i].Endpoint != e {
				t.Errorf("hop %d = %v, want %v", i, route[i].Endpoint, e)
			}
			if got := route[i].KnownHostsLine(); got != w.line {
				t.Errorf("hop %d known_hosts line %q, want %q", i, got, w.line)
			}
		}
	})

	t.Run("two hops", func(t *testing.T) {
		outer := sshtest.Start(t, keys, sshtest.Options{Forwarding: true})
		cfg := baseConfig(target, keys, sshtest.WriteKnownHosts(t, outer, bastion, target))
		cfg.Jump = []remote.Config{{Host: outer.IP, Port: outer.Port}, {Host: bastion.IP, Port: bastion.Port}}
		check(t, dial(t, cfg))
	})

	t.Run("parsed hop", func(t *testing.T) {
		// A hop as the stack config writes it, parsed by ParseEndpoint.
		e, err := remote.ParseEndpoint("root@" + bastion.Addr)
		if err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(target, keys, kh)
		cfg.Jump = []remote.Config{{Host: e.Host, Port: e.Port, User: e.User}}
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
			KnownHostsFile: kh, Retries: 2, Backoff: 20 * time.Millisecond})
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
			KnownHostsFile: kh, Retries: 3, Backoff: 10 * time.Millisecond})
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
			KnownHostsFile: kh, Retries: 1, Backoff: 10 * time.Millisecond, Timeout: 200 * time.Millisecond})
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
		{"fingerprint length", remote.Config{Host: "h", HostKeyFingerprint: "SHA256:" + strings.Repeat("A", 42)}, "not a SHA256 fingerprint"},
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

func TestParseEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want remote.Endpoint
	}{
		{"bastion", remote.Endpoint{User: remote.DefaultUser, Host: "bastion", Port: remote.DefaultPort}},
		{"ops@bastion.example.org", remote.Endpoint{User: "ops", Host: "bastion.example.org", Port: 22}},
		{"ops@bastion:2222", remote.Endpoint{User: "ops", Host: "bastion", Port: 2222}},
		{"10.0.0.1:2200", remote.Endpoint{User: "root", Host: "10.0.0.1", Port: 2200}},
		{"[2001:db8::1]:2222", remote.Endpoint{User: "root", Host: "2001:db8::1", Port: 2222}},
		{"2001:db8::1", remote.Endpoint{User: "root", Host: "2001:db8::1", Port: 22}},
		// The user ends at the last "@", as OpenSSH reads a ProxyJump hop.
		{"ops@corp@bastion", remote.Endpoint{User: "ops@corp", Host: "bastion", Port: 22}},
	} {
		got, err := remote.ParseEndpoint(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if err == nil {
			if again, err := remote.ParseEndpoint(got.String()); err != nil || again != got {
				t.Errorf("ParseEndpoint(%q.String()) = %+v, %v", tc.in, again, err)
			}
		}
	}
	for _, bad := range []string{"", "@bastion", "ops@", "ops@bastion:0", "ops@bastion:ssh", "ops@bas tion", "ops@host/x"} {
		if e, err := remote.ParseEndpoint(bad); err == nil {
			t.Errorf("ParseEndpoint(%q) = %+v, want an error", bad, e)
		}
	}
}

// wrongLine is a known_hosts line giving h the key of other.
func wrongLine(h, other *sshtest.Host) string {
	return knownhosts.Line([]string{knownhosts.Normalize(h.Addr)}, other.HostKey)
}
