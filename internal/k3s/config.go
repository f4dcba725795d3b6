// Package k3s installs a k3s server and joins k3s agents over a remote.Executor: it renders
// /etc/rancher/k3s/config.yaml, runs the official install script (downloaded on the host,
// or uploaded from the workstation for air-gapped sites), records what it did on the host so
// a second run changes nothing, and removes agents again.
package k3s

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Paths on the host, as the k3s install script and k3s itself use them.
const (
	ConfigPath      = "/etc/rancher/k3s/config.yaml"
	StatePath       = "/etc/rancher/k3s/edgeline-state.json"
	BinaryPath      = "/usr/local/bin/k3s"
	ScriptPath      = "/usr/local/bin/k3s-install.sh"
	AgentUninstall  = "/usr/local/bin/k3s-agent-uninstall.sh"
	KubeconfigPath  = "/etc/rancher/k3s/k3s.yaml"
	NodeTokenPath   = "/var/lib/rancher/k3s/server/node-token"
	AirGapImagesDir = "/var/lib/rancher/k3s/agent/images"
)

// The install script an online install downloads when Install.ScriptURL is empty: the
// official install.sh at a fixed commit of the k3s repository (the file behind
// https://get.k3s.io at that time), never whatever that address serves today, and its
// sha256 as the k3s repository records it next to the script (install.sh.sha256sum). The
// script checks the k3s binary it downloads against the release's sha256sum file itself.
const (
	DefaultScriptURL    = "https://raw.githubusercontent.com/k3s-io/k3s/019b0afdd830e36f5e4b7a5b237e6a4339e6a6be/install.sh"
	DefaultScriptSHA256 = "68ae766b4c4fd2c8032f712cdd346c8f9d1ae60eaeb4736a1155effda44ea23d"
)

// Default labels and taint of edge agents.
const (
	EdgeRoleLabel = "node-role.kubernetes.io/edge"
	SiteLabel     = "edgeline.io/site"
	EdgeTaint     = "edgeline.io/edge=true:NoSchedule"
)

// DefaultLabels are the labels an edge agent at site gets when AgentConfig.Labels is nil.
func DefaultLabels(site string) map[string]string {
	return map[string]string{EdgeRoleLabel: "true", SiteLabel: site}
}

// DefaultTaints are the taints an edge agent gets when AgentConfig.Taints is nil: only
// workloads that tolerate edge nodes run there.
func DefaultTaints() []string { return []string{EdgeTaint} }

// Flannel backends k3s offers.
const (
	FlannelVXLAN           = "vxlan"
	FlannelHostGW          = "host-gw"
	FlannelWireguardNative = "wireguard-native"
	FlannelNone            = "none"
)

// Install says where k3s comes from.
type Install struct {
	// Version is the k3s release to install (INSTALL_K3S_VERSION), e.g. "v1.33.4+k3s1".
	// Empty means the latest release of Channel. Pin it: a changed Version upgrades.
	Version string
	// Channel is the release channel (INSTALL_K3S_CHANNEL) when Version is empty; empty
	// means the install script's default, "stable".
	Channel string
	// ScriptURL is where the host downloads the install script when online; empty means
	// DefaultScriptURL. Give it with ScriptSHA256: a script that does not match is never
	// run.
	ScriptURL string
	// ScriptSHA256 is the hex sha256 of the script at ScriptURL; required with ScriptURL,
	// DefaultScriptSHA256 when ScriptURL is empty.
	ScriptSHA256 string
	// AirGap, when set, uploads k3s from the workstation instead: the host needs no
	// internet access.
	AirGap *AirGap
}

// AirGap names the files, on the workstation, that an air-gapped install uploads.
type AirGap struct {
	// Binary is the k3s binary for the host's architecture (k3s or k3s-arm64).
	Binary string
	// Script is the k3s install script (install.sh).
	Script string
	// Images is the optional images tarball (k3s-airgap-images-ARCH.tar.zst or .tar.gz).
	Images string
}

// ServerConfig describes the k3s server on the VPS.
type ServerConfig struct {
	// NodeName overrides the node name; empty means the host name.
	NodeName string
	// Token is the cluster's shared secret; empty lets k3s generate one on the first
	// install. Either way, the result carries the token agents join with.
	Token string
	// TLSSANs are extra names and addresses for the API server certificate (the VPS's
	// public DNS name and IP).
	TLSSANs []string
	// NodeIP and NodeExternalIP are the addresses k3s advertises (node-ip,
	// node-external-ip); needed for wireguard-native across NAT.
	NodeIP         string
	NodeExternalIP string
	// Labels and Taints are set on the server's node.
	Labels map[string]string
	Taints []string
	// FlannelBackend is vxlan (default), host-gw, wireguard-native or none.
	FlannelBackend string
	// FlannelExternalIP makes flannel use the nodes' external IPs (flannel-external-ip);
	// use it with wireguard-native when agents reach the server over the internet.
	FlannelExternalIP bool
	// VPNAuth joins the node to a Tailscale/Headscale tailnet (vpn-auth, e.g.
	// "name=tailscale,joinKey=tskey-..."); a secret.
	VPNAuth string
	// Disable lists packaged components not to deploy (traefik, servicelb, ...).
	Disable []string
	// APIServerURL is the API address written into the returned kubeconfig; empty means
	// https://FIRST-TLS-SAN:6443 (skipping wildcards), else the node's external IP, else
	// the address SSH reached.
	APIServerURL string
	// Install says where k3s comes from.
	Install Install
}

