package appliance

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/engine/peer/peertest"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Failback: lb1, of the higher priority, dies; lb2 takes over and carries
// connections lb1 never saw; lb1 comes back. With [connection_sync]
// failback = true lb1 takes mastership back, but only once its connection
// sync has caught up with lb2's table (engine/failback.go); keepalived
// preempts at once and breaks them.

// failbackCfg is the pair's seesaw.cfg with failback on. The catch-up
// limit is long: the test must see lb1 hold back, not give up.
func failbackCfg(node, peer int, extra string) string {
	return pairSeesawCfg(node, peer) + "\n[connection_sync]\nfailback = true\ncatch_up_limit = 3600\n" + extra
}

// failbackFlows are the pair's rr services: a connection the new master
// has no entry for goes to any backend there (sloppy_tcp), so only the
// sync keeps it. mh's stateless pick would save it without the sync.
var failbackFlows = []flow{pairFlows[0], pairFlows[1], pairFlows[3], pairFlows[4]}

// die is a node failing: its processes killed, its links down.
func die(t *testing.T, a *Appliance) {
	t.Helper()
	a.Crash(t)
	for _, l := range []string{"eth0", "eth1", "eth2"} {
		a.Node.Run(t, "ip", "link", "set", l, "down")
	}
}

// reboot is a dead node booting again, as far as the appliance can tell:
// the kernel state the appliance made is gone (IPVS services and sync
// daemons, its nftables table, the VIPs and interfaces it added, its
// policy routes) and the links come up with the node's own addresses and
// routes. The IPVS connection entries cannot be flushed: a test that
// counts on an empty table opens no connection through the node before it
// dies.
func reboot(t *testing.T, n *labtest.Node) {
	t.Helper()
	n.Run(t, "ipvsadm", "-C")
	for _, d := range []string{"master", "backup"} {
		n.Output("ipvsadm", "--stop-daemon", d)
	}
	n.Run(t, "nft", "flush", "ruleset")
	keep := map[string]bool{"lo": true}
	for _, i := range n.Ifaces {
		keep[i.Name] = true
	}
	for _, line := range strings.Split(n.Run(t, "ip", "-o", "link", "show"), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if !keep[name] {
			n.Run(t, "ip", "link", "del", name)
		}
	}
	for _, fam := range []string{"-4", "-6"} {
		for _, line := range strings.Split(n.Run(t, "ip", fam, "rule", "show"), "\n") {
			prio, _, ok := strings.Cut(line, ":")
			if !ok || prio == "0" || prio == "32766" || prio == "32767" {
				continue
			}
			n.Run(t, "ip", fam, "rule", "del", "priority", prio)
		}
	}
	for _, i := range n.Ifaces {
		n.Run(t, "ip", "addr", "flush", "dev", i.Name)
		for _, p := range []netip.Prefix{i.IPv4, i.IPv6} {
			if p.IsValid() {
				n.Run(t, "ip", "addr", "add", p.String(), "dev", i.Name, "nodad")
			}
		}
		n.Run(t, "ip", "link", "set", i.Name, "up")
	}
	n.Run(t, "ip", "-4", "route", "replace", "default", "via", labtest.Host(labtest.NodeNet4, 1).Addr().String())
	n.Run(t, "ip", "-6", "route", "replace", "default", "via", labtest.Host(labtest.NodeNet6, 1).Addr().String())
}

// pairSSL writes the certificates of peer sync: one CA, a certificate for
// each node's addresses. Failback needs the master's connection count,
// which peer sync carries.
func pairSSL(t *testing.T, lb1, lb2 *labtest.Node) (string, string) {
	ca := peertest.NewCA(t, "seesaw lab CA")
	dir := func(n *labtest.Node) string {
		return ca.WriteDir(t, n.Role+".lab.", n.IPv4().String(), n.IPv6().String())
	}
	return dir(lb1), dir(lb2)
}

// holdIdle is Hold without TCP keepalives (Go sends them every 15 s by
// default): an idle connection sends nothing, so the master's sync never
// resends it.
func holdIdle(n *labtest.Node, dst netip.AddrPort, timeout time.Duration) (*Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		d := net.Dialer{Timeout: timeout, KeepAlive: -1}
		c, err = d.Dial("tcp", dst.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tcp %s: %w", dst, err)
	}
	hc := &Conn{Dst: dst, c: c, r: bufio.NewReader(c)}
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
		hc.Src = netip.AddrPortFrom(la.AddrPort().Addr().Unmap(), la.AddrPort().Port())
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	line, err := hc.r.ReadString('\n')
	if err == nil {
		hc.Answer, err = parseAnswer(line)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("tcp %s: greeting: %w", dst, err)
	}
	return hc, nil
}

