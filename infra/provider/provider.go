// Package provider is edgeline's Pulumi resource provider: the resources whose side
// effects the infra program needs and no obtainable Pulumi package offers. CloudHost
// brings up the VPS (infra/cloud), K3sServer and K3sAgent install k3s over SSH
// (internal/k3s), HelmRelease installs charts (internal/helm) and Password generates
// secrets. cmd/pulumi-resource-edgeline serves it as a plugin; programs register the
// resources by type token, e.g. "edgeline:index:K3sServer".
package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
)

// Name is the package name: the plugin is pulumi-resource-edgeline and type tokens start
// with "edgeline:".
const Name = "edgeline"

// Version is the provider's version, as programs and `pulumi plugin install` name it.
const Version = "0.1.0"

// Type tokens of the resources.
const (
	TypePassword    = "edgeline:index:Password"
	TypeCloudHost   = "edgeline:index:CloudHost"
	TypeK3sServer   = "edgeline:index:K3sServer"
	TypeK3sAgent    = "edgeline:index:K3sAgent"
	TypeHelmRelease = "edgeline:index:HelmRelease"
)

// New returns the provider.
func New() (p.Provider, error) {
	return infer.NewProviderBuilder().
		WithDisplayName("edgeline").
		WithDescription("Hybrid k3s clusters: a cloud VPS, Raspberry Pi agents over SSH, Helm releases.").
		WithNamespace("edgeline").
		WithResources(
			infer.Resource(&Password{}),
			infer.Resource(&CloudHost{}),
			infer.Resource(&K3sServer{}),
			infer.Resource(&K3sAgent{}),
			infer.Resource(&HelmRelease{}),
		).
		Build()
}

// Run serves the provider as a plugin until the engine stops it.
func Run(ctx context.Context) error {
	prov, err := New()
	if err != nil {
		return err
	}
	return p.RunProvider(ctx, Name, Version, prov)
}

// change is one input compared by a Diff.
type change struct {
	name     string
	old, new any
	replace  bool
}

// diff reports which inputs changed; a change to a replace input replaces the resource
// (deleted first: names and hosts are unique).
func diff(changes ...change) p.DiffResponse {
	d := p.DiffResponse{DetailedDiff: map[string]p.PropertyDiff{}}
	for _, c := range changes {
		if same(c.old, c.new) {
			continue
		}
		kind := p.Update
		if c.replace {
			kind = p.UpdateReplace
			d.DeleteBeforeReplace = true
		}
		d.DetailedDiff[c.name] = p.PropertyDiff{Kind: kind, InputDiff: true}
		d.HasChanges = true
	}
	return d
}

// same compares two inputs as the engine would see them: nil and empty are equal.
func same(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	empty := func(j []byte) bool {
		return slices.Contains([]string{"null", `""`, "[]", "{}", "0", "false"}, string(j))
	}
	if empty(ja) && empty(jb) {
		return true
	}
	return bytes.Equal(ja, jb)
}

func logf(ctx context.Context, format string, args ...any) {
	p.GetLogger(ctx).InfoStatus(fmt.Sprintf(format, args...))
}
