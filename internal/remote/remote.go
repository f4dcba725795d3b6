// Package remote runs commands on and copies files to the machines edgeline provisions,
// over SSH with verified host keys, through jump hosts. Dial (dial.go) opens the
// connection; the Executor it returns runs commands (run.go) and uploads files
// (upload.go). The code that installs k3s sees only the Executor interface, so its tests
// can swap in a double.
package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Executor runs commands on one host and copies files to it.
// An Executor is safe for concurrent use.
type Executor interface {
	// Host names the machine for messages, e.g. "root@203.0.113.7:22" or "local".
	Host() string
	// Run runs one command. A command that exits non-zero returns its Result and a
	// *CommandError naming the host, the intent and the tail of stderr.
	Run(ctx context.Context, cmd Command) (Result, error)
	// Upload writes files, each atomically with its mode and owner, creating their
	// directories. Files are written as root (through sudo when the login user is not
	// root). Several files in one call cost one command on the host.
	Upload(ctx context.Context, files ...File) error
	// Close releases the connection.
	Close() error
}

// Command is one shell command to run on a host.
type Command struct {
	// Intent says what the command is for, in a few words ("install k3s"). Errors and
	// progress lines show the intent, never the command line.
	Intent string
	// Cmd is a POSIX shell command line, run with sh -c. It must not contain secrets:
	// pass them through Stdin or in an uploaded file.
	Cmd string
	// Stdin, when set, is copied to the command's standard input. It may carry secrets;
	// it is never logged.
	Stdin io.Reader
	// Sudo runs the command as root. When the login user is not root this goes through
	// sudo, which must not ask for a password.
	Sudo bool
	// Timeout bounds the command; zero means only ctx bounds it.
	Timeout time.Duration
}

// Result is what a command printed and how it exited.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// File is a file to write on a host.
type File struct {
	// Path is the absolute destination path.
	Path string
	// Content is copied to the file.
	Content io.Reader
	// Mode is the file mode; zero means 0644.
	Mode fs.FileMode
	// Owner is "user" or "user:group"; empty means root:root.
	Owner string
	// Intent says what the file is for, for error messages ("k3s configuration").
	Intent string
}

// CommandError reports a command that ran and failed (non-zero exit, timeout or a
// broken connection). It carries everything needed to report the failure once.
type CommandError struct {
	Host     string
	Intent   string
	ExitCode int    // -1 when the command did not exit by itself
	Stderr   string // the last lines of standard error
	Err      error  // the underlying cause, if any (timeout, connection)
}

// Error says, in one line, which host failed at what and the tail of its stderr.
func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s failed", e.Host, e.intent())
	switch {
	case e.Err != nil:
		fmt.Fprintf(&b, ": %v", e.Err)
	default:
		fmt.Fprintf(&b, " with exit status %d", e.ExitCode)
	}
	if e.Stderr != "" {
		fmt.Fprintf(&b, ": %s", e.Stderr)
	}
	return b.String()
}

func (e *CommandError) intent() string {
	if e.Intent == "" {
		return "command"
	}
	return e.Intent
}

// Unwrap returns the underlying cause, if any.
func (e *CommandError) Unwrap() error { return e.Err }

// stderrTailLines is how many lines of stderr a CommandError keeps.
const stderrTailLines = 8

// tail returns the last lines of b, trimmed, at most stderrTailLines lines and 2 KiB.
func tail(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 2048 {
		b = b[len(b)-2048:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > stderrTailLines {
		lines = lines[len(lines)-stderrTailLines:]
	}
	return strings.Join(lines, " | ")
}

// Quote quotes s for a POSIX shell.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
