package cli

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/view"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

func newShowCommand(e *env) *cobra.Command {
	return group("show", "Show the state of the cluster",
		showCmd(e, "backends [<fqdn-prefix>]", "Backends; one match: its destinations", names(e, kindBackend), showBackends),
		group("bgp", "BGP", showCmd(e, "neighbors [<ip>]", "BGP neighbors", nil, showBGP)),
		showCmd(e, "destinations [<name-prefix>]", "Destinations (<vserver>/<ip:port>/<proto>); one match: its detail", names(e, kindDestination), showDestinations),
		showCmd(e, "ha", "This node's HA state and VRRP counters", nil, showHA),
		showCmd(e, "healthchecks [<vserver>|<backend>]", "Health checks: state, last result and recent history", names(e, kindVserver, kindBackend), showChecks),
		showCmd(e, "nodes [<fqdn>]", "The cluster's nodes; one match: its detail", names(e, kindNode), showNodes),
		showCmd(e, "stats [<vserver-prefix>]", "IPVS counters and rates per vserver, service and destination", names(e, kindVserver), showStats),
		showCmd(e, "version", "Every daemon's version and uptime", nil, showVersion),
		showCmd(e, "vlans [<id>|<ip>]", "VLAN interfaces; one match: its detail", names(e, kindVLAN), showVLANs),
		showCmd(e, "vservers [<name-prefix>]", "Vservers; one match: its detail (services, destinations)", names(e, kindVserver), showVservers),
		showCmd(e, "warnings", "What is wrong, worst first: down, degraded, overridden, config warnings", nil, showWarnings),
	)
}

// showFunc renders one show command: arg is its optional argument.
type showFunc func(ctx context.Context, e *env, w io.Writer, arg string, asJSON bool) error

