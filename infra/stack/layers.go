package stack

import (
	"maps"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/edgeline/edgeline/infra/provider"
	"github.com/edgeline/edgeline/infra/stackconfig"
)

// The provider's resources as the program sees them: registered by type token, with
// the outputs the layers read.

type cloudHost struct {
	pulumi.CustomResourceState
	IPv4Address        pulumi.StringOutput      `pulumi:"ipv4Address"`
	IPv6Address        pulumi.StringOutput      `pulumi:"ipv6Address"`
	HostKeyFingerprint pulumi.StringOutput      `pulumi:"hostKeyFingerprint"`
	DNSNames           pulumi.StringArrayOutput `pulumi:"dnsNames"`
}

type k3sServer struct {
	pulumi.CustomResourceState
	Token      pulumi.StringOutput `pulumi:"token"`
	Kubeconfig pulumi.StringOutput `pulumi:"kubeconfig"`
	ServerURL  pulumi.StringOutput `pulumi:"serverUrl"`
	Node       pulumi.StringOutput `pulumi:"node"`
}

type k3sAgent struct {
	pulumi.CustomResourceState
	Node pulumi.StringOutput `pulumi:"node"`
}

type helmRelease struct {
	pulumi.CustomResourceState
	Status   pulumi.StringOutput `pulumi:"status"`
	Revision pulumi.IntOutput    `pulumi:"revision"`
}

type password struct {
	pulumi.CustomResourceState
	Result pulumi.StringOutput `pulumi:"result"`
}

// Cloud is the cloud layer: the VPS and its DNS records.
type Cloud struct {
	pulumi.ResourceState
	IPv4, IPv6, Fingerprint pulumi.StringOutput
	DNSNames                pulumi.StringArrayOutput
}

func newCloud(ctx *pulumi.Context, in inputs) (*Cloud, error) {
	c := &Cloud{}
	if err := ctx.RegisterComponentResource(TypeCloud, "cloud", c); err != nil {
		return nil, err
	}
	cfg := in.cfg
	cc := cfg.Cloud
	args := pulumi.Map{
		"source":    pulumi.String(cc.Source),
		"name":      pulumi.String("edgeline-" + ctx.Stack()),
		"hostnames": pulumi.ToStringArray([]string{cfg.AppHost, cfg.RancherHost, cfg.APIHost}),
	}
	switch cc.Source {
	case stackconfig.SourceExisting:
		args["address"] = pulumi.String(cc.Address)
		args["ipv6"] = pulumi.String(cc.IPv6)
		args["fingerprint"] = pulumi.String(cc.HostKeyFingerprint)
	default:
		args["serverType"] = pulumi.String(cc.ServerType)
		args["location"] = pulumi.String(cc.Location)
		args["image"] = pulumi.String(cc.Image)
		args["sshPublicKey"] = pulumi.String(in.sshPublicKey)
		if cc.DNS != "none" {
			args["zone"] = pulumi.String(cfg.Domain)
			args["dnsProvider"] = pulumi.String(cc.DNS)
		}
		if cc.DNS == "cloudflare" {
			args["cloudflareZoneId"] = pulumi.String(cc.CloudflareZoneID)
		}
		if cc.HostKey != "" {
			args["hostKey"] = secret(cc.HostKey)
		}
	}
	if cc.Source == stackconfig.SourceNative {
		args["hcloudToken"] = secret(cc.HcloudToken)
		if cc.HcloudEndpoint != "" {
			args["hcloudEndpoint"] = pulumi.String(cc.HcloudEndpoint)
		}
	}
	if cc.Source == stackconfig.SourceTerraform {
		args["terraformModule"] = pulumi.String(in.abs(cc.TerraformDir))
		if cc.TerraformBinary != "" {
			args["terraformBinary"] = pulumi.String(cc.TerraformBinary)
		}
	}
	var h cloudHost
	if err := ctx.RegisterResource(provider.TypeCloudHost, "vps", args, &h, in.options(c)...); err != nil {
		return nil, err
	}
	c.IPv4, c.IPv6, c.Fingerprint, c.DNSNames = h.IPv4Address, h.IPv6Address, h.HostKeyFingerprint, h.DNSNames
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"ipv4": c.IPv4, "ipv6": c.IPv6, "hostKeyFingerprint": c.Fingerprint, "dnsNames": c.DNSNames})
}

// Cluster is the cluster layer: the k3s server on the VPS and the edge agents.
type Cluster struct {
	pulumi.ResourceState
	Kubeconfig pulumi.StringOutput
	Nodes      pulumi.StringArrayOutput
	server     *k3sServer
	agents     []pulumi.Resource
}

