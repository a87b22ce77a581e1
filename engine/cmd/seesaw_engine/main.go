// Command seesaw_engine is the Seesaw engine: it loads the config (and
// reloads it when seesaw.cfg or cluster.pb change, or on SIGHUP), steers HA
// and healthcheck, computes the data plane and has the NCC apply it, and
// answers operators on its Unix socket.
//
//	seesaw_engine [flags]                 run the engine
//	seesaw_engine plan [flags]            print the data plane the files give
package main

import "github.com/seesawlb/seesaw/engine/cmd/seesaw_engine/app"

func main() { app.Main() }
