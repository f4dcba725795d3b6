package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/edgeline/edgeline/internal/k3s"
	"github.com/edgeline/edgeline/internal/remote"
)

// Connection says how to reach a host over SSH. Host keys are always verified: by the
// pinned fingerprint, else by the known_hosts file. A zero Port or empty User means
// remote's defaults (remote.DefaultPort, remote.DefaultUser).
type Connection struct {
	Host               string     `pulumi:"host"`
	Port               int        `pulumi:"port,optional"`
	User               string     `pulumi:"user,optional"`
	KeyFile            string     `pulumi:"keyFile"`
	HostKeyFingerprint string     `pulumi:"hostKeyFingerprint,optional"`
	KnownHostsFile     string     `pulumi:"knownHostsFile,optional"`
	Jump               []JumpHost `pulumi:"jump,optional"`
	// AgentSocket is the ssh-agent that holds KeyFile's key when the file has a
	// passphrase or is not on this machine; empty means $SSH_AUTH_SOCK.
	AgentSocket string `pulumi:"agentSocket,optional"`
	// ConnectTimeoutSeconds bounds each connection attempt (TCP and SSH handshake);
	// zero means DefaultConnectTimeout.
	ConnectTimeoutSeconds int `pulumi:"connectTimeoutSeconds,optional"`
	// ConnectRetries is how many more attempts follow a failed connection (refused,
	// unreachable, timed out), 2 s apart at first, doubling up to 10 s; zero means
	// DefaultConnectRetries, negative none.
	ConnectRetries int `pulumi:"connectRetries,optional"`
}

// Defaults fit for a VPS that is still booting: cloud-init installs the host key and
// starts sshd a minute or two after the API reports the server running.
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultConnectRetries = 15 // ≈ 2.5 min of waits between attempts
)

// Annotate names the type in the schema.
func (c *Connection) Annotate(a infer.Annotator) {
	a.Describe(c, "How to reach a host over SSH, with its host key verified.")
	a.SetToken("index", "Connection")
}

// JumpHost is a bastion on the way to a host (ProxyJump).
type JumpHost struct {
	Host               string `pulumi:"host"`
	Port               int    `pulumi:"port,optional"`
	User               string `pulumi:"user,optional"`
	HostKeyFingerprint string `pulumi:"hostKeyFingerprint,optional"`
}

// Annotate names the type in the schema.
func (j *JumpHost) Annotate(a infer.Annotator) {
	a.Describe(j, "A bastion on the way to a host (ProxyJump).")
	a.SetToken("index", "JumpHost")
}

func (c Connection) config() remote.Config {
	cfg := remote.Config{
		Host: c.Host, Port: c.Port, User: c.User, KeyFiles: []string{c.KeyFile},
		KnownHostsFile: c.KnownHostsFile, HostKeyFingerprint: c.HostKeyFingerprint,
		AgentSocket: c.AgentSocket,
		Timeout:     DefaultConnectTimeout, Retries: DefaultConnectRetries, Backoff: 2 * time.Second,
	}
	if c.ConnectTimeoutSeconds > 0 {
		cfg.Timeout = time.Duration(c.ConnectTimeoutSeconds) * time.Second
	}
	switch {
	case c.ConnectRetries > 0:
		cfg.Retries = c.ConnectRetries
	case c.ConnectRetries < 0:
		cfg.Retries = -1
	}
	for _, j := range c.Jump {
		cfg.Jump = append(cfg.Jump, remote.Config{Host: j.Host, Port: j.Port, User: j.User, HostKeyFingerprint: j.HostKeyFingerprint})
	}
	return cfg
}

func (c Connection) dial(ctx context.Context) (remote.Executor, error) {
	if c.HostKeyFingerprint == "" && c.KnownHostsFile == "" {
		return nil, fmt.Errorf("ssh %s: neither a host key fingerprint nor a known_hosts file: host keys are always verified", c.Host)
	}
	return remote.Dial(ctx, c.config())
}

