package appliance

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/engine/config"
	"github.com/seesawlb/seesaw/engine/config/keepalived"
)

// TestLabSeedsFailover runs the seeds' own configurations on two nodes
// and serves a client through a failover of each: Seesaw's GKE on-prem
// cluster (DSR, WLC, HTTP checks; ../shared/seeds/000), and the
// keepalived pairs of seeds 001 (dual-stack NAT rr, TCP checks on another
// port, unicast VRRP) and 003 (LVS DR for the Kubernetes API on 6443, a
// 5 s advert), as "seesaw config import keepalived" writes them from the
// seeds' keepalived.conf files. The seeds' addresses are kept as written;
// the lab gives each node its seed address beside its own and routes the
// seed's backend addresses to the backend namespaces.
func TestLabSeedsFailover(t *testing.T) {
	labtest.RequireLab(t)
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("gke", func(t *testing.T) { gkePair(t, bin).run(t) })
	t.Run("seed001", func(t *testing.T) { seed001Pair(t, bin).run(t) })
	t.Run("seed003", func(t *testing.T) { seed003Pair(t, bin).run(t) })
}

// seedPair is a seed's configuration on the two LB nodes of a topology.
type seedPair struct {
	topo    *labtest.Topology
	bin     string
	cfg     [2]string // lb1's and lb2's seesaw.cfg; lb1 has the higher priority
	cluster string
	// services are the seed's TCP services, each with its number of
	// destinations.
	services map[netip.AddrPort]int
	links    []string // an LB node's links, taken down when it dies
}

