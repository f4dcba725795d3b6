# Face recognition (apps/facelogin/face, match): go-face builds against dlib, BLAS, LAPACK and
# libjpeg, all in the top Makefile's APT_PACKAGES; the tests read the models from
# EDGELINE_MODELS and the photos from EDGELINE_FACES, which `make test` sets.

# The frame decoding path (size and pixel caps, JPEG/PNG, conversion for dlib).
FUZZ_TARGETS += apps/facelogin/face:FuzzLoad

.PHONY: bench-face
bench-face: models ## Run the face and match benchmarks recorded in docs/benchmarks.md.
	env $(TEST_ENV) $(GO) test -run '^$$' -bench 'Frame|Workers|OneRecognizer' -benchtime 12x ./apps/facelogin/face
	env $(TEST_ENV) OPENBLAS_NUM_THREADS=1 $(GO) test -run '^$$' -bench 'Frame/jpeg|Workers' -benchtime 12x ./apps/facelogin/face
	env $(TEST_ENV) $(GO) test -run '^$$' -bench RSS -benchtime 4x ./apps/facelogin/face
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./apps/facelogin/match
