package cloud

import (
	"context"
	"errors"
	"net"
)

// Existing is a host that already runs: nothing is created or removed, the Outputs
// repeat what the configuration says about it. DNS records for its hostnames are the
// operator's to set.
type Existing struct{}

// Apply checks the description and returns it as Outputs.
func (Existing) Apply(_ context.Context, spec Spec, _ *Outputs) (Outputs, error) {
	if ip := net.ParseIP(spec.Address); ip == nil || ip.To4() == nil {
		return Outputs{}, errors.New("existing host: address is not an IPv4 address")
	}
	if spec.HostKeyFingerprint == "" {
		return Outputs{}, errors.New("existing host: its SSH host key fingerprint is needed (ssh-keyscan HOST | ssh-keygen -lf -)")
	}
	return Outputs{IPv4: spec.Address, IPv6: spec.IPv6, HostKeyFingerprint: spec.HostKeyFingerprint, DNSNames: sortedNames(spec.Hostnames)}, nil
}

// Read returns the same as Apply: an existing host is not watched.
func (e Existing) Read(ctx context.Context, spec Spec, _ Outputs) (Outputs, bool, error) {
	out, err := e.Apply(ctx, spec, nil)
	return out, err == nil, err
}

// Destroy does nothing: edgeline did not make the host, so it does not remove it.
func (Existing) Destroy(context.Context, Spec, Outputs) error { return nil }
