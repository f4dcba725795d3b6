package helm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/edgeline/edgeline/internal/helm"
)

// These tests pull charts from real servers on loopback, over TLS: an OCI registry
// (go-containerregistry's registry, charts pushed with the Helm SDK's registry client as
// `helm push` does) and a classic chart repository (index.yaml and archives made with
// the Helm SDK, served by net/http). They stand in for the public registries and
// repositories a real run pulls from, which no machine here can reach.

// archive packages testdata/hello as `helm package` does, with description as its
// description (so two archives of the same version can differ), and returns its path.
func archive(t *testing.T, description string) string {
	t.Helper()
	c, err := loader.Load("testdata/hello")
	if err != nil {
		t.Fatal(err)
	}
	c.Metadata.Description = description
	file, err := chartutil.Save(c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func digestFile(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// caFile writes the test server's certificate as a PEM file to trust.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// ociRegistry starts a registry on loopback and returns it with a function that pushes
// an archive to it as charts/hello at its chart version, as `helm push` does.
func ociRegistry(t *testing.T) (*httptest.Server, string, func(file string)) {
	t.Helper()
	srv := httptest.NewTLSServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	c, err := registry.NewClient(registry.ClientOptHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "https://")
	push := func(file string) {
		t.Helper()
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := loader.LoadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Push(data, host+"/charts/hello:"+ch.Metadata.Version); err != nil {
			t.Fatalf("push %s: %v", file, err)
		}
	}
	return srv, "oci://" + host + "/charts/hello", push
}

// chartRepo serves a classic chart repository under /stable and returns it with a
// function that publishes an archive: index.yaml then lists it with its digest and the
// archive URL serves it, or served instead when set (a repository whose index and
// archives disagree).
func chartRepo(t *testing.T) (*httptest.Server, func(file, served string)) {
	t.Helper()
	var mu sync.Mutex
	index, archives := []byte(nil), map[string]string{}
	publish := func(file, served string) {
		t.Helper()
		ch, err := loader.LoadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		idx := repo.NewIndexFile()
		name := filepath.Base(file)
		if err := idx.MustAdd(ch.Metadata, "archives/"+name, "", strings.TrimPrefix(digestFile(t, file), "sha256:")); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "index.yaml")
		if err := idx.WriteFile(f, 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if served == "" {
			served = file
		}
		mu.Lock()
		defer mu.Unlock()
		index, archives[name] = b, served
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stable/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Write(index)
	})
	mux.HandleFunc("GET /stable/archives/{name}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f, ok := archives[r.PathValue("name")]
		mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, f)
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return srv, publish
}

// TestPull is trap 5 of issue 16: charts come from OCI registries and classic
// repositories through the Helm SDK, at a pinned version, checked against a digest
// recorded on the first pull (or pinned), and a re-run works offline from the cache.
func TestPull(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"oci", "repository"} {
		t.Run(kind, func(t *testing.T) {
			var srv *httptest.Server
			var publish func(string)
			var pull helm.Pull
			chart := "hello"
			switch kind {
			case "oci":
				srv, chart, publish = ociRegistry(t)
			default:
				var pub func(string, string)
				srv, pub = chartRepo(t)
				publish = func(f string) { pub(f, "") }
				pull.RepoURL = srv.URL + "/stable"
			}
			good := archive(t, "the chart as published")
			publish(good)
			dir := t.TempDir()
			pull.Version = "1.0.0"
			pull.LockFile = filepath.Join(dir, "charts.lock")
			pull.CacheDir = filepath.Join(dir, "cache")
			pull.CAFile = caFile(t, srv)

			first, err := pull.Run(ctx, chart)
			if err != nil {
				t.Fatal(err)
			}
			want := digestFile(t, good)
			if !first.Downloaded || first.Digest != want || first.Chart.Name() != "hello" || first.Chart.Version() != "1.0.0" {
				t.Errorf("first pull = %+v, want downloaded, digest %s", first, want)
			}
			if got := digestFile(t, first.Path); got != want || !strings.HasPrefix(first.Path, pull.CacheDir) {
				t.Errorf("cached archive %s has digest %s", first.Path, got)
			}
			lock, err := os.ReadFile(pull.LockFile)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(lock), `"digest": "`+want+`"`) || !strings.Contains(string(lock), `"version": "1.0.0"`) {
				t.Errorf("lock file does not record the digest:\n%s", lock)
			}
			again, err := pull.Run(ctx, chart)
			if err != nil || again.Downloaded || again.Digest != want {
				t.Errorf("second pull = %+v, %v; want it from the cache", again, err)
			}

			// The same version republished with other content is refused, against the lock
			// file and against a pinned digest, and nothing of it is cached or recorded.
			tampered := archive(t, "the same version, republished")
			publish(tampered)
			fresh := pull
			fresh.CacheDir = filepath.Join(dir, "cache2")
			_, err = fresh.Run(ctx, chart)
			if err == nil || !strings.Contains(err.Error(), "recorded "+want) || !strings.Contains(err.Error(), "other content under the same version") {
				t.Errorf("republished chart against the lock file: %v", err)
			}
			pinned := fresh
			pinned.LockFile, pinned.Digest = "", want
			_, err = pinned.Run(ctx, chart)
			if err == nil || !strings.Contains(err.Error(), "not the pinned "+want) {
				t.Errorf("republished chart against a pinned digest: %v", err)
			}
			if entries, _ := os.ReadDir(filepath.Join(fresh.CacheDir, "sha256")); len(entries) != 0 {
				t.Errorf("a refused archive was cached: %v", entries)
			}
			if now, _ := os.ReadFile(pull.LockFile); string(now) != string(lock) {
				t.Errorf("a refused pull changed the lock file:\n%s", now)
			}
			pinned.Digest = digestFile(t, tampered)
			if got, err := pinned.Run(ctx, chart); err != nil || got.Digest != pinned.Digest {
				t.Errorf("pull pinned to the new digest: %+v, %v", got, err)
			}

			// Offline: the server is gone; the cache and the lock file are enough.
			srv.Close()
			offline, err := pull.Run(ctx, chart)
			if err != nil || offline.Downloaded || offline.Chart.Name() != "hello" {
				t.Errorf("offline pull = %+v, %v", offline, err)
			}
			// A damaged cache entry is never used.
			if err := os.WriteFile(offline.Path, []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := pull.Run(ctx, chart); err == nil {
				t.Error("a damaged cache entry was used while the server is down")
			}
		})
	}
}

// TestPullRepositoryIndexMismatch pulls from a repository whose archive does not match
// the digest its own index lists.
func TestPullRepositoryIndexMismatch(t *testing.T) {
	srv, publish := chartRepo(t)
	publish(archive(t, "indexed"), archive(t, "served instead"))
	p := helm.Pull{RepoURL: srv.URL + "/stable", Version: "1.0.0", CAFile: caFile(t, srv),
		LockFile: filepath.Join(t.TempDir(), "charts.lock"), CacheDir: t.TempDir()}
	_, err := p.Run(context.Background(), "hello")
	if err == nil || !strings.Contains(err.Error(), "does not match the digest the repository index lists") {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(p.LockFile); err == nil {
		t.Error("a refused archive was recorded in the lock file")
	}
}

// TestPullTLS refuses a registry whose certificate is not trusted.
func TestPullTLS(t *testing.T) {
	_, ref, push := ociRegistry(t)
	push(archive(t, "x"))
	p := helm.Pull{Version: "1.0.0", LockFile: filepath.Join(t.TempDir(), "charts.lock"), CacheDir: t.TempDir()}
	_, err := p.Run(context.Background(), ref)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted registry: err = %v", err)
	}
}

func TestPullLocal(t *testing.T) {
	ctx := context.Background()
	got, err := (&helm.Pull{}).Run(ctx, "testdata/hello")
	if err != nil || got.Chart.Name() != "hello" || got.Digest != "" || got.Downloaded {
		t.Errorf("local directory = %+v, %v", got, err)
	}
	file := archive(t, "local")
	got, err = (&helm.Pull{Digest: digestFile(t, file)}).Run(ctx, file)
	if err != nil || got.Digest != digestFile(t, file) || got.Path != file {
		t.Errorf("local archive with its digest = %+v, %v", got, err)
	}
	if _, err := (&helm.Pull{Digest: "sha256:" + strings.Repeat("0", 64)}).Run(ctx, file); err == nil || !strings.Contains(err.Error(), "not the pinned") {
		t.Errorf("local archive with another digest: %v", err)
	}
	if _, err := (&helm.Pull{Digest: digestFile(t, file)}).Run(ctx, "testdata/hello"); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("digest for a directory: %v", err)
	}
}

