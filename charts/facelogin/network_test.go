package facelogin_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// TestAPIReachableOnlyThroughWeb checks, on the rendered objects of every preset, what
// makes the api's trust in X-Forwarded-For safe (docs/security.md): its NetworkPolicy lets
// in the web pods alone, on 8081; no Ingress, HTTPRoute or node port leads to the api; the
// api trusts the header exactly when that policy exists; and web trusts the ingress's entry
// only when an ingress is in front of it.
func TestAPIReachableOnlyThroughWeb(t *testing.T) {
	web := map[string]string{"app.kubernetes.io/name": "facelogin", "app.kubernetes.io/instance": release, "app.kubernetes.io/component": "web"}
	api := map[string]string{"app.kubernetes.io/name": "facelogin", "app.kubernetes.io/instance": release, "app.kubernetes.io/component": "api"}
	for _, p := range presets {
		t.Run(p.name, func(t *testing.T) {
			out := render(t, p.values, p.apis...)
			var policy *networkingv1.NetworkPolicy
			for _, obj := range decode(t, out) {
				switch o := obj.(type) {
				case *networkingv1.NetworkPolicy:
					if o.Name == fullname+"-api" {
						policy = o
					}
				case *networkingv1.Ingress:
					for _, rule := range o.Spec.Rules {
						for _, path := range rule.HTTP.Paths {
							if svc := path.Backend.Service; svc == nil || svc.Name != fullname+"-web" {
								t.Errorf("Ingress path %s leads to %+v, want the web Service", path.Path, path.Backend)
							}
						}
					}
				case *corev1.Service:
					if maps.Equal(o.Spec.Selector, api) && o.Spec.Type != corev1.ServiceTypeClusterIP {
						t.Errorf("Service %s exposes the api as %s", o.Name, o.Spec.Type)
					}
				}
			}
			for _, o := range out.Objects {
				if !strings.Contains(o.YAML, "kind: HTTPRoute") {
					continue
				}
				var route struct {
					Spec struct {
						Rules []struct {
							BackendRefs []struct{ Name string } `json:"backendRefs"`
						}
					}
				}
				if err := yaml.Unmarshal([]byte(o.YAML), &route); err != nil {
					t.Fatal(err)
				}
				for _, r := range route.Spec.Rules {
					for _, b := range r.BackendRefs {
						if b.Name != fullname+"-web" {
							t.Errorf("HTTPRoute leads to %s, want only the web Service", b.Name)
						}
					}
				}
			}
			if policy == nil {
				t.Fatal("no NetworkPolicy for the api")
			}
			if !maps.Equal(policy.Spec.PodSelector.MatchLabels, api) || !slices.Contains(policy.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
				t.Fatalf("api NetworkPolicy selects %v with types %v", policy.Spec.PodSelector.MatchLabels, policy.Spec.PolicyTypes)
			}
			if len(policy.Spec.Ingress) != 1 || len(policy.Spec.Ingress[0].From) != 1 {
				t.Fatalf("api NetworkPolicy ingress %+v, want one rule with one peer", policy.Spec.Ingress)
			}
			rule := policy.Spec.Ingress[0]
			peer := rule.From[0]
			if peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector == nil ||
				!maps.Equal(peer.PodSelector.MatchLabels, web) || len(peer.PodSelector.MatchExpressions) > 0 {
				t.Errorf("the api lets in %+v, want the web pods alone", peer)
			}
			if len(rule.Ports) != 1 || rule.Ports[0].Port.IntValue() != 8081 || *rule.Ports[0].Protocol != corev1.ProtocolTCP {
				t.Errorf("the api lets in on %+v, want 8081/TCP alone", rule.Ports)
			}

			specs := podSpecs(t, out)
			env := func(name string) string {
				for _, e := range specs[name].Containers[0].Env {
					if e.Name == "FACELOGIN_TRUST_PROXY" {
						return e.Value
					}
				}
				return ""
			}
			if got := env(fullname + "-api"); got != "true" {
				t.Errorf("api FACELOGIN_TRUST_PROXY %q, want true behind its NetworkPolicy", got)
			}
			ingress := strings.Contains(out.String(), "kind: Ingress") || strings.Contains(out.String(), "kind: HTTPRoute")
			nodePort := strings.Contains(out.String(), "type: NodePort")
			if got, want := env(fullname+"-web") == "true", ingress && !nodePort; got != want {
				t.Errorf("web trusts X-Forwarded-For: %v, want %v (ingress %v, node port %v)", got, want, ingress, nodePort)
			}
		})
	}

	// Without the NetworkPolicy the api may trust nothing: rendering fails unless told so.
	out := render(t, map[string]any{"host": "face.example.com", "networkPolicy": map[string]any{"enabled": false},
		"api": map[string]any{"trustProxy": false}})
	for _, c := range podSpecs(t, out)[fullname+"-api"].Containers {
		for _, e := range c.Env {
			if e.Name == "FACELOGIN_TRUST_PROXY" {
				t.Errorf("api.trustProxy=false still sets %s=%s", e.Name, e.Value)
			}
		}
	}
}
