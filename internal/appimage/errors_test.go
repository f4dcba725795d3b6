package appimage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeline/edgeline/internal/oci"
)

// source is this repository's checkout.
const source = "../.."

// env returns the environment variable or skips the test, saying how to enable it.
func env(t *testing.T, name, what string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Skipf("needs %s: set %s (make test does)", what, name)
	}
	return v
}

func TestBadInput(t *testing.T) {
	models := env(t, "EDGELINE_MODELS", "the dlib models")
	// A copy of the models with one byte changed in the smallest.
	damaged := t.TempDir()
	for _, f := range []string{"dlib_face_recognition_resnet_model_v1.dat", "mmod_human_face_detector.dat", "shape_predictor_5_face_landmarks.dat"} {
		if err := os.Symlink(filepath.Join(models, f), filepath.Join(damaged, f)); err != nil {
			t.Fatal(err)
		}
	}
	mmod := filepath.Join(damaged, "mmod_human_face_detector.dat")
	b, err := os.ReadFile(mmod)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(mmod)
	b[len(b)/2] ^= 0xff
	os.WriteFile(mmod, b, 0o644)
	noCross := t.TempDir() // a PATH with go and nothing else
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	os.Symlink(goBin, filepath.Join(noCross, "go"))

	for _, tt := range []struct {
		name string
		path string // PATH for the build; "" keeps this one
		o    Options
		want string
	}{
		{"unknown architecture", "", Options{Source: source, Arches: []oci.Arch{"riscv64"}}, `unknown architecture "riscv64": use amd64 or arm64`},
		{"model sum differs", "", Options{Source: source, Models: damaged},
			"mmod_human_face_detector.dat has sha256 "},
		{"models missing", "", Options{Source: source, Models: t.TempDir()}, "is missing: fetch the models with make models"},
		{"no cross compiler", noCross, Options{Source: source, Models: models, Arches: []oci.Arch{oci.ARM64}},
			"cross-building facelogin for arm64 needs aarch64-linux-gnu-gcc: install g++-aarch64-linux-gnu (make setup does)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path != "" {
				t.Setenv("PATH", tt.path)
			}
			_, err := Build(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			t.Log(err)
		})
	}
	if _, err := Models(source, damaged); err == nil || !strings.Contains(err.Error(), "but models/SHA256SUMS says") ||
		!strings.HasSuffix(err.Error(), "fetch the models again with make models") {
		t.Errorf("damaged model: %v", err)
	}
}

// TestLinkerErrors checks the sentence a missing library gives, on the linker's own words.
func TestLinkerErrors(t *testing.T) {
	for _, tt := range []struct{ out, want string }{
		{"/usr/lib/gcc-cross/aarch64-linux-gnu/12/../../../../aarch64-linux-gnu/bin/ld: cannot find -ldlib: No such file or directory\ncollect2: error: ld returned 1 exit status",
			"the linker cannot find -ldlib: install libdlib-dev:arm64 (make setup installs the arm64 libraries)"},
		{"/usr/bin/ld: cannot find -ljpeg: No such file or directory",
			"install libjpeg62-turbo-dev:arm64"},
		{"/usr/bin/ld: cannot find -lfoo: No such file or directory",
			"install the arm64 development package that ships libfoo.so"},
	} {
		err := buildError(oci.ARM64, "./cmd/facelogin", errors.New("exit status 1"), []byte(tt.out))
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q gave %q, want %q", tt.out, err, tt.want)
		}
	}
}
