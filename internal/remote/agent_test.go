package remote_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/edgeline/edgeline/internal/remote"
	"github.com/edgeline/edgeline/internal/remote/sshtest"
)

// withPassphrase copies key and puts a passphrase on the copy with ssh-keygen, as a user
// protects a key; the public half stays beside it as ssh-keygen leaves it.
func withPassphrase(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-p", "-P", "", "-N", "correct horse", "-f", dst).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -p: %v: %s", err, out)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ssh.ParsePrivateKey(mustRead(t, dst)); err == nil {
		t.Fatal("the copy has no passphrase")
	}
	return dst
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fingerprintOf(t *testing.T, key string) string {
	t.Helper()
	s, err := ssh.ParsePrivateKey(mustRead(t, key))
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(s.PublicKey())
}

// TestAgentStandsIn is trap 2 of issue 16: a key with a passphrase (or no key file at
// all) is used through the user's ssh-agent found by $SSH_AUTH_SOCK, without UseAgent,
// against a real ssh-agent and a real sshd. The agent offers the named key only, so an
// agent full of keys does not exhaust sshd's MaxAuthTries.
func TestAgentStandsIn(t *testing.T) {
	keys := sshtest.NewKeys(t)
	other := sshtest.NewKeys(t)
	h := sshtest.Start(t, keys, sshtest.Options{})
	kh := sshtest.WriteKnownHosts(t, h)
	ctx := context.Background()
	locked := withPassphrase(t, keys.ED25519)

	sock := sshtest.Agent(t, other.ED25519)
	add := exec.Command("ssh-add", keys.ED25519)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)

	t.Run("key with a passphrase", func(t *testing.T) {
		cfg := baseConfig(h, keys, kh)
		cfg.KeyFiles = []string{locked}
		ex := dial(t, cfg)
		if _, err := ex.Run(ctx, remote.Command{Cmd: "true"}); err != nil {
			t.Fatal(err)
		}
		log := h.Log()
		if !strings.Contains(log, "Accepted publickey for root") || !strings.Contains(log, fingerprintOf(t, keys.ED25519)) {
			t.Errorf("sshd did not accept the key:\n%s", log)
		}
		if strings.Contains(log, fingerprintOf(t, other.ED25519)) {
			t.Errorf("the agent offered a key other than the one named:\n%s", log)
		}
	})
	t.Run("missing key file", func(t *testing.T) {
		cfg := baseConfig(h, keys, kh)
		cfg.KeyFiles = []string{filepath.Join(t.TempDir(), "id_ed25519")}
		dial(t, cfg)
	})
	t.Run("no key at all", func(t *testing.T) {
		cfg := baseConfig(h, keys, kh)
		cfg.KeyFiles = nil
		t.Setenv("HOME", t.TempDir())
		dial(t, cfg)
	})
	t.Run("agent without the key", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", sshtest.Agent(t, other.ED25519))
		cfg := baseConfig(h, keys, kh)
		cfg.KeyFiles = []string{locked}
		_, err := remote.Dial(ctx, cfg)
		if err == nil || !strings.Contains(err.Error(), "has a passphrase and the ssh-agent at") || !strings.Contains(err.Error(), "ssh-add "+locked) {
			t.Errorf("err = %v, want one naming ssh-add", err)
		}
	})
	t.Run("no agent", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", "")
		cfg := baseConfig(h, keys, kh)
		cfg.KeyFiles = []string{locked}
		_, err := remote.Dial(ctx, cfg)
		if err == nil || !strings.Contains(err.Error(), "has a passphrase and no ssh-agent is known") {
			t.Errorf("err = %v", err)
		}
	})
}
