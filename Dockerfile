# The rebalancer container image: `rebalancer run` (the long-running loop
# that serves /metrics, /healthz and /readyz) on a distroless runtime.
#
# Build (from the repository root; the tag is the crate version):
#   docker build --pull -t registry.example.com/rebalancer:0.1.0 .
#
# Stage 1 builds the release binary from the committed Cargo.lock; stage 2
# holds only that binary, glibc/libgcc and the CA certificates (distroless
# `cc`: no shell, no package manager), and runs as the numeric non-root
# user 10001 that the Kubernetes manifests (deploy/kubernetes) also name.
#
# Base images are pinned by tag, not digest: the machine this file was
# written on cannot reach a registry to resolve one. Pin digests in your
# own build (`docker buildx imagetools inspect IMAGE:TAG`, then
# `FROM IMAGE:TAG@sha256:...`). The builder is Debian 12 (bookworm) like
# the runtime, so the binary needs no newer glibc than the runtime has.

FROM docker.io/library/rust:1.95-slim-bookworm AS builder
WORKDIR /src
# The whole workspace (see .dockerignore for what stays out): Cargo.lock
# pins every dependency (--locked refuses to change it), and
# config/default.toml is compiled into the binary.
COPY . .
# .git stays out of the context: `rebalancer --version` shows the commit
# given here (docker build --build-arg REBALANCER_BUILD_COMMIT=$(git
# rev-parse --short HEAD)), else "unknown".
ARG REBALANCER_BUILD_COMMIT=unknown
ENV REBALANCER_BUILD_COMMIT=${REBALANCER_BUILD_COMMIT}
# The registry and target caches speed up rebuilds (BuildKit); the binary
# is copied out of the cache mount in the same step, its debug sections
# (line tables only, for backtraces) compressed: 98 MB -> 40 MB.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin rebalancer \
    && mkdir -p /out \
    && objcopy --compress-debug-sections=zlib target/release/rebalancer /out/rebalancer

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="rebalancer" \
      org.opencontainers.image.description="Keeps a contact center's agent workload balanced across dialer CMS, Zoho CRM thresholds and Webex Campaign." \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=builder /out/rebalancer /usr/local/bin/rebalancer
# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
# run.metrics_addr in the shipped configs: /metrics, /healthz, /readyz;
# 8080: `rebalancer console --addr 0.0.0.0:8080` (overlays/console).
EXPOSE 9464 8080
ENTRYPOINT ["/usr/local/bin/rebalancer"]
CMD ["run", "--config", "/etc/rebalancer/config.toml", "--log-format", "json"]
