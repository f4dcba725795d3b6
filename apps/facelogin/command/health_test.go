package command

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/edgeline/edgeline/apps/facelogin/seal"
)

// wantHealth checks that url answers status with a JSON body equal to want.
func wantHealth(t *testing.T, url string, status int, want map[string]any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil || res.StatusCode != status ||
		res.Header.Get("Content-Type") != "application/json; charset=utf-8" || !reflect.DeepEqual(got, want) {
		t.Errorf("GET %s = %d %s %s; want %d application/json %v", url, res.StatusCode, res.Header.Get("Content-Type"), b, status, want)
	}
}

// ready is the /readyz answer of docs/api.md for a store with no face enrolled.
var ready = map[string]any{"status": "ok", "models": true, "descriptors": float64(0)}

// TestHealthJSON checks /healthz and /readyz answer as docs/api.md says under `api` and
// under `web` in front of it, also once the api is gone (serve: TestServe).
func TestHealthJSON(t *testing.T) {
	models := os.Getenv("EDGELINE_MODELS")
	if models == "" {
		t.Skip("set EDGELINE_MODELS to the dlib models folder (make test does)")
	}
	dir := t.TempDir()
	keyFile, pepperFile := filepath.Join(dir, "descriptor.key"), filepath.Join(dir, "pin.pepper")
	if _, err := seal.CreateFile(keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pepperFile, []byte("a-test-pepper-of-more-than-16-bytes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	apiAddr, webAddr := freeAddr(t), freeAddr(t)
	api := start(t, parse(t, "api", "--addr", apiAddr, "--db", "sqlite:"+filepath.Join(dir, "facelogin.db"),
		"--key-file", keyFile, "--pin-pepper-file", pepperFile, "--models", models, "--workers", "1"))
	web := start(t, parse(t, "web", "--addr", webAddr, "--api-url", "http://"+apiAddr))
	defer web.stop(t)
	for _, base := range []string{"http://" + apiAddr, "http://" + webAddr} {
		wantHealth(t, base+"/healthz", http.StatusOK, map[string]any{"status": "ok"})
		wantHealth(t, base+"/readyz", http.StatusOK, ready)
	}
	api.stop(t)
	wantHealth(t, "http://"+webAddr+"/readyz", http.StatusServiceUnavailable, map[string]any{"status": "api unreachable"})
	wantHealth(t, "http://"+webAddr+"/healthz", http.StatusOK, map[string]any{"status": "ok"})
}
