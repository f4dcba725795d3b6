package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/edgeline/edgeline/internal/appimage"
	"github.com/edgeline/edgeline/internal/oci"
)

const imagesUsage = `usage: edgeline images build [flags]   compile the app and write its images as an OCI layout
       edgeline images push [flags]    push the layout's images to a registry, tag last

Run in the repository's checkout. Credentials come from $EDGELINE_REGISTRY_USERNAME and
$EDGELINE_REGISTRY_PASSWORD, or from the docker config file ($DOCKER_CONFIG/config.json,
~/.docker/config.json). See docs/images.md.
`

// runImages is `edgeline images build|push`.
func runImages(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "build" && args[0] != "push") {
		fmt.Fprint(stderr, imagesUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return exitOK
		}
		return exitUsage
	}
	op := args[0]
	fs := flag.NewFlagSet("edgeline images "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	layout := fs.String("layout", envOr("EDGELINE_IMAGE_LAYOUT", filepath.Join("bin", "images")), "OCI layout directory the images are written to and pushed from ($EDGELINE_IMAGE_LAYOUT)")
	var err error
	switch op {
	case "build":
		var o appimage.Options
		arches := fs.String("arch", "amd64,arm64", "architectures, comma-separated")
		fs.StringVar(&o.Models, "models", "", "directory of the dlib models (default models/, checked against models/SHA256SUMS)")
		fs.StringVar(&o.Version, "version", "", "image version (default: git describe --tags --always --dirty)")
		fs.StringVar(&o.Revision, "revision", "", "source revision (default: the commit)")
		fs.StringVar(&o.SourceURL, "source-url", os.Getenv("EDGELINE_SOURCE_URL"), "repository address for the org.opencontainers.image.source label ($EDGELINE_SOURCE_URL)")
		fs.StringVar(&o.Cache, "cache", filepath.Join(envOr("EDGELINE_CACHE", ".cache"), "images"), "directory that keeps compressed layers between builds (\"\" for none)")
		if fs.Parse(args[1:]) != nil {
			return exitCode(fs, args)
		}
		if o.Arches, err = oci.ParseArches(*arches); err != nil {
			err = usageError{err}
			break
		}
		o.Log = stderr
		err = buildImages(ctx, o, *layout, stdout)
	case "push":
		repo := fs.String("repository", os.Getenv("EDGELINE_IMAGE_REPOSITORY"), "registry and path the images go under, e.g. registry.example.org/team ($EDGELINE_IMAGE_REPOSITORY)")
		tag := fs.String("tag", "", "tag to push (default: the images' version)")
		insecure := fs.Bool("insecure", false, "allow a plain-HTTP registry (loopback and private addresses always may)")
		if fs.Parse(args[1:]) != nil {
			return exitCode(fs, args)
		}
		err = pushImages(ctx, *layout, *repo, *tag, oci.Remote{Insecure: *insecure}, stdout)
	}
	if err == nil && fs.NArg() > 0 {
		err = usageError{fmt.Errorf("unexpected argument %q: edgeline images %s takes flags only", fs.Arg(0), op)}
	}
	if err != nil {
		fmt.Fprintf(stderr, "edgeline images %s: %v\n", op, err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitFailed
	}
	return exitOK
}

func buildImages(ctx context.Context, o appimage.Options, layout string, stdout io.Writer) error {
	start := time.Now()
	images, err := appimage.Build(ctx, o)
	if err != nil {
		return err
	}
	if err := oci.WriteLayout(layout, images); err != nil {
		return err
	}
	for _, n := range slices.Sorted(maps.Keys(images)) {
		d, _ := images[n].Digest()
		fmt.Fprintf(stdout, "%s %s\n", n, d)
	}
	fmt.Fprintf(stdout, "wrote %s in %.0fs; push with: edgeline images push --repository REGISTRY/PATH\n", layout, time.Since(start).Seconds())
	return nil
}

func pushImages(ctx context.Context, layout, repo, tag string, r oci.Remote, stdout io.Writer) error {
	if repo == "" {
		return usageError{errors.New("--repository is missing: name the registry and path the images go under, e.g. --repository registry.example.org/team")}
	}
	images, err := oci.ReadLayout(layout)
	if err != nil {
		return usageError{err}
	}
	refs := map[string]v1.ImageIndex{}
	for n, idx := range images {
		t := tag
		if t == "" {
			im, err := idx.IndexManifest()
			if err != nil {
				return err
			}
			if t = im.Annotations[oci.AnnotationVersion]; t == "" {
				return usageError{fmt.Errorf("%s has no version label: give --tag", n)}
			}
		}
		if tag == "" {
			tag = t
		}
		refs[repo+"/"+n+":"+t] = idx
	}
	digests, err := r.Push(ctx, refs)
	if err != nil {
		return err
	}
	for _, ref := range slices.Sorted(maps.Keys(digests)) {
		fmt.Fprintf(stdout, "pushed %s\n", digests[ref])
	}
	fmt.Fprintf(stdout, "tagged %s; deploy them with:\n  pulumi config set edgeline:appImageRepository %s\n  pulumi config set edgeline:appImageTag %s\n", tag, repo, tag)
	return nil
}
