// Package ansible runs the Raspberry Pi preparation playbook (site.yml with the edge_node
// role, embedded in the binary) with ansible-playbook, every host key (jump hosts
// included) checked against one known_hosts file. The provider runs it for each agent
// whose stack config asks for it; operators can run the same playbook by hand; see
// docs/edge-nodes.md.
package ansible

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed site.yml ansible.cfg roles
var playbook embed.FS

// Variables lists the variables of the edge_node role, the keys Host.Vars and
// Prepare.Vars may set (see roles/edge_node/defaults/main.yml for their meaning).
func Variables() []string {
	b, err := playbook.ReadFile("roles/edge_node/defaults/main.yml")
	if err != nil {
		panic(err) // embedded above
	}
	var defaults map[string]any
	if err := yaml.Unmarshal(b, &defaults); err != nil {
		panic(fmt.Sprintf("roles/edge_node/defaults/main.yml: %v", err)) // TestVariables parses it
	}
	return slices.Sorted(maps.Keys(defaults))
}

// Host is one Pi to prepare.
type Host struct {
	// Name is the inventory name; it becomes the host name unless Vars set edge_hostname.
	Name string
	// Address and Port are where SSH reaches the host; Port zero means 22.
	Address string
	Port    int
	// User logs in; KeyFile is its private key (a key with a passphrase is taken from
	// ssh-agent, as OpenSSH does).
	User    string
	KeyFile string
	// Jump is an OpenSSH ProxyJump value ("ops@bastion.example.com:2222,pi@10.0.0.1"), or
	// empty. Jump hosts log in with the same key files and are checked against the same
	// known_hosts file.
	Jump string
	// Vars are role variables for this host (see roles/edge_node/defaults/main.yml).
	Vars map[string]any
}

// Prepare runs the playbook against Hosts.
type Prepare struct {
	Hosts []Host
	// KnownHostsFile holds the keys of the hosts and their jump hosts; host keys are
	// always checked, and only against this file.
	KnownHostsFile string
	// Vars are role variables for every host.
	Vars map[string]any
	// Check only reports what would change (--check --diff).
	Check bool
	// AnsiblePlaybook is the ansible-playbook to run; empty means the one on $PATH.
	AnsiblePlaybook string
	// Output receives ansible's output; nil discards it.
	Output io.Writer
}

// Recap is one host's line of ansible's PLAY RECAP.
type Recap struct {
	OK, Changed, Unreachable, Failed, Skipped int
}

func (p Prepare) validate() error {
	if len(p.Hosts) == 0 {
		return errors.New("prepare edge nodes: no hosts")
	}
	if p.KnownHostsFile == "" {
		return errors.New("prepare edge nodes: no known_hosts file; host keys are always checked")
	}
	if strings.ContainsAny(p.KnownHostsFile, " \t'\"") {
		return errors.New("prepare edge nodes: the known_hosts path contains a space or quote")
	}
	if _, err := os.Stat(p.KnownHostsFile); err != nil {
		return fmt.Errorf("prepare edge nodes: %w", err)
	}
	seen := map[string]bool{}
	for _, h := range p.Hosts {
		// The role checks that the name (edge_hostname's default) is a host name.
		if h.Name == "" || strings.ContainsAny(h.Name, " \t'\"/") {
			return fmt.Errorf("prepare edge nodes: %q is not a host name", h.Name)
		}
		if seen[h.Name] {
			return fmt.Errorf("prepare edge nodes: host %s is listed twice", h.Name)
		}
		seen[h.Name] = true
		if h.Address == "" || strings.ContainsAny(h.Address, " \t'\"") {
			return fmt.Errorf("prepare edge nodes: host %s has no usable address", h.Name)
		}
		if strings.ContainsAny(h.Jump+h.KeyFile+h.User, " \t'\"") {
			return fmt.Errorf("prepare edge nodes: host %s: user, key file or jump host contains a space or quote", h.Name)
		}
	}
	return nil
}

