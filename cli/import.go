package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seesawlb/seesaw/engine/config"
	"github.com/seesawlb/seesaw/engine/config/keepalived"
)

// addImportCommand mounts "config import" under the tree's "config"
// command (or a new one if the tree has none), so that root.go needs one
// line for it.
func addImportCommand(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() == "config" {
			c.AddCommand(newConfigImportCommand())
			return
		}
	}
	cfg := &cobra.Command{Use: "config", Short: "Configuration commands", Args: cobra.NoArgs}
	cfg.AddCommand(newConfigImportCommand())
	root.AddCommand(cfg)
}

func newConfigImportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Translate another load balancer's configuration into Seesaw's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newImportKeepalivedCommand())
	return cmd
}

type importOptions struct {
	out          string
	name         string
	clusterVIP   []string
	fwmarks      []string
	configID     string
	peerConfigID string
	force        bool
}

func newImportKeepalivedCommand() *cobra.Command {
	o := &importOptions{}
	cmd := &cobra.Command{
		Use:   "keepalived FILE [PEER_FILE] --out DIR",
		Short: "Write cluster.pb and seesaw.cfg from a keepalived configuration",
		Long: `keepalived reads a keepalived.conf (and the files it includes) and writes a
Seesaw configuration for the same pair:

  DIR/cluster.pb        the cluster: one for both nodes
  DIR/seesaw.cfg        the seesaw.cfg of the node FILE belongs to
  DIR/peer/seesaw.cfg   the seesaw.cfg of its peer, when the peer's address is
                        known (from PEER_FILE, or FILE's unicast_peer)

so that on a keepalived node "--out /etc/seesaw" gives that node what it needs,
and DIR/cluster.pb with DIR/peer/seesaw.cfg go to the other node. PEER_FILE,
the other node's keepalived.conf, is needed when the pair uses multicast
(its address appears nowhere else); it also brings the peer's own priority
and interfaces. One file with conditional lines (@lb1 ...) serves both
nodes: give it twice with --config-id and --peer-config-id.

What maps: virtual_server ADDR PORT (protocol, lb_algo/lvs_sched rr wrr lc
wlc sh mh, lb_kind/lvs_method DR -> DSR, TUN -> TUN, NAT -> NAT without
source NAT, persistence_timeout, ops, inhibit_on_failure -> quiescent) and
virtual_server fwmark N when --fwmark says which VIPs and ports the firewall
rules mark (a use_fwm vserver; Seesaw marks the packets itself), its
real_servers (weight) and their TCP_CHECK, HTTP_GET, SSL_GET, DNS_CHECK,
UDP_CHECK and PING_CHECK (connect_port, url path and status_code,
connect_timeout, delay_loop, retry); the vrrp_instance's virtual_router_id
(-> vrid), virtual_ipaddress, interface, use_vmac, unicast_src_ip,
mcast_src_ip and unicast_peer (-> node and peer addresses).

keepalived has no cluster VIP; the first virtual_ipaddress of each family
that carries no virtual_server becomes it. When every VIP carries one, give
an address of its own with --cluster-vip (NAT backends route through it).
A virtual_ipaddress on another link than the VIPs (its dev) whose subnet
holds real servers of a NAT virtual_server is those backends' floating
gateway: it becomes [nat_gateway] in seesaw.cfg, with that dev.

Everything else is listed, one line per statement with its file:line and
the reason, on stdout and at the end of cluster.pb: scripts (vrrp_script,
track_script, notify, MISC_CHECK), authentication, sorry_server, quorum,
virtual_server_group, fwmark virtual servers without --fwmark, advert_int other than 1,
priorities that disagree with Seesaw's (the lower IPv4 address is master).
Both seesaw.cfg files are checked against cluster.pb as "config check"
does before anything is written; existing files are kept unless --force.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImportKeepalived(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "directory to write cluster.pb and seesaw.cfg to (required)")
	f.StringVar(&o.name, "name", "", "cluster name (default: the first vrrp_instance's name)")
	f.StringSliceVar(&o.clusterVIP, "cluster-vip", nil, "cluster VIP ADDR/LEN, one per family (default: a VIP with no virtual_server)")
	f.StringArrayVar(&o.fwmarks, "fwmark", nil, `what a "virtual_server fwmark N" balances: "N ADDR [ADDR6] PROTO/PORT...", e.g. "7 192.0.2.30 tcp/80 tcp/443" (repeatable)`)
	f.StringVar(&o.configID, "config-id", "", "config id of FILE's node for @conditional lines (keepalived -i)")
	f.StringVar(&o.peerConfigID, "peer-config-id", "", "config id of PEER_FILE's node")
	f.BoolVar(&o.force, "force", false, "overwrite existing files")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// appendErrs adds err, or each of the errors it holds, to errs.
func appendErrs(errs config.Errors, err error) config.Errors {
	var many config.Errors
	switch {
	case err == nil:
	case errors.As(err, &many):
		errs = append(errs, many...)
	default:
		errs = append(errs, err)
	}
	return errs
}

func runImportKeepalived(out, errOut io.Writer, args []string, o *importOptions) error {
	fail := func(err error) error {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(errOut, e)
			}
			return fmt.Errorf("import keepalived: %d error(s) found", len(errs))
		}
		return fmt.Errorf("import keepalived: %w", err)
	}
	var vips []netip.Prefix
	for _, s := range o.clusterVIP {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("import keepalived: --cluster-vip %q: want ADDR/LEN, e.g. 192.0.2.4/24", s)
		}
		if slices.ContainsFunc(vips, func(q netip.Prefix) bool { return q.Addr().Is4() == p.Addr().Is4() }) {
			return fmt.Errorf("import keepalived: --cluster-vip: one address per family")
		}
		vips = append(vips, p)
	}
	// Parse errors do not stop the import's own checks: an operator fixes
	// every line in one pass. Errors without a line (say, "no
	// vrrp_instance") may be consequences of a parse error and are left
	// out then.
	var errs config.Errors
	var fwmarks []keepalived.FWMark
	for _, s := range o.fwmarks {
		fm, err := keepalived.ParseFWMark(s)
		if err != nil {
			return fmt.Errorf("import keepalived: --fwmark %w", err)
		}
		fwmarks = append(fwmarks, fm)
	}
	self, perr := keepalived.ParseFile(args[0], keepalived.Options{ConfigID: o.configID})
	errs = appendErrs(errs, perr)
	var peer *keepalived.Input
	if len(args) == 2 {
		ps, err := keepalived.ParseFile(args[1], keepalived.Options{ConfigID: o.peerConfigID})
		errs = appendErrs(errs, err)
		peer = &keepalived.Input{Stmts: ps}
	}
	r, err := keepalived.Import(keepalived.Input{Stmts: self}, peer, keepalived.ImportOptions{Name: o.name, ClusterVIP: vips, FWMarks: fwmarks})
	if len(errs) > 0 {
		var withLine config.Errors
		var ierrs config.Errors
		if errors.As(err, &ierrs) {
			for _, e := range ierrs {
				if is, ok := e.(config.Issue); ok && is.Line > 0 && !slices.ContainsFunc(errs, func(x error) bool { return x.Error() == e.Error() }) {
					withLine = append(withLine, e)
				}
			}
		}
		errs = append(errs, withLine...)
		slices.SortStableFunc(errs, func(a, b error) int {
			ia, _ := a.(config.Issue)
			ib, _ := b.(config.Issue)
			if c := strings.Compare(ia.File, ib.File); c != 0 {
				return c
			}
			return ia.Line - ib.Line
		})
		return fail(errs)
	}
	if err != nil {
		return fail(err)
	}

	files := r.Files(strings.Join(args, ", "))
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	})
	// Check before writing: a config that config check refuses must not
	// land in /etc/seesaw.
	for _, n := range names {
		if filepath.Base(n) != "seesaw.cfg" {
			continue
		}
		res := config.CheckData(filepath.Join(o.out, n), files[n], filepath.Join(o.out, "cluster.pb"), files["cluster.pb"])
		if err := res.Err(); err != nil {
			return fail(fmt.Errorf("the generated configuration fails config check (a bug in the importer):\n%w", err))
		}
	}
	if !o.force {
		for _, n := range names {
			p := filepath.Join(o.out, n)
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("import keepalived: %s exists; remove it or use --force", p)
			}
		}
	}
	for _, n := range names {
		p := filepath.Join(o.out, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("import keepalived: %w", err)
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return fmt.Errorf("import keepalived: %w", err)
		}
		fmt.Fprintf(out, "wrote %s\n", p)
	}
	if len(r.Engines) < 2 {
		fmt.Fprintln(out, "note: the peer's address is unknown (multicast VRRP); give its keepalived.conf as PEER_FILE for a pair")
	}
	if len(r.Unmapped) == 0 {
		fmt.Fprintln(out, "Everything was imported.")
		return nil
	}
	fmt.Fprintf(out, "Not imported (%d):\n", len(r.Unmapped))
	for _, u := range r.Unmapped {
		fmt.Fprintf(out, "  %s\n", u)
	}
	return nil
}
