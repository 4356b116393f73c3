# The zooid server. Build from the repository root:
#   docker build -f docker/zooid.Dockerfile -t zooid .
# Multi-stage: the release build in Rust's image, the binary alone in a slim runtime that runs
# as a non-root user. /bin/sh stays in the image: the operator's pods write `myid` from the
# pod's ordinal before starting zooid.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p zooid-node -p zooid-ctl

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data --create-home zooid
COPY --from=build /src/target/release/zooid /usr/local/bin/zooid
COPY --from=build /src/target/release/zooctl /usr/local/bin/zooctl
USER 10001
WORKDIR /data
EXPOSE 2181 2281 2888 8080
ENTRYPOINT ["zooid"]
