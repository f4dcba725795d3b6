package provider

import (
	"context"
	"fmt"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/edgeline/edgeline/infra/cloud"
)

// CloudHost is the VPS the k3s server runs on, from one of infra/cloud's sources.
type CloudHost struct{}

// CloudHostArgs are the inputs of a CloudHost. They are named as the stack config keys
// they come from (docs/deploy.md).
type CloudHostArgs struct {
	// Cloud is where the VPS comes from: "native", "terraform" or "existing".
	Cloud        string   `pulumi:"cloud"`
	Name         string   `pulumi:"name"`
	ServerType   string   `pulumi:"serverType,optional"`
	Location     string   `pulumi:"location,optional"`
	Image        string   `pulumi:"image,optional"`
	SSHPublicKey string   `pulumi:"sshPublicKey,optional"`
	HostKey      string   `pulumi:"hostKey,optional" provider:"secret"`
	Domain       string   `pulumi:"domain,optional"`
	Hostnames    []string `pulumi:"hostnames,optional"`
	// DNS is where the records of Domain go: "hetzner" (default), "cloudflare"
	// (terraform only) or "none".
	DNS              string `pulumi:"dns,optional"`
	CloudflareZoneID string `pulumi:"cloudflareZoneId,optional"`
	// Address, IPv6 and HostKeyFingerprint describe an existing host.
	Address string `pulumi:"address,optional"`
	IPv6    string `pulumi:"ipv6,optional"`
	// HostKeyFingerprint is an existing host's key. For a new server (native,
	// terraform) it is the key the server has now, read on its console after the key
	// changed outside edgeline: it is pinned instead of the recorded one, once, when it
	// is set or changed.
	HostKeyFingerprint string `pulumi:"hostKeyFingerprint,optional"`
	// Login is how to log in to a new server (native, terraform): after the first login,
	// verified by the host key cloud-init installed from user data, edgeline makes a new
	// host key on the server and pins it, because user data stays readable on the server
	// for its whole life. Nil leaves the key from user data in place.
	Login *Login `pulumi:"login,optional"`
	// HostKeyRotation asks for a new host key when it changes (any text, e.g. a date);
	// without a change, the key is replaced only while it is still the one from user data.
	HostKeyRotation string `pulumi:"hostKeyRotation,optional"`
	// HcloudToken and HcloudEndpoint reach the Hetzner API (native).
	HcloudToken    string `pulumi:"hcloudToken,optional" provider:"secret"`
	HcloudEndpoint string `pulumi:"hcloudEndpoint,optional"`
	// TerraformBinary and TerraformDir run the terraform source.
	TerraformBinary string `pulumi:"terraformBinary,optional"`
	TerraformDir    string `pulumi:"terraformDir,optional"`
	// SSHSourceCidrs and APISourceCidrs are the networks the firewall lets in to SSH and
	// the k3s API (native, terraform; both required there).
	SSHSourceCidrs []string `pulumi:"sshSourceCidrs,optional"`
	APISourceCidrs []string `pulumi:"apiSourceCidrs,optional"`
	// TailscaleRepo, when set, is the base URL of Tailscale's stable apt repository:
	// cloud-init installs tailscale from it on a new server, for k3s's vpn-auth (native,
	// terraform). Cloud-init runs on first boot only, so a change does not reach a
	// running server.
	TailscaleRepo string `pulumi:"tailscaleRepo,optional"`
}

// CloudHostState is a CloudHost's state: the same outputs whatever the source.
type CloudHostState struct {
	CloudHostArgs
	ServerID    string `pulumi:"serverId"`
	IPv4Address string `pulumi:"ipv4Address"`
	IPv6Address string `pulumi:"ipv6Address"`
	// HostKeyFingerprint is the fingerprint of the host key the VPS has, which every SSH
	// connection to it pins: the given one for an existing host; for a new server the key
	// edgeline made on it after the first login (with Login), else the one from user
	// data. It shadows the input of the same name, so the state holds one value.
	HostKeyFingerprint string `pulumi:"hostKeyFingerprint"`
	// UserDataHostKeyFingerprint is the fingerprint of the key cloud-init installed from
	// user data (new servers only): once it differs from HostKeyFingerprint, the key
	// still readable in user data is no longer the host's.
	UserDataHostKeyFingerprint string `pulumi:"userDataHostKeyFingerprint"`
	// AdoptedHostKeyFingerprint is the last hostKeyFingerprint input pinned for a new
	// server, so that an input left in place is not pinned again after a rotation.
	AdoptedHostKeyFingerprint string   `pulumi:"adoptedHostKeyFingerprint"`
	DNSNames                  []string `pulumi:"dnsNames"`
	// GeneratedHostKey is the host key made on Create when none was given.
	GeneratedHostKey string `pulumi:"generatedHostKey" provider:"secret"`
	// SourceState is the source's own state (Terraform's), kept secret.
	SourceState string `pulumi:"sourceState" provider:"secret"`
}

