// Package kubetest runs a real Kubernetes control plane on 127.0.0.1 for
// tests: kine (SQLite) for storage, kube-apiserver, kube-controller-manager,
// kube-scheduler, and kwok playing two fake nodes shaped like the edgeline
// cluster: "vps" (amd64, cloud, control plane) and "pi" (arm64, edge, tainted).
// No kubelet runs, so no container ever starts, but objects are validated,
// stored, reconciled and scheduled by the real components, and kwok marks
// scheduled pods Running and Ready.
//
// The binaries come from the directory in EDGELINE_TEST_KUBE (`make test`
// builds them into the tool cache, see mk/kube.mk). A test binary shares one
// control plane, started by the first test that asks for it:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		c := kubetest.Get(t) // skips when EDGELINE_TEST_KUBE is unset
//		c.Client.CoreV1()...
//	}
package kubetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// EnvVar names the directory holding the control-plane binaries.
const EnvVar = "EDGELINE_TEST_KUBE"

// Node names of the fake cluster.
const (
	CloudNode = "vps" // amd64, node-role.kubernetes.io/control-plane=true
	EdgeNode  = "pi"  // arm64, node-role.kubernetes.io/edge=true, tainted edgeline.io/edge=true:NoSchedule
)

// Labels and taint the edge node carries, as the k3s provisioning sets them.
const (
	EdgeRoleLabel = "node-role.kubernetes.io/edge"
	SiteLabel     = "edgeline.io/site"
	EdgeTaintKey  = "edgeline.io/edge"
	CloudLabel    = "node-role.kubernetes.io/control-plane"
)

// Cluster is a running control plane.
type Cluster struct {
	// Dir holds the certificates, kubeconfig, SQLite database and logs.
	Dir string
	// Kubeconfig is the path of an admin kubeconfig (group system:masters).
	Kubeconfig string
	// KubeconfigData is the same kubeconfig's contents.
	KubeconfigData []byte
	// Config and Client reach the apiserver as admin.
	Config *rest.Config
	Client kubernetes.Interface
	// Address is the IP the apiserver listens on, Server its URL.
	Address, Server string

	procs     []*Process
	pki       *pki
	fakeNodes []*corev1.Node
}

// Options say where the control plane's parts are.
type Options struct {
	// BinDir holds kine, kube-apiserver, kube-controller-manager,
	// kube-scheduler and kwok (required).
	BinDir string
	// StagesDir holds kwok's stage files; BinDir/../kwok-stages if empty.
	StagesDir string
	// CRDDir holds CustomResourceDefinitions (*.yaml) installed before the
	// cluster is handed out; BinDir/../crds if empty. A missing directory
	// installs none.
	CRDDir string
	// Address is the IP the apiserver listens on and advertises; 127.0.0.1
	// if empty. Another address (a real node's bridge) also gives the
	// kubernetes Service an endpoint, so pods reach the apiserver.
	Address string
	// FakeNodes are the nodes kwok plays; Nodes() if nil. A real node
	// (internal/nodetest) replaces the cloud node and keeps only the edge.
	FakeNodes []*corev1.Node
}

