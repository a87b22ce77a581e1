# The two commands a person needs: `make demo` and `make test`.
# Everything else here is what those two are made of.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export CGO_ENABLED := 0

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/seesawlb/seesaw/proto/ipc.Version=$(VERSION)
BINARIES := seesaw_watchdog seesaw_engine seesaw_ncc seesaw_ha seesaw_healthcheck seesaw_ecu seesaw_cli
CACHE    := .cache
RECORD   := $(CACHE)/test-results.jsonl

# Each binary's main lives at <process>/cmd/<binary> and still builds alone
# (go build ./engine/cmd/seesaw_engine). make build builds them all as one
# multi-call binary instead and hard-links each name to it: the six daemons
# then share one copy of the code in memory (deploy/cmd/seesaw-multicall).
MULTICALL := seesaw-multicall

.PHONY: all build lab test unit vmtest vet proto proto-check deps demo install deb fuzz fuzz-short bench clean help

all: build

help:
	@echo "make build        the seven binaries in bin/ (one multi-call file, hard-linked)"
	@echo "make test         every test, every layer (installs what it needs)"
	@echo "make demo         the two-node appliance in the kernel lab, a shell on lb1"
	@echo "make vmtest       the kernel-lab tests alone (make test runs them too)"
	@echo "make deb          the Debian package seesaw_<version>_<arch>.deb (apt install ./seesaw_*.deb)"
	@echo "make install      from source, in the package's layout (/usr/lib/seesaw, /etc/seesaw, systemd)"
	@echo "make proto        regenerate protobuf code; make proto-check fails on drift"
	@echo "make fuzz         run every fuzzer for FUZZTIME (default 30s) each"
	@echo "make bench        the speed figures the issues ask for, as bench: lines"

build:
	@mkdir -p bin
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/$(MULTICALL) ./deploy/cmd/seesaw-multicall
	@for b in $(BINARIES); do ln -f bin/$(MULTICALL) bin/$$b; done
	@echo "built: bin/$(MULTICALL), hard-linked as $(addprefix bin/,$(BINARIES))"

# The kernel lab's tool: boots a Debian kernel with IPVS under qemu.
lab:
	@mkdir -p bin
	$(GO) build -trimpath -o bin/seesaw-lab ./deploy/lab/cmd/seesaw-lab

deps:
	@deploy/deps.sh test

vet:
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./... >/dev/null 2>&1 || { echo "vet: code fails to build for darwin; keep Linux syscalls in _linux.go files"; GOOS=darwin $(GO) vet ./...; }
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

proto:
	proto/gen.sh

proto-check:
	proto/check.sh

# Unit and namespace layers on the host (namespace tests need root; as root
# they run here). Tests named TestLab* need the kernel lab and run in vmtest.
unit:
	@mkdir -p $(CACHE) && rm -f $(RECORD)
	$(GO) test -json -count=1 -skip '^TestLab' ./... | $(GO) run ./deploy/testsum -layer unit -record $(RECORD)

# Every test named TestLab... runs inside the lab's guest, one guest per test
# binary; the first run fetches the pinned kernel and installs qemu.
vmtest:
	@mkdir -p $(CACHE)
	GO=$(GO) deploy/lab/vmtest.sh -record $(RECORD)

test: deps build vet proto-check unit vmtest fuzz-short
	@$(GO) run ./deploy/testsum -summary $(RECORD)

demo: build
	deploy/lab/demo.sh

install: build
	deploy/install.sh

# dpkg-deb and the hand-written control files in deploy/debian.
deb: build
	deploy/deb.sh

# Every Fuzz... target of every package, FUZZTIME each (go test -fuzz takes
# one target per run). make test runs them briefly; their corpora are
# committed under testdata/fuzz and also run as plain tests.
FUZZTIME ?= 30s
FUZZMINIMIZETIME ?= 60s
fuzz:
	@mkdir -p $(CACHE)
	@for p in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$p $$f ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME) $$p >$(CACHE)/fuzz.log 2>&1 || { cat $(CACHE)/fuzz.log; exit 1; }; \
	  done; \
	done

# Budgets in executions, not seconds: Go 1.26's fuzz coordinator can fail a
# clean run with "context deadline exceeded" when a -fuzztime deadline races
# a busy worker (go.dev/issue/75804, fixed in Go 1.27); a count has no
# deadline to race.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3000x FUZZMINIMIZETIME=200x

# The speed figures the issues ask for, each against a peer measured in the
# same run, printed as bench: lines (root; a few minutes).
#   HA: failover timings against keepalived on a veth pair.
#   healthcheck: 10,000 TCP and 10,000 HTTP checks a second against HAProxy.
#   NCC: IPVS applies and dumps at 1,000 and 10,000 services against
#        ipvsadm-restore and ipvsadm -Sn, in one kernel-lab boot.
#   appliance: memory (summed PSS) of the whole appliance (GKE seed, 1,000
#        vservers) against keepalived doing the same, in one kernel-lab boot;
#        the pair's failover (outage, stalls, connections kept) against a
#        keepalived+LVS pair, 20 trials per mode and family at 100 ms adverts.
#   failback: time for a returning node's table to catch up with the
#        master's at 10,000 and 100,000 connections, in one kernel-lab boot.
bench: build lab
	@deploy/deps.sh bench
	$(GO) test -run='^$$' -bench='^BenchmarkFailover$$' -benchtime=1x -timeout=20m ./ha | grep -E '^(bench:|ok|FAIL|---)'
	$(GO) run ./healthcheck/cmd/hcbench
	bin/seesaw-lab prepare >&2
	$(GO) test -count=1 -timeout=30m -exec "$(CURDIR)/bin/seesaw-lab exec" -run='^TestLabBenchIPVS$$' -v ./ncc/reconcile -args -ipvs.bench=1000,10000 | grep -E '^(bench:|ok|FAIL|---)'
	$(GO) test -count=1 -timeout=30m -exec "$(CURDIR)/bin/seesaw-lab exec" -run='^TestLabBenchEngine$$' -v ./engine -args -engine.bench | grep -E '^(bench:|ok|FAIL|---)'
	SEESAW_BIN="$(CURDIR)/bin" $(GO) test -count=1 -timeout=30m -exec "$(CURDIR)/bin/seesaw-lab exec" -run='^TestLabBenchMemory$$' -v ./deploy/appliance -args -appliance.bench | grep -E '^(bench:|ok|FAIL|---)'
	SEESAW_BIN="$(CURDIR)/bin" $(GO) test -count=1 -timeout=180m -exec "$(CURDIR)/bin/seesaw-lab exec" -run='^TestLabFailoverMatrix$$' -v ./deploy/appliance -args -appliance.bench | grep -E '^(bench:|ok|FAIL|---)'
	SEESAW_BIN="$(CURDIR)/bin" $(GO) test -count=1 -timeout=40m -exec "$(CURDIR)/bin/seesaw-lab exec --mem 2048 --timeout 40m" -run='^TestLabBenchFailback$$' -v ./deploy/appliance -args -appliance.bench | grep -E '^(bench:|ok|FAIL|---)'
	SEESAW_BIN="$(CURDIR)/bin" $(GO) test -count=1 -timeout=30m -exec "$(CURDIR)/bin/seesaw-lab exec" -run='^TestLabBenchECU$$' -v ./deploy/appliance -args -appliance.bench | grep -E '^(bench:|ok|FAIL|---)'

clean:
	rm -rf bin $(CACHE)/test-results.jsonl
