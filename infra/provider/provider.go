// Package provider is edgeline's Pulumi resource provider: the resources whose side
// effects the infra program needs and no obtainable Pulumi package offers. CloudHost
// brings up the VPS (infra/cloud), K3sServer and K3sAgent install k3s over SSH
// (internal/k3s), HelmRelease installs charts (internal/helm) and Password generates
// secrets. cmd/pulumi-resource-edgeline serves it as a plugin; programs use it through
// the Go SDK generated from its schema (sdk/go/edgeline, made by tools/sdkgen).
package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
)

// Name is the package name: the plugin is pulumi-resource-edgeline and type tokens start
// with "edgeline:".
const Name = "edgeline"

// Version is the provider's version, as programs and `pulumi plugin install` name it.
const Version = "0.1.0"

// GoImportPath is the import path of the Go SDK generated from the provider's schema.
const GoImportPath = "github.com/edgeline/edgeline/sdk/go/edgeline"

// New returns the provider.
func New() (p.Provider, error) {
	return infer.NewProviderBuilder().
		WithDisplayName("edgeline").
		WithDescription("Hybrid k3s clusters: a cloud VPS, Raspberry Pi agents over SSH, Helm releases.").
		WithNamespace("edgeline").
		WithLanguageMap(map[string]any{"go": map[string]any{
			"importBasePath":       GoImportPath,
			"respectSchemaVersion": true,
		}}).
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

// change is one input compared by a Diff, named as in the schema.
type change struct {
	name     string
	old, new any
	replace  bool
}

// inputs lists the inputs of two Args values as changes, one per field, named by
// their pulumi tags. A name in replace (a field, or a field of a field as
// "connection.host") makes a change of it replace the resource; a name that is no
// field panics, so a test of the Diff catches a typo.
func inputs[T any](old, new T, replace ...string) []change {
	var out []change
	for _, r := range replace {
		o, ok := field(reflect.ValueOf(old), r)
		if !ok {
			panic(fmt.Sprintf("diff: %T has no input %q", old, r))
		}
		n, _ := field(reflect.ValueOf(new), r)
		out = append(out, change{r, o, n, true})
	}
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(new)
	for i := range ov.NumField() {
		name := inputName(ov.Type().Field(i))
		if name == "" || slices.Contains(replace, name) {
			continue
		}
		out = append(out, change{name, ov.Field(i).Interface(), nv.Field(i).Interface(), false})
	}
	return out
}

// inputName is the schema name of a struct field: its pulumi tag without options.
func inputName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("pulumi"), ",")
	return name
}

// field finds the value of a dotted input path in v.
func field(v reflect.Value, path string) (any, bool) {
	for part := range strings.SplitSeq(path, ".") {
		if v.Kind() != reflect.Struct {
			return nil, false
		}
		found := false
		for i := range v.NumField() {
			if inputName(v.Type().Field(i)) == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return v.Interface(), true
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
