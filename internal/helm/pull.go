package helm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
)

// DefaultPullTimeout bounds each download of a Pull when the caller sets no Timeout.
const DefaultPullTimeout = 2 * time.Minute

// Pull fetches a chart archive, as `helm pull` does, from an OCI registry
// ("oci://registry/path/chart") or a classic chart repository (RepoURL and the chart's
// name), at one pinned version. The archive is checked against a digest, the sha256
// of the .tgz: Digest when given, else the one LockFile recorded when the chart was
// first pulled (Pull records it then). Verified archives are kept in CacheDir by
// digest, so a chart whose digest is known is read from there without any network: a
// re-run works offline. A local chart directory or .tgz is loaded as it is.
//
// The digest of an archive is what sha256sum prints for it; a classic repository lists
// it as the chart version's digest in index.yaml, and an OCI registry as the digest of
// the chart layer.
type Pull struct {
	// RepoURL is the classic chart repository (https://...) that holds the chart named
	// in Run; empty for oci:// references and local paths.
	RepoURL string
	// Version is the exact chart version (required for remote charts): a pin, never a
	// range.
	Version string
	// Digest is the expected "sha256:<hex>" of the chart archive; empty means the one
	// LockFile records.
	Digest string
	// LockFile records the digest of each chart pulled without a Digest on its first
	// pull, and is checked on every later one; empty means Digest is required for
	// remote charts.
	LockFile string
	// CacheDir keeps verified archives by digest; empty means DefaultCacheDir().
	CacheDir string
	// CAFile holds extra PEM certificates trusted for the registry or repository, on
	// top of the system's.
	CAFile string
	// Username and Password log in to the registry or repository; empty means Helm's
	// registry credentials (helm registry login) for OCI and none for repositories.
	Username, Password string
	// Timeout bounds each download; DefaultPullTimeout if zero.
	Timeout time.Duration
}

// Pulled is a chart Pull fetched or found.
type Pulled struct {
	// Chart is the loaded chart.
	Chart *Chart
	// Path is the archive in the cache, or the local path given.
	Path string
	// Digest is the archive's "sha256:<hex>"; empty for a local chart directory.
	Digest string
	// Downloaded is false when the archive came from the cache or a local path.
	Downloaded bool
}

// DefaultCacheDir is where pulled charts are kept when Pull.CacheDir is empty: the
// user's cache directory ($XDG_CACHE_HOME or ~/.cache on Linux), edgeline/charts.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("helm pull: no cache directory: %w", err)
	}
	return filepath.Join(d, "edgeline", "charts"), nil
}

var (
	exactVersionRe = regexp.MustCompile(`^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	digestRe       = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	chartNameRe    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$`)
)

// IsRemote reports whether chart names a chart Pull downloads (an oci:// reference, or
// a name in a repository) rather than a local path.
func IsRemote(chart, repoURL string) bool {
	return registry.IsOCI(chart) || repoURL != ""
}

// Run fetches chart: an "oci://..." reference, a chart name in RepoURL, or a local
// directory or .tgz.
func (p *Pull) Run(ctx context.Context, chart string) (*Pulled, error) {
	if !IsRemote(chart, p.RepoURL) {
		return p.local(chart)
	}
	src, err := p.source(chart)
	if err != nil {
		return nil, err
	}
	cache := p.CacheDir
	if cache == "" {
		if cache, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	want := p.Digest
	var lock *lockFile
	if p.LockFile != "" {
		lock = &lockFile{path: p.LockFile}
		if want == "" {
			if want, err = lock.digest(src); err != nil {
				return nil, err
			}
		}
	}
	if want != "" {
		if c, path, err := fromCache(cache, want, src); err != nil {
			return nil, err
		} else if c != nil {
			return &Pulled{Chart: c, Path: path, Digest: want}, nil
		}
	}

	data, err := p.download(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("helm pull %s: %w", src, err)
	}
	got := digestOf(data)
	switch {
	case want != "" && got != want && p.Digest != "":
		return nil, fmt.Errorf("helm pull %s: the archive's digest is %s, not the pinned %s: refusing it; if the new archive is the one you want, pin its digest", src, got, want)
	case want != "" && got != want:
		return nil, fmt.Errorf("helm pull %s: the archive's digest is %s, but %s recorded %s when it was first pulled: the source now serves other content under the same version; refusing it. If you trust the change, remove the entry from %s", src, got, p.LockFile, want, p.LockFile)
	}
	c, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("helm pull %s: not a chart archive: %w", src, err)
	}
	if c.Metadata.Name != src.Chart || strings.TrimPrefix(c.Metadata.Version, "v") != strings.TrimPrefix(src.Version, "v") {
		return nil, fmt.Errorf("helm pull %s: the archive holds chart %s %s", src, c.Metadata.Name, c.Metadata.Version)
	}
	file, err := store(cache, got, data)
	if err != nil {
		return nil, err
	}
	if want == "" && lock != nil {
		if err := lock.record(src, got); err != nil {
			return nil, err
		}
	}
	return &Pulled{Chart: &Chart{c: c}, Path: file, Digest: got, Downloaded: true}, nil
}

