package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// The config commands that talk to the engine.

func newConfigReloadCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Re-read seesaw.cfg and cluster.pb now (a rejected config changes nothing)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := call(cmd.Context(), e, "config reload", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.ConfigReloadResponse, error) {
				return c.ConfigReload(ctx, &enginepb.ConfigReloadRequest{})
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Configuration reloaded.")
			return nil
		},
	}
}

func newConfigSourceCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:       "source [disk|peer|server|none]",
		Short:     "Show the config source, or set it (and reload)",
		Args:      maxArgs(1, "at most one source: disk, peer, server or none"),
		ValidArgs: []cobra.Completion{"disk", "peer", "server", "none"},
		RunE: func(cmd *cobra.Command, args []string) error {
			src := ""
			if len(args) == 1 {
				src = args[0]
				switch src {
				case "disk", "peer", "server", "none":
				default:
					return usagef("config source %q: want disk, peer, server or none", src)
				}
			}
			r, err := call(cmd.Context(), e, "config source", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.ConfigSourceResponse, error) {
				return c.ConfigSource(ctx, &enginepb.ConfigSourceRequest{Source: src})
			})
			if err != nil {
				return err
			}
			if src == "" {
				fmt.Fprintf(cmd.OutOrStdout(), "Config source is %s\n", r.Source)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Config source is %s (was %s)\n", r.Source, r.Previous)
			return nil
		},
	}
	return c
}

func newConfigStatusCommand(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "The running config: source, last update, metadata, last rejected config",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := call(cmd.Context(), e, "config status", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.ConfigStatusResponse, error) {
				return c.ConfigStatus(ctx, &enginepb.ConfigStatusRequest{})
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, r)
			}
			ts := func(t interface{ AsTime() time.Time }, ok bool) string {
				if !ok {
					return "-"
				}
				return t.AsTime().UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "Source:       %s\n", r.Source)
			fmt.Fprintf(w, "Last update:  %s\n", ts(r.LastUpdate, r.LastUpdate != nil))
			fmt.Fprintf(w, "Loaded:       %s\n", ts(r.Loaded, r.Loaded != nil))
			for _, a := range r.Attributes {
				fmt.Fprintf(w, "Attribute:    %s = %s\n", a.Name, a.Value)
			}
			if r.LastError != "" {
				fmt.Fprintf(w, "Rejected at %s (the running config keeps serving):\n", ts(r.LastErrorTime, r.LastErrorTime != nil))
				for _, l := range strings.Split(r.LastError, "\n") {
					fmt.Fprintf(w, "  %s\n", l)
				}
			}
			for _, wn := range r.Warnings {
				say(w, 14, "Warning:      "+wn)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newConfigDiffCommand(e *env) *cobra.Command {
	var cluster, conf string
	var asJSON bool
	c := &cobra.Command{
		Use:   "diff",
		Short: "What a candidate cluster.pb (and seesaw.cfg) would change in the kernel, before it is applied",
		Long: "diff sends the candidate files to the running engine, which computes the data plane they\n" +
			"give with the running health, HA state and overrides, and asks the NCC for a dry run.\n" +
			"Without --cluster it diffs the files on disk against what the kernel holds: what\n" +
			"`config reload` would change. Nothing is changed.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &enginepb.PlanRequest{}
			if cluster != "" {
				b, err := os.ReadFile(cluster)
				if err != nil {
					return fmt.Errorf("config diff: %w", err)
				}
				req.ClusterPb, req.ClusterName = b, cluster
			}
			if conf != "" {
				b, err := os.ReadFile(conf)
				if err != nil {
					return fmt.Errorf("config diff: %w", err)
				}
				req.SeesawCfg = b
			}
			r, err := call(cmd.Context(), e, "config diff", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.PlanResponse, error) {
				return c.Plan(ctx, req)
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				r.Desired = nil // the changes are the answer; the whole state is `seesaw_engine plan`
				return writeJSON(w, r)
			}
			writeChanges(w, r)
			if len(r.Errors) > 0 {
				return fmt.Errorf("config diff: the NCC's dry run found %d error(s)", len(r.Errors))
			}
			return nil
		},
	}
	c.Flags().StringVar(&cluster, "cluster", "", "candidate cluster.pb (default: the engine's file on disk)")
	c.Flags().StringVar(&conf, "conf", "", "candidate seesaw.cfg (default: the engine's file on disk)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (the engine's PlanResponse without the desired state)")
	return c
}

// writeChanges prints a plan's changes as a diff: + added, - deleted,
// ~ updated.
func writeChanges(w io.Writer, r *enginepb.PlanResponse) {
	for _, wn := range r.Warnings {
		say(w, 2, "warning: "+wn)
	}
	if len(r.Changes) == 0 && len(r.Errors) == 0 {
		fmt.Fprintln(w, "No changes: the kernel already holds what this config gives.")
		return
	}
	for _, ch := range r.Changes {
		op := "?"
		switch ch.Op {
		case nccpb.Change_ADD:
			op = "+"
		case nccpb.Change_DELETE:
			op = "-"
		case nccpb.Change_UPDATE:
			op = "~"
		}
		line := fmt.Sprintf("%s %s %s", op, ch.Kind, ch.Object)
		if ch.Detail != "" {
			line += ": " + ch.Detail
		}
		say(w, 4, line)
	}
	if r.ChangesOmitted > 0 {
		fmt.Fprintf(w, "... and %d more changes\n", r.ChangesOmitted)
	}
	for _, er := range r.Errors {
		say(w, 2, fmt.Sprintf("error: %s %s: %s", er.Kind, er.Object, er.Message))
	}
	fmt.Fprintf(w, "%d changes.\n", uint64(len(r.Changes))+r.ChangesOmitted)
}
