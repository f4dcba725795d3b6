// Package apttest serves a real, signed Debian package repository on loopback for tests,
// laid out as vendors' apt repositories are (Tailscale's among them): under BASE/ID (ID
// from /etc/os-release, e.g. debian or ubuntu) the suites in dists/CODENAME with one
// component, main, and the signing key, a binary OpenPGP keyring, at
// BASE/ID/CODENAME.noarmor.gpg. apt on a test host verifies the InRelease signature
// against that key exactly as it would against the vendor's.
//
// Packages are stand-ins built with dpkg-deb that install files under /opt or
// /usr/local only, which the sshd test hosts keep private. Tests need gpg and dpkg-deb
// (make setup installs gnupg).
package apttest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Package is a stand-in package to publish.
type Package struct {
	// Name and Version are the package's.
	Name, Version string
	// Files are installed by the package: absolute path to content. Executable when the
	// path is under a bin directory.
	Files map[string]string
}

// Options shape the repository.
type Options struct {
	// ID and Codename are the distribution the repository serves; empty means this
	// machine's (/etc/os-release), which is what a test host reports.
	ID, Codename string
	// WrongKey publishes a signing key other than the one that signed the suite, as a
	// tampered mirror would look to apt.
	WrongKey bool
}

// Repo is a running repository.
type Repo struct {
	// URL is the repository's base, e.g. http://127.0.0.1:41234/stable; the suite is at
	// URL/ID.
	URL string
	// ID and Codename are the distribution it serves.
	ID, Codename string
	// Keyring is the published signing key (binary keyring).
	Keyring []byte
}

// Tools skips the test, saying how to enable it, unless gpg and dpkg-deb are present.
func Tools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"gpg", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing: install gnupg and dpkg (make setup does)", tool)
		}
	}
}

// OSRelease returns ID and VERSION_CODENAME from /etc/os-release.
func OSRelease(t testing.TB) (id, codename string) {
	t.Helper()
	f, err := os.Open("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), "=")
		v = strings.Trim(v, `"`)
		switch k {
		case "ID":
			id = v
		case "VERSION_CODENAME":
			codename = v
		}
	}
	if id == "" || codename == "" {
		t.Fatal("/etc/os-release names no ID and VERSION_CODENAME")
	}
	return id, codename
}

// Start builds the repository with pkgs, serves it until the test ends and returns it.
func Start(t testing.TB, opt Options, pkgs ...Package) *Repo {
	t.Helper()
	Tools(t)
	if opt.ID == "" || opt.Codename == "" {
		opt.ID, opt.Codename = OSRelease(t)
	}
	root := t.TempDir()
	base := filepath.Join(root, "stable", opt.ID)
	// gpg-agent's socket path must stay short: a directory of its own under /tmp.
	gnupg, err := os.MkdirTemp("", "apttest-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kill := exec.Command("gpgconf", "--kill", "gpg-agent")
		kill.Env = append(os.Environ(), "GNUPGHOME="+gnupg)
		kill.Run()
		os.RemoveAll(gnupg)
	})
	if err := os.Chmod(gnupg, 0o700); err != nil {
		t.Fatal(err)
	}
	gpg := func(stdin string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Env = append(os.Environ(), "GNUPGHOME="+gnupg)
		cmd.Stdin = strings.NewReader(stdin)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return out
	}
	gpg("", "--quick-gen-key", "edgeline apt test <apt-signer@example.org>", "ed25519", "sign", "never")
	publish := "apt-signer@example.org"
	if opt.WrongKey {
		gpg("", "--quick-gen-key", "someone else <someone@example.org>", "ed25519", "sign", "never")
		publish = "someone@example.org"
	}
	r := &Repo{ID: opt.ID, Codename: opt.Codename, Keyring: gpg("", "--export", publish)}

	pool := filepath.Join(base, "pool", "main")
	if err := os.MkdirAll(pool, 0o755); err != nil {
		t.Fatal(err)
	}
	var packages strings.Builder
	for _, p := range pkgs {
		deb := buildDeb(t, p, pool)
		b, err := os.ReadFile(deb)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(&packages, "Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: edgeline tests <apt-signer@example.org>\nInstalled-Size: 1\nPriority: optional\nSection: net\nFilename: pool/main/%s\nSize: %d\nSHA256: %s\nDescription: stand-in for %s (edgeline tests)\n\n",
			p.Name, p.Version, filepath.Base(deb), len(b), hex.EncodeToString(sum[:]), p.Name)
	}
	dists := filepath.Join(base, "dists", opt.Codename)
	archs := []string{"amd64", "arm64", "armhf"}
	var sums strings.Builder
	for _, a := range archs {
		rel := "main/binary-" + a + "/Packages"
		if err := os.MkdirAll(filepath.Join(dists, filepath.Dir(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dists, rel), []byte(packages.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(packages.String()))
		fmt.Fprintf(&sums, " %s %d %s\n", hex.EncodeToString(sum[:]), packages.Len(), rel)
	}
	release := fmt.Sprintf("Origin: edgeline-test\nLabel: edgeline-test\nSuite: %s\nCodename: %s\nDate: %s\nArchitectures: %s\nComponents: main\nSHA256:\n%s",
		opt.Codename, opt.Codename, time.Now().UTC().Format(time.RFC1123), strings.Join(archs, " "), sums.String())
	if err := os.WriteFile(filepath.Join(dists, "Release"), []byte(release), 0o644); err != nil {
		t.Fatal(err)
	}
	inRelease := gpg(release, "--local-user", "apt-signer@example.org", "--clearsign", "--digest-algo", "SHA256", "--output", "-")
	if err := os.WriteFile(filepath.Join(dists, "InRelease"), inRelease, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, opt.Codename+".noarmor.gpg"), r.Keyring, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/stable"
	return r
}

// buildDeb builds p with dpkg-deb into dir and returns the .deb's path.
func buildDeb(t testing.TB, p Package, dir string) string {
	t.Helper()
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: edgeline tests <apt-signer@example.org>\nDescription: stand-in for %s (edgeline tests)\n", p.Name, p.Version, p.Name)
	if err := os.WriteFile(filepath.Join(src, "DEBIAN", "control"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := make([]string, 0, len(p.Files))
	for f := range p.Files {
		paths = append(paths, f)
	}
	sort.Strings(paths)
	for _, f := range paths {
		if !strings.HasPrefix(f, "/opt/") && !strings.HasPrefix(f, "/usr/local/") {
			t.Fatalf("apttest: %s is outside /opt and /usr/local, which test hosts keep private", f)
		}
		mode := os.FileMode(0o644)
		if strings.Contains(f, "/bin/") {
			mode = 0o755
		}
		dst := filepath.Join(src, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(p.Files[f]), mode); err != nil {
			t.Fatal(err)
		}
	}
	deb := filepath.Join(dir, fmt.Sprintf("%s_%s_all.deb", p.Name, p.Version))
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", src, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v: %s", err, out)
	}
	return deb
}

// Tailscale is a stand-in for Tailscale's package: a tailscale command in /usr/local/bin
// that prints its version.
func Tailscale() Package {
	return Package{Name: "tailscale", Version: "1.84.0-standin", Files: map[string]string{
		"/usr/local/bin/tailscale": "#!/bin/sh\necho 1.84.0-standin\n",
	}}
}