// local loads a chart from disk, checking a .tgz against Digest when one is given.
func (p *Pull) local(chart string) (*Pulled, error) {
	ch, err := Load(chart)
	if err != nil {
		return nil, err
	}
	out := &Pulled{Chart: ch, Path: chart}
	if fi, err := os.Stat(chart); err == nil && !fi.IsDir() {
		data, err := os.ReadFile(chart)
		if err != nil {
			return nil, fmt.Errorf("load chart %s: %w", chart, err)
		}
		out.Digest = digestOf(data)
		if p.Digest != "" && p.Digest != out.Digest {
			return nil, fmt.Errorf("chart %s has digest %s, not the pinned %s", chart, out.Digest, p.Digest)
		}
	} else if p.Digest != "" {
		return nil, fmt.Errorf("chart %s is a directory: a digest pins a chart archive (.tgz) only", chart)
	}
	return out, nil
}

// source is one remote chart at one version.
type source struct {
	// Repository is the oci://registry/path or the classic repository URL.
	Repository string `json:"repository"`
	Chart      string `json:"chart"`
	Version    string `json:"version"`
}

func (s source) oci() bool { return registry.IsOCI(s.Repository) }

func (s source) String() string {
	if s.oci() {
		return s.Repository + "/" + s.Chart + ":" + s.Version
	}
	return s.Chart + " " + s.Version + " from " + s.Repository
}

// source validates the pull of chart and says what it fetches.
func (p *Pull) source(chart string) (source, error) {
	var s source
	switch {
	case registry.IsOCI(chart):
		if p.RepoURL != "" {
			return s, fmt.Errorf("helm pull %s: an oci:// reference names its registry itself; leave the repository URL empty", chart)
		}
		ref := strings.TrimPrefix(chart, registry.OCIScheme+"://")
		i := strings.LastIndexByte(ref, '/')
		if i <= 0 || strings.ContainsAny(ref, "@ ") || strings.Contains(ref[i:], ":") {
			return s, fmt.Errorf("helm pull %s: not an OCI chart reference like oci://registry.example.org/charts/NAME (give the version separately)", chart)
		}
		s = source{Repository: registry.OCIScheme + "://" + ref[:i], Chart: ref[i+1:], Version: p.Version}
	default:
		u, err := url.Parse(p.RepoURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return s, fmt.Errorf("helm pull %s: repository %q is not an http(s) URL", chart, p.RepoURL)
		}
		s = source{Repository: strings.TrimSuffix(p.RepoURL, "/"), Chart: chart, Version: p.Version}
	}
	if !chartNameRe.MatchString(s.Chart) {
		return s, fmt.Errorf("helm pull: %q is not a chart name", s.Chart)
	}
	if !exactVersionRe.MatchString(p.Version) {
		return s, fmt.Errorf("helm pull %s: version %q is not an exact version like 1.2.3: a remote chart is pulled at one pinned version", chart, p.Version)
	}
	if p.Digest != "" && !digestRe.MatchString(p.Digest) {
		return s, fmt.Errorf("helm pull %s: digest %q is not sha256:<64 hex digits> (sha256sum of the chart archive)", s, p.Digest)
	}
	if p.Digest == "" && p.LockFile == "" {
		return s, fmt.Errorf("helm pull %s: nothing to check the archive against: give its digest or a lock file to record it in", s)
	}
	return s, nil
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// cachePath is where the archive with digest lives in cache.
func cachePath(cache, digest string) string {
	return filepath.Join(cache, "sha256", strings.TrimPrefix(digest, "sha256:")+".tgz")
}

// fromCache returns the chart with digest from cache, or nil when it is not there. An
// entry whose content no longer matches its digest is removed.
func fromCache(cache, digest string, src source) (*Chart, string, error) {
	file := cachePath(cache, digest)
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("helm pull %s: read the cache: %w", src, err)
	}
	if digestOf(data) != digest {
		os.Remove(file)
		return nil, "", nil
	}
	c, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		os.Remove(file)
		return nil, "", nil
	}
	return &Chart{c: c}, file, nil
}

