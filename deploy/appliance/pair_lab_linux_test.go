package appliance

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
)

// The pair: lb1 and lb2 both run the whole appliance; lb1 is master (first
// in cluster.pb, so the higher priority). The backends' default gateway,
// 198.51.100.1, is the NAT gateway the master holds on its backend link
// (eth1): NAT without source NAT needs the replies back through the
// master, and DSR replies take the same way to the router.
var (
	pairDSRVIP4 = netip.MustParseAddr("192.0.2.110")
	pairDSRVIP6 = netip.MustParseAddr("2001:db8:0:1::110")
	pairMHVIP4  = netip.MustParseAddr("192.0.2.111")
	pairNATVIP4 = netip.MustParseAddr("192.0.2.112")
	pairNATVIP6 = netip.MustParseAddr("2001:db8:0:1::112")
)

func pairSeesawCfg(node, peer int) string {
	return fmt.Sprintf(`# seesaw.cfg of lb%d, written by deploy/appliance
[cluster]
name = lab
anycast_enabled = false
node_ipv4 = 192.0.2.%d
node_ipv6 = 2001:db8:0:1::%d
peer_ipv4 = 192.0.2.%d
peer_ipv6 = 2001:db8:0:1::%d
vip_ipv4 = 192.0.2.4
vip_ipv6 = 2001:db8:0:1::4
vrid = 60

[interface]
node = eth0
lb = eth2

[nat_gateway]
ipv4 = 198.51.100.1/24
ipv6 = 2001:db8:0:2::1/64
interface = eth1
`, node, node+1, node+1, peer+1, peer+1)
}

func pairClusterPB(backends []*labtest.Node) string {
	var be strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&be, "  backend { host { fqdn: %q ipv4: %q ipv6: %q status: PRODUCTION } weight: 1 }\n",
			fqdn(b), netip.PrefixFrom(b.IPv4(), labtest.BackendNet4.Bits()), netip.PrefixFrom(b.IPv6(), labtest.BackendNet6.Bits()))
	}
	check := fmt.Sprintf("  healthcheck { type: HTTP port: %d send: \"/healthz\" interval: %d timeout: %d retries: %d }\n",
		healthPort, checkInterval, checkTimeout, checkRetries)
	return `# cluster.pb written by deploy/appliance
seesaw_vip { fqdn: "seesaw-vip.lab." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1.lab." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: PRODUCTION }
node { fqdn: "lb2.lab." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
` + fmt.Sprintf(`vserver {
  name: "dsr@lab"
  entry_address { fqdn: "dsr.lab." ipv4: "%s/32" ipv6: "%s/128" status: PRODUCTION }
  rp: "lab@example.com"
  vserver_entry { protocol: TCP port: %d scheduler: RR mode: DSR }
%s%s}
vserver {
  name: "mh@lab"
  entry_address { fqdn: "mh.lab." ipv4: "%s/32" status: PRODUCTION }
  rp: "lab@example.com"
  vserver_entry { protocol: TCP port: %d scheduler: MH mode: DSR }
%s%s}
vserver {
  name: "nat@lab"
  entry_address { fqdn: "nat.lab." ipv4: "%s/32" ipv6: "%s/128" status: PRODUCTION }
  rp: "lab@example.com"
  vserver_entry { protocol: TCP port: %d scheduler: RR mode: NAT source_nat: false }
%s%s}
`, pairDSRVIP4, pairDSRVIP6, svcPort, check, be.String(), pairMHVIP4, svcPort, check, be.String(),
		pairNATVIP4, pairNATVIP6, svcPort, check, be.String())
}

// pairFlows are the pair's services, each held by the client.
var pairFlows = []flow{
	{mode: "DSR", proto: "tcp", vip: pairDSRVIP4},
	{mode: "DSR", proto: "tcp", vip: pairDSRVIP6},
	{mode: "DSR", proto: "tcp", vip: pairMHVIP4},
	{mode: "NAT", proto: "tcp", vip: pairNATVIP4},
	{mode: "NAT", proto: "tcp", vip: pairNATVIP6},
}

// pairRig is the pair of pairClusterPB running, lb1 master, lb2 the
// warm backup, and connections held through every flow, each known to
// lb2's IPVS from the sync.
type pairRig struct {
	topo         *labtest.Topology
	lb1, lb2     *labtest.Node
	client       *labtest.Node
	a1, a2       *Appliance
	held         *heldConns
	bin, cluster string
}

