# telgw — see README.md. `make run` runs the gateway; `make test` runs every test.
GO        ?= go
PKGS      ?= ./...
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X main.version=$(VERSION) -X main.revision=$(REVISION)
# make release: static binaries for these platforms into dist/, with SHA256SUMS.
PLATFORMS ?= linux/amd64 linux/arm64

.PHONY: build run test test-race test-cluster lint bench fuzz peers ci release

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/telgw ./cmd/telgw

# Static (CGO_ENABLED=0: SQLite is modernc.org/sqlite, pure Go), reproducible (-trimpath),
# stripped binaries named telgw-VERSION-OS-ARCH; `telgw version` prints VERSION and REVISION.
release:
	rm -rf dist && mkdir -p dist
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; out=dist/telgw-$(VERSION)-$$os-$$arch; \
	  echo "build $$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $$out ./cmd/telgw; \
	done
	cd dist && sha256sum telgw-* > SHA256SUMS && cat SHA256SUMS

run:
	$(GO) run ./cmd/telgw serve

# Every test: unit, conformance (SQLite + PostgreSQL), end-to-end against real peers, with -race.
test: peers
	$(GO) vet $(PKGS)
	$(GO) test -race -timeout 45m $(PKGS)

test-race: test

# The cluster job (a few minutes): three nodes on one PostgreSQL behind Kamailio, SIPp load,
# a JsSIP user on another node, a rolling restart and a node killed with -9; SMPP binds per
# cluster under an SMS burst with a node killed and restarted (.ci/run test-cluster).
test-cluster: peers
	$(GO) test -race -count 1 -timeout 10m -run 'TestCluster$$|TestClusterSMS$$' -v ./test/e2e/

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
