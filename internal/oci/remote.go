package oci

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Environment variables with registry credentials; they win over the docker config file.
const (
	EnvUsername = "EDGELINE_REGISTRY_USERNAME"
	EnvPassword = "EDGELINE_REGISTRY_PASSWORD"
)

// Remote talks to OCI registries.
type Remote struct {
	// Insecure allows plain HTTP. Registries on loopback and private addresses speak
	// plain HTTP without it.
	Insecure bool
	// Keychain finds credentials; nil means EnvKeychain, then the docker config file
	// ($DOCKER_CONFIG/config.json or ~/.docker/config.json, credential helpers included).
	Keychain authn.Keychain
	// Transport carries the requests; nil means go-containerregistry's default with
	// ResponseTimeout.
	Transport http.RoundTripper
	// ResponseTimeout bounds the wait for each answer of the registry once a request is
	// sent, so a registry that accepts connections but never answers fails the push
	// instead of hanging it; zero means DefaultResponseTimeout. Ignored with Transport.
	ResponseTimeout time.Duration
}

// DefaultResponseTimeout is how long a registry may take to answer one request.
const DefaultResponseTimeout = 2 * time.Minute

// transport is go-containerregistry's default transport with a response timeout.
func (r Remote) transport() http.RoundTripper {
	if r.Transport != nil {
		return r.Transport
	}
	base, ok := remote.DefaultTransport.(*http.Transport)
	if !ok {
		return remote.DefaultTransport
	}
	t := base.Clone()
	t.ResponseHeaderTimeout = r.ResponseTimeout
	if t.ResponseHeaderTimeout <= 0 {
		t.ResponseHeaderTimeout = DefaultResponseTimeout
	}
	return t
}

// EnvKeychain gives the credentials in $EDGELINE_REGISTRY_USERNAME and
// $EDGELINE_REGISTRY_PASSWORD to every registry, when both are set.
var EnvKeychain authn.Keychain = envKeychain{}

type envKeychain struct{}

func (envKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	u, p := os.Getenv(EnvUsername), os.Getenv(EnvPassword)
	if u == "" || p == "" {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: u, Password: p}, nil
}

func (r Remote) options(ctx context.Context) []remote.Option {
	kc := r.Keychain
	if kc == nil {
		kc = authn.NewMultiKeychain(EnvKeychain, authn.DefaultKeychain)
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithUserAgent("edgeline"),
		remote.WithTransport(r.transport())}
}

func (r Remote) nameOptions() []name.Option {
	o := []name.Option{name.StrictValidation}
	if r.Insecure {
		o = append(o, name.Insecure)
	}
	return o
}

// Push uploads images (tag reference "registry/repository:tag" → index): first every
// blob and manifest by digest, then, once all are there, each tag. A failure before the
// tags leaves every requested tag where it was. It returns the references by digest.
func (r Remote) Push(ctx context.Context, images map[string]v1.ImageIndex) (map[string]name.Digest, error) {
	refs := slices.Sorted(maps.Keys(images))
	tags := make([]name.Tag, len(refs))
	digests := map[string]name.Digest{}
	for i, ref := range refs {
		t, err := name.NewTag(ref, r.nameOptions()...)
		if err != nil {
			return nil, fmt.Errorf("%q is not a tagged image reference: give REGISTRY/REPOSITORY:TAG, like registry.example.org/team/app:v1", ref)
		}
		d, err := images[ref].Digest()
		if err != nil {
			return nil, err
		}
		tags[i] = t
		digests[ref] = t.Context().Digest(d.String())
	}
	for _, ref := range refs {
		if err := remote.WriteIndex(digests[ref], images[ref], r.options(ctx)...); err != nil {
			return nil, r.explain(err, "push", digests[ref].Context())
		}
	}
	for i, ref := range refs {
		if err := remote.Tag(tags[i], images[ref], r.options(ctx)...); err != nil {
			return nil, r.explain(err, "tag", tags[i].Context())
		}
	}
	return digests, nil
}

// Index fetches the image index ref names ("registry/repository:tag" or "…@sha256:…").
func (r Remote) Index(ctx context.Context, ref string) (v1.ImageIndex, error) {
	n, err := name.ParseReference(ref, r.nameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("%q is not an image reference like registry.example.org/team/app:v1: %w", ref, err)
	}
	idx, err := remote.Index(n, r.options(ctx)...)
	if err != nil {
		return nil, r.explain(err, "pull", n.Context())
	}
	return idx, nil
}

// Pull fetches the linux image for a from ref ("registry/repository:tag" or
// "…@sha256:…"), an index or a single image. Layers are fetched when read.
func (r Remote) Pull(ctx context.Context, ref string, a Arch) (v1.Image, error) {
	n, err := name.ParseReference(ref, r.nameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("%q is not an image reference like registry.example.org/team/app:v1: %w", ref, err)
	}
	desc, err := remote.Get(n, r.options(ctx)...)
	if err != nil {
		return nil, r.explain(err, "pull", n.Context())
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, r.explain(err, "pull", n.Context())
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, r.explain(err, "pull", n.Context())
		}
		want := a.Platform()
		for _, d := range im.Manifests {
			if d.Platform != nil && d.Platform.OS == want.OS && d.Platform.Architecture == want.Architecture {
				if img, err = idx.Image(d.Digest); err != nil {
					return nil, r.explain(err, "pull", n.Context())
				}
				break
			}
		}
	} else if img, err = desc.Image(); err != nil {
		return nil, r.explain(err, "pull", n.Context())
	}
	if img == nil {
		return nil, fmt.Errorf("%s has no linux/%s image: build and push it for %s", ref, a, a)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, r.explain(err, "pull", n.Context())
	}
	if cf.Architecture != string(a) || cf.OS != "linux" {
		return nil, fmt.Errorf("%s is a %s/%s image, not linux/%s: build and push it for %s", ref, cf.OS, cf.Architecture, a, a)
	}
	return img, nil
}

// explain turns a registry error into one sentence that names the fix.
func (r Remote) explain(err error, op string, repo name.Repository) error {
	host := repo.RegistryStr()
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("registry %s refused the credentials to %s %s (HTTP %d): log in with credentials that may %s there, in $%s and $%s or in the docker config file ($DOCKER_CONFIG/config.json, ~/.docker/config.json)",
				host, op, repo.RepositoryStr(), te.StatusCode, op, EnvUsername, EnvPassword)
		case http.StatusNotFound:
			return fmt.Errorf("registry %s has no %s: check the reference, or push the images first (%w)", host, repo.RepositoryStr(), err)
		}
		return fmt.Errorf("%s %s: registry %s answered HTTP %d: %w", op, repo, host, te.StatusCode, err)
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) || errors.As(err, &opErr) {
		return fmt.Errorf("cannot reach registry %s to %s %s (%v): check the registry address and that it is up and reachable from here",
			host, op, repo.RepositoryStr(), rootCause(err))
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Errorf("registry %s did not answer in time to %s %s (%v): check that the address is the registry's and that it is up and not overloaded",
			host, op, repo.RepositoryStr(), rootCause(err))
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("registry %s: TLS failed (%v): give it a certificate this machine trusts, or use --insecure for a plain-HTTP registry on a network you trust",
			host, rootCause(err))
	}
	return fmt.Errorf("%s %s: %w", op, repo, err)
}

// rootCause is the innermost error of a chain, for a short message.
func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}
