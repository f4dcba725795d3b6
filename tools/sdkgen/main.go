// Command sdkgen writes the Go SDK of edgeline's Pulumi provider from the provider's
// schema, with Pulumi's own Go code generator (the CLI's `pulumi package gen-sdk` needs
// the pulumi-language-go plugin, which this project does not build). Run it from the
// repository root:
//
//	go run -C tools/sdkgen . -out ../../sdk/go
//
// It writes sdk/go/edgeline: one typed Args struct and one resource type per resource,
// the provider's schema beside them (schema.json), and nothing else. The program
// (infra/stack) registers resources through this SDK, so an input renamed in the provider
// fails to compile there; sdk/go/edgeline's test regenerates it and fails on any diff.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blang/semver"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/integration"
	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"

	"github.com/edgeline/edgeline/infra/provider"
)

func main() {
	out := flag.String("out", "sdk/go", "directory to write the SDK into (its edgeline/ folder is replaced)")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintf(os.Stderr, "sdkgen: %v\n", err)
		os.Exit(1)
	}
}

func run(out string) error {
	raw, err := providerSchema()
	if err != nil {
		return err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return fmt.Errorf("decode the schema: %w", err)
	}
	pkg, diags, err := schema.BindSpec(spec, noDependencies{}, schema.ValidationOptions{})
	if err != nil {
		return fmt.Errorf("bind the schema: %w", err)
	}
	if diags.HasErrors() {
		return fmt.Errorf("the provider's schema is invalid: %v", diags)
	}
	files, err := gogen.GeneratePackage("edgeline-sdkgen", pkg, nil)
	if err != nil {
		return fmt.Errorf("generate the Go SDK: %w", err)
	}
	pretty, err := json.MarshalIndent(json.RawMessage(raw), "", "  ")
	if err != nil {
		return err
	}
	files[spec.Name+"/schema.json"] = append(pretty, '\n')

	root := filepath.Join(out, spec.Name)
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	for name, b := range files {
		path := filepath.Join(out, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// providerSchema asks the provider for its schema through its gRPC surface, as the
// engine does.
func providerSchema() (string, error) {
	prov, err := provider.New()
	if err != nil {
		return "", err
	}
	s, err := integration.NewServer(context.Background(), provider.Name, semver.MustParse(provider.Version), integration.WithProvider(prov))
	if err != nil {
		return "", err
	}
	res, err := s.GetSchema(p.GetSchemaRequest{})
	if err != nil {
		return "", fmt.Errorf("get the provider's schema: %w", err)
	}
	return res.Schema, nil
}

// noDependencies is the schema loader for a package that refers to no other package.
type noDependencies struct{}

func (noDependencies) LoadPackage(name string, _ *semver.Version) (*schema.Package, error) {
	return nil, fmt.Errorf("the edgeline schema refers to package %s; it should refer to none", name)
}

func (noDependencies) LoadPackageV2(_ context.Context, d *schema.PackageDescriptor) (*schema.Package, error) {
	return noDependencies{}.LoadPackage(d.Name, nil)
}
