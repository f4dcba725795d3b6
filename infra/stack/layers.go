package stack

import (
	"maps"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/edgeline/edgeline/infra/allowlist"
	"github.com/edgeline/edgeline/infra/stackconfig"
	"github.com/edgeline/edgeline/sdk/go/edgeline"
)

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
	args := &edgeline.CloudHostArgs{
		Cloud:     pulumi.String(cc.Source),
		Name:      pulumi.String("edgeline-" + ctx.Stack()),
		Hostnames: pulumi.ToStringArray([]string{cfg.AppHost, cfg.RancherHost, cfg.APIHost}),
	}
	switch cc.Source {
	case stackconfig.SourceExisting:
		args.Address = pulumi.String(cc.Address)
		args.Ipv6 = pulumi.String(cc.IPv6)
		args.HostKeyFingerprint = pulumi.String(cc.HostKeyFingerprint)
	default:
		args.ServerType = pulumi.String(cc.ServerType)
		args.Location = pulumi.String(cc.Location)
		args.Image = pulumi.String(cc.Image)
		args.SshPublicKey = pulumi.String(in.sshPublicKey)
		args.Domain = pulumi.String(cfg.Domain)
		args.Dns = pulumi.String(cc.DNS)
		if cc.DNS == "cloudflare" {
			args.CloudflareZoneId = pulumi.String(cc.CloudflareZoneID)
		}
		if cc.HostKey != "" {
			args.HostKey = pulumi.String(cc.HostKey)
		}
		// After the first login, verified by the key from user data, the VPS gets a host
		// key made on it; the k3s server and the agents' server connection pin that one.
		login := edgeline.LoginArgs{
			Port:        pulumi.IntPtr(cfg.SSH.Port),
			User:        pulumi.StringPtr(cfg.SSH.User),
			KeyFile:     pulumi.String(in.keyFile),
			AgentSocket: in.agentSocket(),
		}
		in.loginLimits(&login)
		args.Login = login
		if cc.HostKeyRotation != "" {
			args.HostKeyRotation = pulumi.String(cc.HostKeyRotation)
		}
		if cc.HostKeyFingerprint != "" {
			args.HostKeyFingerprint = pulumi.String(cc.HostKeyFingerprint)
		}
		sshSources, apiSources := cfg.Firewall(in.deployer)
		args.SshSourceCidrs = pulumi.ToStringArray(allowlist.Strings(sshSources))
		args.ApiSourceCidrs = pulumi.ToStringArray(allowlist.Strings(apiSources))
		if cfg.Network == stackconfig.NetworkVPNAuth {
			// k3s runs `tailscale up` but does not install it: cloud-init does.
			args.TailscaleRepo = pulumi.String(cfg.TailscaleAptRepo)
		}
	}
	if cc.Source == stackconfig.SourceNative {
		args.HcloudToken = pulumi.String(cc.HcloudToken)
		if cc.HcloudEndpoint != "" {
			args.HcloudEndpoint = pulumi.String(cc.HcloudEndpoint)
		}
	}
	if cc.Source == stackconfig.SourceTerraform {
		args.TerraformDir = pulumi.String(in.abs(cc.TerraformDir))
		if cc.TerraformBinary != "" {
			args.TerraformBinary = pulumi.String(cc.TerraformBinary)
		}
	}
	h, err := edgeline.NewCloudHost(ctx, "vps", args, in.options(c)...)
	if err != nil {
		return nil, err
	}
	c.IPv4, c.IPv6, c.Fingerprint, c.DNSNames = h.Ipv4Address, h.Ipv6Address, h.HostKeyFingerprint, h.DnsNames
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"ipv4": c.IPv4, "ipv6": c.IPv6, "hostKeyFingerprint": c.Fingerprint, "dnsNames": c.DNSNames})
}

// Cluster is the cluster layer: the k3s server on the VPS and the edge agents.
type Cluster struct {
	pulumi.ResourceState
	Kubeconfig pulumi.StringOutput
	Nodes      pulumi.StringArrayOutput
	server     *edgeline.K3sServer
	agents     []pulumi.Resource
}

func (in inputs) install() edgeline.K3sInstallArgs {
	i := edgeline.K3sInstallArgs{Version: pulumi.String(in.cfg.Versions.K3s)}
	if a := in.cfg.K3sAirGap; a != nil {
		i.AirGap = edgeline.K3sAirGapArgs{Binary: pulumi.String(in.abs(a.Binary)), Script: pulumi.String(in.abs(a.Script))}
	}
	return i
}

// agentSocket is the ssh-agent socket the config names, nil when it names none (the
// provider then uses $SSH_AUTH_SOCK, which changes per login and stays out of the state).
func (in inputs) agentSocket() pulumi.StringPtrInput {
	if s := in.cfg.SSH.AgentSocket; s != "" {
		return pulumi.StringPtr(expandHome(s))
	}
	return nil
}

