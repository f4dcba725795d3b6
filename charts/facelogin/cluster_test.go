package facelogin_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/edgeline/edgeline/internal/helm"
	"github.com/edgeline/edgeline/internal/kubetest"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// newNamespace creates a namespace that enforces the "restricted" Pod
// Security Standard, so the apiserver itself rejects any pod of the chart
// that is not locked down. It is deleted when the test ends.
func newNamespace(t *testing.T, c *kubetest.Cluster, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}}
	if _, err := c.Client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func helmConfig(t *testing.T, c *kubetest.Cluster, ns string) *helm.Configuration {
	t.Helper()
	cfg, err := helm.NewConfiguration(c.KubeconfigData, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestServerAcceptsEveryObject applies every rendered object of every preset
// (hooks included) to the real apiserver as a server-side dry run: schema
// validation, defaulting, admission (Pod Security "restricted") all run.
func TestServerAcceptsEveryObject(t *testing.T) {
	c := kubetest.Get(t)
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Client.Discovery()))
	for _, p := range presets {
		t.Run(p.name, func(t *testing.T) {
			ns := "accept-" + p.name
			newNamespace(t, c, ns)
			out := render(t, p.values, p.apis...)
			for _, o := range out.Objects {
				var u unstructured.Unstructured
				if err := yaml.Unmarshal([]byte(o.YAML), &u.Object); err != nil {
					t.Fatalf("%s: %v", o.Source, err)
				}
				gvk := u.GroupVersionKind()
				m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				if meta.IsNoMatchError(err) {
					t.Fatalf("%s: the control plane does not serve %s: run `make kube`, which puts its CRD into the tool cache", o.Source, gvk)
				}
				if err != nil {
					t.Fatalf("%s: %v", o.Source, err)
				}
				var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
				if m.Scope.Name() == meta.RESTScopeNameNamespace {
					ri = dyn.Resource(m.Resource).Namespace(ns)
				}
				_, err = ri.Apply(t.Context(), u.GetName(), &u, metav1.ApplyOptions{
					FieldManager: "chart-test", Force: true, DryRun: []string{metav1.DryRunAll},
				})
				if err != nil {
					t.Errorf("apiserver refused %s %s (%s): %v", gvk.Kind, u.GetName(), o.Source, err)
				}
			}
		})
	}
}

