// Command seesaw_ncc is the network control centre: the only Seesaw process
// that changes the host. It runs as root under the watchdog.
//
// With --cleanup it removes everything the NCC owns (every IPVS service and
// sync daemon; its nftables table, inet "seesaw", and no other; the VIPs,
// VLANs, routes and rules of the last applied state, with the LB interface
// down and its own MAC back) and exits, for systemd's ExecStopPost when the
// appliance stops for good.
package main

import "github.com/seesawlb/seesaw/ncc/cmd/seesaw_ncc/app"

func main() { app.Main() }
