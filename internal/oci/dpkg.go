package oci

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Package is one Debian package whose files an image carries.
type Package struct {
	// Name, Arch and Version identify the package as dpkg does ("libdlib19.1", "arm64",
	// "19.24-1").
	Name, Arch, Version string
	// Source is the source package it was built from (Name when the same).
	Source string
	// stanza is the package's entry in dpkg's status file, copied into the image so
	// scanners find it.
	stanza []byte
}

// dpkgDB reads the dpkg database of this machine: which package owns which file, and each
// installed package's status entry.
type dpkgDB struct {
	dir string // /var/lib/dpkg
	// packages by "name:arch" (arch "all" included).
	packages map[string]*Package
	// dirs caches the canonical form of directories named in the .list files.
	dirs map[string]string
}

func openDpkg(dir string) (*dpkgDB, error) {
	b, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return nil, fmt.Errorf("read the dpkg database: %w (images are assembled from Debian packages: build on Debian or Ubuntu)", err)
	}
	db := &dpkgDB{dir: dir, packages: map[string]*Package{}, dirs: map[string]string{}}
	for _, stanza := range bytes.Split(b, []byte("\n\n")) {
		stanza = bytes.TrimSpace(stanza)
		if len(stanza) == 0 {
			continue
		}
		f := fields(stanza)
		if !strings.HasSuffix(f["Status"], " installed") {
			continue
		}
		p := &Package{Name: f["Package"], Arch: f["Architecture"], Version: f["Version"], Source: f["Source"],
			stanza: append(stanza, '\n')}
		if p.Source == "" {
			p.Source = p.Name
		}
		p.Source, _, _ = strings.Cut(p.Source, " ") // "dlib (19.24-1)" names the source version too
		db.packages[p.Name+":"+p.Arch] = p
	}
	return db, nil
}

// fields parses the single-line fields of a control stanza.
func fields(stanza []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(stanza), "\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// canonical resolves the symlinks of a directory (/lib is /usr/lib on merged-/usr systems).
func (db *dpkgDB) canonical(dir string) string {
	if c, ok := db.dirs[dir]; ok {
		return c
	}
	c, err := filepath.EvalSymlinks(dir)
	if err != nil {
		c = dir
	}
	db.dirs[dir] = c
	return c
}

// listFiles calls fn for each package's file list ("name" or "name:arch", list path).
func (db *dpkgDB) listFiles(fn func(pkg string, files []string)) error {
	lists, err := filepath.Glob(filepath.Join(db.dir, "info", "*.list"))
	if err != nil {
		return err
	}
	sort.Strings(lists)
	for _, l := range lists {
		b, err := os.ReadFile(l)
		if err != nil {
			return fmt.Errorf("read the dpkg database: %w", err)
		}
		fn(strings.TrimSuffix(filepath.Base(l), ".list"), strings.Split(string(b), "\n"))
	}
	return nil
}

// owners maps each of paths (real files, symlinks resolved) to the installed package
// that ships it. A path no package ships is left out.
func (db *dpkgDB) owners(paths []string) (map[string]*Package, error) {
	want := map[string]bool{}
	bases := map[string]bool{}
	for _, p := range paths {
		want[p] = true
		bases[filepath.Base(p)] = true
	}
	found := map[string]*Package{}
	err := db.listFiles(func(pkg string, files []string) {
		for _, f := range files {
			if f == "" || !bases[filepath.Base(f)] {
				continue
			}
			c := filepath.Join(db.canonical(filepath.Dir(f)), filepath.Base(f))
			if !want[c] || found[c] != nil {
				continue
			}
			if p := db.lookup(pkg); p != nil {
				found[c] = p
			}
		}
	})
	return found, err
}

// lookup finds an installed package by its .list name: "name:arch", or "name" for a
// package that is not Multi-Arch: same (its architecture is the native one or all).
func (db *dpkgDB) lookup(pkg string) *Package {
	if p := db.packages[pkg]; p != nil {
		return p
	}
	for k, p := range db.packages {
		if strings.HasPrefix(k, pkg+":") {
			return p
		}
	}
	return nil
}

// shipping returns the names of the packages (architecture removed) that ship a file
// named base in a library directory, for any architecture: the package to install when
// the library is missing for one architecture only.
func (db *dpkgDB) shipping(base string) []string {
	seen := map[string]bool{}
	var names []string
	db.listFiles(func(pkg string, files []string) {
		for _, f := range files {
			if filepath.Base(f) == base && strings.Contains(f, "/lib/") {
				name, _, _ := strings.Cut(pkg, ":")
				if !seen[name] && !strings.HasSuffix(name, "-cross") {
					seen[name] = true
					names = append(names, name)
				}
			}
		}
	})
	return names
}

// copyright returns the path of a package's copyright file, which Debian policy puts in
// every binary package.
func copyright(p *Package) (string, error) {
	path, err := filepath.EvalSymlinks(filepath.Join("/usr/share/doc", p.Name, "copyright"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("package %s:%s has no /usr/share/doc/%s/copyright (documentation excluded by a dpkg path-exclude?): reinstall it with documentation, apt-get install --reinstall %s:%s",
				p.Name, p.Arch, p.Name, p.Name, p.Arch)
		}
		return "", err
	}
	return path, nil
}