// connectLimits sets the SSH connect timeout and retries of the config on conn.
func (in inputs) connectLimits(conn *edgeline.ConnectionArgs) {
	conn.ConnectTimeoutSeconds = pulumi.IntPtr(int(in.cfg.SSH.ConnectTimeout.Seconds()))
	// The provider reads zero as its default: "no retry" is negative there.
	retries := in.cfg.SSH.ConnectRetries
	if retries == 0 {
		retries = -1
	}
	conn.ConnectRetries = pulumi.IntPtr(retries)
}

// loginLimits sets the SSH connect timeout and retries of the config on the VPS login.
func (in inputs) loginLimits(l *edgeline.LoginArgs) {
	var conn edgeline.ConnectionArgs
	in.connectLimits(&conn)
	l.ConnectTimeoutSeconds, l.ConnectRetries = conn.ConnectTimeoutSeconds, conn.ConnectRetries
}

func newCluster(ctx *pulumi.Context, in inputs, cl *Cloud) (*Cluster, error) {
	c := &Cluster{}
	if err := ctx.RegisterComponentResource(TypeCluster, "cluster", c); err != nil {
		return nil, err
	}
	cfg := in.cfg
	serverConn := edgeline.ConnectionArgs{
		Host:               cl.IPv4,
		Port:               pulumi.Int(cfg.SSH.Port),
		User:               pulumi.String(cfg.SSH.User),
		KeyFile:            pulumi.String(in.keyFile),
		HostKeyFingerprint: cl.Fingerprint,
		AgentSocket:        in.agentSocket(),
	}
	in.connectLimits(&serverConn)
	args := &edgeline.K3sServerArgs{
		Connection: serverConn,
		// The IP first: the kubeconfig and the agents use it, so nothing waits for DNS.
		TlsSans:    pulumi.StringArray{cl.IPv4, pulumi.String(cfg.APIHost)},
		ExternalIP: cl.IPv4,
		Install:    in.install(),
	}
	if cfg.Network == stackconfig.NetworkWireguard {
		args.FlannelBackend = pulumi.String("wireguard-native")
	} else {
		args.VpnAuth = pulumi.String(cfg.VPNAuth)
	}
	server, err := edgeline.NewK3sServer(ctx, "server", args, in.options(c)...)
	if err != nil {
		return nil, err
	}
	c.server = server
	nodes := pulumi.StringArray{server.Node}
	for _, a := range cfg.Agents {
		conn := edgeline.ConnectionArgs{
			Host:        pulumi.String(a.Host),
			Port:        pulumi.Int(a.Port),
			User:        pulumi.String(a.User),
			KeyFile:     pulumi.String(in.keyFile),
			AgentSocket: in.agentSocket(),
		}
		in.connectLimits(&conn)
		if a.HostKeyFingerprint != "" {
			conn.HostKeyFingerprint = pulumi.String(a.HostKeyFingerprint)
		}
		if cfg.SSH.KnownHostsFile != "" {
			conn.KnownHostsFile = pulumi.String(in.abs(expandHome(cfg.SSH.KnownHostsFile)))
		}
		if j := a.Jump; j != nil {
			conn.Jump = edgeline.JumpHostArray{edgeline.JumpHostArgs{Host: pulumi.String(j.Host), Port: pulumi.Int(j.Port), User: pulumi.String(j.User)}}
		}
		args := &edgeline.K3sAgentArgs{
			Connection: conn,
			Server:     serverConn,
			ServerUrl:  server.ServerUrl,
			Token:      server.Token,
			Name:       pulumi.String(a.Name),
			Site:       pulumi.String(a.Site),
			Install:    in.install(),
		}
		if a.Labels != nil {
			args.Labels = pulumi.ToStringMap(a.Labels)
		}
		if a.Taints != nil {
			args.Taints = pulumi.ToStringArray(a.Taints)
		}
		if a.ExternalIP != "" {
			args.ExternalIP = pulumi.String(a.ExternalIP)
		}
		if cfg.Network == stackconfig.NetworkVPNAuth {
			args.VpnAuth = pulumi.String(cfg.VPNAuth)
		}
		if p := a.Prepare; p != nil {
			args.Prepare = edgeline.AgentPrepareArgs{Vars: pulumi.ToMap(cfg.PrepareVars(a)), Check: pulumi.Bool(p.Check)}
		}
		agent, err := edgeline.NewK3sAgent(ctx, "agent-"+a.Name, args, in.options(c)...)
		if err != nil {
			return nil, err
		}
		c.agents = append(c.agents, agent)
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
	issuers           *edgeline.HelmRelease
}

// chart says where a release's chart comes from: source is a local path, an oci://
// reference or a chart repository URL holding the chart called name; version and digest
// pin a pulled one.
type chart struct {
	name, source, version, digest string
}

func (in inputs) release(ctx *pulumi.Context, name, namespace string, ch chart, kubeconfig pulumi.StringOutput, values pulumi.Map, parent pulumi.Resource, deps []pulumi.Resource) (*edgeline.HelmRelease, error) {
	args := &edgeline.HelmReleaseArgs{
		Kubeconfig:     kubeconfig,
		Name:           pulumi.String(name),
		Namespace:      pulumi.String(namespace),
		Values:         jsonValues(values),
		Wait:           pulumi.Bool(in.cfg.HelmWait),
		TimeoutSeconds: pulumi.IntPtr(int(in.cfg.ReleaseTimeout(name).Seconds())),
	}
	switch {
	case strings.HasPrefix(ch.source, "oci://"):
		args.Chart = pulumi.String(ch.source)
	case strings.HasPrefix(ch.source, "https://") || strings.HasPrefix(ch.source, "http://"):
		args.Chart, args.Repository = pulumi.String(ch.name), pulumi.StringPtr(ch.source)
	default:
		args.Chart = pulumi.String(in.abs(ch.source))
	}
	if args.Repository != nil || strings.HasPrefix(ch.source, "oci://") {
		args.PinnedVersion = pulumi.StringPtr(ch.version)
		args.LockFile = pulumi.StringPtr(in.abs(in.cfg.Charts.LockFile))
		if ch.digest != "" {
			args.Digest = pulumi.StringPtr(ch.digest)
		}
		if in.cfg.Charts.CacheDir != "" {
			args.CacheDir = pulumi.StringPtr(in.abs(expandHome(in.cfg.Charts.CacheDir)))
		}
	}
	return edgeline.NewHelmRelease(ctx, name, args, in.options(parent, pulumi.DependsOn(deps))...)
}

func newPlatform(ctx *pulumi.Context, in inputs, kubeconfig pulumi.StringOutput, cluster *Cluster) (*Platform, error) {
	p := &Platform{}
	if err := ctx.RegisterComponentResource(TypePlatform, "platform", p); err != nil {
		return nil, err
	}
	cfg := in.cfg
	certManager, err := in.release(ctx, "cert-manager", "cert-manager",
		chart{"cert-manager", cfg.Charts.CertManager, cfg.Versions.CertManager, cfg.Charts.CertManagerDigest}, kubeconfig,
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
	p.issuers, err = in.release(ctx, "edgeline-issuers", "cert-manager", chart{source: "charts/issuers"}, kubeconfig, issuerValues, p, []pulumi.Resource{certManager})
	if err != nil {
		return nil, err
	}
	pw, err := edgeline.NewPassword(ctx, "rancher-bootstrap-password", &edgeline.PasswordArgs{Length: pulumi.Int(24)}, in.options(p)...)
	if err != nil {
		return nil, err
	}
	if _, err := in.release(ctx, "rancher", "cattle-system", chart{"rancher", cfg.Charts.Rancher, cfg.Versions.Rancher, cfg.Charts.RancherDigest}, kubeconfig, pulumi.Map{
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
	if repo := cfg.App.ImageRepository; repo != "" {
		// The image names `edgeline images push` publishes under the repository.
		v["api"].(map[string]any)["image"] = appImage(repo+"/facelogin-api", cfg.App.ImageTag, cfg.App.ImageDigests.API)
		v["web"] = map[string]any{"image": appImage(repo+"/facelogin-web", cfg.App.ImageTag, cfg.App.ImageDigests.Web)}
	}
	if cfg.App.DatabaseURL != "" {
		v["postgresql"] = map[string]any{"enabled": false}
		v["database"] = map[string]any{"url": cfg.App.DatabaseURL}
	}
	merge(v, cfg.App.Values)
	return pulumi.ToMap(v)
}

// appImage is a chart image value; an empty tag leaves the chart's appVersion.
func appImage(repository, tag, digest string) map[string]any {
	img := map[string]any{"repository": repository}
	if tag != "" {
		img["tag"] = tag
	}
	if digest != "" {
		img["digest"] = digest
	}
	return img
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
	r, err := in.release(ctx, "facelogin", "facelogin", chart{source: in.cfg.Charts.Facelogin}, kubeconfig, appValues(in.cfg), a, []pulumi.Resource{platform.issuers})
	if err != nil {
		return nil, err
	}
	a.Status = r.Status
	return a, ctx.RegisterResourceOutputs(a, pulumi.Map{"status": a.Status})
}
