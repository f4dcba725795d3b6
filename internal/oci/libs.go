package oci

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// runtime is what a dynamically linked binary needs at run time: its ELF interpreter and
// the shared libraries it loads, transitively, each a real file of this machine owned by
// a Debian package.
type runtimeFiles struct {
	// interp is the binary's PT_INTERP ("/lib64/ld-linux-x86-64.so.2"); empty for a
	// static binary.
	interp string
	// libs are the libraries, sorted by soname, the interpreter included.
	libs []library
}

// library is one shared object: the name the loader looks for and the file that
// answers it on this machine.
type library struct {
	soname string   // "libblas.so.3"
	path   string   // the real file, symlinks resolved
	pkg    *Package // the package that ships path
}

// MissingLibraryError reports a shared library a binary needs that is not installed for
// its architecture.
type MissingLibraryError struct {
	Arch    Arch
	Soname  string   // the library, "libdlib.so.19.1"
	Needer  string   // the binary or library that needs it
	Install []string // packages to install, "libdlib19.1:arm64"; empty when unknown
}

func (e *MissingLibraryError) Error() string {
	if len(e.Install) == 0 {
		return fmt.Sprintf("%s needs %s, which is not installed for %s: install the Debian package that ships it for %s (apt-file search %s names it), then build again",
			e.Needer, e.Soname, e.Arch, e.Arch, e.Soname)
	}
	return fmt.Sprintf("%s needs %s, which is not installed for %s: install it with apt-get install %s (make setup installs the app's), then build again",
		e.Needer, e.Soname, e.Arch, strings.Join(e.Install, " "))
}

// libraryDirs are where Debian's loader finds libraries without an ld.so.cache: the
// multiarch directories first.
func libraryDirs(a Arch) []string {
	t := a.Triplet()
	return []string{"/lib/" + t, "/usr/lib/" + t, "/lib", "/usr/lib"}
}

// resolveRuntime reads bin's ELF interpreter and DT_NEEDED entries and finds each
// library, recursively, on this machine; db names the package that ships each file.
func resolveRuntime(bin string, a Arch, db *dpkgDB) (*runtimeFiles, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (the binary must be a Linux ELF executable)", bin, err)
	}
	defer f.Close()
	if f.Machine != a.machine() {
		return nil, fmt.Errorf("%s is built for %s, not %s: build it with GOARCH=%s", bin, archOf(f.Machine), a, a)
	}
	rt := &runtimeFiles{}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return nil, fmt.Errorf("read the interpreter of %s: %w", bin, err)
		}
		rt.interp = strings.TrimRight(string(b), "\x00")
	}
	if rt.interp == "" {
		return rt, nil // static: nothing to carry
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("read the libraries %s needs: %w", bin, err)
	}

	found := map[string]string{} // soname → real path
	interpPath, err := realELF(rt.interp, a)
	if err != nil {
		return nil, &MissingLibraryError{Arch: a, Soname: filepath.Base(rt.interp), Needer: bin, Install: suggest(db, filepath.Base(rt.interp), a)}
	}
	found[filepath.Base(rt.interp)] = interpPath

	type need struct{ soname, by string }
	queue := make([]need, 0, len(needed))
	for _, n := range needed {
		queue = append(queue, need{n, bin})
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if _, ok := found[n.soname]; ok {
			continue
		}
		path, err := findLibrary(n.soname, a)
		if err != nil {
			return nil, &MissingLibraryError{Arch: a, Soname: n.soname, Needer: filepath.Base(n.by), Install: suggest(db, n.soname, a)}
		}
		found[n.soname] = path
		lf, err := elf.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		deps, err := lf.ImportedLibraries()
		lf.Close()
		if err != nil {
			return nil, fmt.Errorf("read the libraries %s needs: %w", path, err)
		}
		for _, d := range deps {
			queue = append(queue, need{d, path})
		}
	}

	paths := make([]string, 0, len(found))
	for _, p := range found {
		paths = append(paths, p)
	}
	owners, err := db.owners(paths)
	if err != nil {
		return nil, err
	}
	for soname, path := range found {
		p := owners[path]
		if p == nil {
			return nil, fmt.Errorf("%s (%s) belongs to no installed Debian package: install the library with apt, so the image can carry its copyright and SBOM entry", path, soname)
		}
		rt.libs = append(rt.libs, library{soname: soname, path: path, pkg: p})
	}
	sort.Slice(rt.libs, func(i, j int) bool { return rt.libs[i].soname < rt.libs[j].soname })
	return rt, nil
}

// findLibrary looks for soname in a's library directories, as the loader does, and
// returns the real file.
func findLibrary(soname string, a Arch) (string, error) {
	if strings.Contains(soname, "/") {
		return realELF(soname, a)
	}
	for _, dir := range libraryDirs(a) {
		p, err := realELF(filepath.Join(dir, soname), a)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errWrongMachine) {
			return "", err
		}
	}
	return "", fs.ErrNotExist
}

var errWrongMachine = errors.New("ELF file of another architecture")

// realELF resolves path's symlinks and checks that it is an ELF file for a.
func realELF(path string, a Arch) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(real); err != nil || !fi.Mode().IsRegular() {
		return "", fs.ErrNotExist
	}
	f, err := elf.Open(real)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", real, err)
	}
	defer f.Close()
	if f.Machine != a.machine() {
		return "", errWrongMachine
	}
	return real, nil
}

// suggest names the packages to install for a missing library: a package that ships the
// same file for another architecture, with a's suffix.
func suggest(db *dpkgDB, soname string, a Arch) []string {
	var s []string
	for _, n := range db.shipping(soname) {
		s = append(s, n+":"+string(a))
	}
	return s
}
