package k3s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/edgeline/edgeline/internal/remote"
)

// installTimeout bounds one run of the install script (it downloads and starts k3s).
const installTimeout = 10 * time.Minute

// InstallServer makes a host the k3s server, or brings an existing one in line with Config.
type InstallServer struct {
	// Exec reaches the server host.
	Exec remote.Executor
	// Config describes the server.
	Config ServerConfig
	// Log receives one line saying what changed; nil means none.
	Log io.Writer
}

// ServerResult is what agents and kubectl need from the server.
type ServerResult struct {
	// Token is the secret agents join with (the server's node-token).
	Token string
	// Kubeconfig is an admin kubeconfig pointing at the server's public address; a secret.
	Kubeconfig []byte
	// NodeName is the server's node name.
	NodeName string
	// Changed reports whether this run changed the host.
	Changed bool
}

// JoinAgent makes a host a k3s agent of the cluster, or brings an existing agent in line
// with Config.
type JoinAgent struct {
	// Exec reaches the agent host.
	Exec remote.Executor
	// Server reaches the k3s server; node labels and taints are set through it, because
	// the kubelet may not set node-role labels itself and sets labels only when the node
	// first registers.
	Server remote.Executor
	// ServerURL is the k3s server's supervisor address, e.g. https://203.0.113.7:6443.
	ServerURL string
	// Token is ServerResult.Token.
	Token string
	// Config describes the agent.
	Config AgentConfig
	// Log receives one line saying what changed; nil means none.
	Log io.Writer
}

// AgentResult reports a join.
type AgentResult struct {
	// NodeName is the agent's node name.
	NodeName string
	// Changed reports whether this run changed the host or the node's labels or taints.
	Changed bool
}

// Run installs or updates the server and returns what agents need to join.
func (op InstallServer) Run(ctx context.Context) (ServerResult, error) {
	if op.Exec == nil {
		return ServerResult{}, errors.New("install k3s server: no executor")
	}
	res, err := op.run(ctx)
	return res, hostError("install k3s server", op.Exec.Host(), err)
}

func (op InstallServer) run(ctx context.Context) (ServerResult, error) {
	if err := op.Config.Validate(); err != nil {
		return ServerResult{}, err
	}
	c := op.Config
	p, err := newPlan("server", renderServer(c), c.Install, c.Labels, c.Taints)
	if err != nil {
		return ServerResult{}, err
	}
	p.vpn = c.VPNAuth != ""
	info, err := probe(ctx, op.Exec)
	if err != nil {
		return ServerResult{}, err
	}
	node := c.NodeName
	if node == "" {
		node = info.hostname
	}
	res := ServerResult{NodeName: node}
	installed := info.state.Hash != p.hash || !info.binary
	if installed {
		if err := p.apply(ctx, op.Exec); err != nil {
			return res, err
		}
		res.Changed = true
	}
	if installed || nodeMetaChanged(info.state, c.Labels, p.taints) {
		if len(c.Labels) > 0 || len(p.taints) > 0 || len(info.state.Labels) > 0 || len(info.state.Taints) > 0 {
			if err := applyNodeMeta(ctx, op.Exec, node, info.state, c.Labels, p.taints); err != nil {
				return res, err
			}
		}
		res.Changed = true
	}
	token, kubeconfig, err := readServerSecrets(ctx, op.Exec)
	if err != nil {
		return res, err
	}
	if c.Token != "" && token == "" {
		token = c.Token
	}
	res.Token = token
	res.Kubeconfig = rewriteKubeconfig(kubeconfig, apiServerURL(c, op.Exec.Host()))
	if res.Changed {
		if err := writeState(ctx, op.Exec, state{Hash: p.hash, Node: node, Labels: c.Labels, Taints: p.taints}); err != nil {
			return res, err
		}
		logf(op.Log, "%s: k3s server %s installed or updated", op.Exec.Host(), node)
	} else {
		logf(op.Log, "%s: k3s server %s up to date, nothing changed", op.Exec.Host(), node)
	}
	return res, nil
}

