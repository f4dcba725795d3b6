package nodetest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/edgeline/edgeline/internal/kubetest"
)

// pauseImage is the sandbox image every pod starts with.
var pauseImage = Registry + "/edgeline/pause:1"

// writeConfigs writes containerd's, the CNI's, the kubelet's and
// kube-proxy's configuration, certificates and kubeconfigs into StateDir.
func (n *Node) writeConfigs() error {
	ctrd := filepath.Join(StateDir, "containerd")
	cniBin := filepath.Join(n.binDir, "cni")
	files := map[string]string{}

	// containerd: CRI with runc from the tool cache, the node's CNI, images
	// from the registry on the bridge over plain HTTP (hosts.toml).
	// restrict_oom_score_adj: processes here lack CAP_SYS_RESOURCE, so the
	// pause container's -998 cannot be written (runc fails otherwise).
	files[filepath.Join(ctrd, "config.toml")] = fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q

[grpc]
  address = %[3]q

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %[4]q
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = %[5]q

[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = %[6]q
        Root = %[7]q
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%[8]q]
    conf_dir = %[9]q
`, filepath.Join(ctrd, "root"), filepath.Join(ctrd, "state"), containerdSock, pauseImage,
		filepath.Join(ctrd, "certs.d"), filepath.Join(n.binDir, "runc"), filepath.Join(ctrd, "runc"),
		cniBin, filepath.Join(StateDir, "cni", "net.d"))
	files[filepath.Join(ctrd, "certs.d", Registry, "hosts.toml")] = fmt.Sprintf(`server = "http://%[1]s"

[host."http://%[1]s"]
  capabilities = ["pull", "resolve"]
`, Registry)

	// CNI: the bridge (no masquerade: nothing leaves), host-local addresses,
	// a route to the Service range and none to anywhere else.
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "edgeline-node",
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      Bridge,
			"isGateway":   true,
			"ipMasq":      false,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":   "host-local",
				"ranges": [][]map[string]string{{{"subnet": PodCIDR, "gateway": IP}}},
				// Services only: no default route, pods reach nothing else.
				"routes":  []map[string]string{{"dst": ServiceCIDR, "gw": IP}},
				"dataDir": filepath.Join(StateDir, "cni", "ipam"),
			},
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	files[filepath.Join(StateDir, "cni", "net.d", "10-edgeline.conflist")] = string(b)

	// The kubelet: a client certificate as system:node:vps (Node
	// authorizer), a serving certificate the apiserver verifies with the
	// cluster CA.
	c := n.Cluster
	kl := filepath.Join(StateDir, "kubelet")
	cert, key, err := c.Issue(kubetest.CertRequest{CommonName: "system:node:" + Name, Organizations: []string{"system:nodes"}})
	if err != nil {
		return err
	}
	kc, err := c.KubeconfigFor("system:node:"+Name, cert, key)
	if err != nil {
		return err
	}
	files[filepath.Join(kl, "kubeconfig")] = string(kc)
	scert, skey, err := c.Issue(kubetest.CertRequest{CommonName: Name, IPs: []net.IP{net.ParseIP(IP)}, DNSNames: []string{Name}})
	if err != nil {
		return err
	}
	files[filepath.Join(kl, "serving.crt")] = string(scert)
	files[filepath.Join(kl, "serving.key")] = string(skey)
	files[filepath.Join(kl, "resolv.conf")] = "" // pods never get the host's resolver
	files[filepath.Join(kl, "config.yaml")] = fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%[1]s
failSwapOn: false
address: %[2]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %[3]s
tlsPrivateKeyFile: %[4]s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[5]s}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [%[6]s]
resolvConf: %[7]s
podLogsDir: %[8]s
volumePluginDir: %[9]s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
makeIPTablesUtilChains: false
serializeImagePulls: false
maxPods: 50
`, containerdSock, IP, filepath.Join(kl, "serving.crt"), filepath.Join(kl, "serving.key"), c.CACertFile(),
		DNSIP, filepath.Join(kl, "resolv.conf"), filepath.Join(StateDir, "logs", "pods"), filepath.Join(kl, "volume-plugins"))

	// kube-proxy (nftables) as system:kube-proxy, whom the default RBAC
	// binds to system:node-proxier. Conntrack values 0: no host sysctl.
	kp := filepath.Join(StateDir, "kube-proxy")
	cert, key, err = c.Issue(kubetest.CertRequest{CommonName: "system:kube-proxy"})
	if err != nil {
		return err
	}
	kc, err = c.KubeconfigFor("system:kube-proxy", cert, key)
	if err != nil {
		return err
	}
	files[filepath.Join(kp, "kubeconfig")] = string(kc)
	files[filepath.Join(kp, "config.yaml")] = fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %[1]s
hostnameOverride: %[2]s
mode: nftables
clusterCIDR: %[3]s
nodePortAddresses: [%[4]s/32]
oomScoreAdj: 0
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, filepath.Join(kp, "kubeconfig"), Name, PodCIDR, IP)

	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(path, ".key") || strings.HasSuffix(path, "kubeconfig") {
			mode = 0o600
		}
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			return err
		}
	}
	return nil
}
