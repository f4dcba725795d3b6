package helm_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/edgeline/edgeline/internal/helm"
	"github.com/edgeline/edgeline/internal/kubetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

func TestRender(t *testing.T) {
	ch, err := helm.Load("testdata/hello")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Name() != "hello" || ch.Version() != "1.0.0" {
		t.Errorf("chart metadata = %s %s", ch.Name(), ch.Version())
	}
	r := helm.Render{Name: "greet", Namespace: "ns1"}
	out, err := r.Run(ch, map[string]any{"message": "servus"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Objects) != 2 {
		t.Fatalf("got %d objects, want 2:\n%s", len(out.Objects), out)
	}
	var cm helm.Object
	for _, o := range out.Objects {
		if strings.Contains(o.YAML, "kind: ConfigMap") {
			cm = o
		}
	}
	if cm.Source != "hello/templates/configmap.yaml" || !strings.Contains(cm.YAML, `message: "servus"`) || !strings.Contains(cm.YAML, "name: greet-hello") {
		t.Errorf("configmap = %+v", cm)
	}
	if out.Notes != "greet says servus.\n" {
		t.Errorf("notes = %q", out.Notes)
	}
	if s := out.String(); !strings.Contains(s, "---\n# Source: hello/templates/configmap.yaml\n") {
		t.Errorf("String() lacks helm template's source comments:\n%s", s)
	}

	_, err = r.Run(ch, map[string]any{"message": ""})
	if err == nil || !strings.Contains(err.Error(), "/message") {
		t.Errorf("empty message: err = %v, want the schema's complaint about /message", err)
	}
}

func TestNewConfigurationRefusesBadInput(t *testing.T) {
	if _, err := helm.NewConfiguration([]byte("not: [a kubeconfig"), "ns", nil); err == nil {
		t.Error("garbage kubeconfig accepted")
	}
	if _, err := helm.NewConfiguration(nil, "", nil); err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("empty namespace: err = %v", err)
	}
}

// TestLifecycle installs, re-installs, upgrades and uninstalls a release in
// a real apiserver; a re-install with unchanged chart and values must not
// record a revision, and values read back through lookup stay put.
func TestLifecycle(t *testing.T) {
	c := kubetest.Get(t)
	ctx := t.Context()
	const ns = "helm-lifecycle"
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := helm.NewConfiguration(c.KubeconfigData, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := helm.Load("testdata/hello")
	if err != nil {
		t.Fatal(err)
	}
	token := func() string {
		s, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "greet-token", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return string(s.Data["token"])
	}

	if _, err := helm.NewStatus(cfg).Run("greet"); !errors.Is(err, helm.ErrNotFound) {
		t.Fatalf("status before install: %v, want ErrNotFound", err)
	}
	in := helm.NewInstall(cfg)
	in.Name, in.Wait = "greet", true
	steps := []struct {
		name     string
		values   map[string]any
		revision int
		changed  bool
	}{
		{"install", map[string]any{"message": "hi"}, 1, true},
		{"same values again", map[string]any{"message": "hi"}, 1, false},
		{"new values", map[string]any{"message": "moin"}, 2, true},
		{"chart defaults", nil, 3, true},
		{"chart defaults again", map[string]any{}, 3, false},
	}
	var first string
	for _, s := range steps {
		rel, err := in.Run(ctx, ch, s.values)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if rel.Revision != s.revision || rel.Changed != s.changed || rel.Status != "deployed" {
			t.Errorf("%s: revision %d changed %v status %s; want revision %d changed %v deployed",
				s.name, rel.Revision, rel.Changed, rel.Status, s.revision, s.changed)
		}
		if first == "" {
			first = token()
		} else if got := token(); got != first {
			t.Errorf("%s: generated token changed", s.name)
		}
	}
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "greet-hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["message"] != "hello" {
		t.Errorf("configmap message = %q, want the chart default", cm.Data["message"])
	}

	up := helm.NewUpgrade(cfg)
	rel, err := up.Run(ctx, "greet", ch, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Changed || rel.Revision != 3 {
		t.Errorf("upgrade with nothing new: changed %v revision %d", rel.Changed, rel.Revision)
	}
	hist, err := helm.NewHistory(cfg).Run("greet")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].Revision != 1 || hist[2].Status != "deployed" || hist[0].Status != "superseded" {
		t.Errorf("history = %+v", hist)
	}

	keep := helm.NewUninstall(cfg)
	keep.KeepHistory = true
	if err := keep.Run(ctx, "greet"); err != nil {
		t.Fatal(err)
	}
	if st, err := helm.NewStatus(cfg).Run("greet"); err != nil || st.Status != "uninstalled" {
		t.Fatalf("status after uninstall keeping history: %+v, %v", st, err)
	}
	rel, err = in.Run(ctx, ch, nil)
	if err != nil {
		t.Fatalf("install over a kept, uninstalled release: %v", err)
	}
	if !rel.Changed || rel.Revision != 4 || rel.Status != "deployed" {
		t.Errorf("reinstall: changed %v revision %d status %s; want deployed revision 4", rel.Changed, rel.Revision, rel.Status)
	}

	if err := helm.NewUninstall(cfg).Run(ctx, "greet"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "greet-hello", metav1.GetOptions{}); err == nil {
		t.Error("configmap survived uninstall")
	}
	if _, err := helm.NewHistory(cfg).Run("greet"); !errors.Is(err, helm.ErrNotFound) {
		t.Errorf("history after uninstall: %v, want ErrNotFound", err)
	}
	un := helm.NewUninstall(cfg)
	un.IgnoreNotFound = true
	if err := un.Run(ctx, "greet"); err != nil {
		t.Errorf("uninstalling a missing release with IgnoreNotFound: %v", err)
	}
}

func TestLint(t *testing.T) {
	l := helm.Lint{Strict: true}
	if findings, err := l.Run("testdata/hello", nil); err != nil || len(findings) > 0 {
		t.Errorf("clean chart: findings %v, err %v", findings, err)
	}
	if _, err := l.Run("testdata/hello", map[string]any{"message": ""}); err == nil || !strings.Contains(err.Error(), "/message") {
		t.Errorf("bad values: err = %v, want the schema's complaint about /message", err)
	}
	if _, err := l.Run("testdata/missing", nil); err == nil {
		t.Error("a missing chart passed lint")
	}
}
