package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user and group every image runs as (distroless's "nonroot"), and the only place
// it may write.
const (
	UID = 65532
	GID = 65532
	// AppPath is where each image's binary lives; it is the entrypoint.
	AppPath = "/app"
	// SBOMPath is where each image holds its SBOM (SPDX 2.3 JSON): the Debian packages,
	// the Go modules of the binary and the extra files.
	SBOMPath = "/usr/share/sbom/image.spdx.json"
)

// OCI annotation keys the images carry.
const (
	AnnotationCreated     = "org.opencontainers.image.created"
	AnnotationVersion     = "org.opencontainers.image.version"
	AnnotationRevision    = "org.opencontainers.image.revision"
	AnnotationSource      = "org.opencontainers.image.source"
	AnnotationTitle       = "org.opencontainers.image.title"
	AnnotationDescription = "org.opencontainers.image.description"
	AnnotationRefName     = "org.opencontainers.image.ref.name"
)

// Image says what goes into one multi-architecture image.
type Image struct {
	// Name names the image in a layout and in its SBOM, e.g. "facelogin-api".
	Name string
	// Description is the image's org.opencontainers.image.description.
	Description string
	// Binaries holds, per architecture, the program installed as AppPath. A dynamically
	// linked binary brings its ELF interpreter and shared libraries, found on this
	// machine and taken with their Debian packages' copyright files; a static one
	// brings nothing.
	Binaries map[Arch]string
	// Files are architecture-independent files (models, data), each checked against its
	// SHA-256 before it goes in. They share one layer between the architectures.
	Files []File
	// Cmd is the argument list after AppPath when the container gives none.
	Cmd []string
	// Env holds KEY=value pairs set in the image.
	Env []string
	// Ports are the TCP ports the program listens on.
	Ports []int
}

// File is one file of an image.
type File struct {
	// Path is the absolute path in the image ("/models/x.dat").
	Path string
	// Source is the file on this machine.
	Source string
	// SHA256 is the expected hex SHA-256 of Source.
	SHA256 string
}

// SumError reports a file whose content is not the expected one.
type SumError struct {
	Source, Want, Got string
}

func (e *SumError) Error() string {
	return fmt.Sprintf("%s has sha256 %s, want %s: the file is damaged or another version; replace it with the expected one", e.Source, e.Got, e.Want)
}

// Build assembles multi-architecture OCI images without a container engine. It is
// reproducible: the same binaries, files and fields give the same digests, whatever the
// files' paths and modification times on this machine.
type Build struct {
	// Version, Revision and Source label every index, manifest and config
	// (org.opencontainers.image.version, .revision, .source); Source may be empty.
	Version, Revision, Source string
	// Created is the time every file, config and annotation carries (the commit's time
	// for a reproducible build); zero means the Unix epoch.
	Created time.Time
	// Cache, when set, is a directory that keeps compressed layers between builds, so
	// an unchanged layer (libraries, models) is not compressed again.
	Cache string
	// Log receives one line per image and architecture; nil discards them.
	Log io.Writer
	// DpkgDir is dpkg's database; empty means /var/lib/dpkg.
	DpkgDir string
}

var nameRe = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)

// Run builds one index per image (linux/<arch> for each binary), keyed by image name.
func (b *Build) Run(ctx context.Context, images ...Image) (map[string]v1.ImageIndex, error) {
	if len(images) == 0 {
		return nil, errors.New("no image to build")
	}
	for _, im := range images {
		if err := im.validate(); err != nil {
			return nil, err
		}
	}
	dpkgDir := b.DpkgDir
	if dpkgDir == "" {
		dpkgDir = "/var/lib/dpkg"
	}
	var db *dpkgDB
	lb := &layerBuilder{mtime: b.created(), cache: b.Cache}
	base, err := lb.build(baseEntries())
	if err != nil {
		return nil, err
	}
	out := map[string]v1.ImageIndex{}
	for _, im := range images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var files v1.Layer
		if len(im.Files) > 0 {
			if err := checkSums(im.Files); err != nil {
				return nil, err
			}
			es := make([]entry, len(im.Files))
			for i, f := range im.Files {
				es[i] = file(f.Path, f.Source, 0o644)
			}
			if files, err = lb.build(es); err != nil {
				return nil, err
			}
		}
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		for _, a := range sortedArches(im.Binaries) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if db == nil {
				if db, err = openDpkg(dpkgDir); err != nil {
					return nil, err
				}
			}
			img, err := b.image(lb, db, im, a, base, files)
			if err != nil {
				return nil, fmt.Errorf("%s for %s: %w", im.Name, a, err)
			}
			p := a.Platform()
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
				Add:        img,
				Descriptor: v1.Descriptor{Platform: &p, Annotations: b.annotations(im)},
			})
		}
		out[im.Name] = mutate.Annotations(idx, b.annotations(im)).(v1.ImageIndex)
	}
	return out, nil
}