// TestInstallUpgradeUninstall drives a release through internal/helm:
// install (waiting for the workloads kwok runs), a repeated install that must
// change nothing, an upgrade that must keep the generated secrets, uninstall.
func TestInstallUpgradeUninstall(t *testing.T) {
	c := kubetest.Get(t)
	ctx := t.Context()
	const ns = "lifecycle"
	newNamespace(t, c, ns)
	// No storage provisioner runs here: a pre-made volume for the
	// PostgreSQL claim, bound by the real PV controller.
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "lifecycle-postgresql"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/facelogin-test"}},
		},
	}
	if _, err := c.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})

	cfg := helmConfig(t, c, ns)
	ch := loadChart(t)
	values := map[string]any{"host": "face.example.com"}

	in := helm.NewInstall(cfg)
	in.Name, in.Wait, in.Timeout = release, true, 2*time.Minute
	rel, err := in.Run(ctx, ch, withImages(values))
	if err != nil {
		t.Fatal(err)
	}
	if !rel.Changed || rel.Revision != 1 || rel.Status != "deployed" || rel.Chart != "facelogin-0.1.0" {
		t.Fatalf("install: changed %v, revision %d, status %q, chart %q; want a new deployed revision 1 of facelogin-0.1.0",
			rel.Changed, rel.Revision, rel.Status, rel.Chart)
	}
	if !strings.Contains(rel.Notes, "facelogin admin invite --role admin") || !strings.Contains(rel.Notes, "https://face.example.com") {
		t.Errorf("NOTES lack the URL or the first-admin command:\n%s", rel.Notes)
	}
	if _, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "sh.helm.release.v1."+release+".v1", metav1.GetOptions{}); err != nil {
		t.Errorf("release record: %v", err)
	}
	secrets := func() map[string][]byte {
		s, err := c.Client.CoreV1().Secrets(ns).Get(ctx, fullname+"-secrets", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Data
	}
	generated := secrets()
	checkGenerated(t, generated)

	t.Run("autoscaler and disruption budgets", func(t *testing.T) {
		checkHPAAndPDBs(t, c, ns)
	})

	again, err := in.Run(ctx, ch, withImages(map[string]any{"host": "face.example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	if again.Changed || again.Revision != 1 {
		t.Errorf("second install with the same values: changed %v, revision %d; want no new revision", again.Changed, again.Revision)
	}

	up := helm.NewUpgrade(cfg)
	up.Wait, up.Timeout = true, 2*time.Minute
	rel, err = up.Run(ctx, release, ch, withImages(map[string]any{"host": "face.example.com", "web": map[string]any{"replicas": 3}}))
	if err != nil {
		t.Fatal(err)
	}
	if !rel.Changed || rel.Revision != 2 {
		t.Errorf("upgrade: changed %v, revision %d; want revision 2", rel.Changed, rel.Revision)
	}
	if !maps.EqualFunc(secrets(), generated, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Error("the upgrade changed the generated secrets; they must be kept")
	}
	web, err := c.Client.AppsV1().Deployments(ns).Get(ctx, fullname+"-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *web.Spec.Replicas != 3 || web.Status.AvailableReplicas != 3 {
		t.Errorf("web after upgrade: %d replicas, %d available; want 3 and 3", *web.Spec.Replicas, web.Status.AvailableReplicas)
	}
	hist, err := helm.NewHistory(cfg).Run(release)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, r := range hist {
		statuses = append(statuses, r.Status)
	}
	if strings.Join(statuses, ",") != "superseded,deployed" {
		t.Errorf("history = %v, want [superseded deployed]", statuses)
	}

	un := helm.NewUninstall(cfg)
	un.Wait, un.Timeout = true, time.Minute
	if err := un.Run(ctx, release); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Get(ctx, fullname+"-api", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("api Deployment after uninstall: %v, want not found", err)
	}
	if _, err := helm.NewStatus(cfg).Run(release); !errors.Is(err, helm.ErrNotFound) {
		t.Errorf("status after uninstall: %v, want ErrNotFound", err)
	}
	if got := secrets(); !maps.EqualFunc(got, generated, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Error("uninstall removed or changed the generated secrets; the descriptor key must outlive the release")
	}
}

// checkHPAAndPDBs checks that the autoscaler targets the api Deployment on
// CPU and that the real disruption controller finds the pods each budget
// selects.
func checkHPAAndPDBs(t *testing.T, c *kubetest.Cluster, ns string) {
	ctx := t.Context()
	hpa, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, fullname+"-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := hpa.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.Name != fullname+"-api" || ref.APIVersion != "apps/v1" {
		t.Errorf("HPA targets %s %s (%s), want Deployment %s-api", ref.Kind, ref.Name, ref.APIVersion, fullname)
	}
	if *hpa.Spec.MinReplicas != 2 || hpa.Spec.MaxReplicas != 4 {
		t.Errorf("HPA bounds %d..%d, want 2..4", *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU ||
		hpa.Spec.Metrics[0].Resource.Target.Type != autoscalingv2.UtilizationMetricType || *hpa.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 {
		t.Errorf("HPA metrics = %+v, want CPU utilization 70%%", hpa.Spec.Metrics)
	}
	// The real HPA controller brings the api up to minReplicas (the chart
	// leaves replicas to it); no metrics server runs, so it goes no further.
	err = poll(ctx, 60*time.Second, func() bool {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, fullname+"-api", metav1.GetOptions{})
		return err == nil && d.Spec.Replicas != nil && *d.Spec.Replicas == 2 && d.Status.ReadyReplicas == 2
	})
	if err != nil {
		t.Errorf("the HPA did not scale the api to its 2 minimum replicas: %v", err)
	}
	for _, comp := range []string{"api", "web"} {
		pdb, err := c.Client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, fullname+"-"+comp, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Labels["app.kubernetes.io/component"] != comp {
				t.Errorf("%s PDB selects pod %s of component %q", comp, p.Name, p.Labels["app.kubernetes.io/component"])
			}
		}
		if len(pods.Items) == 0 {
			t.Errorf("%s PDB selects no pods", comp)
			continue
		}
		// The disruption controller counts the pods it protects.
		err = poll(ctx, 30*time.Second, func() bool {
			pdb, err = c.Client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, fullname+"-"+comp, metav1.GetOptions{})
			return err == nil && pdb.Status.ExpectedPods == int32(len(pods.Items)) && pdb.Status.ObservedGeneration == pdb.Generation
		})
		if err != nil {
			t.Errorf("%s PDB: controller expects %d pods, %d selected; allowed disruptions %d", comp,
				pdb.Status.ExpectedPods, len(pods.Items), pdb.Status.DisruptionsAllowed)
		}
	}
}

