# Face-login web front end: end-to-end tests in headless Chromium with fake cameras made by
# ffmpeg from testdata/faces, and a real nginx balancing two api processes.
APT_PACKAGES += chromium ffmpeg nginx

ifneq ($(wildcard /usr/bin/chromium),)
TEST_ENV += EDGELINE_TEST_CHROMIUM=/usr/bin/chromium
endif
ifneq ($(wildcard /usr/sbin/nginx),)
TEST_ENV += EDGELINE_TEST_NGINX=/usr/sbin/nginx
endif
