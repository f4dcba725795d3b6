// Package stack is edgeline's Pulumi program: four component resources, one per layer,
// built on the edgeline provider's resources through their generated Go SDK
// (sdk/go/edgeline), so every input is typed.
//
//	cloud     the VPS (CloudHost: Hetzner, Terraform or an existing host) and DNS
//	cluster   the k3s server on the VPS and the edge agents (K3sServer, K3sAgent)
//	platform  cert-manager with Let's Encrypt ClusterIssuers, and Rancher
//	app       the face-login chart
//
// infra/main.go runs it for `pulumi up`; cmd/edgeline runs it inline through the
// Automation API. The stack config is parsed and validated (infra/stackconfig) before
// any resource is registered, so a bad config changes nothing.
package stack

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
	"golang.org/x/crypto/ssh"

	"github.com/edgeline/edgeline/infra/allowlist"
	"github.com/edgeline/edgeline/infra/stackconfig"
	"github.com/edgeline/edgeline/sdk/go/edgeline"
)

// Component type tokens.
const (
	TypeCloud    = "edgeline:cloud:Cloud"
	TypeCluster  = "edgeline:cluster:Cluster"
	TypePlatform = "edgeline:platform:Platform"
	TypeApp      = "edgeline:app:App"
)

// Program returns the Pulumi program. Relative paths in the config (key files, charts,
// the Terraform module) are taken from dir, the directory of Pulumi.yaml.
func Program(dir string) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		cfg, err := stackconfig.Parse(stackconfig.Source{
			Get: func(key string) (string, bool) {
				v := config.Get(ctx, stackconfig.Namespace+":"+key)
				return v, v != ""
			},
			Secret: func(key string) bool { return ctx.IsConfigSecret(stackconfig.Namespace + ":" + key) },
			Keys:   configKeys(),
		})
		if err != nil {
			return err
		}
		for _, w := range cfg.Warnings {
			ctx.Log.Warn(w, nil)
		}
		return Deploy(ctx, cfg, dir)
	}
}

// configKeys lists the stack's config keys when the program runs as its own process
// (`pulumi up`), where the engine hands the config over in $PULUMI_CONFIG; nil when it
// runs inline (cmd/edgeline, which checks the keys itself before the engine starts).
func configKeys() []string {
	var all map[string]any
	if json.Unmarshal([]byte(os.Getenv(pulumi.EnvConfig)), &all) != nil {
		return nil
	}
	return slices.Sorted(maps.Keys(all))
}

// Deploy registers the four layers for a validated configuration.
func Deploy(ctx *pulumi.Context, cfg *stackconfig.Config, dir string) error {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) || strings.Contains(p, "://") {
			return p
		}
		return filepath.Join(dir, p)
	}
	keyFile := abs(expandHome(cfg.SSH.KeyFile))
	pub := cfg.SSH.PublicKey
	if pub == "" {
		var err error
		if pub, err = publicKey(keyFile); err != nil {
			return err
		}
	}
	// An explicit provider instance: the default one would be handed every "edgeline:"
	// config key as provider configuration, and keep them in the state.
	prov, err := edgeline.NewProvider(ctx, "edgeline", &edgeline.ProviderArgs{})
	if err != nil {
		return err
	}
	in := inputs{cfg: cfg, keyFile: keyFile, sshPublicKey: pub, abs: abs, provider: prov}
	if cfg.NeedsDeployerAddress() {
		// The firewall lets SSH and the k3s API in from where this run comes from.
		a, err := allowlist.Discover(ctx.Context(), nil, cfg.Cloud.DiscoveryURL)
		if err != nil {
			return fmt.Errorf("%w: set edgeline:deployerAddress to this machine's public address, or edgeline:sshSourceCidrs and edgeline:apiSourceCidrs", err)
		}
		ctx.Log.Info(fmt.Sprintf("the firewall lets SSH and the k3s API in from %s, the address this run comes from", a), nil)
		in.deployer = a
	}

	cl, err := newCloud(ctx, in)
	if err != nil {
		return err
	}
	cluster, err := newCluster(ctx, in, cl)
	if err != nil {
		return err
	}
	kubeconfig := cluster.Kubeconfig
	if cfg.Kubeconfig != "" {
		kubeconfig = pulumi.ToSecret(pulumi.String(cfg.Kubeconfig)).(pulumi.StringOutput)
	}
	platform, err := newPlatform(ctx, in, kubeconfig, cluster)
	if err != nil {
		return err
	}
	app, err := newApp(ctx, in, kubeconfig, platform)
	if err != nil {
		return err
	}

	ctx.Export("ipv4", cl.IPv4)
	ctx.Export("ipv6", cl.IPv6)
	ctx.Export("hostKeyFingerprint", cl.Fingerprint)
	ctx.Export("dnsNames", cl.DNSNames)
	ctx.Export("kubeconfig", kubeconfig)
	ctx.Export("nodes", cluster.Nodes)
	ctx.Export("rancherUrl", pulumi.String("https://"+cfg.RancherHost))
	ctx.Export("rancherBootstrapPassword", platform.BootstrapPassword)
	ctx.Export("appUrl", pulumi.String("https://"+cfg.AppHost))
	ctx.Export("appRelease", app.Status)
	return nil
}

// inputs is what every layer reads.
type inputs struct {
	cfg          *stackconfig.Config
	keyFile      string
	sshPublicKey string
	abs          func(string) string
	provider     pulumi.ProviderResource
	// deployer is the discovered public address of this run; zero when not needed.
	deployer netip.Addr
}

// options are the resource options of a resource of our provider inside parent.
func (in inputs) options(parent pulumi.Resource, more ...pulumi.ResourceOption) []pulumi.ResourceOption {
	return append([]pulumi.ResourceOption{pulumi.Parent(parent), pulumi.Provider(in.provider)}, more...)
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// publicKey reads the public half of the SSH key the VPS is created with.
func publicKey(keyFile string) (string, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return "", fmt.Errorf("edgeline:sshKeyFile: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		if b, perr := os.ReadFile(keyFile + ".pub"); perr == nil {
			return strings.TrimSpace(string(b)), nil
		}
		return "", fmt.Errorf("edgeline:sshKeyFile %s: %w (for a key with a passphrase, load it into ssh-agent and set edgeline:sshPublicKey)", keyFile, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))), nil
}

// secret wraps a plain value as a secret output.
func secret(s string) pulumi.StringOutput {
	return pulumi.ToSecret(pulumi.String(s)).(pulumi.StringOutput)
}

// jsonValues turns chart values with outputs inside into a JSON string (a secret: the
// SDK marks every release's values so).
func jsonValues(values pulumi.Map) pulumi.StringOutput {
	return values.ToMapOutput().ApplyT(func(v map[string]any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}).(pulumi.StringOutput)
}