// Annotate documents the resource.
func (h *CloudHost) Annotate(a infer.Annotator) {
	a.Describe(h, "The VPS for the k3s server: Hetzner Cloud (native), a Terraform module, or an existing host.")
	a.SetToken("index", "CloudHost")
}

func (a CloudHostArgs) source() (cloud.Source, error) {
	switch a.Cloud {
	case "native":
		if a.HcloudToken == "" {
			return nil, fmt.Errorf("cloud host %s: no Hetzner Cloud API token", a.Name)
		}
		return cloud.NewNative(a.HcloudToken, a.HcloudEndpoint), nil
	case "terraform":
		bin := a.TerraformBinary
		if bin == "" {
			bin = "tofu"
		}
		return &cloud.Terraform{Binary: bin, Module: a.TerraformDir}, nil
	case "existing":
		return cloud.Existing{}, nil
	}
	return nil, fmt.Errorf("cloud host %s: cloud %q is not native, terraform or existing", a.Name, a.Cloud)
}

func (a CloudHostArgs) spec(hostKey string) cloud.Spec {
	s := cloud.Spec{
		Name: a.Name, ServerType: a.ServerType, Location: a.Location, Image: a.Image,
		SSHPublicKey: a.SSHPublicKey, HostKey: hostKey, Zone: a.Domain, Hostnames: a.Hostnames,
		DNSProvider: a.DNS, CloudflareZoneID: a.CloudflareZoneID,
		Address: a.Address, IPv6: a.IPv6, HostKeyFingerprint: a.HostKeyFingerprint,
		SSHSources: a.SSHSourceCidrs, APISources: a.APISourceCidrs, TailscaleRepo: a.TailscaleRepo,
	}
	if a.DNS == "none" {
		s.Zone, s.DNSProvider = "", ""
	}
	return s
}

// args are the inputs the state was made from. The state's hostKeyFingerprint is an
// output that shadows the input of the same name; for an existing host the two are the
// same value.
func (s CloudHostState) args() CloudHostArgs {
	a := s.CloudHostArgs
	if a.Cloud == "existing" {
		a.HostKeyFingerprint = s.HostKeyFingerprint
	}
	return a
}

// spec is what the state was made from, as a cloud.Spec.
func (s CloudHostState) spec() cloud.Spec { return s.args().spec(s.hostKey()) }

// hostKey is the key to install: the given one, else the one generated before.
func (s CloudHostState) hostKey() string {
	if s.HostKey != "" {
		return s.HostKey
	}
	return s.GeneratedHostKey
}

// set records what the source reports. The pinned host key of a new server stays as
// rotate or adopt left it: the sources know only the key from user data.
func (s *CloudHostState) set(out cloud.Outputs) {
	s.ServerID, s.IPv4Address, s.IPv6Address = out.ServerID, out.IPv4, out.IPv6
	s.DNSNames, s.SourceState = out.DNSNames, out.State
	if s.Cloud == "existing" || s.HostKeyFingerprint == "" {
		s.HostKeyFingerprint = out.HostKeyFingerprint
	}
	s.UserDataHostKeyFingerprint = s.userDataFingerprint()
	if s.DNSNames == nil {
		s.DNSNames = []string{}
	}
}

func (s CloudHostState) outputs() cloud.Outputs {
	return cloud.Outputs{ServerID: s.ServerID, IPv4: s.IPv4Address, IPv6: s.IPv6Address,
		HostKeyFingerprint: s.HostKeyFingerprint, DNSNames: s.DNSNames, State: s.SourceState}
}

// Create brings the host up.
func (h *CloudHost) Create(ctx context.Context, req infer.CreateRequest[CloudHostArgs]) (infer.CreateResponse[CloudHostState], error) {
	args := req.Inputs
	src, err := args.source()
	if err != nil {
		return infer.CreateResponse[CloudHostState]{}, err
	}
	st := CloudHostState{CloudHostArgs: args}
	if req.DryRun {
		return infer.CreateResponse[CloudHostState]{ID: args.Name, Output: st}, nil
	}
	if args.Cloud != "existing" && args.HostKey == "" {
		if st.GeneratedHostKey, err = cloud.NewHostKey(); err != nil {
			return infer.CreateResponse[CloudHostState]{}, err
		}
	}
	logf(ctx, "bringing up %s (%s)", args.Name, args.Cloud)
	out, err := src.Apply(ctx, args.spec(st.hostKey()), nil)
	if err != nil {
		if out.State != "" {
			// Keep what a failed terraform apply made, so destroy can find it.
			st.set(out)
			return infer.CreateResponse[CloudHostState]{ID: args.Name, Output: st}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
		}
		return infer.CreateResponse[CloudHostState]{}, err
	}
	st.set(out)
	if st.rotationDue(st.HostKeyRotation) {
		if err := st.rotate(ctx); err != nil {
			// The server exists: keep it in the state, and the next run retries.
			return infer.CreateResponse[CloudHostState]{ID: args.Name, Output: st}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
		}
	}
	return infer.CreateResponse[CloudHostState]{ID: args.Name, Output: st}, nil
}

