# syntax=docker/dockerfile:1
# Tern's image: the `tern` binary built with the release profile, run as a non-root user on
# a distroless base (glibc, CA certificates, no shell, no package manager).
#
#   docker build -t registry.example.com/tern/tern:0.1.0 .
#
# The chart runs it as `tern serve --roles <role> --no-migrate` and `tern migrate`.
# No secret is baked in: the master key and the service URLs come from the environment.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# Manifests and sources; .dockerignore keeps target/, data/ and .git out of the context.
COPY . .
# --locked: exactly the versions in Cargo.lock. The cache mounts keep crates and objects
# between builds; the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin tern \
    && install -D -m 0755 target/release/tern /out/tern

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/tern /usr/local/bin/tern
# Listen on every interface inside the pod; the chart sets these too.
ENV TERN_HTTP_ADDR=0.0.0.0:8080 \
    TERN_GRPC_ADDR=0.0.0.0:9090 \
    TERN_DATA_DIR=/var/lib/tern \
    TERN_LOG_FORMAT=json
# 65532 is distroless's "nonroot" user.
USER 65532:65532
EXPOSE 8080 9090 9100
ENTRYPOINT ["/usr/local/bin/tern"]
CMD ["serve"]
