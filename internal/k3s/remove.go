package k3s

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/edgeline/edgeline/internal/remote"
)

// RemoveAgent takes an agent out of the cluster: it drains the node, uninstalls k3s from
// the agent host and deletes the node. Removing an agent that is already gone succeeds.
type RemoveAgent struct {
	// Server reaches the k3s server, where kubectl runs.
	Server remote.Executor
	// Agent reaches the agent host; nil when the host is gone for good, in which case
	// only the node is drained and deleted.
	Agent remote.Executor
	// NodeName is the agent's node name (AgentResult.NodeName).
	NodeName string
	// DrainTimeout bounds the drain; zero means 5 minutes.
	DrainTimeout time.Duration
	// Log receives one line saying what happened; nil means none.
	Log io.Writer
}

// Run removes the agent. The node is deleted only after k3s is uninstalled from the agent,
// since a running agent would register the node again.
func (op RemoveAgent) Run(ctx context.Context) error {
	if op.Server == nil {
		return errors.New("remove k3s agent: no server executor")
	}
	if err := validateNodeName(op.NodeName); err != nil || op.NodeName == "" {
		return fmt.Errorf("remove k3s agent: node name %q is not a node name", op.NodeName)
	}
	timeout := op.DrainTimeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	n := remote.Quote(op.NodeName)
	res, err := op.Server.Run(ctx, remote.Command{
		Intent: "drain node " + op.NodeName,
		Cmd: fmt.Sprintf("set -e\nif [ -n \"$(k3s kubectl get node %[1]s -o name --ignore-not-found)\" ]; then\n  k3s kubectl drain %[1]s --ignore-daemonsets --delete-emptydir-data --force --timeout=%[2]s\n  echo drained\nfi",
			n, timeout),
		Sudo:    true,
		Timeout: timeout + time.Minute,
	})
	if err != nil {
		return err
	}
	found := strings.Contains(string(res.Stdout), "drained")
	if op.Agent != nil {
		if _, err := op.Agent.Run(ctx, remote.Command{
			Intent:  "uninstall the k3s agent",
			Cmd:     fmt.Sprintf("if [ -x %[1]s ]; then %[1]s; fi\nrm -f %[2]s", AgentUninstall, StatePath),
			Sudo:    true,
			Timeout: 5 * time.Minute,
		}); err != nil {
			return err
		}
	}
	if found {
		if _, err := op.Server.Run(ctx, remote.Command{
			Intent:  "delete node " + op.NodeName,
			Cmd:     fmt.Sprintf("k3s kubectl delete node %s --ignore-not-found", n),
			Sudo:    true,
			Timeout: 2 * time.Minute,
		}); err != nil {
			return err
		}
	}
	host := "(host gone)"
	if op.Agent != nil {
		host = op.Agent.Host()
	}
	if found {
		logf(op.Log, "%s: k3s agent %s drained, uninstalled and deleted", host, op.NodeName)
	} else {
		logf(op.Log, "%s: node %s was not in the cluster; k3s agent uninstalled", host, op.NodeName)
	}
	return nil
}