// Diff replaces the host when the machine itself would change (source, name, type,
// location, image, host key); DNS names and credentials converge in place. A new
// server whose host key is still the one from user data is updated (to rotate it).
func (h *CloudHost) Diff(ctx context.Context, req infer.DiffRequest[CloudHostArgs, CloudHostState]) (infer.DiffResponse, error) {
	o, n := req.State.args(), req.Inputs
	if n.Cloud != "existing" {
		// A fingerprint to adopt changes something only while it is not adopted yet.
		o.HostKeyFingerprint = n.HostKeyFingerprint
		if n.HostKeyFingerprint != "" && n.HostKeyFingerprint != req.State.AdoptedHostKeyFingerprint {
			o.HostKeyFingerprint = req.State.AdoptedHostKeyFingerprint
		}
	}
	d := diff(inputs(o, n, "cloud", "name", "serverType", "location", "image", "hostKey", "address")...)
	next := req.State
	next.CloudHostArgs = n
	if _, replace := d.DetailedDiff["hostKey"]; !replace && next.rotationDue(req.State.HostKeyRotation) {
		d.DetailedDiff["hostKeyRotation"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
		d.HasChanges = true
	}
	return d, nil
}

// Update converges DNS records and firewall with the new inputs.
func (h *CloudHost) Update(ctx context.Context, req infer.UpdateRequest[CloudHostArgs, CloudHostState]) (infer.UpdateResponse[CloudHostState], error) {
	st := req.State
	st.CloudHostArgs = req.Inputs
	if req.DryRun {
		return infer.UpdateResponse[CloudHostState]{Output: st}, nil
	}
	src, err := req.Inputs.source()
	if err != nil {
		return infer.UpdateResponse[CloudHostState]{}, err
	}
	// Records that left the list are removed first.
	if gone := minus(req.State.Hostnames, req.Inputs.Hostnames); len(gone) > 0 && req.Inputs.Cloud == "native" {
		old := req.State.spec()
		old.Hostnames = gone
		if err := src.(*cloud.Native).DestroyRecords(ctx, old, req.State.outputs()); err != nil {
			return infer.UpdateResponse[CloudHostState]{}, err
		}
	}
	prev := req.State.outputs()
	out, err := src.Apply(ctx, req.Inputs.spec(st.hostKey()), &prev)
	if err != nil {
		return infer.UpdateResponse[CloudHostState]{}, err
	}
	st.set(out)
	st.adopt()
	if st.rotationDue(req.State.HostKeyRotation) {
		pinned := st.HostKeyFingerprint
		if err := st.rotate(ctx); err != nil {
			if st.HostKeyFingerprint != pinned {
				// The host has the new key: the state must say so.
				return infer.UpdateResponse[CloudHostState]{Output: st}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
			}
			return infer.UpdateResponse[CloudHostState]{}, err
		}
	}
	return infer.UpdateResponse[CloudHostState]{Output: st}, nil
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}

// Read refreshes the addresses from the source; a host that is gone is reported so.
func (h *CloudHost) Read(ctx context.Context, req infer.ReadRequest[CloudHostArgs, CloudHostState]) (infer.ReadResponse[CloudHostArgs, CloudHostState], error) {
	src, err := req.State.args().source()
	if err != nil {
		return infer.ReadResponse[CloudHostArgs, CloudHostState]{}, err
	}
	out, ok, err := src.Read(ctx, req.State.spec(), req.State.outputs())
	if err != nil || !ok {
		return infer.ReadResponse[CloudHostArgs, CloudHostState]{}, err
	}
	st := req.State
	st.set(out)
	return infer.ReadResponse[CloudHostArgs, CloudHostState]{ID: req.ID, Inputs: req.Inputs, State: st}, nil
}

// Delete removes the host, its firewall, SSH key and DNS records (nothing for an
// existing host).
func (h *CloudHost) Delete(ctx context.Context, req infer.DeleteRequest[CloudHostState]) (infer.DeleteResponse, error) {
	src, err := req.State.args().source()
	if err != nil {
		return infer.DeleteResponse{}, err
	}
	return infer.DeleteResponse{}, src.Destroy(ctx, req.State.spec(), req.State.outputs())
}

// WireDependencies marks the generated host key and the source's state secret.
func (*CloudHost) WireDependencies(f infer.FieldSelector, args *CloudHostArgs, state *CloudHostState) {
	f.OutputField(state).DependsOn(f.InputField(args).Computed())
	f.OutputField(&state.GeneratedHostKey).AlwaysSecret()
	f.OutputField(&state.SourceState).AlwaysSecret()
}
