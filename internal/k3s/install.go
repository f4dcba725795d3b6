package k3s

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
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

// state is what edgeline records on the host after a successful run.
type state struct {
	// Hash covers the rendered config, the install invocation and the uploaded files.
	Hash   string            `json:"hash"`
	Node   string            `json:"node"`
	Labels map[string]string `json:"labels,omitempty"`
	Taints []string          `json:"taints,omitempty"`
}

// plan is what a run would do on one host.
type plan struct {
	role   string // "server" or "agent"
	config []byte
	env    []string
	hash   string
	air    *AirGap
	script string // online: URL of the install script
	sum    string // online: its sha256
	labels map[string]string
	taints []string
	vpn    bool // vpn-auth: k3s needs tailscale on the host
}

func newPlan(role string, config []byte, in Install, labels map[string]string, taints []string) (plan, error) {
	p := plan{role: role, config: config, air: in.AirGap, labels: labels, taints: sorted(taints)}
	if in.Version != "" {
		p.env = append(p.env, "INSTALL_K3S_VERSION="+in.Version)
	} else if in.Channel != "" {
		p.env = append(p.env, "INSTALL_K3S_CHANNEL="+in.Channel)
	}
	h := sha256.New()
	fmt.Fprintf(h, "role %s\nconfig %x\n", role, sha256.Sum256(config))
	if p.air != nil {
		p.env = append(p.env, "INSTALL_K3S_SKIP_DOWNLOAD=true")
		for _, f := range []string{p.air.Binary, p.air.Script, p.air.Images} {
			if f == "" {
				continue
			}
			sum, err := fileSum(f)
			if err != nil {
				return plan{}, fmt.Errorf("air-gapped install: %w", err)
			}
			fmt.Fprintf(h, "file %s %s\n", path.Base(f), sum)
		}
	} else {
		p.script, p.sum = in.ScriptURL, in.ScriptSHA256
		if p.script == "" {
			p.script, p.sum = DefaultScriptURL, DefaultScriptSHA256
		}
		fmt.Fprintf(h, "script %s %s\n", p.script, p.sum)
	}
	fmt.Fprintf(h, "env %s\n", strings.Join(p.env, " "))
	p.hash = hex.EncodeToString(h.Sum(nil))
	return p, nil
}

// sums caches file hashes by path, size and modification time: a fan-out to many agents
// hashes the (large) k3s binary once, not once per agent.
var sums sync.Map