func (im Image) validate() error {
	if !nameRe.MatchString(im.Name) {
		return fmt.Errorf("image name %q is not a lowercase name like facelogin-api", im.Name)
	}
	if len(im.Binaries) == 0 {
		return fmt.Errorf("image %s has no binary for any architecture", im.Name)
	}
	for a, bin := range im.Binaries {
		if _, err := ParseArch(string(a)); err != nil {
			return fmt.Errorf("image %s: %w", im.Name, err)
		}
		if bin == "" {
			return fmt.Errorf("image %s: no binary given for %s", im.Name, a)
		}
	}
	for _, f := range im.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return fmt.Errorf("image %s: file path %q is not a clean absolute path", im.Name, f.Path)
		}
		if len(f.SHA256) != 64 {
			return fmt.Errorf("image %s: file %s has no SHA-256 to check it against", im.Name, f.Path)
		}
	}
	return nil
}

func sortedArches(m map[Arch]string) []Arch {
	return slices.Sorted(maps.Keys(m))
}

func (b *Build) created() time.Time {
	if b.Created.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return b.Created.UTC().Truncate(time.Second)
}

func (b *Build) annotations(im Image) map[string]string {
	a := map[string]string{
		AnnotationCreated: b.created().Format(time.RFC3339),
		AnnotationTitle:   im.Name,
	}
	for k, v := range map[string]string{
		AnnotationVersion:     b.Version,
		AnnotationRevision:    b.Revision,
		AnnotationSource:      b.Source,
		AnnotationDescription: im.Description,
	} {
		if v != "" {
			a[k] = v
		}
	}
	return a
}

// checkSums compares each file's SHA-256 with the expected one.
func checkSums(files []File) error {
	for _, f := range files {
		if err := f.Check(); err != nil {
			return err
		}
	}
	return nil
}

