// Command seesaw_ha is the high-availability daemon: the VRRPv3 speaker that
// decides whether this node is master or backup and tells the engine.
//
// With --standalone it runs without an engine, from flags, and prints every
// transition with a timestamp:
//
//	seesaw_ha --standalone --interface IF --vrid N --priority P --advert_interval D \
//	    [--peer ADDR]... [--unicast] [--preempt [--preempt_delay D]] [--local ADDR] \
//	    [--address VIP]... [--ipv6] [--socket PATH]
package main

import "github.com/seesawlb/seesaw/ha/cmd/seesaw_ha/app"

func main() { app.Main() }