// failbackStatus is the engine's failback line (HAStatus) and its last
// decision (the component's failback_last detail).
func failbackStatus(a *Appliance) (now, last string, err error) {
	ctx, cancel := rpcCtx()
	defer cancel()
	hs, err := a.Engine.HAStatus(ctx, &enginepb.HAStatusRequest{})
	if err != nil {
		return "", "", err
	}
	for _, f := range hs.Facilities {
		if f.Name == "failback" {
			now = f.Detail
		}
	}
	st, err := a.Status("engine")
	if err != nil {
		return now, "", err
	}
	return now, st.Details["failback_last"], nil
}

// haState is what the node's HA process says.
func haState(a *Appliance) (seesawpb.HAState, error) {
	ctx, cancel := rpcCtx()
	defer cancel()
	st, err := a.HA.GetStatus(ctx, &hapb.GetStatusRequest{})
	return st.GetState(), err
}

// holding parses "holding back: sync catching up N/M".
func holding(s string) (n, m int, ok bool) {
	rest, found := strings.CutPrefix(s, "holding back: sync catching up ")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rest, "/")
	n, err1 := strconv.Atoi(a)
	m, err2 := strconv.Atoi(b)
	return n, m, found && err1 == nil && err2 == nil
}

// TestLabPairFailback: lb1 dies, lb2 takes over, the client opens
// connections through lb2 and leaves them idle; lb1 comes back. lb1 must
// stay backup while its table lacks them (the kernel resends an idle
// connection only when it next sends), saying so in its status; once the
// client talks on them again, lb1 learns them, takes mastership back, and
// every one of them carries on through it.
func TestLabPairFailback(t *testing.T) {
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
		// No keepalives either way: idle connections send nothing.
		Serve(t, b, ServeOptions{TCP: []string{fmt.Sprintf(":%d", svcPort)}, Health: []string{fmt.Sprintf(":%d", healthPort)}, NoKeepAlive: true})
	}
	cluster := pairClusterPB(topo.Backends)
	ssl1, ssl2 := pairSSL(t, lb1, lb2)
	o1 := Options{Bin: bin, SeesawCfg: failbackCfg(1, 2, ""), ClusterPB: cluster, SSLDir: ssl1}
	a1 := Start(t, lb1, o1)
	a1.WaitRunning(t, 2*time.Minute)
	a1.WaitMaster(t, 2*time.Minute)
	a2 := Start(t, lb2, Options{Bin: bin, SeesawCfg: failbackCfg(2, 1, ""), ClusterPB: cluster, SSLDir: ssl2})
	a2.WaitRunning(t, 2*time.Minute)
	Wait(t, 2*time.Minute, "lb2 warm, with every service", func() error {
		tab, err := IPVS(lb2)
		if err != nil {
			return err
		}
		for _, f := range failbackFlows {
			if s := tab.Service(f.key()); s == nil || len(s.Dests) != len(topo.Backends) {
				return fmt.Errorf("lb2 lacks %s:\n%s", f.key(), tab.Text)
			}
		}
		return nil
	})
	// The first start of the pair delayed nothing: lb1 took mastership with
	// lb2 absent, and lb2, lower, never preempts.
	if err := a1.master(); err != nil {
		t.Fatalf("lb1 is no longer master: %v", err)
	}

	die(t, a1)
	took := a2.WaitMaster(t, time.Minute)
	t.Logf("lb2 master %v after lb1 died", took.Round(time.Millisecond))

	var held []*Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, f := range failbackFlows {
		for range 3 {
			c, err := holdIdle(client, f.dst(), 10*time.Second)
			if err != nil {
				t.Fatalf("%s through lb2: %v", f, err)
			}
			if err := c.Exchange(10 * time.Second); err != nil {
				t.Fatalf("%s through lb2: %v", f, err)
			}
			held = append(held, c)
		}
	}

	// lb1 boots again, while the connections are idle. Not at once: lb2's
	// sync daemon flushes a part-filled buffer within 2 s (longer on this
	// emulated CPU), and a message it sends once lb1 is back teaches lb1
	// the connections without any packet of theirs.
	time.Sleep(10 * time.Second)
	reboot(t, lb1)
	back := time.Now()
	a1 = Start(t, lb1, o1)
	a1.WaitRunning(t, 2*time.Minute)
	var n, m int
	a1.Wait(t, 2*time.Minute, "lb1 holding back", func() error {
		s, _, err := failbackStatus(a1)
		if err != nil {
			return err
		}
		var ok bool
		if n, m, ok = holding(s); !ok {
			return fmt.Errorf("lb1's failback status: %q", s)
		}
		return nil
	})
	t.Logf("lb1 back %v after its start: %d/%d", time.Since(back).Round(time.Millisecond), n, m)
	missing := func() []string {
		conns, err := IPVSConns(lb1)
		if err != nil {
			t.Fatal(err)
		}
		have := map[netip.AddrPort]bool{}
		for _, c := range conns {
			if c.State == "ESTABLISHED" {
				have[c.Source] = true
			}
		}
		var out []string
		for _, c := range held {
			if !have[c.Src] {
				out = append(out, c.Src.String()+"->"+c.Dst.String())
			}
		}
		return out
	}
	if miss := missing(); len(miss) != len(held) {
		s, _, _ := failbackStatus(a1)
		t.Fatalf("lb1 knows %d of the idle connections already: the test cannot tell holding back from having caught up (its failback: %q)\nlb1:\n%s\n%s\nlb2:\n%s",
			len(held)-len(miss), s, lb1.Run(t, "ipvsadm", "-Lnc"), lb1.Run(t, "ipvsadm", "-Ln"), lb2.Run(t, "ipvsadm", "-Lnc"))
	}
	// Two sync refresh periods (10 s each) and more: lb1 stays backup,
	// holding back, since the idle connections are never resent.
	end := time.Now().Add(25 * time.Second)
	for time.Now().Before(end) {
		st, err := haState(a1)
		if err != nil {
			t.Fatal(err)
		}
		s, _, err := failbackStatus(a1)
		if err != nil {
			t.Fatal(err)
		}
		if st != seesawpb.HAState_HA_STATE_BACKUP {
			t.Fatalf("lb1 is %v while its table lacks the idle connections (failback: %q)", st, s)
		}
		if _, _, ok := holding(s); !ok {
			t.Fatalf("lb1 backup but not holding back while its table lacks the idle connections: %q", s)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := a2.master(); err != nil {
		t.Fatalf("lb2 is no longer master: %v", err)
	}

	// The client talks again: the master resends each connection as its
	// packets pass, lb1 learns them, and takes mastership back.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lost []string
	for _, c := range held {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := c.Exchange(90 * time.Second); err != nil {
					mu.Lock()
					lost = append(lost, fmt.Sprintf("%s -> %s (%s): %v", c.Src, c.Dst, c.Answer.Backend, err))
					mu.Unlock()
					return
				}
				time.Sleep(300 * time.Millisecond)
			}
		})
	}
	talk := time.Now()
	took = a1.WaitMaster(t, 3*time.Minute)
	t.Logf("lb1 master again %v after the client talked again", took.Round(time.Millisecond))
	_, last, err := failbackStatus(a1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(last, "sync caught up") {
		t.Errorf("lb1 took over without having caught up: %q", last)
	}
	t.Logf("lb1: %s (%v after the client talked again)", last, time.Since(talk).Round(time.Millisecond))
	if miss := missing(); len(miss) > 0 {
		t.Errorf("lb1 master without %d held connections: %s", len(miss), strings.Join(miss, " "))
	}
	Wait(t, time.Minute, "lb2 backup", func() error {
		st, err := haState(a2)
		if err != nil || st != seesawpb.HAState_HA_STATE_BACKUP {
			return fmt.Errorf("lb2 is %v (%v)", st, err)
		}
		return nil
	})
	// A few more exchanges each through lb1, then stop.
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	for _, c := range held {
		if err := c.Exchange(90 * time.Second); err != nil {
			lost = append(lost, fmt.Sprintf("%s -> %s (%s) after the failback: %v", c.Src, c.Dst, c.Answer.Backend, err))
		}
	}
	t.Logf("held connections kept through the failback: %d of %d", len(held)-len(lost), len(held))
	for _, l := range lost {
		t.Errorf("lost: %s", l)
	}
}
