package oci

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/edgeline/edgeline/internal/oci/ocitest"
)

// twoImages builds a static "api" for both architectures and a "web" for amd64, with
// version in their annotations (so each version has its own digests).
func twoImages(t testing.TB, version string) map[string]v1.ImageIndex {
	t.Helper()
	bins := map[Arch]string{AMD64: probe(t, AMD64, false), ARM64: probe(t, ARM64, false)}
	out, err := (&Build{Version: version, Created: created}).Run(context.Background(),
		Image{Name: "api", Binaries: bins}, Image{Name: "web", Binaries: map[Arch]string{AMD64: bins[AMD64]}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func refs(host, tag string, images map[string]v1.ImageIndex) map[string]v1.ImageIndex {
	m := map[string]v1.ImageIndex{}
	for n, idx := range images {
		m[host+"/edgeline/"+n+":"+tag] = idx
	}
	return m
}

// tagDigest is the digest a tag points at, or "" when the tag does not exist.
func tagDigest(t testing.TB, ref string, opts ...remote.Option) string {
	t.Helper()
	n, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(n, opts...)
	if err != nil {
		if strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), "MANIFEST_UNKNOWN") {
			return ""
		}
		t.Fatal(err)
	}
	return d.Digest.String()
}

func TestPushPull(t *testing.T) {
	host := ocitest.Registry(t, nil)
	images := twoImages(t, "1")
	pushed, err := Remote{}.Push(context.Background(), refs(host, "v1", images))
	if err != nil {
		t.Fatal(err)
	}
	for ref, d := range pushed {
		want, _ := refs(host, "v1", images)[ref].Digest()
		if d.DigestStr() != want.String() || tagDigest(t, ref) != want.String() {
			t.Errorf("%s: pushed %s, tag points at %s, want %s", ref, d, tagDigest(t, ref), want)
		}
	}
	api := pushed[host+"/edgeline/api:v1"].String()
	for _, a := range Arches {
		img, err := Remote{}.Pull(context.Background(), api, a)
		if err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(t.TempDir(), "root")
		if err := Unpack(img, root); err != nil {
			t.Fatal(err)
		}
		if got, want := sha(t, filepath.Join(root, "app")), sha(t, probe(t, a, false)); got != want {
			t.Errorf("%s: /app pulled by digest is not the binary pushed", a)
		}
		fi, err := os.Stat(filepath.Join(root, "tmp"))
		if err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
			t.Errorf("%s: /tmp unpacked as %v (%v), want drwxrwxrwt", a, fi.Mode(), err)
		}
	}
	_, err = Remote{}.Pull(context.Background(), host+"/edgeline/web:v1", ARM64)
	if err == nil || !strings.Contains(err.Error(), "has no linux/arm64 image: build and push it for arm64") {
		t.Errorf("pulling a missing architecture: %v", err)
	}
}