// Check reports whether Source holds the content SHA256 names: a *SumError when it holds
// other bytes, an error wrapping fs.ErrNotExist when it is missing.
func (f File) Check() error {
	got, err := fileSHA256(f.Source)
	if err != nil {
		return err
	}
	if !strings.EqualFold(got, f.SHA256) {
		return &SumError{Source: f.Source, Want: strings.ToLower(f.SHA256), Got: got}
	}
	return nil
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// baseEntries are the files every image has: the users, and /tmp.
func baseEntries() []entry {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:" + strconv.Itoa(UID) + ":" + strconv.Itoa(GID) + ":nonroot:/tmp:/sbin/nologin\n"
	group := "root:x:0:\nnonroot:x:" + strconv.Itoa(GID) + ":\n"
	return []entry{
		data("/etc/passwd", []byte(passwd), 0o644),
		data("/etc/group", []byte(group), 0o644),
		dir("/tmp", 0o1777),
	}
}

// image assembles the image of im for a: base, runtime libraries, files, then the app.
func (b *Build) image(lb *layerBuilder, db *dpkgDB, im Image, a Arch, base, files v1.Layer) (v1.Image, error) {
	bin := im.Binaries[a]
	rt, err := resolveRuntime(bin, a, db)
	if err != nil {
		return nil, err
	}
	var layers []mutate.Addendum
	created := v1.Time{Time: b.created()}
	add := func(l v1.Layer, by string) {
		layers = append(layers, mutate.Addendum{Layer: l, MediaType: types.OCILayer,
			History: v1.History{Created: created, CreatedBy: by, Comment: "edgeline images build"}})
	}
	add(base, "users root and nonroot (65532), /tmp")
	pkgs := rt.packages()
	if rt.interp != "" {
		es, err := runtimeEntries(rt, a)
		if err != nil {
			return nil, err
		}
		l, err := lb.build(es)
		if err != nil {
			return nil, err
		}
		add(l, fmt.Sprintf("%d shared libraries from %d Debian packages", len(rt.libs), len(pkgs)))
	}
	if files != nil {
		add(files, fmt.Sprintf("%d files", len(im.Files)))
	}
	sbom, err := b.sbom(im, a, bin, pkgs)
	if err != nil {
		return nil, err
	}
	app, err := lb.build([]entry{file(AppPath, bin, 0o755), data(SBOMPath, sbom, 0o644)})
	if err != nil {
		return nil, err
	}
	add(app, AppPath+" and its SBOM")

	// The config goes first: Append records the layers' DiffIDs in whatever config it
	// finds, and ConfigFile replaces the whole config.
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	ports := map[string]struct{}{}
	for _, p := range im.Ports {
		ports[strconv.Itoa(p)+"/tcp"] = struct{}{}
	}
	p := a.Platform()
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: p.Architecture,
		Variant:      p.Variant,
		OS:           p.OS,
		Created:      created,
		Config: v1.Config{
			Entrypoint:   []string{AppPath},
			Cmd:          im.Cmd,
			Env:          im.Env,
			User:         strconv.Itoa(UID) + ":" + strconv.Itoa(GID),
			WorkingDir:   "/",
			ExposedPorts: ports,
			Labels:       b.annotations(im),
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	if img, err = mutate.Append(img, layers...); err != nil {
		return nil, err
	}
	img = mutate.Annotations(img, b.annotations(im)).(v1.Image)
	if b.Log != nil {
		var sizes []string
		for _, l := range layers {
			n, _ := l.Layer.Size()
			sizes = append(sizes, fmt.Sprintf("%.1f", float64(n)/1e6))
		}
		fmt.Fprintf(b.Log, "%s %s: %d libraries from %d Debian packages, layers %s MB (gzip)\n",
			im.Name, a, len(rt.libs), len(pkgs), strings.Join(sizes, " + "))
	}
	return img, nil
}

// packages are the Debian packages rt's libraries come from, sorted, each once.
func (rt *runtimeFiles) packages() []*Package {
	seen := map[*Package]bool{}
	var ps []*Package
	for _, l := range rt.libs {
		if !seen[l.pkg] {
			seen[l.pkg] = true
			ps = append(ps, l.pkg)
		}
	}
	slices.SortFunc(ps, func(x, y *Package) int { return strings.Compare(x.Name+":"+x.Arch, y.Name+":"+y.Arch) })
	return ps
}

// runtimeEntries lay out rt the Debian way: each real file once in /usr/lib/<triplet>,
// each soname a symlink to it when the names differ, the interpreter's path a symlink,
// and each package's copyright file and dpkg status entry.
func runtimeEntries(rt *runtimeFiles, a Arch) ([]entry, error) {
	libdir := "/usr/lib/" + a.Triplet()
	var es []entry
	real := map[string]string{} // base name in libdir → source file
	for _, l := range rt.libs {
		base := path.Base(l.path)
		if src, ok := real[base]; ok && src != l.path {
			return nil, fmt.Errorf("two libraries are both named %s (%s and %s)", base, src, l.path)
		} else if !ok {
			real[base] = l.path
			// The loader must be executable: the kernel runs it for the binary.
			mode := int64(0o644)
			if l.soname == path.Base(rt.interp) {
				mode = 0o755
			}
			es = append(es, file(libdir+"/"+base, l.path, mode))
		}
		if l.soname != base {
			es = append(es, symlink(libdir+"/"+l.soname, base))
		}
	}
	interp := path.Clean(rt.interp)
	if path.Dir(interp) != libdir {
		es = append(es, symlink(interp, libdir+"/"+path.Base(interp)))
	}
	for _, p := range rt.packages() {
		c, err := copyright(p)
		if err != nil {
			return nil, err
		}
		es = append(es, file("/usr/share/doc/"+p.Name+"/copyright", c, 0o644))
		es = append(es, data("/var/lib/dpkg/status.d/"+p.Name, p.stanza, 0o644))
	}
	return es, nil
}
