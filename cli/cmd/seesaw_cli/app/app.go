// Package app is the seesaw_cli command, outside package main so that the
// multi-call binary (deploy/cmd/seesaw-multicall) links the same code as
// the standalone seesaw_cli, whose main only calls Main.
package app

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/seesawlb/seesaw/cli"
)

// Main runs seesaw_cli on os.Args and exits with its status: 0, 1 when an
// operation failed, 2 on a usage error.
func Main() {
	// Ctrl-C is the commands' own business: drain takes it as "stop
	// waiting", the shell swallows it; elsewhere it ends the process.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	opts := cli.DefaultOptions(os.Stdout)
	if name := filepath.Base(os.Args[0]); !strings.HasPrefix(name, "seesaw-multicall") {
		opts.Name = name
	}
	code := cli.Run(ctx, opts, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
