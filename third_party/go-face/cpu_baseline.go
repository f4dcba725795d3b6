//go:build !facenative

package face

// Portable code generation: a baseline CPU per architecture, so a binary built on one
// machine runs on any other of the same architecture. x86-64-v2 is every x86-64 CPU since
// 2009 (SSE4.2, POPCNT); armv8-a covers the Raspberry Pi 4 (Cortex-A72) and 5 (Cortex-A76).
// Architectures not named here get the compiler's default, which is portable too.

// #cgo amd64 CXXFLAGS: -march=x86-64-v2
// #cgo arm64 CXXFLAGS: -march=armv8-a
import "C"
