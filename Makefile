# telgw — see README.md. `make run` runs the gateway; `make test` runs every test.
GO        ?= go
PKGS      ?= ./...
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)

.PHONY: build run test test-race lint bench fuzz peers ci

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/telgw ./cmd/telgw

run:
	$(GO) run ./cmd/telgw serve

# Every test: unit, conformance (SQLite + PostgreSQL), end-to-end against real peers, with -race.
test: peers
	$(GO) vet $(PKGS)
	$(GO) test -race -timeout 45m $(PKGS)

test-race: test

lint:
	$(GO) vet $(PKGS)
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) run $(STATICCHECK) $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 5 ./internal/api/ ./test/e2e/

# Short runs of every native fuzz target (FUZZTIME per target).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# JS test peers (official ACS SDKs, smpp, JsSIP) used by the end-to-end tests.
peers:
	@if command -v npm >/dev/null; then cd test/peers && npm ci --no-audit --no-fund --loglevel=error; fi

# What CI runs (.ci/run installs system peers first).
ci: lint test
