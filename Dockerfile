# syntax=docker/dockerfile:1
#
# eventfold: one static-ish binary (librdkafka, SQLite built in; links glibc, libssl3, zlib).
#
#   docker build -t eventfold:local .
#   docker run --rm eventfold:local --help
#   docker run --rm -p 8090:8090 -e EVENTFOLD__QUERY__LISTEN=0.0.0.0:8090 eventfold:local serve
#
# Listen addresses default to 127.0.0.1 in the binary; the image does not override them with
# ENV (environment variables beat eventfold.toml, so an image ENV would silently win over a
# mounted config file). docker-compose.yml and the Helm chart set them to 0.0.0.0.

ARG RUST_VERSION=1
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------
# Build stage
# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder

# rdkafka-sys builds librdkafka from source (gcc, make, pkg-config, zlib); libssl-dev for
# openssl-sys (native TLS of the registry client, and librdkafka's `ssl` feature when enabled).
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc make pkg-config zlib1g-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# Dependencies first, against a dummy crate: this layer (librdkafka, SQLite, every crate) is
# rebuilt only when Cargo.toml or Cargo.lock change, not on every source edit.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin eventfold \
    && rm -rf src

# The real sources (schemas/ is embedded into the binary with include_str!).
COPY . .
# COPY keeps the files' mtimes, which can be older than the dummy build: touch so cargo rebuilds
# the eventfold crate itself.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin eventfold \
    && strip target/release/eventfold \
    && install -D -m 0755 target/release/eventfold /out/eventfold

# ---------------------------------------------------------------------------------------------
# Runtime stage
# ---------------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim

# ca-certificates: TLS to Kafka / registry / PostgreSQL with public CAs; libssl3: OpenSSL.
# No curl: docker-compose.yml health-checks with bash's /dev/tcp (bash is in the base image).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/*

# Non-root user with a fixed uid/gid (10001) that Kubernetes securityContexts can name.
# /var/lib/eventfold: the writable data folder (SQLite store); a fresh named volume mounted
# there inherits this ownership. /etc/eventfold: where eventfold.toml is mounted.
RUN groupadd --system --gid 10001 eventfold \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/eventfold \
        --no-create-home --shell /usr/sbin/nologin eventfold \
    && mkdir -p /var/lib/eventfold /etc/eventfold \
    && chown 10001:10001 /var/lib/eventfold \
    && chmod 0750 /var/lib/eventfold

COPY --from=builder /out/eventfold /usr/local/bin/eventfold

USER 10001:10001
# The default store path (.data/eventfold.db) and ./eventfold.toml are relative to here.
WORKDIR /var/lib/eventfold

# 8080 collector (collect), 8081 schema registry, 8090 query API/dashboard (serve),
# 9090 Prometheus metrics (/metrics).
EXPOSE 8080 8081 8090 9090

ENTRYPOINT ["eventfold"]
CMD ["--help"]
