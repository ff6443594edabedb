# walship: ship a Prometheus write-ahead log to remote_write endpoints.
#
#   make run     the agent on an embedded default: scrapes itself, ships to a loopback receiver (Ctrl-C stops)
#   make test    the default suite: vet, unit + integration tests, -race, a short fuzz pass, every benchmark once
#   make bench   benchmarks, walship beside upstream Prometheus
#   make bench-e2e       whole processes: the walship binary beside upstream's sender (quick mode, a few minutes)
#   make bench-e2e-full  every shape, protocol and queue setting, 3 runs each (see BENCHMARKS.md for its run time)
#   make bench-e2e-agent walship agent beside prometheus --agent, scraping 1M and 100k series (see BENCHMARKS.md)
#   make profile-e2e     one walship replay of 1M series with CPU and heap profiles (bench/work/profile)
#   make reliability     the fault matrix at production sizes, walship beside upstream (RELIABILITY.md; about 60 min)
#   make soak-agent      walship's agent at 1M active series for 30 min with a flapping endpoint (about 40 min)
#   make e2e-receivers   real receivers (Prometheus, VictoriaMetrics) built from the module proxy: ship, read back, compare (CI runs it)
#   make e2e-receivers-thanos  the same against Thanos Receive (not in CI: a cold build takes 6 to 7 min)
#   make fuzz    longer fuzzing (FUZZTIME per target, default 2m)
#   make soak    long-running tests at production sizes (a 1.28 GiB WAL backlog)
#   make lint    gofmt, go vet, staticcheck, the import rules of docs/ARCHITECTURE.md

GO            ?= go
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME      ?= 2m
SHORTFUZZTIME ?= 5s
BENCHTIME     ?= 1s

# Packages with goroutines or data shared between a writer and readers:
# their tests also run under the race detector.
RACE_PKGS     := ./wal/... ./watcher/... ./queue/... ./remote/... ./storage/... ./internal/testkit/...

# Fuzz targets as package:target.
FUZZ_TARGETS  := ./wal:FuzzReader ./wal:FuzzLiveReader ./wal/record:FuzzDecode

.PHONY: all build test unit race fuzz-short fuzz soak bench bench-build bench-build-agent bench-ci bench-e2e bench-e2e-full bench-e2e-agent e2e-receivers e2e-receivers-thanos reliability soak-agent profile-e2e lint run clean

all: build test

# bin/walship leaves Prometheus's service discovery out (tag nosd): its
# sidecar, replay and inspect start in about 20 MiB instead of 70; its
# agent and demo commands run bin/walship-agent, the full build. That one
# is built with Prometheus's dedupelabels tag: the label sets the scrapes
# and the agent's series table hold are numbers into a symbol table per
# scrape job instead of their strings (see BENCHMARKS.md, "The agents").
AGENT_TAGS    := dedupelabels

build:
	$(GO) build ./...
	$(GO) build -tags nosd -o bin/walship ./cmd/walship
	$(GO) build -tags $(AGENT_TAGS) -o bin/walship-agent ./cmd/walship

test: unit race fuzz-short bench-ci

# The packages the agent runs with labels of its own are tested again
# under its build tag (cmd/walship's tests build walship-agent with it).
unit:
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -tags $(AGENT_TAGS) ./storage/... ./watcher/...

race:
	$(GO) test -count=1 -race $(RACE_PKGS)

# Each fuzz target briefly, starting from its checked-in corpus.
fuzz-short:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(SHORTFUZZTIME))"; \
		$(GO) test $$pkg -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(SHORTFUZZTIME); \
	done

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test $$pkg -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME); \
	done

# The watcher's memory with a backlog of ten 128 MiB segments (writes 1.28 GiB to a temp dir).
soak:
	WALSHIP_SOAK_SEGMENT_MB=128 $(GO) test -count=1 -run TestMemoryConstantWithBacklog -v -timeout 30m ./watcher

