// Package nodetest runs one real Kubernetes node for tests, next to an
// internal/kubetest control plane: containerd with runc, CNI (a bridge on a
// private range of its own, never routed out), a kubelet, kube-proxy
// (nftables) and CoreDNS as a pod, plus an image registry on the node's
// network that containerd pulls from. The node is the cluster's amd64 cloud
// node "vps"; kwok still plays the arm64 edge node "pi" beside it.
//
// Only one real node fits a machine (fixed paths such as containerd's shim
// sockets, port 10250), so Start takes a machine-wide lock: test binaries of
// different packages take turns, and the tests of one binary that run at
// the same time share its node (stopped when the last of them ends):
//
//	func TestMain(m *testing.M) { os.Exit(nodetest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		n := nodetest.Get(t) // skips when EDGELINE_TEST_NODE is unset
//		n.Cluster.Client.CoreV1()...
//	}
//
// Start first removes whatever a crashed earlier run left (processes, mounts,
// interfaces, routes, nftables/iptables rules, cgroups, sysctls, files);
// Stop removes everything the node made, and Leftovers lists anything that
// is still there.
//
// The node needs root and cgroup v1 (what this project's machines have);
// on a cgroup v2 machine Get skips and says why. The binaries come from
// the directory in EDGELINE_TEST_NODE (`make test` builds them into the
// tool cache, see mk/node.mk and mk/kube.mk).
package nodetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgeline/edgeline/internal/kubetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// EnvVar names the directory holding the node's and the control plane's
// binaries (kubelet, kube-proxy, containerd, ctr, containerd-shim-runc-v2,
// runc, coredns, cni/ and kubetest's).
const EnvVar = "EDGELINE_TEST_NODE"

// The node's fixed network: a bridge with a /24 of its own that the guard
// keeps on this machine, the cluster's Service range routed onto the same
// bridge, and the registry on the bridge address.
const (
	Bridge      = "edgeline0"
	PodCIDR     = "10.88.0.0/24"
	IP          = "10.88.0.1"
	ServiceCIDR = "10.0.0.0/24" // kubetest's --service-cluster-ip-range
	DNSIP       = "10.0.0.10"
	Registry    = IP + ":5000"
	// Name is the node's name: it stands in for the cluster's cloud server.
	Name = kubetest.CloudNode
)

// StateDir holds everything the node writes (configs, containerd's and
// the kubelet's state, logs, the registry's blobs, the record of the host
// state to restore); fixed so that a later run finds a crashed run's
// leftovers.
const StateDir = "/var/lib/edgeline-node"

// lockPath is the machine-wide lock one running node holds.
const lockPath = "/run/edgeline-node.lock"

// Options say where the node's parts are.
type Options struct {
	// BinDir holds the binaries (required).
	BinDir string
	// Log receives progress lines (which phase, how long); nil discards.
	Log func(format string, args ...any)
}

// Node is a running real node and its control plane.
type Node struct {
	// Cluster is the control plane, listening on the bridge address.
	Cluster *kubetest.Cluster
	// Phases records how long each start phase took, in order.
	Phases []Phase

	binDir   string
	procs    []*kubetest.Process
	registry *http.Server
	lock     *os.File
	logf     func(string, ...any)
}

// Phase is one timed step of Start.
type Phase struct {
	Name string
	Took time.Duration
}

