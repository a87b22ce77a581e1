// Package cli is the operator's command line, `seesaw` (seesaw_cli): Seesaw
// v2's command tree against the engine's socket, plus what operators asked
// Seesaw for (health checks, stats, drain, config diff, versions).
//
// Commands are built by constructors with no package state, so the
// one-shot forms (`seesaw show vservers`, `seesaw -c "show vservers"`),
// tests and the interactive shell all run the same tree; every command
// writes to cmd.OutOrStdout() and cmd.ErrOrStderr() and reports failure
// by returning an error. Run maps errors to exit codes: 0 on success, 1
// when an operation failed, 2 on a usage error. Every word may be a unique
// prefix (`sh vs` is `show vservers`). The rendering of state comes from
// package engine/view, which the ECU's page shares.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/seesawlb/seesaw/proto/ipc"
	"github.com/seesawlb/seesaw/watchdog"
)

// DefaultEngineSocket is where the engine listens by default.
var DefaultEngineSocket = ipc.DefaultSocket("engine")

// UsageError is a mistake in the command line: exit status 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// ExitCode is the process status for err: 0, 1 or 2 (usage).
func ExitCode(err error) int {
	var u *UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return 2
	}
	return 1
}

// Options are what a command tree runs with.
type Options struct {
	// Name is the command's name in usage and completion scripts
	// ("seesaw").
	Name string
	// Engine is the engine's socket (the --engine flag's default).
	Engine string
	// Color: colour state words (only on a terminal without NO_COLOR).
	Color bool
	// Shell marks a tree run by the interactive shell: exit and quit
	// leave it, and the one-shot-only commands are hidden.
	Shell bool
	// Now is the clock ages are shown against; nil is time.Now.
	Now func() time.Time
	// Remote, when set, is an ECU's remote control (host:port, the port
	// 10256 by default): commands go there over mutual TLS with the
	// client certificate Cert and key Key, trusting the cluster CA CA
	// (the --cert, --key and --ca flags' defaults when set here).
	Remote, Cert, Key, CA string
}

// DefaultOptions are the options for the process: colour when stdout is
// a terminal and NO_COLOR is not set.
func DefaultOptions(stdout *os.File) Options {
	name := "seesaw"
	return Options{Name: name, Engine: DefaultEngineSocket, Color: wantColor(stdout)}
}

func wantColor(f *os.File) bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

// env is what one run of the tree shares between its commands: the flags
// and the engine's connection.
type env struct {
	opts    Options
	command string // -c
	engine  *engineConn
}

func (e *env) now() time.Time {
	if e.opts.Now != nil {
		return e.opts.Now()
	}
	return time.Now()
}

// errExit is returned by exit and quit in the shell.
var errExit = errors.New("exit")

// NewRootCommand returns the command tree with default options (tests
// and the multi-call binary use Run).
func NewRootCommand() *cobra.Command {
	return newRoot(&env{opts: Options{Name: "seesaw", Engine: DefaultEngineSocket}})
}

func newRoot(e *env) *cobra.Command {
	if e.opts.Name == "" {
		e.opts.Name = "seesaw"
	}
	if e.opts.Engine == "" {
		e.opts.Engine = DefaultEngineSocket
	}
	if e.engine == nil {
		e.engine = &engineConn{}
	}
	root := &cobra.Command{
		Use:   e.opts.Name,
		Short: "Seesaw load balancer command line",
		Long: e.opts.Name + " inspects and controls a Seesaw node through its engine.\n\n" +
			"With no arguments it starts the interactive shell. A command runs one-shot as\n" +
			"arguments (" + e.opts.Name + " show vservers) or as one string (" + e.opts.Name + " -c \"show vservers\").\n" +
			"Every word may be abbreviated to a unique prefix (sh vs). Exit status: 0,\n" +
			"1 when an operation failed, 2 on a usage error.",
		Args:          noArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if e.command != "" {
				return runOneShot(cmd, e)
			}
			if e.opts.Shell {
				return nil
			}
			return runShell(cmd, e)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{err} })
	root.CompletionOptions.HiddenDefaultCmd = true
	root.CompletionOptions.DisableDefaultCmd = e.opts.Shell
	if !e.opts.Shell {
		root.Flags().StringVarP(&e.command, "command", "c", "", `run one command, e.g. -c "show vservers", and exit`)
	}
	root.PersistentFlags().StringVar(&e.opts.Engine, "engine", e.opts.Engine, "path of the engine's socket")
	root.PersistentFlags().StringVar(&e.opts.Remote, "remote", e.opts.Remote, "talk to the engine of host[:port] through its ECU's remote control (port "+DefaultRemotePort+", mutual TLS) instead of the local socket")
	root.PersistentFlags().StringVar(&e.opts.Cert, "cert", cmpOr(e.opts.Cert, defaultTLSFile("seesaw.crt")), "with --remote: the client certificate, from the cluster CA")
	root.PersistentFlags().StringVar(&e.opts.Key, "key", cmpOr(e.opts.Key, defaultTLSFile("seesaw.key")), "with --remote: the client certificate's key")
	root.PersistentFlags().StringVar(&e.opts.CA, "ca", cmpOr(e.opts.CA, defaultTLSFile("ca.crt")), "with --remote: the cluster CA that signed the ECU's certificate")
	root.AddCommand(newConfigCommand(e), newShowCommand(e), newOverrideCommand(e), newFailoverCommand(e),
		newDrainCommand(e), newExitCommand(e, "exit"), newExitCommand(e, "quit"))
	addImportCommand(root)
	root.SetHelpCommand(newHelpCommand(e))
	for _, c := range root.Commands() {
		setUsageErrors(c)
	}
	return root
}