// Start starts a control plane and waits until the apiserver is ready, the
// CRDs are established and both fake nodes are Ready.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	binDir := opts.BinDir
	if binDir == "" {
		return nil, errors.New("kubetest: no directory with the control-plane binaries given")
	}
	stages := cmp.Or(opts.StagesDir, filepath.Join(filepath.Dir(binDir), "kwok-stages"))
	crds := cmp.Or(opts.CRDDir, filepath.Join(filepath.Dir(binDir), "crds"))
	for _, b := range []string{"kine", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return nil, fmt.Errorf("kubetest: %s is missing in %s: run `make kube`", b, binDir)
		}
	}
	addr := net.ParseIP(cmp.Or(opts.Address, "127.0.0.1"))
	if addr == nil || addr.To4() == nil {
		return nil, fmt.Errorf("kubetest: address %q is not an IPv4 address", opts.Address)
	}
	fake := opts.FakeNodes
	if fake == nil {
		fake = Nodes()
	}
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir, Address: addr.String(), fakeNodes: fake}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	p, err := newPKI(dir, addr)
	if err != nil {
		return nil, fmt.Errorf("kubetest: certificates: %w", err)
	}
	etcdPort, err := freePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := freePortOn(addr.String())
	if err != nil {
		return nil, err
	}
	c.pki = p

	if err := c.start(binDir, "kine",
		"--endpoint=sqlite://"+filepath.Join(dir, "state.db")+"?_journal=WAL&cache=shared&_busy_timeout=30000",
		"--listen-address=127.0.0.1:"+strconv.Itoa(etcdPort),
		"--metrics-bind-address=0"); err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, "127.0.0.1:"+strconv.Itoa(etcdPort), 20*time.Second); err != nil {
		return nil, c.failed("kine", err)
	}

	apiArgs := []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(etcdPort),
		"--bind-address=" + addr.String(),
		"--advertise-address=" + addr.String(),
		"--secure-port=" + strconv.Itoa(apiPort),
	}
	if addr.IsLoopback() {
		// A loopback endpoint is refused for the kubernetes Service.
		apiArgs = append(apiArgs, "--endpoint-reconciler-type=none")
	}
	if err := c.start(binDir, "kube-apiserver", append(apiArgs,
		"--tls-cert-file="+p.ServerCert,
		"--tls-private-key-file="+p.ServerKey,
		"--client-ca-file="+p.CACert,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+p.SAPub,
		"--service-account-signing-key-file="+p.SAKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--profiling=false",
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
		// logs, exec and port-forward through a real kubelet, whose serving
		// certificate this cluster's CA signs.
		"--kubelet-client-certificate="+p.AdminCert,
		"--kubelet-client-key="+p.AdminKey,
		"--kubelet-certificate-authority="+p.CACert,
		"--kubelet-preferred-address-types=InternalIP,Hostname",
	)...); err != nil {
		return nil, err
	}

	c.Server = "https://" + net.JoinHostPort(addr.String(), strconv.Itoa(apiPort))
	server := c.Server
	c.KubeconfigData, err = kubeconfig(server, p)
	if err != nil {
		return nil, err
	}
	c.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, c.KubeconfigData, 0o600); err != nil {
		return nil, err
	}
	c.Config, err = clientcmd.RESTConfigFromKubeConfig(c.KubeconfigData)
	if err != nil {
		return nil, err
	}
	c.Config.QPS, c.Config.Burst = 200, 400
	c.Client, err = kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, 90*time.Second); err != nil {
		return nil, c.failed("kube-apiserver", err)
	}

	if err := c.installCRDs(ctx, crds); err != nil {
		return nil, err
	}

	kc := "--kubeconfig=" + c.Kubeconfig
	common := []string{kc, "--authentication-kubeconfig=" + c.Kubeconfig, "--authorization-kubeconfig=" + c.Kubeconfig,
		"--bind-address=127.0.0.1", "--leader-elect=false"}
	kcmPort, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := c.start(binDir, "kube-controller-manager", append(common,
		"--secure-port="+strconv.Itoa(kcmPort),
		"--service-account-private-key-file="+p.SAKey,
		"--root-ca-file="+p.CACert,
		"--cluster-signing-cert-file="+p.CACert,
		"--cluster-signing-key-file="+p.CAKey,
		"--use-service-account-credentials=false",
		"--controllers=*",
		// Else it creates /usr/libexec/kubernetes on the host.
		"--flex-volume-plugin-dir="+filepath.Join(dir, "flexvolume"),
	)...); err != nil {
		return nil, err
	}
	schedPort, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := c.start(binDir, "kube-scheduler", append(common, "--secure-port="+strconv.Itoa(schedPort))...); err != nil {
		return nil, err
	}

	kwokArgs := []string{kc, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-lease-duration-seconds=40", "--cidr=10.42.0.0/16"}
	for _, s := range []string{"node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-complete", "pod-delete"} {
		f := filepath.Join(stages, s+".yaml")
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("kubetest: kwok stage %s is missing: run `make kube`", f)
		}
		kwokArgs = append(kwokArgs, "--config="+f)
	}
	if err := c.start(binDir, "kwok", kwokArgs...); err != nil {
		return nil, err
	}

	for _, n := range fake {
		if _, err := c.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("kubetest: create node %s: %w", n.Name, err)
		}
	}
	if err := c.waitNodesReady(ctx, 60*time.Second); err != nil {
		return nil, c.failed("kwok", err)
	}
	return c, nil
}

