# udaxfs top-level Makefile: a thin wrapper around CMake and ctest.
#
#   make run     install what is missing, build, run the main job
#   make test    install what is missing, build and run every test three
#                times: normal, ThreadSanitizer, AddressSanitizer+UBSan
#   make bench   build optimised and print BENCH <name> <value> lines
#
# Build trees live under build/<flavour>.  Long stress and soak runs:
#   UDX_STRESS_SECONDS=600 make test      (per stress test; default is short)

BUILD     ?= build
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE     ?= cmake
CTEST_ARGS ?= --output-on-failure --timeout 900 -j $(JOBS)

FLAVOURS = normal tsan asan

cfg_normal  = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUDX_DEBUG=ON
cfg_tsan    = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUDX_DEBUG=ON -DUDX_SANITIZE=thread
cfg_asan    = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUDX_DEBUG=ON -DUDX_SANITIZE=address
cfg_release = -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps run test bench clean

all: build-normal

deps:
	@./scripts/deps.sh

# build-<flavour> and test-<flavour>, for every flavour (explicit rules:
# make does not apply pattern rules to phony targets)
define flavour_rules
.PHONY: build-$(1) test-$(1)
build-$(1): deps
	@$$(CMAKE) -S . -B $$(BUILD)/$(1) $$(cfg_$(1)) >/dev/null
	@$$(CMAKE) --build $$(BUILD)/$(1) -j $$(JOBS)
test-$(1): build-$(1)
	@echo "== tests: $(1) build =="
	@cd $$(BUILD)/$(1) && ctest $$(CTEST_ARGS)
endef
$(foreach f,$(FLAVOURS) release,$(eval $(call flavour_rules,$(f))))

test: test-normal test-tsan test-asan
	@echo "== all tests passed (normal, tsan, asan+ubsan) =="

run: build-release
	@$(BUILD)/release/udaxfs demo

bench: build-release
	@$(BUILD)/release/bench/udx-bench

clean:
	rm -rf $(BUILD)
