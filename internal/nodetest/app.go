package nodetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FaceloginImages builds cmd/facelogin from the repository at root and pushes
// the two app images to the node's registry: facelogin-web (the binary and
// every shared library ldd resolves for it, the loader included) and
// facelogin-api (the same plus the dlib models from models in /models). They
// run as 65532:65532, as apps/facelogin/images/*.Dockerfile's do. It returns
// both references by digest.
//
// A stand-in until the project's image library (issue #10) lands: same
// contents as the Dockerfiles, assembled without Docker.
func (n *Node) FaceloginImages(ctx context.Context, root, models string) (api, web string, err error) {
	bin := filepath.Join(StateDir, "images", "facelogin")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/facelogin")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("nodetest: go build ./cmd/facelogin: %w\n%s", err, out)
	}
	files := map[string]File{}
	add := func(dst, src string, mode int64) error {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		files[strings.TrimPrefix(dst, "/")] = File{Data: b, Mode: mode}
		return nil
	}
	if err := add("/usr/local/bin/facelogin", bin, 0o755); err != nil {
		return "", "", err
	}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return "", "", fmt.Errorf("nodetest: ldd %s: %w", bin, err)
	}
	for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
		if err := add(m[1], m[1], 0o755); err != nil {
			return "", "", err
		}
	}
	cfg := v1.Config{Entrypoint: []string{"/usr/local/bin/facelogin"}, User: "65532:65532",
		Env: []string{"PATH=/usr/local/bin"}, WorkingDir: "/"}
	webImg, err := FileImage(files, cfg)
	if err != nil {
		return "", "", err
	}
	dats, _ := filepath.Glob(filepath.Join(models, "*.dat"))
	if len(dats) == 0 {
		return "", "", fmt.Errorf("nodetest: no dlib models in %s: run make models", models)
	}
	for _, m := range dats {
		if err := add("/models/"+filepath.Base(m), m, 0o644); err != nil {
			return "", "", err
		}
	}
	apiImg, err := FileImage(files, cfg)
	if err != nil {
		return "", "", err
	}
	if api, err = n.Push(ctx, "edgeline/facelogin-api", "test", apiImg); err != nil {
		return "", "", err
	}
	if web, err = n.Push(ctx, "edgeline/facelogin-web", "test", webImg); err != nil {
		return "", "", err
	}
	return api, web, nil
}

// lddPath matches the absolute library paths in ldd's output (the loader included).
var lddPath = regexp.MustCompile(`(?m)(/\S+\.so[.\d]*) \(0x`)