// K3sServer installs the k3s server on the VPS. Delete runs k3s's uninstall script.
type K3sServer struct{}

// K3sServerArgs are the inputs of a K3sServer.
type K3sServerArgs struct {
	Connection Connection `pulumi:"connection"`
	// Name is the node name; empty means the host name.
	Name    string   `pulumi:"name,optional"`
	TLSSANs []string `pulumi:"tlsSans,optional"`
	// ExternalIP is the address k3s advertises (node-external-ip).
	ExternalIP     string            `pulumi:"externalIP,optional"`
	FlannelBackend string            `pulumi:"flannelBackend,optional"`
	Labels         map[string]string `pulumi:"labels,optional"`
	Taints         []string          `pulumi:"taints,optional"`
	VPNAuth        string            `pulumi:"vpnAuth,optional" provider:"secret"`
	Disable        []string          `pulumi:"disable,optional"`
	APIServerURL   string            `pulumi:"apiServerUrl,optional"`
	Install        K3sInstall        `pulumi:"install"`
}

// K3sInstall says which k3s to install and where it comes from.
type K3sInstall struct {
	Version string     `pulumi:"version,optional"`
	AirGap  *K3sAirGap `pulumi:"airGap,optional"`
}

// Annotate names the type in the schema.
func (in *K3sInstall) Annotate(a infer.Annotator) {
	a.Describe(in, "Which k3s to install and where it comes from.")
	a.SetToken("index", "K3sInstall")
}

// K3sAirGap names the k3s files on the machine that runs the provider, uploaded instead
// of downloaded on the host.
type K3sAirGap struct {
	Binary string `pulumi:"binary"`
	Script string `pulumi:"script"`
}

// Annotate names the type in the schema.
func (a *K3sAirGap) Annotate(an infer.Annotator) {
	an.Describe(a, "The k3s binary and install script to upload for an air-gapped install.")
	an.SetToken("index", "K3sAirGap")
}

func (in K3sInstall) k3s() k3s.Install {
	out := k3s.Install{Version: in.Version}
	if in.AirGap != nil {
		out.AirGap = &k3s.AirGap{Binary: in.AirGap.Binary, Script: in.AirGap.Script}
	}
	return out
}

// K3sServerState is a K3sServer's state.
type K3sServerState struct {
	K3sServerArgs
	Token      string `pulumi:"token" provider:"secret"`
	Kubeconfig string `pulumi:"kubeconfig" provider:"secret"`
	ServerURL  string `pulumi:"serverUrl"`
	Node       string `pulumi:"node"`
}

// Annotate documents the resource.
func (s *K3sServer) Annotate(a infer.Annotator) {
	a.Describe(s, "The k3s server on the VPS, installed over SSH.")
	a.SetToken("index", "K3sServer")
}

func (a K3sServerArgs) config() k3s.ServerConfig {
	c := k3s.ServerConfig{
		NodeName: a.Name, TLSSANs: a.TLSSANs, NodeExternalIP: a.ExternalIP,
		FlannelBackend: a.FlannelBackend, Labels: a.Labels, Taints: a.Taints, VPNAuth: a.VPNAuth,
		Disable: a.Disable, APIServerURL: a.APIServerURL, Install: a.Install.k3s(),
	}
	if c.FlannelBackend == k3s.FlannelWireguardNative && c.NodeExternalIP != "" {
		c.FlannelExternalIP = true
	}
	return c
}

