# billingd image: built from source on Debian bookworm with Debian's own packages
# (the same as scripts/install-deps.sh, minus test-only tools), run as a non-root
# user on bookworm-slim with only the shared libraries billingd links.
# tests/deploy/dockerfile.test.mjs (CTest deploy.dockerfile) keeps these package
# lists in step with install-deps.sh and the binary's ldd.

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libcaf-dev prometheus-cpp-dev \
      libprotobuf-dev protobuf-compiler \
      librocksdb-dev \
      libboost1.81-dev \
      libfmt-dev libcli11-dev \
      libpq-dev libjemalloc-dev \
      doctest-dev \
      zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Every directory the top-level CMakeLists.txt adds must be here for cmake to
# configure; only billingd is built.
COPY CMakeLists.txt ./
COPY protocol protocol
COPY model model
COPY observability observability
COPY security security
COPY storage storage
COPY actors actors
COPY gateway gateway
COPY cluster cluster
COPY app app
COPY client client
COPY ctl ctl
COPY tests tests
COPY bench bench
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build build --target billingd billingctl \
 && strip --strip-debug build/billingd build/billingctl

# The dashboard billingd serves at /ui/: built by ui/build.mjs with the npm
# packages pinned in ui/package-lock.json (buf, protoc-gen-es, tsc, esbuild).
FROM debian:bookworm AS ui
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY protocol protocol
COPY ui ui
RUN cd ui && npm ci --no-audit --no-fund --loglevel=error && node build.mjs --out=/src/build/ui

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libcaf-core0.17 libcaf-io0.17 libcaf-openssl0.17 \
      libprotobuf32 libfmt9 libprometheus-cpp-core1.0 libssl3 \
      libsnappy1v5 liblz4-1 libzstd1 libbz2-1.0 zlib1g libjemalloc2 \
      libstdc++6 libgcc-s1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 billing \
 && useradd --system --uid 10001 --gid billing --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin billing \
 && install -d -o billing -g billing -m 0750 /data
COPY --from=build /src/build/billingd /usr/local/bin/billingd
# The support CLI, for `kubectl exec ... billingctl`.
COPY --from=build /src/build/billingctl /usr/local/bin/billingctl
# --ui-dir's default: ui next to the binary.
COPY --from=ui /src/build/ui /usr/local/bin/ui
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# 8080: Connect, /healthz, /readyz, /metrics. 4100: node-to-node (CAF middleman).
EXPOSE 8080 4100
ENTRYPOINT ["/usr/local/bin/billingd"]
# Without a config file: every interface, the /data volume. Authentication must
# be given (--auth-tokens-file, or --insecure-no-auth for a local try).
CMD ["--listen=0.0.0.0:8080", "--data-dir=/data"]
