# moontick: one binary, its example strategies, and nothing else.
#
# Build:  docker build --network host -t moontick .
# Run:    docker run --rm -p 8080:8080 -e WEBHOOK_SECRET=... -v moontick-state:/app/state moontick
# (With no ProjectX credentials the container trades against its built-in simulator.)
# The entrypoint starts as root only to take ownership of the state volume (volumes mount
# root-owned on Docker and Railway), then drops to the unprivileged user `moontick` for good.
# scripts/docker-probe.sh builds this image and checks that it answers /healthz and /readyz.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer, against placeholder sources: editing src/ then
# rebuilds only moontick itself. The manifest names its benches, so cargo wants those files to
# exist: placeholders again (the benches are never built here).
COPY Cargo.toml Cargo.lock ./
RUN mkdir src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for b in $(sed -n '/^\[\[bench\]\]/,/^name/s/^name = "\(.*\)"/\1/p' Cargo.toml); do \
         echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo build --release --locked --bin moontick \
    && rm -rf src
COPY src ./src
# The placeholder build left newer artefacts than the real sources' mtimes; touch forces a rebuild.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin moontick

FROM debian:bookworm-slim
# ca-certificates: TLS to the ProjectX gateway; curl: the HEALTHCHECK below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin moontick \
    && mkdir -p /app/state /app/data && chown moontick:moontick /app/state /app/data
WORKDIR /app
COPY --from=build /src/target/release/moontick /usr/local/bin/moontick
COPY scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint
# Strategies stay owned by root: the engine reads them, nothing in the container rewrites them.
COPY strategies ./strategies
# BIND_ADDR: a container is reached through its network interface, never its loopback.
# WEBHOOK_SECRET must be supplied at run time (the server refuses to listen on 0.0.0.0 without).
ENV STRATEGIES_DIR=/app/strategies \
    STATE_DIR=/app/state \
    RECORD_DIR=/app/data \
    PORT=8080 \
    BIND_ADDR=0.0.0.0 \
    LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/healthz" >/dev/null || exit 1
ENTRYPOINT ["docker-entrypoint"]
CMD ["run"]
