# Face-login web front end: end-to-end tests in headless Chromium with fake cameras made by
# ffmpeg from testdata/faces, and a real nginx balancing two api processes.
APT_PACKAGES += chromium ffmpeg nginx

ifneq ($(wildcard /usr/bin/chromium),)
TEST_ENV += EDGELINE_TEST_CHROMIUM=/usr/bin/chromium
endif
ifneq ($(wildcard /usr/sbin/nginx),)
TEST_ENV += EDGELINE_TEST_NGINX=/usr/sbin/nginx
endif

# axe-core, the accessibility checker the browser tests run on every page state they reach
# (MPL-2.0, kept in the tool cache, not in the repository): version and the npm tarball's
# sha512 integrity are pinned here; hack/axe.sh refuses a tarball that does not match.
AXE_VERSION   := 4.14.1
AXE_INTEGRITY := sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
AXE_DIR       := $(CACHE)/axe-core-$(AXE_VERSION)
TEST_ENV      += EDGELINE_TEST_AXE=$(AXE_DIR)/axe.min.js
TEST_DEPS     += axe

.PHONY: axe
axe: ## Fetch axe-core (pinned, integrity-checked) into the tool cache for the browser tests.
	@./hack/axe.sh $(AXE_DIR) $(AXE_VERSION) '$(AXE_INTEGRITY)'