func (in inputs) install() pulumi.Map {
	m := pulumi.Map{"version": pulumi.String(in.cfg.Versions.K3s)}
	if a := in.cfg.K3sAirGap; a != nil {
		m["airGapBinary"] = pulumi.String(in.abs(a.Binary))
		m["airGapScript"] = pulumi.String(in.abs(a.Script))
	}
	return m
}

func newCluster(ctx *pulumi.Context, in inputs, cl *Cloud) (*Cluster, error) {
	c := &Cluster{}
	if err := ctx.RegisterComponentResource(TypeCluster, "cluster", c); err != nil {
		return nil, err
	}
	cfg := in.cfg
	serverConn := pulumi.Map{
		"host":               cl.IPv4,
		"port":               pulumi.Int(cfg.SSH.Port),
		"user":               pulumi.String(cfg.SSH.User),
		"keyFile":            pulumi.String(in.keyFile),
		"hostKeyFingerprint": cl.Fingerprint,
	}
	args := pulumi.Map{
		"connection": serverConn,
		// The IP first: the kubeconfig and the agents use it, so nothing waits for DNS.
		"tlsSans":        pulumi.StringArray{cl.IPv4, pulumi.String(cfg.APIHost)},
		"nodeExternalIp": cl.IPv4,
		"install":        in.install(),
	}
	if cfg.Network == stackconfig.NetworkWireguard {
		args["flannelBackend"] = pulumi.String("wireguard-native")
	} else {
		args["vpnAuth"] = secret(cfg.VPNAuth)
	}
	var server k3sServer
	if err := ctx.RegisterResource(provider.TypeK3sServer, "server", args, &server, in.options(c)...); err != nil {
		return nil, err
	}
	c.server = &server
	nodes := pulumi.StringArray{server.Node}
	for _, a := range cfg.Agents {
		conn := pulumi.Map{
			"host":    pulumi.String(a.Host),
			"port":    pulumi.Int(a.Port),
			"user":    pulumi.String(a.User),
			"keyFile": pulumi.String(in.keyFile),
		}
		if a.HostKeyFingerprint != "" {
			conn["hostKeyFingerprint"] = pulumi.String(a.HostKeyFingerprint)
		}
		if cfg.SSH.KnownHostsFile != "" {
			conn["knownHostsFile"] = pulumi.String(in.abs(expandHome(cfg.SSH.KnownHostsFile)))
		}
		if a.Jump != "" {
			j, _ := stackconfig.ParseJump(a.Jump) // validated by stackconfig
			conn["jump"] = pulumi.Array{pulumi.Map{"host": pulumi.String(j.Host), "port": pulumi.Int(j.Port), "user": pulumi.String(j.User)}}
		}
		args := pulumi.Map{
			"connection": conn,
			"server":     serverConn,
			"serverUrl":  server.ServerURL,
			"token":      server.Token,
			"nodeName":   pulumi.String(a.Name),
			"site":       pulumi.String(a.Site),
			"install":    in.install(),
		}
		if a.Labels != nil {
			args["labels"] = pulumi.ToStringMap(a.Labels)
		}
		if a.Taints != nil {
			args["taints"] = pulumi.ToStringArray(a.Taints)
		}
		if a.ExternalIP != "" {
			args["nodeExternalIp"] = pulumi.String(a.ExternalIP)
		}
		if cfg.Network == stackconfig.NetworkVPNAuth {
			args["vpnAuth"] = secret(cfg.VPNAuth)
		}
		var agent k3sAgent
		if err := ctx.RegisterResource(provider.TypeK3sAgent, "agent-"+a.Name, args, &agent, in.options(c)...); err != nil {
			return nil, err
		}
		c.agents = append(c.agents, &agent)
		nodes = append(nodes, agent.Node)
	}
	c.Kubeconfig = server.Kubeconfig
	c.Nodes = nodes.ToStringArrayOutput()
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"kubeconfig": c.Kubeconfig, "nodes": c.Nodes})
}

// dependsOn is everything later layers wait for: the server and every agent.
func (c *Cluster) dependsOn() []pulumi.Resource {
	return append([]pulumi.Resource{c.server}, c.agents...)
}

// Platform is the platform layer: cert-manager with the Let's Encrypt ClusterIssuers,
// and Rancher.
type Platform struct {
	pulumi.ResourceState
	BootstrapPassword pulumi.StringOutput
	issuers           *helmRelease
}

func (in inputs) release(ctx *pulumi.Context, name, namespace, chart string, kubeconfig pulumi.StringOutput, values pulumi.Map, parent pulumi.Resource, deps []pulumi.Resource) (*helmRelease, error) {
	var r helmRelease
	err := ctx.RegisterResource(provider.TypeHelmRelease, name, pulumi.Map{
		"kubeconfig": kubeconfig,
		"name":       pulumi.String(name),
		"namespace":  pulumi.String(namespace),
		"chart":      pulumi.String(in.abs(chart)),
		"values":     jsonValues(values),
		"wait":       pulumi.Bool(in.cfg.HelmWait),
	}, &r, in.options(parent, pulumi.DependsOn(deps))...)
	return &r, err
}