// setUsageErrors makes flag errors usage errors all through the tree.
func setUsageErrors(c *cobra.Command) {
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{err} })
	for _, s := range c.Commands() {
		setUsageErrors(s)
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usagef("%s: unknown command %q (try: %s)", cmd.CommandPath(), args[0], strings.Join(subNames(cmd), ", "))
		}
		return usagef("%s: unexpected argument %q", cmd.CommandPath(), args[0])
	}
	return nil
}

func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("%s: too many arguments: want %s", cmd.CommandPath(), what)
		}
		return nil
	}
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s: want %s", cmd.CommandPath(), what)
		}
		return nil
	}
}

// group is a command that only holds others: alone it is incomplete.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("incomplete command %q: follow it with one of: %s", cmd.CommandPath(), strings.Join(subNames(cmd), ", "))
		},
	}
	c.AddCommand(subs...)
	return c
}

func subNames(cmd *cobra.Command) []string {
	var out []string
	for _, s := range cmd.Commands() {
		if s.IsAvailableCommand() {
			out = append(out, s.Name())
		}
	}
	return out
}

func newExitCommand(e *env, name string) *cobra.Command {
	return &cobra.Command{
		Use:    name,
		Short:  "Leave the shell",
		Args:   noArgs,
		Hidden: !e.opts.Shell,
		RunE:   func(*cobra.Command, []string) error { return errExit },
	}
}

func newHelpCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			target, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return usagef("help: unknown command %q", strings.Join(args, " "))
			}
			if e.opts.Shell && len(args) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Use ? for context-aware command completions; Tab completes words and names.")
				fmt.Fprintln(cmd.OutOrStdout(), "Commands:")
				listCommands(cmd.OutOrStdout(), root)
				return nil
			}
			return target.Help()
		},
	}
}

// listCommands writes the available subcommands of cmd with a line of help.
func listCommands(w io.Writer, cmd *cobra.Command) {
	t := newTable(nil)
	for _, s := range cmd.Commands() {
		if s.IsAvailableCommand() || s.Name() == "help" {
			t.row("  "+s.Name(), s.Short)
		}
	}
	t.write(w, false)
}

// Run runs the command line args (without the program name) and returns
// the exit status; errors are printed to stderr.
func Run(ctx context.Context, opts Options, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{opts: opts}
	defer e.engine.close()
	root := newRoot(e)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	args, err := resolve(root, args)
	if err == nil {
		root.SetArgs(args)
		err = root.ExecuteContext(ctx)
	}
	if errors.Is(err, errExit) {
		err = nil
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", opts.Name, err)
	}
	return ExitCode(err)
}

// runOneShot runs the -c command line, split as the watchdog splits its
// args (double quotes group words), on a fresh tree with the same engine.
func runOneShot(cmd *cobra.Command, e *env) error {
	args, err := watchdog.SplitArgs(e.command)
	if err != nil {
		return usagef("-c %q: %v", e.command, err)
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usagef("-c %q: expected a command such as \"show vservers\"", e.command)
	}
	sub := &env{opts: e.opts, engine: e.engine}
	sub.opts.Shell = false
	return execLine(cmd.Context(), sub, args, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
}

// execLine runs one command line on a fresh tree (so flags start from
// their defaults) that shares e's engine connection.
func execLine(ctx context.Context, e *env, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	root := newRoot(e)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	args, err := resolve(root, args)
	if err != nil {
		return err
	}
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// resolve expands every command word that is a unique prefix of a
// subcommand (`sh vs` to `show vservers`). An ambiguous prefix is a usage
// error that lists the candidates; words after the last command (names,
// flags' values) are left as they are.
func resolve(root *cobra.Command, args []string) ([]string, error) {
	out := slices.Clone(args)
	if len(out) > 0 && strings.HasPrefix(out[0], "__complete") {
		return out, nil // cobra's completion protocol: its words are partial
	}
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	cur := root
	for i := 0; i < len(out); i++ {
		w := out[i]
		if strings.HasPrefix(w, "-") {
			if !strings.Contains(w, "=") && flagTakesValue(cur, w) {
				i++
			}
			continue
		}
		if !cur.HasSubCommands() {
			break
		}
		m, cands := match(cur, w)
		switch {
		case m != nil:
			out[i] = m.Name()
			cur = m
		case len(cands) > 1:
			return nil, usagef("ambiguous command %q: could be %s", w, strings.Join(cands, ", "))
		default:
			return nil, usagef("unknown command %q for %q (try: %s)", w, cur.CommandPath(), strings.Join(subNames(cur), ", "))
		}
	}
	return out, nil
}

// match finds the subcommand of cmd that word names exactly or as the only
// prefix; otherwise it returns the candidates.
func match(cmd *cobra.Command, word string) (*cobra.Command, []string) {
	var cands []*cobra.Command
	for _, s := range cmd.Commands() {
		if s.Name() == word || slices.Contains(s.Aliases, word) {
			return s, nil
		}
		if !s.IsAvailableCommand() && s.Name() != "help" {
			continue // hidden commands only by their whole name
		}
		if strings.HasPrefix(s.Name(), word) {
			cands = append(cands, s)
		}
	}
	if len(cands) == 1 {
		return cands[0], nil
	}
	var names []string
	for _, c := range cands {
		names = append(names, c.Name())
	}
	return nil, names
}

func flagTakesValue(cmd *cobra.Command, w string) bool {
	name := strings.TrimLeft(w, "-")
	var f = cmd.Flags().Lookup(name)
	if f == nil && len(name) == 1 {
		f = cmd.Flags().ShorthandLookup(name)
	}
	if f == nil {
		f = cmd.InheritedFlags().Lookup(name)
	}
	if f == nil {
		f = cmd.PersistentFlags().Lookup(name)
	}
	return f != nil && f.NoOptDefVal == ""
}
