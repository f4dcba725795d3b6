package appimage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/edgeline/edgeline/apps/facelogin/seal"
	"github.com/edgeline/edgeline/internal/oci"
	"github.com/edgeline/edgeline/internal/oci/ocitest"
)

// bootstrap is the admin invitation the test enrolls with.
const bootstrap = "image-test-bootstrap-token-0123456789"

var created = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// arm64Tools skips the test when this machine cannot build or run arm64.
func arm64Tools(t *testing.T) (qemu, qemuStatic string) {
	t.Helper()
	if _, err := exec.LookPath("aarch64-linux-gnu-g++"); err != nil {
		t.Skip("cross-building for arm64 needs g++-aarch64-linux-gnu and the arm64 libraries (make setup)")
	}
	return env(t, "EDGELINE_TEST_QEMU", "qemu-aarch64 (Debian's qemu-user)"),
		env(t, "EDGELINE_TEST_QEMU_STATIC", "the directory of the static QEMU emulators")
}

// TestImages is the images' proof: facelogin cross-compiled for arm64 runs under QEMU as
// a Raspberry Pi 4's CPU and analyses a real photo; both images go through a real
// registry (push, pull by digest, unpack) and their root file systems run read-only as
// 65532, amd64 natively and arm64 under QEMU, the web image proxying to the api image.
func TestImages(t *testing.T) {
	models := env(t, "EDGELINE_MODELS", "the dlib models")
	faces := env(t, "EDGELINE_FACES", "the test photos")
	qemu, qemuStatic := arm64Tools(t)
	ctx := context.Background()

	bins := map[oci.Arch]Binaries{}
	for _, a := range oci.Arches {
		start := time.Now()
		b, err := Compile(ctx, Options{Source: source}, a, filepath.Join(t.TempDir(), string(a)))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("compiled for %s in %.1fs", a, time.Since(start).Seconds())
		bins[a] = b
	}

	t.Run("arm64 binary under QEMU as a Cortex-A72", func(t *testing.T) {
		// No -L: Debian's libc6:arm64 puts the arm64 loader where the binary looks for it
		// and its libraries in /usr/lib/aarch64-linux-gnu; -L /usr/aarch64-linux-gnu would
		// pair the cross toolchain's loader with that libc and hang.
		port := ocitest.FreePort(t)
		cmd := exec.Command(qemu, "-cpu", "cortex-a72", bins[oci.ARM64].API, "serve",
			"--addr", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", t.TempDir(), "--models", models,
			"--workers", "1", "--bootstrap-token", bootstrap)
		cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
		var out syncWriter
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		waitHealthy(t, base, func() string { return out.String() })
		analyse(t, base, faces)
	})

	o := Options{Source: source, Models: models, Version: "v0.0.0-test", Revision: "0123456789abcdef", Created: created, Cache: t.TempDir()}
	images, err := Assemble(ctx, o, bins)
	if err != nil {
		t.Fatal(err)
	}
	for name, idx := range images {
		logSizes(t, name, idx)
	}

	t.Run("reproducible", func(t *testing.T) {
		// The same binaries elsewhere, another layer cache: the same digests.
		moved := map[oci.Arch]Binaries{}
		dir := t.TempDir()
		for a, b := range bins {
			moved[a] = Binaries{API: copyTo(t, b.API, filepath.Join(dir, string(a)+"-api")), Web: copyTo(t, b.Web, filepath.Join(dir, string(a)+"-web"))}
		}
		o2 := o
		o2.Cache = t.TempDir()
		again, err := Assemble(ctx, o2, moved)
		if err != nil {
			t.Fatal(err)
		}
		for name, idx := range images {
			d1, _ := idx.Digest()
			d2, _ := again[name].Digest()
			if d1 != d2 {
				t.Errorf("%s: %s, then %s from the same binaries", name, d1, d2)
			}
		}
	})

	host := ocitest.Registry(t, nil)
	digests, err := oci.Remote{}.Push(ctx, map[string]v1.ImageIndex{
		host + "/edgeline/" + API + ":test": images[API],
		host + "/edgeline/" + Web + ":test": images[Web],
	})
	if err != nil {
		t.Fatal(err)
	}
	apiRef, webRef := digests[host+"/edgeline/"+API+":test"].String(), digests[host+"/edgeline/"+Web+":test"].String()

	for _, run := range []struct {
		name     string
		arch     oci.Arch
		emulator string
		cpu      string
	}{
		{"amd64", oci.AMD64, "", ""},
		// The amd64 image on the oldest CPU its build promises: x86-64-v2, no AVX.
		{"amd64 on an x86-64-v2 CPU (QEMU Nehalem)", oci.AMD64, filepath.Join(qemuStatic, "qemu-x86_64-static"), "Nehalem"},
		{"arm64 (QEMU Cortex-A72)", oci.ARM64, filepath.Join(qemuStatic, "qemu-aarch64-static"), "cortex-a72"},
	} {
		t.Run(run.name, func(t *testing.T) {
			secrets := t.TempDir()
			if _, err := seal.CreateFile(filepath.Join(secrets, "descriptor-key")); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(secrets, "pin-pepper"), []byte("image-test-pepper-0123456789abcdef\n"), 0o600)
			os.Chmod(secrets, 0o755)
			for _, f := range []string{"descriptor-key", "pin-pepper"} {
				os.Chown(filepath.Join(secrets, f), 65532, 65532)
			}
			apiPort, webPort := ocitest.FreePort(t), ocitest.FreePort(t)
			var emuArgs []string
			if run.cpu != "" {
				emuArgs = []string{"-cpu", run.cpu}
			}
			api := start(t, apiRef, run.arch, ocitest.Options{
				Args: []string{"/app", "api", "--addr", fmt.Sprintf("127.0.0.1:%d", apiPort), "--insecure-cookies",
					"--workers", "1", "--bootstrap-token", bootstrap},
				Env: []string{"FACELOGIN_DB=sqlite:/tmp/facelogin.db", "OPENBLAS_NUM_THREADS=1",
					"FACELOGIN_KEY_FILE=/run/secrets/facelogin/descriptor-key", "FACELOGIN_PIN_PEPPER_FILE=/run/secrets/facelogin/pin-pepper"},
				Mounts:   map[string]string{secrets: "/run/secrets/facelogin"},
				Emulator: run.emulator, EmulatorArgs: emuArgs,
			})
			web := start(t, webRef, run.arch, ocitest.Options{
				Args:     []string{"/app", "web", "--addr", fmt.Sprintf("127.0.0.1:%d", webPort), "--api-url", fmt.Sprintf("http://127.0.0.1:%d", apiPort)},
				Emulator: run.emulator, EmulatorArgs: emuArgs,
			})
			waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d", apiPort), api.Output)
			waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d", webPort), web.Output)
			// Through the web image's proxy to the api image, as a browser goes.
			analyse(t, fmt.Sprintf("http://127.0.0.1:%d", webPort), faces)
		})
	}
}

