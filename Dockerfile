# syntax=docker/dockerfile:1
# rollout-runner as a small static image: one statically linked binary (musl), CA certificates,
# and a static busybox `sh` for the GitHub Action's entrypoint script. Nothing else.
#
# `tests/actions/build-static` runs the build stage's command without Docker (same target, same
# flags) and checks the binary is static; keep the two in step.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=+crt-static"
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin rollout-runner \
 && cp target/x86_64-unknown-linux-musl/release/rollout-runner /rollout-runner

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
# No USER: GitHub runs Docker actions as the image's default user (root), which the mounted
# workspace and $GITHUB_OUTPUT files need.
ENTRYPOINT ["/usr/local/bin/rollout-runner"]
