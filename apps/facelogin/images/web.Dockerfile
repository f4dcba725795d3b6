# syntax=docker/dockerfile:1.7
#
# facelogin web front end: `facelogin web` on :8080, forwarding /api/ to the
# api Service. The same binary as the api image (one cmd/facelogin), so it
# links dlib too and is built ON THE TARGET ARCHITECTURE for the same reason
# (-march=native, see docs/images.md); it carries no models.
#
#   docker buildx build -f apps/facelogin/images/web.Dockerfile \
#     --platform linux/amd64 -t ghcr.io/edgeline/facelogin-web:0.1.0 .
#
# Health: no HEALTHCHECK here; Kubernetes ignores it. The chart probes
# /healthz (startup, liveness) and /readyz (readiness: api reachable) on 8080.

ARG GO_IMAGE=docker.io/library/golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:12.12-slim

FROM ${GO_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      g++ pkg-config libdlib-dev libopenblas-dev liblapack-dev libatlas-base-dev libjpeg62-turbo-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -o /out/facelogin ./cmd/facelogin

FROM ${RUNTIME_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libdlib19.1 libopenblas0-pthread libjpeg62-turbo \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/facelogin /usr/local/bin/facelogin
USER 65532:65532
ENV FACELOGIN_ADDR=:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/facelogin"]
CMD ["web"]
