# A real Kubernetes node for the tests that need pods to start (internal/nodetest):
# kubelet and kube-proxy from the Kubernetes module (tools/kube, sharing the
# compiled k8s.io packages with kube-apiserver), containerd + ctr + shim
# (tools/node/containerd), runc (tools/node/runc, cgo + libseccomp), the CNI
# plugins (tools/node/cni: bridge, host-local, loopback) and CoreDNS (tools/node/coredns). Each binary is
# built into $(BIN) only when it is missing or reports another version; the
# cold build is ≈14 min on 2 cores (kubelet alone ≈9), see docs/benchmarks.md.
#
# `make test` runs the real-node tests when the machine can host the node
# (root, cgroup v1, the binaries built): EDGELINE_TEST_NODE names the
# binary directory; without it those tests skip and say how to enable them.

CONTAINERD_VERSION := v2.4.2
RUNC_VERSION       := v1.5.3
CNI_VERSION        := v1.10.0
COREDNS_VERSION    := v1.15.0
NODE_KUBE_BINS     := kubelet kube-proxy
CNI_PLUGINS        := bridge host-local loopback
CNI_BIN            := $(BIN)/cni

APT_PACKAGES += libseccomp-dev iptables nftables conntrack

CONTAINERD_LDFLAGS := -s -w -X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_VERSION)
RUNC_LDFLAGS       := -s -w -X main.version=$(RUNC_VERSION:v%=%)
CNI_LDFLAGS        := -s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$(CNI_VERSION)

# The real node needs root (namespaces, mounts, the bridge) and cgroup v1 (the
# pids hierarchy tracks its processes). Elsewhere, a cgroup v2 machine included,
# nothing is built and the node's tests skip, saying why (nodetest.Available).
NODE_CAPABLE := $(shell [ "$$(id -u)" = 0 ] && [ -f /sys/fs/cgroup/pids/cgroup.procs ] && command -v nft >/dev/null && echo yes)

ifeq ($(NODE_CAPABLE),yes)
TEST_DEPS += node
TEST_ENV  += EDGELINE_TEST_NODE=$(BIN)
endif

# Every build below holds this lock and checks the version again once it has it: two
# makes sharing one tool cache (CI and an engineer) never build the same tool at once,
# and the second finds the first one's binary instead of building it again.
NODE_LOCK := exec 9>>$(BIN)/.node-build.lock; flock -n 9 || { \
	echo "node: waiting for another build of the node's tools ($(BIN)/.node-build.lock)"; flock 9; }

.PHONY: node $(NODE_KUBE_BINS) containerd runc cni coredns

node: $(NODE_KUBE_BINS) containerd runc cni coredns ## Build the real test node (kubelet, kube-proxy, containerd, runc, CNI, CoreDNS) into the cache.

$(NODE_KUBE_BINS):
	@mkdir -p $(BIN)
	@$(NODE_LOCK); \
	if [ "$$($(BIN)/$@ --version 2>/dev/null)" = "Kubernetes $(KUBE_VERSION)" ]; then exit 0; fi; \
	echo "node: building $@ $(KUBE_VERSION) (cold: minutes, >2 GB RAM)"; \
	cd tools/kube && nice -n 10 $(GO) build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $(BIN)/$@ k8s.io/kubernetes/cmd/$@

containerd:
	@mkdir -p $(BIN)
	@$(NODE_LOCK); \
	if [ "$$($(BIN)/containerd --version 2>/dev/null | awk '{print $$3}')" = "$(CONTAINERD_VERSION)" ] && \
		[ -x $(BIN)/ctr ] && [ -x $(BIN)/containerd-shim-runc-v2 ]; then exit 0; fi; \
	echo "node: building containerd $(CONTAINERD_VERSION) (cold: ≈2.5 min)"; \
	cd tools/node/containerd && for c in containerd ctr containerd-shim-runc-v2; do \
		CGO_ENABLED=0 nice -n 10 $(GO) build -trimpath -tags 'no_btrfs no_devmapper no_zfs' \
			-ldflags '$(CONTAINERD_LDFLAGS)' -o $(BIN)/$$c github.com/containerd/containerd/v2/cmd/$$c; \
	done

runc:
	@mkdir -p $(BIN)
	@$(NODE_LOCK); \
	if $(BIN)/runc --version 2>/dev/null | grep -qx 'runc version $(RUNC_VERSION:v%=%)'; then exit 0; fi; \
	echo "node: building runc $(RUNC_VERSION)"; \
	cd tools/node/runc && CGO_ENABLED=1 nice -n 10 $(GO) build -trimpath -tags seccomp \
		-ldflags '$(RUNC_LDFLAGS)' -o $(BIN)/runc github.com/opencontainers/runc

cni:
	@mkdir -p $(CNI_BIN)
	@$(NODE_LOCK); \
	if [ "$$($(CNI_BIN)/bridge --version 2>&1 | grep -o 'v[0-9.]*' | head -1)" = "$(CNI_VERSION)" ] && \
		[ -x $(CNI_BIN)/host-local ] && [ -x $(CNI_BIN)/loopback ]; then exit 0; fi; \
	echo "node: building CNI plugins $(CNI_VERSION)"; \
	cd tools/node/cni && for p in main/bridge ipam/host-local main/loopback; do \
		CGO_ENABLED=0 nice -n 10 $(GO) build -trimpath -ldflags '$(CNI_LDFLAGS)' \
			-o $(CNI_BIN)/$${p#*/} github.com/containernetworking/plugins/plugins/$$p; \
	done

coredns:
	@mkdir -p $(BIN)
	@$(NODE_LOCK); \
	if $(BIN)/coredns -version 2>/dev/null | grep -qF 'CoreDNS-$(COREDNS_VERSION:v%=%)'; then exit 0; fi; \
	echo "node: building coredns $(COREDNS_VERSION)"; \
	cd tools/node/coredns && CGO_ENABLED=0 nice -n 10 $(GO) build -trimpath -ldflags '-s -w' \
		-o $(BIN)/coredns github.com/coredns/coredns