// store writes a verified archive into the cache atomically.
func store(cache, digest string, data []byte) (string, error) {
	file := cachePath(cache, digest)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return "", fmt.Errorf("helm pull: cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".pull-*")
	if err != nil {
		return "", fmt.Errorf("helm pull: cache: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("helm pull: cache: %w", err)
	}
	return file, nil
}

// transport trusts the system's roots and CAFile's certificates.
func (p *Pull) transport() (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if p.CAFile == "" {
		return t, nil
	}
	pem, err := os.ReadFile(p.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", p.CAFile)
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

func (p *Pull) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return DefaultPullTimeout
}

// download fetches src's archive through the Helm SDK's registry client or HTTP getter.
func (p *Pull) download(ctx context.Context, src source) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := p.transport()
	if err != nil {
		return nil, err
	}
	// Helm's getters and registry client take no context: a cancelled context
	// closes the transport's connections instead.
	stop := context.AfterFunc(ctx, t.CloseIdleConnections)
	defer stop()
	if src.oci() {
		return p.pullOCI(src, t)
	}
	return p.pullRepo(src, t)
}

func (p *Pull) pullOCI(src source, t *http.Transport) ([]byte, error) {
	opts := []registry.ClientOption{registry.ClientOptHTTPClient(&http.Client{Transport: t, Timeout: p.timeout()})}
	if p.Username != "" || p.Password != "" {
		opts = append(opts, registry.ClientOptBasicAuth(p.Username, p.Password))
	}
	c, err := registry.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	ref := strings.TrimPrefix(src.Repository, registry.OCIScheme+"://") + "/" + src.Chart + ":" + strings.ReplaceAll(src.Version, "+", "_")
	res, err := c.Pull(ref)
	if err != nil {
		return nil, err
	}
	if res.Chart == nil || len(res.Chart.Data) == 0 {
		return nil, errors.New("the registry returned no chart layer")
	}
	if res.Chart.Digest != digestOf(res.Chart.Data) {
		return nil, fmt.Errorf("the chart layer does not match its digest %s", res.Chart.Digest)
	}
	return res.Chart.Data, nil
}

func (p *Pull) pullRepo(src source, t *http.Transport) ([]byte, error) {
	g, err := getter.NewHTTPGetter(getter.WithTransport(t), getter.WithTimeout(p.timeout()),
		getter.WithURL(src.Repository), getter.WithBasicAuth(p.Username, p.Password))
	if err != nil {
		return nil, err
	}
	buf, err := g.Get(src.Repository + "/index.yaml")
	if err != nil {
		return nil, fmt.Errorf("read the repository index: %w", err)
	}
	// The SDK parses index files from disk only.
	dir, err := os.MkdirTemp("", "edgeline-index-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	indexFile := filepath.Join(dir, "index.yaml")
	if err := os.WriteFile(indexFile, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	idx, err := repo.LoadIndexFile(indexFile)
	if err != nil {
		return nil, fmt.Errorf("read the repository index: %w", err)
	}
	cv, err := idx.Get(src.Chart, src.Version)
	if err != nil || strings.TrimPrefix(cv.Version, "v") != strings.TrimPrefix(src.Version, "v") {
		return nil, fmt.Errorf("the repository has no version %s of chart %s", src.Version, src.Chart)
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("the repository lists no download URL for %s %s", src.Chart, src.Version)
	}
	u, err := repo.ResolveReferenceURL(src.Repository+"/", cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("chart URL %q: %w", cv.URLs[0], err)
	}
	buf, err = g.Get(u)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", path.Base(u), err)
	}
	data := buf.Bytes()
	if cv.Digest != "" && "sha256:"+cv.Digest != digestOf(data) {
		return nil, fmt.Errorf("%s does not match the digest the repository index lists for it (sha256:%s)", u, cv.Digest)
	}
	return data, nil
}
