package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
