package cli

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
)

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }

// kind is a kind of name that commands take.
type kind int

const (
	kindVserver kind = iota
	kindBackend
	kindDestination
	kindVLAN
	kindNode
)

// engineNames asks the engine for the names of one kind.
func engineNames(ctx context.Context, e *env, k kind) []string {
	c, err := e.client()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var out []string
	switch k {
	case kindVserver, kindDestination:
		r, err := c.Vservers(ctx, &enginepb.VserversRequest{})
		if err != nil {
			return nil
		}
		for _, v := range r.Vservers {
			if k == kindVserver {
				out = append(out, v.Name)
				continue
			}
			for _, s := range v.Services {
				for _, d := range s.Destinations {
					out = append(out, d.Name)
				}
			}
		}
	case kindBackend:
		r, err := c.Backends(ctx, &enginepb.BackendsRequest{})
		if err != nil {
			return nil
		}
		for _, b := range r.Backends {
			out = append(out, b.Fqdn)
		}
	case kindVLAN:
		r, err := c.VLANs(ctx, &enginepb.VLANsRequest{})
		if err != nil {
			return nil
		}
		for _, v := range r.Vlans {
			out = append(out, strconv.Itoa(int(v.Id)))
		}
	case kindNode:
		r, err := c.ClusterStatus(ctx, &enginepb.ClusterStatusRequest{})
		if err != nil {
			return nil
		}
		for _, n := range r.Nodes {
			out = append(out, n.Fqdn)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// names completes the first argument with the engine's names of the given
// kinds (for the shells' completion and the interactive shell's Tab).
func names(e *env, kinds ...kind) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		var out []cobra.Completion
		for _, k := range kinds {
			for _, n := range engineNames(ctx, e, k) {
				if strings.HasPrefix(n, toComplete) {
					out = append(out, n)
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
