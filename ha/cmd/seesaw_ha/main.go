// Command seesaw_ha is the high-availability daemon: it keeps a session with
// the engine and (once the VRRP speaker exists) decides master or backup.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/golang/glog"

	"github.com/seesawlb/seesaw/ha"
)

func main() {
	var cfg ha.Config
	flag.StringVar(&cfg.Socket, "socket", ha.DefaultSocket, "path of HA's Unix socket")
	flag.StringVar(&cfg.EngineSocket, "engine_socket", ha.DefaultEngineSocket, "path of the engine's Unix socket")
	flag.DurationVar(&cfg.StatusInterval, "status_interval", 0, "how often to report status to the engine (0: 3s)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go dumpOnSIGUSR1()

	glog.Infof("seesaw_ha starting (pid %d)", os.Getpid())
	if err := ha.Run(ctx, cfg); err != nil {
		glog.Errorf("seesaw_ha: %v", err)
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
