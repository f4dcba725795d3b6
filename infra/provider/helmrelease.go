package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/edgeline/edgeline/internal/helm"
)

// HelmRelease installs a chart into the cluster through internal/helm. An install with
// the same chart and values records nothing; Delete uninstalls.
type HelmRelease struct{}

// HelmReleaseArgs are the inputs of a HelmRelease.
type HelmReleaseArgs struct {
	Kubeconfig string `pulumi:"kubeconfig" provider:"secret"`
	Name       string `pulumi:"name"`
	Namespace  string `pulumi:"namespace"`
	// Chart is a chart directory or .tgz on this machine, an oci:// reference, or the
	// chart's name in Repository.
	Chart string `pulumi:"chart"`
	// Repository is the classic chart repository (https://...) that holds Chart.
	Repository string `pulumi:"repository,optional"`
	// Version is the exact chart version to pull (remote charts). (Not "version": the
	// provider framework drops an input of that name.)
	Version string `pulumi:"pinnedVersion,optional"`
	// Digest pins the chart archive ("sha256:..."); empty means the one LockFile records.
	Digest string `pulumi:"digest,optional"`
	// LockFile records the digest of a remote chart on its first pull and checks it
	// afterwards.
	LockFile string `pulumi:"lockFile,optional"`
	// CacheDir keeps pulled archives by digest; empty means the user's cache directory.
	CacheDir string `pulumi:"cacheDir,optional"`
	// Values are the chart values as a JSON object; they may hold passwords.
	Values string `pulumi:"values,optional" provider:"secret"`
	// Wait waits until the release's workloads are ready.
	Wait           bool `pulumi:"wait,optional"`
	TimeoutSeconds int  `pulumi:"timeoutSeconds,optional"`
}

// HelmReleaseState is a HelmRelease's state.
type HelmReleaseState struct {
	HelmReleaseArgs
	Revision     int    `pulumi:"revision"`
	Status       string `pulumi:"status"`
	ChartVersion string `pulumi:"chartVersion"`
	// ChartDigest is the sha256 of the installed chart archive (remote charts and .tgz).
	ChartDigest string `pulumi:"chartDigest,optional"`
	AppVersion  string `pulumi:"appVersion"`
}

// Annotate documents the resource.
func (r *HelmRelease) Annotate(a infer.Annotator) {
	a.Describe(r, "A Helm release installed with the Helm SDK.")
	a.SetToken("index", "HelmRelease")
}

// remote reports whether the chart is pulled from a registry or repository.
func (a HelmReleaseArgs) remote() bool { return helm.IsRemote(a.Chart, a.Repository) }

// load pulls (or finds in the cache) and loads the chart, checked against its digest,
// and decodes the values.
func (a HelmReleaseArgs) load(ctx context.Context) (*helm.Pulled, map[string]any, error) {
	pull := helm.Pull{RepoURL: a.Repository, Version: a.Version, Digest: a.Digest, LockFile: a.LockFile, CacheDir: a.CacheDir}
	got, err := pull.Run(ctx, a.Chart)
	if err != nil {
		return nil, nil, fmt.Errorf("release %s: %w", a.Name, err)
	}
	if !a.remote() && a.Version != "" && got.Chart.Version() != a.Version {
		return nil, nil, fmt.Errorf("release %s: chart %s is version %s, not %s", a.Name, a.Chart, got.Chart.Version(), a.Version)
	}
	values := map[string]any{}
	if a.Values != "" {
		if err := json.Unmarshal([]byte(a.Values), &values); err != nil {
			return nil, nil, fmt.Errorf("release %s: values are not a JSON object: %w", a.Name, err)
		}
	}
	return got, values, nil
}

// version is the chart version the inputs ask for, without pulling anything: the pinned
// version of a remote chart, else the version of the chart on disk.
func (a HelmReleaseArgs) version() string {
	if a.remote() {
		return a.Version
	}
	if ch, err := helm.Load(a.Chart); err == nil {
		return ch.Version()
	}
	return ""
}

func (a HelmReleaseArgs) timeout() time.Duration {
	if a.TimeoutSeconds > 0 {
		return time.Duration(a.TimeoutSeconds) * time.Second
	}
	return helm.DefaultTimeout
}

func (r *HelmRelease) apply(ctx context.Context, args HelmReleaseArgs) (HelmReleaseState, error) {
	pulled, values, err := args.load(ctx)
	if err != nil {
		return HelmReleaseState{}, err
	}
	if pulled.Downloaded {
		logf(ctx, "release %s: pulled chart %s %s (%s)", args.Name, pulled.Chart.Name(), pulled.Chart.Version(), pulled.Digest)
	}
	ch := pulled.Chart
	cfg, err := helm.NewConfiguration([]byte(args.Kubeconfig), args.Namespace, nil)
	if err != nil {
		return HelmReleaseState{}, fmt.Errorf("release %s: %w", args.Name, err)
	}
	in := helm.NewInstall(cfg)
	in.Name, in.CreateNamespace, in.Wait, in.Timeout, in.MaxHistory = args.Name, true, args.Wait, args.timeout(), 10
	var rel *helm.Release
	// Custom resources of a chart installed just before (cert-manager's ClusterIssuer)
	// are accepted only once the API server serves their CRD: retry for a while.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rel, err = in.Run(ctx, ch, values)
		if err == nil || !crdPending(err) || time.Now().After(deadline) {
			break
		}
		logf(ctx, "release %s: waiting for its custom resource definitions to be served", args.Name)
		select {
		case <-ctx.Done():
			return HelmReleaseState{}, ctx.Err()
		case <-time.After(3 * time.Second):
		}
	}
	if err != nil {
		return HelmReleaseState{}, fmt.Errorf("release %s: %w", args.Name, err)
	}
	if rel.Changed {
		logf(ctx, "release %s: revision %d %s", rel.Name, rel.Revision, rel.Status)
	} else {
		logf(ctx, "release %s: up to date", rel.Name)
	}
	return HelmReleaseState{HelmReleaseArgs: args, Revision: rel.Revision, Status: rel.Status, ChartVersion: ch.Version(), ChartDigest: pulled.Digest, AppVersion: rel.AppVersion}, nil
}

