package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/seesawlb/seesaw/deploy/lab"
)

// cmdExec is the go test -exec wrapper: go test runs
// `seesaw-lab exec [flags] /tmp/go-build.../pkg.test -test.v=... ...` in the
// package's directory. The binary's directory (which also receives the test
// log and coverage files) is shared writable at the same path, because the
// guest's /tmp is its own tmpfs.
func cmdExec(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("seesaw-lab exec", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: seesaw-lab exec [flags] TESTBINARY [ARGS...]\n\nRuns a test binary in the guest; for go test -exec \"$(pwd)/bin/seesaw-lab exec\".\nA binary with no test matching -test.run runs on the host without a guest.\nThe time limit defaults to the binary's -test.timeout plus two minutes. Flags:")
		fs.PrintDefaults()
	}
	var g guestFlags
	g.register(fs, 0)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	binary, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(e.stderr, "seesaw-lab exec:", err)
		return exitLab
	}
	targs := fs.Args()[1:]
	if !lab.HasTestsToRun(ctx, binary, targs) {
		return runOnHost(ctx, e, binary, targs)
	}
	a, err := prepare(ctx, e)
	if err != nil {
		printErr(e, err)
		return exitLab
	}
	o := g.options(e)
	if o.Timeout == 0 {
		if t := lab.ParseTestArgs(targs).Timeout; t > 0 {
			// The test binary panics with a goroutine dump at its own
			// limit; this one only catches a guest that hangs.
			o.Timeout = t + 2*time.Minute
		}
	}
	o.Writable = append(o.Writable, filepath.Dir(binary))
	o.Argv = append([]string{binary}, targs...)
	code, err := lab.Run(ctx, a, o)
	return finish(e, code, err)
}

// runOnHost runs a test binary that has nothing to run right here: it only
// prints that, exactly as it would in the guest.
func runOnHost(ctx context.Context, e env, binary string, args []string) int {
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Stdout, cmd.Stderr = e.stdout, e.stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "seesaw-lab exec:", err)
		return exitLab
	}
	return 0
}
