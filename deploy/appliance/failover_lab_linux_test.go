package appliance

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/engine/config"
	"github.com/seesawlb/seesaw/engine/config/keepalived"
	configpb "github.com/seesawlb/seesaw/proto/config"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	"google.golang.org/protobuf/proto"
)

var (
	failoverTrials = flag.Int("appliance.trials", 20, "trials per cell of the failover matrix under -appliance.bench (make test runs one)")
	failoverConns  = flag.Int("appliance.conns", 300, "client TCP connections per failover trial (a tenth chatty, the rest idle, young and server-first)")
	cellsFlag      = flag.String("appliance.cells", "", "run only the failover matrix's cells whose name (\"mode=NAT fam=6\") matches this regular expression")
	advertFlag     = flag.Duration("appliance.advert", 0, "VRRP advert interval of both pairs in the failover tests (0: 100ms under -appliance.bench, else 1s)")
)

// failoverAdvert is the advert interval of the pairs, set by
// setFailoverAdvert at a test's start. make bench runs the 100 ms.
// make test runs 1 s: the lab's guest is emulated, and on a busy host a
// master's adverts come late by more than three 100 ms intervals under
// the load, so that healthy pairs (ours and keepalived alike) fail over
// on their own, which a test that must pass cannot have.
var failoverAdvert = 100 * time.Millisecond

func setFailoverAdvert() {
	failoverAdvert = *advertFlag
	if failoverAdvert == 0 {
		failoverAdvert = time.Second
		if *benchFlag {
			failoverAdvert = 100 * time.Millisecond
		}
	}
}

// The failover matrix's services: per cell (a forwarding mode and an
// address family) a VIP with a TCP echo on port 80, a server-first TCP
// service on 81 and a UDP answerer on 80, mh (mh-port, mh-fallback) over
// two backends. The configs come from one hand-written keepalived.conf
// (DR, TUN and NAT): keepalived runs it, and our pair runs what
// "seesaw config import keepalived" makes of it, plus the full-NAT
// vservers, which keepalived has no equivalent of (fullNATVservers).
const (
	failoverConf = "testdata/failover/keepalived.conf"
	talkPort     = 81
	talkEvery    = 500 * time.Millisecond
)

type failoverCell struct {
	// mode is DSR, TUN, NAT (without source NAT: keepalived's NAT) or
	// FULLNAT (Seesaw's NAT, source NAT to the cluster VIP: ours only).
	mode string
	fam  int
	vip  netip.Addr
	// conntrackd: a FULLNAT cell runs on a pair with conntrackd (ours) or
	// without it (a pair of ours with [connection_sync] conntrackd =
	// false, which shows what conntrackd adds).
	conntrackd bool
}

func (c failoverCell) String() string {
	if c.mode == "FULLNAT" {
		return fmt.Sprintf("mode=%s conntrackd=%t fam=%d", c.mode, c.conntrackd, c.fam)
	}
	return fmt.Sprintf("mode=%s fam=%d", c.mode, c.fam)
}

// nat says whether the backends see the packets with their own address
// as destination (IPVS masquerade) and so reply from it, through the NAT
// gateway; DSR and TUN backends reply from the VIP, through the router.
func (c failoverCell) nat() bool { return c.mode == "NAT" || c.mode == "FULLNAT" }

var failoverCells = []failoverCell{
	{mode: "DSR", fam: 4, vip: netip.MustParseAddr("192.0.2.110")},
	{mode: "DSR", fam: 6, vip: netip.MustParseAddr("2001:db8:0:1::110")},
	{mode: "TUN", fam: 4, vip: netip.MustParseAddr("192.0.2.120")},
	{mode: "TUN", fam: 6, vip: netip.MustParseAddr("2001:db8:0:1::120")},
	{mode: "NAT", fam: 4, vip: netip.MustParseAddr("192.0.2.130")},
	{mode: "NAT", fam: 6, vip: netip.MustParseAddr("2001:db8:0:1::130")},
	{mode: "FULLNAT", fam: 4, vip: fullNATCellVIP4, conntrackd: true},
	{mode: "FULLNAT", fam: 6, vip: fullNATCellVIP6, conntrackd: true},
	{mode: "FULLNAT", fam: 4, vip: fullNATCellVIP4},
	{mode: "FULLNAT", fam: 6, vip: fullNATCellVIP6},
}

var (
	fullNATCellVIP4 = netip.MustParseAddr("192.0.2.140")
	fullNATCellVIP6 = netip.MustParseAddr("2001:db8:0:1::140")
	// The NAT backends' gateway, keepalived.conf's virtual_ipaddress on
	// eth1, ours [nat_gateway] (imported from it).
	natGateway4 = netip.MustParsePrefix("198.51.100.254/24")
	natGateway6 = netip.MustParsePrefix("2001:db8:0:2::254/64")
)

// natReplyTable is the backends' routing table for replies from their own
// address (failoverTopology).
const natReplyTable = "100"

