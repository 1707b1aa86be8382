# udaxfs top-level Makefile: a thin wrapper around CMake and ctest.
#
#   make run     install what is missing, build, mount the default pool at
#                run/mnt until Ctrl-C (make demo: the in-process demo)
#   make test    install what is missing, build and run every test three
#                times: normal, ThreadSanitizer, AddressSanitizer+UBSan
#   make bench   build optimised and print BENCH <name> <value> lines
#
# Build trees live under build/<flavour>.  Long stress and soak runs:
#   UDX_STRESS_SECONDS=600 make test      (per stress test; default is short)

MAKEFLAGS += --no-print-directory
BUILD     ?= build
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE     ?= cmake
CTEST_ARGS ?= --output-on-failure --timeout 900 -j $(JOBS)

FLAVOURS = normal tsan asan

cfg_normal  = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUDX_DEBUG=ON
cfg_tsan    = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUDX_DEBUG=ON -DUDX_SANITIZE=thread
cfg_asan    = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUDX_DEBUG=ON -DUDX_SANITIZE=address
cfg_release = -DCMAKE_BUILD_TYPE=Release
cfg_fuzz    = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUDX_DEBUG=ON -DUDX_SANITIZE=fuzzer \
	      -DCMAKE_C_COMPILER=clang

# the fuzz run in `make test`; longer: make test-fuzz FUZZ_SECONDS=3600
FUZZ_SECONDS ?= 30

.PHONY: all deps run demo test bench clean

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

.PHONY: build-fuzz test-fuzz
build-fuzz: deps
	@$(CMAKE) -S . -B $(BUILD)/fuzz $(cfg_fuzz) >/dev/null
	@$(CMAKE) --build $(BUILD)/fuzz -j $(JOBS) --target fuzz_image

# libFuzzer on corrupted images, from the seed corpus in fuzz/corpus (the
# corpus directory is not modified; new inputs go to a scratch directory)
test-fuzz: build-fuzz
	@echo "== fuzz: mount and fsck of corrupted images, $(FUZZ_SECONDS) s =="
	@rm -rf $(BUILD)/fuzz/corpus && mkdir -p $(BUILD)/fuzz/corpus
	@$(BUILD)/fuzz/fuzz_image -max_total_time=$(FUZZ_SECONDS) -timeout=20 \
		-rss_limit_mb=4096 -print_final_stats=1 $(BUILD)/fuzz/corpus fuzz/corpus \
		2> $(BUILD)/fuzz/fuzz.log || { tail -60 $(BUILD)/fuzz/fuzz.log; exit 1; }
	@grep -E "stat::number_of_executed_units|Done" $(BUILD)/fuzz/fuzz.log | tail -2

test: test-normal test-tsan test-asan test-fuzz
	@echo "== all tests passed (normal, tsan, asan+ubsan, fuzz) =="

# the pool in run/udaxfs.pool, mounted at run/mnt until Ctrl-C
run: build-release
	@./scripts/run.sh $(BUILD)/release/udaxfs

# the in-process demonstration of the lifetime rules (no FUSE)
demo: build-release
	@$(BUILD)/release/udaxfs demo

bench: build-release
	@$(BUILD)/release/bench/udx-bench
	@$(BUILD)/release/bench/udx-bench-fuse $(BUILD)/release/udaxfs

clean:
	rm -rf $(BUILD)