func showCmd(e *env, use, short string, comp cobra.CompletionFunc, f showFunc) *cobra.Command {
	var asJSON bool
	n := 0
	if strings.Contains(use, "[") {
		n = 1
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  maxArgs(n, "at most one "+strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(use+" ", " ", 2)[1], "["), "] ")),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := ""
			if len(args) > 0 {
				arg = args[0]
			}
			return f(cmd.Context(), e, cmd.OutOrStdout(), arg, asJSON)
		},
	}
	if n == 0 {
		c.Args = noArgs
	}
	if comp != nil {
		c.ValidArgsFunction = comp
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (the engine's messages, proto field names)")
	return c
}

func showVservers(ctx context.Context, e *env, w io.Writer, arg string, asJSON bool) error {
	resp, err := call(ctx, e, "show vservers", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.VserversResponse, error) {
		return c.Vservers(ctx, &enginepb.VserversRequest{Name: arg})
	})
	if err != nil {
		return err
	}
	// An exact name is that one vserver, even when it prefixes others.
	if arg != "" {
		for _, v := range resp.Vservers {
			if v.Name == arg {
				resp.Vservers = []*enginepb.VserverStatus{v}
				break
			}
		}
	}
	if asJSON {
		return writeJSON(w, resp)
	}
	vs := view.Vservers(resp.Vservers)
	if arg != "" && len(vs) == 0 {
		return fmt.Errorf("show vservers: no vserver named %q or starting so", arg)
	}
	if len(vs) == 1 && arg != "" {
		e.vserverDetail(w, vs[0])
		return nil
	}
	if len(vs) == 0 {
		fmt.Fprintln(w, "No vservers.")
		return nil
	}
	t := newTable([]string{"VSERVER", "STATE", "ADDRESS", "SERVICES", "HEALTHY", "OVERRIDE"})
	for _, v := range vs {
		addr := ""
		if len(v.Addresses) > 0 {
			addr = v.Addresses[0]
			if len(v.Addresses) > 1 {
				addr += " +v6"
			}
		}
		t.srow(v.Severity, 1, v.Name, v.State, addr, strconv.Itoa(len(v.Services)), fmt.Sprintf("%d/%d", v.Healthy, v.Total), v.Override.Word)
	}
	t.write(w, e.opts.Color)
	fmt.Fprintln(w, view.Summarize(vs))
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func enabledWord(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

func (e *env) vserverDetail(w io.Writer, v view.Vserver) {
	title := "Vserver " + v.Name
	if v.FQDN != "" {
		title += " (" + v.FQDN + ")"
	}
	fmt.Fprintln(w, title)
	ov := "none"
	if v.Override.Word != "" {
		ov = v.Override.Word
	}
	fmt.Fprintf(w, "  Status:     %s (override %s; config %s)\n", e.word(v.State, v.Severity), ov, enabledWord(v.ConfigEnabled))
	if v.Override.Word != "" && v.Override.SetBy != "" {
		by := "  Override:   set by " + v.Override.SetBy
		if !v.Override.SetAt.IsZero() {
			by += " at " + v.Override.SetAt.UTC().Format(time.RFC3339)
		}
		say(w, 14, by)
	}
	fmt.Fprintf(w, "  Addresses:  %s\n", strings.Join(v.Addresses, ", "))
	for _, vip := range v.VIPs {
		fmt.Fprintf(w, "  VIP:        %s on %s (%s), %s\n", vip.Address, vip.Interface, vip.Placement, vip.State)
	}
	for _, s := range v.Services {
		fmt.Fprintf(w, "  Service %s %s\n", s.Family, s.Name)
		fmt.Fprintf(w, "    Mode:       %s, scheduler %s, persistence %ds, one-packet %s\n", s.Mode, s.Scheduler, s.Persistence, yesNo(s.OnePacket))
		fmt.Fprintf(w, "    State:      %s (enabled %s, healthy %s, active %s)\n", e.word(s.State, s.Severity), yesNo(s.Enabled), yesNo(s.Healthy), yesNo(s.Active))
		fmt.Fprintf(w, "    Watermarks: low %.2f, high %.2f, current %.2f (%d of %d destinations healthy)\n",
			s.Low, s.High, s.Current, s.HealthyDests, s.InServiceDest)
		if s.Stats.Known {
			fmt.Fprintf(w, "    Traffic:    %s connections, %s, %s in, %s out\n", view.Count(s.Stats.Connections),
				view.Rate(s.Stats.CPS)+" new", view.Rate(s.Stats.PPSIn)+" pkts", view.Rate(s.Stats.PPSOut)+" pkts")
		}
		t := newTable([]string{"    DESTINATION", "BACKEND", "WEIGHT", "STATE", "ACTIVE", "INACT", "CPS"})
		for _, d := range s.Destinations {
			t.srow(d.Severity, 3, "    "+d.Address, d.Backend, strconv.Itoa(int(d.Weight)), d.State,
				strconv.Itoa(int(d.ActiveConns)), strconv.Itoa(int(d.InactiveConns)), view.Rate(d.Stats.CPS))
		}
		t.write(w, e.opts.Color)
		for _, d := range s.Destinations {
			for _, f := range d.FailingChecks {
				say(w, 6, fmt.Sprintf("    %s failing: %s", d.Address, f))
			}
		}
	}
	for _, wn := range v.Warnings {
		say(w, 4, "  Warning: "+wn)
	}
}

func showBackends(ctx context.Context, e *env, w io.Writer, arg string, asJSON bool) error {
	resp, err := call(ctx, e, "show backends", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.BackendsResponse, error) {
		return c.Backends(ctx, &enginepb.BackendsRequest{Fqdn: arg})
	})
	if err != nil {
		return err
	}
	if arg != "" {
		for _, b := range resp.Backends {
			if b.Fqdn == arg {
				resp.Backends = []*enginepb.BackendStatus{b}
				break
			}
		}
	}
	if asJSON {
		return writeJSON(w, resp)
	}
	bs := view.Backends(resp.Backends)
	if arg != "" && len(bs) == 0 {
		return fmt.Errorf("show backends: no backend named %q or starting so", arg)
	}
	if len(bs) == 1 && arg != "" {
		b := bs[0]
		fmt.Fprintf(w, "Backend %s\n", b.FQDN)
		fmt.Fprintf(w, "  Status:       %s (override %s; config %s)\n", e.word(b.State, b.Severity), cmpOr(b.Override.Word, "none"), enabledWord(b.ConfigEnabled))
		fmt.Fprintf(w, "  Addresses:    %s\n", strings.Join(b.Addresses, ", "))
		fmt.Fprintf(w, "  Destinations: %d healthy, %d active of %d\n", b.Healthy, b.Active, len(b.Destinations))
		vs, err := call(ctx, e, "show backends", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.VserversResponse, error) {
			return c.Vservers(ctx, &enginepb.VserversRequest{})
		})
		if err != nil {
			return err
		}
		var ds []view.Destination
		for _, d := range view.Destinations(view.Vservers(vs.Vservers)) {
			if d.Backend == b.FQDN {
				ds = append(ds, d)
			}
		}
		writeDestinations(e, w, ds)
		return nil
	}
	t := newTable([]string{"BACKEND", "STATE", "ADDRESS", "HEALTHY", "ACTIVE", "OVERRIDE"})
	for _, b := range bs {
		addr := ""
		if len(b.Addresses) > 0 {
			addr = b.Addresses[0]
			if len(b.Addresses) > 1 {
				addr += " +v6"
			}
		}
		t.srow(b.Severity, 1, b.FQDN, b.State, addr, fmt.Sprintf("%d/%d", b.Healthy, len(b.Destinations)),
			strconv.Itoa(b.Active), b.Override.Word)
	}
	t.write(w, e.opts.Color)
	return nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func writeDestinations(e *env, w io.Writer, ds []view.Destination) {
	t := newTable([]string{"DESTINATION", "WEIGHT", "STATE", "ACTIVE", "INACT", "OVERRIDE"})
	for _, d := range ds {
		t.srow(d.Severity, 2, d.Name, strconv.Itoa(int(d.Weight)), d.State, strconv.Itoa(int(d.ActiveConns)), strconv.Itoa(int(d.InactiveConns)), d.Override)
	}
	t.write(w, e.opts.Color)
}

func showDestinations(ctx context.Context, e *env, w io.Writer, arg string, asJSON bool) error {
	resp, err := call(ctx, e, "show destinations", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.VserversResponse, error) {
		return c.Vservers(ctx, &enginepb.VserversRequest{})
	})
	if err != nil {
		return err
	}
	var ds []view.Destination
	exact := -1
	for _, d := range view.Destinations(view.Vservers(resp.Vservers)) {
		if strings.HasPrefix(d.Name, arg) {
			if d.Name == arg {
				exact = len(ds)
			}
			ds = append(ds, d)
		}
	}
	if exact >= 0 {
		ds = ds[exact : exact+1]
	}
	if asJSON {
		var out []*enginepb.DestinationStatus
		want := map[string]bool{}
		for _, d := range ds {
			want[d.Name] = true
		}
		for _, v := range resp.Vservers {
			for _, s := range v.Services {
				for _, d := range s.Destinations {
					if want[d.Name] {
						out = append(out, d)
					}
				}
			}
		}
		return writeJSONList(w, out)
	}
	if arg != "" && len(ds) == 0 {
		return fmt.Errorf("show destinations: no destination named %q or starting so", arg)
	}
	if len(ds) == 1 && arg != "" {
		d := ds[0]
		fmt.Fprintf(w, "Destination %s\n", d.Name)
		fmt.Fprintf(w, "  State:       %s (enabled %s, healthy %s, active %s)\n", e.word(d.State, d.Severity), yesNo(d.Enabled), yesNo(d.Healthy), yesNo(d.Active))
		fmt.Fprintf(w, "  Backend:     %s\n", d.Backend)
		fmt.Fprintf(w, "  Service:     %s\n", d.Service)
		fmt.Fprintf(w, "  Weight:      %d\n", d.Weight)
		fmt.Fprintf(w, "  Override:    %s\n", cmpOr(d.Override, "none"))
		fmt.Fprintf(w, "  Connections: %d active, %d inactive, %d persistent\n", d.ActiveConns, d.InactiveConns, d.PersistentConns)
		for _, f := range d.FailingChecks {
			say(w, 15, "  Failing:     "+f)
		}
		return nil
	}
	writeDestinations(e, w, ds)
	return nil
}

