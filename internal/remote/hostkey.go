package remote

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrHostKeyMismatch means the host offered a key other than the one known_hosts lists or
// the pinned fingerprint names: a reinstalled host, or someone in the middle.
var ErrHostKeyMismatch = errors.New("host key does not match")

// ErrHostKeyUnknown means known_hosts does not list the host.
var ErrHostKeyUnknown = errors.New("host key unknown")

// HostKeyError explains a refused host key and how to fix it.
type HostKeyError struct {
	Addr        string // host:port as dialed
	Fingerprint string // SHA256 fingerprint the host offered
	Reason      error  // ErrHostKeyMismatch or ErrHostKeyUnknown
	msg         string
}

// Error explains the refusal and names the fix.
func (e *HostKeyError) Error() string { return e.msg }

// Unwrap returns ErrHostKeyMismatch or ErrHostKeyUnknown.
func (e *HostKeyError) Unwrap() error { return e.Reason }

// hostKeyCallback verifies host keys for r: against the pinned fingerprint, else against
// the known_hosts file.
func hostKeyCallback(r resolved) (ssh.HostKeyCallback, []string, error) {
	if r.fingerprint != "" {
		return func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(key); got != r.fingerprint {
				return &HostKeyError{Addr: r.addr(), Fingerprint: got, Reason: ErrHostKeyMismatch,
					msg: fmt.Sprintf("host key of %s is %s, not the pinned %s: refusing to connect; if the host was reinstalled, check the new key on its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and update HostKeyFingerprint",
						r.addr(), got, r.fingerprint)}
			}
			return nil
		}, nil, nil
	}
	if _, err := os.Stat(r.knownHosts); errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("known_hosts file %s does not exist: add %s's key with `ssh-keyscan -p %d %s >> %s` after checking its fingerprint, or pin it with HostKeyFingerprint", r.knownHosts, r.addr(), r.port, r.hostName, r.knownHosts)
	}
	check, err := knownhosts.New(r.knownHosts)
	if err != nil {
		return nil, nil, fmt.Errorf("read known_hosts %s: %w", r.knownHosts, err)
	}
	algos := knownAlgorithms(check, r.addr())
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		got := ssh.FingerprintSHA256(key)
		if len(ke.Want) > 0 {
			w := ke.Want[0]
			return &HostKeyError{Addr: hostname, Fingerprint: got, Reason: ErrHostKeyMismatch,
				msg: fmt.Sprintf("host key of %s does not match %s:%d (the host offered %s %s, the file has %s): refusing to connect; if the host was reinstalled, remove the old entry with `ssh-keygen -R %s -f %s` and add the new key after checking its fingerprint",
					hostname, w.Filename, w.Line, key.Type(), got, ssh.FingerprintSHA256(w.Key), knownhosts.Normalize(hostname), w.Filename)}
		}
		return &HostKeyError{Addr: hostname, Fingerprint: got, Reason: ErrHostKeyUnknown,
			msg: fmt.Sprintf("host %s is not in %s (it offered %s %s): refusing to connect; check the fingerprint on the host, then add it with `ssh-keyscan -p %d %s >> %s` or pin it with HostKeyFingerprint",
				hostname, r.knownHosts, key.Type(), got, r.port, r.hostName, r.knownHosts)}
	}
	return cb, algos, nil
}

// knownAlgorithms lists the host key algorithms known_hosts holds for addr, so the server
// is asked for a key type we can verify. Nil means the client's defaults.
func knownAlgorithms(check ssh.HostKeyCallback, addr string) []string {
	err := check(addr, &net.TCPAddr{}, probeKey{})
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, s := range a {
			if !seen[s] {
				seen[s] = true
				algos = append(algos, s)
			}
		}
	}
	for _, w := range ke.Want {
		switch t := w.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		default:
			add(t)
		}
	}
	return algos
}

// probeKey is a key no host has; checking it reveals which keys known_hosts holds.
type probeKey struct{}

func (probeKey) Type() string                        { return "edgeline-probe" }
func (probeKey) Marshal() []byte                     { return []byte("edgeline-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }
