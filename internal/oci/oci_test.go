package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/edgeline/edgeline/internal/oci/ocitest"
)

var created = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// crossCC is Debian's arm64 cross compiler, which make setup installs.
const crossCC = "aarch64-linux-gnu-gcc"

var (
	probeMu    sync.Mutex
	probeCache = map[string]string{}
)

// probe builds testdata/probe for a, with cgo (dynamically linked against libc) or
// without (static), once per test binary.
func probe(t testing.TB, a Arch, cgo bool) string {
	t.Helper()
	key := string(a) + map[bool]string{true: "-cgo", false: "-static"}[cgo]
	probeMu.Lock()
	defer probeMu.Unlock()
	if p, ok := probeCache[key]; ok {
		return p
	}
	env := []string{"GOOS=linux", "GOARCH=" + string(a), "CGO_ENABLED=0"}
	if cgo {
		env[2] = "CGO_ENABLED=1"
		if a == ARM64 {
			if _, err := exec.LookPath(crossCC); err != nil {
				t.Skip("cross-building for arm64 with cgo needs " + crossCC + ": install g++-aarch64-linux-gnu (make setup)")
			}
			env = append(env, "CC="+crossCC)
		}
	}
	dir, err := os.MkdirTemp("", "oci-probe-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "probe-"+key)
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./testdata/probe")
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the probe for %s: %v\n%s", key, err, b)
	}
	probeCache[key] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, p := range probeCache {
		os.RemoveAll(filepath.Dir(p))
	}
	os.Exit(code)
}

// tarFile is one entry of an image's flattened file system.
type tarFile struct {
	hdr  *tar.Header
	data []byte
}

// files flattens img's layers into path → entry.
func files(t testing.TB, img v1.Image) map[string]tarFile {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	m := map[string]tarFile{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		m["/"+strings.TrimSuffix(h.Name, "/")] = tarFile{h, b}
	}
}

// images returns the per-architecture images of idx by architecture.
func images(t testing.TB, idx v1.ImageIndex) map[Arch]v1.Image {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[Arch]v1.Image{}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		out[Arch(d.Platform.Architecture)] = img
	}
	return out
}

func sha(t testing.TB, path string) string {
	t.Helper()
	s, err := fileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBuildStatic(t *testing.T) {
	bins := map[Arch]string{AMD64: probe(t, AMD64, false), ARM64: probe(t, ARM64, false)}
	b := &Build{Version: "1.2.3", Revision: "0123abc", Source: "https://example.org/edgeline", Created: created}
	out, err := b.Run(context.Background(), Image{Name: "probe", Description: "a probe", Binaries: bins, Cmd: []string{"web"}, Ports: []int{8080}})
	if err != nil {
		t.Fatal(err)
	}
	idx := out["probe"]
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if got := im.Annotations[AnnotationRevision] + " " + im.Annotations[AnnotationVersion] + " " + im.Annotations[AnnotationCreated]; got != "0123abc 1.2.3 2026-11-30T12:00:00Z" {
		t.Errorf("index annotations revision, version, created = %q", got)
	}
	var platforms []string
	for _, d := range im.Manifests {
		platforms = append(platforms, d.Platform.String())
		if d.Annotations[AnnotationRevision] != "0123abc" {
			t.Errorf("%s: manifest descriptor lacks the revision annotation: %v", d.Platform, d.Annotations)
		}
	}
	if strings.Join(platforms, " ") != "linux/amd64 linux/arm64/v8" {
		t.Errorf("platforms = %v, want linux/amd64 linux/arm64/v8", platforms)
	}
	for a, img := range images(t, idx) {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != "/app" || strings.Join(c.Cmd, " ") != "web" || cf.Architecture != string(a) {
			t.Errorf("%s: config user %q entrypoint %v cmd %v arch %s", a, c.User, c.Entrypoint, c.Cmd, cf.Architecture)
		}
		if _, ok := c.ExposedPorts["8080/tcp"]; !ok || c.Labels[AnnotationRevision] != "0123abc" {
			t.Errorf("%s: exposed ports %v, labels %v", a, c.ExposedPorts, c.Labels)
		}
		if !cf.Created.Equal(created) {
			t.Errorf("%s: config created %v, want %v", a, cf.Created, created)
		}
		ls, _ := img.Layers()
		if len(ls) != 2 {
			t.Errorf("%s: %d layers, want 2 (users and /tmp, the app): a static binary brings no libraries", a, len(ls))
		}
		fs := files(t, img)
		for name, want := range map[string]int64{"/app": 0o755, "/tmp": 0o1777, "/etc/passwd": 0o644, SBOMPath: 0o644} {
			f, ok := fs[name]
			if !ok {
				t.Errorf("%s: %s missing", a, name)
				continue
			}
			if f.hdr.Mode != want || f.hdr.Uid != 0 || !f.hdr.ModTime.Equal(created) {
				t.Errorf("%s: %s mode %o uid %d mtime %v, want mode %o uid 0 mtime %v", a, name, f.hdr.Mode, f.hdr.Uid, f.hdr.ModTime, want, created)
			}
		}
		if !strings.Contains(string(fs["/etc/passwd"].data), "nonroot:x:65532:65532:") {
			t.Errorf("%s: /etc/passwd lacks the nonroot user:\n%s", a, fs["/etc/passwd"].data)
		}
		if got := hex.EncodeToString(sum(fs["/app"].data)); got != sha(t, bins[a]) {
			t.Errorf("%s: /app is not the given binary", a)
		}
		for name := range fs {
			if strings.HasPrefix(name, "/usr/lib") || strings.HasPrefix(name, "/lib") {
				t.Errorf("%s: static image holds %s", a, name)
			}
		}
		var doc spdxDocument
		if err := json.Unmarshal(fs[SBOMPath].data, &doc); err != nil {
			t.Fatalf("%s: SBOM: %v", a, err)
		}
		var purls []string
		for _, p := range doc.Packages {
			for _, r := range p.ExternalRefs {
				purls = append(purls, r.ReferenceLocator)
			}
		}
		if !strings.Contains(strings.Join(purls, " "), "pkg:golang/stdlib@go1.") || strings.Contains(strings.Join(purls, " "), "pkg:deb/") {
			t.Errorf("%s: SBOM purls %v: want the Go standard library and no Debian package", a, purls)
		}
	}
}

func sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestBuildDynamic(t *testing.T) {
	bin := probe(t, AMD64, true)
	out, err := (&Build{Version: "1", Revision: "r", Created: created}).Run(context.Background(),
		Image{Name: "probe", Binaries: map[Arch]string{AMD64: bin}})
	if err != nil {
		t.Fatal(err)
	}
	img := images(t, out["probe"])[AMD64]
	ls, _ := img.Layers()
	if len(ls) != 3 {
		t.Errorf("%d layers, want 3 (users and /tmp, libraries, app)", len(ls))
	}
	fs := files(t, img)
	for _, name := range []string{"/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
		"/usr/share/doc/libc6/copyright", "/var/lib/dpkg/status.d/libc6"} {
		if f, ok := fs[name]; !ok || f.hdr.Typeflag != tar.TypeReg || len(f.data) == 0 {
			t.Errorf("%s missing or empty", name)
		}
	}
	if l := fs["/lib64/ld-linux-x86-64.so.2"]; l.hdr == nil || l.hdr.Linkname != "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" {
		t.Errorf("the interpreter's path is not a symlink to the loader: %+v", l.hdr)
	}
	if !bytes.Contains(fs["/var/lib/dpkg/status.d/libc6"].data, []byte("Package: libc6\n")) {
		t.Errorf("status.d/libc6 is not libc6's dpkg status entry:\n%s", fs["/var/lib/dpkg/status.d/libc6"].data)
	}
	if !bytes.Contains(fs[SBOMPath].data, []byte(`"pkg:deb/debian/libc6@`)) {
		t.Errorf("the SBOM does not list libc6")
	}
}

// TestRun runs the images' root file systems as a container would: read-only, tmpfs
// /tmp, as 65532:65532; the arm64 ones under QEMU when EDGELINE_TEST_QEMU_STATIC names
// the directory of the static emulators.
func TestRun(t *testing.T) {
	qemu := os.Getenv("EDGELINE_TEST_QEMU_STATIC")
	for _, tt := range []struct {
		arch Arch
		cgo  bool
	}{{AMD64, false}, {AMD64, true}, {ARM64, false}, {ARM64, true}} {
		name := string(tt.arch) + map[bool]string{true: "-cgo", false: "-static"}[tt.cgo]
		t.Run(name, func(t *testing.T) {
			opts := ocitest.Options{Args: []string{"/app", "hello"}}
			if tt.arch == ARM64 {
				if qemu == "" {
					t.Skip("running arm64 needs the static QEMU emulators: set EDGELINE_TEST_QEMU_STATIC to their directory (make test does)")
				}
				opts.Emulator = filepath.Join(qemu, "qemu-aarch64-static")
			}
			bin := probe(t, tt.arch, tt.cgo)
			out, err := (&Build{Created: created}).Run(context.Background(), Image{Name: "probe", Binaries: map[Arch]string{tt.arch: bin}})
			if err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(t.TempDir(), "rootfs")
			if err := Unpack(images(t, out["probe"])[tt.arch], root); err != nil {
				t.Fatal(err)
			}
			p := ocitest.Start(t, root, opts)
			if err := p.Wait(); err != nil {
				t.Fatalf("probe failed: %v\n%s", err, p.Output())
			}
			want := "uid=65532 gid=65532 cgo=" + map[bool]string{true: "true", false: "false"}[tt.cgo] + "\nroot-write=false\ntmp-write=true\narg=hello\n"
			if p.Output() != want {
				t.Errorf("probe said\n%s\nwant\n%s", p.Output(), want)
			}
		})
	}
}

func TestReproducible(t *testing.T) {
	bins := map[Arch]string{AMD64: probe(t, AMD64, true), ARM64: probe(t, ARM64, false)}
	model := filepath.Join(t.TempDir(), "model.dat")
	os.WriteFile(model, bytes.Repeat([]byte("model "), 1000), 0o600)
	im := Image{Name: "probe", Binaries: bins, Files: []File{{Path: "/models/model.dat", Source: model, SHA256: sha(t, model)}}}
	b := &Build{Version: "1", Revision: "r", Created: created, Cache: t.TempDir()}
	first, err := b.Run(context.Background(), im)
	if err != nil {
		t.Fatal(err)
	}
	// The same content under other paths, with other modification times and modes,
	// and another (empty) layer cache.
	other := t.TempDir()
	moved := im
	moved.Binaries = map[Arch]string{}
	for a, p := range bins {
		dst := filepath.Join(other, "bin-"+string(a))
		copyFile(t, p, dst, 0o700)
		os.Chtimes(dst, time.Now(), time.Now().Add(-time.Hour))
		moved.Binaries[a] = dst
	}
	copyFile(t, model, filepath.Join(other, "m.dat"), 0o666)
	moved.Files = []File{{Path: "/models/model.dat", Source: filepath.Join(other, "m.dat"), SHA256: im.Files[0].SHA256}}
	b2 := *b
	b2.Cache = t.TempDir()
	second, err := b2.Run(context.Background(), moved)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first["probe"].Digest()
	d2, _ := second["probe"].Digest()
	if d1 != d2 {
		t.Fatalf("the same inputs gave index %s, then %s", d1, d2)
	}
	// A warm build from the first cache gives the same digest too.
	third, err := b.Run(context.Background(), moved)
	if err != nil {
		t.Fatal(err)
	}
	if d3, _ := third["probe"].Digest(); d3 != d1 {
		t.Fatalf("a build from the layer cache gave %s, want %s", d3, d1)
	}
	// And the layouts are the same bytes.
	l1, l2 := t.TempDir(), t.TempDir()
	if err := WriteLayout(l1, first); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(l2, second); err != nil {
		t.Fatal(err)
	}
	if a, b := treeSums(t, l1), treeSums(t, l2); a != b {
		t.Errorf("layouts differ:\n%s\n---\n%s", a, b)
	}
	// Changing the version changes the digest.
	b3 := *b
	b3.Version = "2"
	fourth, err := b3.Run(context.Background(), im)
	if err != nil {
		t.Fatal(err)
	}
	if d4, _ := fourth["probe"].Digest(); d4 == d1 {
		t.Error("another version gave the same digest")
	}
}

func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

// treeSums lists every file under dir with its SHA-256.
func treeSums(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, rel+" "+sha(t, p))
		return nil
	})
	return strings.Join(lines, "\n")
}

func TestLayout(t *testing.T) {
	out, err := (&Build{Created: created}).Run(context.Background(),
		Image{Name: "one", Binaries: map[Arch]string{AMD64: probe(t, AMD64, false)}},
		Image{Name: "two", Binaries: map[Arch]string{ARM64: probe(t, ARM64, false)}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	for range 2 { // the second write replaces the first
		if err := WriteLayout(dir, out); err != nil {
			t.Fatal(err)
		}
	}
	back, err := ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, idx := range out {
		want, _ := idx.Digest()
		if back[name] == nil {
			t.Fatalf("%s missing from the layout", name)
		}
		if got, _ := back[name].Digest(); got != want {
			t.Errorf("%s: read back %s, wrote %s", name, got, want)
		}
	}
	notLayout := t.TempDir()
	os.WriteFile(filepath.Join(notLayout, "precious"), []byte("x"), 0o600)
	if err := WriteLayout(notLayout, out); err == nil || !strings.Contains(err.Error(), "neither empty nor an OCI layout") {
		t.Errorf("writing into a directory of other files: %v", err)
	}
	if _, err := os.Stat(filepath.Join(notLayout, "precious")); err != nil {
		t.Errorf("the other files are gone: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	static := probe(t, AMD64, false)
	model := filepath.Join(t.TempDir(), "model.dat")
	os.WriteFile(model, []byte("the wrong model"), 0o600)
	text := filepath.Join(t.TempDir(), "script")
	os.WriteFile(text, []byte("#!/bin/sh\n"), 0o700)
	for _, tt := range []struct {
		name string
		im   Image
		want string
	}{
		{"unknown architecture", Image{Name: "x", Binaries: map[Arch]string{"riscv64": static}},
			`unknown architecture "riscv64": use amd64 or arm64`},
		{"binary of another architecture", Image{Name: "x", Binaries: map[Arch]string{ARM64: static}},
			"is built for amd64, not arm64: build it with GOARCH=arm64"},
		{"not an ELF binary", Image{Name: "x", Binaries: map[Arch]string{AMD64: text}},
			"the binary must be a Linux ELF executable"},
		{"model sum differs", Image{Name: "x", Binaries: map[Arch]string{AMD64: static},
			Files: []File{{Path: "/models/m.dat", Source: model, SHA256: strings.Repeat("0", 64)}}},
			"want 0000000000000000000000000000000000000000000000000000000000000000: the file is damaged or another version"},
		{"bad name", Image{Name: "Face Login", Binaries: map[Arch]string{AMD64: static}}, "is not a lowercase name"},
		{"no binary", Image{Name: "x"}, "has no binary"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&Build{}).Run(context.Background(), tt.im)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if strings.Count(strings.TrimSuffix(err.Error(), "."), ": ") > 4 || strings.Contains(err.Error(), "\n") {
				t.Errorf("not one sentence: %v", err)
			}
		})
	}
}

// TestMissingLibrary builds a program that needs a library not installed for its
// architecture: the error names the package to install.
func TestMissingLibrary(t *testing.T) {
	for _, tt := range []struct {
		arch    Arch
		cc      string
		soname  string
		install string // "" when no package ships it for any architecture
	}{
		// PostgreSQL's client library: installed for amd64 by make setup (postgresql),
		// not for arm64.
		{ARM64, crossCC, "libpq.so.5", "apt-get install libpq5:arm64"},
		{AMD64, "gcc", "libedgeline-nowhere.so.1", "apt-file search libedgeline-nowhere.so.1"},
	} {
		t.Run(string(tt.arch), func(t *testing.T) {
			if _, err := exec.LookPath(tt.cc); err != nil {
				t.Skipf("needs %s (make setup installs it)", tt.cc)
			}
			if tt.install != "" && tt.arch == ARM64 {
				if _, err := os.Stat("/var/lib/dpkg/info/libpq5:amd64.list"); err != nil {
					t.Skip("needs libpq5 installed for amd64 (make setup installs postgresql)")
				}
			}
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "lib.c"), []byte("int edgeline_lib(void) { return 1; }\n"), 0o600)
			os.WriteFile(filepath.Join(dir, "main.c"), []byte("int edgeline_lib(void);\nint main(void) { return edgeline_lib() - 1; }\n"), 0o600)
			for _, args := range [][]string{
				{"-shared", "-fPIC", "-Wl,-soname," + tt.soname, "-o", filepath.Join(dir, "libstub.so"), filepath.Join(dir, "lib.c")},
				{"-o", filepath.Join(dir, "prog"), filepath.Join(dir, "main.c"), "-L" + dir, "-lstub"},
			} {
				if b, err := exec.Command(tt.cc, args...).CombinedOutput(); err != nil {
					t.Fatalf("%s %v: %v\n%s", tt.cc, args, err, b)
				}
			}
			_, err := (&Build{}).Run(context.Background(), Image{Name: "x", Binaries: map[Arch]string{tt.arch: filepath.Join(dir, "prog")}})
			var me *MissingLibraryError
			if !errors.As(err, &me) || me.Soname != tt.soname {
				t.Fatalf("error %v, want a missing %s", err, tt.soname)
			}
			if !strings.Contains(err.Error(), tt.install) || !strings.Contains(err.Error(), "not installed for "+string(tt.arch)) {
				t.Errorf("error %q does not say %q", err, tt.install)
			}
		})
	}
}

