// Package cli is seesaw_cli's command tree. Commands are built by
// constructors with no package state, so the one-shot mode (-c), tests and
// the interactive shell (to come) all run the same tree; every command writes
// to cmd.OutOrStdout() and cmd.ErrOrStderr() and reports failure by returning
// an error, leaving the exit to main.
package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seesawlb/seesaw/proto/ipc"
)

// DefaultEngineSocket is where the engine listens by default.
var DefaultEngineSocket = ipc.DefaultSocket("engine")

// rootOptions are the root command's flags, shared with subcommands that will
// talk to the engine.
type rootOptions struct {
	command      string
	engineSocket string
}

// errNoShell is returned when seesaw_cli runs with neither a subcommand nor -c.
var errNoShell = errors.New(`the interactive shell needs a running engine and is not available yet; ` +
	`run a command directly (e.g. "seesaw_cli config check") or with -c "<command>"`)

// NewRootCommand returns the seesaw_cli command tree.
func NewRootCommand() *cobra.Command {
	opts := &rootOptions{}
	root := &cobra.Command{
		Use:   "seesaw_cli",
		Short: "Seesaw load balancer command line",
		Long: "seesaw_cli inspects and controls a Seesaw node.\n\n" +
			"Run a command as arguments (seesaw_cli config check) or as one string\n" +
			"(seesaw_cli -c \"config check\"), as Seesaw v2's CLI did.",
		Args:          cobra.NoArgs,
		SilenceUsage:  true, // a failing check is not a usage mistake
		SilenceErrors: true, // main prints the returned error once
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.command == "" {
				return errNoShell
			}
			return runOneShot(cmd, opts)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.Flags().StringVarP(&opts.command, "command", "c", "", `run one command, e.g. -c "config check", and exit`)
	root.PersistentFlags().StringVar(&opts.engineSocket, "engine", DefaultEngineSocket, "path of the engine's socket")
	root.AddCommand(newConfigCommand())
	addImportCommand(root)
	return root
}

// runOneShot runs the -c command line on a fresh tree, so that its flags
// start from their defaults, with the same output streams and context.
func runOneShot(cmd *cobra.Command, opts *rootOptions) error {
	args := strings.Fields(opts.command)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("-c %q: expected a command such as \"config check\"", opts.command)
	}
	sub := NewRootCommand()
	if err := sub.PersistentFlags().Set("engine", opts.engineSocket); err != nil {
		return err
	}
	sub.SetArgs(args)
	sub.SetOut(cmd.OutOrStdout())
	sub.SetErr(cmd.ErrOrStderr())
	sub.SetIn(cmd.InOrStdin())
	return sub.ExecuteContext(cmd.Context())
}
