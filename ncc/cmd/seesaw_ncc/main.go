// Command seesaw_ncc is the network control centre: the only Seesaw process
// that changes the host. It runs as root under the watchdog.
package main

import (
	"context"
	"flag"

	"github.com/seesawlb/seesaw/ncc"
	"github.com/seesawlb/seesaw/proto/ipc"
)

func main() {
	var cfg ncc.Config
	flag.StringVar(&cfg.Socket, "socket", ncc.DefaultSocket, "path of the NCC's Unix socket")
	flag.StringVar(&cfg.EngineUser, "engine_user", ncc.DefaultEngineUser,
		"user the engine runs as, allowed to call the NCC besides root; empty for root only (the default user is skipped when it does not exist)")
	flag.Parse()

	ipc.Main("seesaw_ncc", func(ctx context.Context) error { return ncc.Run(ctx, cfg) })
}
