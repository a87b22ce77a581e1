package appliance

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/engine/config"
	configpb "github.com/seesawlb/seesaw/proto/config"
)

// The GKE on-prem seed (../shared/seeds/000_*.txt): Seesaw's own
// documentation's cluster, kept as engine/config/testdata/gke. Its nodes
// are 203.0.113.2/.3/25 with the cluster VIP .4, which in the lab's plan is
// the client's network; only those addresses are moved to the topology's
// node network. Every vserver, VIP and backend address stays as written.
const gkeDir = "../../engine/config/testdata/gke"

// gkeNodeAddrs are the seed's node and cluster VIP addresses (cluster.pb
// form, then seesaw.cfg form) and the topology's that replace them.
var gkeNodeAddrs = [][2]string{
	{"203.0.113.2/25", "192.0.2.2/24"},
	{"203.0.113.3/25", "192.0.2.3/24"},
	{"203.0.113.4/25", "192.0.2.4/24"},
}

// gkeConfig returns the seed's seesaw.cfg and cluster.pb with the node
// addresses (and the seesaw.cfg's interface names) of the topology. It
// fails the test unless the vserver sections are the seed's byte for byte.
func gkeConfig(t testing.TB) (seesawCfg, clusterPB string, res *config.Result) {
	t.Helper()
	seedPB, err := os.ReadFile(filepath.Join(gkeDir, "cluster.pb"))
	if err != nil {
		t.Fatal(err)
	}
	seedCfg, err := os.ReadFile(filepath.Join(gkeDir, "seesaw.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	// cluster.pb: the header (seesaw_vip and nodes) gets the topology's
	// node addresses; the vservers are not touched.
	i := strings.Index(string(seedPB), "vserver: <")
	if i < 0 {
		t.Fatalf("%s/cluster.pb has no vserver", gkeDir)
	}
	head, vservers := string(seedPB[:i]), string(seedPB[i:])
	for _, r := range gkeNodeAddrs {
		if !strings.Contains(head, `"`+r[0]+`"`) {
			t.Fatalf("the seed's cluster.pb no longer has %s: update gkeNodeAddrs", r[0])
		}
		head = strings.ReplaceAll(head, `"`+r[0]+`"`, `"`+r[1]+`"`)
	}
	clusterPB = head + vservers
	// The vserver text is the seed's, byte for byte: the seed is
	// balanced as written.
	if got := clusterPB[strings.Index(clusterPB, "vserver: <"):]; got != string(seedPB[i:]) {
		t.Fatal("the test's cluster.pb changed the seed's vserver sections")
	}
	// seesaw.cfg: the same node addresses, and the topology's interfaces
	// for the seed's ens192 (node) and ens224 (LB).
	repl := []string{"= ens192", "= eth0", "= ens224", "= eth2"}
	for _, r := range gkeNodeAddrs {
		from, _, _ := strings.Cut(r[0], "/")
		to, _, _ := strings.Cut(r[1], "/")
		repl = append(repl, "= "+from+"\n", "= "+to+"\n")
	}
	seesawCfg = strings.NewReplacer(repl...).Replace(string(seedCfg))
	for _, r := range gkeNodeAddrs {
		from, _, _ := strings.Cut(r[0], "/")
		if strings.Contains(seesawCfg, from) {
			t.Fatalf("the test's seesaw.cfg still names %s:\n%s", from, seesawCfg)
		}
	}
	res = config.CheckData("seesaw.cfg", []byte(seesawCfg), "cluster.pb", []byte(clusterPB))
	if err := res.Err(); err != nil {
		t.Fatalf("the adapted GKE config is rejected: %v", err)
	}
	return seesawCfg, clusterPB, res
}

// gkeRig is the GKE cluster running in a topology of its own.
type gkeRig struct {
	topo *labtest.Topology
	lb   *labtest.Node
	a    *Appliance
	res  *config.Result
	// holder is the backend namespace that holds each seed backend address.
	holder   map[netip.Addr]*labtest.Node
	backends []netip.Addr // the seed's backend addresses, sorted
	vips     []netip.Addr
	started  time.Time
}

// startGKE builds a topology for the seed and starts the appliance on it:
//
//   - the backend namespaces share the seed's seven backend addresses
//     (extra /32s on eth0: backend1 .163, .165, ...; backend2 .164, ...),
//     hold the four VIPs on lo for DSR, and serve TCP 80 and 443 and
//     /healthz on 10256, as the seed's checks ask;
//   - lb1 reaches those /32s on its backend link (a route per address:
//     DSR needs them on the LB's L2);
//   - the router sends the VIPs to the cluster VIP, which the master
//     holds, as an upstream router of a Seesaw pair does.
func startGKE(t *testing.T, bin string) *gkeRig {
	t.Helper()
	seesawCfg, clusterPB, res := gkeConfig(t)
	g := &gkeRig{res: res, holder: map[netip.Addr]*labtest.Node{}}
	for _, v := range res.Cluster.Vservers {
		g.vips = append(g.vips, v.Address.IPv4.Addr())
		for _, b := range v.Backends {
			if a := b.IPv4.Addr(); !slices.Contains(g.backends, a) {
				g.backends = append(g.backends, a)
			}
		}
	}
	sort.Slice(g.backends, func(i, j int) bool { return g.backends[i].Less(g.backends[j]) })
	g.topo = labtest.New(t, labtest.Config{LBs: 1, Backends: 2, LBNIC: "eth2", RoutedBackends: true})
	g.lb = g.topo.LBs[0]
	for i, a := range g.backends {
		b := g.topo.Backends[i%len(g.topo.Backends)]
		g.holder[a] = b
		if err := b.AddAddr("eth0", netip.PrefixFrom(a, 32)); err != nil {
			t.Fatal(err)
		}
		eth1, err := g.lb.Handle().LinkByName("eth1")
		if err != nil {
			t.Fatal(err)
		}
		if err := g.lb.Handle().RouteAdd(&netlink.Route{LinkIndex: eth1.Attrs().Index, Dst: ipNet(netip.PrefixFrom(a, 32)), Scope: netlink.SCOPE_LINK}); err != nil {
			t.Fatalf("lb1: route %s dev eth1: %v", a, err)
		}
	}
	for _, v := range g.vips {
		if err := g.topo.Router.AddRoute(netip.PrefixFrom(v, 32), clusterVIP4); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range g.topo.Backends {
		if err := DSR(b, g.vips...); err != nil {
			t.Fatal(err)
		}
		Serve(t, b, ServeOptions{TCP: []string{":80", ":443"}, Health: []string{":10256"}})
	}
	g.started = time.Now()
	g.a = Start(t, g.lb, Options{Bin: bin, SeesawCfg: seesawCfg, ClusterPB: clusterPB})
	g.a.WaitRunning(t, 2*time.Minute)
	g.a.WaitMaster(t, 2*time.Minute)
	return g
}

// waitBalanced waits until lb1's IPVS holds exactly the seed's services,
// each with every one of its backends in (their checks healthy).
func (g *gkeRig) waitBalanced(t *testing.T) time.Duration {
	t.Helper()
	return g.a.Wait(t, 2*time.Minute, "every GKE service with every backend in IPVS", func() error {
		tab, err := IPVS(g.lb)
		if err != nil {
			return err
		}
		var want, got []string
		for _, v := range g.res.Cluster.Vservers {
			for _, e := range v.Entries {
				key := ServiceKey(e.Protocol.String(), v.Address.IPv4.Addr(), e.Port)
				want = append(want, key)
				s := tab.Service(key)
				if s == nil {
					return fmt.Errorf("ipvsadm lacks %s (vserver %s):\n%s", key, v.Name, tab.Text)
				}
				if s.Scheduler != "wlc" {
					return Permanent(fmt.Errorf("%s has scheduler %s; the seed says WLC:\n%s", key, s.Scheduler, tab.Text))
				}
				if len(s.Dests) != len(v.Backends) {
					return fmt.Errorf("%s has %d destinations, %s has %d backends:\n%s", key, len(s.Dests), v.Name, len(v.Backends), tab.Text)
				}
				for _, b := range v.Backends {
					d, ok := s.Dest(b.IPv4.Addr())
					if !ok {
						return fmt.Errorf("%s lacks backend %s:\n%s", key, b.FQDN, tab.Text)
					}
					if d.Forward != "Route" || d.Addr.Port() != e.Port || d.Weight != 1 {
						return Permanent(fmt.Errorf("%s: %s %s weight %d; the seed says DSR, port %d, weight 1", key, d.Addr, d.Forward, d.Weight, e.Port))
					}
				}
			}
		}
		for _, s := range tab.Services {
			got = append(got, s.Key)
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			return fmt.Errorf("ipvsadm lists %v, want exactly the seed's %v", got, want)
		}
		return nil
	})
}

// TestLabGKE balances Seesaw's GKE on-prem example as written: four DSR
// vservers, TCP 80/443, WLC, an HTTP check of /healthz on 10256.
func TestLabGKE(t *testing.T) {
	labtest.RequireLab(t)
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	g := startGKE(t, bin)
	t.Logf("HA master and the data plane applied %v after the watchdog started", time.Since(g.started).Round(time.Millisecond))
	g.waitBalanced(t)
	// The seed's checks run every 10 s (its default), their starts spread
	// over the interval: this is up to one interval after start.
	t.Logf("every GKE service with every backend in IPVS %v after the watchdog started", time.Since(g.started).Round(time.Millisecond))

	client := g.topo.Client
	for _, v := range g.res.Cluster.Vservers {
		vip := v.Address.IPv4.Addr()
		holders := map[string]bool{}
		for _, b := range v.Backends {
			holders[g.holder[b.IPv4.Addr()].Role] = true
		}
		for _, e := range v.Entries {
			if e.Protocol != configpb.Protocol_TCP || e.Mode != configpb.VserverEntry_DSR {
				t.Fatalf("%s %s: the seed has only TCP DSR entries", v.Name, e.Key())
			}
			dst := netip.AddrPortFrom(vip, e.Port)
			var answers []Answer
			for i := 0; i < 4; i++ {
				ans, err := Ask(client, "tcp", dst, 10*time.Second)
				if err != nil {
					t.Fatalf("%s %s: %v", v.Name, dst, err)
				}
				answers = append(answers, ans)
				// DSR: the backend took the VIP for itself and saw the
				// client's own address.
				if ans.Local != vip || ans.Peer != client.IPv4() || !holders[ans.Backend] {
					t.Errorf("%s %s: answered %v; want a namespace holding one of its backends (%v) to see %s -> %s",
						v.Name, dst, ans, holders, client.IPv4(), vip)
				}
			}
			// Which seed address IPVS picked for each connection, from
			// its connection table: one of the vserver's backends, held
			// by the namespace that answered.
			conns, err := IPVSConns(g.lb)
			if err != nil {
				t.Fatal(err)
			}
			var picked []string
			for _, ans := range answers {
				i := slices.IndexFunc(conns, func(c IPVSConn) bool { return c.Source == ans.Client && c.Virtual == dst })
				if i < 0 {
					t.Errorf("%s %s: IPVS has no connection from %s", v.Name, dst, ans.Client)
					continue
				}
				d := conns[i].Dest
				if !slices.ContainsFunc(v.Backends, func(b *config.Backend) bool { return b.IPv4.Addr() == d.Addr() }) || d.Port() != e.Port || g.holder[d.Addr()] == nil || g.holder[d.Addr()].Role != ans.Backend {
					t.Errorf("%s %s: IPVS sent %s to %s, answered by %s; want one of %s's backends on port %d, held by the one that answered", v.Name, dst, ans.Client, d, ans.Backend, v.Name, e.Port)
				}
				picked = append(picked, d.Addr().String())
			}
			t.Logf("%-26s %-22s -> %v", v.Name, dst, picked)
		}
	}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// TestGKEConfig checks, on any machine, the lab's adaptation of the seed:
// accepted, four vservers of six TCP DSR entries, lb1 its node, and a
// keepalived equivalent with the same six virtual servers.
func TestGKEConfig(t *testing.T) {
	cfg, _, res := gkeConfig(t)
	if n := len(res.Cluster.Vservers); n != 4 {
		t.Errorf("%d vservers, want the seed's 4", n)
	}
	if res.ThisNode == nil || res.ThisNode.IPv4.String() != "192.0.2.2/24" {
		t.Errorf("this node is %v, want lb1's 192.0.2.2/24\n%s", res.ThisNode, cfg)
	}
	text, services := keepalivedConf(t, res, "eth0")
	if services != 6 || strings.Count(text, "virtual_server ") != 6 || strings.Count(text, "HTTP_GET") != 22 {
		t.Errorf("keepalived.conf: %d services, %d virtual_server, %d HTTP_GET; want 6, 6 and 22 (one per real server):\n%s",
			services, strings.Count(text, "virtual_server "), strings.Count(text, "HTTP_GET"), text)
	}
}
