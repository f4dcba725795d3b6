package helm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/kube"
	ri "helm.sh/helm/v4/pkg/release"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// DefaultTimeout bounds an operation that waits for resources when the
// caller sets no Timeout.
const DefaultTimeout = 5 * time.Minute

// Configuration connects operations to one cluster and one namespace.
// Releases are recorded as Secrets in that namespace, as the helm CLI does.
type Configuration struct {
	namespace string
	cfg       *action.Configuration
}

// NewConfiguration returns a Configuration for the cluster described by the
// kubeconfig file contents (its current context) and the namespace releases
// live in. A nil logger discards Helm's log.
func NewConfiguration(kubeconfig []byte, namespace string, logger *slog.Logger) (*Configuration, error) {
	if namespace == "" {
		return nil, errors.New("helm: no namespace given: name the namespace the release lives in")
	}
	cc, err := clientcmd.NewClientConfigFromBytes(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("helm: read kubeconfig: %w", err)
	}
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("helm: read kubeconfig: %w", err)
	}
	h := slog.DiscardHandler
	if logger != nil {
		h = logger.Handler()
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(h))
	getter := &clientGetter{raw: cc, rest: rc, namespace: namespace}
	if err := cfg.Init(getter, namespace, "secret"); err != nil {
		return nil, fmt.Errorf("helm: configure: %w", err)
	}
	cfg.SetHookOutputFunc(discard)
	return &Configuration{namespace: namespace, cfg: cfg}, nil
}

// Namespace is the namespace releases of this Configuration live in.
func (c *Configuration) Namespace() string { return c.namespace }

// clientGetter hands Helm's kube client a fixed REST config, so that callers
// can pass kubeconfig contents (e.g. from a Pulumi output) instead of a file.
type clientGetter struct {
	raw       clientcmd.ClientConfig
	rest      *rest.Config
	namespace string
}

func (g *clientGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.rest), nil }

func (g *clientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(rest.CopyConfig(g.rest))
	if err != nil {
		return nil, err
	}
	return memory.NewMemCacheClient(dc), nil
}

func (g *clientGetter) ToRESTMapper() (meta.RESTMapper, error) {
	dc, err := g.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	return restmapper.NewDeferredDiscoveryRESTMapper(dc), nil
}

func (g *clientGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return namespaced{cc: g.raw, namespace: g.namespace}
}

// namespaced is the caller's kubeconfig with the release's namespace.
type namespaced struct {
	cc        clientcmd.ClientConfig
	namespace string
}

func (n namespaced) RawConfig() (clientcmdapi.Config, error) { return n.cc.RawConfig() }
func (n namespaced) ClientConfig() (*rest.Config, error)     { return n.cc.ClientConfig() }
func (n namespaced) Namespace() (string, bool, error)        { return n.namespace, true, nil }
func (n namespaced) ConfigAccess() clientcmd.ConfigAccess    { return n.cc.ConfigAccess() }

// Install installs a chart as a release, or upgrades the release when one of
// that name exists (`helm upgrade --install`). When the deployed revision
// already has the same chart version, values and rendered objects, Run
// records nothing and returns that revision with Changed false.
type Install struct {
	cfg *Configuration

	// Name is the release name (required).
	Name string
	// CreateNamespace creates the Configuration's namespace if it is missing.
	CreateNamespace bool
	// Wait waits until the release's workloads are ready (Deployments
	// available, Pods ready, ...) before Run returns.
	Wait bool
	// Timeout bounds the wait and each hook; DefaultTimeout if zero.
	Timeout time.Duration
	// MaxHistory caps the revisions kept on upgrade; 0 keeps all.
	MaxHistory int
	// Description is recorded with the revision.
	Description string
}

// NewInstall returns an Install operation on cfg.
func NewInstall(cfg *Configuration) *Install { return &Install{cfg: cfg} }

