# qfleet build, test and benchmark targets. `make test` is what CI and the
# README run; the long learning runs have targets of their own.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-builtin-rules

GO            ?= go
PROTOC        ?= protoc
# Pinned code generators: Debian bookworm's protobuf-compiler and this
# protoc-gen-go, which matches the google.golang.org/protobuf runtime in go.mod.
PROTOC_VERSION       := 3.21.12
PROTOC_GEN_GO_VERSION := v1.36.12
GOBIN         ?= $(shell $(GO) env GOPATH)/bin
SEEDS         ?= 1 2 3 4 5
BENCH_COUNT   ?= 5

.PHONY: build test fuzz-short test-race vet bench bench-envs bench-nets bench-actors proto proto-tools proto-check tidy-check solve-cartpole cartpole-20 hold-cartpole solve-acrobot solve-mountaincar solve minatar-breakout minatar-curves minatar-2m test-cluster-full clean faults

build:
	$(GO) build -o qfleet ./cmd/qfleet

## test: unit tests, the short end-to-end learning run, the command smoke
## tests, and a short run of every fuzz target.
test: vet tidy-check
	$(GO) test -count=1 -timeout 12m ./...
	$(MAKE) fuzz-short

## fuzz-short: FUZZTIME of each fuzz target (a peer's or a file's way into a
## decoder); their committed corpora already run as tests in `go test`.
## A longer hunt: make fuzz-short FUZZTIME=10m.
FUZZTIME ?= 4s
FUZZ_TARGETS ?= \
	./cluster:FuzzGuard \
	./messages/wire:FuzzUnpackExperience \
	./messages/wire:FuzzWeightsAssembler \
	./actors:FuzzReadCheckpoint \
	./actors:FuzzReadSnapshot \
	./actors:FuzzSnapshotRestore \
	.:FuzzParseConfig \
	.:FuzzConfigRoundTrip \
	./cluster/sweep:FuzzParseSweepSpec \
	./cluster/sweep:FuzzSweepRecord \
	./internal/dashboard:FuzzHistoryQuery \
	./envs/external:FuzzReadReply
# -fuzzminimizetime bounds the minimisation of a new input (60 s by default).
# Go's fuzzer now and then ends a run that found nothing with "context
# deadline exceeded" (its own -fuzztime deadline, reached while a worker
# is busy): such a target runs once more; any other failure, or a failing
# input written, fails at once.
fuzz-short:
	for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  for try in 1 2; do \
	    rc=0; out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x $$pkg 2>&1) || rc=$$?; \
	    echo "$$out"; \
	    if [ $$rc -eq 0 ]; then break; fi; \
	    if [ $$try -eq 1 ] && echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
	      echo "fuzz-short: $$name: the fuzzer's deadline ended the run, not a finding: once more" >&2; continue; fi; \
	    exit 1; \
	  done; \
	done

test-race:
	$(GO) test -race -count=1 -timeout 20m ./...

vet:
	$(GO) vet ./...

## tidy-check: go.mod and go.sum must not drift from the imports.
tidy-check:
	cp go.mod /tmp/qfleet-go.mod.bak; cp go.sum /tmp/qfleet-go.sum.bak
	$(GO) mod tidy
	if ! diff -q go.mod /tmp/qfleet-go.mod.bak >/dev/null || ! diff -q go.sum /tmp/qfleet-go.sum.bak >/dev/null; then \
	  cp /tmp/qfleet-go.mod.bak go.mod; cp /tmp/qfleet-go.sum.bak go.sum; \
	  echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit" >&2; exit 1; fi

## bench: every micro-benchmark, BENCH_COUNT runs each (feed to benchstat).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./envs/ ./nets/ ./actors/

## proto: regenerate messages/*.pb.go, messages/envpb and the env
## protocol's Python module (python/env_pb2.py) with the pinned generators.
proto: proto-tools
	cd messages && PATH="$(GOBIN):$$PATH" $(PROTOC) --go_out=. --go_opt=paths=source_relative qfleet.proto
	cd messages && PATH="$(GOBIN):$$PATH" $(PROTOC) --go_out=. --go_opt=module=github.com/qfleet/qfleet/messages --python_out=../python env.proto

proto-tools:
	@$(PROTOC) --version 2>/dev/null | grep -q "$(PROTOC_VERSION)" || { \
	  echo "need protoc $(PROTOC_VERSION): apt-get install -y protobuf-compiler=$(PROTOC_VERSION)*" >&2; exit 1; }
	@"$(GOBIN)/protoc-gen-go" --version 2>/dev/null | grep -q "$(PROTOC_GEN_GO_VERSION)" || \
	  GOBIN="$(GOBIN)" $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

## proto-check: the committed generated code matches the .proto.
proto-check: proto
	git diff --exit-code -- messages/ python/env_pb2.py || { echo "the generated code is stale: run 'make proto' and commit" >&2; exit 1; }

## solve-ENV: the 5-seed dev-mode learning benchmarks of BENCHMARKS.md
## (each stops at the env's reward threshold or its step budget).
solve-cartpole: build
	$(MAKE) solve ENV=CartPole-v1 NAME=cartpole STEPS=500000

