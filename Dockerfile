# gcm-worker in a container, built from this workspace:
#   docker build -t gcm-worker .
#   docker run --rm -e GCM_QUEUE_URL=postgres://app:…@db/push -e GCM_API_KEYS="app:send,read:…" \
#     -p 8080:8080 gcm-worker serve --listen 0.0.0.0:8080 --allow-host push.internal
# (Not built by CI: no base image can be pulled there.)
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gcm-queue --features postgres,redis --bin gcm-worker

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/gcm-worker /usr/local/bin/gcm-worker
USER 65532:65532
WORKDIR /var/lib/gcm-worker
ENV GCM_LOG_FORMAT=json
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/gcm-worker"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
