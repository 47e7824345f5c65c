# syntax=docker/dockerfile:1
# The controller's own image: agentcore-controller on Debian slim, as a non-root user, fit
# for a read-only root filesystem. The context is the repository root:
#   docker buildx build --platform linux/arm64 -t agentcore-controller:0.1.0 .
# (add linux/amd64 to the list for a multi-arch image). deploy/README.md says how to run
# it. This Dockerfile has not been built on the development machine (no Docker daemon
# there); tests/deploy.rs checks its structure and that its COPY lines give cargo the
# whole workspace.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# What `cargo build --locked` needs, and no more (.dockerignore keeps the rest out):
# - the manifest and the lock file;
# - src/ (the controller) and benches/ (Cargo.toml names its benchmarks, and cargo checks
#   that their files exist even when it builds only the binary);
# - testkit/ (a workspace member: cargo loads the whole workspace);
# - mcp-server/ (a path dependency: `agentcore-controller local` serves it in-process).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY testkit ./testkit
COPY mcp-server ./mcp-server
# BuildKit cache mounts keep downloaded crates and compiled dependencies between builds.
# The target directory is a cache mount, so it is not in the image: copy the binary out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin agentcore-controller \
    && cp target/release/agentcore-controller /agentcore-controller

# Debian bookworm (glibc 2.36, like the builder) with CA certificates (the AWS SDK's TLS
# trusts the system roots), and the git CLI with OpenSSH's client for `run --git` (git
# fetches, ssh reaches ssh:// remotes, ssh-keygen verifies signed commits). Nothing else:
# no package lists are left behind.
FROM debian:bookworm-slim
# The user 65532 gets an entry in /etc/passwd (home /nonexistent, no shell): ssh and
# ssh-keygen refuse to run for a uid that has none.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'nonroot:x:65532:' >> /etc/group
COPY --from=build /agentcore-controller /usr/local/bin/agentcore-controller
# A user without a name or a home (distroless's `nonroot` number), numeric so that
# Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# The one writable path the controller needs under a read-only root filesystem (image
# builds unpack there, and a git source keeps its revisions there). Kubernetes mounts an emptyDir here; ECS Fargate copies this
# directory's mode (1777) into the bind-mount volume it mounts here.
VOLUME ["/tmp"]
# /healthz, /readyz, /metrics, /status and POST /reconcile. No HEALTHCHECK: the
# orchestrator probes /healthz and /readyz itself.
EXPOSE 8181
ENTRYPOINT ["/usr/local/bin/agentcore-controller"]
# Listen on all interfaces (the default is loopback only) and log JSON for the log
# collector; the orchestrator mounts the manifests at /manifests.
CMD ["run", "-f", "/manifests", "--listen", "0.0.0.0:8181", "--log-format", "json"]
