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
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgeline/edgeline/internal/remote"
)

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