func TestPullRefuses(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "charts.lock")
	for _, tc := range []struct {
		name  string
		pull  helm.Pull
		chart string
		want  string
	}{
		{"version range", helm.Pull{Version: "^1.0.0", LockFile: lock}, "oci://127.0.0.1:1/charts/hello", "not an exact version"},
		{"no version", helm.Pull{LockFile: lock}, "oci://127.0.0.1:1/charts/hello", "not an exact version"},
		{"nothing to check against", helm.Pull{Version: "1.0.0"}, "oci://127.0.0.1:1/charts/hello", "give its digest or a lock file"},
		{"bad digest", helm.Pull{Version: "1.0.0", Digest: "md5:abc"}, "oci://127.0.0.1:1/charts/hello", "not sha256:"},
		{"tag in reference", helm.Pull{Version: "1.0.0", LockFile: lock}, "oci://127.0.0.1:1/charts/hello:1.0.0", "give the version separately"},
		{"oci and repository", helm.Pull{RepoURL: "https://example.org/charts", Version: "1.0.0", LockFile: lock}, "oci://127.0.0.1:1/charts/hello", "leave the repository URL empty"},
		{"repository not a URL", helm.Pull{RepoURL: "example.org/charts", Version: "1.0.0", LockFile: lock}, "hello", "not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.pull.Run(context.Background(), tc.chart)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(lock); err == nil {
		t.Error("a refused pull wrote the lock file")
	}
}