// Nodes returns the two fake nodes: "vps", the amd64 cloud server running
// the k3s server, and "pi", an arm64 Raspberry Pi agent at the factory site,
// tainted so that only pods that tolerate the edge land on it.
func Nodes() []*corev1.Node {
	node := func(name, arch, cpu, mem string, labels map[string]string, taints []corev1.Taint) *corev1.Node {
		l := map[string]string{
			"kubernetes.io/arch":     arch,
			"kubernetes.io/os":       "linux",
			"kubernetes.io/hostname": name,
			"type":                   "kwok",
		}
		for k, v := range labels {
			l[k] = v
		}
		res := corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(cpu),
			corev1.ResourceMemory: resource.MustParse(mem),
			corev1.ResourcePods:   resource.MustParse("110"),
		}
		return &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Labels:      l,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			},
			Spec: corev1.NodeSpec{Taints: taints},
			Status: corev1.NodeStatus{
				Capacity:    res,
				Allocatable: res,
				NodeInfo: corev1.NodeSystemInfo{
					Architecture:    arch,
					OperatingSystem: "linux",
					KubeletVersion:  "v1.37.2-fake",
				},
			},
		}
	}
	return []*corev1.Node{
		node(CloudNode, "amd64", "4", "8Gi", map[string]string{CloudLabel: "true", "node-role.kubernetes.io/master": "true"}, nil),
		node(EdgeNode, "arm64", "4", "8Gi", map[string]string{EdgeRoleLabel: "true", SiteLabel: "factory"},
			[]corev1.Taint{{Key: EdgeTaintKey, Value: "true", Effect: corev1.TaintEffectNoSchedule}}),
	}
}

// PIDs returns the process id of each running component by name.
func (c *Cluster) PIDs() map[string]int {
	m := make(map[string]int, len(c.procs))
	for _, p := range c.procs {
		m[p.Name] = p.PID()
	}
	return m
}

// Stop stops the components newest first, waits for each to exit and
// removes the cluster's directory.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].Stop(15 * time.Second)
	}
	c.procs = nil
	if c.Dir != "" && os.Getenv("EDGELINE_KUBETEST_KEEP") == "" {
		os.RemoveAll(c.Dir)
	}
}

// start runs binDir/name with args, its output going to Dir/name.log. The
// child is killed if the test binary dies.
func (c *Cluster) start(binDir, name string, args ...string) error {
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "HOME="+c.Dir)
	p, err := StartProcess(name, filepath.Join(c.Dir, name+".log"), cmd)
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	c.procs = append(c.procs, p)
	return nil
}

// failed wraps err with the tail of a component's log.
func (c *Cluster) failed(name string, err error) error {
	tail := ""
	if b, rerr := os.ReadFile(filepath.Join(c.Dir, name+".log")); rerr == nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		tail = "\n" + strings.Join(lines, "\n")
	}
	for _, p := range c.procs {
		if done, perr := p.Exited(); done {
			err = fmt.Errorf("%w (%s exited: %v)", err, p.Name, perr)
		}
	}
	return fmt.Errorf("kubetest: %s: %w%s", name, err, tail)
}

// hasLifecycleTaint reports whether the node controller still marks n as
// not ready or unreachable: the scheduler avoids it until the taint is gone.
func hasLifecycleTaint(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if strings.HasPrefix(t.Key, "node.kubernetes.io/") {
			return true
		}
	}
	return false
}

// NodeReady reports whether n has condition Ready=True.
func NodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func kubeconfig(server string, p *pki) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.adminCertPEM, ClientKeyData: p.adminKeyPEM}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "kubetest"
	return clientcmd.Write(*cfg)
}

func freePort() (int, error) { return freePortOn("127.0.0.1") }

func freePortOn(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("kubetest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
