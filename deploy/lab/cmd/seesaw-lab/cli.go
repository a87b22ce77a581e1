package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/seesawlb/seesaw/deploy/lab"
)

// Exit statuses of seesaw-lab's own failures, as timeout(1) and container
// runners use them, so that they stand apart from the usual small codes of
// commands.
const (
	exitTimeout = 124
	exitLab     = 125
)

type env struct {
	stdin          *os.File
	stdout, stderr io.Writer
}

const usage = `usage:
  seesaw-lab run [flags] -- CMD [ARGS...]     run CMD as root in a fresh guest
  seesaw-lab exec [flags] TESTBINARY [ARGS...] go test -exec wrapper
  seesaw-lab prepare                           install, fetch and build what the lab needs
  seesaw-lab topo up|down [flags]              (in the guest) the demo's namespaces
  seesaw-lab httpd [flags]                     a tiny HTTP backend, for the demo
  seesaw-lab get [--every D] URL              fetch URL (the demo's client); --every: a session
  seesaw-lab forward [flags]                   (in the guest) relay a port into a namespace

Run "seesaw-lab run -h" (or exec, topo, httpd) for its flags.
Exit status: the command's own; 124 when the time limit killed the guest;
125 when the lab failed (no kernel, boot failure); 2 for bad usage.
`

func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], e)
	case "exec":
		return cmdExec(ctx, args[1:], e)
	case "prepare":
		return cmdPrepare(ctx, args[1:], e)
	case "topo":
		return cmdTopo(ctx, args[1:], e)
	case "httpd":
		return cmdHTTPD(ctx, args[1:], e)
	case "get":
		return cmdGet(ctx, args[1:], e)
	case "forward":
		return cmdForward(ctx, args[1:], e)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, usage)
		return 0
	}
	fmt.Fprintf(e.stderr, "seesaw-lab: unknown command %q\n%s", args[0], usage)
	return 2
}

// guestFlags are the flags run and exec share.
type guestFlags struct {
	mem      int
	cpus     int
	timeout  time.Duration
	writable multiFlag
	readOnly multiFlag
	verbose  bool
	append   string
}

func (g *guestFlags) register(fs *flag.FlagSet, defTimeout time.Duration) {
	fs.IntVar(&g.mem, "mem", 1024, "guest memory in MiB")
	fs.IntVar(&g.cpus, "cpus", 2, "guest CPUs")
	fs.DurationVar(&g.timeout, "timeout", defTimeout, "kill the guest after this long (0: no limit)")
	fs.Var(&g.writable, "writable", "host directory the guest may write, shared at the same path (repeatable)")
	fs.Var(&g.readOnly, "readonly", "host directory under /tmp or /run to show read-only at the same path (repeatable)")
	fs.BoolVar(&g.verbose, "verbose", false, "show the guest's kernel console on stderr")
	fs.StringVar(&g.append, "append", "", "more kernel command line (e.g. loglevel=7 with --verbose to see the whole boot)")
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// prepare gets the lab ready. Installs, downloads and builds take a
// while, so it says when it does one, on stderr: stdout is the command's.
func prepare(ctx context.Context, e env) (lab.Assets, error) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(e.stderr, "seesaw-lab: "+strings.TrimPrefix(format, "lab: ")+"\n", args...)
	}
	return lab.Prepare(ctx, lab.PrepareOptions{Logf: logf})
}

func cmdPrepare(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("seesaw-lab prepare", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	a, err := prepare(ctx, e)
	if err != nil {
		printErr(e, err)
		return exitLab
	}
	fmt.Fprintf(e.stdout, "kernel:    %s\nvmlinuz:   %s\ninitramfs: %s\n", a.Kernel, a.Vmlinuz, a.Initrd)
	return 0
}

func cmdRun(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("seesaw-lab run", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: seesaw-lab run [flags] -- CMD [ARGS...]\n\nBoots a guest and runs CMD there as root, in the current directory with\nthe current environment; exits with CMD's exit status. Flags:")
		fs.PrintDefaults()
	}
	var g guestFlags
	g.register(fs, 10*time.Minute)
	tty := fs.String("tty", "auto", "run CMD on the guest's console attached to this terminal: yes, no, or auto (when stdin and stdout are terminals)")
	var forwards multiFlag
	fs.Var(&forwards, "forward", "[HOSTADDR:]HOSTPORT:GUESTPORT: forward a loopback TCP port of the host to the guest's "+lab.GuestNICAddr+
		" on a restricted qemu user network; the guest reaches nothing outside (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	var fwd []lab.Forward
	for _, v := range forwards {
		f, err := lab.ParseForward(v)
		if err != nil {
			fmt.Fprintln(e.stderr, "seesaw-lab run: --forward:", strings.TrimPrefix(err.Error(), "lab: "))
			return 2
		}
		fwd = append(fwd, f)
	}
	useTTY, err := wantTTY(*tty, e)
	if err != nil {
		fmt.Fprintln(e.stderr, "seesaw-lab run:", err)
		return 2
	}
	a, err := prepare(ctx, e)
	if err != nil {
		printErr(e, err)
		return exitLab
	}
	o := g.options(e)
	o.Argv = fs.Args()
	o.TTY = useTTY
	o.Forward = fwd
	code, err := lab.Run(ctx, a, o)
	return finish(e, code, err)
}

func (g *guestFlags) options(e env) lab.Options {
	o := lab.Options{
		Writable:   g.writable,
		ReadOnly:   g.readOnly,
		MemMiB:     g.mem,
		CPUs:       g.cpus,
		Timeout:    g.timeout,
		Stdout:     e.stdout,
		Stderr:     e.stderr,
		KernelArgs: g.append,
	}
	if g.verbose {
		o.Console = e.stderr
	}
	return o
}

func wantTTY(v string, e env) (bool, error) {
	switch v {
	case "yes", "true", "1":
		if e.stdin == nil || !lab.IsTerminal(e.stdin) {
			return false, errors.New("--tty=yes needs stdin to be a terminal")
		}
		return true, nil
	case "no", "false", "0":
		return false, nil
	case "auto":
		out, ok := e.stdout.(*os.File)
		return ok && e.stdin != nil && lab.IsTerminal(e.stdin) && lab.IsTerminal(out), nil
	}
	return false, fmt.Errorf("--tty=%s: want yes, no or auto", v)
}

// finish turns Run's result into seesaw-lab's exit status.
func finish(e env, code int, err error) int {
	switch {
	case errors.Is(err, lab.ErrTimeout):
		printErr(e, err)
		return exitTimeout
	case err != nil:
		printErr(e, err)
		return exitLab
	}
	return code
}

// printErr prints a lab error once prefixed: the library's errors start
// with "lab: ".
func printErr(e env, err error) {
	fmt.Fprintln(e.stderr, "seesaw-lab: "+strings.TrimPrefix(err.Error(), "lab: "))
}
