# syntax=docker/dockerfile:1
# telgw container image: a static binary on distroless (CA certificates, tzdata, no shell),
# running as an unprivileged user with its data in the /data volume.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg REVISION=$(git rev-parse HEAD) -t telgw .
#   docker run -d --name telgw -v telgw-data:/data -p 8080:8080 -p 5060:5060/udp -p 5060:5060/tcp \
#     -p 3478:3478/udp -e TELGW_SIP_MEDIA_EXTERNAL_IP=203.0.113.10 telgw
#
# Media (RTP 20000-39999/udp by default, TURN relays) needs those ports too; on Linux
# `--network host` is simplest. `docker exec telgw telgw keys show` prints the connection string.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=
# modernc.org/sqlite is pure Go, so CGO_ENABLED=0 yields a static binary with SQLite.
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/telgw ./cmd/telgw \
 && install -d -m 0700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/telgw /usr/local/bin/telgw
COPY --from=build --chown=65532:65532 /out/data /data
ENV TELGW_DATA_DIR=/data \
    TELGW_HTTP_ADDR=0.0.0.0:8080 \
    TELGW_SIP_ADDR=0.0.0.0:5060 \
    TELGW_TURN_ADDR=0.0.0.0:3478
VOLUME /data
EXPOSE 8080/tcp 5060/udp 5060/tcp 3478/udp
USER 65532:65532
# distroless has no curl: the binary probes its own /healthz (http.addr, or https with tlsCert).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/telgw", "healthcheck", "--timeout", "4s"]
ENTRYPOINT ["/usr/local/bin/telgw"]
CMD ["serve"]
