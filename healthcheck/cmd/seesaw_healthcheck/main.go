// Command seesaw_healthcheck is the health-checking daemon: it keeps a session
// with the engine and (once checkers exist) checks the backends.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/golang/glog"

	"github.com/seesawlb/seesaw/healthcheck"
)

func main() {
	var cfg healthcheck.Config
	flag.StringVar(&cfg.Socket, "socket", healthcheck.DefaultSocket, "path of healthcheck's Unix socket")
	flag.StringVar(&cfg.EngineSocket, "engine_socket", healthcheck.DefaultEngineSocket, "path of the engine's Unix socket")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go dumpOnSIGUSR1()

	glog.Infof("seesaw_healthcheck starting (pid %d)", os.Getpid())
	if err := healthcheck.Run(ctx, cfg); err != nil {
		glog.Errorf("seesaw_healthcheck: %v", err)
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
