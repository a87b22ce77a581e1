// Package appliance runs the whole Seesaw appliance in the kernel lab and
// proves, with the real kernel's IPVS, what an operator would notice: a
// client reaching a VIP, a backend leaving and rejoining on its health
// checks, overrides taking a VIP or a backend away, established
// connections surviving a daemon's crash, a real-world cluster.pb (the GKE
// on-prem seed) balanced as written, the appliance's resident memory
// beside keepalived's, and the pair's failovers beside a keepalived+LVS
// pair's (TestLabFailoverMatrix: a node dying in each forwarding mode and
// family; TestLabFailoverEvents: graceful failover, failback, a node's
// return, a partition), measured with a client's load (StartLoad).
//
// Its harness (Start, Appliance, Serve, Ask, Hold, Wait, IPVS) starts the
// real seesaw_watchdog, which runs the real five daemons from a
// watchdog.cfg written for the run, in the LB namespace of a labtest
// topology, with backends served in-process in their namespaces. The
// binaries come from SEESAW_BIN: the lab's guest runs in software
// emulation, far too slow to compile them, so deploy/lab/vmtest.sh (and
// make bench) build them on the host and name their directory.
//
// The tests are lab tests (TestLab..., labtest.RequireLab): they run inside
// the guest through `make vmtest`, or by hand:
//
//	go build -o bin/seesaw-lab ./deploy/lab/cmd/seesaw-lab && bin/seesaw-lab prepare
//	make build   # bin/seesaw-multicall, hard-linked as bin/seesaw_watchdog, bin/seesaw_engine, ...
//	SEESAW_BIN=$PWD/bin go test -count=1 -exec "$PWD/bin/seesaw-lab exec" -run '^TestLab' -v ./deploy/appliance
//
// SEESAW_BIN may as well hold the seven binaries built separately (go
// build -o DIR/ ./watchdog/cmd/seesaw_watchdog ...): the tests pass either
// way, but the memory benchmark measures what that directory holds, and
// separate binaries share none of their code.
//
// TestLabBenchMemory runs only with -args -appliance.bench (make bench).
// TestLabFailoverMatrix runs one trial per cell at 1 s adverts in make
// test, and -appliance.trials (20) per cell at 100 ms with it.
package appliance
