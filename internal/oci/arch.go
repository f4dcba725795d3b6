package oci

import (
	"debug/elf"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Arch is a CPU architecture an image is built for, spelled as Go and OCI spell it.
type Arch string

// The architectures images are built for: the VPS and the Raspberry Pi 4 and 5.
const (
	AMD64 Arch = "amd64"
	ARM64 Arch = "arm64"
)

// Arches lists every supported architecture.
var Arches = []Arch{AMD64, ARM64}

// ParseArch returns the architecture s names, or an error naming the supported ones.
func ParseArch(s string) (Arch, error) {
	for _, a := range Arches {
		if s == string(a) {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown architecture %q: use %s", s, archList())
}

// ParseArches parses a comma-separated list of architectures ("amd64,arm64").
func ParseArches(s string) ([]Arch, error) {
	var as []Arch
	for _, f := range strings.Split(s, ",") {
		a, err := ParseArch(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		for _, seen := range as {
			if seen == a {
				return nil, fmt.Errorf("architecture %s is listed twice", a)
			}
		}
		as = append(as, a)
	}
	return as, nil
}

func archList() string {
	s := make([]string, len(Arches))
	for i, a := range Arches {
		s[i] = string(a)
	}
	return strings.Join(s, " or ")
}

// Platform is the OCI platform of images for a: linux/amd64 or linux/arm64/v8.
func (a Arch) Platform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: string(a)}
	if a == ARM64 {
		p.Variant = "v8"
	}
	return p
}

// Triplet is Debian's multiarch directory name for a, as in /usr/lib/<triplet>.
func (a Arch) Triplet() string {
	switch a {
	case AMD64:
		return "x86_64-linux-gnu"
	case ARM64:
		return "aarch64-linux-gnu"
	}
	return ""
}

// machine is the ELF machine of a's binaries.
func (a Arch) machine() elf.Machine {
	switch a {
	case AMD64:
		return elf.EM_X86_64
	case ARM64:
		return elf.EM_AARCH64
	}
	return elf.EM_NONE
}

// archOf names the architecture of an ELF machine, for error messages.
func archOf(m elf.Machine) string {
	for _, a := range Arches {
		if a.machine() == m {
			return string(a)
		}
	}
	return m.String()
}
