// Command pulumi-resource-edgeline is edgeline's Pulumi resource provider plugin
// (package infra/provider). The Pulumi engine starts it; it is not run by hand. Install
// it for a stack with
//
//	pulumi plugin install resource edgeline 0.1.0 --file ./bin/pulumi-resource-edgeline
//
// or name it in Pulumi.yaml under plugins.providers.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/edgeline/edgeline/infra/provider"
)

func main() {
	if err := provider.Run(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-edgeline: %v\n", err)
		os.Exit(1)
	}
}
