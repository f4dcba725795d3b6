package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// WriteLayout writes images (by name) as an OCI image layout in dir, each index named by
// its org.opencontainers.image.ref.name. dir must be missing, empty or an earlier layout,
// which is replaced.
func WriteLayout(dir string, images map[string]v1.ImageIndex) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			return fmt.Errorf("%s is neither empty nor an OCI layout: give a new directory", dir)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write the layout %s: %w", dir, err)
	}
	for _, name := range slices.Sorted(maps.Keys(images)) {
		if err := p.AppendIndex(images[name], layout.WithAnnotations(map[string]string{AnnotationRefName: name})); err != nil {
			return fmt.Errorf("write %s to %s: %w", name, dir, err)
		}
	}
	return nil
}

// ReadLayout reads the named indexes of the OCI layout in dir.
func ReadLayout(dir string) (map[string]v1.ImageIndex, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s is not an OCI layout: build the images first (edgeline images build --out %s)", dir, dir)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read the layout %s: %w", dir, err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read the layout %s: %w", dir, err)
	}
	out := map[string]v1.ImageIndex{}
	for _, d := range im.Manifests {
		name := d.Annotations[AnnotationRefName]
		if name == "" || !d.MediaType.IsIndex() {
			continue
		}
		idx, err := top.ImageIndex(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("read %s from the layout %s: %w", name, dir, err)
		}
		out[name] = idx
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the layout %s holds no named image index", dir)
	}
	return out, nil
}
