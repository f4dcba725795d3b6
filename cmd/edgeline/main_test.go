package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

func TestUsageErrors(t *testing.T) {
	withPulumiYAML := t.TempDir()
	if err := os.WriteFile(filepath.Join(withPulumiYAML, "Pulumi.yaml"), []byte("name: edgeline\nruntime: go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"no command", nil, nil, exitUsage, "usage: edgeline"},
		{"two commands", []string{"up", "destroy"}, nil, exitUsage, "one command at a time"},
		{"unknown command", []string{"deploy"}, nil, exitUsage, `unknown command "deploy"`},
		{"unknown flag", []string{"--colour", "up"}, nil, exitUsage, "flag provided but not defined: -colour"},
		{"help", []string{"-h"}, nil, exitOK, "usage: edgeline"},
		{"no Pulumi.yaml", []string{"--dir", t.TempDir(), "up"}, nil, exitUsage, "no Pulumi.yaml in"},
		{"no passphrase", []string{"--dir", withPulumiYAML, "preview"},
			map[string]string{"PULUMI_CONFIG_PASSPHRASE": "", "PULUMI_CONFIG_PASSPHRASE_FILE": ""}, exitUsage, "set PULUMI_CONFIG_PASSPHRASE"},
		{"no pulumi CLI", []string{"--dir", withPulumiYAML, "up"},
			map[string]string{"PULUMI_CONFIG_PASSPHRASE": "x", "PATH": t.TempDir()}, exitUsage, "the pulumi CLI is needed on PATH"},
		{"images without a command", []string{"images"}, nil, exitUsage, "usage: edgeline images build"},
		{"images help", []string{"images", "-h"}, nil, exitOK, "usage: edgeline images build"},
		{"images for an unknown architecture", []string{"images", "build", "--arch", "amd64,riscv64"}, nil, exitUsage,
			`edgeline images build: unknown architecture "riscv64": use amd64 or arm64`},
		{"images push without a repository", []string{"images", "push"}, map[string]string{"EDGELINE_IMAGE_REPOSITORY": ""}, exitUsage,
			"edgeline images push: --repository is missing: name the registry and path the images go under"},
		{"images push without a layout", []string{"images", "push", "--repository", "registry.example.org/team", "--layout", t.TempDir()}, nil, exitUsage,
			"is not an OCI layout: build the images first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errb)
			if code != tt.code || !strings.Contains(out.String()+errb.String(), tt.want) {
				t.Errorf("exit %d, output %q; want exit %d saying %q", code, out.String()+errb.String(), tt.code, tt.want)
			}
		})
	}
}

func TestProgressView(t *testing.T) {
	const stack = "urn:pulumi:prod::edgeline::"
	step := func(op apitype.OpType, typ, path, name string, diffs ...string) apitype.StepEventMetadata {
		return apitype.StepEventMetadata{Op: op, URN: stack + path + typ + "::" + name, Type: typ, Provider: "urn:pulumi:prod::edgeline::pulumi:providers:edgeline::edgeline::id", Diffs: diffs}
	}
	ev := func(e apitype.EngineEvent) events.EngineEvent { return events.EngineEvent{EngineEvent: e} }
	server := step(apitype.OpUpdate, "edgeline:index:K3sServer", "edgeline:cluster:Cluster$", "server", "taints", "labels")
	agent := step(apitype.OpCreate, "edgeline:index:K3sAgent", "edgeline:cluster:Cluster$", "agent-pi-1")
	component := step(apitype.OpCreate, "edgeline:cluster:Cluster", "", "cluster")
	component.Provider = ""
	var buf bytes.Buffer
	p := newProgress(&buf, "up")
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.now = func() time.Time { clock = clock.Add(1500 * time.Millisecond); return clock }
	for _, e := range []events.EngineEvent{
		ev(apitype.EngineEvent{ResourcePreEvent: &apitype.ResourcePreEvent{Metadata: component}}),
		ev(apitype.EngineEvent{ResourcePreEvent: &apitype.ResourcePreEvent{Metadata: server}}),
		ev(apitype.EngineEvent{DiagnosticEvent: &apitype.DiagnosticEvent{URN: server.URN, Severity: "info#err", Message: "root@203.0.113.7:22: k3s server vps up to date\n"}}),
		ev(apitype.EngineEvent{ResOutputsEvent: &apitype.ResOutputsEvent{Metadata: server}}),
		ev(apitype.EngineEvent{ResourcePreEvent: &apitype.ResourcePreEvent{Metadata: agent}}),
		ev(apitype.EngineEvent{DiagnosticEvent: &apitype.DiagnosticEvent{URN: agent.URN, Severity: "error", Message: "ssh 10.0.0.21: host key does not match"}}),
		ev(apitype.EngineEvent{ResOpFailedEvent: &apitype.ResOpFailedEvent{Metadata: agent}}),
		ev(apitype.EngineEvent{SummaryEvent: &apitype.SummaryEvent{DurationSeconds: 4, ResourceChanges: map[apitype.OpType]int{apitype.OpUpdate: 1, apitype.OpSame: 12}}}),
	} {
		p.event(e)
	}
	p.summary()
	want := `  ~  K3sServer server: updating [labels taints]
     K3sServer server: root@203.0.113.7:22: k3s server vps up to date
  ok K3sServer server: updated (1.5s)
  +  K3sAgent agent-pi-1: creating
  !! K3sAgent agent-pi-1: ssh 10.0.0.21: host key does not match
up: 1 updated, 12 unchanged in 4s
`
	if got := buf.String(); got != want {
		t.Errorf("progress view:\n%s\nwant:\n%s", got, want)
	}
	if len(p.failures) != 1 || !strings.Contains(p.failures[0], "K3sAgent agent-pi-1: ssh 10.0.0.21") {
		t.Errorf("failures = %q", p.failures)
	}
}
