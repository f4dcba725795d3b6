# Face-login recognition API (apps/facelogin/api) and the facelogin command (cmd/facelogin,
# apps/facelogin/config, apps/facelogin/command). The api tests run the real dlib models on
# testdata/faces against SQLite and the PostgreSQL of EDGELINE_TEST_POSTGRES; `make test`
# sets all three variables already.

.PHONY: bench-api
bench-api: models ## Benchmark one login frame through the api against the bare engine (docs/benchmarks.md).
	env $(TEST_ENV) $(GO) test -run '^$$' -bench LoginFrame -benchmem -count 1 ./apps/facelogin/api

.PHONY: bench-load
bench-load: models ## Drive 1, 4, 16 and 64 login sockets, full-size vs halved detection side by side (docs/benchmarks.md).
	env $(TEST_ENV) OPENBLAS_NUM_THREADS=1 $(GO) test -run '^$$' -bench Load -benchtime 1x -timeout 30m ./apps/facelogin/api

# Hostile request bodies against the strict JSON decoding every endpoint uses.
FUZZ_TARGETS += apps/facelogin/api:FuzzDecodeJSON