func newPlatform(ctx *pulumi.Context, in inputs, kubeconfig pulumi.StringOutput, cluster *Cluster) (*Platform, error) {
	p := &Platform{}
	if err := ctx.RegisterComponentResource(TypePlatform, "platform", p); err != nil {
		return nil, err
	}
	cfg := in.cfg
	certManager, err := in.release(ctx, "cert-manager", "cert-manager", cfg.Charts.CertManager, kubeconfig,
		pulumi.Map{"crds": pulumi.Map{"enabled": pulumi.Bool(true)}}, p, cluster.dependsOn())
	if err != nil {
		return nil, err
	}
	issuerValues := pulumi.Map{
		"email":      pulumi.String(cfg.ACMEEmail),
		"staging":    pulumi.Map{"name": pulumi.String(stackconfig.IssuerStaging)},
		"production": pulumi.Map{"name": pulumi.String(stackconfig.IssuerProduction)},
	}
	if cfg.CloudflareAPIToken != "" {
		issuerValues["dns01"] = pulumi.Map{"cloudflare": pulumi.Map{"apiToken": secret(cfg.CloudflareAPIToken), "zone": pulumi.String(cfg.Domain)}}
	}
	p.issuers, err = in.release(ctx, "edgeline-issuers", "cert-manager", "charts/issuers", kubeconfig, issuerValues, p, []pulumi.Resource{certManager})
	if err != nil {
		return nil, err
	}
	var pw password
	if err := ctx.RegisterResource(provider.TypePassword, "rancher-bootstrap-password", pulumi.Map{"length": pulumi.Int(24)}, &pw,
		in.options(p, pulumi.AdditionalSecretOutputs([]string{"result"}))...); err != nil {
		return nil, err
	}
	if _, err := in.release(ctx, "rancher", "cattle-system", cfg.Charts.Rancher, kubeconfig, pulumi.Map{
		"hostname":          pulumi.String(cfg.RancherHost),
		"bootstrapPassword": pw.Result,
		"replicas":          pulumi.Int(1),
		"ingress": pulumi.Map{
			"ingressClassName": pulumi.String("traefik"),
			"tls":              pulumi.Map{"source": pulumi.String("secret")},
			"extraAnnotations": pulumi.Map{"cert-manager.io/cluster-issuer": pulumi.String(cfg.Issuer)},
		},
	}, p, []pulumi.Resource{p.issuers}); err != nil {
		return nil, err
	}
	p.BootstrapPassword = pulumi.ToSecret(pw.Result).(pulumi.StringOutput)
	return p, ctx.RegisterResourceOutputs(p, pulumi.Map{"rancherBootstrapPassword": p.BootstrapPassword})
}

// App is the app layer: the face-login chart.
type App struct {
	pulumi.ResourceState
	Status pulumi.StringOutput
}

// appValues derives the chart values from the config; edgeline:appValues is merged
// over them.
func appValues(cfg *stackconfig.Config) pulumi.Map {
	v := map[string]any{
		"host":    cfg.AppHost,
		"ingress": map[string]any{"clusterIssuer": cfg.Issuer},
		"api":     map[string]any{"placement": map[string]any{"preset": cfg.App.Placement}},
	}
	if cfg.App.DatabaseURL != "" {
		v["postgresql"] = map[string]any{"enabled": false}
		v["database"] = map[string]any{"url": cfg.App.DatabaseURL}
	}
	merge(v, cfg.App.Values)
	return pulumi.ToMap(v)
}

// merge deep-merges src into dst, as Helm merges values files.
func merge(dst, src map[string]any) {
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dm = maps.Clone(dm)
				merge(dm, sm)
				dst[k] = dm
				continue
			}
		}
		dst[k] = sv
	}
}

func newApp(ctx *pulumi.Context, in inputs, kubeconfig pulumi.StringOutput, platform *Platform) (*App, error) {
	a := &App{}
	if err := ctx.RegisterComponentResource(TypeApp, "app", a); err != nil {
		return nil, err
	}
	r, err := in.release(ctx, "facelogin", "facelogin", in.cfg.Charts.Facelogin, kubeconfig, appValues(in.cfg), a, []pulumi.Resource{platform.issuers})
	if err != nil {
		return nil, err
	}
	a.Status = r.Status
	return a, ctx.RegisterResourceOutputs(a, pulumi.Map{"status": a.Status})
}