// TestPullLockConcurrent pulls several charts at once into one lock file, as the
// provider does for the platform's releases.
func TestPullLockConcurrent(t *testing.T) {
	var files []string
	for i := range 4 {
		c, err := loader.Load("testdata/hello")
		if err != nil {
			t.Fatal(err)
		}
		c.Metadata.Version = fmt.Sprintf("1.0.%d", i)
		f, err := chartutil.Save(c, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	srv, ref, push := ociRegistry(t)
	for _, f := range files {
		push(f)
	}
	dir := t.TempDir()
	ca := caFile(t, srv)
	var wg sync.WaitGroup
	errs := make([]error, len(files))
	for i := range files {
		wg.Go(func() {
			p := helm.Pull{Version: fmt.Sprintf("1.0.%d", i), LockFile: filepath.Join(dir, "charts.lock"), CacheDir: filepath.Join(dir, "cache"), CAFile: ca}
			_, errs[i] = p.Run(context.Background(), ref)
		})
	}
	wg.Wait()
	lock, _ := os.ReadFile(filepath.Join(dir, "charts.lock"))
	for i, err := range errs {
		if err != nil {
			t.Errorf("pull %d: %v", i, err)
		}
		if !strings.Contains(string(lock), fmt.Sprintf(`"version": "1.0.%d"`, i)) {
			t.Errorf("lock file lacks version 1.0.%d:\n%s", i, lock)
		}
	}
}
