package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Dial connects to the host cfg describes, through its jump hosts, verifying every host
// key. Connection failures are retried with backoff; authentication and host key failures
// are not.
func Dial(ctx context.Context, cfg Config) (Executor, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	e := &sshExecutor{host: r.String(), user: r.user, sessions: make(chan struct{}, maxSessions)}
	var via *ssh.Client
	for _, j := range r.jumps {
		c, err := e.connect(ctx, j, via)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("connect to %s through jump host %s: %w", r, j, err)
		}
		e.jumps = append(e.jumps, c)
		via = c
	}
	c, err := e.connect(ctx, r, via)
	if err != nil {
		e.Close()
		if len(r.jumps) > 0 {
			return nil, fmt.Errorf("connect to %s through jump host %s: %w", r, r.jumps[len(r.jumps)-1], err)
		}
		return nil, err
	}
	e.client = c
	return e, nil
}

// Hop is one SSH server a connection went through, with the host key it verified there.
type Hop struct {
	Endpoint
	HostKey ssh.PublicKey
}

// KnownHostsLine is the hop's key as a known_hosts line, under the name OpenSSH looks it
// up by.
func (h Hop) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(h.Host, strconv.Itoa(h.Port)))}, h.HostKey)
}

// Route is how ex reached its host: the jump hosts first to last, then the host, each as
// logged in to (defaults applied) and with the host key verified. Programs that run their
// own SSH client to the same host (ansible-playbook) use it to log in the same way and to
// check the same keys.
func Route(ex Executor) ([]Hop, error) {
	e, ok := ex.(*sshExecutor)
	if !ok {
		return nil, fmt.Errorf("%s is not an SSH connection", ex.Host())
	}
	return slices.Clone(e.route), nil
}

// connect opens one SSH connection to r, directly or through via, with retries.
func (e *sshExecutor) connect(ctx context.Context, r resolved, via *ssh.Client) (*ssh.Client, error) {
	auth, closer, err := authMethods(r)
	if err != nil {
		return nil, err
	}
	if closer != nil {
		e.closers = append(e.closers, closer)
	}
	hostKey, algos, err := hostKeyCallback(r)
	if err != nil {
		return nil, err
	}
	var verified ssh.PublicKey // set by the handshake, read after it returned
	cc := &ssh.ClientConfig{
		User: r.user,
		Auth: auth,
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			err := hostKey(hostname, remote, key)
			if err == nil {
				verified = key
			}
			return err
		},
		HostKeyAlgorithms: algos,
		Timeout:           r.timeout,
	}
	delay := r.backoff
	var lastErr error
	for attempt := 1; ; attempt++ {
		c, err := handshake(ctx, r, via, cc)
		if err == nil {
			e.route = append(e.route, Hop{Endpoint: Endpoint{User: r.user, Host: r.hostName, Port: r.port}, HostKey: verified})
			return c, nil
		}
		lastErr = err
		if !isConnectionError(err) {
			return nil, err
		}
		if attempt > r.retries {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("connect to %s: %w (last error: %v)", r, ctx.Err(), lastErr)
		case <-t.C:
		}
		delay = min(delay*2, maxBackoff)
	}
	return nil, fmt.Errorf("cannot reach %s after %d attempts: %w; check that the host is up and sshd listens on port %d", r, r.retries+1, lastErr, r.port)
}

// connError marks a failure of the transport, which is worth retrying.
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

func isConnectionError(err error) bool {
	var ce *connError
	return errors.As(err, &ce)
}

