package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file system object of a layer.
type entry struct {
	name     string // absolute path in the image, "/usr/lib/x86_64-linux-gnu/libc.so.6"
	typ      byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode     int64
	uid, gid int
	link     string // symlink target
	src      string // regular file: read from this file ...
	data     []byte // ... or these bytes
}

func dir(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}
func file(name, src string, mode int64) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, src: src}
}
func data(name string, b []byte, mode int64) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, data: b}
}

// layerBuilder makes reproducible layers: entries sorted by path, parent directories
// added, one fixed modification time, no user or group names, PAX format, gzip at a
// fixed level. Compressed layers are kept in cache (when set), keyed by the uncompressed
// content, so a rebuild compresses only what changed.
type layerBuilder struct {
	mtime time.Time
	cache string
}

// gzipLevel balances size and time: level 9 saves 0.1% over the default level and takes
// 2.4 times as long on a binary of 38 MB.
const gzipLevel = gzip.DefaultCompression

func (lb *layerBuilder) build(entries []entry) (v1.Layer, error) {
	entries, err := complete(entries)
	if err != nil {
		return nil, err
	}
	diffID := sha256.New()
	if err := lb.writeTar(diffID, entries); err != nil {
		return nil, err
	}
	l := &layer{diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diffID.Sum(nil))}}
	cached := ""
	if lb.cache != "" {
		// The compressed bytes depend on the compressor's version: key by Go release too.
		cached = filepath.Join(lb.cache, runtime.Version(), fmt.Sprintf("gzip%d-%s.tar.gz", gzipLevel, l.diffID.Hex))
		if b, err := os.ReadFile(cached); err == nil {
			l.gz = b
			l.digest = hashOf(b)
			return l, nil
		}
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzipLevel)
	if err != nil {
		return nil, err
	}
	if err := lb.writeTar(zw, entries); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	l.gz = buf.Bytes()
	l.digest = hashOf(l.gz)
	if cached != "" {
		if err := writeAtomic(cached, l.gz); err != nil {
			return nil, fmt.Errorf("layer cache: %w", err)
		}
	}
	return l, nil
}

// complete checks entries for clashes, adds missing parent directories and sorts them.
func complete(entries []entry) ([]entry, error) {
	byName := map[string]entry{}
	for _, e := range entries {
		if !path.IsAbs(e.name) || path.Clean(e.name) != e.name || e.name == "/" {
			return nil, fmt.Errorf("image path %q is not a clean absolute path", e.name)
		}
		if old, ok := byName[e.name]; ok {
			if old.typ == tar.TypeDir && e.typ == tar.TypeDir {
				continue
			}
			return nil, fmt.Errorf("image path %s is given twice", e.name)
		}
		byName[e.name] = e
	}
	for name := range byName {
		for d := path.Dir(name); d != "/"; d = path.Dir(d) {
			if p, ok := byName[d]; ok {
				if p.typ != tar.TypeDir {
					return nil, fmt.Errorf("image path %s is inside %s, which is not a directory", name, d)
				}
				continue
			}
			byName[d] = dir(d, 0o755)
		}
	}
	out := make([]entry, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func (lb *layerBuilder) writeTar(w io.Writer, entries []entry) error {
	tw := tar.NewWriter(w)
	mtime := lb.mtime.UTC().Truncate(time.Second)
	for _, e := range entries {
		h := &tar.Header{
			Typeflag: e.typ,
			Name:     strings.TrimPrefix(e.name, "/"),
			Linkname: e.link,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		}
		if e.typ == tar.TypeDir {
			h.Name += "/"
		}
		if err := writeEntry(tw, h, e); err != nil {
			return fmt.Errorf("layer entry %s: %w", e.name, err)
		}
	}
	return tw.Close()
}

// writeEntry writes one entry's header and, for a regular file, its content.
func writeEntry(tw *tar.Writer, h *tar.Header, e entry) error {
	if e.typ != tar.TypeReg {
		return tw.WriteHeader(h)
	}
	if e.src == "" {
		h.Size = int64(len(e.data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(e.data)
		return err
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h.Size = fi.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if n, err := io.Copy(tw, f); err != nil {
		return err
	} else if n != h.Size {
		return fmt.Errorf("%s changed while it was read", e.src)
	}
	return nil
}

func hashOf(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// writeAtomic writes b to name through a temporary file, so a reader never sees half.
func writeAtomic(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Rename(f.Name(), name)
	}
	if werr != nil {
		os.Remove(f.Name())
	}
	return werr
}

// layer is a gzip-compressed tar layer held in memory.
type layer struct {
	gz             []byte
	digest, diffID v1.Hash
}

func (l *layer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *layer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *layer) Size() (int64, error)     { return int64(len(l.gz)), nil }
func (l *layer) MediaType() (types.MediaType, error) {
	return types.OCILayer, nil
}
func (l *layer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.gz)), nil
}
func (l *layer) Uncompressed() (io.ReadCloser, error) {
	return gzip.NewReader(bytes.NewReader(l.gz))
}
