package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// maxSessions bounds the command sessions open at once on one connection: OpenSSH allows
// 10 per connection by default (MaxSessions), and sftp holds one.
const maxSessions = 8

// sshExecutor runs commands over one SSH connection.
type sshExecutor struct {
	host    string
	user    string
	route   []Hop
	client  *ssh.Client
	jumps   []*ssh.Client
	closers []io.Closer

	sessions chan struct{} // bounds concurrent command sessions

	mu        sync.Mutex
	sftp      *sftp.Client
	sudoOK    bool // sudo -n worked once on this connection
	closeOnce sync.Once
}

func (e *sshExecutor) Host() string { return e.host }

func (e *sshExecutor) Close() error {
	var err error
	e.closeOnce.Do(func() {
		if e.sftp != nil {
			e.sftp.Close()
		}
		if e.client != nil {
			err = e.client.Close()
		}
		for i := len(e.jumps) - 1; i >= 0; i-- {
			e.jumps[i].Close()
		}
		for _, c := range e.closers {
			c.Close()
		}
	})
	return err
}

func (e *sshExecutor) Run(ctx context.Context, c Command) (Result, error) {
	line, err := e.sudoWrap(ctx, c)
	if err != nil {
		return Result{ExitCode: -1}, err
	}
	return e.run(ctx, c, line, c.Stdin)
}

func (e *sshExecutor) run(ctx context.Context, c Command, line string, stdin io.Reader) (Result, error) {
	fail := func(err error) (Result, error) {
		return Result{ExitCode: -1}, &CommandError{Host: e.host, Intent: c.Intent, ExitCode: -1, Err: err}
	}
	select {
	case e.sessions <- struct{}{}:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	defer func() { <-e.sessions }()
	sess, err := e.newSession(ctx)
	if err != nil {
		return fail(fmt.Errorf("open session: %w", err))
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	if stdin != nil {
		sess.Stdin = stdin
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	done := make(chan error, 1)
	go func() { done <- sess.Run(line) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		sess.Signal(ssh.SIGKILL)
		sess.Close()
		err = ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) && c.Timeout > 0 {
			err = fmt.Errorf("timed out after %s", c.Timeout)
		}
		// Let the session stop writing to the buffers before reading them; a connection
		// that does not even answer the close leaves them unread.
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			return Result{ExitCode: -1}, &CommandError{Host: e.host, Intent: c.Intent, ExitCode: -1, Err: err}
		}
	}
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err == nil {
		return res, nil
	}
	ce := &CommandError{Host: e.host, Intent: c.Intent, ExitCode: -1, Stderr: tail(res.Stderr)}
	var exit *ssh.ExitError
	switch {
	case errors.As(err, &exit):
		ce.ExitCode = exit.ExitStatus()
	default:
		ce.Err = err
	}
	res.ExitCode = ce.ExitCode
	return res, ce
}

// newSession opens a session, retrying briefly when sshd refuses it for lack of a free
// slot: sshd frees a closed session's slot a moment after the client sees it close.
func (e *sshExecutor) newSession(ctx context.Context) (*ssh.Session, error) {
	for attempt := 1; ; attempt++ {
		sess, err := e.client.NewSession()
		var oce *ssh.OpenChannelError
		if err == nil || !errors.As(err, &oce) || attempt == 10 {
			return sess, err
		}
		t := time.NewTimer(time.Duration(attempt) * 20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// sudoWrap turns c into the command line to send, going through sudo when needed.
func (e *sshExecutor) sudoWrap(ctx context.Context, c Command) (string, error) {
	if !c.Sudo || e.user == "root" {
		return c.Cmd, nil
	}
	if err := e.checkSudo(ctx); err != nil {
		return "", err
	}
	return "sudo -n -- sh -c " + Quote(c.Cmd), nil
}

// checkSudo finds out once whether the login user may become root without a password.
func (e *sshExecutor) checkSudo(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sudoOK {
		return nil
	}
	_, err := e.run(ctx, Command{Intent: "check sudo", Timeout: 30 * time.Second}, "sudo -n true", nil)
	var ce *CommandError
	switch {
	case err == nil:
		e.sudoOK = true
		return nil
	case errors.As(err, &ce) && ce.Err == nil:
		return fmt.Errorf("%s: user %s may not use sudo without a password: log in as root, or give the user passwordless sudo (a line \"%s ALL=(ALL) NOPASSWD: ALL\" in /etc/sudoers.d/) (%s)", e.host, e.user, e.user, ce.Stderr)
	default:
		return err
	}
}