// TestPushTagsLast makes the registry refuse one manifest of a push: no tag of that
// push may move, so a deployment of the tag never mixes versions or pulls half an image.
func TestPushTagsLast(t *testing.T) {
	var refuse string // path fragment of the manifest PUT to refuse
	host := ocitest.Registry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if refuse != "" && r.Method == http.MethodPut && strings.Contains(r.URL.Path, refuse) {
				http.Error(w, `{"errors":[{"code":"DENIED","message":"quota exceeded"}]}`, http.StatusBadRequest)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	v1, v2 := twoImages(t, "1"), twoImages(t, "2")
	if _, err := (Remote{}).Push(context.Background(), refs(host, "stable", v1)); err != nil {
		t.Fatal(err)
	}
	webV2, _ := v2["web"].Digest()
	refuse = "/edgeline/web/manifests/" + webV2.String()
	_, err := Remote{}.Push(context.Background(), refs(host, "stable", v2))
	if err == nil {
		t.Fatal("the refused push succeeded")
	}
	for n, idx := range v1 {
		want, _ := idx.Digest()
		if got := tagDigest(t, host+"/edgeline/"+n+":stable"); got != want.String() {
			t.Errorf("%s:stable moved to %s during a failed push, want it still at %s", n, got, want)
		}
	}
	if _, err := (Remote{}).Push(context.Background(), refs(host, "fresh", v2)); err == nil {
		t.Fatal("the refused push succeeded")
	}
	for n := range v2 {
		if got := tagDigest(t, host+"/edgeline/"+n+":fresh"); got != "" {
			t.Errorf("%s:fresh exists (%s) after a failed push", n, got)
		}
	}
}

// silentServer accepts connections on loopback and never answers, like a registry
// stuck behind a dead proxy, until the test ends. It returns its host:port.
func silentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// dockerConfig writes a docker config file (as docker login writes it) with the
// credentials for host and returns its directory, for $DOCKER_CONFIG.
func dockerConfig(t testing.TB, host, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

func TestRegistryErrors(t *testing.T) {
	images := twoImages(t, "1")
	auth := ocitest.Registry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "s3cret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	closed := fmt.Sprintf("127.0.0.1:%d", ocitest.FreePort(t))
	silent := silentServer(t)
	tlsSrv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	// A registry name that is not loopback, so the client speaks HTTPS, dialled to the
	// test server.
	toTLS := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, strings.TrimPrefix(tlsSrv.URL, "https://"))
	}}

	for _, tt := range []struct {
		name   string
		remote Remote
		env    map[string]string
		refs   map[string]v1.ImageIndex
		want   string // "" for success
	}{
		{"refused credentials", Remote{Keychain: staticKeychain{"ci", "wrong"}}, nil, refs(auth, "v1", images),
			"registry " + auth + " refused the credentials to push edgeline/api (HTTP 401): log in with credentials that may push there, in $EDGELINE_REGISTRY_USERNAME and $EDGELINE_REGISTRY_PASSWORD or in the docker config file"},
		{"no credentials", Remote{Keychain: authn.NewMultiKeychain()}, nil, refs(auth, "v1", images), "refused the credentials"},
		{"credentials from the environment", Remote{}, map[string]string{EnvUsername: "ci", EnvPassword: "s3cret", "DOCKER_CONFIG": t.TempDir()},
			refs(auth, "v1", images), ""},
		{"credentials from the docker config file", Remote{}, map[string]string{EnvUsername: "", EnvPassword: "", "DOCKER_CONFIG": dockerConfig(t, auth, "ci", "s3cret")},
			refs(auth, "v2", images), ""},
		{"unreachable", Remote{}, nil, refs(closed, "v1", images),
			"cannot reach registry " + closed + " to push edgeline/api ("},
		{"registry that accepts connections but never answers", Remote{ResponseTimeout: time.Second}, nil, refs(silent, "v1", images),
			"registry " + silent + " did not answer in time to push edgeline/api ("},
		{"untrusted certificate", Remote{Transport: toTLS}, nil, refs("registry.test", "v1", images),
			"registry registry.test: TLS failed ("},
		{"no tag", Remote{}, nil, map[string]v1.ImageIndex{auth + "/edgeline/api": images["api"]}, "is not a tagged image reference: give REGISTRY/REPOSITORY:TAG"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := tt.remote.Push(context.Background(), tt.refs)
			t.Log(err)
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			case tt.want != "" && strings.Contains(err.Error(), "\n"):
				t.Errorf("not one sentence: %q", err)
			}
			// A refused push leaves nothing under the tags (the registry that refused
			// is asked with the right credentials).
			for ref := range tt.refs {
				if tt.want != "" && strings.HasPrefix(ref, auth+"/") {
					if d := tagDigest(t, ref, remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"})); d != "" {
						t.Errorf("%s points at %s after a refused push", ref, d)
					}
				}
			}
		})
	}
}