func (s *K3sServer) apply(ctx context.Context, args K3sServerArgs) (K3sServerState, error) {
	cfg := args.config()
	if err := cfg.Validate(); err != nil {
		return K3sServerState{}, fmt.Errorf("k3s server: %w", err)
	}
	ex, err := dialVPS(ctx, args.Connection)
	if err != nil {
		return K3sServerState{}, err
	}
	defer ex.Close()
	var log strings.Builder
	res, err := k3s.InstallServer{Exec: ex, Config: cfg, Log: &log}.Run(ctx)
	if err != nil {
		return K3sServerState{}, err
	}
	logf(ctx, "%s", strings.TrimSpace(log.String()))
	return K3sServerState{
		K3sServerArgs: args, Token: res.Token, Kubeconfig: string(res.Kubeconfig),
		ServerURL: serverURL(args), Node: res.NodeName,
	}, nil
}

// serverURL is the address agents join: the API host name when there is one.
func serverURL(a K3sServerArgs) string {
	if a.APIServerURL != "" {
		return a.APIServerURL
	}
	h := a.Connection.Host
	if len(a.TLSSANs) > 0 {
		h = a.TLSSANs[0]
	}
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return "https://" + h + ":6443"
}

// Create installs k3s.
func (s *K3sServer) Create(ctx context.Context, req infer.CreateRequest[K3sServerArgs]) (infer.CreateResponse[K3sServerState], error) {
	if req.DryRun {
		return infer.CreateResponse[K3sServerState]{ID: req.Inputs.Connection.Host, Output: K3sServerState{K3sServerArgs: req.Inputs, ServerURL: serverURL(req.Inputs)}}, nil
	}
	st, err := s.apply(ctx, req.Inputs)
	if err != nil {
		return infer.CreateResponse[K3sServerState]{}, err
	}
	return infer.CreateResponse[K3sServerState]{ID: req.Inputs.Connection.Host, Output: st}, nil
}

// Diff replaces the server when it moves to another host; anything else converges in
// place (k3s reinstalls only when its configuration changed).
func (s *K3sServer) Diff(ctx context.Context, req infer.DiffRequest[K3sServerArgs, K3sServerState]) (infer.DiffResponse, error) {
	o, n := req.State.K3sServerArgs, req.Inputs
	return diff(inputs(o, n, "connection.host", "name")...), nil
}

// Update converges the server to the new inputs.
func (s *K3sServer) Update(ctx context.Context, req infer.UpdateRequest[K3sServerArgs, K3sServerState]) (infer.UpdateResponse[K3sServerState], error) {
	if req.DryRun {
		st := req.State
		st.K3sServerArgs = req.Inputs
		return infer.UpdateResponse[K3sServerState]{Output: st}, nil
	}
	st, err := s.apply(ctx, req.Inputs)
	return infer.UpdateResponse[K3sServerState]{Output: st}, err
}

// Read checks that k3s is still installed; a host without its state is gone.
func (s *K3sServer) Read(ctx context.Context, req infer.ReadRequest[K3sServerArgs, K3sServerState]) (infer.ReadResponse[K3sServerArgs, K3sServerState], error) {
	ok, err := installed(ctx, req.State.Connection, true)
	if err != nil || !ok {
		return infer.ReadResponse[K3sServerArgs, K3sServerState]{}, err
	}
	return infer.ReadResponse[K3sServerArgs, K3sServerState]{ID: req.ID, Inputs: req.Inputs, State: req.State}, nil
}

// Delete runs the k3s uninstall script on the server.
func (s *K3sServer) Delete(ctx context.Context, req infer.DeleteRequest[K3sServerState]) (infer.DeleteResponse, error) {
	ex, err := dialVPS(ctx, req.State.Connection)
	if err != nil {
		return infer.DeleteResponse{}, err
	}
	defer ex.Close()
	_, err = ex.Run(ctx, remote.Command{
		Intent:  "uninstall the k3s server",
		Cmd:     "if [ -x /usr/local/bin/k3s-uninstall.sh ]; then /usr/local/bin/k3s-uninstall.sh; fi\nrm -f " + k3s.StatePath + " " + k3s.ConfigPath,
		Sudo:    true,
		Timeout: 5 * time.Minute,
	})
	return infer.DeleteResponse{}, err
}

