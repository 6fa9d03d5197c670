# Build
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/doorman

# Run: a small image, a non-root user, data in /data
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --create-home doorman
COPY --from=build /src/target/release/doorman /usr/local/bin/doorman
USER doorman
WORKDIR /data
ENV DOORMAN_SERVER__LISTEN=0.0.0.0:8080 \
    DOORMAN_STORAGE__PATH=/data/doorman.sqlite3
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/doorman"]
CMD ["serve"]
