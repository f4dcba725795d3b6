package helm

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// lockFile is the JSON file in which Pull records the digest of each chart it pulled
// without a pinned one, so later pulls get exactly the same archive:
//
//	{
//	  "charts": [
//	    {"repository": "oci://registry.example.org/charts", "chart": "cert-manager",
//	     "version": "v1.18.2", "digest": "sha256:..."}
//	  ]
//	}
//
// Commit it with the stack configuration.
type lockFile struct {
	path string
}

type lockEntry struct {
	source
	Digest string `json:"digest"`
}

type lockContent struct {
	Charts []lockEntry `json:"charts"`
}

// lockMu serialises the read-modify-write of lock files within this process; flock does
// across processes.
var lockMu sync.Mutex

func (l *lockFile) read() (lockContent, error) {
	var c lockContent
	b, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("chart lock file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("chart lock file %s is not valid: %v; fix it or remove it to record the digests anew", l.path, err)
	}
	for _, e := range c.Charts {
		if !digestRe.MatchString(e.Digest) {
			return c, fmt.Errorf("chart lock file %s: digest %q of %s is not sha256:<64 hex digits>", l.path, e.Digest, e.source)
		}
	}
	return c, nil
}

// digest returns the digest recorded for src, "" when there is none.
func (l *lockFile) digest(src source) (string, error) {
	lockMu.Lock()
	defer lockMu.Unlock()
	c, err := l.read()
	if err != nil {
		return "", err
	}
	for _, e := range c.Charts {
		if e.source == src {
			return e.Digest, nil
		}
	}
	return "", nil
}

// record adds src's digest, keeping what others recorded meanwhile. A digest already
// recorded for src is never replaced.
func (l *lockFile) record(src source, digest string) error {
	lockMu.Lock()
	defer lockMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return fmt.Errorf("chart lock file: %w", err)
	}
	// The file itself is replaced by a rename; its directory stays and carries the lock.
	guard, err := os.Open(filepath.Dir(l.path))
	if err != nil {
		return fmt.Errorf("chart lock file: %w", err)
	}
	defer guard.Close()
	if err := syscall.Flock(int(guard.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("chart lock file: %w", err)
	}
	defer syscall.Flock(int(guard.Fd()), syscall.LOCK_UN)

	c, err := l.read()
	if err != nil {
		return err
	}
	for _, e := range c.Charts {
		if e.source == src {
			if e.Digest != digest {
				return fmt.Errorf("helm pull %s: digest %s differs from %s recorded meanwhile in %s", src, digest, e.Digest, l.path)
			}
			return nil
		}
	}
	c.Charts = append(c.Charts, lockEntry{source: src, Digest: digest})
	slices.SortFunc(c.Charts, func(a, b lockEntry) int {
		return cmp.Or(cmp.Compare(a.Repository, b.Repository), cmp.Compare(a.Chart, b.Chart), cmp.Compare(a.Version, b.Version))
	})
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("chart lock file: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("chart lock file: %w", err)
	}
	return nil
}