// installed reports whether edgeline's k3s state file is on the host; vps says c
// reaches the VPS.
func installed(ctx context.Context, c Connection, vps bool) (bool, error) {
	ex, err := c.dial(ctx)
	if vps {
		err = vpsHostKey(err, c.Host, c.HostKeyFingerprint)
	}
	if err != nil {
		return false, err
	}
	defer ex.Close()
	res, err := ex.Run(ctx, remote.Command{Intent: "look for k3s", Cmd: "if [ -f " + k3s.StatePath + " ]; then echo yes; fi", Sudo: true, Timeout: time.Minute})
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(res.Stdout)) == "yes", nil
}

// K3sAgent joins an edge node to the cluster. Delete drains and deletes the node and
// runs k3s's agent uninstall script.
type K3sAgent struct{}

// K3sAgentArgs are the inputs of a K3sAgent.
type K3sAgentArgs struct {
	Connection Connection `pulumi:"connection"`
	// Server is how to reach the k3s server, whose kubectl labels and removes the node.
	Server    Connection `pulumi:"server"`
	ServerURL string     `pulumi:"serverUrl"`
	Token     string     `pulumi:"token" provider:"secret"`
	// Name is the node name.
	Name   string            `pulumi:"name"`
	Site   string            `pulumi:"site,optional"`
	Labels map[string]string `pulumi:"labels,optional"`
	Taints []string          `pulumi:"taints,optional"`
	// ExternalIP is the address k3s advertises (node-external-ip).
	ExternalIP string     `pulumi:"externalIP,optional"`
	VPNAuth    string     `pulumi:"vpnAuth,optional" provider:"secret"`
	Install    K3sInstall `pulumi:"install"`
	// Prepare runs the Pi preparation on the agent before it joins; nil skips it.
	Prepare *AgentPrepare `pulumi:"prepare,optional"`
}

// K3sAgentState is a K3sAgent's state.
type K3sAgentState struct {
	K3sAgentArgs
	Node string `pulumi:"node"`
}

// Annotate documents the resource.
func (a *K3sAgent) Annotate(an infer.Annotator) {
	an.Describe(a, "An edge agent (e.g. a Raspberry Pi) joined to the k3s cluster over SSH.")
	an.SetToken("index", "K3sAgent")
}

func (a K3sAgentArgs) config() k3s.AgentConfig {
	c := k3s.AgentConfig{
		NodeName: a.Name, Site: a.Site, Labels: a.Labels, Taints: a.Taints,
		NodeExternalIP: a.ExternalIP, VPNAuth: a.VPNAuth, Install: a.Install.k3s(),
	}
	if c.Taints == nil {
		c.Taints = k3s.DefaultTaints()
	}
	return c
}

func (*K3sAgent) apply(ctx context.Context, args K3sAgentArgs) (K3sAgentState, error) {
	if err := args.config().Validate(); err != nil {
		return K3sAgentState{}, fmt.Errorf("k3s agent %s: %w", args.Name, err)
	}
	server, err := dialVPS(ctx, args.Server)
	if err != nil {
		return K3sAgentState{}, err
	}
	defer server.Close()
	if p := args.Prepare; p != nil {
		if err := p.run(ctx, args.Name, args.Connection); err != nil {
			return K3sAgentState{}, err
		}
	}
	// Dialed after the preparation, which may have rebooted the Pi.
	ex, err := args.Connection.dial(ctx)
	if err != nil {
		return K3sAgentState{}, err
	}
	defer ex.Close()
	var log strings.Builder
	res, err := k3s.JoinAgent{Exec: ex, Server: server, ServerURL: args.ServerURL, Token: args.Token, Config: args.config(), Log: &log}.Run(ctx)
	if err != nil {
		return K3sAgentState{}, err
	}
	logf(ctx, "%s", strings.TrimSpace(log.String()))
	return K3sAgentState{K3sAgentArgs: args, Node: res.NodeName}, nil
}

