//go:build tools

// Package tools pins actionlint's main package so that go.mod and go.sum record
// everything `go build github.com/rhysd/actionlint/cmd/actionlint` needs.
package tools

import (
	_ "github.com/rhysd/actionlint/cmd/actionlint"
)
