package facelogin_test

import (
	"io"
	"strings"
	"testing"

	"github.com/edgeline/edgeline/apps/facelogin/config"
	corev1 "k8s.io/api/core/v1"
)

// TestAppAcceptsTheChartsSettings feeds each container's args and
// environment, as the chart renders them, to the app's own configuration
// parser, and likewise the first-admin command NOTES.txt prints.
func TestAppAcceptsTheChartsSettings(t *testing.T) {
	out := render(t, presets[0].values)
	specs := podSpecs(t, out)
	getenv := func(c corev1.Container) func(string) string {
		env := map[string]string{}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom == nil:
				env[e.Name] = e.Value
			case e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Key == "db-url":
				env[e.Name] = "postgres://facelogin:secret@" + fullname + "-postgresql:5432/facelogin?sslmode=disable"
			default:
				t.Fatalf("%s: env %s from an unexpected source", c.Name, e.Name)
			}
		}
		return func(k string) string { return env[k] }
	}

	api := specs[fullname+"-api"].Containers[0]
	cfg, err := config.Parse(api.Args, getenv(api), io.Discard)
	if err != nil {
		t.Fatalf("facelogin %v refuses the chart's settings: %v", api.Args, err)
	}
	if cfg.Command != config.API || cfg.Addr != ":8081" || cfg.Models != "/models" || cfg.Workers != 2 || cfg.CNN ||
		!cfg.RequirePIN || !cfg.TrustProxy || cfg.PublicURL != "https://face.example.com" ||
		cfg.KeyFile != "/run/secrets/facelogin/descriptor-key" || cfg.PepperFile != "/run/secrets/facelogin/pin-pepper" ||
		!strings.HasPrefix(cfg.DB, "postgres://") || cfg.InsecureCookies {
		t.Errorf("api config from the chart = %+v", cfg)
	}

	web := specs[fullname+"-web"].Containers[0]
	cfg, err = config.Parse(web.Args, getenv(web), io.Discard)
	if err != nil {
		t.Fatalf("facelogin %v refuses the chart's settings: %v", web.Args, err)
	}
	if cfg.Command != config.Web || cfg.Addr != ":8080" || cfg.APIURL != "http://"+fullname+"-api:8081" {
		t.Errorf("web config from the chart = %+v", cfg)
	}

	// The command NOTES.txt tells the operator to run in the api container.
	_, cmd, ok := strings.Cut(out.Notes, "exec deploy/"+fullname+"-api -- facelogin ")
	if !ok {
		t.Fatalf("NOTES.txt has no first-admin command:\n%s", out.Notes)
	}
	cmd, _, _ = strings.Cut(cmd, "\n")
	args := shellFields(cmd)
	cfg, err = config.Parse(args, getenv(api), io.Discard)
	if err != nil {
		t.Fatalf("facelogin %s: %v", cmd, err)
	}
	if cfg.Command != config.Invite || cfg.Role != "admin" || cfg.Email != "you@example.com" || cfg.Name != "Your Name" ||
		!strings.HasPrefix(cfg.DB, "postgres://") || cfg.PublicURL != "https://face.example.com" {
		t.Errorf("invite config = %+v; want an admin invite on the release's database with its public URL", cfg)
	}
}

// shellFields splits a command line on spaces, keeping "double quoted" words.
func shellFields(s string) []string {
	var out []string
	for i, part := range strings.Split(s, `"`) {
		if i%2 == 1 {
			out = append(out, part)
			continue
		}
		out = append(out, strings.Fields(part)...)
	}
	return out
}
