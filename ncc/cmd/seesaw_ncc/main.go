// Command seesaw_ncc is the network control centre: the only Seesaw process
// that changes the host. It runs as root under the watchdog.
//
// With --release it gives up what would fight the peer (the VIPs, VLANs,
// routes and rules of the last applied state, with the LB interface down and
// its own MAC back) and keeps IPVS, its connections and sync daemons and the
// nftables table for the next start to adopt, and exits: the unit's
// ExecStopPost, whenever the appliance stops or dies.
//
// With --cleanup it removes everything the NCC owns (every IPVS service and
// sync daemon; its nftables table, inet "seesaw", and no other; and what
// --release gives up) and exits: by hand, or when the package is removed.
package main

import "github.com/seesawlb/seesaw/ncc/cmd/seesaw_ncc/app"

func main() { app.Main() }
