package stack

import (
	"strings"
	"testing"

	"github.com/edgeline/edgeline/internal/helm"
)

// TestIssuersChart renders infra/charts/issuers, the ClusterIssuers the platform layer
// installs (the e2e test of cmd/edgeline installs it into a real API server).
func TestIssuersChart(t *testing.T) {
	ch, err := helm.Load("../charts/issuers")
	if err != nil {
		t.Fatal(err)
	}
	render := func(values map[string]any) (string, error) {
		r, err := (&helm.Render{Name: "edgeline-issuers", Namespace: "cert-manager"}).Run(ch, values)
		if err != nil {
			return "", err
		}
		return r.String(), nil
	}

	out, err := render(map[string]any{"email": "ops@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: letsencrypt-staging", "server: https://acme-staging-v02.api.letsencrypt.org/directory",
		"name: letsencrypt-prod", "server: https://acme-v02.api.letsencrypt.org/directory", `email: "ops@example.org"`, "ingressClassName: traefik"} {
		if !strings.Contains(out, want) {
			t.Errorf("issuers lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "dns01") || strings.Contains(out, "kind: Secret") {
		t.Errorf("DNS-01 rendered without a token:\n%s", out)
	}

	out, err = render(map[string]any{"email": "ops@example.org", "dns01": map[string]any{"cloudflare": map[string]any{"apiToken": "cf-token", "zone": "example.org"}}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "apiTokenSecretRef") != 2 || !strings.Contains(out, `dnsZones: ["example.org"]`) || !strings.Contains(out, `api-token: "cf-token"`) {
		t.Errorf("DNS-01 solver missing:\n%s", out)
	}

	if _, err := render(map[string]any{}); err == nil || !strings.Contains(err.Error(), "email is required") {
		t.Errorf("no email: %v", err)
	}
}

func TestProgramDNS01(t *testing.T) {
	cfg := baseConfig(t)
	cfg["edgeline:cloudflareApiToken"] = "cf-secret-token"
	m, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := m.find(t, typeHelmRelease, "edgeline-issuers").inputs["values"]
	if !v.IsSecret() || !strings.Contains(secretText(v), `"apiToken":"cf-secret-token"`) || !strings.Contains(secretText(v), `"zone":"example.org"`) {
		t.Errorf("issuers values: secret %v: %s", v.IsSecret(), secretText(v))
	}
}