// readServerSecrets waits for k3s to write its kubeconfig and node token, and reads both.
func readServerSecrets(ctx context.Context, ex remote.Executor) (string, []byte, error) {
	cmd := fmt.Sprintf(`i=0
until [ -s %[1]s ] && [ -s %[2]s ]; do
  i=$((i+1)); if [ $i -ge 60 ]; then echo "k3s did not write %[1]s and %[2]s within 2 minutes; see journalctl -u k3s" >&2; exit 1; fi
  sleep 2
done
cat %[2]s; echo %[3]s; cat %[1]s`, KubeconfigPath, NodeTokenPath, probeSep)
	res, err := ex.Run(ctx, remote.Command{Intent: "read the k3s token and kubeconfig", Cmd: cmd, Sudo: true, Timeout: 3 * time.Minute})
	if err != nil {
		return "", nil, err
	}
	token, kc, ok := strings.Cut(string(res.Stdout), probeSep+"\n")
	if !ok {
		return "", nil, &remote.CommandError{Host: ex.Host(), Intent: "read the k3s token and kubeconfig", ExitCode: -1, Err: errors.New("unexpected output")}
	}
	return strings.TrimSpace(token), []byte(kc), nil
}

func apiServerURL(c ServerConfig, host string) string {
	if c.APIServerURL != "" {
		return c.APIServerURL
	}
	h := ""
	for _, san := range c.TLSSANs {
		if !strings.HasPrefix(san, "*.") {
			h = san
			break
		}
	}
	switch {
	case h != "":
	case c.NodeExternalIP != "":
		h, _, _ = strings.Cut(c.NodeExternalIP, ",")
	default:
		if i := strings.LastIndexByte(host, '@'); i >= 0 {
			host = host[i+1:]
		}
		if hh, _, err := net.SplitHostPort(host); err == nil {
			h = hh
		}
	}
	if h == "" {
		return ""
	}
	return "https://" + net.JoinHostPort(h, "6443")
}

// rewriteKubeconfig points the kubeconfig k3s writes (https://127.0.0.1:6443) at url.
func rewriteKubeconfig(kc []byte, url string) []byte {
	if url == "" {
		return kc
	}
	return bytes.ReplaceAll(kc, []byte("https://127.0.0.1:6443"), []byte(url))
}

// Run joins the agent, or brings it in line with Config.
func (op JoinAgent) Run(ctx context.Context) (AgentResult, error) {
	if op.Exec == nil {
		return AgentResult{}, errors.New("join k3s agent: no executor")
	}
	res, err := op.run(ctx)
	return res, hostError("join k3s agent", op.Exec.Host(), err)
}

func (op JoinAgent) run(ctx context.Context) (AgentResult, error) {
	host := op.Exec.Host()
	if err := op.validate(); err != nil {
		return AgentResult{}, err
	}
	c := op.Config
	labels, taints := c.labels(), sorted(c.taints())
	p, err := newPlan("agent", renderAgent(op.ServerURL, op.Token, c), c.Install, labels, taints)
	if err != nil {
		return AgentResult{}, err
	}
	p.vpn = c.VPNAuth != ""
	info, err := probe(ctx, op.Exec)
	if err != nil {
		return AgentResult{}, err
	}
	node := c.NodeName
	if node == "" {
		node = info.hostname
	}
	res := AgentResult{NodeName: node}
	installed := info.state.Hash != p.hash || !info.binary
	if installed {
		if err := p.apply(ctx, op.Exec); err != nil {
			return res, err
		}
		res.Changed = true
	}
	if installed || nodeMetaChanged(info.state, labels, taints) {
		if err := applyNodeMeta(ctx, op.Server, node, info.state, labels, taints); err != nil {
			return res, err
		}
		res.Changed = true
	}
	if !res.Changed {
		logf(op.Log, "%s: k3s agent %s up to date, nothing changed", host, node)
		return res, nil
	}
	if err := writeState(ctx, op.Exec, state{Hash: p.hash, Node: node, Labels: labels, Taints: taints}); err != nil {
		return res, err
	}
	logf(op.Log, "%s: k3s agent %s joined or updated", host, node)
	return res, nil
}

func (op JoinAgent) validate() error {
	if op.Server == nil {
		return errors.New("no server executor: node labels and taints are set through the server's kubectl")
	}
	u := op.ServerURL
	if !strings.HasPrefix(u, "https://") || len(u) <= len("https://") {
		return fmt.Errorf("server URL %q is not an https URL like https://203.0.113.7:6443", u)
	}
	if op.Token == "" {
		return errors.New("no join token: pass the server's token (ServerResult.Token)")
	}
	if strings.ContainsAny(op.Token, "\n\r") {
		return errors.New("join token contains a line break")
	}
	return op.Config.Validate()
}