// Run installs or upgrades the release Name from ch with values.
func (i *Install) Run(ctx context.Context, ch *Chart, values map[string]any) (*Release, error) {
	if i.Name == "" {
		return nil, errors.New("helm install: no release name given")
	}
	replace := false
	last, err := lastRelease(i.cfg, i.Name)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("helm install %s: %w", i.Name, err)
	case last.(*release.Release).Info.Status == rcommon.StatusUninstalled:
		// Uninstalled with KeepHistory: install anew over the old records.
		replace = true
	default:
		up := NewUpgrade(i.cfg)
		up.Wait, up.Timeout, up.MaxHistory, up.Description = i.Wait, i.Timeout, i.MaxHistory, i.Description
		return up.Run(ctx, i.Name, ch, values)
	}

	in := action.NewInstall(i.cfg.cfg)
	in.Replace = replace
	in.ReleaseName = i.Name
	in.Namespace = i.cfg.namespace
	in.CreateNamespace = i.CreateNamespace
	in.Timeout = timeout(i.Timeout)
	in.WaitStrategy = waitStrategy(i.Wait)
	in.Description = i.Description
	in.ServerSideApply = true
	r, err := in.RunWithContext(ctx, ch.c, copyValues(values))
	if err != nil {
		return nil, fmt.Errorf("helm install %s: %w", i.Name, err)
	}
	rel, err := newRelease(r)
	if err != nil {
		return nil, err
	}
	rel.Changed = true
	return rel, nil
}

// Upgrade upgrades an existing release. When the deployed revision already
// has the same chart version, values and rendered objects, Run records
// nothing and returns that revision with Changed false.
type Upgrade struct {
	cfg *Configuration

	// Wait waits until the release's workloads are ready.
	Wait bool
	// Timeout bounds the wait and each hook; DefaultTimeout if zero.
	Timeout time.Duration
	// MaxHistory caps the revisions kept; 0 keeps all.
	MaxHistory int
	// Description is recorded with the revision.
	Description string
}

// NewUpgrade returns an Upgrade operation on cfg.
func NewUpgrade(cfg *Configuration) *Upgrade { return &Upgrade{cfg: cfg} }

// Run upgrades release name to ch with values (which replace, not merge
// with, the values of the previous revision).
func (u *Upgrade) Run(ctx context.Context, name string, ch *Chart, values map[string]any) (*Release, error) {
	vals := copyValues(values)
	current, err := u.cfg.cfg.Releases.Deployed(name)
	if err == nil {
		same, err := u.unchanged(ctx, name, ch, vals, current)
		if err != nil {
			return nil, fmt.Errorf("helm upgrade %s: %w", name, err)
		}
		if same {
			return newRelease(current)
		}
	} else if !errors.Is(err, driver.ErrNoDeployedReleases) {
		return nil, fmt.Errorf("helm upgrade %s: %w", name, err)
	}

	up := u.action()
	r, err := up.RunWithContext(ctx, name, ch.c, vals)
	if err != nil {
		return nil, fmt.Errorf("helm upgrade %s: %w", name, err)
	}
	rel, err := newRelease(r)
	if err != nil {
		return nil, err
	}
	rel.Changed = true
	return rel, nil
}

func (u *Upgrade) action() *action.Upgrade {
	up := action.NewUpgrade(u.cfg.cfg)
	up.Namespace = u.cfg.namespace
	up.Timeout = timeout(u.Timeout)
	up.WaitStrategy = waitStrategy(u.Wait)
	up.MaxHistory = u.MaxHistory
	up.Description = u.Description
	up.ResetValues = true
	return up
}

// unchanged renders the upgrade against the cluster without applying it
// (templates' lookup calls see the live objects, so kept secrets render the
// same) and compares it with the deployed revision.
func (u *Upgrade) unchanged(ctx context.Context, name string, ch *Chart, vals map[string]any, current ri.Releaser) (bool, error) {
	cur, ok := current.(*release.Release)
	if !ok {
		return false, fmt.Errorf("unsupported release type %T", current)
	}
	if cur.Chart == nil || cur.Chart.Metadata == nil ||
		cur.Chart.Metadata.Version != ch.c.Metadata.Version || cur.Chart.Metadata.Name != ch.c.Metadata.Name {
		return false, nil
	}
	if !sameValues(cur.Config, vals) {
		return false, nil
	}
	dry := u.action()
	dry.DryRunStrategy = action.DryRunServer
	dry.WaitStrategy = kube.HookOnlyStrategy
	r, err := dry.RunWithContext(ctx, name, ch.c, copyValues(vals))
	if err != nil {
		return false, fmt.Errorf("dry run: %w", err)
	}
	next, ok := r.(*release.Release)
	if !ok {
		return false, fmt.Errorf("unsupported release type %T", r)
	}
	return next.Manifest == cur.Manifest && sameHooks(next.Hooks, cur.Hooks), nil
}