func crdPending(err error) bool {
	s := err.Error()
	return strings.Contains(s, "no matches for kind") || strings.Contains(s, "ensure CRDs are installed first")
}

// Create installs the release.
func (r *HelmRelease) Create(ctx context.Context, req infer.CreateRequest[HelmReleaseArgs]) (infer.CreateResponse[HelmReleaseState], error) {
	id := req.Inputs.Namespace + "/" + req.Inputs.Name
	if req.DryRun {
		// A preview pulls nothing.
		st := HelmReleaseState{HelmReleaseArgs: req.Inputs, ChartVersion: req.Inputs.version()}
		return infer.CreateResponse[HelmReleaseState]{ID: id, Output: st}, nil
	}
	st, err := r.apply(ctx, req.Inputs)
	if err != nil {
		return infer.CreateResponse[HelmReleaseState]{}, err
	}
	return infer.CreateResponse[HelmReleaseState]{ID: id, Output: st}, nil
}

// Diff replaces the release when its name or namespace changes, and upgrades it when
// the chart (its pinned version or digest, or its version on disk), values or settings
// change. It pulls nothing.
func (r *HelmRelease) Diff(ctx context.Context, req infer.DiffRequest[HelmReleaseArgs, HelmReleaseState]) (infer.DiffResponse, error) {
	o, n := req.State.HelmReleaseArgs, req.Inputs
	version := n.version()
	if version == "" {
		version = req.State.ChartVersion
	}
	changes := inputs(o, n, "name", "namespace")
	for i, c := range changes {
		if c.name == "values" {
			changes[i].old, changes[i].new = canonical(o.Values), canonical(n.Values)
		}
	}
	return diff(append(changes, change{"chartVersion", req.State.ChartVersion, version, false})...), nil
}

// canonical decodes JSON values so that key order and spacing do not count as changes.
func canonical(values string) any {
	var v any
	if json.Unmarshal([]byte(values), &v) != nil {
		return values
	}
	return v
}

// Update upgrades the release.
func (r *HelmRelease) Update(ctx context.Context, req infer.UpdateRequest[HelmReleaseArgs, HelmReleaseState]) (infer.UpdateResponse[HelmReleaseState], error) {
	if req.DryRun {
		st := req.State
		st.HelmReleaseArgs = req.Inputs
		return infer.UpdateResponse[HelmReleaseState]{Output: st}, nil
	}
	st, err := r.apply(ctx, req.Inputs)
	return infer.UpdateResponse[HelmReleaseState]{Output: st}, err
}

// Read reports the deployed revision; a release that was uninstalled is gone.
func (r *HelmRelease) Read(ctx context.Context, req infer.ReadRequest[HelmReleaseArgs, HelmReleaseState]) (infer.ReadResponse[HelmReleaseArgs, HelmReleaseState], error) {
	st := req.State
	cfg, err := helm.NewConfiguration([]byte(st.Kubeconfig), st.Namespace, nil)
	if err != nil {
		return infer.ReadResponse[HelmReleaseArgs, HelmReleaseState]{}, err
	}
	rel, err := helm.NewStatus(cfg).Run(st.Name)
	if errors.Is(err, helm.ErrNotFound) {
		return infer.ReadResponse[HelmReleaseArgs, HelmReleaseState]{}, nil
	}
	if err != nil {
		return infer.ReadResponse[HelmReleaseArgs, HelmReleaseState]{}, fmt.Errorf("release %s: %w", st.Name, err)
	}
	st.Revision, st.Status, st.AppVersion = rel.Revision, rel.Status, rel.AppVersion
	return infer.ReadResponse[HelmReleaseArgs, HelmReleaseState]{ID: req.ID, Inputs: req.Inputs, State: st}, nil
}

// Delete uninstalls the release and waits until its objects are gone.
func (r *HelmRelease) Delete(ctx context.Context, req infer.DeleteRequest[HelmReleaseState]) (infer.DeleteResponse, error) {
	st := req.State
	cfg, err := helm.NewConfiguration([]byte(st.Kubeconfig), st.Namespace, nil)
	if err != nil {
		return infer.DeleteResponse{}, fmt.Errorf("release %s: %w", st.Name, err)
	}
	un := helm.NewUninstall(cfg)
	un.IgnoreNotFound, un.Timeout = true, st.timeout()
	if err := un.Run(ctx, st.Name); err != nil {
		return infer.DeleteResponse{}, fmt.Errorf("uninstall release %s: %w", st.Name, err)
	}
	logf(ctx, "release %s uninstalled", st.Name)
	return infer.DeleteResponse{}, nil
}
