// Command seesaw-multicall is every Seesaw binary in one file, as busybox is
// every Unix tool in one. It is installed once, with a hard link for each
// name (make build and deploy/install.sh make them), and runs the command
// that its name says. The watchdog and the five daemons it starts then run
// from one file, and the kernel keeps one copy of its code for all six
// processes, where six binaries shared none: most of a Go daemon's resident
// memory is its mapped code. Each process stays what it was, with its own
// name, user, capabilities, flags and failure domain.
//
// The command is the base name of argv[0]; failing that, the name the file
// was executed by (a watchdog.cfg service named other than its binary gets
// argv[0] seesaw_<service>); failing that, the first argument, as in
// `seesaw-multicall seesaw_engine plan`. Anything else prints the names.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	cli "github.com/seesawlb/seesaw/cli/cmd/seesaw_cli/app"
	ecu "github.com/seesawlb/seesaw/ecu/cmd/seesaw_ecu/app"
	engine "github.com/seesawlb/seesaw/engine/cmd/seesaw_engine/app"
	ha "github.com/seesawlb/seesaw/ha/cmd/seesaw_ha/app"
	healthcheck "github.com/seesawlb/seesaw/healthcheck/cmd/seesaw_healthcheck/app"
	ncc "github.com/seesawlb/seesaw/ncc/cmd/seesaw_ncc/app"
	watchdog "github.com/seesawlb/seesaw/watchdog/cmd/seesaw_watchdog/app"
)

// command is one name the binary answers to.
type command struct {
	name, what string
	main       func()
}

// commands are the names, in the order the usage lists them.
var commands = []command{
	{"seesaw_watchdog", "starts and supervises the daemons below", watchdog.Main},
	{"seesaw_ncc", "network control: the only process that changes the host", ncc.Main},
	{"seesaw_engine", "decides the data plane; holds the state", engine.Main},
	{"seesaw_ha", "VRRPv3: master or backup", ha.Main},
	{"seesaw_healthcheck", "checks the backends", healthcheck.Main},
	{"seesaw_ecu", "HTTP status page and metrics", ecu.Main},
	{"seesaw_cli", "the operator's command line", cli.Main},
	{"seesaw", "the same as seesaw_cli", cli.Main},
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// pick chooses the command for argv (os.Args) and exe (the path the file
// was executed by, or ""), and returns the arguments it runs with: argv
// itself, or argv without its first element when the first argument names
// the command.
func pick(argv []string, exe string) (*command, []string) {
	if len(argv) == 0 {
		return nil, argv
	}
	if c := lookup(filepath.Base(argv[0])); c != nil {
		return c, argv
	}
	if exe != "" {
		if c := lookup(filepath.Base(exe)); c != nil {
			return c, argv
		}
	}
	if len(argv) > 1 {
		if c := lookup(argv[1]); c != nil {
			return c, argv[1:]
		}
	}
	return nil, argv
}

func usage(w io.Writer, self string) {
	fmt.Fprintf(w, "%s is every Seesaw command in one binary. It runs the command its name says\n"+
		"(make build and deploy/install.sh give it a hard link for each), or the one its\n"+
		"first argument names:\n\n"+
		"  seesaw_NAME [ARGS...]\n  %s seesaw_NAME [ARGS...]\n\nNames:\n", self, self)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-19s %s\n", c.name, c.what)
	}
}

func main() {
	exe, _ := os.Executable()
	c, args := pick(os.Args, exe)
	if c != nil {
		os.Args = args
		c.main()
		return
	}
	self := "seesaw-multicall"
	if len(os.Args) > 0 {
		self = filepath.Base(os.Args[0])
	}
	if len(os.Args) == 2 && (os.Args[1] == "--help" || os.Args[1] == "-help" || os.Args[1] == "-h") {
		usage(os.Stdout, self)
		return
	}
	if len(os.Args) > 1 {
		fmt.Fprintf(os.Stderr, "%s: no Seesaw command is named %q or %q\n\n", self, self, os.Args[1])
	} else {
		fmt.Fprintf(os.Stderr, "%s: no Seesaw command is named %q\n\n", self, self)
	}
	usage(os.Stderr, self)
	os.Exit(2)
}
