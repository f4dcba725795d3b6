package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Local returns an Executor for the machine edgeline runs on. Commands with Sudo go through
// sudo -n when the current user is not root.
func Local() Executor { return localExecutor{root: os.Geteuid() == 0} }

type localExecutor struct{ root bool }

func (localExecutor) Host() string { return "local" }

func (localExecutor) Close() error { return nil }

func (l localExecutor) Run(ctx context.Context, c Command) (Result, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	args := []string{"sh", "-c", c.Cmd}
	if c.Sudo && !l.root {
		args = append([]string{"sudo", "-n", "--"}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &stdout, &stderr, c.Stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err == nil {
		return res, nil
	}
	ce := &CommandError{Host: "local", Intent: c.Intent, ExitCode: -1, Stderr: tail(res.Stderr)}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil && c.Timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded):
		ce.Err = fmt.Errorf("timed out after %s", c.Timeout)
	case ctx.Err() != nil:
		ce.Err = ctx.Err()
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		ce.ExitCode = exit.ExitCode()
	default:
		ce.Err = err
	}
	res.ExitCode = ce.ExitCode
	return res, ce
}

func (l localExecutor) Upload(ctx context.Context, files ...File) error {
	if err := validateFiles(files); err != nil {
		return err
	}
	var stages []string
	cleanup := func() {
		for _, st := range stages {
			os.Remove(st)
		}
	}
	var script strings.Builder
	for _, f := range files {
		stage, err := l.stage(f)
		if err != nil {
			cleanup()
			return err
		}
		stages = append(stages, stage)
		script.WriteString(uploadScript(stage, f.Path, f.Mode, f.Owner) + "\n")
	}
	if _, err := l.Run(ctx, Command{Intent: uploadIntent(files), Cmd: script.String(), Sudo: true}); err != nil {
		cleanup()
		return err
	}
	return nil
}

// stage copies f's content to a temporary file, next to the destination when we may write
// there.
func (l localExecutor) stage(f File) (string, error) {
	dir := filepath.Dir(f.Path)
	stageDir := os.TempDir()
	if l.root {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fileError(f, fmt.Errorf("create %s: %w", dir, err))
		}
		stageDir = dir
	}
	w, err := os.CreateTemp(stageDir, ".edgeline-upload-")
	if err != nil {
		return "", fileError(f, err)
	}
	_, err = io.Copy(w, f.Content)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(w.Name())
		return "", fileError(f, err)
	}
	return w.Name(), nil
}

// fileError reports a failed local write of f like a failed command.
func fileError(f File, err error) error {
	return &CommandError{Host: "local", Intent: fileIntent(f), ExitCode: -1, Err: err}
}
