# The Kubernetes operator. Build from the repository root:
#   docker build -f docker/zooid-operator.Dockerfile -t zooid-operator .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p zooid-operator --bin zooid-operator

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/zooid-operator /usr/local/bin/zooid-operator
USER 10001
EXPOSE 8080
ENTRYPOINT ["zooid-operator"]
