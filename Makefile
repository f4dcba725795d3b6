# edgeline: one Makefile, fragments in mk/ add their tools and test wiring.
# Quick start: `make setup run` then `make test`. See README.md.

SHELL        := bash
.SHELLFLAGS  := -euo pipefail -c
.DEFAULT_GOAL := help

GO           ?= go
# Heavy tool builds (kube-apiserver, pulumi, tofu) are kept here; point EDGELINE_CACHE
# somewhere persistent to share them between clones (.ci/run does).
CACHE        ?= $(or $(EDGELINE_CACHE),$(CURDIR)/.cache)
BIN          := $(CACHE)/bin
MODELS_DIR   := $(CURDIR)/models
# Face photos for the tests (MIT-licensed, copied from ../shared/faces with their licences).
FACES_DIR    := $(CURDIR)/testdata/faces
DATA_DIR     ?= $(CURDIR)/data
ADDR         ?= 127.0.0.1:8080

# System packages `make setup` installs with apt (mk/*.mk append theirs).
APT_PACKAGES := ca-certificates curl git make g++ pkg-config \
	libdlib-dev libopenblas-dev liblapack-dev libjpeg62-turbo-dev libatlas-base-dev \
	postgresql
# Foreign architectures dpkg must know before APT_PACKAGES can name their packages.
APT_ARCHES   :=
# command:package pairs installed only when the command is missing: a machine may already
# have them from elsewhere (Node.js's own packages bring npm and conflict with Debian's).
APT_COMMANDS := npm:npm psql:postgresql-client
# Environment for `go test` (mk/*.mk append EDGELINE_TEST_* switches for the real parts).
TEST_ENV     := EDGELINE_MODELS=$(MODELS_DIR) EDGELINE_FACES=$(FACES_DIR)
# Targets `make test` needs first (mk/*.mk append tool builds).
TEST_DEPS    := models
# Fuzz targets run for FUZZTIME each in `make test`: "package-dir:FuzzName".
FUZZ_TARGETS :=
FUZZTIME     ?= 10s
GOTEST_FLAGS ?= -count=1 -timeout 25m
# Packages `make unit` tests; narrow it to run one area with the full test environment,
# for example `make unit PKGS=./apps/facelogin/api/...`.
PKGS         ?= ./...

include $(sort $(wildcard mk/*.mk))

.PHONY: help setup apt models deps run build app test unit fuzz bench lint clean

help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

setup: apt models deps axe ## Install system packages (apt, as root), the dlib models, Go modules and axe-core.

apt: ## Install the system packages the build and tests need (Debian, as root).
	@if ! command -v apt-get >/dev/null; then echo "setup: apt-get not found; install these packages yourself: $(APT_PACKAGES)"; exit 0; fi
	@for a in $(APT_ARCHES); do \
		dpkg --print-foreign-architectures | grep -qx "$$a" && continue; \
		if [ "$$(id -u)" != 0 ]; then echo "setup: run as root (or with sudo) to add the $$a architecture (dpkg --add-architecture $$a)" >&2; exit 1; fi; \
		echo "apt: adding the $$a architecture"; dpkg --add-architecture "$$a"; \
	done
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done; \
		for cp in $(APT_COMMANDS); do command -v $${cp%%:*} >/dev/null || echo $${cp#*:}; done); \
	if [ -z "$$missing" ]; then echo "apt: all packages present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "setup: run as root (or with sudo) to install: $$missing" >&2; exit 1; fi; \
	echo "apt: installing $$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing >/dev/null
	@$(GO) version | awk '{ split($$3, v, "."); if (v[2] < 26) { print "setup: Go 1.26 or newer is needed (found " $$3 ")"; exit 1 } }'

models: ## Fetch and verify the dlib models into models/.
	@./hack/models.sh

deps: ## Download Go modules.
	@$(GO) mod download

build: ## Build the deployer binaries (edgeline, pulumi-resource-edgeline) into bin/, without cgo.
	CGO_ENABLED=0 $(GO) build -o bin/ ./cmd/edgeline ./cmd/pulumi-resource-edgeline

app: ## Build the face-login app for this machine into bin/ (facelogin with cgo and dlib, facelogin-web).
	$(GO) build -o bin/ ./cmd/facelogin
	CGO_ENABLED=0 $(GO) build -o bin/ ./cmd/facelogin-web

run: models ## Run the face-login app locally (SQLite in data/, http://127.0.0.1:8080).
	@mkdir -p $(DATA_DIR)
	$(GO) run ./cmd/facelogin serve --addr $(ADDR) --data-dir $(DATA_DIR) --models $(MODELS_DIR)

test: $(TEST_DEPS) lint unit fuzz ## Everything CI runs: lint, all tests on the real parts, short fuzzing.

unit:
	@dsn=$$(./hack/postgres.sh) && \
	env $(TEST_ENV) EDGELINE_TEST_POSTGRES="$$dsn" $(GO) test $(GOTEST_FLAGS) $(PKGS)

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t for $(FUZZTIME)"; \
		env $(TEST_ENV) $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "./$${t%%:*}"; \
	done

bench: $(TEST_DEPS) ## Run the benchmarks (figures go to docs/benchmarks.md).
	@dsn=$$(./hack/postgres.sh) && \
	env $(TEST_ENV) EDGELINE_TEST_POSTGRES="$$dsn" $(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

lint: ## go vet and a gofmt check.
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^tools/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean: ## Remove built binaries and test artifacts (keeps the tool cache).
	rm -rf bin artifacts
