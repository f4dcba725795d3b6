//go:build facenative

package face

// Code generation for the build machine's own CPU (go build -tags facenative): the binary
// may die with SIGILL on any other CPU, so never ship it.

// #cgo CXXFLAGS: -march=native
import "C"
