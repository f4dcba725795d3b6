// Tests of the facelogin chart: golden renders of the value presets, the
// schema's refusals, the security settings of every pod, and, against a real
// control plane (internal/kubetest), server-side validation of every object,
// install/upgrade/uninstall through internal/helm, and where the scheduler
// places the pods of each placement preset.
package facelogin_test

import (
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeline/edgeline/internal/helm"
	"github.com/edgeline/edgeline/internal/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

const (
	release   = "face"
	namespace = "facelogin"
	fullname  = "face-facelogin"
)

// presets are the value sets the golden files and the cluster tests use.
// They differ in what the chart is asked to do, not in cosmetic values.
var presets = []struct {
	name   string
	values map[string]any
	apis   []string // extra API versions the target cluster has
}{
	{name: "default", values: map[string]any{"host": "face.example.com"}},
	{name: "cloud-only", values: map[string]any{
		"host": "face.example.com",
		"api":  map[string]any{"placement": map[string]any{"preset": "cloud-only"}},
	}},
	{name: "anywhere", values: map[string]any{
		"host": "face.example.com",
		"api":  map[string]any{"placement": map[string]any{"preset": "anywhere", "site": "factory"}},
		"web":  map[string]any{"placement": map[string]any{"preset": "anywhere"}},
	}},
	{name: "external-db", values: externalDB(nil)},
	// A cluster without an ingress controller (the tests' real node): the web Service on a
	// fixed node port.
	{name: "node-port", values: map[string]any{
		"publicURL": "http://10.88.0.1:30080",
		"ingress":   map[string]any{"enabled": false},
		"web":       map[string]any{"service": map[string]any{"type": "NodePort", "nodePort": 30080}},
	}},
	{name: "gateway-api", values: map[string]any{
		"host":      "face.example.com",
		"ingress":   map[string]any{"enabled": false},
		"httpRoute": map[string]any{"enabled": true},
		"api": map[string]any{
			"placement":   map[string]any{"preset": "edge-preferred", "site": "factory"},
			"autoscaling": map[string]any{"enabled": false},
			"replicas":    3,
		},
	}, apis: []string{"gateway.networking.k8s.io/v1"}},
}

// externalDB returns values for an external PostgreSQL and a pre-made
// Secret (no generated values, no PersistentVolumeClaim), merged with extra.
func externalDB(extra map[string]any) map[string]any {
	v := map[string]any{
		"host":       "face.example.com",
		"postgresql": map[string]any{"enabled": false},
		"database":   map[string]any{"cidr": "10.20.0.5/32"},
		"secrets":    map[string]any{"existingSecret": "facelogin-keys"},
	}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

// withImages returns v with the image repositories every release needs (the chart has no
// default: the project publishes no image of its own). The registry does not exist;
// rendering never pulls, and the kwok cluster's fake nodes do not either.
func withImages(v map[string]any) map[string]any {
	out := map[string]any{
		"api": map[string]any{"image": map[string]any{"repository": "registry.example.org/edgeline/facelogin-api"}},
		"web": map[string]any{"image": map[string]any{"repository": "registry.example.org/edgeline/facelogin-web"}},
	}
	mergeValues(out, v)
	return out
}

// mergeValues deep-merges src into dst, src winning, as Helm merges values files.
func mergeValues(dst, src map[string]any) {
	for k, sv := range src {
		sm, sok := sv.(map[string]any)
		dm, dok := dst[k].(map[string]any)
		if sok && dok {
			cp := map[string]any{}
			mergeValues(cp, dm)
			mergeValues(cp, sm)
			dst[k] = cp
			continue
		}
		dst[k] = sv
	}
}

func loadChart(t testing.TB) *helm.Chart {
	t.Helper()
	ch, err := helm.Load(".")
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func render(t testing.TB, values map[string]any, apis ...string) *helm.Rendered {
	t.Helper()
	r := helm.Render{Name: release, Namespace: namespace, KubeVersion: "v1.37.2", APIVersions: apis}
	out, err := r.Run(loadChart(t), withImages(values))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, p := range presets {
		t.Run(p.name, func(t *testing.T) {
			out := render(t, p.values, p.apis...)
			got := redactSecrets(t, out) + "---\n# NOTES.txt\n" + commentLines(out.Notes)
			path := filepath.Join("testdata", p.name+".yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("render of %s differs from %s (go test -update rewrites it):\n%s", p.name, path, diff(string(want), got))
			}
		})
	}
}

// redactSecrets replaces the generated values of the chart's Secret after
// checking their form, so that the golden files are stable.
func redactSecrets(t *testing.T, r *helm.Rendered) string {
	t.Helper()
	var b strings.Builder
	for _, o := range r.Objects {
		y := o.YAML
		if o.Source == "facelogin/templates/secret.yaml" {
			var s corev1.Secret
			if err := yaml.Unmarshal([]byte(y), &s); err != nil {
				t.Fatal(err)
			}
			checkGenerated(t, s.Data)
			lines := strings.Split(y, "\n")
			for i, l := range lines {
				if k, _, ok := strings.Cut(strings.TrimSpace(l), ": "); ok && s.Data[k] != nil && strings.HasPrefix(l, "  ") {
					lines[i] = "  " + k + ": <generated>"
				}
			}
			y = strings.Join(lines, "\n")
		}
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", o.Source, y)
	}
	return b.String()
}

// checkGenerated checks the generated secrets: a seal key file line
// "k1:<32 bytes base64>", a 32-byte pepper, and a database URL carrying the
// generated PostgreSQL password.
func checkGenerated(t *testing.T, data map[string][]byte) {
	t.Helper()
	id, key, ok := strings.Cut(string(data["descriptor-key"]), ":")
	if raw, err := base64.StdEncoding.DecodeString(key); !ok || id != "k1" || err != nil || len(raw) != 32 {
		t.Errorf("descriptor-key is not k1:<base64 of 32 bytes>")
	}
	if raw, err := base64.StdEncoding.DecodeString(string(data["pin-pepper"])); err != nil || len(raw) != 32 {
		t.Errorf("pin-pepper is not base64 of 32 bytes")
	}
	pw := string(data["postgres-password"])
	if len(pw) != 32 {
		t.Errorf("postgres-password has %d characters, want 32", len(pw))
	}
	wantURL := "postgres://facelogin:" + pw + "@" + fullname + "-postgresql:5432/facelogin?sslmode=disable"
	if string(data["db-url"]) != wantURL {
		t.Errorf("db-url does not carry the generated password for the built-in PostgreSQL")
	}
}

func commentLines(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(strings.TrimRight("# "+l, " ") + "\n")
	}
	return b.String()
}

// diff shows the first differing lines of two texts.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want %q\n  got  %q", i+1, wl, gl)
		}
	}
	return ""
}