## cartpole-20: CartPole-v1 in dev mode, 20 seeds, each stopped at the
## first evaluation (20 greedy episodes) whose mean reaches 475, the way
## SB3-zoo reports; then the same 20 seeds stopped by mean100.
SEEDS20 := $(shell seq 1 20)
cartpole-20: build
	rm -rf runs/cartpole-20 && mkdir -p runs/cartpole-20
	for s in $(SEEDS20); do ./qfleet dev --env CartPole-v1 --seed $$s --stop-on eval --live never --run-dir runs/cartpole-20/eval-$$s > /dev/null || exit 1; done
	./qfleet report runs/cartpole-20/eval-*/summary.json
	for s in $(SEEDS20); do ./qfleet dev --env CartPole-v1 --seed $$s --live never --run-dir runs/cartpole-20/mean100-$$s > /dev/null || exit 1; done
	./qfleet report runs/cartpole-20/mean100-*/summary.json

## hold-cartpole: the same 20 seeds trained on to 200k env steps past the
## target (stop_on: none): whether mean100 holds after solving, and a
## 100-episode greedy evaluation of each run's best checkpoint.
hold-cartpole: build
	rm -rf runs/hold-cartpole && mkdir -p runs/hold-cartpole
	for s in $(SEEDS20); do ./qfleet dev --env CartPole-v1 --seed $$s --stop-on none --max-steps 200000 --checkpoint-every 1h --live never --run-dir runs/hold-cartpole/seed-$$s > /dev/null || exit 1; done
	./qfleet report --hold 450 runs/hold-cartpole/seed-*/summary.json
	for s in $(SEEDS20); do ./qfleet eval runs/hold-cartpole/seed-$$s --best --episodes 100 2>/dev/null | sed "s/^/seed $$s: /"; done

solve-acrobot: build
	$(MAKE) solve ENV=Acrobot-v1 NAME=acrobot STEPS=100000

solve-mountaincar: build
	$(MAKE) solve ENV=MountainCar-v0 NAME=mountaincar STEPS=150000

solve:
	mkdir -p runs/solve-$(NAME)
	for s in $(SEEDS); do ./qfleet dev --env $(ENV) --seed $$s --max-steps $(STEPS) --progress 0 --summary runs/solve-$(NAME)/seed-$$s.json; done
	./qfleet report runs/solve-$(NAME)/seed-*.json

## minatar-breakout: one hour of MinAtar Breakout-v1 in dev mode (target mean100 10).
minatar-breakout: build
	mkdir -p runs/minatar
	./qfleet dev --env MinAtar/Breakout-v1 --seed 1 --max-steps 3000000 --progress 30s --summary runs/minatar/breakout-1.json 2>&1 | tee runs/minatar/breakout-1.log

## minatar-curves: 1M frames of each MinAtar game (-v1), one update per 4
## frames (samples_per_insert 8, to fit 5 games in about an hour), then a
## PNG curve per game from the run directories (BENCHMARKS.md).
GAMES ?= Freeway Seaquest Breakout SpaceInvaders Asterix
minatar-curves: build
	mkdir -p runs/minatar
	printf 'samples_per_insert: 8\n' > runs/minatar/spi8.yaml
	for g in $(GAMES); do \
	  ./qfleet dev --env MinAtar/$$g-v1 --seed 1 --max-steps 1000000 --target-return 1e9 --config runs/minatar/spi8.yaml \
	    --progress 60s --run-dir runs/minatar/$$g-1 2>&1 | tee runs/minatar/$$g-1.log; \
	  ./qfleet plot runs/minatar/$$g-1 -o runs/minatar/$$g.png; done

## minatar-2m: the games below the MinAtar paper's DQN score at 1M frames,
## trained to 2M frames at one update of 32 per 4 frames (samples_per_insert
## 8, as minatar-curves; at the paper's one per frame both stalled below 1.5
## for 500k-700k frames, BENCHMARKS.md), past any target (stop_on none), two
## at a time with make -j2 (MAXTIME2M=100m ends each by then); then a PNG
## curve each.
GAMES2M ?= Seaquest Asterix
MAXTIME2M ?= 0
minatar-2m: $(addprefix minatar-2m-,$(GAMES2M))
minatar-2m-%: build
	mkdir -p runs/minatar
	printf 'samples_per_insert: 8\n' > runs/minatar/spi8.yaml
	./qfleet dev --env MinAtar/$*-v1 --seed 1 --max-steps 2000000 --stop-on none --config runs/minatar/spi8.yaml \
	  --max-time $(MAXTIME2M) --live never --progress 60s --run-dir runs/minatar/$*-2m-spi8 > runs/minatar/$*-2m-spi8.log 2>&1
	./qfleet plot runs/minatar/$*-2m-spi8 -o runs/minatar/$*-2m-spi8.png

clean:
	rm -f qfleet
	rm -rf runs

## test-cluster-full: the multi-host runs to CartPole-v1 475 (three network
## namespaces, unlimited and 2 Mbit/s links; root), and five seeds that must
## solve and hold mean100 >= 450 to 200k env steps. The fast ones are in `test`.
test-cluster-full:
	$(GO) test -count=1 -timeout 30m -run 'TestMultiHost' ./cmd/qfleet/cli/ -args -multihost.full

## faults: the fault-injection suite of RELIABILITY.md (real processes in
## network namespaces; root; minutes). The 8 s link cut also runs in `test`.
faults:
	$(GO) test -count=1 -timeout 30m -run 'TestFault' -v ./cmd/qfleet/cli/ -args -faults
