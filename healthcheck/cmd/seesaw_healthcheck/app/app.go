// Package app is the seesaw_healthcheck command, outside package main so that the
// multi-call binary (deploy/cmd/seesaw-multicall) links the same code as
// the standalone seesaw_healthcheck, whose main only calls Main.
package app

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/seesawlb/seesaw/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
)

// Main runs seesaw_healthcheck on os.Args, as its main did: it exits the
// process. Its flags are registered on flag.CommandLine when it is called,
// so it runs once per process.
func Main() {
	if len(os.Args) > 1 && os.Args[1] == "check" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		code := healthcheck.CheckCommand(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	var cfg healthcheck.Config
	flag.StringVar(&cfg.Socket, "socket", healthcheck.DefaultSocket, "path of healthcheck's Unix socket")
	flag.StringVar(&cfg.EngineSocket, "engine_socket", healthcheck.DefaultEngineSocket, "path of the engine's Unix socket")
	flag.BoolVar(&cfg.DryRun, "dry_run", false, "send no probe; report every check healthy (for running the appliance where its backends must not be probed)")
	flag.DurationVar(&cfg.ResyncInterval, "resync_interval", 15*time.Second, "how often every check's latest result is sent to the engine again")
	flag.Parse()
	ipc.Main("seesaw_healthcheck", func(ctx context.Context) error { return healthcheck.Run(ctx, cfg) })
}
