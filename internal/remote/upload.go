package remote

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"
)

func (e *sshExecutor) sftpClient() (*sftp.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sftp != nil {
		return e.sftp, nil
	}
	c, err := sftp.NewClient(e.client, sftp.UseConcurrentWrites(true))
	if err != nil {
		return nil, fmt.Errorf("%s: start sftp: %w", e.host, err)
	}
	e.sftp = c
	return c, nil
}

func (e *sshExecutor) Upload(ctx context.Context, files ...File) error {
	if err := validateFiles(files); err != nil {
		return err
	}
	sc, err := e.sftpClient()
	if err != nil {
		return err
	}
	var stages []string
	cleanup := func() {
		for _, st := range stages {
			sc.Remove(st)
		}
	}
	var script strings.Builder
	direct := make([]bool, len(files))
	for i, f := range files {
		stage, err := e.stage(ctx, sc, f)
		if err != nil {
			cleanup()
			return err
		}
		stages = append(stages, stage)
		if e.user == "root" && rootOwned(f.Owner) {
			direct[i] = true
			continue
		}
		script.WriteString(uploadScript(stage, f.Path, f.Mode, f.Owner) + "\n")
	}
	// Root's files owned by root need no shell: chmod and an atomic rename over sftp.
	for i, f := range files {
		if !direct[i] {
			continue
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		err := sc.Chmod(stages[i], mode.Perm())
		if err == nil {
			err = sc.PosixRename(stages[i], f.Path)
		}
		if err != nil {
			cleanup()
			return e.fileError(f, err)
		}
	}
	if script.Len() == 0 {
		return nil
	}
	if _, err := e.Run(ctx, Command{Intent: uploadIntent(files), Cmd: script.String(), Sudo: true}); err != nil {
		cleanup()
		return err
	}
	return nil
}

// fileError reports a failed upload of f like a failed command.
func (e *sshExecutor) fileError(f File, err error) error {
	return &CommandError{Host: e.host, Intent: fileIntent(f), ExitCode: -1, Err: err}
}

func rootOwned(owner string) bool {
	switch owner {
	case "", "root", "root:root", "0", "0:0":
		return true
	}
	return false
}

// stage copies f's content to a temporary file on the host and returns its path. Root
// stages next to the destination, so the final rename is atomic; other users stage in
// /tmp and sudo moves the file into place.
func (e *sshExecutor) stage(ctx context.Context, sc *sftp.Client, f File) (string, error) {
	stage := "/tmp/.edgeline-upload-" + randomSuffix()
	if e.user == "root" {
		dir := path.Dir(f.Path)
		if err := sc.MkdirAll(dir); err != nil {
			return "", e.fileError(f, fmt.Errorf("create %s: %w", dir, err))
		}
		stage = path.Join(dir, "."+path.Base(f.Path)+".edgeline-"+randomSuffix())
	}
	w, err := sc.OpenFile(stage, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return "", e.fileError(f, fmt.Errorf("create %s: %w", stage, err))
	}
	stop := context.AfterFunc(ctx, func() { w.Close() })
	err = w.Chmod(0o600)
	if err == nil {
		_, err = w.ReadFrom(f.Content)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	stop()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		sc.Remove(stage)
		return "", e.fileError(f, fmt.Errorf("copy: %w", err))
	}
	return stage, nil
}

func randomSuffix() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// uploadScript is the shell command that moves a staged file into place.
func uploadScript(stage, dest string, mode fs.FileMode, owner string) string {
	if mode == 0 {
		mode = 0o644
	}
	if owner == "" {
		owner = "root:root"
	}
	dir := dest[:strings.LastIndexByte(dest, '/')+1]
	return fmt.Sprintf("mkdir -p %s && chown %s %s && chmod %04o %s && mv -f %s %s || exit 1",
		Quote(dir), Quote(owner), Quote(stage), mode.Perm(), Quote(stage), Quote(stage), Quote(dest))
}

func validateFiles(files []File) error {
	if len(files) == 0 {
		return errors.New("upload: no files")
	}
	for _, f := range files {
		if !strings.HasPrefix(f.Path, "/") {
			return fmt.Errorf("upload path %q is not absolute", f.Path)
		}
		if strings.HasSuffix(f.Path, "/") {
			return fmt.Errorf("upload path %q names a directory, not a file", f.Path)
		}
		if f.Content == nil {
			return fmt.Errorf("upload %s: no content", f.Path)
		}
	}
	return nil
}

func fileIntent(f File) string {
	if f.Intent != "" {
		return f.Intent
	}
	return "upload " + f.Path
}

// uploadIntent describes an upload of files for messages.
func uploadIntent(files []File) string {
	var parts []string
	for _, f := range files {
		parts = append(parts, fileIntent(f))
	}
	return strings.Join(parts, ", ")
}