// handshake dials r (through via when set) and runs the SSH handshake within r.timeout.
func handshake(ctx context.Context, r resolved, via *ssh.Client, cc *ssh.ClientConfig) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var conn net.Conn
	var err error
	if via != nil {
		conn, err = via.DialContext(ctx, "tcp", r.addr())
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) && oce.Reason != ssh.ConnectionFailed {
			return nil, fmt.Errorf("the jump host could not open a connection to %s: %w; check that it allows TCP forwarding (AllowTcpForwarding) and can reach the host", r.addr(), err)
		}
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", r.addr())
	}
	if err != nil {
		return nil, &connError{err}
	}
	type result struct {
		c     ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
		err   error
	}
	done := make(chan result, 1)
	go func() {
		c, chans, reqs, err := ssh.NewClientConn(conn, r.addr(), cc)
		done <- result{c, chans, reqs, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			conn.Close()
			return nil, classifyHandshake(r, res.err)
		}
		return ssh.NewClient(res.c, res.chans, res.reqs), nil
	case <-ctx.Done():
		conn.Close()
		<-done
		return nil, &connError{fmt.Errorf("ssh handshake with %s: %w", r.addr(), ctx.Err())}
	}
}

func classifyHandshake(r resolved, err error) error {
	var hk *HostKeyError
	if errors.As(err, &hk) {
		return hk
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		what := strings.Join(r.keyFiles, ", ")
		if len(r.privateKeys) > 0 {
			what = strings.TrimPrefix(what+fmt.Sprintf(", %d key(s) from PrivateKeys", len(r.privateKeys)), ", ")
		}
		if r.useAgent {
			what = strings.TrimPrefix(what+", ssh-agent", ", ")
		}
		if what == "" {
			what = "no keys"
		}
		return fmt.Errorf("log in to %s: the host accepted none of the offered keys (%s); check User, KeyFiles or UseAgent, and the user's authorized_keys", r, what)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return &connError{fmt.Errorf("ssh handshake with %s: %w", r.addr(), err)}
	}
	return fmt.Errorf("ssh handshake with %s: %w", r.addr(), err)
}

