package deptest

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/edgeline/edgeline"

// mode says which dependencies of a package a rule looks at.
type mode int

const (
	// transitive checks every package the importer links, directly or not: the rule
	// keeps whole libraries out of a binary.
	transitive mode = iota
	// direct checks only the importer's own import lines: the rule says who may import
	// a package, and its importers may still reach it through a permitted package.
	direct
)

// rule forbids the packages matching from to depend on anything under the forbidden
// prefixes; except lists packages that may. Patterns ending in "/..." match a path and
// everything below it; others match one package.
type rule struct {
	name      string
	why       string
	from      []string
	forbidden []string
	except    []string
	mode      mode
}

var rules = []rule{
	{
		name:      "go-face (cgo) stays inside the face package",
		why:       "packages that need the recognition engine go through package face, so cgo and dlib are linked only where a face is decoded",
		from:      []string{module + "/..."},
		forbidden: []string{"github.com/Kagami/go-face"},
		except:    []string{module + "/apps/facelogin/face"},
		mode:      direct,
	},
	{
		name:      "the liveness check is pure Go: no face engine, no cgo",
		why:       "the liveness check runs on every frame and builds without dlib, so it cannot reach the face engine even indirectly",
		from:      []string{module + "/apps/facelogin/liveness"},
		forbidden: []string{module + "/apps/facelogin/face", "github.com/Kagami/go-face"},
		mode:      transitive,
	},
	{
		name: "the face-login app knows nothing of provisioning",
		why:  "the app's binary and images stay small and portable; provisioning is the provider's job",
		from: []string{module + "/apps/..."},
		forbidden: []string{
			"github.com/pulumi/",
			"helm.sh/helm/",
			"k8s.io/",
			"github.com/hashicorp/",
			"github.com/hetznercloud/",
			"github.com/cloudflare/cloudflare-go",
			module + "/infra",
			module + "/internal/remote",
			module + "/internal/k3s",
			module + "/internal/helm",
			module + "/sdk",
		},
		mode: transitive,
	},
	{
		name: "the Pulumi program and the edgeline CLI do not link the provider",
		why: "every `pulumi up` and every `edgeline` run builds and starts the program; Helm, the Kubernetes clients, " +
			"the Hetzner client and terraform-exec belong to the provider plugin, which the engine starts on its own " +
			"(the program reaches the provider through sdk/go/edgeline: about 960 packages instead of 1,860)",
		from: []string{
			module + "/infra",
			module + "/infra/stack",
			module + "/infra/stackconfig",
			module + "/infra/action",
			module + "/cmd/edgeline",
			module + "/sdk/...",
		},
		forbidden: []string{
			"helm.sh/helm/",
			"k8s.io/",
			"github.com/hetznercloud/",
			"github.com/hashicorp/terraform-exec",
			module + "/infra/provider",
			module + "/infra/cloud",
			module + "/internal/helm",
		},
		mode: transitive,
	},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	return pkgs
}

// matches reports whether path matches one of patterns ("/..." suffix: the path and
// everything below).
func matches(path string, patterns []string) bool {
	for _, p := range patterns {
		if base, ok := strings.CutSuffix(p, "/..."); ok {
			if path == base || strings.HasPrefix(path, base+"/") {
				return true
			}
		} else if path == p {
			return true
		}
	}
	return false
}

// hasPrefix reports whether path is, or lies below, one of prefixes; a prefix ending
// in "/" matches any path that starts with it.
func hasPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") || (strings.HasSuffix(p, "/") && strings.HasPrefix(path, p)) {
			return true
		}
	}
	return false
}

func TestDependencyWall(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			checked := 0
			for _, p := range pkgs {
				if !matches(p.ImportPath, r.from) || matches(p.ImportPath, r.except) {
					continue
				}
				checked++
				deps := p.Deps
				if r.mode == direct {
					deps = p.Imports
				}
				for _, d := range deps {
					if hasPrefix(d, r.forbidden) {
						t.Errorf("%s depends on %s: %s (%s)", p.ImportPath, d, r.name, r.why)
						break
					}
				}
			}
			if checked == 0 {
				// A rule may be written before its package lands; it is not a pass.
				t.Skipf("no package matches %v yet: the rule checks nothing until one does", r.from)
			}
		})
	}
}

// cgoFree are the programs that must build with CGO_ENABLED=0: the deployer binaries
// (make build) and the web front end (the static facelogin-web image).
var cgoFree = []string{
	module + "/cmd/edgeline",
	module + "/cmd/pulumi-resource-edgeline",
	module + "/cmd/facelogin-web",
}

// TestBuildsWithoutCgo lists the cgo-free programs' dependencies with CGO_ENABLED=0: a
// package without Go files for that build shows up as an error, and go-face (whose few
// pure-Go files list fine but do not compile alone) by name.
func TestBuildsWithoutCgo(t *testing.T) {
	cmd := exec.Command("go", append([]string{"list", "-e", "-deps", "-f", "{{.ImportPath}}\t{{if .Error}}{{.Error}}{{end}}"}, cgoFree...)...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, problem, _ := strings.Cut(line, "\t")
		n++
		if problem != "" || strings.HasPrefix(path, "github.com/Kagami/go-face") || path == module+"/apps/facelogin/face" {
			t.Errorf("%s does not build without cgo (%s): keep it out of %s", path, problem, strings.Join(cgoFree, ", "))
		}
	}
	if n < 100 {
		t.Fatalf("go list found only %d packages:\n%s", n, out)
	}
}
