package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/edgeline/edgeline/infra/cloud"
	"github.com/edgeline/edgeline/internal/remote"
)

// Login says how edgeline logs in to a new VPS to retire the host key cloud-init
// installed from user data: the same login the k3s server install uses.
type Login struct {
	Port    int    `pulumi:"port,optional"`
	User    string `pulumi:"user,optional"`
	KeyFile string `pulumi:"keyFile"`
	// AgentSocket is the ssh-agent that holds KeyFile's key; empty means $SSH_AUTH_SOCK.
	AgentSocket           string `pulumi:"agentSocket,optional"`
	ConnectTimeoutSeconds int    `pulumi:"connectTimeoutSeconds,optional"`
	ConnectRetries        int    `pulumi:"connectRetries,optional"`
}

// Annotate names the type in the schema.
func (l *Login) Annotate(a infer.Annotator) {
	a.Describe(l, "How to log in to a new VPS over SSH to replace the host key its user data carried.")
	a.SetToken("index", "Login")
}

// connection is the Login to host, verified by the pinned fingerprint.
func (l Login) connection(host, fingerprint string) Connection {
	return Connection{Host: host, Port: l.Port, User: l.User, KeyFile: l.KeyFile, HostKeyFingerprint: fingerprint,
		AgentSocket: l.AgentSocket, ConnectTimeoutSeconds: l.ConnectTimeoutSeconds, ConnectRetries: l.ConnectRetries}
}

// userDataFingerprint is the fingerprint of the host key cloud-init installed from the
// user data (native, terraform), which stays readable there; "" for an existing host.
func (s CloudHostState) userDataFingerprint() string {
	if s.Cloud == "existing" || s.hostKey() == "" {
		return ""
	}
	_, fp, err := cloud.HostPublicKey(s.hostKey())
	if err != nil {
		return ""
	}
	return fp
}

// rotationDue reports whether the host key must be replaced now: the VPS still has the
// key from its user data, or the inputs ask for a new key (hostKeyRotation changed).
func (s CloudHostState) rotationDue(oldRotation string) bool {
	if s.Cloud == "existing" || s.Login == nil {
		return false
	}
	return s.HostKeyFingerprint == s.userDataFingerprint() || s.HostKeyRotation != oldRotation
}

// adopt pins the fingerprint the inputs give for a new VPS (checked by the operator on
// its console after its key changed outside edgeline), once: when it is set or changed.
func (s *CloudHostState) adopt() {
	if fp := s.CloudHostArgs.HostKeyFingerprint; s.Cloud != "existing" && fp != "" && fp != s.AdoptedHostKeyFingerprint {
		s.HostKeyFingerprint, s.AdoptedHostKeyFingerprint = fp, fp
	}
}

// rotate replaces the VPS's host key over a login verified by the pinned key (the one
// from user data on a new server), and pins the new key. A host that now has the new key
// but refused the check login still gets it pinned, so the next run verifies it.
func (s *CloudHostState) rotate(ctx context.Context) error {
	conn := s.Login.connection(s.IPv4Address, s.HostKeyFingerprint)
	logf(ctx, "replacing the SSH host key of %s (its user data holds the first one)", s.Name)
	fp, err := remote.RotateHostKey(ctx, conn.config())
	if fp != "" {
		s.HostKeyFingerprint = fp
	}
	if err != nil {
		return fmt.Errorf("cloud host %s: replace the host key from user data: %w", s.Name, vpsHostKey(err, s.IPv4Address, conn.HostKeyFingerprint))
	}
	logf(ctx, "%s: host key %s pinned; the one in user data is no longer the host's", s.Name, fp)
	return nil
}

// vpsKeyError is a refused VPS host key, explained in stack config terms.
type vpsKeyError struct {
	msg string
	err error
}

func (e *vpsKeyError) Error() string { return e.msg }
func (e *vpsKeyError) Unwrap() error { return e.err }

// vpsHostKey explains a host key mismatch of the VPS with the fix in stack config terms;
// other errors pass unchanged.
func vpsHostKey(err error, host, pinned string) error {
	var hk *remote.HostKeyError
	if !errors.As(err, &hk) || !errors.Is(err, remote.ErrHostKeyMismatch) {
		return err
	}
	return &vpsKeyError{err: err, msg: fmt.Sprintf("the VPS %s offered SSH host key %s, not the pinned %s: "+
		"refusing to connect, since someone may be in the middle; if you rebuilt or reinstalled the VPS yourself, "+
		"read its key on the server's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and pin that with "+
		"`pulumi config set edgeline:hostKeyFingerprint SHA256:...`, then run up again", host, hk.Fingerprint, pinned)}
}

// dialVPS dials the VPS, explaining a refused host key with the stack's fix.
func dialVPS(ctx context.Context, c Connection) (remote.Executor, error) {
	ex, err := c.dial(ctx)
	return ex, vpsHostKey(err, c.Host, c.HostKeyFingerprint)
}
