# Tether: one image for every role (router, edge, exporter, agent, CLI).
#   docker build -t tether .
#   docker run --rm -p 50051:50051 tether                 # single process
#   docker run --rm tether tether-router                    # router role
# See docs/deploy.md and docker-compose.yml.

FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        cmake make gcc g++ pkg-config \
        libzmq3-dev libczmq-dev libgrpc-dev libprotobuf-c-dev \
        protobuf-c-compiler protobuf-compiler libcmocka-dev \
        libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" \
 && mkdir -p /out \
 && find /build -maxdepth 3 -type f -perm -u+x -name 'tether*' \
        ! -name '*.so*' -exec cp {} /out/ \;

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libzmq5 libczmq4 libgrpc29 libprotobuf-c1 libmicrohttpd12 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin tether
COPY --from=build /out/ /usr/local/bin/
COPY config/ /etc/tether/
USER tether
EXPOSE 50051 7100 7101 9464
# The edge role's probe; other roles override it in docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["tether", "health", "--edge", "127.0.0.1:50051"]
CMD ["tether-edge", "--listen", "0.0.0.0:50051"]
