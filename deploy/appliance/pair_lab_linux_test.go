package appliance

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
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

// TestLabPairFailover: two nodes running the whole appliance, the master
// dies (its processes SIGKILLed and its links taken down), and every
// established connection carries on through the backup, which the kernel's
// connection sync, set up by the engine through the NCC, had told about
// them. Without the sync the new master has no entry for them: rr would
// send their next segment to any backend and that backend would reset it.
func TestLabPairFailover(t *testing.T) {
	labtest.RequireLab(t)
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	topo := labtest.New(t, labtest.Config{LBs: 2, Backends: 2, LBNIC: "eth2"})
	lb1, lb2, client := topo.LBs[0], topo.LBs[1], topo.Client
	for _, b := range topo.Backends {
		if err := DSR(b, pairDSRVIP4, pairDSRVIP6, pairMHVIP4); err != nil {
			t.Fatal(err)
		}
		Serve(t, b, ServeOptions{TCP: []string{fmt.Sprintf(":%d", svcPort)}, Health: []string{fmt.Sprintf(":%d", healthPort)}})
	}
	cluster := pairClusterPB(topo.Backends)
	a1 := Start(t, lb1, Options{Bin: bin, SeesawCfg: pairSeesawCfg(1, 2), ClusterPB: cluster})
	a1.WaitRunning(t, 2*time.Minute)
	a1.WaitMaster(t, 2*time.Minute)
	a2 := Start(t, lb2, Options{Bin: bin, SeesawCfg: pairSeesawCfg(2, 1), ClusterPB: cluster})
	a2.WaitRunning(t, 2*time.Minute)
	// The backup holds the services too (warm), and both run both sync
	// daemons.
	for _, n := range []*labtest.Node{lb1, lb2} {
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
	if err := a1.master(); err != nil {
		t.Fatalf("lb1 is no longer master: %v", err)
	}
	// The NAT gateway is the master's alone.
	holdsGateway := func(n *labtest.Node) bool {
		out, err := n.Output("ip", "-o", "addr", "show", "dev", "eth1")
		if err != nil {
			t.Fatalf("%s: ip addr: %v", n.Role, err)
		}
		return strings.Contains(string(out), " 198.51.100.1/24 ") && strings.Contains(string(out), " 2001:db8:0:2::1/64 ")
	}
	Wait(t, time.Minute, "the NAT gateway on lb1 only", func() error {
		if !holdsGateway(lb1) || holdsGateway(lb2) {
			return fmt.Errorf("lb1 holds it: %v, lb2: %v", holdsGateway(lb1), holdsGateway(lb2))
		}
		return nil
	})
	if out, err := lb2.Output("nft", "list", "chain", "inet", "seesaw", "reply_drop"); err != nil || !strings.Contains(string(out), "tcp sport 80 drop") {
		t.Errorf("lb2's reply-drop chain: %v\n%s", err, out)
	}

	var held []*Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, f := range pairFlows {
		for range 4 {
			c, err := Hold(client, f.dst(), 10*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			held = append(held, c)
		}
	}
	for _, c := range held {
		if err := c.Exchange(10 * time.Second); err != nil {
			t.Fatalf("%s before the failure: %v", c.Dst, err)
		}
	}
	// The backup learns of each connection from the sync: wait until its
	// table has every held one, established.
	opened := time.Now()
	Wait(t, time.Minute, "lb2's connection table holding every held connection", func() error {
		conns, err := IPVSConns(lb2)
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
	t.Logf("lb2 held all %d connections %v after they were opened (the sync flushes a part-filled buffer within 2 s)",
		len(held), time.Since(opened).Round(time.Millisecond))

	probe := startProber(client, pairFlows[0].dst())
	defer probe.stop()
	probe.reset()
	killed := time.Now()
	a1.Crash(t)
	for _, l := range []string{"eth0", "eth1", "eth2"} {
		lb1.Run(t, "ip", "link", "set", l, "down")
	}
	took := a2.WaitMaster(t, time.Minute)
	t.Logf("lb2 master with its data plane applied %v after lb1 died", took.Round(time.Millisecond))
	if !holdsGateway(lb2) {
		t.Errorf("lb2 is master without the NAT gateway")
	}

	var lost []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	var slowest time.Duration
	for _, c := range held {
		wg.Go(func() {
			start := time.Now()
			err := c.Exchange(90 * time.Second)
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, time.Since(start))
			if err != nil {
				lost = append(lost, fmt.Sprintf("%s -> %s (%s): %v", c.Src, c.Dst, c.Answer.Backend, err))
			}
		})
	}
	wg.Wait()
	n, failed, span, errs := probe.reset()
	t.Logf("new connections from the failure on: %d of %d failed, over %v, %v", failed, n, span.Round(time.Millisecond), errs)
	t.Logf("established connections kept through the failover: %d of %d (slowest exchange %v, %v after the failure)",
		len(held)-len(lost), len(held), slowest.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	for _, l := range lost {
		t.Errorf("lost: %s", l)
	}
	for _, f := range pairFlows {
		if _, err := Ask(client, f.proto, f.dst(), 10*time.Second); err != nil {
			t.Errorf("a new connection through lb2: %s: %v", f, err)
		}
	}
}