func TestSchemaRefusesBadValues(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		want   []string // all must appear in the error
	}{
		{"unknown preset", map[string]any{"host": "face.example.com",
			"api": map[string]any{"placement": map[string]any{"preset": "edge-only"}}},
			[]string{"/api/placement/preset", "cloud-only", "edge-preferred", "anywhere"}},
		{"missing host", map[string]any{},
			[]string{"/host"}},
		{"host with scheme", map[string]any{"host": "https://face.example.com"},
			[]string{"/host"}},
		{"negative api replicas", map[string]any{"host": "face.example.com",
			"api": map[string]any{"replicas": -1}},
			[]string{"/api/replicas", "minimum"}},
		{"negative web replicas", map[string]any{"host": "face.example.com",
			"web": map[string]any{"replicas": -2}},
			[]string{"/web/replicas", "minimum"}},
		{"misspelt value", map[string]any{"host": "face.example.com",
			"api": map[string]any{"replica": 3}},
			[]string{"replica"}},
		{"unknown detector", map[string]any{"host": "face.example.com",
			"api": map[string]any{"detector": "sift"}},
			[]string{"/api/detector", "hog", "cnn"}},
		{"external database without url", map[string]any{"host": "face.example.com",
			"postgresql": map[string]any{"enabled": false}},
			[]string{"database.url is required"}},
		{"trusting X-Forwarded-For without the NetworkPolicy", map[string]any{"host": "face.example.com",
			"networkPolicy": map[string]any{"enabled": false}},
			[]string{"api.trustProxy needs networkPolicy.enabled", "api.trustProxy=false"}},
		{"autoscaling bounds crossed", map[string]any{"host": "face.example.com",
			"api": map[string]any{"autoscaling": map[string]any{"minReplicas": 5, "maxReplicas": 2}}},
			[]string{"minReplicas (5) is above maxReplicas (2)"}},
	}
	ch := loadChart(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := helm.Render{Name: release, Namespace: namespace}
			_, err := r.Run(ch, withImages(tt.values))
			if err == nil {
				t.Fatal("values accepted, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			t.Logf("error as the user sees it:\n%v", err)
		})
	}
}

