# Beamline: the two commands.
#   make test   build debug, asan (ASan+UBSan) and tsan, run the Criterion suite in each
#   make bench  build release, run Beamline, BEAM and Go workloads, print the table
#   make chaos  build release and asan, run the chaos suite in each (tests/chaos/README.md)
# They install missing Debian packages first (apt-get, as root).

BUILD_DEPS := build-essential cmake pkg-config liburing-dev libhwloc-dev libnuma-dev \
              libcriterion-dev libgmp-dev python3 erlang-dev erlang-base elixir \
              libssl-dev openssl curl libsystemd-dev tmux
BENCH_DEPS := $(BUILD_DEPS) libbenchmark-dev g++ elixir erlang-dev golang-go wrk nginx python3-matplotlib
CHAOS_DEPS := $(BUILD_DEPS) wrk
CHAOS_SECONDS ?= 20
TEST_PRESETS ?= debug asan tsan
BENCH_FILTER ?=
BENCH_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all build test bench chaos install deps-build deps-bench format check-format check-aarch64 clean $(addprefix test-,$(TEST_PRESETS))

all: build

define install_missing
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or install:$$missing)"; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps-build:
	$(call install_missing,$(BUILD_DEPS))

deps-bench:
	$(call install_missing,$(BENCH_DEPS))

build: deps-build
	cmake --preset debug >/dev/null
	cmake --build build/debug -j$(JOBS)

test: deps-build
	@set -e; for p in $(TEST_PRESETS); do \
	  echo "=== $$p build ==="; \
	  cmake --preset $$p >/dev/null; \
	  cmake --build build/$$p -j$(JOBS); \
	  echo "=== $$p tests ==="; \
	  ctest --preset $$p -j$(JOBS); \
	done

test-%: deps-build
	cmake --preset $* >/dev/null
	cmake --build build/$* -j$(JOBS)
	ctest --preset $* -j$(JOBS)

bench: deps-bench
	cmake --preset release >/dev/null
	cmake --build build/release -j$(JOBS)
	python3 bench/run.py --beamline build/release/bench/beamline_bench --build-dir build/release \
	  $(if $(BENCH_FILTER),--filter '$(BENCH_FILTER)') $(BENCH_FLAGS)

# Each chaos scenario for CHAOS_SECONDS in the release and the ASan build
# (about 2 x 5 x CHAOS_SECONDS s, plus the builds).  --seed N replays a run:
# make chaos CHAOS_FLAGS='--seed N'.
chaos:
	$(call install_missing,$(CHAOS_DEPS))
	@set -e; for p in release asan; do \
	  echo "=== $$p build ==="; \
	  cmake --preset $$p >/dev/null; \
	  cmake --build build/$$p -j$(JOBS) --target beamline_chaos; \
	  echo "=== $$p chaos ==="; \
	  build/$$p/tests/chaos/beamline_chaos --seconds $(CHAOS_SECONDS) $(CHAOS_FLAGS); \
	done

# The library alone, optimised, installed under PREFIX: headers, libbeamline.a,
# libbeamline.so.0.<minor>, beamline.pc and the CMake package (README.md, "Use Beamline
# in your own program").  DESTDIR=/some/stage stages the files for packaging.
PREFIX ?= /usr/local
install: deps-build
	cmake -S . -B build/install -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX='$(PREFIX)' \
	  -DBL_BUILD_TESTS=OFF -DBL_BUILD_EXAMPLES=OFF -DBL_BUILD_BENCH=OFF >/dev/null
	cmake --build build/install -j$(JOBS)
	cmake --install build/install

# The AArch64 context switch, cross-compiled and run under qemu-user.
check-aarch64:
	$(call install_missing,gcc-aarch64-linux-gnu qemu-user)
	aarch64-linux-gnu-gcc -O2 -I. -Iinclude tests/core/ctx_selftest.c core/ctx.c \
	  core/ctx_aarch64.S -static -o build/ctx_selftest_aarch64
	qemu-aarch64 build/ctx_selftest_aarch64

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cc')

check-format:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h' '*.cc')

clean:
	rm -rf build
