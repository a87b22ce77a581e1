// Command seesaw_ncc is the network control centre: the only Seesaw process
// that changes the host. It runs as root under the watchdog.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/golang/glog"

	"github.com/seesawlb/seesaw/ncc"
)

func main() {
	var cfg ncc.Config
	flag.StringVar(&cfg.Socket, "socket", ncc.DefaultSocket, "path of the NCC's Unix socket")
	flag.StringVar(&cfg.EngineUser, "engine_user", ncc.DefaultEngineUser,
		"user the engine runs as, allowed to call the NCC besides root; empty for root only (the default user is skipped when it does not exist)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go dumpOnSIGUSR1()

	glog.Infof("seesaw_ncc starting (pid %d)", os.Getpid())
	if err := ncc.Run(ctx, cfg); err != nil {
		glog.Errorf("seesaw_ncc: %v", err)
		glog.Flush()
		os.Exit(1)
	}
	glog.Flush()
}

// dumpOnSIGUSR1 writes every goroutine's stack to the log on SIGUSR1. It
// listens for the life of the process, shutdown included, because SIGUSR1's
// default action would kill it.
func dumpOnSIGUSR1() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	for range c {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		glog.Infof("SIGUSR1: goroutines:\n%s", buf)
		glog.Flush()
	}
}