// ready: n holds every service with all its destinations (their checks
// healthy) and runs both sync daemons.
func (sp *seedPair) ready(n *labtest.Node) error {
	tab, err := IPVS(n)
	if err != nil {
		return err
	}
	for dst, nd := range sp.services {
		k := ServiceKey("TCP", dst.Addr(), dst.Port())
		if s := tab.Service(k); s == nil || len(s.Dests) != nd {
			return fmt.Errorf("%s lacks %s with %d destinations:\n%s", n.Role, k, nd, tab.Text)
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

// run starts lb1 (master), then lb2, holds connections through every
// service, kills lb1 (its links down, its software SIGKILLed) and checks
// that every held connection carries on through lb2 and new ones work.
func (sp *seedPair) run(t *testing.T) {
	lb1, lb2, client := sp.topo.LBs[0], sp.topo.LBs[1], sp.topo.Client
	a1 := Start(t, lb1, Options{Bin: sp.bin, SeesawCfg: sp.cfg[0], ClusterPB: sp.cluster})
	a1.WaitRunning(t, 2*time.Minute)
	a1.WaitMaster(t, 2*time.Minute)
	a2 := Start(t, lb2, Options{Bin: sp.bin, SeesawCfg: sp.cfg[1], ClusterPB: sp.cluster})
	a2.WaitRunning(t, 2*time.Minute)
	for _, n := range []*labtest.Node{lb1, lb2} {
		Wait(t, 3*time.Minute, n.Role+" holding every service with every destination, both sync daemons running", func() error { return sp.ready(n) })
	}
	if err := a1.master(); err != nil {
		t.Fatalf("lb1 is no longer master: %v", err)
	}
	dsts := slices.SortedFunc(func(yield func(netip.AddrPort) bool) {
		for d := range sp.services {
			if !yield(d) {
				return
			}
		}
	}, func(a, b netip.AddrPort) int { return a.Compare(b) })
	var held []*Conn
	for _, dst := range dsts {
		for range 3 {
			c, err := Hold(client, dst, 10*time.Second)
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				t.Fatalf("%s: %v", dst, err)
			}
			held = append(held, c)
		}
	}
	h := newHeld(t, held)
	if lost := h.exchange(t, "opening", 10*time.Second); len(lost) > 0 {
		t.Fatalf("before the failure: %s", strings.Join(lost, "; "))
	}
	var spread []string
	for _, c := range held {
		spread = append(spread, fmt.Sprintf("%s->%s", c.Dst, c.Answer.Backend))
	}
	t.Logf("holding %d connections: %s", len(held), strings.Join(spread, " "))
	waitSynced(t, lb2, held)

	killed := time.Now()
	for _, name := range sp.links {
		l, err := lb1.Handle().LinkByName(name)
		if err == nil {
			err = lb1.Handle().LinkSetDown(l)
		}
		if err != nil {
			t.Fatalf("lb1: %s down: %v", name, err)
		}
	}
	a1.Crash(t)
	took := a2.WaitMaster(t, 2*time.Minute)
	t.Logf("lb2 master with its data plane applied %v after lb1 died", took.Round(time.Millisecond))
	h.exchange(t, "the failover", 90*time.Second)
	t.Logf("%v after the failure", time.Since(killed).Round(time.Millisecond))
	h.report(t)
	for _, dst := range dsts {
		if _, err := Ask(client, "tcp", dst, 10*time.Second); err != nil {
			t.Errorf("a new connection to %s through lb2: %v", dst, err)
		}
	}
}

// seedBackends gives the seed's backend addresses to the backend
// namespaces in turn (an address and its other-family twin, same index,
// to the same namespace), as /32 and /128 on their eth0, and routes each
// from both LB nodes to their backend link: one L2, as DSR needs.
func seedBackends(t *testing.T, topo *labtest.Topology, groups ...[]netip.Addr) {
	t.Helper()
	for _, g := range groups {
		for i, a := range g {
			b := topo.Backends[i%len(topo.Backends)]
			if err := b.AddAddr("eth0", netip.PrefixFrom(a, a.BitLen())); err != nil {
				t.Fatal(err)
			}
			for _, lb := range topo.LBs {
				eth1, err := lb.Handle().LinkByName("eth1")
				if err != nil {
					t.Fatal(err)
				}
				if err := lb.Handle().RouteAdd(&netlink.Route{LinkIndex: eth1.Attrs().Index, Dst: ipNet(netip.PrefixFrom(a, a.BitLen())), Scope: netlink.SCOPE_LINK}); err != nil {
					t.Fatalf("%s: route %s dev eth1: %v", lb.Role, a, err)
				}
			}
		}
	}
}

// gkePair is the GKE seed (gkeConfig: its node addresses moved to the
// lab's node network) on lb1 and lb2, lb2's seesaw.cfg the same with node
// and peer swapped. The router sends the VIPs to the cluster VIP, as in
// TestLabGKE.
func gkePair(t *testing.T, bin string) *seedPair {
	cfg1, pb, res := gkeConfig(t)
	cfg2 := strings.NewReplacer("node_ipv4 = 192.0.2.2\n", "node_ipv4 = 192.0.2.3\n", "peer_ipv4 = 192.0.2.3\n", "peer_ipv4 = 192.0.2.2\n").Replace(cfg1)
	if r := config.CheckData("seesaw.cfg", []byte(cfg2), "cluster.pb", []byte(pb)); r.Err() != nil || r.ThisNode == nil || r.ThisNode.IPv4.String() != "192.0.2.3/24" {
		t.Fatalf("lb2's GKE seesaw.cfg: %v, this node %v:\n%s", r.Err(), r.ThisNode, cfg2)
	}
	topo := labtest.New(t, labtest.Config{LBs: 2, Backends: 2, LBNIC: "eth2", RoutedBackends: true})
	sp := &seedPair{topo: topo, bin: bin, cfg: [2]string{cfg1, cfg2}, cluster: pb, services: map[netip.AddrPort]int{},
		links: []string{"eth0", "eth1", "eth2"}}
	var backends, vips []netip.Addr
	for _, v := range res.Cluster.Vservers {
		vips = append(vips, v.Address.IPv4.Addr())
		for _, b := range v.Backends {
			if a := b.IPv4.Addr(); !slices.Contains(backends, a) {
				backends = append(backends, a)
			}
		}
		for _, e := range v.Entries {
			sp.services[netip.AddrPortFrom(v.Address.IPv4.Addr(), e.Port)] = len(v.Backends)
		}
	}
	slices.SortFunc(backends, netip.Addr.Compare)
	seedBackends(t, topo, backends)
	for _, v := range vips {
		if err := topo.Router.AddRoute(netip.PrefixFrom(v, 32), clusterVIP4); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range topo.Backends {
		if err := DSR(b, vips...); err != nil {
			t.Fatal(err)
		}
		Serve(t, b, ServeOptions{TCP: []string{":80", ":443"}, Health: []string{":10256"}})
	}
	return sp
}

const keepalivedSeeds = "../../engine/config/keepalived/testdata"

// importSeed is what "seesaw config import keepalived SELF PEER
// --cluster-vip ..." makes of a seed's two keepalived.conf files:
// cluster.pb, SELF's seesaw.cfg and PEER's. (Every VIP of the seeds
// carries a virtual server, so the cluster VIP is given, an unused address
// of the nodes' network, as the import asks.)
func importSeed(t *testing.T, dir, self, peer string, clusterVIP ...string) (cluster string, cfg [2]string) {
	t.Helper()
	var in [2]keepalived.Input
	for i, f := range []string{self, peer} {
		st, err := keepalived.ParseFile(filepath.Join(keepalivedSeeds, dir, f), keepalived.Options{})
		if err != nil {
			t.Fatal(err)
		}
		in[i] = keepalived.Input{Stmts: st}
	}
	var o keepalived.ImportOptions
	for _, v := range clusterVIP {
		o.ClusterVIP = append(o.ClusterVIP, netip.MustParsePrefix(v))
	}
	res, err := keepalived.Import(in[0], &in[1], o)
	if err != nil {
		t.Fatalf("import %s: %v", dir, err)
	}
	files := res.Files(filepath.Join(dir, self))
	cluster, cfg = string(files["cluster.pb"]), [2]string{string(files["seesaw.cfg"]), string(files["peer/seesaw.cfg"])}
	for i, c := range cfg {
		if r := config.CheckData("seesaw.cfg", []byte(c), "cluster.pb", []byte(cluster)); r.Err() != nil {
			t.Fatalf("%s: the imported config of node %d is rejected: %v\n%s", dir, i+1, r.Err(), c)
		}
	}
	t.Logf("imported %s/%s and %s: %d vservers, %d statements not imported", dir, self, peer, len(res.Cluster.GetVserver()), len(res.Unmapped))
	return cluster, cfg
}

// seedNodes gives each LB node its seed address(es) on eth0 beside the
// lab's own, and the router one on the seed's network, so that the
// client reaches the seed's VIPs through it.
func seedNodes(t *testing.T, topo *labtest.Topology, router []netip.Prefix, nodes ...[]netip.Prefix) {
	t.Helper()
	for _, p := range router {
		if err := topo.Router.AddAddr("eth1", p); err != nil {
			t.Fatal(err)
		}
	}
	for i, ps := range nodes {
		for _, p := range ps {
			if err := topo.LBs[i].AddAddr("eth0", p); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// seed001Pair is seed 001's keepalived pair imported: lb75 (the lower
// address, so VRRP priority 255) on lb1, lb116 on lb2. Its NAT is NAT
// without source NAT: the seed's backends route their replies to clients
// through the master, by the cluster VIP on the nodes' own network. The
// lab's backends are on another link than the nodes' VIPs, so the test
// adds a floating NAT gateway there ([nat_gateway] on the backend link,
// the backends' default gateway); the rest is the import's.
func seed001Pair(t *testing.T, bin string) *seedPair {
	cluster, cfg := importSeed(t, "seed001", "lb75.conf", "lb116.conf", "192.168.128.119/24", "2004::192:168:128:119/64")
	const gw = "\n[nat_gateway]\n# Added by the lab (TestLabSeedsFailover): the backends' own link.\nipv4 = 198.51.100.1/24\nipv6 = 2001:db8:0:2::1/64\ninterface = eth1\n"
	for i := range cfg {
		if strings.Contains(cfg[i], "[nat_gateway]") {
			t.Fatalf("the import wrote a [nat_gateway] of its own: the test's would repeat it:\n%s", cfg[i])
		}
		cfg[i] += gw
		if r := config.CheckData("seesaw.cfg", []byte(cfg[i]), "cluster.pb", []byte(cluster)); r.Err() != nil {
			t.Fatalf("seed001 with the lab's NAT gateway: %v", r.Err())
		}
	}
	// The backends' default gateway is the topology's BackendGateway,
	// 198.51.100.1: the NAT gateway the master holds (no router there).
	topo := labtest.New(t, labtest.Config{LBs: 2, Backends: 2})
	vip4, vip6 := netip.MustParseAddr("192.168.128.118"), netip.MustParseAddr("2004::192:168:128:118")
	sp := &seedPair{topo: topo, bin: bin, cfg: cfg, cluster: cluster, links: []string{"eth0", "eth1"},
		services: map[netip.AddrPort]int{netip.AddrPortFrom(vip4, 80): 3, netip.AddrPortFrom(vip6, 80): 3}}
	seedNodes(t, topo, []netip.Prefix{netip.MustParsePrefix("192.168.128.1/24"), netip.MustParsePrefix("2004::1/64")},
		[]netip.Prefix{netip.MustParsePrefix("192.168.128.75/24"), netip.MustParsePrefix("2004::192:168:128:75/64")},
		[]netip.Prefix{netip.MustParsePrefix("192.168.128.116/24"), netip.MustParsePrefix("2004::192:168:128:116/64")})
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	seedBackends(t, topo, addrs("192.168.143.192", "192.168.138.100", "192.168.129.100"),
		addrs("2004::192:168:143:192", "2004::192:168:138:100", "2004::192:168:129:100"))
	for _, b := range topo.Backends {
		// The seed checks TCP port 1936 (HAProxy's stats port on its
		// ALB nodes): a connect is all it asks.
		Serve(t, b, ServeOptions{TCP: []string{":80", ":1936"}})
	}
	return sp
}

// seed003Pair is seed 003's keepalived pair imported: master.conf
// (192.168.100.44, the lower address) on lb1, backup.conf on lb2; LVS DR
// for 6443 towards three API servers, advert_int 5 as the seed has it.
func seed003Pair(t *testing.T, bin string) *seedPair {
	cluster, cfg := importSeed(t, "seed003", "master.conf", "backup.conf", "192.168.100.46/24")
	topo := labtest.New(t, labtest.Config{LBs: 2, Backends: 2, RoutedBackends: true})
	vip := netip.MustParseAddr("192.168.100.40")
	sp := &seedPair{topo: topo, bin: bin, cfg: cfg, cluster: cluster, links: []string{"eth0", "eth1"},
		services: map[netip.AddrPort]int{netip.AddrPortFrom(vip, 6443): 3}}
	seedNodes(t, topo, []netip.Prefix{netip.MustParsePrefix("192.168.100.1/24")},
		[]netip.Prefix{netip.MustParsePrefix("192.168.100.44/24")}, []netip.Prefix{netip.MustParsePrefix("192.168.100.45/24")})
	seedBackends(t, topo, []netip.Addr{netip.MustParseAddr("192.168.100.41"), netip.MustParseAddr("192.168.100.42"), netip.MustParseAddr("192.168.100.43")})
	for _, b := range topo.Backends {
		if err := DSR(b, vip); err != nil {
			t.Fatal(err)
		}
		Serve(t, b, ServeOptions{TCP: []string{":6443"}})
	}
	return sp
}