// TestImagesRequired: the chart has no image default (nobody publishes one), so a
// release without repositories fails with a sentence that names the fix.
func TestImagesRequired(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"no api image", map[string]any{"host": "face.example.com",
			"web": map[string]any{"image": map[string]any{"repository": "registry.example.org/edgeline/facelogin-web"}}},
			"api.image.repository is not set: publish the images (edgeline images push --repository REGISTRY/PATH, docs/images.md) and set it to REGISTRY/PATH/facelogin-api, or set edgeline:appImageRepository in the stack config"},
		{"no web image", map[string]any{"host": "face.example.com",
			"api": map[string]any{"image": map[string]any{"repository": "registry.example.org/edgeline/facelogin-api"}}},
			"web.image.repository is not set"},
		{"repository with a tag", withImages(map[string]any{"host": "face.example.com",
			"api": map[string]any{"image": map[string]any{"repository": "registry.example.org/edgeline/facelogin-api:v1"}}}),
			"/api/image/repository"},
	}
	ch := loadChart(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&helm.Render{Name: release, Namespace: namespace}).Run(ch, tt.values)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			t.Logf("error as the user sees it:\n%v", err)
		})
	}
}

// decode turns rendered YAML into typed objects.
func decode(t testing.TB, r *helm.Rendered) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	for _, o := range r.Objects {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(o.YAML), nil, nil)
		if err != nil {
			if strings.Contains(err.Error(), "no kind") {
				continue // HTTPRoute: not in client-go's scheme
			}
			t.Fatalf("%s: %v", o.Source, err)
		}
		objs = append(objs, obj)
	}
	return objs
}

// podSpecs returns the pod templates of the rendered workloads, by name.
func podSpecs(t testing.TB, r *helm.Rendered) map[string]corev1.PodSpec {
	specs := map[string]corev1.PodSpec{}
	for _, obj := range decode(t, r) {
		switch o := obj.(type) {
		case *appsv1.Deployment:
			specs[o.Name] = o.Spec.Template.Spec
		case *appsv1.StatefulSet:
			specs[o.Name] = o.Spec.Template.Spec
		case *corev1.Pod:
			specs[o.Name] = o.Spec
		}
	}
	return specs
}

func TestPodsAreLockedDown(t *testing.T) {
	for _, p := range presets {
		specs := podSpecs(t, render(t, p.values, p.apis...))
		for name, s := range specs {
			t.Run(p.name+"/"+name, func(t *testing.T) {
				if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
					t.Error("automountServiceAccountToken is not false")
				}
				if sc := s.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
					sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Error("pod securityContext lacks runAsNonRoot or seccomp RuntimeDefault")
				}
				for _, c := range s.Containers {
					sc := c.SecurityContext
					if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
						t.Errorf("%s: root filesystem is writable", c.Name)
					}
					if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
						t.Errorf("%s: privilege escalation allowed", c.Name)
					}
					if sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
						t.Errorf("%s: capabilities not dropped", c.Name)
					}
					if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
						t.Errorf("%s: no memory request or limit", c.Name)
					}
					if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
						t.Errorf("%s: image %q is not pinned", c.Name, c.Image)
					}
				}
			})
		}
	}
}

