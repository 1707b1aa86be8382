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

.PHONY: all deps run test bench clean $(addprefix build-,$(FLAVOURS) release) \
	$(addprefix test-,$(FLAVOURS))

all: build-normal

deps:
	@./scripts/deps.sh

build-%: deps
	@$(CMAKE) -S . -B $(BUILD)/$* $(cfg_$*) >/dev/null
	@$(CMAKE) --build $(BUILD)/$* -j $(JOBS)

test-%: build-%
	@echo "== tests: $* build =="
	@cd $(BUILD)/$* && ctest $(CTEST_ARGS)

test: test-normal test-tsan test-asan
	@echo "== all tests passed (normal, tsan, asan+ubsan) =="

run: build-release
	@$(BUILD)/release/udaxfs demo

bench: build-release
	@$(BUILD)/release/bench/udx-bench

clean:
	rm -rf $(BUILD)