func showHA(ctx context.Context, e *env, w io.Writer, _ string, asJSON bool) error {
	st, err := call(ctx, e, "show ha", func(ctx context.Context, c enginepb.EngineClient) (*hapb.Status, error) {
		return c.HAStatus(ctx, &enginepb.HAStatusRequest{})
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(w, st)
	}
	now := e.now()
	sev := view.OK
	if st.State != seesawpb.HAState_HA_STATE_LEADER && st.State != seesawpb.HAState_HA_STATE_BACKUP {
		sev = view.Down
	}
	fmt.Fprintf(w, "HA state:     %s", e.word(view.HAWord(st.State), sev))
	if st.Since != nil {
		fmt.Fprintf(w, " for %s (since %s)", view.Age(st.Since.AsTime(), now), st.Since.AsTime().UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Transitions:  %d\n", st.Transitions)
	fmt.Fprintf(w, "Adverts:      %d sent, %d received\n", st.AdvertsSent, st.AdvertsReceived)
	if st.MasterAddress != "" {
		fmt.Fprintf(w, "Master:       %s (priority %d)\n", st.MasterAddress, st.MasterPriority)
	}
	if st.LastUpdate != nil {
		fmt.Fprintf(w, "Last update:  %s ago\n", view.Age(st.LastUpdate.AsTime(), now))
	}
	if st.SendErrors+st.ReceiveErrors > 0 {
		fmt.Fprintf(w, "Errors:       %d send, %d receive; last: %s\n", st.SendErrors, st.ReceiveErrors, st.LastError)
	}
	for _, f := range st.Facilities {
		if !f.Available {
			fmt.Fprintf(w, "Missing:      %s: %s\n", f.Name, f.Detail)
		}
	}
	if st.Warning != "" {
		say(w, 14, "Warning:      "+st.Warning)
	}
	return nil
}

func showNodes(ctx context.Context, e *env, w io.Writer, arg string, asJSON bool) error {
	cs, err := call(ctx, e, "show nodes", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.ClusterStatusResponse, error) {
		return c.ClusterStatus(ctx, &enginepb.ClusterStatusRequest{})
	})
	if err != nil {
		return err
	}
	var nodes []*enginepb.Node
	for _, n := range cs.Nodes {
		if strings.HasPrefix(n.Fqdn, arg) {
			nodes = append(nodes, n)
		}
		if n.Fqdn == arg {
			nodes = []*enginepb.Node{n}
			break
		}
	}
	if asJSON {
		return writeJSONList(w, nodes)
	}
	if arg != "" && len(nodes) == 0 {
		return fmt.Errorf("show nodes: no node named %q or starting so", arg)
	}
	if len(nodes) == 1 && arg != "" {
		n := nodes[0]
		fmt.Fprintf(w, "Node %s\n", n.Fqdn)
		fmt.Fprintf(w, "  IPv4:             %s\n  IPv6:             %s\n  Priority:         %d\n", cmpOr(n.Ipv4, "-"), cmpOr(n.Ipv6, "-"), n.Priority)
		fmt.Fprintf(w, "  HA:               %s\n  Anycast:          %s\n  BGP:              %s\n  Vservers:         %s\n",
			enabledWord(n.HaEnabled), enabledWord(n.AnycastEnabled), enabledWord(n.BgpEnabled), enabledWord(n.VserversEnabled))
		if n.ThisNode {
			fmt.Fprintf(w, "  This node:        yes, %s\n", view.HAWord(cs.HaState))
		}
		return nil
	}
	t := newTable([]string{"NODE", "IPV4", "PRIORITY", "HA", "VSERVERS", ""})
	for _, n := range nodes {
		this := ""
		if n.ThisNode {
			this = "this node (" + view.HAWord(cs.HaState) + ")"
		}
		t.row(n.Fqdn, cmpOr(n.Ipv4, "-"), strconv.Itoa(int(n.Priority)), enabledWord(n.HaEnabled), enabledWord(n.VserversEnabled), this)
	}
	t.write(w, e.opts.Color)
	return nil
}

func showVLANs(ctx context.Context, e *env, w io.Writer, arg string, asJSON bool) error {
	resp, err := call(ctx, e, "show vlans", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.VLANsResponse, error) {
		return c.VLANs(ctx, &enginepb.VLANsRequest{})
	})
	if err != nil {
		return err
	}
	var vl []*enginepb.VLANStatus
	for _, v := range resp.Vlans {
		if arg == "" || strconv.Itoa(int(v.Id)) == arg || inVLAN(v, arg) {
			vl = append(vl, v)
		}
	}
	slices.SortFunc(vl, func(a, b *enginepb.VLANStatus) int { return int(a.Id) - int(b.Id) })
	if asJSON {
		return writeJSONList(w, vl)
	}
	if arg != "" && len(vl) == 0 {
		return fmt.Errorf("show vlans: no VLAN with id or subnet %q", arg)
	}
	if len(vl) == 1 && arg != "" {
		v := vl[0]
		fmt.Fprintf(w, "VLAN %d (%s)\n", v.Id, v.Fqdn)
		fmt.Fprintf(w, "  IPv4:     %s\n  IPv6:     %s\n", cmpOr(v.Ipv4, "-"), cmpOr(v.Ipv6, "-"))
		fmt.Fprintf(w, "  Backends: %d IPv4, %d IPv6\n  VIPs:     %d IPv4, %d IPv6\n", v.BackendsV4, v.BackendsV6, v.VipsV4, v.VipsV6)
		return nil
	}
	if len(vl) == 0 {
		fmt.Fprintln(w, "No VLANs.")
		return nil
	}
	t := newTable([]string{"VLAN", "IPV4", "IPV6", "BACKENDS", "VIPS", "HOST"})
	t.flex = 5
	for _, v := range vl {
		t.row(strconv.Itoa(int(v.Id)), cmpOr(v.Ipv4, "-"), cmpOr(v.Ipv6, "-"),
			strconv.Itoa(int(v.BackendsV4+v.BackendsV6)), strconv.Itoa(int(v.VipsV4+v.VipsV6)), v.Fqdn)
	}
	t.write(w, e.opts.Color)
	return nil
}

// inVLAN: arg is an address in the VLAN's subnet, or its own address.
func inVLAN(v *enginepb.VLANStatus, arg string) bool {
	a, err := netip.ParseAddr(arg)
	if err != nil {
		return false
	}
	for _, p := range []string{v.Ipv4, v.Ipv6} {
		if pp, err := netip.ParsePrefix(p); err == nil && pp.Contains(a) {
			return true
		}
		if pa, err := netip.ParseAddr(p); err == nil && pa == a {
			return true
		}
	}
	return false
}

func showWarnings(ctx context.Context, e *env, w io.Writer, _ string, asJSON bool) error {
	cs, err := call(ctx, e, "show warnings", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.ConfigStatusResponse, error) {
		return c.ConfigStatus(ctx, &enginepb.ConfigStatusRequest{})
	})
	if err != nil {
		return err
	}
	vs, err := call(ctx, e, "show warnings", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.VserversResponse, error) {
		return c.Vservers(ctx, &enginepb.VserversRequest{})
	})
	if err != nil {
		vs = &enginepb.VserversResponse{} // no plan yet: the config's warnings still count
	}
	warnings := slices.Clone(cs.Warnings)
	if cs.LastError != "" {
		warnings = append([]string{"the last config was rejected (the running one keeps serving): " + cs.LastError}, warnings...)
	}
	probs := view.Problems(view.Vservers(vs.Vservers), warnings)
	if asJSON {
		type problem struct {
			Severity string `json:"severity"`
			Object   string `json:"object"`
			What     string `json:"what"`
		}
		out := []problem{}
		for _, p := range probs {
			out = append(out, problem{p.Severity.String(), p.Object, p.What})
		}
		return writeJSONValue(w, out)
	}
	if len(probs) == 0 {
		fmt.Fprintln(w, "No warnings.")
		return nil
	}
	for _, p := range probs {
		text := fmt.Sprintf("%-8s %s: %s", p.Severity, p.Object, p.What)
		if e.opts.Color {
			// Wrap the plain text, then colour the severity word.
			var b strings.Builder
			say(&b, 9, text)
			out := b.String()
			fmt.Fprint(w, e.word(out[:8], p.Severity)+out[8:])
			continue
		}
		say(w, 9, text)
	}
	return nil
}

