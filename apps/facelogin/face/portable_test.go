//go:build amd64 && !facenative

package face

import (
	"bufio"
	"bytes"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestPortableCodegen disassembles this test binary and checks that the C++ go-face compiles
// into it (dlib's templates, go-face's glue) uses no AVX: the vendored go-face targets
// x86-64-v2, so the binary runs on any x86-64 CPU since 2009, not only on the build host's.
// Go's own functions are left out: they pick AVX at run time after checking the CPU. (A
// -tags facenative build targets the host on purpose and has no such test; arm64 is proven by
// running the binary under QEMU as a Cortex-A72.)
func TestPortableCodegen(t *testing.T) {
	objdump, err := exec.LookPath("objdump")
	if err != nil {
		t.Skip("needs objdump (binutils, installed with g++ by make setup)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(objdump, "-d", "--no-show-raw-insn", exe).Output()
	if err != nil {
		t.Fatalf("objdump %s: %v", exe, err)
	}
	var fn string
	cxx, bad := 0, map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		// A function starts with "0000000000401000 <name>:".
		if i := strings.Index(line, " <"); i > 0 && strings.HasSuffix(line, ">:") {
			fn = line[i+2 : len(line)-2]
			if isCXX(fn) {
				cxx++
			}
			continue
		}
		if !isCXX(fn) {
			continue
		}
		if strings.Contains(line, "%ymm") || strings.Contains(line, "%zmm") {
			bad[fn]++
		}
	}
	if cxx < 100 {
		t.Fatalf("found %d C++ functions in %s; the go-face code is missing from the disassembly", cxx, exe)
	}
	if len(bad) > 0 {
		fns := slices.Sorted(maps.Keys(bad))
		t.Errorf("%d C++ functions use AVX (ymm/zmm registers), for example %s (%d instructions); go-face must be built for x86-64-v2 (third_party/go-face/cpu_baseline.go)",
			len(fns), fns[0], bad[fns[0]])
	}
	t.Logf("%d C++ functions, none uses AVX", cxx)
}

// isCXX reports whether a symbol is a mangled C++ name (Itanium ABI), as dlib's and go-face's are.
func isCXX(sym string) bool { return strings.HasPrefix(sym, "_Z") }
