# A real Kubernetes control plane for the chart tests (internal/kubetest):
# kube-apiserver, kube-controller-manager and kube-scheduler built from the
# released k8s.io/kubernetes module (tools/kube), kine for storage
# (tools/kube/kine), kwok for fake nodes (tools/kube/kwok) and the Gateway API
# HTTPRoute CRD (tools/kube/gatewayapi). Each binary is
# built into $(BIN) only when it is missing or reports another version, so only
# the first run on a machine pays for the cold build (≈10 min on 2 cores).

KUBE_VERSION := v1.37.2
KINE_VERSION := v0.17.5
KWOK_VERSION := v0.8.0
KUBE_BINS    := kube-apiserver kube-controller-manager kube-scheduler
KWOK_STAGES  := $(CACHE)/kwok-stages
KUBE_CRDS    := $(CACHE)/crds

# Without a stamped version kubectl and Helm's kubeVersion checks see v0.0.0-master.
KUBE_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/component-base/version.gitTreeState=clean
KINE_LDFLAGS := -s -w -X github.com/k3s-io/kine/pkg/version.Version=$(KINE_VERSION)
KWOK_LDFLAGS := -s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$(KWOK_VERSION:v%=%)

TEST_DEPS += kube
TEST_ENV  += EDGELINE_TEST_KUBE=$(BIN)

.PHONY: kube $(KUBE_BINS) kine kwok kwok-stages kube-crds

kube: $(KUBE_BINS) kine kwok kwok-stages kube-crds ## Build the test control plane (apiserver, controller-manager, scheduler, kine, kwok) into the cache.

# Each tool is rebuilt only when `--version` does not name the pinned release.
$(KUBE_BINS):
	@mkdir -p $(BIN)
	@if [ "$$($(BIN)/$@ --version 2>/dev/null)" = "Kubernetes $(KUBE_VERSION)" ]; then exit 0; fi; \
	echo "kube: building $@ $(KUBE_VERSION) (cold: minutes, >2 GB RAM)"; \
	cd tools/kube && nice -n 10 $(GO) build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $(BIN)/$@ k8s.io/kubernetes/cmd/$@

kine:
	@mkdir -p $(BIN)
	@if $(BIN)/kine --version 2>/dev/null | grep -qF '$(KINE_VERSION)'; then exit 0; fi; \
	echo "kube: building kine $(KINE_VERSION)"; \
	cd tools/kube/kine && CGO_ENABLED=1 nice -n 10 $(GO) build -trimpath -ldflags '$(KINE_LDFLAGS)' -o $(BIN)/kine github.com/k3s-io/kine

kwok:
	@mkdir -p $(BIN)
	@if $(BIN)/kwok --version 2>/dev/null | grep -qF '$(KWOK_VERSION:v%=%)'; then exit 0; fi; \
	echo "kube: building kwok $(KWOK_VERSION)"; \
	cd tools/kube/kwok && nice -n 10 $(GO) build -trimpath -ldflags '$(KWOK_LDFLAGS)' -o $(BIN)/kwok sigs.k8s.io/kwok/cmd/kwok

# The stages kwok plays for fake nodes and pods, copied out of the module.
kwok-stages:
	@mkdir -p $(KWOK_STAGES)
	@dir=$$(cd tools/kube/kwok && $(GO) mod download -json sigs.k8s.io/kwok | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p') && \
	for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
		pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do \
		install -m 0644 "$$dir/kustomize/stage/$$f.yaml" $(KWOK_STAGES)/; \
	done

# CRDs the control plane installs at start (the chart's optional HTTPRoute).
kube-crds:
	@mkdir -p $(KUBE_CRDS)
	@dir=$$(cd tools/kube/gatewayapi && $(GO) mod download -json sigs.k8s.io/gateway-api | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p') && \
	install -m 0644 "$$dir/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml" $(KUBE_CRDS)/
