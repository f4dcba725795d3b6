// Package helm installs, upgrades, renders and removes Helm charts through the
// Helm Go SDK (helm.sh/helm/v4). It is the project's one door to Helm: the
// provisioning code and the chart tests both go through it.
//
// Operations follow Helm's pkg/action: build an options struct with a
// constructor that takes a [Configuration], set its fields, call Run. Render,
// Lint and Pull need no cluster and are used as plain structs.
//
//	p := helm.Pull{Version: "v1.18.2", LockFile: "charts.lock"}
//	got, err := p.Run(ctx, "oci://registry.example.org/charts/cert-manager")
//
//	cfg, err := helm.NewConfiguration(kubeconfig, "facelogin", nil)
//	ch, err := helm.Load("charts/facelogin")
//	in := helm.NewInstall(cfg)
//	in.Name = "facelogin"
//	rel, err := in.Run(ctx, ch, values) // rel.Changed is false when nothing changed
package helm

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	ri "helm.sh/helm/v4/pkg/release"
	release "helm.sh/helm/v4/pkg/release/v1"
)

// Chart is a chart loaded from disk, ready to render or install.
type Chart struct {
	c *chart.Chart
}

// Load reads the chart in dir (an unpacked chart directory or a .tgz archive).
func Load(dir string) (*Chart, error) {
	c, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	return &Chart{c: c}, nil
}

// Name is the chart's name from Chart.yaml.
func (c *Chart) Name() string { return c.c.Metadata.Name }

// Version is the chart's version from Chart.yaml.
func (c *Chart) Version() string { return c.c.Metadata.Version }

// Release is one revision of an installed chart.
type Release struct {
	Name        string
	Namespace   string
	Revision    int
	Status      string // "deployed", "superseded", "failed", "uninstalled", ...
	Chart       string // name-version
	AppVersion  string
	Description string
	Updated     time.Time
	Values      map[string]any // the values given by the caller, not the chart defaults
	Manifest    string
	Notes       string
	// Changed is false when an Install or Upgrade found the deployed revision
	// already matching the chart and values, and so recorded no new revision.
	Changed bool
}

func newRelease(r ri.Releaser) (*Release, error) {
	rel, ok := r.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("unsupported release type %T", r)
	}
	out := &Release{
		Name:      rel.Name,
		Namespace: rel.Namespace,
		Revision:  rel.Version,
		Values:    rel.Config,
		Manifest:  rel.Manifest,
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		out.Chart = rel.Chart.Metadata.Name + "-" + rel.Chart.Metadata.Version
		out.AppVersion = rel.Chart.Metadata.AppVersion
	}
	if rel.Info != nil {
		out.Status = string(rel.Info.Status)
		out.Description = rel.Info.Description
		out.Updated = rel.Info.LastDeployed
		out.Notes = rel.Info.Notes
	}
	return out, nil
}

// Rendered is a chart rendered without a cluster, as `helm template` does.
type Rendered struct {
	// Objects are the rendered documents, hooks included, in install order
	// and then hooks in the order Helm lists them.
	Objects []Object
	// Notes is the rendered NOTES.txt.
	Notes string
}

// Object is one rendered Kubernetes object.
type Object struct {
	Source string // chart-relative template path
	YAML   string
	Hook   bool // a Helm hook (e.g. the helm test Pod)
}

// String returns the objects as one YAML stream with "# Source:" comments,
// the format of `helm template`.
func (r *Rendered) String() string {
	var b strings.Builder
	for _, o := range r.Objects {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", o.Source, strings.TrimSpace(o.YAML))
	}
	return b.String()
}

// DefaultKubeVersion is the Kubernetes version a Render assumes when none is
// given: the release this module's client-go belongs to (Helm's own default,
// v1.20, fails every chart that asks for a current cluster).
const DefaultKubeVersion = "v1.37.0"

// Render renders a chart locally, without contacting a cluster. Templates
// that call `lookup` see an empty cluster.
type Render struct {
	// Name is the release name templates see; "release-name" if empty.
	Name string
	// Namespace is the release namespace templates see; "default" if empty.
	Namespace string
	// KubeVersion is the Kubernetes version templates see (e.g. "v1.37.2");
	// DefaultKubeVersion if empty.
	KubeVersion string
	// APIVersions are extra API versions templates see as available
	// (e.g. "gateway.networking.k8s.io/v1").
	APIVersions []string
	// IsUpgrade renders as for an upgrade instead of an install.
	IsUpgrade bool
}

