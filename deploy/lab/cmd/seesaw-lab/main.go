// Command seesaw-lab boots the project's kernel lab, a Debian kernel with
// IPVS under qemu with the host's filesystem shared in read-only, and runs
// commands or test binaries inside it.
//
//	seesaw-lab run [--mem M] [--cpus N] [--timeout D] [--writable DIR]... [--forward H:G]... -- CMD [ARGS...]
//	seesaw-lab exec [flags] TESTBINARY [ARGS...]   (go test -exec "$(pwd)/bin/seesaw-lab exec")
//	seesaw-lab prepare                             (install, fetch and build what the lab needs)
//	seesaw-lab topo up|down, httpd, get, forward   (the demo's pieces, run inside the guest)
//
// Exit status: the command's own; 124 when the time limit killed the guest;
// 125 when the lab itself failed (no kernel, boot failure); 2 for bad usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT)
	code := run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr})
	stop()
	os.Exit(code)
}
