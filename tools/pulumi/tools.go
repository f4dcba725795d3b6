//go:build tools

// Package tools pins the pulumi CLI's main package so that go.mod and go.sum
// record everything `go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi` needs.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
