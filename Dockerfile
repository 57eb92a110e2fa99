# syntax=docker/dockerfile:1
# One image for every Railway service; only the start command differs
# (app serve | app worker | app scheduler | app realtime, with app migrate before deploy).

# --- build ----------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src

# Dependencies first, in a layer that is reused until Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src migrations \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked --bin app \
 && rm -rf src target/release/.fingerprint/switchyard-* target/release/deps/*switchyard* \
           target/release/app target/release/build/switchyard-*

# Then the application itself. No database is needed to compile: queries are checked at
# run time and migrations are embedded as files.
COPY src src
COPY migrations migrations
COPY config config
RUN cargo build --release --locked --bin app \
 && install -m 0755 target/release/app /usr/local/bin/app

# --- runtime --------------------------------------------------------------------------
FROM debian:bookworm-slim
# apt's lists, package caches and logs are removed in the same layer, so none ships.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old \
           /var/log/apt /var/log/dpkg.log \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /app/data \
 && chown app:app /app/data
WORKDIR /app
COPY --from=build /usr/local/bin/app /usr/local/bin/app
COPY config /app/config
USER app
# Railway injects PORT; this default also lets worker and scheduler serve their health
# endpoints when the image runs elsewhere.
ENV PORT=8080 LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["app", "healthcheck"]
# No ENTRYPOINT, so Railway's start command replaces this one.
CMD ["app", "serve"]
