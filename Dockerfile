# Builds the PBX and runs it on the demo config. The database and TLS certificate are created
# in /srv/pbx/config/{data,tls} on first start; mount a volume there to keep them.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p pbx

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/pbx /usr/local/bin/pbx
COPY config /srv/pbx/config
WORKDIR /srv/pbx
EXPOSE 5060/udp 5060/tcp 5061/tcp 8080/tcp
ENTRYPOINT ["pbx"]
CMD ["serve", "--config", "/srv/pbx/config/pbx.toml"]
