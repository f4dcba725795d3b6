package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/terraform-exec/tfexec"
	"golang.org/x/crypto/ssh"
)

// Terraform builds the VPS by applying a Terraform module (infra/terraform: the official
// hcloud provider) with terraform or OpenTofu through terraform-exec. The module takes
// the variables name, server_type, location, image, ssh_public_key, ssh_key_fingerprint,
// user_data, zone, hostnames, dns_provider ("hetzner", "cloudflare", or "none" without a
// zone), cloudflare_zone_id, ssh_source_cidrs and api_source_cidrs, and outputs server_id, ipv4, ipv6 and dns_names.
//
// The Terraform state travels in Outputs.State, so it lives in the Pulumi stack's state
// (encrypted as a secret) and no state file is left on the workstation.
type Terraform struct {
	// Binary is the terraform or tofu executable.
	Binary string
	// Module is the directory of the module.
	Module string
	// Log receives terraform's output; nil discards it.
	Log io.Writer
}

const stateFile = "terraform.tfstate"

// workdir copies the module and the previous state into a fresh directory and runs
// terraform init there.
func (t *Terraform) workdir(ctx context.Context, spec Spec, state string) (*tfexec.Terraform, string, func(), error) {
	if t.Binary == "" {
		return nil, "", nil, errors.New("terraform: no terraform or tofu binary configured")
	}
	dir, err := os.MkdirTemp("", "edgeline-terraform-")
	if err != nil {
		return nil, "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	fail := func(err error) (*tfexec.Terraform, string, func(), error) { cleanup(); return nil, "", nil, err }
	entries, err := os.ReadDir(t.Module)
	if err != nil {
		return fail(fmt.Errorf("terraform module: %w", err))
	}
	copied := 0
	for _, e := range entries {
		n := e.Name()
		if !(strings.HasSuffix(n, ".tf") || strings.HasSuffix(n, ".tf.json") || n == ".terraform.lock.hcl") {
			continue
		}
		// Files only, symbolic links to files included (a module may share a file).
		if fi, err := os.Stat(filepath.Join(t.Module, n)); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(t.Module, n))
		if err != nil {
			return fail(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			return fail(err)
		}
		copied++
	}
	if copied == 0 {
		return fail(fmt.Errorf("terraform module %s has no .tf files", t.Module))
	}
	if state != "" {
		if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(state), 0o600); err != nil {
			return fail(err)
		}
	}
	userData, err := UserData(spec)
	if err != nil {
		return fail(err)
	}
	hostnames := sortedNames(spec.Hostnames)
	if hostnames == nil {
		hostnames = []string{}
	}
	dnsProvider := spec.DNSProvider
	switch {
	case spec.Zone == "":
		dnsProvider = "none"
	case dnsProvider == "":
		dnsProvider = "hetzner"
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(spec.SSHPublicKey))
	if err != nil {
		return fail(fmt.Errorf("cloud: SSH public key is not an authorized_keys line: %w", err))
	}
	vars, err := json.Marshal(map[string]any{
		"ssh_key_fingerprint": ssh.FingerprintLegacyMD5(pub),
		"dns_provider":        dnsProvider, "cloudflare_zone_id": spec.CloudflareZoneID,
		"name": spec.Name, "server_type": spec.ServerType, "location": spec.Location, "image": spec.Image,
		"ssh_public_key": spec.SSHPublicKey, "user_data": userData, "zone": spec.Zone, "hostnames": hostnames,
		"ssh_source_cidrs": spec.SSHSources, "api_source_cidrs": spec.APISources,
	})
	if err != nil {
		return fail(err)
	}
	// Variables go in a file, not on the command line: user_data holds the host key.
	if err := os.WriteFile(filepath.Join(dir, "edgeline.auto.tfvars.json"), vars, 0o600); err != nil {
		return fail(err)
	}
	tf, err := tfexec.NewTerraform(dir, t.Binary)
	if err != nil {
		return fail(fmt.Errorf("terraform: %w", err))
	}
	if t.Log != nil {
		tf.SetStdout(t.Log)
		tf.SetStderr(t.Log)
	}
	if err := tf.Init(ctx, tfexec.Upgrade(false)); err != nil {
		return fail(fmt.Errorf("terraform init: %w", err))
	}
	return tf, dir, cleanup, nil
}

// Apply runs terraform apply and returns the module's outputs and the new state.
func (t *Terraform) Apply(ctx context.Context, spec Spec, prev *Outputs) (Outputs, error) {
	if err := spec.validateNew(); err != nil {
		return Outputs{}, err
	}
	_, fingerprint, err := HostPublicKey(spec.HostKey)
	if err != nil {
		return Outputs{}, err
	}
	state := ""
	if prev != nil {
		state = prev.State
	}
	tf, dir, cleanup, err := t.workdir(ctx, spec, state)
	if err != nil {
		return Outputs{}, err
	}
	defer cleanup()
	applyErr := tf.Apply(ctx)
	// Keep whatever state apply wrote, even after a failure, so nothing it made is lost.
	newState, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil && applyErr == nil {
		return Outputs{}, fmt.Errorf("terraform apply left no state: %w", err)
	}
	if applyErr != nil {
		return Outputs{State: string(newState)}, fmt.Errorf("terraform apply: %w", applyErr)
	}
	out, err := t.outputs(ctx, tf)
	if err != nil {
		return Outputs{State: string(newState)}, err
	}
	out.HostKeyFingerprint = fingerprint
	out.State = string(newState)
	return out, nil
}

func (t *Terraform) outputs(ctx context.Context, tf *tfexec.Terraform) (Outputs, error) {
	raw, err := tf.Output(ctx)
	if err != nil {
		return Outputs{}, fmt.Errorf("terraform output: %w", err)
	}
	var out Outputs
	for name, dst := range map[string]*string{"server_id": &out.ServerID, "ipv4": &out.IPv4, "ipv6": &out.IPv6} {
		m, ok := raw[name]
		if !ok {
			return Outputs{}, fmt.Errorf("terraform module output %q is missing", name)
		}
		if err := json.Unmarshal(m.Value, dst); err != nil {
			return Outputs{}, fmt.Errorf("terraform module output %q is not a string: %w", name, err)
		}
	}
	if m, ok := raw["dns_names"]; ok {
		if err := json.Unmarshal(m.Value, &out.DNSNames); err != nil {
			return Outputs{}, fmt.Errorf("terraform module output dns_names is not a list of strings: %w", err)
		}
	}
	out.DNSNames = sortedNames(out.DNSNames)
	return out, nil
}

// Read returns the outputs recorded in the state; ok is false when the state holds no
// server.
func (t *Terraform) Read(ctx context.Context, spec Spec, prev Outputs) (Outputs, bool, error) {
	if prev.State == "" {
		return Outputs{}, false, nil
	}
	tf, _, cleanup, err := t.workdir(ctx, spec, prev.State)
	if err != nil {
		return Outputs{}, false, err
	}
	defer cleanup()
	out, err := t.outputs(ctx, tf)
	if err != nil {
		return Outputs{}, false, err
	}
	out.HostKeyFingerprint, out.State = prev.HostKeyFingerprint, prev.State
	return out, out.IPv4 != "", nil
}

// Destroy runs terraform destroy on the recorded state.
func (t *Terraform) Destroy(ctx context.Context, spec Spec, prev Outputs) error {
	if prev.State == "" {
		return nil
	}
	tf, _, cleanup, err := t.workdir(ctx, spec, prev.State)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := tf.Destroy(ctx); err != nil {
		return fmt.Errorf("terraform destroy: %w", err)
	}
	return nil
}