// Run renders ch with values. Values are checked against the chart's
// values.schema.json first; the error then lists each violation.
func (r *Render) Run(ch *Chart, values map[string]any) (*Rendered, error) {
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	in := action.NewInstall(cfg)
	in.DryRunStrategy = action.DryRunClient
	in.Replace = true
	in.ReleaseName = r.Name
	if in.ReleaseName == "" {
		in.ReleaseName = "release-name"
	}
	in.Namespace = r.Namespace
	if in.Namespace == "" {
		in.Namespace = "default"
	}
	in.IsUpgrade = r.IsUpgrade
	in.APIVersions = r.APIVersions
	kv, err := parseKubeVersion(cmp.Or(r.KubeVersion, DefaultKubeVersion))
	if err != nil {
		return nil, err
	}
	in.KubeVersion = kv
	rr, err := in.Run(ch.c, copyValues(values))
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", ch.Name(), err)
	}
	rel := rr.(*release.Release)
	out := &Rendered{Objects: splitManifest(rel.Manifest)}
	if rel.Info != nil {
		out.Notes = rel.Info.Notes
	}
	for _, h := range rel.Hooks {
		out.Objects = append(out.Objects, Object{Source: h.Path, YAML: strings.TrimSpace(h.Manifest), Hook: true})
	}
	return out, nil
}

// splitManifest splits Helm's release manifest ("---\n# Source: path\n...")
// into objects, keeping Helm's install order.
func splitManifest(manifest string) []Object {
	var objs []Object
	for _, doc := range strings.Split(manifest, "\n---\n") {
		doc = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(doc), "---"))
		if doc == "" {
			continue
		}
		var src string
		if rest, ok := strings.CutPrefix(doc, "# Source: "); ok {
			src, doc, _ = strings.Cut(rest, "\n")
		}
		if strings.TrimSpace(doc) == "" {
			continue
		}
		objs = append(objs, Object{Source: src, YAML: strings.TrimSpace(doc)})
	}
	return objs
}

// copyValues deep-copies values through JSON so that Helm's coalescing never
// writes into the caller's maps, and numbers compare the same way as values
// read back from release storage.
func copyValues(v map[string]any) map[string]any {
	if v == nil {
		return map[string]any{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Values that do not marshal cannot be stored in a release either;
		// let Helm report them.
		return v
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}

// sameValues reports whether two value trees are equal after JSON
// normalisation (map order and int/float differences ignored).
func sameValues(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// sameHooks reports whether two releases carry the same hook manifests.
func sameHooks(a, b []*release.Hook) bool {
	key := func(hs []*release.Hook) []string {
		out := make([]string, 0, len(hs))
		for _, h := range hs {
			out = append(out, h.Path+"\x00"+strings.TrimSpace(h.Manifest))
		}
		slices.Sort(out)
		return out
	}
	ka, kb := key(a), key(b)
	if len(ka) != len(kb) {
		return false
	}
	for i := range ka {
		if ka[i] != kb[i] {
			return false
		}
	}
	return true
}

// ErrNotFound is wrapped by errors about a release that does not exist.
var ErrNotFound = errors.New("release not found")

// discard is the writer hook output goes to unless a caller sets one.
var discard = func(_, _, _ string) io.Writer { return io.Discard }

// Lint checks a chart directory as `helm lint` does: Chart.yaml, values
// against the schema, templates rendering to valid YAML objects.
type Lint struct {
	// Strict reports warnings as problems too.
	Strict bool
	// KubeVersion is the Kubernetes version templates see; DefaultKubeVersion
	// if empty.
	KubeVersion string
}

// Run lints the chart in dir with values and returns every finding of
// warning severity or worse ("[WARNING] templates/x.yaml: ..."), and an
// error if the chart fails the lint.
func (l *Lint) Run(dir string, values map[string]any) ([]string, error) {
	kv, err := parseKubeVersion(cmp.Or(l.KubeVersion, DefaultKubeVersion))
	if err != nil {
		return nil, err
	}
	a := action.NewLint()
	a.Strict = l.Strict
	a.KubeVersion = kv
	res := a.Run([]string{dir}, copyValues(values))
	var findings []string
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			findings = append(findings, m.Error())
		}
	}
	if len(res.Errors) > 0 {
		return findings, fmt.Errorf("lint %s: %w", dir, errors.Join(res.Errors...))
	}
	return findings, nil
}
