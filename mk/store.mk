# Face-login persistence (apps/facelogin/store, apps/facelogin/seal).
# The store tests need a real PostgreSQL: the top Makefile's `unit` target already passes
# EDGELINE_TEST_POSTGRES from hack/postgres.sh, and `postgresql postgresql-client` are in
# APT_PACKAGES. Each test works in a schema of its own and drops it afterwards.

# Corrupted or hostile sealed blobs and key files must be refused, never crash the api.
FUZZ_TARGETS += apps/facelogin/seal:FuzzOpen

.PHONY: bench-store

bench-store: ## Store benchmarks (SQLite vs PostgreSQL, 10 000 samples); figures go to docs/benchmarks.md.
	@dsn=$$(./hack/postgres.sh) && \
	env $(TEST_ENV) EDGELINE_TEST_POSTGRES="$$dsn" $(GO) test -run '^$$' -bench . -benchmem -count 1 \
		./apps/facelogin/store/ ./apps/facelogin/seal/