// TestAppContract checks the api and web containers against the app
// contract: subcommands, ports, FACELOGIN_* settings, secrets as files or
// secret references, and probes on /healthz and /readyz.
func TestAppContract(t *testing.T) {
	specs := podSpecs(t, render(t, presets[0].values))
	api, web := specs[fullname+"-api"], specs[fullname+"-web"]
	if len(api.Containers) != 1 || len(web.Containers) != 1 {
		t.Fatalf("want one container each in api and web, got %d and %d", len(api.Containers), len(web.Containers))
	}
	env := func(c corev1.Container) map[string]corev1.EnvVar {
		m := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			m[e.Name] = e
		}
		return m
	}
	a, w := api.Containers[0], web.Containers[0]
	ae, we := env(a), env(w)
	for _, tc := range []struct {
		what      string
		got, want string
	}{
		{"api args", strings.Join(a.Args, " "), "api"},
		{"web args", strings.Join(w.Args, " "), "web"},
		{"api port", fmt.Sprint(a.Ports[0].ContainerPort), "8081"},
		{"web port", fmt.Sprint(w.Ports[0].ContainerPort), "8080"},
		{"api FACELOGIN_ADDR", ae["FACELOGIN_ADDR"].Value, ":8081"},
		{"web FACELOGIN_ADDR", we["FACELOGIN_ADDR"].Value, ":8080"},
		{"web FACELOGIN_API_URL", we["FACELOGIN_API_URL"].Value, "http://" + fullname + "-api:8081"},
		{"web FACELOGIN_TRUST_PROXY", we["FACELOGIN_TRUST_PROXY"].Value, "true"},
		{"api FACELOGIN_MODELS", ae["FACELOGIN_MODELS"].Value, "/models"},
		{"api FACELOGIN_WORKERS", ae["FACELOGIN_WORKERS"].Value, "2"},
		{"api FACELOGIN_DETECTOR", ae["FACELOGIN_DETECTOR"].Value, "hog"},
		{"api FACELOGIN_REQUIRE_PIN", ae["FACELOGIN_REQUIRE_PIN"].Value, "true"},
		{"api FACELOGIN_LIVENESS", ae["FACELOGIN_LIVENESS"].Value, "true"},
		{"api FACELOGIN_PUBLIC_URL", ae["FACELOGIN_PUBLIC_URL"].Value, "https://face.example.com"},
		{"api FACELOGIN_TRUST_PROXY", ae["FACELOGIN_TRUST_PROXY"].Value, "true"},
		{"api FACELOGIN_KEY_FILE", ae["FACELOGIN_KEY_FILE"].Value, "/run/secrets/facelogin/descriptor-key"},
		{"api FACELOGIN_PIN_PEPPER_FILE", ae["FACELOGIN_PIN_PEPPER_FILE"].Value, "/run/secrets/facelogin/pin-pepper"},
		{"api startup probe", a.StartupProbe.HTTPGet.Path, "/healthz"},
		{"api liveness probe", a.LivenessProbe.HTTPGet.Path, "/healthz"},
		{"api readiness probe", a.ReadinessProbe.HTTPGet.Path, "/readyz"},
		{"web readiness probe", w.ReadinessProbe.HTTPGet.Path, "/readyz"},
		{"api memory request", a.Resources.Requests.Memory().String(), "256Mi"},
		{"api preStop sleep", fmt.Sprint(a.Lifecycle.PreStop.Sleep.Seconds), "10"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.what, tc.got, tc.want)
		}
	}
	db := ae["FACELOGIN_DB"].ValueFrom
	if db == nil || db.SecretKeyRef == nil || db.SecretKeyRef.Key != "db-url" || db.SecretKeyRef.Name != fullname+"-secrets" {
		t.Errorf("FACELOGIN_DB is not read from the chart's Secret: %+v", db)
	}
	if _, ok := we["FACELOGIN_DB"]; ok {
		t.Error("the web container gets the database URL; only the api needs it")
	}
	if budget := a.StartupProbe.PeriodSeconds * a.StartupProbe.FailureThreshold; budget < 60 {
		t.Errorf("api startup probe allows %ds for model loading, want at least 60s", budget)
	}
}

// TestHelmLint runs Helm's own linter, strict, over every preset.
func TestHelmLint(t *testing.T) {
	for _, p := range presets {
		l := helm.Lint{Strict: true}
		findings, err := l.Run(".", withImages(p.values))
		if err != nil || len(findings) > 0 {
			t.Errorf("%s: %v\n%s", p.name, err, strings.Join(findings, "\n"))
		}
	}
}
