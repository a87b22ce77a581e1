// Command seesaw_ecu serves Seesaw's monitoring endpoint over HTTP (port
// 10257 by default) and its own status on a Unix socket.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/golang/glog"

	"github.com/seesawlb/seesaw/ecu"
)

func main() {
	var cfg ecu.Config
	var ncc, ha, hc, wd string
	flag.StringVar(&cfg.Socket, "socket", ecu.DefaultSocket, "path of the ECU's Unix socket")
	flag.StringVar(&cfg.EngineSocket, "engine_socket", ecu.DefaultEngineSocket, "path of the engine's Unix socket")
	flag.StringVar(&ncc, "ncc_socket", ecu.DefaultNCCSocket, "path of the NCC's Unix socket (for the status page; empty to skip)")
	flag.StringVar(&ha, "ha_socket", ecu.DefaultHASocket, "path of HA's Unix socket (for the status page; empty to skip)")
	flag.StringVar(&hc, "healthcheck_socket", ecu.DefaultHealthcheckSocket, "path of healthcheck's Unix socket (for the status page; empty to skip)")
	flag.StringVar(&wd, "watchdog_socket", ecu.DefaultWatchdogSocket, "path of the watchdog's Unix socket (for the status page; empty to skip)")
	flag.StringVar(&cfg.HTTPAddr, "http_addr", ecu.DefaultHTTPAddr, "host:port of the HTTP monitoring listener")
	flag.Parse()
	cfg.Components = map[string]string{"ncc": ncc, "ha": ha, "healthcheck": hc, "watchdog": wd}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go dumpOnSIGUSR1()

	glog.Infof("seesaw_ecu starting (pid %d)", os.Getpid())
	if err := ecu.Run(ctx, cfg); err != nil {
		glog.Errorf("seesaw_ecu: %v", err)
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
