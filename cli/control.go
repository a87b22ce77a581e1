package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/seesawlb/seesaw/engine/view"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
)

// The commands that change the engine's state: override, failover, drain.
// The engine allows them to root and its admin group only, and logs each
// with the caller's user.

func newOverrideCommand(e *env) *cobra.Command {
	kinds := []struct {
		name  string
		short string
		k     kind
	}{
		{"backend", "Override a backend (every destination it has)", kindBackend},
		{"destination", "Override one destination, <vserver>/<ip:port>/<proto>", kindDestination},
		{"vserver", "Override a vserver", kindVserver},
	}
	var subs []*cobra.Command
	for _, kd := range kinds {
		var states []*cobra.Command
		for _, st := range []struct{ word, short string }{
			{"default", "Clear the override: the config decides"},
			{"disabled", "Force it out of service"},
			{"enabled", "Force it into service"},
		} {
			states = append(states, &cobra.Command{
				Use:               st.word + " <" + kd.name + ">",
				Short:             st.short,
				Args:              exactArgs(1, "one "+kd.name+" name"),
				ValidArgsFunction: names(e, kd.k),
				RunE: func(cmd *cobra.Command, args []string) error {
					s, _ := view.ParseOverride(st.word)
					return override(cmd.Context(), e, cmd.OutOrStdout(), kd.name, args[0], s)
				},
			})
		}
		subs = append(subs, group(kd.name, kd.short, group("state", "Set the override state", states...)))
	}
	return group("override", "Override the config's state of a vserver, backend or destination", subs...)
}

func overrideRequest(kind, name string, s enginepb.OverrideState) *enginepb.OverrideRequest {
	req := &enginepb.OverrideRequest{State: s}
	switch kind {
	case "vserver":
		req.Target = &enginepb.OverrideRequest_Vserver{Vserver: name}
	case "backend":
		req.Target = &enginepb.OverrideRequest_Backend{Backend: name}
	default:
		req.Target = &enginepb.OverrideRequest_Destination{Destination: name}
	}
	return req
}

func setOverride(ctx context.Context, e *env, kind, name string, s enginepb.OverrideState) (*enginepb.OverrideResponse, error) {
	return call(ctx, e, "override "+kind+" "+name, func(ctx context.Context, c enginepb.EngineClient) (*enginepb.OverrideResponse, error) {
		return c.Override(ctx, overrideRequest(kind, name, s))
	})
}

func override(ctx context.Context, e *env, w io.Writer, kind, name string, s enginepb.OverrideState) error {
	r, err := setOverride(ctx, e, kind, name, s)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Override of %s: %s (was %s)\n", r.Target, cmpOr(view.OverrideWord(s), "default"), cmpOr(view.OverrideWord(r.Previous), "default"))
	return nil
}

func newFailoverCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "failover",
		Short: "Ask this node, the master, to hand mastership to its peer",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := call(cmd.Context(), e, "failover", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.FailoverResponse, error) {
				return c.Failover(ctx, &enginepb.FailoverRequest{})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Failover requested: %s\n", r.Message)
			return nil
		},
	}
}

func newDrainCommand(e *env) *cobra.Command {
	var timeout, interval time.Duration
	mk := func(kd string, k kind, short string) *cobra.Command {
		return &cobra.Command{
			Use:               kd + " <name>",
			Short:             short,
			Args:              exactArgs(1, "one "+kd+" name"),
			ValidArgsFunction: names(e, k),
			RunE: func(cmd *cobra.Command, args []string) error {
				if timeout <= 0 || interval <= 0 {
					return usagef("drain: --timeout and --interval must be positive")
				}
				return drain(cmd.Context(), e, cmd.OutOrStdout(), kd, args[0], timeout, interval)
			},
		}
	}
	c := group("drain", "Weight 0, wait for the active connections to close, then disable",
		mk("backend", kindBackend, "Drain a backend from every vserver"),
		mk("destination", kindDestination, "Drain one destination, <vserver>/<ip:port>/<proto>"))
	c.PersistentFlags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the connections to close before disabling anyway")
	c.PersistentFlags().DurationVar(&interval, "interval", time.Second, "how often to look at the connections")
	return c
}

// errInterrupted ends a drain cut short by Ctrl-C.
var errInterrupted = errors.New("interrupted")

// drain sets the drain override (weight 0: established connections
// finish, new ones go elsewhere), waits until the target has no active
// connection or the timeout passes, then disables it. Interrupted, it
// leaves the target at weight 0 and says so.
func drain(ctx context.Context, e *env, w io.Writer, kd, name string, timeout, interval time.Duration) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt) // Ctrl-C stops the wait
	defer stop()
	r, err := setOverride(ctx, e, kd, name, enginepb.OverrideState_OVERRIDE_DRAIN)
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	say(w, 2, fmt.Sprintf("Draining %s: weight 0, new connections go elsewhere (was %s).", r.Target, cmpOr(view.OverrideWord(r.Previous), "default")))
	start := time.Now()
	deadline := start.Add(timeout)
	last := -1
	for {
		n, dests, err := activeConns(ctx, e, kd, name)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			return fmt.Errorf("drain: %w; %s is left at weight 0 (override drain)", err, r.Target)
		}
		if n == 0 {
			fmt.Fprintf(w, "  %s: no active connections left on %d destination(s)\n", view.Duration(time.Since(start)), dests)
			break
		}
		if n != last {
			fmt.Fprintf(w, "  %s: %d active connection(s) on %d destination(s)\n", view.Duration(time.Since(start)), n, dests)
			last = n
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(w, "  timed out after %s with %d active connection(s): disabling anyway\n", view.Duration(timeout), n)
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(w) // after the terminal's ^C
		say(w, 2, fmt.Sprintf("Interrupted: %s is left at weight 0 (override drain), not disabled.", r.Target))
		say(w, 2, fmt.Sprintf("Run `drain %s %s` to finish, or `override %s state default %s` to restore it.", kd, name, kd, name))
		return fmt.Errorf("drain %s %s: %w", kd, name, errInterrupted)
	}
	if _, err := setOverride(ctx, e, kd, name, enginepb.OverrideState_OVERRIDE_DISABLED); err != nil {
		return fmt.Errorf("drain: %w; %s is left at weight 0 (override drain)", err, r.Target)
	}
	say(w, 2, fmt.Sprintf("Drained: %s is disabled. `override %s state default %s` brings it back.", r.Target, kd, name))
	return nil
}

// activeConns sums the active connections of the target's destinations.
func activeConns(ctx context.Context, e *env, kd, name string) (int, int, error) {
	r, err := call(ctx, e, "drain", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.VserversResponse, error) {
		return c.Vservers(ctx, &enginepb.VserversRequest{})
	})
	if err != nil {
		return 0, 0, err
	}
	n, dests := 0, 0
	for _, v := range r.Vservers {
		for _, s := range v.Services {
			for _, d := range s.Destinations {
				if kd == "backend" && d.Backend == name || kd == "destination" && d.Name == name {
					n += int(d.ActiveConnections)
					dests++
				}
			}
		}
	}
	return n, dests, nil
}
