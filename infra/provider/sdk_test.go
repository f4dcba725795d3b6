package provider

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestSDKUpToDate regenerates the Go SDK (tools/sdkgen, Pulumi's own code generator fed
// with this provider's schema) and fails when it differs from sdk/go: the program would
// otherwise compile against inputs the provider no longer has. `make sdk` regenerates it.
func TestSDKUpToDate(t *testing.T) {
	out := t.TempDir()
	gen := exec.Command("go", "run", ".", "-out", out)
	gen.Dir = "../../tools/sdkgen"
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("tools/sdkgen: %v\n%s", err, b)
	}
	const checkedIn = "../../sdk/go"
	want := tree(t, out)
	got := tree(t, checkedIn)
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("sdk/go/%s is missing: run make sdk", name)
		case !bytes.Equal(g, w):
			t.Errorf("sdk/go/%s differs from what the provider's schema generates: run make sdk", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("sdk/go/%s is not generated any more: run make sdk", name)
		}
	}
}

// tree reads every file below dir, by slash-separated relative name.
func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
