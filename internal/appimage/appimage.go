// Package appimage builds the face-login app's container images from a checkout of this
// repository: facelogin-api (cmd/facelogin with cgo, go-face and Debian's dlib, plus the
// dlib models) and facelogin-web (cmd/facelogin-web, pure Go, static), each for amd64 and
// arm64, cross-compiled with Debian's cross toolchain and assembled by package oci.
package appimage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/edgeline/edgeline/internal/oci"
)

// The images' names: the last element of their repositories.
const (
	API = "facelogin-api"
	Web = "facelogin-web"
)

// Options says what to build and how.
type Options struct {
	// Source is the repository checkout (the directory of go.mod); empty means ".".
	Source string
	// Models is the directory of the dlib models, checked against the checkout's
	// models/SHA256SUMS; empty means <Source>/models.
	Models string
	// Arches are the architectures to build for; empty means amd64 and arm64.
	Arches []oci.Arch
	// Version, Revision and Created label the images; empty (zero) values come from git:
	// `git describe --tags --always --dirty`, the commit hash, and $SOURCE_DATE_EPOCH or
	// the commit time.
	Version, Revision string
	Created           time.Time
	// SourceURL is the repository's address for org.opencontainers.image.source; may be
	// empty.
	SourceURL string
	// Cache keeps compressed layers between builds (oci.Build.Cache); empty for none.
	Cache string
	// Go is the go command; empty means "go" on PATH.
	Go string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

func (o *Options) defaults() {
	if o.Source == "" {
		o.Source = "."
	}
	if o.Models == "" {
		o.Models = filepath.Join(o.Source, "models")
	}
	if len(o.Arches) == 0 {
		o.Arches = oci.Arches
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Binaries are the two programs compiled for one architecture.
type Binaries struct {
	API string // cmd/facelogin, cgo
	Web string // cmd/facelogin-web, static
}

// Build compiles the binaries for each architecture into a temporary directory and
// assembles both images, keyed by API and Web.
func Build(ctx context.Context, o Options) (map[string]v1.ImageIndex, error) {
	o.defaults()
	for _, a := range o.Arches {
		if _, err := oci.ParseArch(string(a)); err != nil {
			return nil, err
		}
	}
	// Bad models fail before minutes of compiling.
	if _, err := Models(o.Source, o.Models); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "edgeline-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bins := map[oci.Arch]Binaries{}
	for _, a := range o.Arches {
		start := time.Now()
		if bins[a], err = Compile(ctx, o, a, filepath.Join(tmp, string(a))); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Log, "compiled facelogin and facelogin-web for %s in %.1fs\n", a, time.Since(start).Seconds())
	}
	return Assemble(ctx, o, bins)
}

// Assemble makes the two images from compiled binaries (one Binaries per architecture)
// and the models, labelled with the options' version, revision and time.
func Assemble(ctx context.Context, o Options, bins map[oci.Arch]Binaries) (map[string]v1.ImageIndex, error) {
	o.defaults()
	models, err := Models(o.Source, o.Models)
	if err != nil {
		return nil, err
	}
	if err := o.label(ctx); err != nil {
		return nil, err
	}
	api, web := map[oci.Arch]string{}, map[oci.Arch]string{}
	for a, b := range bins {
		api[a], web[a] = b.API, b.Web
	}
	b := &oci.Build{Version: o.Version, Revision: o.Revision, Source: o.SourceURL, Created: o.Created, Cache: o.Cache, Log: o.Log}
	return b.Run(ctx,
		oci.Image{
			Name:        API,
			Description: "edgeline face-login recognition API (go-face, dlib) with the dlib models",
			Binaries:    api,
			Files:       models,
			Cmd:         []string{"api"},
			Env:         []string{"FACELOGIN_MODELS=/models"},
			Ports:       []int{8081},
		},
		oci.Image{
			Name:        Web,
			Description: "edgeline face-login web front end (static Go binary)",
			Binaries:    web,
			Cmd:         []string{"web"},
			Ports:       []int{8080},
		})
}

// label fills Version, Revision and Created from git where they are empty.
func (o *Options) label(ctx context.Context) error {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", o.Source}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("%s is not a git checkout (git %s: %v): give the version, revision and creation time yourself", o.Source, strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	var err error
	if o.Revision == "" {
		if o.Revision, err = git("rev-parse", "HEAD"); err != nil {
			return err
		}
	}
	if o.Version == "" {
		if o.Version, err = git("describe", "--tags", "--always", "--dirty"); err != nil {
			return err
		}
	}
	if o.Created.IsZero() {
		epoch := os.Getenv("SOURCE_DATE_EPOCH")
		if epoch == "" {
			if epoch, err = git("log", "-1", "--format=%ct", o.Revision); err != nil {
				return err
			}
		}
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q is not a Unix time in seconds", epoch)
		}
		o.Created = time.Unix(sec, 0).UTC()
	}
	return nil
}

// Compile builds cmd/facelogin (cgo) and cmd/facelogin-web (static) for a into dir, with
// -trimpath so the binaries do not depend on where the checkout is. A build for another
// architecture than this machine's uses Debian's cross compiler (<triplet>-g++).
func Compile(ctx context.Context, o Options, a oci.Arch, dir string) (Binaries, error) {
	o.defaults()
	if _, err := oci.ParseArch(string(a)); err != nil {
		return Binaries{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, err
	}
	bins := Binaries{API: filepath.Join(dir, "facelogin"), Web: filepath.Join(dir, "facelogin-web")}
	env := append(os.Environ(), "GOOS=linux", "GOARCH="+string(a))
	cgo := slices.Concat(env, []string{"CGO_ENABLED=1"})
	if string(a) != runtime.GOARCH {
		cc, cxx := a.Triplet()+"-gcc", a.Triplet()+"-g++"
		for _, c := range []string{cc, cxx} {
			if _, err := exec.LookPath(c); err != nil {
				return Binaries{}, fmt.Errorf("cross-building facelogin for %s needs %s: install g++-%s (make setup does)", a, c, strings.ReplaceAll(a.Triplet(), "_", "-"))
			}
		}
		cgo = append(cgo, "CC="+cc, "CXX="+cxx)
	}
	builds := []struct {
		pkg, out string
		env      []string
	}{
		{"./cmd/facelogin", bins.API, cgo},
		{"./cmd/facelogin-web", bins.Web, slices.Concat(env, []string{"CGO_ENABLED=0"})},
	}
	for _, b := range builds {
		cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath", "-ldflags=-s -w", "-o", b.out, b.pkg)
		cmd.Dir, cmd.Env = o.Source, b.env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return Binaries{}, buildError(a, b.pkg, err, out)
		}
	}
	return bins, nil
}

// devPackages are the Debian packages that give go-face's -l flags their libraries.
var devPackages = map[string]string{
	"dlib":   "libdlib-dev",
	"blas":   "libopenblas-dev",
	"cblas":  "libatlas-base-dev",
	"lapack": "liblapack-dev",
	"jpeg":   "libjpeg62-turbo-dev",
}

var missingLib = regexp.MustCompile(`cannot find -l([A-Za-z0-9_+.-]+)`)

// buildError explains a failed go build: a library the linker cannot find names the
// package to install.
func buildError(a oci.Arch, pkg string, err error, out []byte) error {
	if m := missingLib.FindSubmatch(out); m != nil {
		lib := string(m[1])
		if dev, ok := devPackages[lib]; ok {
			return fmt.Errorf("building %s for %s: the linker cannot find -l%s: install %s:%s (make setup installs the %s libraries)", pkg, a, lib, dev, a, a)
		}
		return fmt.Errorf("building %s for %s: the linker cannot find -l%s: install the %s development package that ships lib%s.so", pkg, a, lib, a, lib)
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return fmt.Errorf("building %s: %w (is Go installed?)", pkg, err)
	}
	return fmt.Errorf("building %s for %s: %w\n%s", pkg, a, err, out)
}

// Models returns the dlib models in dir as image files under /models, each checked
// against <source>/models/SHA256SUMS.
func Models(source, dir string) ([]oci.File, error) {
	sums := filepath.Join(source, "models", "SHA256SUMS")
	f, err := os.Open(sums)
	if err != nil {
		return nil, fmt.Errorf("read the model sums: %w (run from the repository's checkout)", err)
	}
	defer f.Close()
	var files []oci.File
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(strings.TrimSpace(sc.Text()), "  ")
		if !ok || len(sum) != 64 {
			continue
		}
		name = strings.TrimPrefix(name, "*")
		src := filepath.Join(dir, name)
		m := oci.File{Path: "/models/" + name, Source: src, SHA256: sum}
		var bad *oci.SumError
		switch err := m.Check(); {
		case errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("model %s is missing: fetch the models with make models", src)
		case errors.As(err, &bad):
			return nil, fmt.Errorf("model %s has sha256 %s, but models/SHA256SUMS says %s: fetch the models again with make models", src, bad.Got, sum)
		case err != nil:
			return nil, err
		}
		files = append(files, m)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s lists no model", sums)
	}
	return files, nil
}
