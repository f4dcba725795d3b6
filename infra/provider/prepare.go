package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/edgeline/edgeline/ansible"
	"github.com/edgeline/edgeline/internal/remote"
)

// AgentPrepare says how to run the Pi preparation (the edge_node role of ansible/) on an
// agent before it joins.
type AgentPrepare struct {
	// Vars are the role's variables (ansible/roles/edge_node/defaults/main.yml).
	Vars map[string]any `pulumi:"vars,optional"`
	// Check only verifies: the role runs in check mode (changing nothing on the Pi) and
	// the agent does not join while the role would change anything.
	Check bool `pulumi:"check,optional"`
}

// Annotate names the type in the schema.
func (p *AgentPrepare) Annotate(a infer.Annotator) {
	a.Describe(p, "Runs the edge_node Ansible role on the agent, over its verified SSH connection, before it joins.")
	a.SetToken("index", "AgentPrepare")
}

// prepare runs the edge_node role on the agent c reaches, with ansible-playbook, over
// the route remote verified: the same hops, users and ports, and exactly the host keys
// checked there (jump hosts included), whether they were pinned or found in known_hosts.
// The role may reboot the Pi; the caller dials again afterwards.
func (p AgentPrepare) run(ctx context.Context, name string, c Connection) error {
	ex, err := c.dial(ctx)
	if err != nil {
		return err
	}
	route, err := remote.Route(ex)
	ex.Close()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "edgeline-prepare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var known, jumps []string
	for _, h := range route {
		known = append(known, h.KnownHostsLine())
	}
	for _, h := range route[:len(route)-1] {
		jumps = append(jumps, h.Endpoint.String())
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(strings.Join(known, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	target := route[len(route)-1]
	var out strings.Builder
	recaps, err := ansible.Prepare{
		Hosts: []ansible.Host{{
			Name: name, Address: target.Host, Port: target.Port, User: target.User,
			KeyFile: c.KeyFile, Jump: strings.Join(jumps, ","), Vars: p.Vars,
		}},
		KnownHostsFile: knownHosts,
		Check:          p.Check,
		Output:         &out,
	}.Run(ctx)
	if err != nil {
		return fmt.Errorf("prepare agent %s: %w", name, err)
	}
	r := recaps[name]
	switch {
	case p.Check && r.Changed > 0:
		return fmt.Errorf("agent %s is not prepared: the edge_node role would change %d things (%s); let edgeline prepare it (prepare.check false) or run ansible/site.yml by hand",
			name, r.Changed, strings.Join(changedTasks(out.String()), "; "))
	case p.Check:
		logf(ctx, "agent %s: prepared as the edge_node role wants it (checked, nothing changed)", name)
	default:
		logf(ctx, "agent %s: edge_node role ran, %d changed", name, r.Changed)
	}
	return nil
}

// changedTasks lists the tasks ansible's output reports as changed.
func changedTasks(out string) []string {
	var tasks []string
	task := ""
	for line := range strings.SplitSeq(out, "\n") {
		if t, ok := strings.CutPrefix(line, "TASK ["); ok {
			task, _, _ = strings.Cut(t, "]")
			if _, name, ok := strings.Cut(task, " : "); ok {
				task = name // without the role's name
			}
		} else if strings.HasPrefix(line, "changed: ") && task != "" {
			tasks = append(tasks, task)
			task = ""
		}
	}
	return tasks
}
