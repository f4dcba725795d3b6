package images

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, COPY, ...
	args string
}

// stage is one FROM ... section.
type stage struct {
	name  string
	image string // with ARG defaults substituted
	ins   []instruction
}

type dockerfile struct {
	comments []string
	args     map[string]string // global ARG defaults
	stages   []*stage
}

func parse(t *testing.T, path string) *dockerfile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	df := &dockerfile{args: map[string]string{}}
	var cur *stage
	var buf strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			df.comments = append(df.comments, line)
			continue
		}
		if line == "" && buf.Len() == 0 {
			continue
		}
		if buf.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			buf.WriteString(cont + " ")
			continue
		}
		buf.WriteString(line)
		text := buf.String()
		buf.Reset()
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		switch {
		case in.cmd == "FROM":
			fields := strings.Fields(in.args)
			cur = &stage{image: os.Expand(fields[0], func(k string) string { return df.args[k] })}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				cur.name = fields[2]
			}
			df.stages = append(df.stages, cur)
		case in.cmd == "ARG" && cur == nil:
			k, v, _ := strings.Cut(in.args, "=")
			df.args[k] = v
		case cur != nil:
			cur.ins = append(cur.ins, in)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(df.stages) == 0 {
		t.Fatalf("%s: no FROM", path)
	}
	return df
}

func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (s *stage) last(cmd string) string {
	ins := s.all(cmd)
	if len(ins) == 0 {
		return ""
	}
	return ins[len(ins)-1].args
}

// chartValues reads the chart's values.yaml: the images must run as the
// user and on the ports the chart expects.
func chartValues(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../../../charts/facelogin/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

var pinned = regexp.MustCompile(`^[a-z0-9.-]+(/[a-z0-9._-]+)+:[0-9][A-Za-z0-9._-]*(@sha256:[a-f0-9]{64})?$`)

// expect is what the repository expects of one image.
type expect struct {
	cmd, port, uid string
	models         bool
	sums           []string // model file names from models/SHA256SUMS, if models
}

func TestDockerfiles(t *testing.T) {
	sec := chartValues(t)["securityContext"].(map[string]any)
	uid, _ := sec["runAsUser"].(float64) // JSON numbers
	sums := modelNames(t)
	tests := []struct {
		file string
		want expect
	}{
		{"api.Dockerfile", expect{cmd: "api", port: "8081", models: true, sums: sums}},
		{"web.Dockerfile", expect{cmd: "web", port: "8080"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			tt.want.uid = strconv.FormatFloat(uid, 'f', -1, 64)
			for _, p := range lint(parse(t, tt.file), tt.want) {
				t.Error(p)
			}
			ignore, err := os.ReadFile(tt.file + ".dockerignore")
			if err != nil {
				t.Fatalf("no %s.dockerignore: the whole repository (with .git and the tool cache) would be sent as build context", tt.file)
			}
			for _, want := range []string{".git", ".cache", "data"} {
				if !strings.Contains(string(ignore), want+"\n") {
					t.Errorf("%s.dockerignore does not exclude %s", tt.file, want)
				}
			}
		})
	}
}

// TestLintCatchesMistakes feeds the rules a Dockerfile with one mistake of
// each kind, so that a rule that never fires cannot pass unnoticed.
func TestLintCatchesMistakes(t *testing.T) {
	got := strings.Join(lint(parse(t, "testdata/bad.Dockerfile"),
		expect{cmd: "api", port: "8081", uid: "65532", models: true, sums: []string{"a.dat"}}), "\n")
	for _, want := range []string{
		"not a multi-stage build",
		`base image "debian:latest" is not pinned`,
		"ADD https://",
		"without --no-install-recommends",
		"update and clean its lists",
		"downloads in RUN",
		"secret-looking ENV",
		`runs as "root"`,
		"EXPOSE \"80\"",
		"not in exec form",
		"installs build tools",
		"does not install libdlib19.1",
		"does not build ./cmd/facelogin with cgo",
		"no HEALTHCHECK",
		"-march=native",
		"no models stage",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no problem reported matching %q; got:\n%s", want, got)
		}
	}
}