// authMethods loads the key files and, when asked, the agent's keys. A key file with a
// passphrase, or one that does not exist, is taken from ssh-agent when an agent socket
// is known (AgentSocket or $SSH_AUTH_SOCK): the agent then offers that
// key only, or all its keys when the key's public half is not known.
func authMethods(r resolved) ([]ssh.AuthMethod, io.Closer, error) {
	var signers []ssh.Signer
	for i, k := range r.privateKeys {
		s, err := parseKey(k, fmt.Sprintf("PrivateKeys[%d]", i))
		if err != nil {
			return nil, nil, err
		}
		signers = append(signers, s)
	}
	var viaAgent []agentKey
	for _, f := range r.keyFiles {
		s, ak, err := loadKey(f, r.agentSocket != "")
		if err != nil {
			return nil, nil, err
		}
		if s != nil {
			signers = append(signers, s)
		} else {
			viaAgent = append(viaAgent, ak)
		}
	}
	var closer io.Closer
	var ag agent.ExtendedAgent
	if r.useAgent || len(viaAgent) > 0 || (len(signers) == 0 && r.agentSocket != "") {
		sock := r.agentSocket
		if sock == "" {
			return nil, nil, errors.New("UseAgent is set but no agent socket is known (SSH_AUTH_SOCK is empty): start ssh-agent and add your key with ssh-add, or set AgentSocket")
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, nil, fmt.Errorf("connect to ssh-agent at %s: %w", sock, err)
		}
		closer = conn
		ag = agent.NewClient(conn)
		if err := agentHolds(ag, sock, viaAgent); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	if len(signers) == 0 && ag == nil {
		return nil, nil, fmt.Errorf("no SSH key for %s: set KeyFiles, PrivateKeys or UseAgent", r)
	}
	// The agent offers all its keys when asked to (UseAgent, or a key file whose public
	// half is unknown), else only those of the key files it stands in for.
	all := r.useAgent || len(viaAgent) == 0
	var want [][]byte
	for _, k := range viaAgent {
		if k.pub == nil {
			all = true
		} else {
			want = append(want, k.pub.Marshal())
		}
	}
	cb := func() ([]ssh.Signer, error) {
		out := append([]ssh.Signer(nil), signers...)
		if ag != nil {
			as, err := ag.Signers()
			if err != nil {
				return nil, fmt.Errorf("list ssh-agent keys: %w", err)
			}
			for _, s := range as {
				if all || slices.ContainsFunc(want, func(w []byte) bool { return bytes.Equal(w, s.PublicKey().Marshal()) }) {
					out = append(out, sha2Only(s))
				}
			}
		}
		return out, nil
	}
	return []ssh.AuthMethod{ssh.PublicKeysCallback(cb)}, closer, nil
}

// agentKey is a key file that ssh-agent stands in for: one with a passphrase (pub is
// its public half) or one that is missing (pub is its .pub file's key, or nil).
type agentKey struct {
	file   string
	pub    ssh.PublicKey
	reason string // "has a passphrase" or "does not exist"
}

// agentHolds checks that the agent holds every key it stands in for whose public half
// is known, so a missing ssh-add is reported before any login attempt.
func agentHolds(ag agent.ExtendedAgent, sock string, keys []agentKey) error {
	if len(keys) == 0 {
		return nil
	}
	held, err := ag.List()
	if err != nil {
		return fmt.Errorf("list ssh-agent keys at %s: %w", sock, err)
	}
	for _, k := range keys {
		if k.pub == nil {
			continue
		}
		if !slices.ContainsFunc(held, func(h *agent.Key) bool { return bytes.Equal(h.Marshal(), k.pub.Marshal()) }) {
			return fmt.Errorf("SSH key %s %s and the ssh-agent at %s does not hold it: add it with `ssh-add %s`", k.file, k.reason, sock, k.file)
		}
	}
	return nil
}

// loadKey reads a private key file. When agentKnown, a key with a passphrase or a
// missing file is not an error: it is returned as an agentKey for ssh-agent to stand in
// for, and the signer is nil.
func loadKey(file string, agentKnown bool) (ssh.Signer, agentKey, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) && agentKnown {
		ak := agentKey{file: file, reason: "does not exist"}
		if pb, err := os.ReadFile(file + ".pub"); err == nil {
			ak.pub, _, _, _, _ = ssh.ParseAuthorizedKey(pb)
		}
		return nil, ak, nil
	}
	if err != nil {
		return nil, agentKey{}, fmt.Errorf("read SSH key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	var pp *ssh.PassphraseMissingError
	if errors.As(err, &pp) {
		if !agentKnown {
			return nil, agentKey{}, fmt.Errorf("SSH key %s has a passphrase and no ssh-agent is known: start ssh-agent, add the key with `ssh-add %s` and set SSH_AUTH_SOCK (or AgentSocket)", file, file)
		}
		return nil, agentKey{file: file, pub: pp.PublicKey, reason: "has a passphrase"}, nil
	}
	if err != nil {
		return nil, agentKey{}, fmt.Errorf("parse SSH key %s: %w", file, err)
	}
	return sha2Only(s), agentKey{}, nil
}

// parseKey parses an unencrypted private key; name says where it came from.
func parseKey(b []byte, name string) (ssh.Signer, error) {
	s, err := ssh.ParsePrivateKey(b)
	var pp *ssh.PassphraseMissingError
	if errors.As(err, &pp) {
		return nil, fmt.Errorf("SSH key %s has a passphrase: load it into ssh-agent (ssh-add) and set UseAgent", name)
	}
	if err != nil {
		return nil, fmt.Errorf("parse SSH key %s: %w", name, err)
	}
	return sha2Only(s), nil
}

// sha2Only makes an RSA signer sign with rsa-sha2-512 or rsa-sha2-256, never SHA-1.
func sha2Only(s ssh.Signer) ssh.Signer {
	if s.PublicKey().Type() != ssh.KeyAlgoRSA {
		return s
	}
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return s
	}
	ms, err := ssh.NewSignerWithAlgorithms(as, []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256})
	if err != nil {
		return s
	}
	return ms
}