// sshConfig is the OpenSSH client configuration of a run. ansible-playbook passes it with
// -F, and OpenSSH hands -F on to the ssh it starts for each ProxyJump hop, so jump hosts
// are checked against KnownHostsFile and log in with the same keys as the hosts.
func (p Prepare) sshConfig() []byte {
	var b strings.Builder
	b.WriteString("# Written by edgeline for one ansible-playbook run.\nHost *\n")
	fmt.Fprintf(&b, "  StrictHostKeyChecking yes\n  UserKnownHostsFile \"%s\"\n  GlobalKnownHostsFile /dev/null\n  BatchMode yes\n", p.KnownHostsFile)
	var keys []string
	for _, h := range p.Hosts {
		if h.KeyFile != "" && !slices.Contains(keys, h.KeyFile) {
			keys = append(keys, h.KeyFile)
		}
	}
	if len(keys) > 0 {
		b.WriteString("  IdentitiesOnly yes\n")
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "  IdentityFile \"%s\"\n", k)
	}
	return []byte(b.String())
}

// inventory renders the hosts as a YAML (JSON) inventory with group edge; sshConfig is
// the path of the run's OpenSSH configuration.
func (p Prepare) inventory(sshConfig string) ([]byte, error) {
	hosts := map[string]map[string]any{}
	for _, h := range p.Hosts {
		v := map[string]any{"ansible_host": h.Address}
		for k, val := range h.Vars {
			v[k] = val
		}
		if h.Port != 0 {
			v["ansible_port"] = h.Port
		}
		if h.User != "" {
			v["ansible_user"] = h.User
		}
		if h.KeyFile != "" {
			v["ansible_ssh_private_key_file"] = h.KeyFile
		}
		args := []string{"-F " + sshConfig}
		if h.Jump != "" {
			args = append(args, "-o ProxyJump="+h.Jump)
		}
		v["ansible_ssh_common_args"] = strings.Join(args, " ")
		hosts[h.Name] = v
	}
	vars := map[string]any{}
	for k, val := range p.Vars {
		vars[k] = val
	}
	inv := map[string]any{"all": map[string]any{"children": map[string]any{"edge": map[string]any{"hosts": hosts, "vars": vars}}}}
	return json.MarshalIndent(inv, "", "  ")
}

// Run runs the playbook and returns each host's recap. A failed or unreachable host makes
// the error name it; the recaps of the others are still returned.
func (p Prepare) Run(ctx context.Context) (map[string]Recap, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "edgeline-ansible-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.CopyFS(dir, playbook); err != nil {
		return nil, fmt.Errorf("prepare edge nodes: unpack the playbook: %w", err)
	}
	sshConfig := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(sshConfig, p.sshConfig(), 0o600); err != nil {
		return nil, err
	}
	inv, err := p.inventory(sshConfig)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.yml"), inv, 0o600); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath(cmp.Or(p.AnsiblePlaybook, "ansible-playbook"))
	if err != nil {
		return nil, fmt.Errorf("prepare edge nodes: ansible-playbook is needed on this machine (Debian: apt-get install ansible): %w", err)
	}
	args := []string{"-i", "inventory.yml", "site.yml"}
	if p.Check {
		args = append(args, "--check", "--diff")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"),
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+filepath.Join(dir, "cp"),
		// Multiplexed connections live in our directory and are closed after the run.
		"ANSIBLE_SSH_ARGS=-o ControlMaster=auto -o ControlPersist=30s",
	)
	var out bytes.Buffer
	w := io.Writer(&out)
	if p.Output != nil {
		w = io.MultiWriter(&out, p.Output)
	}
	cmd.Stdout, cmd.Stderr = w, w
	runErr := cmd.Run()
	closeMasters(filepath.Join(dir, "cp"))
	recaps := parseRecap(out.Bytes())
	if runErr == nil {
		return recaps, nil
	}
	var bad []string
	for name, r := range recaps {
		if r.Failed > 0 || r.Unreachable > 0 {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		return recaps, fmt.Errorf("prepare edge nodes: failed on %s: %s", strings.Join(bad, ", "), lastLines(out.Bytes(), 6))
	}
	return recaps, fmt.Errorf("prepare edge nodes: ansible-playbook: %w: %s", runErr, lastLines(out.Bytes(), 6))
}

// closeMasters stops the OpenSSH connection masters ansible left in dir.
func closeMasters(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		exec.Command("ssh", "-o", "ControlPath="+filepath.Join(dir, e.Name()), "-O", "exit", "edgeline").Run()
	}
}

var recapRe = regexp.MustCompile(`^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)`)

func parseRecap(out []byte) map[string]Recap {
	recaps := map[string]Recap{}
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		m := recapRe.FindStringSubmatch(s.Text())
		if m == nil {
			continue
		}
		n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
		recaps[m[1]] = Recap{OK: n(2), Changed: n(3), Unreachable: n(4), Failed: n(5), Skipped: n(6)}
	}
	return recaps
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