// lint checks one Dockerfile and returns its problems, one sentence each.
func lint(df *dockerfile, want expect) []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	final := df.stages[len(df.stages)-1]

	if len(df.stages) < 2 {
		add("not a multi-stage build: the runtime image would carry the compiler")
	}
	for _, s := range df.stages {
		if !pinned.MatchString(s.image) || strings.Contains(s.image, ":latest") {
			add("stage %q: base image %q is not pinned to a versioned tag with a full registry path", s.name, s.image)
		}
		for _, in := range s.ins {
			if in.cmd == "ADD" {
				add("line %d: ADD %s: use COPY (and never ADD a URL: unverified download)", in.line, in.args)
			}
			if in.cmd == "RUN" && strings.Contains(in.args, "apt-get install") {
				if !strings.Contains(in.args, "--no-install-recommends") {
					add("line %d: apt-get install without --no-install-recommends", in.line)
				}
				if !strings.Contains(in.args, "apt-get update") || !strings.Contains(in.args, "rm -rf /var/lib/apt/lists/*") {
					add("line %d: apt-get install must update and clean its lists in the same RUN", in.line)
				}
			}
			if in.cmd == "RUN" && download.MatchString(in.args) {
				add("line %d: downloads in RUN are unverified; fetch through a package manager and check sums", in.line)
			}
			if in.cmd == "ENV" && secretEnv.MatchString(in.args) {
				add("line %d: secret-looking ENV %s baked into the image", in.line, in.args)
			}
		}
	}

	user := final.last("USER")
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		add("final stage runs as %q, want a non-root numeric user", user)
	} else if u != want.uid {
		add("final stage runs as %s but the chart's securityContext.runAsUser is %s", u, want.uid)
	}
	if got := final.last("EXPOSE"); got != want.port {
		add("EXPOSE %q, want %s (app contract)", got, want.port)
	}
	if ep := final.last("ENTRYPOINT"); !strings.HasPrefix(ep, "[") {
		add("ENTRYPOINT %q is not in exec form", ep)
	}
	if cmd := final.last("CMD"); cmd != `["`+want.cmd+`"]` {
		add("CMD %s, want [%q]", cmd, want.cmd)
	}
	for _, in := range final.all("RUN") {
		if buildTools.MatchString(in.args) {
			add("line %d: the runtime stage installs build tools: %s", in.line, in.args)
		}
	}
	// go-face links -ldlib -lblas -llapack -ljpeg; ldd of a built binary shows
	// libdlib.so.19.1, libblas.so.3 and liblapack.so.3 from OpenBLAS, libjpeg.so.62.
	runtime := strings.Join(instrArgs(final.all("RUN")), " ")
	for _, lib := range []string{"libdlib19.1", "libopenblas0", "libjpeg62-turbo"} {
		if !strings.Contains(runtime, lib) {
			add("the runtime stage does not install %s, which the binary loads", lib)
		}
	}
	buildRuns := strings.Join(instrArgs(df.stages[0].all("RUN")), " ")
	if !strings.Contains(buildRuns, "CGO_ENABLED=1") || !strings.Contains(buildRuns, "./cmd/facelogin") {
		add("the build stage does not build ./cmd/facelogin with cgo")
	}

	comments := strings.Join(df.comments, "\n")
	if len(final.all("HEALTHCHECK")) == 0 && !(strings.Contains(comments, "/healthz") && strings.Contains(comments, "/readyz")) {
		add("no HEALTHCHECK and no note on where /healthz and /readyz are probed")
	}
	if !strings.Contains(comments, "-march=native") {
		add("the header does not warn that go-face builds with -march=native (build on the target architecture)")
	}

	copies := strings.Join(instrArgs(final.all("COPY")), "\n")
	if want.models != strings.Contains(copies, "/models") {
		add("models copied into the image: %v, want %v", !want.models, want.models)
	}
	if want.models {
		probs = append(probs, lintModels(df, want.sums)...)
	}
	return probs
}

var (
	download   = regexp.MustCompile(`\b(curl|wget)\b`)
	secretEnv  = regexp.MustCompile(`(?i)(key|pepper|password|token|secret)=`)
	buildTools = regexp.MustCompile(`\b(g\+\+|gcc|golang|[a-z0-9.+-]+-dev)\b`)
)

// lintModels checks that the models stage fetches exactly the models in
// models/SHA256SUMS and verifies them against it.
func lintModels(df *dockerfile, names []string) []string {
	var models *stage
	for _, s := range df.stages {
		if s.name == "models" {
			models = s
		}
	}
	if models == nil {
		return []string{"no models stage"}
	}
	var probs []string
	runs := strings.Join(instrArgs(models.all("RUN")), " ")
	if !strings.Contains(runs, "sha256sum -c") || !strings.Contains(strings.Join(instrArgs(models.all("COPY")), " "), "models/SHA256SUMS") {
		probs = append(probs, "the models stage does not verify the models against models/SHA256SUMS")
	}
	for _, n := range names {
		if !strings.Contains(runs, n) {
			probs = append(probs, fmt.Sprintf("model %s (in models/SHA256SUMS) is not copied into the image", n))
		}
	}
	return probs
}

// modelNames lists the model files in models/SHA256SUMS.
func modelNames(t *testing.T) []string {
	t.Helper()
	sums, err := os.ReadFile(filepath.Join("..", "..", "..", "models", "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			names = append(names, f[1])
		}
	}
	return names
}

func instrArgs(ins []instruction) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.args
	}
	return out
}