// placementValues are values for a placement scenario: an external database
// (no volume needed) and fixed replica counts.
func placementValues(apiPreset string, apiReplicas int, webPreset string) map[string]any {
	return externalDB(map[string]any{
		"api": map[string]any{
			"placement":   map[string]any{"preset": apiPreset},
			"autoscaling": map[string]any{"enabled": false},
			"replicas":    apiReplicas,
		},
		"web": map[string]any{
			"placement": map[string]any{"preset": webPreset},
			"replicas":  1,
		},
	})
}

// TestPlacement lets the real scheduler place the chart's pods for each
// preset, with the edge node free, full, or the cloud node full or
// cordoned. Scenarios run one after another: they change the shared nodes.
func TestPlacement(t *testing.T) {
	c := kubetest.Get(t)
	api := func(ns string) string { return selector(ns, "api") }
	web := func(ns string) string { return selector(ns, "web") }

	t.Run("cloud-only never lands on the edge", func(t *testing.T) {
		ns := install(t, c, "place-cloud", placementValues("cloud-only", 3, "cloud-only"))
		for _, p := range waitPods(t, c, ns, api(ns), 3, kubetest.PodReady) {
			onNode(t, p, kubetest.CloudNode)
		}
		onNode(t, waitPods(t, c, ns, web(ns), 1, kubetest.PodReady)[0], kubetest.CloudNode)
	})

	t.Run("edge-preferred lands on the pi", func(t *testing.T) {
		ns := install(t, c, "place-edge", placementValues("edge-preferred", 1, "cloud-only"))
		onNode(t, waitPods(t, c, ns, api(ns), 1, kubetest.PodReady)[0], kubetest.EdgeNode)
		onNode(t, waitPods(t, c, ns, web(ns), 1, kubetest.PodReady)[0], kubetest.CloudNode)
	})

	t.Run("edge-preferred falls back to the vps when the pi is full", func(t *testing.T) {
		fill(t, c, kubetest.EdgeNode)
		ns := install(t, c, "place-edge-full", placementValues("edge-preferred", 1, "cloud-only"))
		onNode(t, waitPods(t, c, ns, api(ns), 1, kubetest.PodReady)[0], kubetest.CloudNode)
	})

	t.Run("cloud-only waits when the vps is full, then lands on it", func(t *testing.T) {
		free := fill(t, c, kubetest.CloudNode)
		ns := install(t, c, "place-cloud-full", placementValues("cloud-only", 1, "cloud-only"))
		p := waitPods(t, c, ns, api(ns), 1, kubetest.PodUnschedulable)[0]
		pending(t, p, "Insufficient cpu", "untolerated taint")
		free()
		onNode(t, waitPods(t, c, ns, api(ns), 1, kubetest.PodReady)[0], kubetest.CloudNode)
	})

	t.Run("vps cordoned: anywhere moves to the pi, cloud-only waits", func(t *testing.T) {
		cordon(t, c, kubetest.CloudNode)
		ns := install(t, c, "place-cordon", placementValues("anywhere", 1, "cloud-only"))
		onNode(t, waitPods(t, c, ns, api(ns), 1, kubetest.PodReady)[0], kubetest.EdgeNode)
		pending(t, waitPods(t, c, ns, web(ns), 1, kubetest.PodUnschedulable)[0], "were unschedulable", "untolerated taint")
	})

	t.Run("cloud-only keeps off the edge even when told to tolerate it", func(t *testing.T) {
		fill(t, c, kubetest.CloudNode)
		values := placementValues("cloud-only", 1, "cloud-only")
		values["api"].(map[string]any)["tolerations"] = []any{
			map[string]any{"key": kubetest.EdgeTaintKey, "operator": "Exists", "effect": "NoSchedule"},
		}
		ns := install(t, c, "place-cloud-tolerant", values)
		pending(t, waitPods(t, c, ns, api(ns), 1, kubetest.PodUnschedulable)[0], "Insufficient cpu", "node affinity")
	})
}

