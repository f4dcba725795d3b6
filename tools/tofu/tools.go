//go:build tools

// Package tools pins OpenTofu's main package so that go.mod and go.sum record
// everything `go build github.com/opentofu/opentofu/cmd/tofu` needs.
package tools

import (
	_ "github.com/opentofu/opentofu/cmd/tofu"
)