// Uninstall removes a release and the objects it created.
type Uninstall struct {
	cfg *Configuration

	// Wait waits until the release's objects are gone.
	Wait bool
	// Timeout bounds the wait; DefaultTimeout if zero.
	Timeout time.Duration
	// KeepHistory keeps the release records (status "uninstalled").
	KeepHistory bool
	// IgnoreNotFound makes uninstalling a missing release succeed.
	IgnoreNotFound bool
}

// NewUninstall returns an Uninstall operation on cfg.
func NewUninstall(cfg *Configuration) *Uninstall { return &Uninstall{cfg: cfg} }

// Run uninstalls release name.
func (u *Uninstall) Run(ctx context.Context, name string) error {
	un := action.NewUninstall(u.cfg.cfg)
	un.Timeout = timeout(u.Timeout)
	un.WaitStrategy = waitStrategy(u.Wait)
	un.WaitOptions = []kube.WaitOption{kube.WithWaitContext(ctx)}
	un.KeepHistory = u.KeepHistory
	un.IgnoreNotFound = u.IgnoreNotFound
	if _, err := un.Run(name); err != nil {
		return fmt.Errorf("helm uninstall %s: %w", name, err)
	}
	return nil
}

// Status reports the latest revision of a release.
type Status struct {
	cfg *Configuration
}

// NewStatus returns a Status operation on cfg.
func NewStatus(cfg *Configuration) *Status { return &Status{cfg: cfg} }

// Run returns the latest revision of release name. The error wraps
// ErrNotFound when there is no such release.
func (s *Status) Run(name string) (*Release, error) {
	r, err := lastRelease(s.cfg, name)
	if err != nil {
		return nil, fmt.Errorf("helm status %s: %w", name, err)
	}
	return newRelease(r)
}

// History lists the recorded revisions of a release.
type History struct {
	cfg *Configuration
}

// NewHistory returns a History operation on cfg.
func NewHistory(cfg *Configuration) *History { return &History{cfg: cfg} }

// Run returns the revisions of release name, oldest first. The error wraps
// ErrNotFound when there is no such release.
func (h *History) Run(name string) ([]*Release, error) {
	rs, err := action.NewHistory(h.cfg.cfg).Run(name)
	if err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) {
			err = ErrNotFound
		}
		return nil, fmt.Errorf("helm history %s: %w", name, err)
	}
	out := make([]*Release, 0, len(rs))
	for _, r := range rs {
		rel, err := newRelease(r)
		if err != nil {
			return nil, err
		}
		out = append(out, rel)
	}
	sortByRevision(out)
	return out, nil
}

// lastRelease returns the newest recorded revision of name, whatever its status.
func lastRelease(c *Configuration, name string) (ri.Releaser, error) {
	r, err := c.cfg.Releases.Last(name)
	if err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return r, nil
}

func sortByRevision(rs []*Release) {
	slices.SortFunc(rs, func(a, b *Release) int { return a.Revision - b.Revision })
}

func timeout(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

func waitStrategy(wait bool) kube.WaitStrategy {
	if wait {
		return kube.StatusWatcherStrategy
	}
	return kube.HookOnlyStrategy
}

func parseKubeVersion(v string) (*common.KubeVersion, error) {
	kv, err := common.ParseKubeVersion(v)
	if err != nil {
		return nil, fmt.Errorf("kube version %q: %w", v, err)
	}
	return kv, nil
}
