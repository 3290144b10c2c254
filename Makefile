# Postern's build. `make run` and `make test` are the two set-up commands of the README; `make check`
# reproduces CI's static checks; `make bench` prints the benchmark table.

GO          ?= go
BIN         := bin/postern
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Packages with concurrency run under the race detector.
RACE_PKGS   := ./directory/... ./cluster/... ./edge/... ./wasm/... ./flows/...

.PHONY: build run test test-short check fmt bench clean wasm-examples

build:
	$(GO) build -o $(BIN) ./cmd/postern

run: build
	./$(BIN) dev

test:
	$(GO) vet ./...
	$(GO) test -race -timeout 20m $(RACE_PKGS)
	$(GO) test -timeout 20m ./cmd/... ./bench/...
# Allocation counts mean nothing under -race: those tests run once more without it.
	$(GO) test -run 'CostsNothing' ./wasm/ ./edge/proxy/

# The quick tier: skips the tests that start real postern processes.
test-short:
	$(GO) test -short ./...

check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cp go.mod /tmp/postern-go.mod.bak; cp go.sum /tmp/postern-go.sum.bak; $(GO) mod tidy; \
	  if ! git diff --quiet -- go.mod go.sum; then cp /tmp/postern-go.mod.bak go.mod; cp /tmp/postern-go.sum.bak go.sum; \
	  echo "go mod tidy changes go.mod/go.sum: run it and commit"; exit 1; fi
	$(MAKE) test

bench:
	$(GO) run ./bench/cmd/postern-bench

# The example extensions as WASI reactor modules, into bin/wasm/ (the wasm tests build their own).
wasm-examples:
	mkdir -p bin/wasm
	for e in echo claims blocklist loyalty otp; do \
	  GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o bin/wasm/$$e.wasm ./wasm/examples/$$e || exit 1; done

clean:
	rm -rf bin postern-data
