package appliance

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
)

// Full NAT (Seesaw's NAT: IPVS masquerade plus a source NAT of the
// connection to the cluster VIP) on the pair. The backends see the
// cluster VIP as the client and reply to it, through their default
// gateway, the NAT gateway the master holds.
var (
	fullNATVIP4 = netip.MustParseAddr("192.0.2.113")
	fullNATVIP6 = netip.MustParseAddr("2001:db8:0:1::113")
)

var fullNATFlows = []flow{
	{mode: "NAT", proto: "tcp", vip: fullNATVIP4},
	{mode: "NAT", proto: "tcp", vip: fullNATVIP6},
}

func fullNATClusterPB(backends []*labtest.Node) string {
	var be strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&be, "  backend { host { fqdn: %q ipv4: %q ipv6: %q status: PRODUCTION } weight: 1 }\n",
			fqdn(b), netip.PrefixFrom(b.IPv4(), labtest.BackendNet4.Bits()), netip.PrefixFrom(b.IPv6(), labtest.BackendNet6.Bits()))
	}
	return `# cluster.pb written by deploy/appliance
seesaw_vip { fqdn: "seesaw-vip.lab." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1.lab." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: PRODUCTION }
node { fqdn: "lb2.lab." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
` + fmt.Sprintf(`vserver {
  name: "fullnat@lab"
  entry_address { fqdn: "fullnat.lab." ipv4: "%s/32" ipv6: "%s/128" status: PRODUCTION }
  rp: "lab@example.com"
  vserver_entry { protocol: TCP port: %d scheduler: RR mode: NAT }
  healthcheck { type: HTTP port: %d send: "/healthz" interval: %d timeout: %d retries: %d }
%s}
`, fullNATVIP4, fullNATVIP6, svcPort, healthPort, checkInterval, checkTimeout, checkRetries, be.String())
}

// conntrackdConf is where the NCC of a writes conntrackd's configuration
// (a directory beside its socket).
func conntrackdConf(a *Appliance) string {
	return filepath.Join(filepath.Dir(a.Sock("ncc")), "conntrackd", "conntrackd.conf")
}

// TestLabPairFullNATConntrackd: full-NAT connections survive the master's
// crash (its processes SIGKILLed, its links down) when the NCCs run
// conntrackd, which carries the source-NAT bindings to the backup, and
// the new master commits them into its kernel before its VIPs come up.
// The same pair with [connection_sync] conntrackd = false keeps them too,
// in another way: IPVS sync carries the IPVS half, and the new master's
// source NAT makes the binding the old one made, since both keep the
// client's port (the rule has no "random"; with it, every connection got
// a new port and the backend reset it: 0 of 8). What only conntrackd
// keeps, a connection whose backend speaks first after the takeover (it
// finds no binding), is TestLabFailoverMatrix's to show: its chatty and
// server-first connections.
func TestLabPairFullNATConntrackd(t *testing.T) {
	labtest.RequireLab(t)
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/usr/sbin/conntrackd"); err != nil {
		t.Fatalf("Debian's conntrackd is not installed on the host the guest shares (%v): apt-get install conntrackd (deploy/deps.sh and seesaw-lab prepare do)", err)
	}
	t.Run("conntrackd", func(t *testing.T) {
		kept, total := fullNATFailover(t, bin, true)
		if kept != total {
			t.Errorf("with conntrackd %d of %d full-NAT connections kept", kept, total)
		}
	})
	t.Run("without", func(t *testing.T) {
		kept, total := fullNATFailover(t, bin, false)
		if kept != total {
			t.Errorf("without conntrackd %d of %d full-NAT connections kept (does the source NAT pick random ports?)", kept, total)
		}
	})
}

