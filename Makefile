# agentos-authz — build, run and test.
# `make run` serves with a built-in development key; `make test` installs what the
# tests need (nginx, via apt-get when missing) and runs every check CI runs.

GO        ?= go
BIN       := bin/agentos-authz
PKGS      := ./...
# DEPLOY is the nested test module of the deploy-file validators (its own
# go.mod keeps Istio and Kubernetes out of the service's): vet and unit run it too.
DEPLOY    := envoy/deploy
FUZZTIME  ?= 30s
# FUZZSHORT: the budget of each fuzz target in `make test` (fuzz-short), on top of
# the seed corpora every `go test` runs; `make fuzz` is the long run (FUZZTIME).
FUZZSHORT ?= 3s
BENCHTIME ?= 1s
# SOAK_DURATION, SOAK_RATE: the length and the checks per second of `make soak`.
SOAK_DURATION ?= 10m
SOAK_RATE     ?= 500
# VERSION is linked into the binary (agentos-authz version, agentos_authz_build_info):
# git describe in a checkout, else "devel" (a source tarball has no tags to describe).
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X main.version=$(VERSION)

.PHONY: golangci-lint all build run test test-deps fmt-check vet unit policy-test bench soak fuzz fuzz-short fuzz-run lint clean \
	proto proto-lint proto-breaking proto-check

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/agentos-authz

run: build
	$(BIN) serve --dev

# test: formatting, vet, then every test (unit, fuzz seeds, conformance vectors
# against the real binary over gRPC, nginx end to end) with the race detector,
# then every fuzz target for FUZZSHORT, so new code is fuzzed on every run.
test: test-deps lint unit policy-test fuzz-short

test-deps:
	@bash .ci/install-test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)
	cd $(DEPLOY) && $(GO) vet ./...

# The black-box suite in test/ runs in local-directory mode so that its summary
# line ("conformance: N vectors, N passed, N failed") is always printed.
unit:
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v '/test$$')
	cd $(DEPLOY) && $(GO) test -race -count=1 -timeout 20m ./...
	cd test && $(GO) test -race -count=1 -timeout 20m

# policy-test: the example policy tests of the default AgentOS table, as a CI
# pipeline runs a user's own (README "Policy tests").
policy-test: build
	$(BIN) test examples/*.policy-test.yaml

# bench: the in-process Go benchmarks, then the side-by-side gRPC comparison of the
# real service against a no-op ext_authz server (pinned with taskset when present).
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./scopes/ ./authz/... ./envoy/
	$(GO) build -trimpath -o bin/authz-bench ./cmd/authz-bench
	bin/authz-bench compare --bin $(BIN) --duration 10s

# soak: not part of `make test`. The real binary at SOAK_RATE checks a second
# (open loop) for SOAK_DURATION with pooled tokens (and replayed invalid ones),
# 20% fresh tokens and 1% garbage requests; prints the service's RSS and
# goroutines every 10 s and fails on any transport error, wrong answer, or RSS
# or goroutines growing from the first third of the run to the last.
soak: build
	$(GO) build -trimpath -o bin/authz-bench ./cmd/authz-bench
	bin/authz-bench soak --bin $(BIN) --duration $(SOAK_DURATION) --rate $(SOAK_RATE)

# fuzz: every fuzz target for FUZZTIME each (go test -fuzz takes one target at a
# time). Crashers land in the package's testdata/fuzz/ and become regression seeds.
FUZZ_TARGETS := \
	./scopes/:FuzzParseScope ./scopes/:FuzzGlob \
	./authz/:FuzzNormalizePath ./authz/:FuzzCredentials ./authz/:FuzzLoad ./authz/:FuzzServiceAccountToken ./authz/internal/jwtauth/:FuzzVerify \
	./authz/internal/jwtauth/:FuzzClaimsScan ./authz/:FuzzDecide ./authz/internal/jwtauth/:FuzzVerifySignature \
	./authz/internal/jwtauth/:FuzzCompactShape ./authz/internal/jwtauth/:FuzzNumericDate \
	./authz/internal/jwtauth/:FuzzClaimChecks \
	./envoy/:FuzzFromCheckRequest ./envoy/:FuzzToCheckResponse ./envoy/:FuzzDetailBody \
	./envoy/:FuzzHTTPCheck

fuzz:
	@$(MAKE) --no-print-directory fuzz-run FUZZRUN=$(FUZZTIME)

fuzz-short:
	@$(MAKE) --no-print-directory fuzz-run FUZZRUN=$(FUZZSHORT)

# fuzz-run: every target of FUZZ_TARGETS for FUZZRUN; a target missing from its
# package fails the run (go test -fuzz matching nothing would pass silently).
fuzz-run:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		$(GO) test -list "^$$fn\$$" $$pkg | grep -qx "$$fn" || { echo "fuzz target $$fn not found in $$pkg" >&2; exit 1; }; \
		echo "fuzz $$pkg $$fn ($(FUZZRUN))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZRUN) $$pkg; \
	done

lint: fmt-check vet golangci-lint proto-lint proto-breaking proto-check

# golangci-lint v2, pinned in its own tools module (tools/golangci-lint/go.mod),
# with the checked-in .golangci.yml, over the service's module and the nested
# deploy-test module. The first run compiles it, which takes minutes.
GOLANGCI := $(GO) tool -modfile=$(CURDIR)/tools/golangci-lint/go.mod golangci-lint
golangci-lint:
	$(GOLANGCI) run ./...
	cd $(DEPLOY) && $(GOLANGCI) run --config $(CURDIR)/.golangci.yml ./...

# The policy API (proto/agentos/...): buf and the protoc plugins are pinned in
# tools/go.mod (a module of its own, so the service's go.mod lists only what
# the service and its tests use) and run through `go tool`. The first run
# compiles buf, which takes minutes.
BUF := $(GO) tool -modfile=tools/go.mod buf

# proto: regenerate the committed Go code.
proto:
	$(BUF) generate

proto-lint:
	$(BUF) lint

# proto-breaking: no breaking change against the last commit that has the
# API (HEAD, or before the first one, nothing to compare with).
proto-breaking:
	@if git cat-file -e HEAD:proto/agentos/authz/v1/authz.proto 2>/dev/null; then \
		echo "$(BUF) breaking --against <git HEAD>"; \
		$(BUF) breaking --against "$$(git rev-parse --git-common-dir)#ref=$$(git rev-parse HEAD)"; \
	else echo "proto-breaking: HEAD has no proto/agentos/authz/v1/authz.proto yet; nothing to compare"; fi

# proto-check: the committed Go code is what `make proto` generates now
# (fails when a .proto changed without regenerating).
proto-check:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BUF) generate -o "$$tmp" || exit 1; \
	stale=0; for f in $$(cd "$$tmp" && find . -name '*.go' | sort); do \
		if ! cmp -s "$$tmp/$$f" "$$f"; then echo "stale generated code: $$f (run make proto)"; stale=1; fi; \
	done; \
	for f in $$(git ls-files 'proto/*.pb.go'); do \
		[ -f "$$tmp/$$f" ] || { echo "generated file without a .proto: $$f"; stale=1; }; \
	done; \
	exit $$stale

clean:
	rm -rf bin