func fileSum(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", name, fi.Size(), fi.ModTime().UnixNano())
	if s, ok := sums.Load(key); ok {
		return s.(string), nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	sums.Store(key, sum)
	return sum, nil
}

// hostInfo is what one probe learns about a host.
type hostInfo struct {
	hostname string
	binary   bool
	state    state
}

const probeSep = "--edgeline--"

// probe reads the host name, whether k3s is installed and the recorded state, in one
// round trip.
func probe(ctx context.Context, ex remote.Executor) (hostInfo, error) {
	res, err := ex.Run(ctx, remote.Command{
		Intent: "read the k3s state",
		Cmd: fmt.Sprintf("hostname; echo %s; if [ -x %s ]; then echo present; fi; echo %s; cat %s 2>/dev/null || true",
			probeSep, BinaryPath, probeSep, StatePath),
		Sudo:    true,
		Timeout: time.Minute,
	})
	if err != nil {
		return hostInfo{}, err
	}
	parts := strings.SplitN(string(res.Stdout), probeSep+"\n", 3)
	if len(parts) != 3 {
		return hostInfo{}, &remote.CommandError{Host: ex.Host(), Intent: "read the k3s state", ExitCode: -1, Err: errors.New("unexpected output")}
	}
	info := hostInfo{hostname: strings.TrimSpace(parts[0]), binary: strings.TrimSpace(parts[1]) == "present"}
	if s := bytes.TrimSpace([]byte(parts[2])); len(s) > 0 {
		if err := json.Unmarshal(s, &info.state); err != nil {
			// A damaged state file only means we cannot skip work: converge from scratch.
			info.state = state{}
		}
	}
	return info, nil
}

// apply uploads the configuration (and, air-gapped, k3s itself) in one go and runs the
// install script.
func (p plan) apply(ctx context.Context, ex remote.Executor) error {
	files := []remote.File{{Path: ConfigPath, Content: bytes.NewReader(p.config), Mode: 0o600, Intent: "write the k3s configuration"}}
	var b strings.Builder
	b.WriteString("set -e\n")
	// On a new server cloud-init may still be installing packages (tailscale for
	// vpn-auth); its own result is reported by what is missing below, if anything.
	b.WriteString("if command -v cloud-init >/dev/null 2>&1; then cloud-init status --wait >/dev/null 2>&1 || true; fi\n")
	if p.vpn {
		b.WriteString(`command -v tailscale >/dev/null 2>&1 || { echo "vpn-auth needs tailscale on this host and it is not installed: a VPS gets it through cloud-init (see /var/log/cloud-init-output.log), a Pi through the edge_node role (edge_tailscale)" >&2; exit 1; }` + "\n")
	}
	if p.air != nil {
		local := []struct {
			src, dest, intent string
			mode              os.FileMode
		}{
			{p.air.Binary, BinaryPath, "upload the k3s binary", 0o755},
			{p.air.Script, ScriptPath, "upload the k3s install script", 0o755},
		}
		if p.air.Images != "" {
			local = append(local, struct {
				src, dest, intent string
				mode              os.FileMode
			}{p.air.Images, path.Join(AirGapImagesDir, path.Base(p.air.Images)), "upload the k3s images", 0o644})
		}
		for _, l := range local {
			f, err := os.Open(l.src)
			if err != nil {
				return fmt.Errorf("%s: %w", l.intent, err)
			}
			defer f.Close()
			files = append(files, remote.File{Path: l.dest, Content: f, Mode: l.mode, Intent: l.intent})
		}
	} else {
		// The script runs only when it is byte for byte the one pinned.
		fmt.Fprintf(&b, `curl -fsSL --retry 3 -o %[1]s.part %[2]s
got=$(sha256sum %[1]s.part | cut -c1-64)
if [ "$got" != %[3]s ]; then
  rm -f %[1]s.part
  echo "the install script from %[2]s has sha256 $got, not the pinned %[3]s: refusing to run it; if the new script is the one you want, set its URL and sha256 in the stack config" >&2
  exit 1
fi
chmod 0755 %[1]s.part
mv -f %[1]s.part %[1]s
`, ScriptPath, remote.Quote(p.script), p.sum)
	}
	if err := ex.Upload(ctx, files...); err != nil {
		return err
	}
	b.WriteString("env")
	for _, e := range p.env {
		b.WriteString(" " + remote.Quote(e))
	}
	fmt.Fprintf(&b, " sh %s %s\n", ScriptPath, p.role)
	_, err := ex.Run(ctx, remote.Command{Intent: "install k3s " + p.role, Cmd: b.String(), Sudo: true, Timeout: installTimeout})
	return err
}

// writeState records s on the host, last, once everything it describes is done.
func writeState(ctx context.Context, ex remote.Executor, s state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return ex.Upload(ctx, remote.File{Path: StatePath, Content: bytes.NewReader(append(b, '\n')), Mode: 0o600, Intent: "record the k3s state"})
}

// nodeMetaChanged reports whether labels or taints differ from what was applied before.
func nodeMetaChanged(s state, labels map[string]string, taints []string) bool {
	return !maps.Equal(s.Labels, labels) || !slices.Equal(s.Taints, taints)
}

// applyNodeMeta sets labels and taints on node through the server's kubectl, removing the
// ones a previous run set that are no longer wanted.
func applyNodeMeta(ctx context.Context, server remote.Executor, node string, had state, labels map[string]string, taints []string) error {
	var b strings.Builder
	n := remote.Quote(node)
	b.WriteString("set -e\n")
	var args []string
	for _, kv := range labelList(labels, func(string) bool { return true }) {
		args = append(args, remote.Quote(kv))
	}
	var gone []string
	for k := range had.Labels {
		if _, ok := labels[k]; !ok {
			gone = append(gone, remote.Quote(k+"-"))
		}
	}
	sort.Strings(gone)
	args = append(args, gone...)
	// A freshly installed agent registers within seconds: retry the first call while the
	// node is not found. Every kubectl call costs the server a process start, so the
	// label call doubles as the wait.
	first := fmt.Sprintf("k3s kubectl get node %s -o name", n)
	if len(args) > 0 {
		first = fmt.Sprintf("k3s kubectl label node %s --overwrite %s", n, strings.Join(args, " "))
	}
	fmt.Fprintf(&b, `i=0
until out=$(%s 2>&1); do
  case "$out" in *NotFound*|*"not found"*) ;; *) echo "$out" >&2; exit 1 ;; esac
  i=$((i+1)); if [ $i -ge 90 ]; then echo "node %s did not register with the server within 3 minutes" >&2; exit 1; fi
  sleep 2
done
`, first, node)
	want := map[string]bool{}
	if len(taints) > 0 {
		var ts []string
		for _, t := range taints {
			ts = append(ts, remote.Quote(t))
			pt, _ := parseTaint(t)
			want[pt.key+":"+pt.effect] = true
		}
		fmt.Fprintf(&b, "k3s kubectl taint node %s --overwrite %s\n", n, strings.Join(ts, " "))
	}
	for _, t := range had.Taints {
		pt, err := parseTaint(t)
		if err != nil || want[pt.key+":"+pt.effect] {
			continue
		}
		// Removing a taint someone already removed is not an error.
		fmt.Fprintf(&b, "k3s kubectl taint node %s %s 2>/dev/null || true\n", n, remote.Quote(pt.key+":"+pt.effect+"-"))
	}
	_, err := server.Run(ctx, remote.Command{Intent: "label and taint node " + node, Cmd: b.String(), Sudo: true, Timeout: 5 * time.Minute})
	return err
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// hostError makes err name host once: errors from the executor already do.
func hostError(op, host string, err error) error {
	var ce *remote.CommandError
	if err == nil || errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("%s on %s: %w", op, host, err)
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
