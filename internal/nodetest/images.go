package nodetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The images the node itself runs, pushed to its registry at start.
var (
	// PauseImage is a static Go program that waits for a signal, or with
	// an address argument serves HTTP 200 there (a test workload).
	PauseImage = pauseImage
	// CoreDNSImage is CoreDNS from the tool cache.
	CoreDNSImage = Registry + "/edgeline/coredns:1"
)

// startRegistry serves an OCI registry (go-containerregistry's, blobs on
// disk) on the bridge address, which containerd pulls from over plain HTTP.
func (n *Node) startRegistry() error {
	l, err := net.Listen("tcp", Registry)
	if err != nil {
		return fmt.Errorf("nodetest: registry: %w", err)
	}
	h := registry.New(
		registry.WithBlobHandler(registry.NewDiskBlobHandler(filepath.Join(StateDir, "registry"))),
		registry.Logger(log.New(io.Discard, "", 0)))
	n.registry = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go n.registry.Serve(l)
	return nil
}

// Push uploads img to the node's registry as repo:tag (repo without the
// registry, e.g. "edgeline/facelogin-api") and returns the pullable
// reference by digest.
func (n *Node) Push(ctx context.Context, repo, tag string, img v1.Image) (string, error) {
	ref, err := name.NewTag(Registry+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("nodetest: push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return Registry + "/" + repo + "@" + d.String(), nil
}

// File is one file of an image built by FileImage.
type File struct {
	Data []byte
	Mode int64
}

// FileImage builds a linux/amd64 image of one layer holding files (path
// inside the image → file) with cfg as its runtime config.
func FileImage(files map[string]File, cfg v1.Config) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := files[p]
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: f.Mode, Size: int64(len(f.Data)), Typeflag: tar.TypeReg,
			ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", "amd64", cfg
	return mutate.ConfigFile(img, cf)
}

// pushSystemImages builds and pushes the pause and CoreDNS images.
func (n *Node) pushSystemImages(ctx context.Context) error {
	pause, err := buildPause(filepath.Join(StateDir, "images", "pause"))
	if err != nil {
		return err
	}
	coredns, err := os.ReadFile(filepath.Join(n.binDir, "coredns"))
	if err != nil {
		return err
	}
	images := []struct {
		ref   string
		files map[string]File
		cfg   v1.Config
	}{
		{pauseImage, map[string]File{"pause": {pause, 0o755}},
			v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"}},
		{CoreDNSImage, map[string]File{"coredns": {coredns, 0o755}},
			v1.Config{Entrypoint: []string{"/coredns"}, User: "65532:65532"}},
	}
	for _, im := range images {
		img, err := FileImage(im.files, im.cfg)
		if err != nil {
			return err
		}
		ref, err := name.NewTag(im.ref, name.Insecure)
		if err != nil {
			return err
		}
		if _, err := n.Push(ctx, ref.RepositoryStr(), ref.TagStr(), img); err != nil {
			return err
		}
	}
	return nil
}

// buildPause compiles ./pause statically to out and returns the binary.
func buildPause(out string) ([]byte, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return nil, errors.New("nodetest: cannot find the pause program's source")
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = filepath.Join(filepath.Dir(file), "pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nodetest: build the pause program: %w\n%s", err, b)
	}
	return os.ReadFile(out)
}
