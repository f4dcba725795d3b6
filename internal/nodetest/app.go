package nodetest

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/edgeline/edgeline/internal/appimage"
	"github.com/edgeline/edgeline/internal/oci"
)

// AppRepository is the repository prefix of the app's images in the
// node's registry: AppRepository + "/facelogin-api" and "/facelogin-web".
const AppRepository = Registry + "/edgeline"

// FaceloginImages builds the app's images from the checkout at root with
// the dlib models in models, exactly as `edgeline images build` does
// (package appimage: facelogin-api with the models, the static
// facelogin-web; amd64 only, the node's architecture), pushes them to the
// node's registry with `edgeline images push`'s code (oci.Remote) and
// returns both references by digest (the image indexes), which containerd
// pulls as the chart names them.
func (n *Node) FaceloginImages(ctx context.Context, root, models string) (api, web string, err error) {
	o := appimage.Options{
		Source: root,
		Models: models,
		Arches: []oci.Arch{oci.AMD64},
		// Fixed labels: the images do not depend on the checkout's git state.
		Version:  "v0.0.0-nodetest",
		Revision: "0000000000000000000000000000000000000000",
		Created:  time.Unix(0, 0).UTC(),
		Cache:    filepath.Join(StateDir, "images", "layers"),
	}
	t0 := time.Now()
	images, err := appimage.Build(ctx, o)
	if err != nil {
		return "", "", fmt.Errorf("nodetest: build the app's images: %w", err)
	}
	built := time.Since(t0)
	tags := map[string]v1.ImageIndex{
		AppRepository + "/" + appimage.API + ":test": images[appimage.API],
		AppRepository + "/" + appimage.Web + ":test": images[appimage.Web],
	}
	digests, err := oci.Remote{Insecure: true}.Push(ctx, tags)
	if err != nil {
		return "", "", fmt.Errorf("nodetest: push the app's images: %w", err)
	}
	n.logf("nodetest: app images built in %.1fs, pushed in %.1fs", built.Seconds(), (time.Since(t0) - built).Seconds())
	return digests[AppRepository+"/"+appimage.API+":test"].String(),
		digests[AppRepository+"/"+appimage.Web+":test"].String(), nil
}
