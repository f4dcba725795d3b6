# Face recognition (apps/facelogin/face, match): go-face builds against dlib, BLAS, LAPACK and
# libjpeg, all in the top Makefile's APT_PACKAGES; the tests read the models from
# EDGELINE_MODELS and the photos from EDGELINE_FACES, which `make test` sets.

# The frame decoding path (size and pixel caps, JPEG/PNG, conversion for dlib).
FUZZ_TARGETS += apps/facelogin/face:FuzzDecode

.PHONY: bench-face
bench-face: models ## Run the face and match benchmarks recorded in docs/benchmarks.md.
	env $(TEST_ENV) $(GO) test -run '^$$' -bench . -benchmem -count 1 ./apps/facelogin/match ./apps/facelogin/face
