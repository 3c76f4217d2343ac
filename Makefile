# agentos-authz — build, run and test.
# `make run` serves with a built-in development key; `make test` installs what the
# tests need (nginx, via apt-get when missing) and runs every check CI runs.

GO        ?= go
BIN       := bin/agentos-authz
PKGS      := ./...
FUZZTIME  ?= 30s
BENCHTIME ?= 1s

.PHONY: all build run test test-deps fmt-check vet unit policy-test bench fuzz lint clean \
	proto proto-lint proto-breaking proto-check

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/agentos-authz

run: build
	$(BIN) serve --dev

# test: formatting, vet, then every test (unit, fuzz seeds, conformance vectors
# against the real binary over gRPC, nginx end to end) with the race detector.
test: test-deps fmt-check vet unit policy-test

test-deps:
	@bash .ci/install-test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# The black-box suite in test/ runs in local-directory mode so that its summary
# line ("conformance: N vectors, N passed, N failed") is always printed.
unit:
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v '/test$$')
	cd test && $(GO) test -race -count=1 -timeout 20m

# policy-test: the example policy tests of the default AgentOS table, as a CI
# pipeline runs a user's own (README "Policy tests").
policy-test: build
	$(BIN) test examples/*.policy-test.yaml

# bench: the in-process Go benchmarks, then the side-by-side gRPC comparison of the
# real service against a no-op ext_authz server (pinned with taskset when present).
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./scopes/ ./authz/ ./envoy/
	$(GO) build -trimpath -o bin/authz-bench ./cmd/authz-bench
	bin/authz-bench compare --bin $(BIN) --duration 10s

# fuzz: every fuzz target for FUZZTIME each (go test -fuzz takes one target at a
# time). Crashers land in the package's testdata/fuzz/ and become regression seeds.
FUZZ_TARGETS := \
	./scopes/:FuzzParseScope ./scopes/:FuzzGlob \
	./authz/:FuzzNormalizePath ./authz/:FuzzCredentials ./authz/:FuzzVerify \
	./authz/:FuzzClaimsScan ./authz/:FuzzDecide ./authz/:FuzzVerifySignature \
	./authz/:FuzzCompactShape ./authz/:FuzzNumericDate \
	./envoy/:FuzzFromCheckRequest ./envoy/:FuzzToCheckResponse ./envoy/:FuzzDetailBody

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

lint: fmt-check vet proto-lint proto-breaking proto-check

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