func selector(ns, component string) string {
	return labels.Set{"app.kubernetes.io/instance": ns, "app.kubernetes.io/component": component}.String()
}

// install installs the chart as release ns into namespace ns without
// waiting (some scenarios expect pods to stay Pending) and removes it, and
// its pods, when the test ends.
func install(t *testing.T, c *kubetest.Cluster, ns string, values map[string]any) string {
	t.Helper()
	newNamespace(t, c, ns)
	cfg := helmConfig(t, c, ns)
	in := helm.NewInstall(cfg)
	in.Name = ns
	if _, err := in.Run(t.Context(), loadChart(t), withImages(values)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		un := helm.NewUninstall(cfg)
		un.Wait, un.Timeout = true, time.Minute
		if err := un.Run(ctx, ns); err != nil {
			t.Error(err)
		}
		// Later scenarios count on the nodes being free again.
		if _, err := kubetest.WaitPods(ctx, c.Client, ns, "", 0, time.Minute, kubetest.PodSettled); err != nil {
			t.Error(err)
		}
	})
	return ns
}

func waitPods(t *testing.T, c *kubetest.Cluster, ns, sel string, n int, cond func(*corev1.Pod) bool) []corev1.Pod {
	t.Helper()
	pods, err := kubetest.WaitPods(t.Context(), c.Client, ns, sel, n, time.Minute, cond)
	if err != nil {
		for _, p := range pods {
			t.Logf("pod %s: node %q, scheduler: %q", p.Name, p.Spec.NodeName, kubetest.ScheduleMessage(&p))
		}
		t.Fatal(err)
	}
	return pods
}

func onNode(t *testing.T, p corev1.Pod, node string) {
	t.Helper()
	if p.Spec.NodeName != node {
		t.Errorf("pod %s is on %q, want %s", p.Name, p.Spec.NodeName, node)
	}
}

// pending checks that p is unscheduled and the scheduler's message names
// every reason in want ("0/2 nodes are available: 1 Insufficient cpu, 1
// node(s) didn't match Pod's node affinity/selector").
func pending(t *testing.T, p corev1.Pod, want ...string) {
	t.Helper()
	if p.Spec.NodeName != "" {
		t.Fatalf("pod %s was placed on %s, want it Pending", p.Name, p.Spec.NodeName)
	}
	msg := kubetest.ScheduleMessage(&p)
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("scheduler message %q does not mention %q", msg, w)
		}
	}
}

// fill binds a pod that takes 3800m of the node's 4 CPUs straight to node
// (bypassing the scheduler, as a static pod would). The returned func frees
// the node early; otherwise it is freed when the test ends.
func fill(t *testing.T, c *kubetest.Cluster, node string) func() {
	t.Helper()
	ctx := t.Context()
	const ns = "default"
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "filler-" + node},
		Spec: corev1.PodSpec{
			NodeName:    node,
			Tolerations: []corev1.Toleration{{Key: kubetest.EdgeTaintKey, Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{Name: "filler", Image: "registry.k8s.io/pause:3.10",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3800m")}}}},
		},
	}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kubetest.WaitPod(ctx, c.Client, ns, p.Name, 30*time.Second, kubetest.PodReady); err != nil {
		t.Fatal(err)
	}
	done := false
	free := func() {
		if done {
			return
		}
		done = true
		ctx := context.Background()
		zero := int64(0)
		_ = c.Client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		_ = poll(ctx, 30*time.Second, func() bool {
			_, err := c.Client.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
	}
	t.Cleanup(free)
	return free
}

// cordon marks node unschedulable until the test ends.
func cordon(t *testing.T, c *kubetest.Cluster, node string) {
	t.Helper()
	set := func(ctx context.Context, v bool) error {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Spec.Unschedulable = v
		_, err = c.Client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	}
	if err := set(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := set(context.Background(), false); err != nil {
			t.Error(err)
		}
	})
}

func poll(ctx context.Context, timeout time.Duration, f func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !f() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