// fullNATFailover runs the pair with full NAT, holds connections through
// it, crashes the master and says how many still work through the new one.
func fullNATFailover(t *testing.T, bin string, withConntrackd bool) (kept, total int) {
	topo := labtest.New(t, labtest.Config{LBs: 2, Backends: 2, LBNIC: "eth2"})
	lb1, lb2, client := topo.LBs[0], topo.LBs[1], topo.Client
	for _, b := range topo.Backends {
		Serve(t, b, ServeOptions{TCP: []string{fmt.Sprintf(":%d", svcPort)}, Health: []string{fmt.Sprintf(":%d", healthPort)}})
	}
	cfg := func(node, peer int) string {
		return pairSeesawCfg(node, peer) + fmt.Sprintf("\n[connection_sync]\nconntrackd = %v\n", withConntrackd)
	}
	cluster := fullNATClusterPB(topo.Backends)
	a1 := Start(t, lb1, Options{Bin: bin, SeesawCfg: cfg(1, 2), ClusterPB: cluster})
	a1.WaitRunning(t, 2*time.Minute)
	a1.WaitMaster(t, 2*time.Minute)
	a2 := Start(t, lb2, Options{Bin: bin, SeesawCfg: cfg(2, 1), ClusterPB: cluster})
	a2.WaitRunning(t, 2*time.Minute)
	for _, a := range []*Appliance{a1, a2} {
		n := a.Node
		Wait(t, 2*time.Minute, n.Role+"'s IPVS holding the full-NAT services, both sync daemons, the source NAT and conntrackd as configured", func() error {
			tab, err := IPVS(n)
			if err != nil {
				return err
			}
			for _, f := range fullNATFlows {
				if s := tab.Service(f.key()); s == nil || len(s.Dests) != len(topo.Backends) {
					return fmt.Errorf("%s lacks %s with %d backends:\n%s", n.Role, f.key(), len(topo.Backends), tab.Text)
				}
			}
			out, err := n.Output("ipvsadm", "-L", "--daemon")
			if err != nil || !strings.Contains(string(out), "master sync daemon") || !strings.Contains(string(out), "backup sync daemon") {
				return fmt.Errorf("ipvsadm --daemon on %s: %v\n%s", n.Role, err, out)
			}
			if out, err := n.Output("nft", "list", "chain", "inet", "seesaw", "vip_snat"); err != nil || !strings.Contains(string(out), "snat ip to 192.0.2.4") {
				return fmt.Errorf("%s's source NAT: %v\n%s", n.Role, err, out)
			}
			out, err = n.Output("conntrackd", "-C", conntrackdConf(a), "-s")
			if withConntrackd && err != nil {
				return fmt.Errorf("%s's conntrackd does not answer: %v\n%s", n.Role, err, out)
			}
			if !withConntrackd && err == nil {
				return Permanent(fmt.Errorf("%s runs conntrackd with conntrackd = false", n.Role))
			}
			return nil
		})
	}
	if err := a1.master(); err != nil {
		t.Fatalf("lb1 is no longer master: %v", err)
	}

	var held []*Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, f := range fullNATFlows {
		for range 4 {
			c, err := Hold(client, f.dst(), 10*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			// Full NAT: the backend sees the cluster VIP, not the client.
			if want := map[bool]string{true: "192.0.2.4", false: "2001:db8:0:1::4"}[f.vip.Is4()]; c.Answer.Peer.String() != want {
				t.Fatalf("%s: the backend saw %s, want the cluster VIP %s", f, c.Answer.Peer, want)
			}
			held = append(held, c)
		}
	}
	for _, c := range held {
		if err := c.Exchange(10 * time.Second); err != nil {
			t.Fatalf("%s before the failure: %v", c.Dst, err)
		}
	}
	// The backup learns of each connection: IPVS's half from the kernel's
	// sync, the source-NAT binding from conntrackd (its external cache).
	Wait(t, time.Minute, "lb2 holding every held connection", func() error {
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
		var ext string
		if withConntrackd {
			out, err := lb2.Output("conntrackd", "-C", conntrackdConf(a2), "-e")
			if err != nil {
				return fmt.Errorf("lb2's conntrackd -e: %v\n%s", err, out)
			}
			ext = string(out)
		}
		var missing []string
		for _, c := range held {
			if !have[c.Src] {
				missing = append(missing, "IPVS "+c.Src.String())
			}
			if withConntrackd && conntrackLine(ext, c.Src) == "" {
				missing = append(missing, "conntrackd "+c.Src.String())
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d not synced: %s", len(missing), strings.Join(missing, " "))
		}
		return nil
	})
	if withConntrackd {
		out, _ := lb2.Output("conntrackd", "-C", conntrackdConf(a2), "-e")
		t.Logf("lb2's external cache has the binding: %s", conntrackLine(string(out), held[0].Src))
	}

	killed := time.Now()
	a1.Crash(t)
	for _, l := range []string{"eth0", "eth1", "eth2"} {
		lb1.Run(t, "ip", "link", "set", l, "down")
	}
	took := a2.WaitMaster(t, time.Minute)
	t.Logf("lb2 master with its data plane applied %v after lb1 died", took.Round(time.Millisecond))
	if withConntrackd {
		// The commit put the bindings in lb2's kernel: its internal cache,
		// resynced from the kernel after the commit, has them.
		out, err := lb2.Output("conntrackd", "-C", conntrackdConf(a2), "-i")
		if l := conntrackLine(string(out), held[0].Src); err != nil || l == "" {
			t.Errorf("lb2's kernel lacks %s's conntrack entry after the commit: %v\n%s", held[0].Src, err, out)
		} else {
			t.Logf("lb2's kernel after the commit: %s", l)
		}
	}

	var lost []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range held {
		wg.Go(func() {
			err := c.Exchange(30 * time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lost = append(lost, fmt.Sprintf("%s -> %s (%s): %v", c.Src, c.Dst, c.Answer.Backend, err))
			}
		})
	}
	wg.Wait()
	t.Logf("full-NAT connections kept through the failover (conntrackd %v): %d of %d, %v after the failure",
		withConntrackd, len(held)-len(lost), len(held), time.Since(killed).Round(time.Millisecond))
	for _, l := range lost {
		t.Logf("lost: %s", l)
	}
	// What the NCC told conntrackd, and how long each took (as much of
	// its log as glog has written out by now).
	for _, l := range logLines(t, a2, "seesaw_ncc", "] conntrackd: ") {
		t.Logf("lb2's NCC: %s", l)
	}
	for _, f := range fullNATFlows {
		if _, err := Ask(client, f.proto, f.dst(), 10*time.Second); err != nil {
			t.Errorf("a new connection through lb2: %s: %v", f, err)
		}
	}
	return len(held) - len(lost), len(held)
}

// conntrackLine is the line of a conntrackd cache dump for the connection
// from src, or "".
func conntrackLine(dump string, src netip.AddrPort) string {
	for _, l := range strings.Split(dump, "\n") {
		if strings.Contains(l, "src="+src.Addr().String()+" ") && strings.Contains(l, fmt.Sprintf("sport=%d ", src.Port())) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// logLines are the lines of a's logs of the daemon (seesaw_ncc, ...) that
// contain what.
func logLines(t *testing.T, a *Appliance, daemon, what string) []string {
	entries, err := os.ReadDir(a.LogDir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	seen := map[string]bool{}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), daemon+".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(a.LogDir(), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, what) && !seen[l] {
				seen[l] = true
				out = append(out, l)
			}
		}
	}
	return out
}
