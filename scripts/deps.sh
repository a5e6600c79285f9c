#!/usr/bin/env bash
#   deps.sh - check Tether's build and test dependencies (Debian 12).
#
#   Silent and exit 0 when everything is present.  Otherwise, as root,
#   installs the missing Debian packages with apt-get; as anyone else,
#   prints the exact apt-get command to run and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()

need_pkgconfig () {     # need_pkgconfig MODULE DEBIAN-PACKAGE
    if ! pkg-config --exists "$1" 2>/dev/null; then
        missing+=("$2")
    fi
}

need_program () {       # need_program PROGRAM DEBIAN-PACKAGE
    if ! command -v "$1" >/dev/null 2>&1; then
        missing+=("$2")
    fi
}

need_python_module () { # need_python_module MODULE DEBIAN-PACKAGE
    #   Debian's interpreter on purpose: the end-to-end tests use Debian's
    #   grpcio, a gRPC implementation independent of ours.
    if ! [ -x /usr/bin/python3 ]; then
        missing+=(python3 "$2")
    elif ! /usr/bin/python3 -c "import $1" >/dev/null 2>&1; then
        missing+=("$2")
    fi
}

check () {
    missing=()
    need_program pkg-config pkg-config
    need_program make make
    need_program cmake cmake
    need_program cc gcc
    need_program c++ g++
    need_program protoc-c protobuf-c-compiler
    need_program protoc protobuf-compiler
    need_program grpc_python_plugin protobuf-compiler-grpc
    if command -v pkg-config >/dev/null 2>&1; then
        need_pkgconfig libzmq libzmq3-dev
        need_pkgconfig libczmq libczmq-dev
        need_pkgconfig grpc libgrpc-dev
        need_pkgconfig libprotobuf-c libprotobuf-c-dev
        need_pkgconfig cmocka libcmocka-dev
        need_pkgconfig libcrypto libssl-dev
    else
        missing+=(libzmq3-dev libczmq-dev libgrpc-dev libprotobuf-c-dev
                  libcmocka-dev libssl-dev)
    fi
    #   The metrics exporter serves HTTP with libmicrohttpd.
    need_pkgconfig libmicrohttpd libmicrohttpd-dev
    #   Optional and large, so installed only in CI or when asked with
    #   TETHER_FULL_DEPS=1; the tests that use them skip without them:
    #   promtool (Debian's prometheus) validates the exporter's output,
    #   PyYAML and yamllint read and lint docker-compose.yml, clang with
    #   its libFuzzer runtime runs the bounded fuzz pass of `make test`.
    if [ -n "${CI:-}" ] || [ "${TETHER_FULL_DEPS:-0}" = 1 ]; then
        need_program promtool prometheus
        need_python_module yaml python3-yaml
        need_program yamllint yamllint
        need_program clang-14 clang-14
        if ! [ -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ] \
           && ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a \
                  >/dev/null 2>&1; then
            missing+=(libclang-rt-14-dev)
        fi
    fi
    need_program flock util-linux
    need_program openssl openssl
    need_python_module grpc python3-grpcio
    need_python_module google.protobuf python3-protobuf
    #   De-duplicate, keeping the first occurrence.
    local -A seen=()
    local unique=() p
    for p in ${missing[@]+"${missing[@]}"}; do
        if [ -z "${seen[$p]:-}" ]; then
            seen[$p]=1
            unique+=("$p")
        fi
    done
    missing=(${unique[@]+"${unique[@]}"})
}

check
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

install_cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "tether: missing dependencies: ${missing[*]}" >&2
    echo "tether: install them with:" >&2
    echo "    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive $install_cmd" >&2
    exit 1
fi

echo "tether: installing missing dependencies: ${missing[*]}" >&2
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}"

check
if [ ${#missing[@]} -gt 0 ]; then
    echo "tether: still missing after install: ${missing[*]}" >&2
    exit 1
fi