// start pulls the image for a by digest, unpacks it and runs opts in it with the
// image's own environment.
func start(t *testing.T, ref string, a oci.Arch, opts ocitest.Options) *ocitest.Process {
	t.Helper()
	img, err := oci.Remote{}.Pull(context.Background(), ref, a)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := oci.Unpack(img, root); err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || strings.Join(cf.Config.Entrypoint, " ") != "/app" {
		t.Fatalf("%s: user %q, entrypoint %v", ref, cf.Config.User, cf.Config.Entrypoint)
	}
	opts.Env = append(append([]string{}, cf.Config.Env...), opts.Env...)
	return ocitest.Start(t, root, opts)
}

// waitHealthy waits for base/healthz, for up to 3 minutes (model loading under QEMU).
func waitHealthy(t *testing.T, base string, output func() string) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 3*time.Minute {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Logf("%s/healthz answered after %.1fs", base, time.Since(start).Seconds())
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s/healthz did not answer 200 in 3 minutes; output:\n%s", base, output())
}

// analyse enrolls the bootstrap admin at base and has the api analyse a real face photo
// (a good sample) and a blank image (no face): the recognition engine really runs.
func analyse(t *testing.T, base, faces string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 2 * time.Minute}
	var invite struct{ Consent struct{ Version string } }
	call(t, c, "GET", base+"/api/invites/"+bootstrap, "", nil, http.StatusOK, &invite)
	body, _ := json.Marshal(map[string]any{"token": bootstrap, "consent_version": invite.Consent.Version, "accept": true,
		"pin": "480516", "password": "image test password 42", "name": "Image Test", "email": "image.test@example.org"})
	call(t, c, "POST", base+"/api/enroll", "application/json", body, http.StatusCreated, nil)

	photo, err := os.ReadFile(filepath.Join(faces, "people", "amy", "amy1.png"))
	if err != nil {
		t.Fatal(err)
	}
	var check struct {
		OK   bool
		Code string
	}
	start := time.Now()
	call(t, c, "POST", base+"/api/face/check", "image/png", photo, http.StatusOK, &check)
	if !check.OK || check.Code != "ok" {
		t.Errorf("a real face photo: ok %v, code %q; want a good sample", check.OK, check.Code)
	}
	t.Logf("face photo analysed in %.2fs", time.Since(start).Seconds())
	var blank bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 320, 240))
	for i := range img.Pix {
		img.Pix[i] = uint8(96 + i%7)
	}
	img.Set(0, 0, color.Gray{Y: 200})
	png.Encode(&blank, img)
	call(t, c, "POST", base+"/api/face/check", "image/png", blank.Bytes(), http.StatusOK, &check)
	if check.OK || check.Code != "no_face" {
		t.Errorf("a blank image: ok %v, code %q; want no_face", check.OK, check.Code)
	}
}

func call(t *testing.T, c *http.Client, method, url, contentType string, body []byte, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
}

// logSizes reports each architecture's compressed image size.
func logSizes(t *testing.T, name string, idx v1.ImageIndex) {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := img.Layers()
		var total int64
		var parts []string
		for _, l := range ls {
			n, _ := l.Size()
			total += n
			parts = append(parts, fmt.Sprintf("%.1f", float64(n)/1e6))
		}
		t.Logf("%s %s: %.1f MB compressed (layers %s)", name, d.Platform, float64(total)/1e6, strings.Join(parts, " + "))
	}
}

func copyTo(t *testing.T, src, dst string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o700); err != nil {
		t.Fatal(err)
	}
	return dst
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