// startPair brings the pair up and holds perFlow connections through
// each of pairFlows.
func startPair(t *testing.T, perFlow int) *pairRig {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	topo := labtest.New(t, labtest.Config{LBs: 2, Backends: 2, LBNIC: "eth2"})
	r := &pairRig{topo: topo, lb1: topo.LBs[0], lb2: topo.LBs[1], client: topo.Client, bin: bin}
	for _, b := range topo.Backends {
		if err := DSR(b, pairDSRVIP4, pairDSRVIP6, pairMHVIP4); err != nil {
			t.Fatal(err)
		}
		Serve(t, b, ServeOptions{TCP: []string{fmt.Sprintf(":%d", svcPort)}, Health: []string{fmt.Sprintf(":%d", healthPort)}})
	}
	r.cluster = pairClusterPB(topo.Backends)
	r.a1 = Start(t, r.lb1, Options{Bin: bin, SeesawCfg: pairSeesawCfg(1, 2), ClusterPB: r.cluster})
	r.a1.WaitRunning(t, 2*time.Minute)
	r.a1.WaitMaster(t, 2*time.Minute)
	r.a2 = Start(t, r.lb2, Options{Bin: bin, SeesawCfg: pairSeesawCfg(2, 1), ClusterPB: r.cluster})
	r.a2.WaitRunning(t, 2*time.Minute)
	// The backup holds the services too (warm), and both run both sync
	// daemons.
	for _, n := range []*labtest.Node{r.lb1, r.lb2} {
		Wait(t, 2*time.Minute, n.Role+"'s IPVS holding every service with both backends and both sync daemons", func() error {
			tab, err := IPVS(n)
			if err != nil {
				return err
			}
			for _, f := range pairFlows {
				s := tab.Service(f.key())
				if s == nil || len(s.Dests) != len(topo.Backends) {
					return fmt.Errorf("%s lacks %s with %d backends:\n%s", n.Role, f.key(), len(topo.Backends), tab.Text)
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
		})
	}
	if err := r.a1.master(); err != nil {
		t.Fatalf("lb1 is no longer master: %v", err)
	}
	// The NAT gateway is the master's alone.
	Wait(t, time.Minute, "the NAT gateway on lb1 only", func() error {
		if !r.holdsGateway(t, r.lb1) || r.holdsGateway(t, r.lb2) {
			return fmt.Errorf("lb1 holds it: %v, lb2: %v", r.holdsGateway(t, r.lb1), r.holdsGateway(t, r.lb2))
		}
		return nil
	})

	var held []*Conn
	for _, f := range pairFlows {
		for range perFlow {
			c, err := Hold(r.client, f.dst(), 10*time.Second)
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				t.Fatalf("%s: %v", f, err)
			}
			held = append(held, c)
		}
	}
	r.held = newHeld(t, held)
	if lost := r.held.exchange(t, "opening", 10*time.Second); len(lost) > 0 {
		t.Fatalf("before the failure: %s", strings.Join(lost, "; "))
	}
	waitSynced(t, r.lb2, held)
	return r
}

// waitSynced waits until n's IPVS connection table, which a backup learns
// from the sync, holds every held connection, established.
func waitSynced(t *testing.T, n *labtest.Node, held []*Conn) {
	t.Helper()
	opened := time.Now()
	Wait(t, time.Minute, n.Role+"'s connection table holding every held connection", func() error {
		conns, err := IPVSConns(n)
		if err != nil {
			return err
		}
		have := map[netip.AddrPort]bool{}
		for _, c := range conns {
			if c.State == "ESTABLISHED" {
				have[c.Source] = true
			}
		}
		var missing []string
		for _, c := range held {
			if !have[c.Src] {
				missing = append(missing, c.Src.String()+"->"+c.Dst.String())
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d not synced: %s", len(missing), len(held), strings.Join(missing, " "))
		}
		return nil
	})
	t.Logf("%s held all %d connections %v after they were opened (the sync flushes a part-filled buffer within 2 s)",
		n.Role, len(held), time.Since(opened).Round(time.Millisecond))
}

// holdsGateway says whether n holds the NAT gateway of both families.
func (r *pairRig) holdsGateway(t *testing.T, n *labtest.Node) bool {
	out, err := n.Output("ip", "-o", "addr", "show", "dev", "eth1")
	if err != nil {
		t.Fatalf("%s: ip addr: %v", n.Role, err)
	}
	return strings.Contains(string(out), " 198.51.100.1/24 ") && strings.Contains(string(out), " 2001:db8:0:2::1/64 ")
}

// TestLabPairFailover: two nodes running the whole appliance, the master
// dies (its processes SIGKILLed and its links taken down), and every
// established connection carries on through the backup, which the kernel's
// connection sync, set up by the engine through the NCC, had told about
// them. Without the sync the new master has no entry for them: rr would
// send their next segment to any backend and that backend would reset it.
func TestLabPairFailover(t *testing.T) {
	labtest.RequireLab(t)
	r := startPair(t, 4)
	if out, err := r.lb2.Output("nft", "list", "chain", "inet", "seesaw", "reply_drop"); err != nil || !strings.Contains(string(out), "tcp sport 80 drop") {
		t.Errorf("lb2's reply-drop chain: %v\n%s", err, out)
	}
	probe := startProber(r.client, pairFlows[0].dst())
	defer probe.stop()
	probe.reset()
	killed := time.Now()
	r.a1.Crash(t)
	for _, l := range []string{"eth0", "eth1", "eth2"} {
		r.lb1.Run(t, "ip", "link", "set", l, "down")
	}
	took := r.a2.WaitMaster(t, time.Minute)
	t.Logf("lb2 master with its data plane applied %v after lb1 died", took.Round(time.Millisecond))
	if !r.holdsGateway(t, r.lb2) {
		t.Errorf("lb2 is master without the NAT gateway")
	}
	r.held.exchange(t, "the failover", 90*time.Second)
	n, failed, span, errs := probe.reset()
	t.Logf("new connections from the failure on: %d of %d failed, over %v, %v", failed, n, span.Round(time.Millisecond), errs)
	t.Logf("%v after the failure", time.Since(killed).Round(time.Millisecond))
	r.held.report(t)
	for _, f := range pairFlows {
		if _, err := Ask(r.client, f.proto, f.dst(), 10*time.Second); err != nil {
			t.Errorf("a new connection through lb2: %s: %v", f, err)
		}
	}
}
