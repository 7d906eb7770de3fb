# syntax=docker/dockerfile:1
# rollout-runner as a small static image: one statically linked binary (musl), CA certificates,
# and a static busybox `sh` for scripts (the GitHub Action's entrypoint script, `sh -c`).
# Nothing else. Multi-platform: `docker buildx build --platform linux/amd64,linux/arm64 .`
# builds each architecture natively in its own build stage (TARGETARCH picks the Rust target).
#
# `tests/actions/build-static` runs the build stage's command without Docker (same targets,
# same flags) and checks the binary is static; keep the two in step. The final stage's
# ENTRYPOINT, CMD, USER, WORKDIR and ENV are read by `tests/cluster/image-config` (the test
# cluster runs the binary as a process pod with this config; a Go test checks the parse).

FROM rust:1-bookworm AS build
ARG TARGETARCH
RUN case "${TARGETARCH:-amd64}" in \
      amd64) target=x86_64-unknown-linux-musl ;; \
      arm64) target=aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH=$TARGETARCH (amd64 or arm64)" >&2; exit 1 ;; \
    esac \
 && echo "$target" > /rust-target \
 && apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$target"
WORKDIR /src
COPY . .
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CC_aarch64_unknown_linux_musl=musl-gcc \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=+crt-static"
RUN target=$(cat /rust-target) \
 && cargo build --release --locked --target "$target" --bin rollout-runner \
 && cp "target/$target/release/rollout-runner" /rollout-runner

FROM busybox:1.36-musl AS shell

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=shell /bin/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-m", "1777", "/tmp"]
COPY --from=build /rollout-runner /usr/local/bin/rollout-runner
COPY actions/github/entrypoint.sh /entrypoint.sh
ENV PATH=/usr/local/bin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# A numeric non-root user (the "nonroot" uid of distroless images), so clusters enforcing
# `runAsNonRoot: true` (restricted Pod Security) can verify it without a passwd file.
# GitHub runs Docker container actions as the image user, which could not write the mounted
# workspace and $GITHUB_OUTPUT as 65532; the Action is a composite action that runs the
# binary on the runner instead, so this image no longer serves it as root. /entrypoint.sh
# (busybox sh) still works for anyone who runs the image with the INPUT_* variables.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rollout-runner"]
