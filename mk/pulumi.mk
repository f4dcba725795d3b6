# Provisioning (infra/, cmd/edgeline, cmd/pulumi-resource-edgeline): the pulumi CLI that the
# end-to-end tests drive through the Automation API, and OpenTofu for the terraform source of
# infra/cloud. Both are built from their released Go modules (tools/pulumi, tools/tofu) into
# $(BIN) only when missing or of another version, so only the first run on a machine pays for
# the cold builds (pulumi ≈6 min and 2.3 GB RAM, tofu ≈2.5 min on 2 cores).

PULUMI_VERSION := v3.276.0
TOFU_VERSION   := v1.12.6
# This machine's environment may name a missing CLI configuration file; the binaries then
# print a warning that breaks terraform-exec's parsing. Tests get an existing, empty one.
TOFU_RC        := $(CACHE)/tofu.tfrc

TEST_DEPS += pulumi tofu
TEST_ENV  += EDGELINE_TEST_PULUMI=$(BIN)/pulumi EDGELINE_TEST_TOFU=$(BIN)/tofu \
	TF_CLI_CONFIG_FILE=$(TOFU_RC) CHECKPOINT_DISABLE=1 PULUMI_SKIP_UPDATE_CHECK=1

.PHONY: pulumi tofu

pulumi: ## Build the pulumi CLI into the cache (first time only).
	@mkdir -p $(BIN)
	@if [ "$$($(BIN)/pulumi version 2>/dev/null)" = "$(PULUMI_VERSION)" ]; then exit 0; fi; \
	echo "pulumi: building the CLI $(PULUMI_VERSION) (cold: ≈6 min, 2.3 GB RAM)"; \
	cd tools/pulumi && nice -n 10 $(GO) build -trimpath \
		-ldflags '-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$(PULUMI_VERSION)' \
		-o $(BIN)/pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

tofu: ## Build OpenTofu into the cache (first time only).
	@mkdir -p $(BIN) $(dir $(TOFU_RC))
	@touch $(TOFU_RC)
	@if TF_CLI_CONFIG_FILE=$(TOFU_RC) $(BIN)/tofu version 2>/dev/null | head -1 | grep -qxF 'OpenTofu $(TOFU_VERSION)'; then exit 0; fi; \
	echo "tofu: building OpenTofu $(TOFU_VERSION) (cold: ≈2.5 min)"; \
	cd tools/tofu && nice -n 10 $(GO) build -trimpath \
		-ldflags '-X github.com/opentofu/opentofu/version.dev=no' \
		-o $(BIN)/tofu github.com/opentofu/opentofu/cmd/tofu

.PHONY: sdk
sdk: ## Regenerate the provider's Go SDK (sdk/go/edgeline) from its schema.
	cd tools/sdkgen && $(GO) run . -out ../../sdk/go
