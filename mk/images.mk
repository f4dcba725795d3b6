# App images for amd64 and arm64 without a container engine (internal/oci,
# internal/appimage, `edgeline images`): Debian's arm64 cross compiler and arm64
# (multiarch) libraries for the cgo cross build of facelogin, qemu-user to run the arm64
# binary (never with -L: see docs/images.md), and the static QEMU emulators (from
# qemu-user-static, unpacked into the cache: that package conflicts with qemu-user's
# binfmt setup) to run an arm64 image's root file system chrooted.
#
# Installing arm64 packages beside amd64 ones upgrades the amd64 twins of Multi-Arch:
# same packages (libssl3, zlib1g, libpng16-16, krb5, ...) to the archive's current
# version, because both architectures must carry the same version; nothing is removed.
# `apt-get -s install` shows it beforehand (docs/images.md).

APT_ARCHES   += arm64
APT_PACKAGES += g++-aarch64-linux-gnu binutils qemu-user \
	libdlib-dev:arm64 libopenblas-dev:arm64 liblapack-dev:arm64 libjpeg62-turbo-dev:arm64 libatlas-base-dev:arm64

QEMU_STATIC  := $(CACHE)/qemu-static
TEST_DEPS    += qemu-static
TEST_ENV     += EDGELINE_TEST_QEMU_STATIC=$(QEMU_STATIC)/bin
ifneq ($(shell command -v qemu-aarch64 2>/dev/null),)
TEST_ENV     += EDGELINE_TEST_QEMU=$(shell command -v qemu-aarch64)
endif

.PHONY: qemu-static images images-test

# The emulators are fetched again only when Debian's candidate version changes.
qemu-static: ## Unpack Debian's static QEMU user emulators (aarch64, x86_64) into the cache.
	@v=$$(apt-cache policy qemu-user-static 2>/dev/null | sed -n 's/^ *Candidate: //p'); \
	if [ -z "$$v" ] || [ "$$v" = "(none)" ]; then echo "qemu-static: qemu-user-static is not in the apt lists (run make setup)"; exit 0; fi; \
	if [ "$$(cat $(QEMU_STATIC)/version 2>/dev/null)" = "$$v" ] && [ -x $(QEMU_STATIC)/bin/qemu-aarch64-static ]; then exit 0; fi; \
	echo "qemu-static: fetching qemu-user-static $$v"; \
	tmp=$$(mktemp -d) && chmod 755 $$tmp && trap 'rm -rf $$tmp' EXIT && \
	(cd $$tmp && apt-get download -qq "qemu-user-static=$$v" 2>/dev/null) && \
	dpkg-deb --fsys-tarfile $$tmp/qemu-user-static_*.deb | tar -x -C $$tmp ./usr/bin/qemu-aarch64-static ./usr/bin/qemu-x86_64-static && \
	mkdir -p $(QEMU_STATIC)/bin && mv $$tmp/usr/bin/qemu-*-static $(QEMU_STATIC)/bin/ && echo "$$v" > $(QEMU_STATIC)/version

images: build ## Build the app images (amd64 + arm64) into bin/images; push with `bin/edgeline images push`.
	bin/edgeline images build

# The images' proof without the rest of `make test`: build, run the arm64 binary under
# QEMU, push to a loopback registry, pull, unpack and run both root file systems.
images-test: models qemu-static ## Test the image build and run the images (also part of make test).
	env $(TEST_ENV) $(GO) test $(GOTEST_FLAGS) ./internal/oci/... ./internal/appimage/...

# What building the images needs and nothing else (the CI workflow that publishes them):
# the native and arm64 toolchains and libraries, and the models.
IMAGE_PACKAGES := ca-certificates git make g++ pkg-config binutils \
	libdlib-dev libopenblas-dev liblapack-dev libjpeg62-turbo-dev libatlas-base-dev \
	g++-aarch64-linux-gnu libdlib-dev:arm64 libopenblas-dev:arm64 liblapack-dev:arm64 \
	libjpeg62-turbo-dev:arm64 libatlas-base-dev:arm64

.PHONY: setup-images
setup-images: ## Install only what building the images needs (as root): toolchains, libraries, models.
	$(MAKE) apt APT_PACKAGES="$(IMAGE_PACKAGES)" APT_COMMANDS="npm:npm"
	$(MAKE) models

# The GitHub Actions workflows are linted with actionlint, built from its released module
# (tools/actionlint) into $(BIN) when missing or of another version.
ACTIONLINT_VERSION := v1.7.12

.PHONY: actionlint lint-workflows
lint: lint-workflows

actionlint:
	@mkdir -p $(BIN)
	@if [ "$$($(BIN)/actionlint -version 2>/dev/null | head -1)" = "$(ACTIONLINT_VERSION)" ]; then exit 0; fi; \
	echo "actionlint: building $(ACTIONLINT_VERSION)"; \
	cd tools/actionlint && nice -n 10 $(GO) build -trimpath -ldflags '-s -w -X github.com/rhysd/actionlint.version=$(ACTIONLINT_VERSION)' \
		-o $(BIN)/actionlint github.com/rhysd/actionlint/cmd/actionlint

lint-workflows: actionlint ## Lint .github/workflows with actionlint.
	$(BIN)/actionlint -no-color .github/workflows/*.yml

.PHONY: bench-cpu-target bench-images
bench-cpu-target: models ## Per-frame cost, go-face built for the baseline CPU vs -march=native (docs/benchmarks.md).
	env $(TEST_ENV) nice -n 10 bench/cpu-target.sh

bench-images: build ## Image build times cold and warm, and sizes (docs/benchmarks.md).
	nice -n 10 bench/images.sh
