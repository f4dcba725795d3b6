// Command infra is edgeline's Pulumi program (Pulumi.yaml, runtime go): `pulumi up` in
// this directory builds the hybrid cluster and deploys the face-login app. The program
// itself is package infra/stack; cmd/edgeline runs the same program through the
// Automation API.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/edgeline/edgeline/infra/stack"
)

func main() {
	pulumi.Run(stack.Program("."))
}
