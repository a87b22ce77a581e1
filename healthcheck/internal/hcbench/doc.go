// Package hcbench measures the health checker at scale against HAProxy: N
// TCP and N HTTP checks at a 1 s interval against local servers, then again
// with a share of the backends black-holed so their checks time out. It
// reports achieved checks per second against the target, CPU seconds per
// 1,000 checks, memory per check, the 99th percentile of scheduling
// lateness, and of the time to detect backends that go down; HAProxy runs
// the same checks in the same run as the peer. Results are `bench:` lines.
//
// Everything runs in a network namespace of its own (the run re-executes
// itself into one): the servers listen on 127.0.0.0/8 there, nftables rules
// there black-hole backends, refuse the ones taken down, and count SYNs, so
// the host's network is never touched.
package hcbench
