package cli

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/seesawlb/seesaw/engine/config"
	"github.com/spf13/cobra"
)

// Default config file locations, as in Seesaw v2.
const (
	DefaultEngineConfig  = "/etc/seesaw/seesaw.cfg"
	DefaultClusterConfig = "/etc/seesaw/cluster.pb"
)

func newConfigCommand(e *env) *cobra.Command {
	return group("config", "Configuration: check, diff, reload, source, status",
		newConfigCheckCommand(), newConfigDiffCommand(e), newConfigReloadCommand(e),
		newConfigSourceCommand(e), newConfigStatusCommand(e))
}

func newConfigCheckCommand() *cobra.Command {
	var conf, cluster string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate seesaw.cfg and cluster.pb without a running engine",
		Long: "check loads seesaw.cfg and cluster.pb, validates each and checks them against\n" +
			"each other. It prints a summary and exits 0, or prints every error found, one\n" +
			"per line, to stderr and exits non-zero. It needs no running daemon.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := config.Check(conf, cluster)
			if err := r.Err(); err != nil {
				w := cmd.ErrOrStderr()
				for _, e := range r.Errors {
					fmt.Fprintln(w, e)
				}
				for _, wn := range r.Warnings {
					fmt.Fprintln(w, "warning:", wn)
				}
				return fmt.Errorf("config check: %d error(s) found", len(r.Errors))
			}
			return writeSummary(cmd.OutOrStdout(), r)
		},
	}
	cmd.Flags().StringVar(&conf, "conf", DefaultEngineConfig, "seesaw.cfg to check")
	cmd.Flags().StringVar(&cluster, "cluster", DefaultClusterConfig, "cluster.pb to check")
	return cmd
}

// writeSummary prints a one-screen summary of a config that passed Check.
func writeSummary(out io.Writer, r *config.Result) error {
	e, c := r.Engine, r.Cluster
	var b strings.Builder
	fmt.Fprintf(&b, "Cluster %q: configuration OK\n", e.ClusterName)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  seesaw.cfg:\t%s\n", e.File)
	fmt.Fprintf(tw, "  cluster.pb:\t%s\n", c.File)
	ha := "HA disabled"
	if c.HAEnabled {
		ha = "HA enabled"
	}
	fmt.Fprintf(tw, "  Cluster VIP:\t%s (%s, %s)\n", hostAddrs(c.VIP, true), c.VIP.Status, ha)
	fmt.Fprintf(tw, "  This node:\t%s\n", nodeLine(r.ThisNode))
	fmt.Fprintf(tw, "  Peer:\t%s\n", nodeLine(r.Peer))
	fmt.Fprintf(tw, "  VRRP:\tVRID %d, VMAC %s (use_vmac %t)\n", e.VRID, e.VMAC(), e.UseVMAC)
	fmt.Fprintf(tw, "  Interfaces:\tnode %s, lb %s\n", e.NodeInterface, e.LBInterface)
	fmt.Fprintf(tw, "  Anycast:\t%s (anycast_enabled)\n", enabled(e.AnycastEnabled))
	tw.Flush()

	b.WriteString("\nNodes:\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PRIORITY\tNODE\tADDRESSES\tSTATUS\tENABLED\tROLE")
	for _, n := range c.Nodes {
		role := ""
		switch n {
		case r.ThisNode:
			role = "this node"
		case r.Peer:
			role = "peer"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", n.Priority, n.FQDN, hostAddrs(n.Host, true), n.Status, nodeFlags(n), role)
	}
	tw.Flush()

	b.WriteString("\nVservers:\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tVIP\tENTRIES\tBACKENDS\tCHECKS\tSTATE")
	for _, v := range c.Vservers {
		var vips []string
		for _, a := range v.Address.Addrs() {
			s := a.String()
			if t := c.ClassifyVIP(a, e.AnycastRanges); t != config.UnicastVIP {
				s += " (" + t.String() + ")"
			}
			vips = append(vips, s)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%s\n", v.Name, strings.Join(vips, ", "), len(v.Entries), len(v.Backends), v.CheckCount(), enabled(v.Enabled))
	}
	tw.Flush()

	n := c.Counts()
	fmt.Fprintf(&b, "\nTotals: %d nodes, %d vservers, %d entries, %d backends, %d checks, %d warnings\n",
		n.Nodes, n.Vservers, n.Entries, n.Backends, n.Checks, len(r.Warnings))
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	// Padding of an empty last column leaves trailing blanks; drop them.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(out, strings.Join(lines, "\n"))
	return err
}

func nodeLine(n *config.Node) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprintf("%s (%s), priority %d", n.FQDN, hostAddrs(n.Host, false), n.Priority)
}

// hostAddrs lists a host's addresses, with their prefix lengths if withLen.
func hostAddrs(h config.Host, withLen bool) string {
	var s []string
	for _, p := range []netip.Prefix{h.IPv4, h.IPv6} {
		switch {
		case !p.IsValid():
		case withLen:
			s = append(s, p.String())
		default:
			s = append(s, p.Addr().String())
		}
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func nodeFlags(n *config.Node) string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{{n.HAEnabled, "ha"}, {n.VserversEnabled, "vservers"}, {n.AnycastEnabled, "anycast"}, {n.BGPEnabled, "bgp"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	if len(f) == 0 {
		return "none"
	}
	return strings.Join(f, ",")
}

func enabled(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}
