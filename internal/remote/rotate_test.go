package remote_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/edgeline/edgeline/internal/remote"
	"github.com/edgeline/edgeline/internal/remote/sshtest"
)

// TestRotateHostKey is trap 3 of issue 16: the VPS's first host key was handed over in
// cloud-init user data, which stays readable on the host for the server's life. After
// the first verified login the key is replaced by one made on the host; from then on the
// old key is refused, and a login pinned to the new one works. The test host is laid out
// as a stock Debian server (sshd finds its own files through sshd -T) and runs no
// systemd, so the reload goes through sshd's PidFile.
func TestRotateHostKey(t *testing.T) {
	t.Parallel()
	keys := sshtest.NewKeys(t)
	h := sshtest.Start(t, keys, sshtest.Options{SystemLayout: true})
	ctx := context.Background()
	cfg := baseConfig(h, keys, "")
	cfg.HostKeyFingerprint = h.Fingerprint
	cfg.Retries = 0

	old := dial(t, cfg)
	fp, err := remote.RotateHostKey(ctx, cfg)
	if err != nil {
		t.Fatalf("rotate: %v\nsshd log:\n%s", err, h.Log())
	}
	if fp == h.Fingerprint || !strings.HasPrefix(fp, "SHA256:") {
		t.Fatalf("new fingerprint %q", fp)
	}
	// A session opened before the rotation goes on.
	if _, err := old.Run(ctx, remote.Command{Cmd: "true"}); err != nil {
		t.Errorf("session opened before the rotation: %v", err)
	}

	// The old key is refused: whoever read it from the user data cannot pose as the host.
	_, err = remote.Dial(ctx, cfg)
	if !errors.Is(err, remote.ErrHostKeyMismatch) {
		t.Errorf("login pinned to the old key: %v, want a host key mismatch", err)
	}
	pinned := cfg
	pinned.HostKeyFingerprint = fp
	ex := dial(t, pinned)
	res, err := ex.Run(ctx, remote.Command{Cmd: "ls /etc/ssh/ | grep host; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2; stat -c %a /etc/ssh/ssh_host_ed25519_key"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "ssh_host_ed25519_key\nssh_host_ed25519_key.pub\n" + fp + "\n600\n"; string(res.Stdout) != want {
		t.Errorf("/etc/ssh after the rotation:\n%s\nwant only the new key pair, private key 0600:\n%s", res.Stdout, want)
	}

	// With the old pin, rotation stops at the host key check and changes nothing.
	if _, err := remote.RotateHostKey(ctx, cfg); !errors.Is(err, remote.ErrHostKeyMismatch) {
		t.Errorf("rotation pinned to the old key: %v", err)
	}
	if _, err := ex.Run(ctx, remote.Command{Cmd: "true"}); err != nil {
		t.Fatal(err)
	}
	if fp2, err := remote.RotateHostKey(ctx, pinned); err != nil || fp2 == fp {
		t.Errorf("second rotation: %q, %v", fp2, err)
	}
}
