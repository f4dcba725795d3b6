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

// rule forbids importers matching from (a package path prefix) to depend on anything under
// one of the forbidden prefixes; except lists packages that may.
type rule struct {
	name      string
	from      string
	forbidden []string
	except    []string
}

var rules = []rule{
	{
		name:      "go-face (cgo) stays inside the face package",
		from:      module + "/",
		forbidden: []string{"github.com/Kagami/go-face"},
		except: []string{
			module + "/apps/facelogin/face",
			// Packages that need the recognition engine go through package face;
			// they are allowed the transitive dependency, not a direct import.
		},
	},
	{
		name: "the face-login app knows nothing of provisioning",
		from: module + "/apps/",
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
		},
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
			for _, p := range pkgs {
				if !strings.HasPrefix(p.ImportPath, r.from) || hasPrefix(p.ImportPath, r.except) {
					continue
				}
				// go-face may reach other packages only through package face: check direct
				// imports for that rule, and every transitive dependency for the others.
				deps := p.Deps
				if r.except != nil {
					deps = p.Imports
				}
				for _, d := range deps {
					if hasPrefix(d, r.forbidden) {
						t.Errorf("%s depends on %s; move that code behind its own package (%s)", p.ImportPath, d, r.name)
						break
					}
				}
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
