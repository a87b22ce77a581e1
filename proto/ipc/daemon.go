package ipc

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/golang/glog"
)

// Main runs a daemon's body the same way in every seesaw binary: run gets a
// context that SIGTERM or SIGINT cancels, SIGUSR1 writes every goroutine's
// stack to the log, and an error from run is logged and becomes exit status
// 1. Call it from main after flag.Parse; it does not return.
func Main(name string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	go dumpOnSIGUSR1()
	glog.Infof("%s %s starting (pid %d)", name, Version, os.Getpid())
	err := run(ctx)
	stop()
	if err != nil {
		glog.Errorf("%s: %v", name, err)
		glog.Flush()
		os.Exit(1)
	}
	glog.Infof("%s: stopped", name)
	glog.Flush()
	os.Exit(0)
}

// dumpOnSIGUSR1 listens for the life of the process, shutdown included,
// because SIGUSR1's default action would kill it.
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