// Start takes the machine's node lock (waiting while another test binary
// holds it, until ctx ends), removes a crashed run's leftovers and starts
// the control plane, containerd, the kubelet, kube-proxy, the registry and
// CoreDNS. It returns when the node is Ready and CoreDNS answers.
func Start(ctx context.Context, opts Options) (_ *Node, err error) {
	if opts.BinDir == "" {
		return nil, errors.New("nodetest: no directory with the node binaries given")
	}
	if err := preflight(opts.BinDir); err != nil {
		return nil, err
	}
	n := &Node{binDir: opts.BinDir, logf: opts.Log}
	if n.logf == nil {
		n.logf = func(string, ...any) {}
	}
	lock, err := acquire(ctx, n.logf)
	if err != nil {
		return nil, err
	}
	n.lock = lock
	defer func() {
		if err != nil {
			if serr := n.Stop(); serr != nil {
				err = fmt.Errorf("%w (and teardown: %v)", err, serr)
			}
		}
	}()
	// The waits below are generous: on a loaded 2-core machine (a cold CI
	// build beside other tests) each step takes many times its idle time,
	// and a wait that ends too early is a flaky test.
	t0 := time.Now()
	phase := func(name string) {
		d := time.Since(t0)
		for _, p := range n.Phases {
			d -= p.Took
		}
		n.Phases = append(n.Phases, Phase{name, d})
		n.logf("nodetest: %-28s %6.2fs", name, time.Since(t0).Seconds())
	}
	if err := cleanup(); err != nil {
		return nil, fmt.Errorf("nodetest: remove a crashed run's leftovers: %w", err)
	}
	phase("leftovers removed")
	if err := setupHost(); err != nil {
		return nil, err
	}
	phase("bridge and guard")

	kubeCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	fake := []*corev1.Node{}
	for _, fn := range kubetest.Nodes() {
		if fn.Name != Name {
			fake = append(fake, fn)
		}
	}
	n.Cluster, err = kubetest.Start(kubeCtx, kubetest.Options{BinDir: opts.BinDir, Address: IP, FakeNodes: fake})
	if err != nil {
		return nil, fmt.Errorf("nodetest: control plane: %w", err)
	}
	phase("control plane ready")

	if err := n.startRegistry(); err != nil {
		return nil, err
	}
	if err := n.pushSystemImages(ctx); err != nil {
		return nil, err
	}
	phase("registry and system images")

	if err := n.writeConfigs(); err != nil {
		return nil, err
	}
	if err := n.start("containerd", filepath.Join(opts.BinDir, "containerd"), "--config", filepath.Join(StateDir, "containerd", "config.toml")); err != nil {
		return nil, err
	}
	if err := n.waitSocket(ctx, "containerd", containerdSock, 2*time.Minute); err != nil {
		return nil, err
	}
	phase("containerd up")

	if err := n.start("kubelet", filepath.Join(opts.BinDir, "kubelet"),
		"--config", filepath.Join(StateDir, "kubelet", "config.yaml"),
		"--kubeconfig", filepath.Join(StateDir, "kubelet", "kubeconfig"),
		"--root-dir", filepath.Join(StateDir, "kubelet", "root"),
		"--hostname-override", Name,
		"--node-ip", IP,
		"--v", "1",
	); err != nil {
		return nil, err
	}
	if err := n.waitNodeReady(ctx, 3*time.Minute); err != nil {
		return nil, err
	}
	phase("node Ready")

	if err := n.start("kube-proxy", filepath.Join(opts.BinDir, "kube-proxy"),
		"--config", filepath.Join(StateDir, "kube-proxy", "config.yaml"), "--v", "1"); err != nil {
		return nil, err
	}
	if err := n.deployCoreDNS(ctx); err != nil {
		return nil, err
	}
	if err := n.waitDNS(ctx, 4*time.Minute); err != nil {
		return nil, err
	}
	phase("kube-proxy and CoreDNS")
	return n, nil
}

// Stop deletes the node's pods (so the kubelet tears their networks down),
// stops every process by its PID, removes everything the node made on the
// host and releases the machine's node lock. It returns what could not be
// removed.
func (n *Node) Stop() error {
	var errs []error
	if n.Cluster != nil && n.running("kubelet") {
		if err := n.drain(2 * time.Minute); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(n.procs) - 1; i >= 0; i-- {
		n.procs[i].Stop(20 * time.Second)
	}
	n.procs = nil
	if n.registry != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.registry.Shutdown(ctx)
		cancel()
		n.registry = nil
	}
	if n.Cluster != nil {
		n.Cluster.Stop()
		n.Cluster = nil
	}
	if n.lock != nil {
		if err := cleanup(); err != nil {
			errs = append(errs, err)
		}
		n.lock.Close() // releases the flock
		n.lock = nil
	}
	return errors.Join(errs...)
}

// Logs returns the last lines of a node component's log (containerd,
// kubelet, kube-proxy), for failure messages.
func (n *Node) Logs(component string, lines int) string {
	return tail(filepath.Join(StateDir, "logs", component+".log"), lines)
}

// PIDs returns the process id of each running node component by name.
func (n *Node) PIDs() map[string]int {
	m := map[string]int{}
	for _, p := range n.procs {
		m[p.Name] = p.PID()
	}
	return m
}