func showBGP(ctx context.Context, e *env, w io.Writer, arg string, asJSON bool) error {
	cs, err := call(ctx, e, "show bgp neighbors", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.ClusterStatusResponse, error) {
		return c.ClusterStatus(ctx, &enginepb.ClusterStatusRequest{})
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSONValue(w, map[string]any{"neighbors": []any{}})
	}
	bgp := false
	for _, n := range cs.Nodes {
		if n.ThisNode {
			bgp = n.BgpEnabled
		}
	}
	if arg != "" {
		return fmt.Errorf("show bgp neighbors: no neighbor %s: this node has no BGP sessions", arg)
	}
	if !bgp {
		say(w, 0, "No BGP neighbors: BGP is disabled for this node in cluster.pb.")
		return nil
	}
	say(w, 0, "No BGP neighbors: this appliance runs no BGP speaker of its own; anycast VIPs are placed on dummy0 for a routing daemon to announce.")
	return nil
}

func showChecks(ctx context.Context, e *env, w io.Writer, arg string, asJSON bool) error {
	get := func(req *enginepb.ChecksRequest) (*enginepb.ChecksResponse, error) {
		req.WithHistory = true
		return call(ctx, e, "show healthchecks", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.ChecksResponse, error) {
			return c.Checks(ctx, req)
		})
	}
	resp, err := get(&enginepb.ChecksRequest{Vserver: arg})
	if err != nil {
		return err
	}
	if arg != "" && len(resp.Checks) == 0 {
		if resp, err = get(&enginepb.ChecksRequest{Backend: arg}); err != nil {
			return err
		}
	}
	if asJSON {
		return writeJSON(w, resp)
	}
	if arg != "" && len(resp.Checks) == 0 {
		return fmt.Errorf("show healthchecks: no checks of a vserver or backend named %q or starting so", arg)
	}
	cs := view.Checks(resp.Checks)
	if len(cs) == 0 {
		fmt.Fprintln(w, "No health checks.")
		return nil
	}
	now := e.now()
	t := newTable([]string{"BACKEND / TARGET", "CHECK", "STATE", "LAST", "TOOK", "HISTORY", "MESSAGE"})
	t.flex = 6
	notes := map[string]bool{}
	backend := ""
	for _, c := range cs {
		if c.Backend != backend {
			backend = c.Backend
			t.row(backend)
		}
		last, took, msg := "-", "-", ""
		if c.Last != nil {
			last, took, msg = view.Age(c.Last.Time, now), view.Duration(c.Last.Duration), c.Last.Message
		}
		var h strings.Builder
		hist := c.History
		if len(hist) > 6 {
			hist = hist[len(hist)-6:]
		}
		for _, r := range hist {
			if r.Success {
				h.WriteByte('+')
			} else {
				h.WriteByte('-')
			}
		}
		if c.Note != "" {
			notes[c.Note] = true
		}
		t.srow(c.Severity, 2, "  "+c.Target, c.Name, c.State, last, took, cmpOr(h.String(), "-"), msg)
	}
	t.write(w, e.opts.Color)
	fmt.Fprintln(w, "HISTORY: the last runs, oldest first: + passed, - failed.")
	if arg != "" && len(cs) > 1 {
		// The messages whole, which the table may have cut.
		for _, c := range cs {
			if c.Last != nil && c.Last.Message != "" {
				say(w, 4, fmt.Sprintf("%s %s: %s", c.Target, c.Name, c.Last.Message))
			}
		}
	}
	for _, n := range slices.Sorted(mapKeys(notes)) {
		say(w, 2, "Note: "+n)
	}
	if len(cs) == 1 {
		c := cs[0]
		fmt.Fprintf(w, "Check %s of %s: %s %s, every %s, %d passed, %d failed in all\n", c.Name, c.Backend, c.Type, c.Mode, view.Duration(c.Interval), c.Successes, c.Failures)
		fmt.Fprintf(w, "Decides: %s\n", strings.Join(c.Destinations, ", "))
		for _, r := range c.History {
			res := "passed"
			if !r.Success {
				res = "failed"
			}
			fmt.Fprintf(w, "  %s  %s  %-6s %s\n", r.Time.UTC().Format("15:04:05"), res, view.Duration(r.Duration), r.Message)
		}
	}
	return nil
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func showStats(ctx context.Context, e *env, w io.Writer, arg string, asJSON bool) error {
	resp, err := call(ctx, e, "show stats", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.VserversResponse, error) {
		return c.Vservers(ctx, &enginepb.VserversRequest{Name: arg})
	})
	if err != nil {
		return err
	}
	if asJSON {
		// Only the counters: per service and destination, by name.
		out := &enginepb.VserversResponse{}
		for _, v := range resp.Vservers {
			cv := &enginepb.VserverStatus{Name: v.Name}
			for _, s := range v.Services {
				cs := &enginepb.ServiceStatus{Family: s.Family, Protocol: s.Protocol, Vip: s.Vip, Port: s.Port, Fwmark: s.Fwmark, Stats: s.Stats}
				for _, d := range s.Destinations {
					cs.Destinations = append(cs.Destinations, &enginepb.DestinationStatus{Name: d.Name, Stats: d.Stats,
						ActiveConnections: d.ActiveConnections, InactiveConnections: d.InactiveConnections, PersistentConnections: d.PersistentConnections})
				}
				cv.Services = append(cv.Services, cs)
			}
			out.Vservers = append(out.Vservers, cv)
		}
		return writeJSON(w, out)
	}
	vs := view.Vservers(resp.Vservers)
	if arg != "" && len(vs) == 0 {
		return fmt.Errorf("show stats: no vserver named %q or starting so", arg)
	}
	t := newTable([]string{"OBJECT", "CONNS", "CPS", "PKTS/S IN", "OUT", "BYTES/S IN", "OUT"})
	st := func(name string, s view.Stats, extra string) {
		if !s.Known {
			t.row(name, "-", "-", "-", "-", "-", "-")
			return
		}
		conns := view.Count(s.Connections)
		if extra != "" {
			conns = extra
		}
		t.row(name, conns, view.Count(s.CPS), view.Count(s.PPSIn), view.Count(s.PPSOut), view.Bytes(s.BPSIn), view.Bytes(s.BPSOut))
	}
	for _, v := range vs {
		st(v.Name, v.Stats, "")
		for _, s := range v.Services {
			st("  "+s.Name, s.Stats, "")
			for _, d := range s.Destinations {
				st("    "+d.Address, d.Stats, fmt.Sprintf("%s (%d act)", view.Count(d.Stats.Connections), d.ActiveConns))
			}
		}
	}
	t.write(w, e.opts.Color)
	say(w, 0, "CONNS counts connections since the service was created; rates are the kernel's estimates.")
	return nil
}