// AgentConfig describes one edge agent.
type AgentConfig struct {
	// NodeName overrides the node name; empty means the host name.
	NodeName string
	// Site names where the agent stands; it becomes the edgeline.io/site label.
	Site string
	// NodeIP and NodeExternalIP are the addresses k3s advertises.
	NodeIP         string
	NodeExternalIP string
	// Labels are the node's labels; nil means DefaultLabels(Site).
	Labels map[string]string
	// Taints are the node's taints ("key=value:Effect"); nil means DefaultTaints().
	// An empty, non-nil slice means none.
	Taints []string
	// VPNAuth joins the node to a Tailscale/Headscale tailnet; a secret.
	VPNAuth string
	// Install says where k3s comes from.
	Install Install
}

func (c AgentConfig) labels() map[string]string {
	if c.Labels == nil {
		return DefaultLabels(c.Site)
	}
	return c.Labels
}

func (c AgentConfig) taints() []string {
	if c.Taints == nil {
		return DefaultTaints()
	}
	return c.Taints
}

// kubeletLabel reports whether the kubelet may set label key on its own node at
// registration. The kubelet refuses other kubernetes.io and k8s.io labels (such as
// node-role.kubernetes.io/edge), so those are set through the API server.
func kubeletLabel(key string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	if !ok {
		return true
	}
	if prefix != "kubernetes.io" && !strings.HasSuffix(prefix, ".kubernetes.io") &&
		prefix != "k8s.io" && !strings.HasSuffix(prefix, ".k8s.io") {
		return true
	}
	switch prefix {
	case "kubelet.kubernetes.io", "node.kubernetes.io":
		return true
	}
	switch key {
	case "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os",
		"beta.kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type",
		"node.kubernetes.io/instance-type", "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
		"failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone":
		return true
	}
	return false
}

// yamlConfig renders k3s's config.yaml: one key per line, in a fixed order, every string
// double-quoted, so the output is stable and what k3s expects.
type yamlConfig struct{ b bytes.Buffer }

func (y *yamlConfig) str(key, v string) {
	if v != "" {
		fmt.Fprintf(&y.b, "%s: %s\n", key, strconv.Quote(v))
	}
}

func (y *yamlConfig) list(key string, vs []string) {
	if len(vs) == 0 {
		return
	}
	fmt.Fprintf(&y.b, "%s:\n", key)
	for _, v := range vs {
		fmt.Fprintf(&y.b, "  - %s\n", strconv.Quote(v))
	}
}

func (y *yamlConfig) boolean(key string, v bool) {
	if v {
		fmt.Fprintf(&y.b, "%s: true\n", key)
	}
}

func labelList(labels map[string]string, keep func(string) bool) []string {
	var out []string
	for k, v := range labels {
		if keep(k) {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

// renderServer renders the server's config.yaml.
func renderServer(c ServerConfig) []byte {
	var y yamlConfig
	y.b.WriteString("# Written by edgeline; changes here are overwritten on the next run.\n")
	y.str("token", c.Token)
	y.str("node-name", c.NodeName)
	y.str("node-ip", c.NodeIP)
	y.str("node-external-ip", c.NodeExternalIP)
	y.list("tls-san", c.TLSSANs)
	y.list("node-label", labelList(c.Labels, kubeletLabel))
	y.list("node-taint", sorted(c.Taints))
	y.str("flannel-backend", c.FlannelBackend)
	y.boolean("flannel-external-ip", c.FlannelExternalIP)
	y.str("vpn-auth", c.VPNAuth)
	y.list("disable", sorted(c.Disable))
	return y.b.Bytes()
}

// renderAgent renders an agent's config.yaml.
func renderAgent(serverURL, token string, c AgentConfig) []byte {
	var y yamlConfig
	y.b.WriteString("# Written by edgeline; changes here are overwritten on the next run.\n")
	y.str("server", serverURL)
	y.str("token", token)
	y.str("node-name", c.NodeName)
	y.str("node-ip", c.NodeIP)
	y.str("node-external-ip", c.NodeExternalIP)
	y.list("node-label", labelList(c.labels(), kubeletLabel))
	y.list("node-taint", sorted(c.taints()))
	y.str("vpn-auth", c.VPNAuth)
	return y.b.Bytes()
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}
