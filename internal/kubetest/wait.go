package kubetest

import (
	"context"
	"fmt"
	"net"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (c *Cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	return Poll(ctx, timeout, func() (bool, error) {
		if err := c.exited(); err != nil {
			return false, err
		}
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
}

func (c *Cluster) waitNodesReady(ctx context.Context, timeout time.Duration) error {
	return Poll(ctx, timeout, func() (bool, error) {
		if err := c.exited(); err != nil {
			return false, err
		}
		for _, n := range c.fakeNodes {
			node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil || !NodeReady(node) || hasLifecycleTaint(node) {
				return false, nil
			}
		}
		return true, nil
	})
}

// exited returns an error naming a component that has stopped.
func (c *Cluster) exited() error {
	for _, p := range c.procs {
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited: %v", p.Name, err)
		}
	}
	return nil
}

func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	return Poll(ctx, timeout, func() (bool, error) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, nil
		}
		conn.Close()
		return true, nil
	})
}

// Poll calls f every 100 ms until it returns true or an error, ctx ends or
// timeout passes: the harnesses' wait for a component to come up.
func Poll(ctx context.Context, timeout time.Duration, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not done after %s", timeout)
		case <-t.C:
		}
	}
}

// The control plane of this test binary: started by the first Get, stopped
// when Main's tests are done.