func showVersion(ctx context.Context, e *env, w io.Writer, _ string, asJSON bool) error {
	resp, err := call(ctx, e, "show version", func(ctx context.Context, c enginepb.EngineClient) (*enginepb.VersionsResponse, error) {
		return c.Versions(ctx, &enginepb.VersionsRequest{})
	})
	if err != nil {
		return err
	}
	// The daemons the engine does not talk to serve their status on their
	// own sockets, beside the engine's.
	runDir := filepath.Dir(filepath.Dir(e.opts.Engine))
	have := map[string]bool{}
	for _, c := range resp.Components {
		have[c.Component] = true
	}
	for _, name := range []string{"ha", "ecu", "watchdog"} {
		if have[name] || e.opts.Remote != "" {
			continue
		}
		st, err := componentStatus(ctx, filepath.Join(runDir, name, name+".sock"))
		if err != nil {
			resp.Unreachable = append(resp.Unreachable, name+": "+err.Error())
			continue
		}
		resp.Components = append(resp.Components, st)
	}
	cli := &seesawpb.ComponentStatus{Component: "cli", Version: ipc.Version, Pid: int32(os.Getpid())}
	resp.Components = append([]*seesawpb.ComponentStatus{cli}, resp.Components...)
	if asJSON {
		for _, c := range resp.Components {
			c.Details, c.Facilities, c.Warnings = nil, nil, nil
		}
		return writeJSON(w, resp)
	}
	now := e.now()
	t := newTable([]string{"DAEMON", "VERSION", "PID", "UPTIME", "STATE"})
	for _, c := range resp.Components {
		up, state := "-", c.State
		if c.Started != nil {
			up = view.Age(c.Started.AsTime(), now)
		}
		if c.Component == "cli" {
			state = "this command"
		}
		t.row(c.Component, c.Version, strconv.Itoa(int(c.Pid)), up, state)
	}
	t.write(w, e.opts.Color)
	for _, u := range resp.Unreachable {
		say(w, 2, "Not reached: "+u)
	}
	return nil
}

func componentStatus(ctx context.Context, path string) (*seesawpb.ComponentStatus, error) {
	if err := probe(path); err != nil {
		var d *EngineDownError
		if asErr(err, &d) {
			return nil, fmt.Errorf("%s: %v", path, d.Err)
		}
		return nil, err
	}
	cc, err := ipc.Dial(path, ipc.DialOptions{})
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := seesawpb.NewComponentClient(cc).Status(cctx, &seesawpb.StatusRequest{})
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return proto.Clone(st).(*seesawpb.ComponentStatus), nil
}
