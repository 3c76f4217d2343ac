# syntax=docker/dockerfile:1
# agentos-authz: a static binary on a distroless, non-root base.
#   docker build -t agentos-authz:0.1.0 .
#   docker run --rm -p 9191:9191 -p 8181:8181 -p 9090:9090 agentos-authz:0.1.0 --dev

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
# docker build --build-arg VERSION=$(git describe --always --dirty) .
ARG VERSION=devel
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" -o /out/agentos-authz ./cmd/agentos-authz

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/agentos-authz /agentos-authz
# 65532 is distroless's "nonroot" user; numeric so that runAsNonRoot can verify it.
USER 65532:65532
# gRPC ext_authz, HTTP ext_authz, admin (/healthz /readyz /metrics).
EXPOSE 9191 8181 9090
ENTRYPOINT ["/agentos-authz", "serve"]
