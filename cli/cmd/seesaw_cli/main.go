// Command seesaw_cli is the Seesaw command line. See package cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/seesawlb/seesaw/cli"
)

func main() {
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