// TestUnpackStaysInside feeds Unpack layers that try to write outside its directory:
// through a symlink to outside, and with a ../ path.
func TestUnpackStaysInside(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "outside")
	os.Mkdir(outside, 0o755)
	escape := rawImage(t, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "escape", Linkname: outside, Mode: 0o777})
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "escape/pwned", Mode: 0o644, Size: 1})
		tw.Write([]byte("x"))
	})
	root := filepath.Join(t.TempDir(), "root")
	Unpack(escape, root) // an error or not: what counts is that nothing lands outside
	if _, err := os.Stat(filepath.Join(outside, "pwned")); err == nil {
		t.Fatal("the layer wrote outside the root through a symlink")
	}
	if l, err := os.Readlink(filepath.Join(root, "escape")); err != nil || l != outside {
		t.Errorf("the absolute symlink was not kept as it is: %q, %v", l, err)
	}
	dotdot := rawImage(t, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "../pwned", Mode: 0o644, Size: 1})
		tw.Write([]byte("x"))
	})
	root = filepath.Join(t.TempDir(), "root")
	if err := Unpack(dotdot, root); err == nil {
		t.Error("a ../ path was unpacked without an error")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "pwned")); err == nil {
		t.Fatal("the layer wrote outside the root with a ../ path")
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	if err := Unpack(escape, full); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("unpacking into a non-empty directory: %v", err)
	}
}

// rawImage is an image of one layer whose tar write writes, unchecked.
func rawImage(t testing.TB, write func(*tar.Writer)) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write(tw)
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(buf.Bytes())
	zw.Close()
	l := &layer{gz: gz.Bytes(), digest: hashOf(gz.Bytes()), diffID: hashOf(buf.Bytes())}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