// start runs bin with args as a node component: its output goes to
// StateDir/logs/name.log, and it and everything it forks (containerd's
// shims) is in the node's tracking cgroup, so that a crashed run's
// processes can be found and stopped. The child is killed if the test
// binary dies.
func (n *Node) start(name, bin string, args ...string) error {
	// The shell joins the cgroup, then becomes bin (same PID): nothing runs
	// outside the cgroup, not even for a moment.
	script := `echo $$ > "$0" && exec "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, filepath.Join(trackCgroup, "cgroup.procs"), bin}, args...)...)
	cmd.Dir = StateDir
	cmd.Env = append(os.Environ(), "PATH="+n.binDir+":"+os.Getenv("PATH"), "HOME="+StateDir)
	p, err := kubetest.StartProcess(name, filepath.Join(StateDir, "logs", name+".log"), cmd)
	if err != nil {
		return fmt.Errorf("nodetest: %w", err)
	}
	n.procs = append(n.procs, p)
	return nil
}

func (n *Node) running(name string) bool {
	for _, p := range n.procs {
		if p.Name == name {
			done, _ := p.Exited()
			return !done
		}
	}
	return false
}

// exited returns an error naming a node component that has stopped, with
// the end of its log.
func (n *Node) exited() error {
	for _, p := range n.procs {
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited (%v):\n%s", p.Name, err, tail(p.Log, 20))
		}
	}
	return nil
}

// failed wraps err with the end of a component's log.
func (n *Node) failed(component string, err error) error {
	if e := n.exited(); e != nil {
		return fmt.Errorf("nodetest: %s: %w; %v", component, err, e)
	}
	return fmt.Errorf("nodetest: %s: %w\n%s", component, err, n.Logs(component, 20))
}

func (n *Node) waitSocket(ctx context.Context, component, path string, timeout time.Duration) error {
	err := kubetest.Poll(ctx, timeout, func() (bool, error) {
		if err := n.exited(); err != nil {
			return false, err
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	if err != nil {
		return n.failed(component, err)
	}
	return nil
}

// waitNodeReady waits for the kubelet to register the node Ready, then
// labels it as the cluster's cloud node (a kubelet may not set node-role
// labels on itself).
func (n *Node) waitNodeReady(ctx context.Context, timeout time.Duration) error {
	c := n.Cluster.Client
	err := kubetest.Poll(ctx, timeout, func() (bool, error) {
		if err := n.exited(); err != nil {
			return false, err
		}
		node, err := c.CoreV1().Nodes().Get(ctx, Name, metav1.GetOptions{})
		return err == nil && kubetest.NodeReady(node), nil
	})
	if err != nil {
		return n.failed("kubelet", err)
	}
	// The kubelet updates its Node object too (status, annotations): label the
	// newest version, again when the kubelet got in between.
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		node, err := c.CoreV1().Nodes().Get(ctx, Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, fn := range kubetest.Nodes() {
			if fn.Name == Name {
				for k, v := range fn.Labels {
					if k != "type" { // kwok's marker
						node.Labels[k] = v
					}
				}
			}
		}
		_, err = c.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("nodetest: label node %s: %w", Name, err)
	}
	return nil
}

// drain deletes every pod bound to the node and waits until containerd
// runs no sandbox: the kubelet has then released each pod's network (CNI
// DEL), volumes and cgroups itself.
func (n *Node) drain(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := n.Cluster.Client
	zero := int64(0)
	// Controllers would recreate the pods: remove their owners first.
	nss, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("nodetest: drain: %w", err)
	}
	for _, ns := range nss.Items {
		bg := metav1.DeletePropagationBackground
		opts := metav1.DeleteOptions{GracePeriodSeconds: &zero, PropagationPolicy: &bg}
		_ = c.AppsV1().Deployments(ns.Name).DeleteCollection(ctx, opts, metav1.ListOptions{})
		_ = c.AppsV1().StatefulSets(ns.Name).DeleteCollection(ctx, opts, metav1.ListOptions{})
		_ = c.AppsV1().DaemonSets(ns.Name).DeleteCollection(ctx, opts, metav1.ListOptions{})
		_ = c.AppsV1().ReplicaSets(ns.Name).DeleteCollection(ctx, opts, metav1.ListOptions{})
		_ = c.BatchV1().Jobs(ns.Name).DeleteCollection(ctx, opts, metav1.ListOptions{})
	}
	err = kubetest.Poll(ctx, timeout, func() (bool, error) {
		pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + Name})
		if err != nil {
			return false, nil
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				_ = c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
			}
		}
		if len(pods.Items) > 0 {
			return false, nil
		}
		// Stopping a sandbox runs CNI DEL; the kubelet removes the dead
		// containers only later (garbage collection), and Stop does that.
		tasks, err := n.ctr("tasks", "ls")
		return err == nil && !strings.Contains(tasks, "RUNNING") && !strings.Contains(tasks, "CREATED"), nil
	})
	if err != nil {
		return fmt.Errorf("nodetest: drain the node: %w", err)
	}
	return nil
}

// ctrOut runs containerd's ctr in the CRI namespace and returns its
// standard output.
func (n *Node) ctrOut(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(n.binDir, "ctr"), append([]string{"--address", containerdSock, "--namespace", "k8s.io"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// ctr runs containerd's ctr in the CRI namespace.
func (n *Node) ctr(args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(n.binDir, "ctr"), append([]string{"--address", containerdSock, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
