# Tether: one image for every role; the command picks the role.
#
#   docker build -t tether .
#   docker run --rm --init -p 50051:50051 tether          # one gateway, embedded router
#   docker run --rm --init tether tether-router            # router role
#   docker run --rm --init tether tether-edge --router tcp://router:7100
#   docker run --rm --init tether tether agent --id dev-1 --edge host:50051
#   docker run --rm tether tether health --edge host:50051
#
# docker-compose.yml runs the whole topology; docs/deploy.md explains it.

# ---------------------------------------------------------------------------
# Build stage: compilers and -dev packages, never shipped.
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        cmake make gcc g++ pkg-config \
        libzmq3-dev libczmq-dev libgrpc-dev libprotobuf-c-dev \
        protobuf-c-compiler libcmocka-dev libmicrohttpd-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the shipped programs are built (not the tests).  tether-exporter is
# built when the source tree has it.  libtether.so is shipped because the
# `tether` command line links it.
RUN set -eu; \
    cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DTETHER_WERROR=OFF; \
    targets="tether-router tether-edge tether"; \
    if cmake --build /build --target help | grep -q 'tether-exporter'; then \
        targets="$targets tether-exporter"; \
    fi; \
    cmake --build /build -j"$(nproc)" --target $targets; \
    mkdir -p /out/bin /out/lib; \
    for t in $targets; do \
        find /build -type f -name "$t" -perm -u+x -exec cp {} /out/bin/ \; ; \
        test -x "/out/bin/$t"; \
    done; \
    cp -P /build/client/libtether.so* /out/lib/; \
    strip --strip-unneeded /out/bin/* /out/lib/libtether.so.*.*.*

# ---------------------------------------------------------------------------
# Runtime stage: the runtime libraries, the programs, the default config.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libzmq5 libczmq4 libgrpc29 libprotobuf-c1 libmicrohttpd12 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tether \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin tether
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/lib/ /usr/local/lib/
COPY config/ /etc/tether/
COPY deploy/entrypoint.sh /usr/local/bin/tether-entrypoint
RUN ldconfig \
 && tether --version \
 && tether-edge --help >/dev/null \
 && tether-router --help >/dev/null
USER 10001:10001
# 50051 gRPC (edge), 7100 router <- edges, 7101 router monitor PUB,
# 9464 Prometheus metrics (exporter).
EXPOSE 50051 7100 7101 9464
# The edge's probe (SERVING while the edge hears from its router).  The
# other roles set their own in docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["tether", "health", "--edge", "127.0.0.1:50051", "--timeout", "2s"]
ENTRYPOINT ["/usr/local/bin/tether-entrypoint"]
CMD ["tether-edge"]