// load is the cell's client load: conns connections, a tenth of them
// chatty (each a request every 10 ms: the lab's emulated guest has two
// CPUs, and a quarter at that rate starves it, so that adverts arrive
// late and healthy pairs fail over on their own), the rest idle, young
// and server-first in equal parts.
func (c failoverCell) load(conns int) LoadOptions {
	chatty := max(conns/10, 1)
	k := max((conns-chatty)/3, 1)
	return LoadOptions{
		Chatty: chatty, Idle: k, Young: k, Talk: k,
		Echo:     netip.AddrPortFrom(c.vip, svcPort),
		TalkAddr: netip.AddrPortFrom(c.vip, talkPort),
		UDP:      netip.AddrPortFrom(c.vip, svcPort),
	}
}

// failoverPair is one of the pairs the matrix runs, each in a topology of
// its own: ours, keepalived's, and ours without conntrackd (the full-NAT
// cells' control).
type failoverPair struct {
	name string
	// side is whose figures its trials are: "ours" or "keepalived".
	side string
	// cells are those it runs, and waits for the services of.
	cells  []failoverCell
	topo   *labtest.Topology
	master int // index into topo.LBs
	// start starts node i's software; up says whether it is master with
	// its data plane in place; crash SIGKILLs its software.
	start func(t *testing.T, i int)
	up    func(i int) error
	crash func(t *testing.T, i int)
	// failover asks master i to hand over gracefully (ours: the engine's
	// Failover RPC).
	failover func(i int) error
}

// failoverServices are the IPVS services our pair (oursPair) holds, as
// ipvsadm keys.
func failoverServices() []string { return cellServices(oursCells()) }

// oursCells are the cells of our pair as imported (oursPair): every cell
// but full NAT's, which run on pairs of their own.
func oursCells() []failoverCell {
	return cellsWhere(func(c failoverCell) bool { return c.mode != "FULLNAT" })
}