# Every benchmark, each beside upstream's equivalent (see BENCHMARKS.md).
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./wal/... ./queue/...
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=10x ./watcher/...
	$(GO) test -run='^$$' -bench='QueueSend|ShipWAL' -benchtime=4x -count=3 ./remote/...
	$(GO) test -run='^$$' -bench=MemoryPerSeries -benchtime=1x ./remote/...

# The whole-process benchmark lives in a Go module of its own (bench/), so
# that the library never depends on what drives upstream's sender.
bench-build: build
	cd bench && $(GO) build -o ../bin/ ./cmd/...

# CI runs every benchmark once and the whole-process benchmark in its
# smallest mode, so that none of them rots (their figures mean nothing);
# the agent's path runs without its baseline (prometheus --agent is built
# only by bench-build-agent).
bench-ci: bench-build
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./...
	rm -rf bench/work/results/ci bench/work/results/ci-agent
	bin/e2e run --mode=ci --out=bench/work/results/ci
	bin/e2e run --mode=agent --shapes=2000x3 --protocols=rw1 --senders=agent --iterations=1 --scrape-interval=1s --timeout=2m --out=bench/work/results/ci-agent

bench-e2e: bench-build
	bin/e2e run --mode=quick $(E2EFLAGS)

bench-e2e-full: bench-build
	bin/e2e run --mode=full $(E2EFLAGS)

# Upstream's own prometheus binary (v0.316.0, from the bench module), the
# agents' baseline; not part of bench-build, which CI runs.
bench-build-agent:
	cd bench && $(GO) build -o ../bin/prometheus github.com/prometheus/prometheus/cmd/prometheus

# Real receivers: Prometheus 3.16 with its remote-write receiver, and
# VictoriaMetrics v1.151.0 built from the module proxy (kept in
# bench/work/receivers); walship replay ships a WAL to each over RW1 and
# RW2, and every sample is read back through the receiver's own API
# (Thanos Receive is reported skipped: see e2e-receivers-thanos).
e2e-receivers: build bench-build bench-build-agent
	bin/e2e receivers

# Thanos Receive v0.42.5 (with a Thanos Query to read back through), built
# with Go 1.27.3 (GOTOOLCHAIN, for that build alone) in a module of its own
# under bench/work/receivers; left out of e2e-receivers, so out of CI: a
# cold build takes 6 to 7 min here.
e2e-receivers-thanos: build bench-build
	bin/e2e receivers --receivers=thanos-receive

# The fault matrix (bench/reliability): SIGKILLs (also while the agents
# truncate, inside checkpoints and at segment deletions), an outage (with
# a kill inside, with the agent's disk budget, with the server truncating
# under a sidecar), a flapping endpoint, reloads, damaged segments and
# checkpoints, a full disk (a tmpfs: needs root), a failing file system
# (EIO, read-only: a FUSE passthrough, needs root and /dev/fuse), under 10k series
# a second, for walship's sidecar and agent beside upstream's sender and
# prometheus --agent; every sample the WAL holds is accounted for. Then
# hostile segments of 256 MiB (random, zeros, a record that never ends)
# read by walship inspect and replay. Their short forms run in make test
# (bench-ci).
reliability: build bench-build bench-build-agent
	bin/e2e reliability $(RELIABILITYFLAGS)
	bin/e2e hostile

# The soak: walship's agent scraping 1M active series (1,000 targets of
# 1,000, every minute) for 30 minutes while the endpoint flaps; every
# sample accounted for, the agent's RSS reported each minute (about 40 min).
soak-agent: build bench-build
	bin/e2e reliability --scenarios=flap --senders=agent --series=1000000 --interval=1m --flap=30m --settle=1m --quiet=30s \
		--work=bench/work/soak --out=bench/work/soak/results.jsonl $(RELIABILITYFLAGS)

bench-e2e-agent: bench-build bench-build-agent
	bin/e2e run --mode=agent $(E2EFLAGS)

profile-e2e: bench-build
	bin/e2e profile $(E2EFLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags nosd ./cmd/...
	$(GO) run ./internal/cmd/importcheck -go $(GO)
	$(GO) run $(STATICCHECK) ./...

run: build
	exec bin/walship demo

clean:
	rm -rf bin
