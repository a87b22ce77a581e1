package cli

import "github.com/spf13/cobra"

func runShell(cmd *cobra.Command, e *env) error {
	return usagef("the interactive shell comes next")
}