// Create joins the agent.
func (a *K3sAgent) Create(ctx context.Context, req infer.CreateRequest[K3sAgentArgs]) (infer.CreateResponse[K3sAgentState], error) {
	if req.DryRun {
		return infer.CreateResponse[K3sAgentState]{ID: req.Inputs.Name, Output: K3sAgentState{K3sAgentArgs: req.Inputs, Node: req.Inputs.Name}}, nil
	}
	st, err := a.apply(ctx, req.Inputs)
	if err != nil {
		return infer.CreateResponse[K3sAgentState]{}, err
	}
	return infer.CreateResponse[K3sAgentState]{ID: req.Inputs.Name, Output: st}, nil
}

// Diff replaces the agent when it moves to another host or node name; labels, taints,
// version and token converge in place.
func (a *K3sAgent) Diff(ctx context.Context, req infer.DiffRequest[K3sAgentArgs, K3sAgentState]) (infer.DiffResponse, error) {
	o, n := req.State.K3sAgentArgs, req.Inputs
	return diff(inputs(o, n, "connection.host", "name")...), nil
}

// Update converges the agent to the new inputs.
func (a *K3sAgent) Update(ctx context.Context, req infer.UpdateRequest[K3sAgentArgs, K3sAgentState]) (infer.UpdateResponse[K3sAgentState], error) {
	if req.DryRun {
		return infer.UpdateResponse[K3sAgentState]{Output: K3sAgentState{K3sAgentArgs: req.Inputs, Node: req.State.Node}}, nil
	}
	st, err := a.apply(ctx, req.Inputs)
	return infer.UpdateResponse[K3sAgentState]{Output: st}, err
}

// Read checks that the agent is still installed.
func (a *K3sAgent) Read(ctx context.Context, req infer.ReadRequest[K3sAgentArgs, K3sAgentState]) (infer.ReadResponse[K3sAgentArgs, K3sAgentState], error) {
	ok, err := installed(ctx, req.State.Connection, false)
	if err != nil || !ok {
		return infer.ReadResponse[K3sAgentArgs, K3sAgentState]{}, err
	}
	return infer.ReadResponse[K3sAgentArgs, K3sAgentState]{ID: req.ID, Inputs: req.Inputs, State: req.State}, nil
}

// Delete drains and deletes the node, then uninstalls k3s on the agent. An agent that
// cannot be reached any more (a dead Pi) is still removed from the cluster.
func (a *K3sAgent) Delete(ctx context.Context, req infer.DeleteRequest[K3sAgentState]) (infer.DeleteResponse, error) {
	st := req.State
	server, err := dialVPS(ctx, st.Server)
	if err != nil {
		return infer.DeleteResponse{}, err
	}
	defer server.Close()
	agent, err := st.Connection.dial(ctx)
	var hostErr *remote.HostKeyError
	switch {
	case errors.As(err, &hostErr):
		return infer.DeleteResponse{}, err
	case err != nil:
		p := fmt.Sprintf("agent %s unreachable (%v): removing the node from the cluster only", st.Node, err)
		logf(ctx, "%s", p)
		agent = nil
	default:
		defer agent.Close()
	}
	var log strings.Builder
	if err := (k3s.RemoveAgent{Server: server, Agent: agent, NodeName: st.Node, Log: &log}).Run(ctx); err != nil {
		return infer.DeleteResponse{}, err
	}
	logf(ctx, "%s", strings.TrimSpace(log.String()))
	return infer.DeleteResponse{}, nil
}

// WireDependencies marks the token and the kubeconfig secret.
func (*K3sServer) WireDependencies(f infer.FieldSelector, args *K3sServerArgs, state *K3sServerState) {
	f.OutputField(state).DependsOn(f.InputField(args).Computed())
	f.OutputField(&state.Token).AlwaysSecret()
	f.OutputField(&state.Kubeconfig).AlwaysSecret()
}
