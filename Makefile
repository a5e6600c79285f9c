#   Tether - a thin front over CMake.
#
#   make run     check dependencies, build, start one gateway on 127.0.0.1:50051
#   make test    check dependencies, build, run every test, then the
#                sanitizer pass (ASan + UBSan) in build-asan/
#   make build   build in build/ (warnings are errors)
#   make bench   build, then run the benchmarks
#   make clean   remove the build directories
#
#   Variables: BUILD_DIR (build), ASAN_DIR (build-asan), JOBS (nproc),
#   LISTEN (where `make run` serves gRPC: 127.0.0.1:50051, plaintext on
#   loopback; LISTEN=0.0.0.0:50051 to serve other hosts), ARGS (extra flags
#   for `make run`, e.g. ARGS="--router tcp://host:7100").

BUILD_DIR ?= build
ASAN_DIR  ?= build-asan
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN    ?= 127.0.0.1:50051
ARGS      ?=

export BUILD_DIR ASAN_DIR JOBS

.PHONY: all deps build run test bench clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@bash scripts/build.sh $(BUILD_DIR) -DTETHER_WERROR=ON

run: build
	exec $(BUILD_DIR)/gateway/tether-edge --listen $(LISTEN) $(ARGS)

test: deps
	@bash scripts/test.sh

bench: build
	@bash scripts/bench.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