// cellServices are the IPVS services of cells, as ipvsadm keys.
func cellServices(cells []failoverCell) []string {
	var keys []string
	for _, c := range cells {
		for _, k := range []string{ServiceKey("TCP", c.vip, svcPort), ServiceKey("TCP", c.vip, talkPort), ServiceKey("UDP", c.vip, svcPort)} {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// cellsWhere are the matrix's cells that keep says to.
func cellsWhere(keep func(failoverCell) bool) []failoverCell {
	var out []failoverCell
	for _, c := range failoverCells {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// readyIPVS checks that n holds every service of our pair (oursPair) with
// both backends and runs both sync daemons.
func readyIPVS(n *labtest.Node) error { return readyCells(n, oursCells()) }

// ready is readyIPVS for the cells p runs (oursPair's when it does not
// say).
func (p *failoverPair) ready(n *labtest.Node) error {
	if p.cells == nil {
		return readyIPVS(n)
	}
	return readyCells(n, p.cells)
}

// readyCells checks that n holds every service of cells with both
// backends and runs both sync daemons.
func readyCells(n *labtest.Node, cells []failoverCell) error {
	tab, err := IPVS(n)
	if err != nil {
		return err
	}
	for _, k := range cellServices(cells) {
		if s := tab.Service(k); s == nil || len(s.Dests) != 2 {
			return fmt.Errorf("%s lacks %s with 2 backends:\n%s", n.Role, k, tab.Text)
		}
	}
	out, err := n.Output("ipvsadm", "-L", "--daemon")
	if err != nil {
		return err
	}
	if !strings.Contains(string(out), "master sync daemon") || !strings.Contains(string(out), "backup sync daemon") {
		return fmt.Errorf("ipvsadm --daemon on %s:\n%s", n.Role, out)
	}
	return nil
}

// failoverTopology is the matrix's topology: two LB nodes with an LB NIC,
// two backends readied for DSR and TUN of every such cell's VIP and for
// NAT, and serving the echo, server-first and UDP services and /healthz.
//
// The same backends serve every mode. A DSR or TUN backend replies from
// the VIP, straight to the client through the router (the backends'
// default gateway, labtest's RoutedBackends); a NAT backend (with or
// without source NAT) replies from its own address, and that reply must
// go back through the master, whose IPVS (and, for full NAT, conntrack)
// undoes the translation. The backends tell the two apart by source, with
// a policy route: from their own address, the main table without its
// default route (so that the LB nodes' health checks on the backends'
// link are answered directly), then natReplyTable, whose default route is
// the NAT gateway the master holds. One set of backends keeps the
// topology, and the time to build it, as it was.
func failoverTopology(t *testing.T) *labtest.Topology {
	topo := labtest.New(t, labtest.Config{LBs: 2, Backends: 2, LBNIC: "eth2", RoutedBackends: true})
	var vips []netip.Addr
	var udp []netip.AddrPort
	for _, c := range failoverCells {
		if !c.nat() && !slices.Contains(vips, c.vip) {
			vips = append(vips, c.vip)
			udp = append(udp, netip.AddrPortFrom(c.vip, svcPort))
		}
	}
	for _, b := range topo.Backends {
		if err := DSR(b, vips...); err != nil {
			t.Fatal(err)
		}
		if err := TUN(b); err != nil {
			t.Fatal(err)
		}
		if err := natReplies(b); err != nil {
			t.Fatal(err)
		}
		// NAT's datagrams come to the backend's own address, and the
		// answer must leave from it.
		own := []netip.AddrPort{netip.AddrPortFrom(b.IPv4(), svcPort), netip.AddrPortFrom(b.IPv6(), svcPort)}
		Serve(t, b, ServeOptions{
			TCP: []string{fmt.Sprintf(":%d", svcPort)}, Talk: []string{fmt.Sprintf(":%d", talkPort)}, TalkEvery: talkEvery,
			UDP: slices.Concat(udp, own), Health: []string{fmt.Sprintf(":%d", healthPort)},
		})
	}
	return topo
}

// natReplies routes what backend n sends from its own address, NAT's
// replies, through the NAT gateway (see failoverTopology).
func natReplies(n *labtest.Node) error {
	for _, fam := range []struct {
		flag string
		src  netip.Addr
		gw   netip.Prefix
	}{{"-4", n.IPv4(), natGateway4}, {"-6", n.IPv6(), natGateway6}} {
		for _, args := range [][]string{
			{fam.flag, "rule", "add", "from", fam.src.String(), "lookup", "main", "suppress_prefixlength", "0", "priority", "100"},
			{fam.flag, "rule", "add", "from", fam.src.String(), "lookup", natReplyTable, "priority", "101"},
			{fam.flag, "route", "add", "default", "via", fam.gw.Addr().String(), "table", natReplyTable},
		} {
			if out, err := n.Output("ip", args...); err != nil {
				return fmt.Errorf("NAT replies: %s: %v: %s", n.Role, err, out)
			}
		}
	}
	return nil
}

// TUN readies a backend (already DSR's, holding the VIPs on lo) to take
// IPVS's tunnelled packets: a tunnel of each kind (IPv4 in IPv4, IPv6 in
// IPv6) bound to the backend's own address and open to any remote, and no
// reverse-path filter, since a decapsulated packet from the client arrives
// on a tunnel no route to the client goes through. (The kernel's fallback
// tunl0 and ip6tnl0 would do, but a kernel may create them in the first
// namespace only: net.core.fb_tunnels_only_for_init_net.)
func TUN(n *labtest.Node) error {
	for _, k := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"} {
		if err := n.Sysctl(k, "0"); err != nil {
			return err
		}
	}
	for _, args := range [][]string{
		{"link", "add", "name", "tun4", "type", "ipip", "local", n.IPv4().String()},
		{"link", "set", "tun4", "up"},
		{"-6", "link", "add", "name", "tun6", "type", "ip6tnl", "mode", "ip6ip6", "local", n.IPv6().String(), "remote", "::"},
		{"link", "set", "tun6", "up"},
	} {
		if out, err := n.Output("ip", args...); err != nil {
			return fmt.Errorf("TUN: %s: %v: %s", n.Role, err, out)
		}
	}
	return n.Sysctl("net.ipv4.conf.tun4.rp_filter", "0")
}

// importedPair is what the import makes of the keepalived.conf: our
// pair's cluster.pb and the two seesaw.cfg, each with the run's advert
// interval in place of the file's 100 ms (the import maps advert_int).
func importedPair(t *testing.T) (cluster string, cfg [2]string) {
	return importedPairWith(t, false, "")
}

// importedPairWith is importedPair with, for fullNAT, the full-NAT
// cells' vservers in place of the imported ones, and extra appended to
// each seesaw.cfg (a section).
func importedPairWith(t *testing.T, fullNAT bool, extra string) (cluster string, cfg [2]string) {
	var in [2]keepalived.Input
	for i, id := range []string{"lb1", "lb2"} {
		st, err := keepalived.ParseFile(failoverConf, keepalived.Options{ConfigID: id})
		if err != nil {
			t.Fatalf("%s: %v", failoverConf, err)
		}
		in[i] = keepalived.Input{Stmts: st}
	}
	res, err := keepalived.Import(in[0], &in[1], keepalived.ImportOptions{})
	if err != nil {
		t.Fatalf("import %s: %v", failoverConf, err)
	}
	t.Logf("imported %s: %d vservers, %d statements not imported (delay_before_retry, lvs_sync_daemon...)",
		failoverConf, len(res.Cluster.GetVserver()), len(res.Unmapped))
	if fullNAT {
		res.Cluster.Vserver = fullNATVservers(t, res.Cluster)
		t.Logf("full NAT: %d vservers in their place", len(res.Cluster.GetVserver()))
	}
	files := res.Files(failoverConf)
	cluster = string(files["cluster.pb"])
	for i, name := range []string{"seesaw.cfg", "peer/seesaw.cfg"} {
		c := string(files[name])
		// The file's advert_int 0.1, imported; a second line would
		// not do: the last one wins.
		const imported = "\nadvert_interval = 100\n"
		if !strings.Contains(c, imported) || !strings.Contains(c, "\n[nat_gateway]\n") {
			t.Fatalf("the import's %s has no advert_interval = 100 or no [nat_gateway]:\n%s", name, c)
		}
		cfg[i] = strings.Replace(c, imported, fmt.Sprintf("\nadvert_interval = %d\n", failoverAdvert.Milliseconds()), 1) + extra
		if r := config.CheckData(name, []byte(cfg[i]), "cluster.pb", []byte(cluster)); r.Err() != nil {
			t.Fatalf("the imported config is rejected: %v\n%s\n%s", r.Err(), cfg[i], cluster)
		}
	}
	return cluster, cfg
}

// fullNATVservers are the full-NAT cells' vservers, for ours only: the
// imported NAT cells' vservers with the full-NAT VIPs and Seesaw's default
// NAT, source NAT to the cluster VIP.
func fullNATVservers(t *testing.T, c *configpb.Cluster) []*configpb.Vserver {
	var out []*configpb.Vserver
	for _, cell := range failoverCells {
		if cell.mode != "FULLNAT" || !cell.conntrackd {
			continue
		}
		var from netip.Addr
		for _, n := range failoverCells {
			if n.mode == "NAT" && n.fam == cell.fam {
				from = n.vip
			}
		}
		var vs *configpb.Vserver
		for _, v := range c.GetVserver() {
			if a := v.GetEntryAddress(); a.GetIpv4() == netip.PrefixFrom(from, 32).String() || a.GetIpv6() == netip.PrefixFrom(from, 128).String() {
				vs = proto.Clone(v).(*configpb.Vserver)
			}
		}
		if vs == nil {
			t.Fatalf("the import of %s has no vserver for %s", failoverConf, from)
		}
		vs.Name = proto.String("fullnat-" + vs.GetName())
		vs.EntryAddress.Fqdn = proto.String(cell.vip.String())
		vip := proto.String(netip.PrefixFrom(cell.vip, cell.vip.BitLen()).String())
		if cell.fam == 4 {
			vs.EntryAddress.Ipv4 = vip
		} else {
			vs.EntryAddress.Ipv6 = vip
		}
		for _, e := range vs.GetVserverEntry() {
			if e.GetMode() != configpb.VserverEntry_NAT || e.SourceNat == nil || e.GetSourceNat() {
				t.Fatalf("%s: the imported NAT entry is not NAT without source NAT: %v", from, e)
			}
			e.SourceNat = nil
		}
		out = append(out, vs)
	}
	return out
}

// oursPair makes our pair as the import makes it: the cells keepalived
// runs too (DSR, TUN, NAT without source NAT), and so no conntrackd
// (seesaw.cfg's default runs it with full NAT only).
func oursPair(t *testing.T, bin string) *failoverPair {
	return oursPairOf(t, bin, "ours", false, "", func(c failoverCell) bool { return c.mode != "FULLNAT" })
}

// oursFullNATPair makes a pair of ours for the full-NAT cells only, with
// conntrackd (the default with full NAT) or without it. A pair of its
// own: conntrackd costs the emulated guest seconds of CPU at each
// takeover, which the other cells' pair need not pay, and an imported
// keepalived pair would not run it.
func oursFullNATPair(t *testing.T, bin string, conntrackd bool) *failoverPair {
	extra, name := "", "ours (full NAT, conntrackd)"
	if !conntrackd {
		extra, name = "\n[connection_sync]\nconntrackd = false\n", "ours (full NAT, conntrackd = false)"
	}
	return oursPairOf(t, bin, name, true, extra, func(c failoverCell) bool { return c.mode == "FULLNAT" && c.conntrackd == conntrackd })
}

func oursPairOf(t *testing.T, bin, name string, fullNAT bool, extra string, runs func(failoverCell) bool) *failoverPair {
	cluster, cfgs := importedPairWith(t, fullNAT, extra)
	topo := failoverTopology(t)
	var apps [2]*Appliance
	p := &failoverPair{name: name, side: "ours", topo: topo, cells: cellsWhere(runs)}
	p.start = func(t *testing.T, i int) {
		apps[i] = Start(t, topo.LBs[i], Options{Bin: bin, SeesawCfg: cfgs[i], ClusterPB: cluster})
		apps[i].WaitRunning(t, 2*time.Minute)
	}
	p.up = func(i int) error { return apps[i].master() }
	p.crash = func(t *testing.T, i int) { apps[i].Crash(t) }
	p.failover = func(i int) error {
		ctx, cancel := rpcCtx()
		defer cancel()
		resp, err := apps[i].Engine.Failover(ctx, &enginepb.FailoverRequest{})
		if err != nil {
			return fmt.Errorf("%s: engine Failover: %w", topo.LBs[i].Role, err)
		}
		t.Logf("%s: failover: %s", topo.LBs[i].Role, resp.GetMessage())
		return nil
	}
	return p
}

// keepalivedPair starts keepalived on the second topology, lb1 master.
func keepalivedPair(t *testing.T, bin string) *failoverPair {
	b, err := os.ReadFile(failoverConf)
	if err != nil {
		t.Fatal(err)
	}
	// The file says 100 ms; the run's interval replaces it.
	text := strings.Replace(string(b), "advert_int 0.1\n", fmt.Sprintf("advert_int %g\n", failoverAdvert.Seconds()), 1)
	if !strings.Contains(text, fmt.Sprintf("advert_int %g\n", failoverAdvert.Seconds())) {
		t.Fatalf("%s: no advert_int 0.1 to replace", failoverConf)
	}
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	topo := failoverTopology(t)
	// A keepalived LVS-NAT node forwards (sysctl.conf, by hand): the
	// backends' replies come to it to be translated back.
	for _, n := range topo.LBs {
		for _, k := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
			if err := n.Sysctl(k, "1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := &failoverPair{name: "keepalived", side: "keepalived", topo: topo, cells: cellsWhere(func(c failoverCell) bool { return c.mode != "FULLNAT" })}
	var cmds [2]*exec.Cmd
	var done [2]chan error
	var logs [2]string
	p.start = func(t *testing.T, i int) {
		n := topo.LBs[i]
		dir := t.TempDir()
		logs[i] = filepath.Join(dir, "keepalived.log")
		logf, err := os.Create(logs[i])
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		cmd := exec.Command(bin, "-n", "-l", "-D", "-i", n.Role, "-f", conf, "-p", filepath.Join(dir, "keepalived.pid"),
			"-c", filepath.Join(dir, "checkers.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := n.Start(cmd); err != nil {
			t.Fatal(err)
		}
		ch := make(chan error, 1)
		go func() { ch <- cmd.Wait() }()
		cmds[i], done[i] = cmd, ch
		t.Cleanup(func() { p.crash(t, i) })
	}
	p.crash = func(t *testing.T, i int) {
		if cmds[i] == nil {
			return
		}
		syscall.Kill(-cmds[i].Process.Pid, syscall.SIGKILL)
		<-done[i]
		cmds[i] = nil
		if t.Failed() {
			b, _ := os.ReadFile(logs[i])
			t.Logf("== keepalived on %s ==\n%s", topo.LBs[i].Role, tail(string(b), 4000))
		}
	}
	p.up = func(i int) error {
		select {
		case err := <-done[i]:
			done[i] <- err
			b, _ := os.ReadFile(logs[i])
			return Permanent(fmt.Errorf("keepalived on %s exited: %v\n%s", topo.LBs[i].Role, err, tail(string(b), 3000)))
		default:
		}
		out, err := topo.LBs[i].Output("ip", "-o", "addr", "show", "dev", "eth2")
		if err != nil {
			return err
		}
		for _, c := range p.cells {
			if !strings.Contains(string(out), " "+c.vip.String()+"/") {
				return fmt.Errorf("%s does not hold %s:\n%s", topo.LBs[i].Role, c.vip, out)
			}
		}
		if out, err = topo.LBs[i].Output("ip", "-o", "addr", "show", "dev", "eth1"); err != nil {
			return err
		}
		for _, g := range []netip.Prefix{natGateway4, natGateway6} {
			if !strings.Contains(string(out), " "+g.String()+" ") {
				return fmt.Errorf("%s does not hold the NAT gateway %s:\n%s", topo.LBs[i].Role, g, out)
			}
		}
		return nil
	}
	return p
}

// bringUp starts lb1, waits until it is master, then lb2, and waits until
// both hold every service.
func (p *failoverPair) bringUp(t *testing.T) {
	p.start(t, 0)
	Wait(t, 2*time.Minute, p.name+": lb1 master", func() error { return p.up(0) })
	p.start(t, 1)
	for _, n := range p.topo.LBs {
		Wait(t, 2*time.Minute, p.name+": "+n.Role+" ready", func() error { return p.ready(n) })
	}
	if err := p.up(0); err != nil {
		t.Fatalf("%s: lb1 is no longer master: %v", p.name, err)
	}
	p.master = 0
}

// findMaster waits until exactly one node is master and notes which. At
// 100 ms adverts in the lab's emulated guest a backup may take over on
// its own when the master's adverts come late under load (the test logs
// HA's transitions): the pair is asked, not assumed.
func (p *failoverPair) findMaster(t *testing.T) {
	t.Helper()
	Wait(t, 2*time.Minute, p.name+": one master", func() error {
		e0, e1 := p.up(0), p.up(1)
		switch {
		case e0 == nil && e1 == nil:
			return fmt.Errorf("both master")
		case e0 == nil:
			p.master = 0
		case e1 == nil:
			p.master = 1
		default:
			return fmt.Errorf("no master: lb1: %v; lb2: %v", e0, e1)
		}
		return nil
	})
	if err := p.ready(p.topo.LBs[1-p.master]); err != nil {
		Wait(t, 2*time.Minute, p.name+": the backup ready", func() error { return p.ready(p.topo.LBs[1-p.master]) })
	}
}

// fail is a node dying: its links down (through its netlink handle, all
// three within a moment: the node is gone from the network from here on,
// and its adverts stop), then its software SIGKILLed.
func (p *failoverPair) fail(t *testing.T, i int) {
	n := p.topo.LBs[i]
	for _, name := range []string{"eth0", "eth2", "eth1"} {
		l, err := n.Handle().LinkByName(name)
		if err == nil {
			err = n.Handle().LinkSetDown(l)
		}
		if err != nil {
			t.Fatalf("%s: %s down: %v", n.Role, name, err)
		}
	}
	p.crash(t, i)
}

// reboot brings a failed node back as a rebooted one (no VIPs, no NAT
// gateway, no IPVS, no sync daemons; the LB NIC down for ours, whose
// engine raises it as master; up without addresses for keepalived, which
// only adds them),
// starts its software, and waits until it is the backup, ready.
func (p *failoverPair) reboot(t *testing.T, i int) {
	n := p.topo.LBs[i]
	n.Run(t, "ipvsadm", "-C")
	for _, d := range []string{"master", "backup"} {
		n.Output("ipvsadm", "--stop-daemon", d) // an error: it was not running
	}
	n.Run(t, "ip", "addr", "flush", "dev", "eth2")
	n.Run(t, "ip", "addr", "flush", "dev", "eth1") // the NAT gateway; its own address comes back below
	n.Run(t, "ip", "link", "set", "eth0", "up")
	n.Run(t, "ip", "link", "set", "eth1", "up")
	if p.side != "ours" {
		n.Run(t, "ip", "link", "set", "eth2", "up")
	}
	// A link taken down loses its IPv6 addresses, and routes through it
	// go: give back what the topology gave.
	for _, ifc := range n.Ifaces {
		for _, a := range []netip.Prefix{ifc.IPv4, ifc.IPv6} {
			if a.IsValid() {
				n.Run(t, "ip", "addr", "replace", a.String(), "dev", ifc.Name)
			}
		}
	}
	n.Run(t, "ip", "-4", "route", "replace", "default", "via", labtest.Host(labtest.NodeNet4, 1).Addr().String())
	n.Run(t, "ip", "-6", "route", "replace", "default", "via", labtest.Host(labtest.NodeNet6, 1).Addr().String())
	p.start(t, i)
	Wait(t, 2*time.Minute, p.name+": "+n.Role+" back, ready", func() error { return p.ready(n) })
}

// trialResult is one failover's figures.
type trialResult struct {
	LoadResult
	void bool          // the trial could not start: its figures are not counted
	took time.Duration // from the failure until the new master was up (as its own software says)
}

// trial runs one failover of the current master under the cell's load,
// the failure delay spread over the advert cycle by k of trials, and
// brings the failed node back as the backup.
func (p *failoverPair) trial(t *testing.T, c failoverCell, k, trials int) trialResult {
	var m int
	res := p.measure(t, c, event{
		what: fmt.Sprintf("trial %d", k+1),
		// The failure's phase in the advert cycle: the load's own timing
		// is not tied to the master's advert timer, and this spreads it
		// further.
		delay:   failoverAdvert * time.Duration(k) / time.Duration(max(trials, 1)),
		act:     func() { m = p.master; p.fail(t, m) },
		settled: "the backup taking over", done: func() error { return p.up(1 - m) },
	})
	if res.void {
		return res
	}
	p.master = 1 - m
	p.reboot(t, m)
	return res
}

// event is what measure runs under load.
type event struct {
	what string
	// split: the pair is not expected to have one master at the start.
	split bool
	// before runs once the load's connections are open, before the sync
	// is awaited.
	before func()
	delay  time.Duration // between the young connections and act
	act    func()
	// done says whether the pair has settled (settled says how).
	settled string
	done    func() error
}

// measure runs an event under the cell's load: the load started, before,
// the backup's sync awaited (a while: what happens is measured either
// way), the young connections opened, the delay, then act; once done says
// the pair has settled, the exchanges after it and the figures, which it
// logs.
func (p *failoverPair) measure(t *testing.T, c failoverCell, ev event) trialResult {
	t.Helper()
	what := ev.what
	if !ev.split {
		p.findMaster(t)
	}
	b := 1 - p.master
	l, err := StartLoad(p.topo.Client, c.load(*failoverConns))
	if err != nil {
		if !*benchFlag && p.side != "keepalived" {
			t.Fatalf("%s %s: %v", p.name, c, err)
		}
		// At 100 ms adverts a loaded guest can make a pair flap before
		// any failure: the trial is void, and counted as such. So is
		// keepalived's in make test, which asserts nothing of it (on a
		// busy host its checks time out, and it drops backends).
		t.Logf("%s %s %s: void: the load could not open (the pair flapping?): %v", p.name, c, what, err)
		return trialResult{void: true}
	}
	defer l.Close()
	if ev.before != nil {
		ev.before()
	}
	want := l.Established()
	var synced int
	deadline := time.Now().Add(15 * time.Second)
	for {
		conns, err := IPVSConns(p.topo.LBs[b])
		if err != nil {
			t.Fatal(err)
		}
		have := map[netip.AddrPort]bool{}
		for _, x := range conns {
			if x.State == "ESTABLISHED" {
				have[x.Source] = true
			}
		}
		synced = 0
		for _, s := range want {
			if have[s] {
				synced++
			}
		}
		if synced == len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(PollInterval)
	}
	if err := l.Young(); err != nil {
		t.Fatalf("%s %s: %v", p.name, c, err)
	}
	time.Sleep(ev.delay)
	at := l.Mark()
	ev.act()
	Wait(t, time.Minute, p.name+": "+ev.settled, ev.done)
	took := time.Since(at)
	res := trialResult{LoadResult: l.Finish(), took: took}
	var kept []string
	for _, kind := range Kinds {
		k := res.Kept[kind]
		kept = append(kept, fmt.Sprintf("%s %d/%d", kind, k.OK, k.Total))
	}
	t.Logf("%s %s %s: the backup had %d of %d established synced; settled (%s) after %v; UDP gap %v (send gap %v, %d/%d answered); chatty stall max %v; kept %s",
		p.name, c, what, synced, len(want), ev.settled, took.Round(time.Millisecond), res.UDPGap.Round(time.Millisecond), res.UDPSendGap.Round(time.Millisecond),
		res.UDPRecv, res.UDPSent, pct(res.Stalls, 100).Round(time.Millisecond), strings.Join(kept, ", "))
	var lost []netip.AddrPort
	for _, kind := range Kinds {
		if errs := res.Kept[kind].Errs; len(errs) > 0 {
			t.Logf("  %s lost %s: %s", p.name, kind, strings.Join(errs[:min(len(errs), 3)], "; "))
			lost = append(lost, res.Kept[kind].Lost...)
		}
	}
	// What the masters' IPVS holds of the lost connections, for whoever
	// reads the log.
	for i, n := range p.topo.LBs {
		if len(lost) == 0 {
			break
		}
		conns, err := IPVSConns(n)
		if err != nil {
			t.Logf("  %s: %v", n.Role, err)
			continue
		}
		var held []string
		for _, x := range conns {
			if slices.Contains(lost, x.Source) {
				held = append(held, fmt.Sprintf("%s %s %s->%s", x.Proto, x.State, x.Source, x.Dest))
			}
		}
		t.Logf("  %s (%s): IPVS holds %d of the %d lost: %s", n.Role, map[bool]string{true: "master", false: "not master"}[p.up(i) == nil],
			len(held), len(lost), strings.Join(held[:min(len(held), 5)], "; "))
	}
	return res
}

// pct is the p-th percentile of sorted durations (nearest rank); 0 when
// there are none.
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (p*len(sorted)+99)/100 - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// cellFigures gathers a cell's trials on one pair.
type cellFigures struct {
	outage, stall []time.Duration // per trial: UDP gap; per chatty connection kept
	kept          map[string]Kept
	void          int
}

func (f *cellFigures) add(r trialResult) {
	if r.void {
		f.void++
		return
	}
	if f.kept == nil {
		f.kept = map[string]Kept{}
	}
	f.outage = append(f.outage, r.UDPGap)
	f.stall = append(f.stall, r.Stalls...)
	for kind, k := range r.Kept {
		s := f.kept[kind]
		s.Total += k.Total
		s.OK += k.OK
		f.kept[kind] = s
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

func ratio(a, b float64) string {
	if b == 0 {
		return "inf"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// TestLabFailoverMatrix is the pair's failover, measured beside a
// keepalived+LVS pair doing the same work in the same run: in each cell
// (DSR, TUN and NAT without source NAT, IPv4 and IPv6; full NAT, which
// keepalived lacks, ours only) the master dies (software SIGKILLed, links
// down) under a client's load of ~300 TCP connections of four kinds and a
// 1 ms UDP stream, at 100 ms adverts (1 s in make test: see
// failoverAdvert), and comes back as the backup. The full-NAT cells run
// on pairs of ours of their own (oursFullNATPair), one after the other
// once the first two are gone (the guest's memory holds two pairs): one
// runs conntrackd and, to show what conntrackd adds, one does not. It prints
// bench: lines: the outage (largest UDP gap) and chatty TCP stalls
// p50/p95/max, and the connections kept by kind, ours and keepalived's.
// make test runs one trial per cell and asserts that our pair kept every
// established connection (chatty, idle, server-first), full NAT with
// conntrackd only; make bench runs -appliance.trials (20) per cell and
// asserts nothing.
func TestLabFailoverMatrix(t *testing.T) {
	labtest.RequireLab(t)
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	setFailoverAdvert()
	trials := 1
	if *benchFlag {
		trials = *failoverTrials
	}
	ka, err := exec.LookPath("keepalived")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/keepalived"); err == nil {
			ka = "/usr/sbin/keepalived"
		} else if *benchFlag {
			t.Fatalf("keepalived is the peer this benchmark measures against and is not installed: deploy/deps.sh bench installs it (Debian package keepalived)")
		} else {
			t.Logf("keepalived is not installed: our pairs only (deploy/deps.sh bench installs it)")
		}
	}
	if _, err := os.Stat("/usr/sbin/conntrackd"); err != nil {
		t.Fatalf("Debian's conntrackd is not installed on the host the guest shares (%v): apt-get install conntrackd (deploy/deps.sh and seesaw-lab prepare do)", err)
	}
	figs := map[string]map[failoverCell]*cellFigures{"ours": {}}
	if ka != "" {
		figs["keepalived"] = map[failoverCell]*cellFigures{}
	}
	for _, m := range figs {
		for _, c := range failoverCells {
			m[c] = &cellFigures{}
		}
	}
	only, err := regexp.Compile(*cellsFlag)
	if err != nil {
		t.Fatalf("-appliance.cells: %v", err)
	}
	run := func(t *testing.T, pairs []*failoverPair) {
		for _, p := range pairs {
			p.bringUp(t)
		}
		for k := range trials {
			for _, c := range failoverCells {
				for _, p := range pairs {
					if !slices.Contains(p.cells, c) || !only.MatchString(c.String()) {
						continue
					}
					r := p.trial(t, c, k, trials)
					figs[p.side][c].add(r)
					if p.side != "ours" || *benchFlag {
						continue
					}
					kinds := []string{"chatty", "idle", "talk"}
					if c.mode == "FULLNAT" && !c.conntrackd {
						// Without conntrackd the new master has no
						// source-NAT binding: it makes the old one
						// again (the client's port) for connections
						// whose client speaks first after the takeover;
						// a backend's packet that comes first finds
						// none (some chatty and talk ones break).
						kinds = []string{"idle"}
					}
					for _, kind := range kinds {
						if kk := r.Kept[kind]; kk.OK != kk.Total {
							t.Errorf("%s %s: %d of %d %s connections lost through the failover: %s", p.name, c, kk.Total-kk.OK, kk.Total, kind, strings.Join(kk.Errs[:min(3, len(kk.Errs))], "; "))
						}
					}
				}
			}
		}
	}
	t.Run("ours and keepalived", func(t *testing.T) {
		pairs := []*failoverPair{oursPair(t, bin)}
		if ka != "" {
			pairs = append(pairs, keepalivedPair(t, ka))
		}
		run(t, pairs)
	})
	for _, ctd := range []bool{true, false} {
		t.Run(fmt.Sprintf("ours full NAT conntrackd=%t", ctd), func(t *testing.T) {
			if !slices.ContainsFunc(failoverCells, func(c failoverCell) bool {
				return c.mode == "FULLNAT" && c.conntrackd == ctd && only.MatchString(c.String())
			}) {
				t.Skipf("-appliance.cells %q leaves none of its cells", *cellsFlag)
			}
			run(t, []*failoverPair{oursFullNATPair(t, bin, ctd)})
		})
	}
	for _, c := range failoverCells {
		if !only.MatchString(c.String()) {
			continue // left out by -appliance.cells: no figures, no lines
		}
		ours := figs["ours"][c]
		ka := figs["keepalived"][c]
		var kaNA string
		switch {
		case ka == nil:
		case c.mode == "FULLNAT":
			kaNA = " keepalived=n/a (keepalived has no full NAT)"
		case len(ka.outage) == 0:
			kaNA = " keepalived=n/a (every trial void)"
		}
		for _, what := range []string{"outage", "stall"} {
			get := func(f *cellFigures) []time.Duration {
				if what == "outage" {
					return slices.Sorted(slices.Values(f.outage))
				}
				return slices.Sorted(slices.Values(f.stall))
			}
			o := get(ours)
			line := fmt.Sprintf("bench: failover %s %s adverts=%s trials=%d conns=%d p50=%s p95=%s max=%s",
				what, c, ms(failoverAdvert), len(ours.outage), *failoverConns, ms(pct(o, 50)), ms(pct(o, 95)), ms(pct(o, 100)))
			if kaNA != "" {
				line += kaNA
			} else if ka != nil {
				kk := get(ka)
				line += fmt.Sprintf(" keepalived trials=%d p50=%s p95=%s max=%s ours/keepalived=%s (p50)", len(ka.outage), ms(pct(kk, 50)), ms(pct(kk, 95)), ms(pct(kk, 100)),
					ratio(float64(pct(o, 50)), float64(pct(kk, 50))))
			}
			fmt.Println(line)
		}
		for _, kind := range Kinds {
			k := ours.kept[kind]
			line := fmt.Sprintf("bench: failover kept %s kind=%s ours=%.0f%% (%d/%d)", c, kind, k.Pct(), k.OK, k.Total)
			if k.Total == 0 {
				line = fmt.Sprintf("bench: failover kept %s kind=%s ours=n/a (0/0)", c, kind)
			}
			if kaNA != "" {
				line += kaNA
			} else if ka != nil {
				kk := ka.kept[kind]
				line += fmt.Sprintf(" keepalived=%.0f%% (%d/%d) ours/keepalived=%s", kk.Pct(), kk.OK, kk.Total, ratio(k.Pct(), kk.Pct()))
			}
			fmt.Println(line)
		}
	}
}
