// Package app is the seesaw_cli command, outside package main so that the
// multi-call binary (deploy/cmd/seesaw-multicall) links the same code as
// the standalone seesaw_cli, whose main only calls Main.
package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/seesawlb/seesaw/cli"
)

// Main runs seesaw_cli on os.Args, as its main did: it exits with status 1
// on an error and returns on success.
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "seesaw_cli:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	return cli.NewRootCommand().ExecuteContext(ctx)
}
