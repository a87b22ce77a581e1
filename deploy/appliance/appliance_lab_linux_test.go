package appliance

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// The lab cluster: lb1 of the sample's pair (lb2 is only in the config,
// so HA, hearing no peer, makes lb1 master), the topology's two backends,
// and three vservers over them: full NAT, DSR, and a quiescent NAT entry.
// Every vserver has the same fast HTTP check, so each backend address has
// one check (the engine merges identical probes) that decides its
// destinations in every service.
var (
	clusterVIP4  = netip.MustParseAddr("192.0.2.4")
	clusterVIP6  = netip.MustParseAddr("2001:db8:0:1::4")
	natVIP4      = netip.MustParseAddr("192.0.2.100")
	natVIP6      = netip.MustParseAddr("2001:db8:0:1::100")
	dsrVIP4      = netip.MustParseAddr("192.0.2.101")
	dsrVIP6      = netip.MustParseAddr("2001:db8:0:1::101")
	quiescentVIP = netip.MustParseAddr("192.0.2.102")
)

const (
	svcPort    = 80
	healthPort = 8080
	// The check's interval (s), timeout (s) and retries: retries+1
	// consecutive failures take a destination out.
	checkInterval = 1
	checkTimeout  = 1
	checkRetries  = 2
)

const labSeesawCfg = `# seesaw.cfg of lb1, written by deploy/appliance
[cluster]
name = lab
anycast_enabled = false
node_ipv4 = 192.0.2.2
node_ipv6 = 2001:db8:0:1::2
peer_ipv4 = 192.0.2.3
peer_ipv6 = 2001:db8:0:1::3
vip_ipv4 = 192.0.2.4
vip_ipv6 = 2001:db8:0:1::4
vrid = 60

[interface]
node = eth0
lb = eth2
`

func fqdn(b *labtest.Node) string { return b.Role + ".lab." }

func labClusterPB(backends []*labtest.Node) string {
	var be strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&be, "  backend { host { fqdn: %q ipv4: %q ipv6: %q status: PRODUCTION } weight: 1 }\n",
			fqdn(b), netip.PrefixFrom(b.IPv4(), labtest.BackendNet4.Bits()), netip.PrefixFrom(b.IPv6(), labtest.BackendNet6.Bits()))
	}
	check := fmt.Sprintf("  healthcheck { type: HTTP port: %d send: \"/healthz\" interval: %d timeout: %d retries: %d }\n",
		healthPort, checkInterval, checkTimeout, checkRetries)
	vserver := func(name, addrs, entries string) string {
		return fmt.Sprintf("vserver {\n  name: %q\n  entry_address { fqdn: \"%s.lab.\" %s status: PRODUCTION }\n  rp: \"lab@example.com\"\n%s%s%s}\n",
			name, strings.TrimSuffix(name, "@lab"), addrs, entries, check, be.String())
	}
	both := func(mode string) string {
		return fmt.Sprintf("  vserver_entry { protocol: TCP port: %d scheduler: RR mode: %s }\n  vserver_entry { protocol: UDP port: %d scheduler: RR mode: %s }\n",
			svcPort, mode, svcPort, mode)
	}
	return `# cluster.pb written by deploy/appliance
seesaw_vip { fqdn: "seesaw-vip.lab." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1.lab." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: PRODUCTION }
node { fqdn: "lb2.lab." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
` +
		vserver("nat@lab", fmt.Sprintf("ipv4: \"%s/32\" ipv6: \"%s/128\"", natVIP4, natVIP6), both("NAT")) +
		vserver("dsr@lab", fmt.Sprintf("ipv4: \"%s/32\" ipv6: \"%s/128\"", dsrVIP4, dsrVIP6), both("DSR")) +
		vserver("quiescent@lab", fmt.Sprintf("ipv4: \"%s/32\"", quiescentVIP),
			fmt.Sprintf("  vserver_entry { protocol: TCP port: %d scheduler: RR mode: NAT quiescent: true }\n", svcPort))
}

// labRig is the running lab cluster.
type labRig struct {
	topo     *labtest.Topology
	lb       *labtest.Node
	client   *labtest.Node
	backends []*labtest.Node
	servers  map[string]*Server
	a        *Appliance
}

// flow is one way the client reaches the backends: a VIP, a protocol, and
// the forwarding method, which decides what the backend sees.
type flow struct {
	mode  string // NAT or DSR
	proto string // tcp or udp
	vip   netip.Addr
}

func (f flow) String() string {
	return fmt.Sprintf("%s %s %s", f.mode, f.proto, netip.AddrPortFrom(f.vip, svcPort))
}

func (f flow) dst() netip.AddrPort { return netip.AddrPortFrom(f.vip, svcPort) }

// key is the flow's service in ipvsadm's table.
func (f flow) key() string { return ServiceKey(strings.ToUpper(f.proto), f.vip, svcPort) }

// flows are every service of the lab cluster.
var flows = func() []flow {
	var out []flow
	for _, m := range []struct {
		mode   string
		v4, v6 netip.Addr
	}{{"NAT", natVIP4, natVIP6}, {"DSR", dsrVIP4, dsrVIP6}} {
		for _, vip := range []netip.Addr{m.v4, m.v6} {
			for _, p := range []string{"tcp", "udp"} {
				out = append(out, flow{mode: m.mode, proto: p, vip: vip})
			}
		}
	}
	return append(out, flow{mode: "NAT", proto: "tcp", vip: quiescentVIP})
}()

// backendAddr is b's address of vip's family.
func backendAddr(b *labtest.Node, vip netip.Addr) netip.Addr {
	if vip.Is4() {
		return b.IPv4()
	}
	return b.IPv6()
}

// TestLabAppliance starts the appliance once on lb1 and proves, in turn,
// traffic in every mode and family, health checks taking a backend out and
// back, overrides, and daemons killed under established connections.
func TestLabAppliance(t *testing.T) {
	labtest.RequireLab(t)
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	r := &labRig{servers: map[string]*Server{}}
	r.topo = labtest.New(t, labtest.Config{LBs: 1, Backends: 2, LBNIC: "eth2", RoutedBackends: true})
	r.lb, r.client, r.backends = r.topo.LBs[0], r.topo.Client, r.topo.Backends
	for _, b := range r.backends {
		if err := DSR(b, dsrVIP4, dsrVIP6); err != nil {
			t.Fatal(err)
		}
		var udp []netip.AddrPort
		for _, a := range []netip.Addr{b.IPv4(), b.IPv6(), dsrVIP4, dsrVIP6} {
			udp = append(udp, netip.AddrPortFrom(a, svcPort))
		}
		r.servers[b.Role] = Serve(t, b, ServeOptions{TCP: []string{fmt.Sprintf(":%d", svcPort)}, UDP: udp, Health: []string{fmt.Sprintf(":%d", healthPort)}})
	}
	start := time.Now()
	r.a = Start(t, r.lb, Options{Bin: bin, SeesawCfg: labSeesawCfg, ClusterPB: labClusterPB(r.backends)})
	r.a.WaitRunning(t, 2*time.Minute)
	t.Logf("every daemon running and answering %v after the watchdog started", time.Since(start).Round(time.Millisecond))
	r.a.WaitMaster(t, 2*time.Minute)
	t.Logf("HA master and the data plane applied %v after the watchdog started", time.Since(start).Round(time.Millisecond))
	r.waitSteady(t)
	t.Logf("every destination in IPVS %v after the watchdog started", time.Since(start).Round(time.Millisecond))

	t.Run("Traffic", r.testTraffic)
	t.Run("HealthCheck", r.testHealthCheck)
	t.Run("Overrides", r.testOverrides)
	t.Run("DaemonKills", r.testDaemonKills)
}

// steady says whether lb1's IPVS, as ipvsadm lists it, holds exactly the
// lab cluster's services, each with both backends at weight 1.
func (r *labRig) steady() error {
	tab, err := IPVS(r.lb)
	if err != nil {
		return err
	}
	var want []string
	for _, f := range flows {
		want = append(want, f.key())
		s := tab.Service(f.key())
		if s == nil {
			return fmt.Errorf("ipvsadm lacks %s:\n%s", f.key(), tab.Text)
		}
		if s.Scheduler != "rr" {
			return Permanent(fmt.Errorf("%s has scheduler %s, want rr:\n%s", f.key(), s.Scheduler, tab.Text))
		}
		fwd := map[string]string{"NAT": "Masq", "DSR": "Route"}[f.mode]
		for _, b := range r.backends {
			d, ok := s.Dest(backendAddr(b, f.vip))
			if !ok || d.Weight != 1 {
				return fmt.Errorf("%s: %s not in at weight 1:\n%s", f.key(), b.Role, tab.Text)
			}
			if d.Forward != fwd || d.Addr.Port() != svcPort {
				return Permanent(fmt.Errorf("%s: destination %s %s, want port %d %s:\n%s", f.key(), d.Addr, d.Forward, svcPort, fwd, tab.Text))
			}
		}
		if len(s.Dests) != len(r.backends) {
			return fmt.Errorf("%s has %d destinations, want %d:\n%s", f.key(), len(s.Dests), len(r.backends), tab.Text)
		}
	}
	var got []string
	for _, s := range tab.Services {
		got = append(got, s.Key)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("ipvsadm lists services %v, want exactly %v", got, want)
	}
	return nil
}

// waitSteady waits for the steady state: master, every destination in.
func (r *labRig) waitSteady(t *testing.T) time.Duration {
	t.Helper()
	return r.a.Wait(t, 2*time.Minute, "every service with every backend in IPVS", func() error {
		if err := r.a.master(); err != nil {
			return err
		}
		return r.steady()
	})
}

// testTraffic: the client reaches every VIP over TCP and UDP, IPv4 and
// IPv6, NAT and DSR, and round robin spreads it over both backends. Under
// Seesaw's full NAT the backend sees the cluster VIP as the source; under
// DSR it sees the client itself.
func (r *labRig) testTraffic(t *testing.T) {
	r.waitSteady(t)
	for _, f := range flows {
		seen := map[string]int{}
		for i := 0; i < 4; i++ {
			ans, err := Ask(r.client, f.proto, f.dst(), 10*time.Second)
			if err != nil {
				t.Fatalf("%s: request %d: %v", f, i, err)
			}
			seen[ans.Backend]++
			wantPeer, wantLocal := clientAddr(r.client, f.vip), f.vip
			if f.mode == "NAT" {
				wantPeer = clusterVIP4
				if f.vip.Is6() {
					wantPeer = clusterVIP6
				}
				b := r.backend(t, ans.Backend)
				wantLocal = backendAddr(b, f.vip)
			}
			if ans.Peer != wantPeer || ans.Local != wantLocal {
				t.Errorf("%s: the backend answered %v; want it to see %s -> %s", f, ans, wantPeer, wantLocal)
			}
		}
		for _, b := range r.backends {
			if seen[b.Role] == 0 {
				t.Errorf("%s: 4 requests reached %v; round robin should reach both backends", f, seen)
			}
		}
		t.Logf("%-34s answered by %v", f, seen)
	}
}

func clientAddr(c *labtest.Node, vip netip.Addr) netip.Addr {
	if vip.Is4() {
		return c.IPv4()
	}
	return c.IPv6()
}

func (r *labRig) backend(t *testing.T, name string) *labtest.Node {
	t.Helper()
	for _, b := range r.backends {
		if b.Role == name {
			return b
		}
	}
	t.Fatalf("the answer names %q, which is no backend", name)
	return nil
}

// testHealthCheck stops backend1's /healthz server and proves, by counting
// results rather than timing them, that its check turned unhealthy at the
// (retries+1)th consecutive failure and that the destinations left IPVS
// only then (the quiescent entry's at weight 0 instead); then that one
// success brings them back.
func (r *labRig) testHealthCheck(t *testing.T) {
	r.waitSteady(t)
	b1, b2 := r.backends[0], r.backends[1]
	addr := b1.IPv4()
	hist := newHistory()
	checkOf := func() (*enginepb.CheckView, error) {
		ctx, cancel := rpcCtx()
		defer cancel()
		resp, err := r.a.Engine.Checks(ctx, &enginepb.ChecksRequest{Backend: fqdn(b1), WithHistory: true})
		if err != nil {
			return nil, fmt.Errorf("engine Checks: %w", err)
		}
		for _, cv := range resp.Checks {
			if cv.GetCheck().GetAddress() == addr.String() {
				if cv.Note != "" {
					return nil, fmt.Errorf("engine Checks: %s: %s", cv.Name, cv.Note)
				}
				hist.add(cv.History)
				return cv, nil
			}
		}
		return nil, Permanent(fmt.Errorf("engine Checks has no check of %s: %v", addr, resp.Checks))
	}
	cv, err := checkOf()
	if err != nil {
		t.Fatal(err)
	}
	if !cv.Healthy || len(cv.Destinations) != 5 {
		t.Fatalf("check %s of %s: healthy=%v deciding %v; want healthy, deciding backend1's five IPv4 destinations", cv.Name, addr, cv.Healthy, cv.Destinations)
	}
	t.Logf("check %s (%s) decides %v", cv.Name, cv.Check.GetName(), cv.Destinations)

	quiescent := ServiceKey("TCP", quiescentVIP, svcPort)
	var allIn []string // backend1's IPv4 destinations, as Holding lists them while healthy
	for _, f := range flows {
		if f.vip.Is4() {
			allIn = append(allIn, f.key()+" weight 1")
		}
	}
	sort.Strings(allIn)
	stopped := time.Now()
	r.servers[b1.Role].StopHealth()
	var outSeen time.Time
	r.a.Wait(t, time.Minute, "backend1 out of IPVS after its check failed", func() error {
		// IPVS first, then the check: a destination found gone while
		// the check, read after, is still healthy left too early.
		tab, err := IPVS(r.lb)
		if err != nil {
			return err
		}
		cv, err := checkOf()
		if err != nil {
			return err
		}
		held := tab.Holding(addr)
		sort.Strings(held)
		if cv.Healthy && !slices.Equal(held, allIn) {
			return Permanent(fmt.Errorf("backend1 left IPVS while its check was still healthy: it is in %v, want %v; last result %v", held, allIn, cv.Last))
		}
		if cv.Healthy {
			return fmt.Errorf("check still healthy; last result %v", cv.Last)
		}
		if !slices.Equal(held, []string{quiescent + " weight 0"}) {
			return fmt.Errorf("check unhealthy; backend1 (%s) is in %v, want only %s at weight 0", addr, held, quiescent)
		}
		outSeen = time.Now()
		return nil
	})

	// The count: the results since the last success before the stop are
	// failures, and the check turned unhealthy exactly at failure
	// number retries+1.
	rs := hist.sorted()
	first := slices.IndexFunc(rs, func(x *hcpb.Result) bool { return !x.Healthy && x.Time.AsTime().After(stopped) })
	if first < 0 {
		t.Fatalf("no unhealthy result in the history: %s", formatResults(rs))
	}
	last := first - 1
	for last >= 0 && !rs[last].Success {
		last--
	}
	if last < 0 {
		t.Fatalf("the history does not reach back to the last success before the failures: %s", formatResults(rs))
	}
	streak := rs[last+1 : first+1]
	if len(streak) != checkRetries+1 {
		t.Errorf("the check turned unhealthy at consecutive failure %d, want %d (retries %d + 1): %s",
			len(streak), checkRetries+1, checkRetries, formatResults(rs[last:first+1]))
	}
	for _, x := range streak[:len(streak)-1] {
		if !x.Healthy {
			t.Errorf("a failure before the (retries+1)th already reported unhealthy: %s", formatResults(rs[last:first+1]))
		}
	}
	firstFail, turned := streak[0].Time.AsTime(), streak[len(streak)-1].Time.AsTime()
	t.Logf("results from the last success: %s", formatResults(rs[last:first+1]))
	t.Logf("bound interval x retries + 1s = %v; measured: server stopped -> first failure %v, first failure -> unhealthy (%d failures) %v, "+
		"unhealthy -> seen out of IPVS within %v (poll every %v), server stopped -> out of IPVS seen %v",
		time.Duration(checkInterval*checkRetries)*time.Second+time.Second,
		firstFail.Sub(stopped).Round(time.Millisecond), len(streak), turned.Sub(firstFail).Round(time.Millisecond),
		outSeen.Sub(turned).Round(time.Millisecond), PollInterval, outSeen.Sub(stopped).Round(time.Millisecond))

	// The engine says the same: backend1 quiesced on the quiescent entry,
	// out of service elsewhere; new connections all reach backend2.
	ctx, cancel := rpcCtx()
	vs, err := r.a.Engine.Vservers(ctx, &enginepb.VserversRequest{})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs.Vservers {
		for _, s := range v.Services {
			for _, d := range s.Destinations {
				if d.Address != addr.String() {
					continue
				}
				if wantQ := v.Name == "quiescent@lab"; d.Quiesced != wantQ || d.InIpvs != wantQ || d.Healthy {
					t.Errorf("engine Vservers: %s: healthy=%v in_ipvs=%v quiesced=%v; want unhealthy, quiesced and in IPVS only on the quiescent entry",
						d.Name, d.Healthy, d.InIpvs, d.Quiesced)
				}
			}
		}
	}
	for _, f := range flows {
		if f.proto != "tcp" || !f.vip.Is4() { // the IPv6 check fails on its own time
			continue
		}
		ans, err := Ask(r.client, f.proto, f.dst(), 10*time.Second)
		if err != nil {
			t.Errorf("%s with backend1 out: %v", f, err)
		} else if ans.Backend != b2.Role {
			t.Errorf("%s with backend1 out: answered by %s", f, ans.Backend)
		}
	}

	restarted := time.Now()
	if err := r.servers[b1.Role].StartHealth(); err != nil {
		t.Fatal(err)
	}
	back := r.waitSteady(t)
	if _, err := checkOf(); err != nil {
		t.Fatal(err)
	}
	rs = hist.sorted()
	if i := slices.IndexFunc(rs, func(x *hcpb.Result) bool { return x.Success && x.Time.AsTime().After(restarted) }); i < 0 || !rs[i].Healthy {
		t.Errorf("the first success after the server came back did not make the check healthy (rise 1): %s", formatResults(rs))
	}
	t.Logf("server restarted -> backend1 back in every service at weight 1: %v", back.Round(time.Millisecond))
}

// history gathers a check's results across polls: the healthcheck process
// keeps only the last few.
type history struct {
	mu sync.Mutex
	m  map[int64]*hcpb.Result
}

func newHistory() *history { return &history{m: map[int64]*hcpb.Result{}} }

func (h *history) add(rs []*hcpb.Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, x := range rs {
		h.m[x.GetTime().AsTime().UnixNano()] = x
	}
}

func (h *history) sorted() []*hcpb.Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*hcpb.Result
	for _, x := range h.m {
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.AsTime().Before(out[j].Time.AsTime()) })
	return out
}

func formatResults(rs []*hcpb.Result) string {
	var b strings.Builder
	for _, x := range rs {
		ok := "fail"
		if x.Success {
			ok = "ok"
		}
		state := "healthy"
		if !x.Healthy {
			state = "UNHEALTHY"
		}
		fmt.Fprintf(&b, "\n  %s %-4s -> %-9s %s", x.Time.AsTime().Format("15:04:05.000"), ok, state, x.Message)
	}
	return b.String()
}

// testOverrides: a vserver override takes the VIP away and gives it back;
// a backend override takes the backend out of every service.
func (r *labRig) testOverrides(t *testing.T) {
	r.waitSteady(t)
	override := func(req *enginepb.OverrideRequest) {
		t.Helper()
		ctx, cancel := rpcCtx()
		defer cancel()
		if _, err := r.a.Engine.Override(ctx, req); err != nil {
			t.Fatalf("Override %v: %v", req, err)
		}
	}
	hasAddr := func(a netip.Addr) (bool, error) {
		out, err := r.lb.Output("ip", "-o", "addr", "show")
		if err != nil {
			return false, err
		}
		return strings.Contains(string(out), " "+a.String()+"/"), nil
	}
	dsr := []flow{{"DSR", "tcp", dsrVIP4}, {"DSR", "tcp", dsrVIP6}}
	nat := flow{"NAT", "tcp", natVIP4}

	override(&enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Vserver{Vserver: "dsr@lab"}, State: enginepb.OverrideState_OVERRIDE_DISABLED})
	took := r.a.Wait(t, time.Minute, "dsr@lab's VIPs gone after the disabling override", func() error {
		for _, f := range dsr {
			if has, err := hasAddr(f.vip); err != nil || has {
				return fmt.Errorf("lb1 holds %s (%v)", f.vip, err)
			}
			if ans, err := Ask(r.client, f.proto, f.dst(), 2*time.Second); err == nil {
				return fmt.Errorf("%s still answers: %v", f, ans)
			}
		}
		return nil
	})
	t.Logf("vserver override disabled: VIPs gone from lb1 and unreachable after %v", took.Round(time.Millisecond))
	ctx, cancel := rpcCtx()
	ovs, err := r.a.Engine.Overrides(ctx, &enginepb.OverridesRequest{})
	cancel()
	if err != nil || len(ovs.Overrides) != 1 || ovs.Overrides[0].GetVserver() != "dsr@lab" || ovs.Overrides[0].GetInfo().GetSetBy() == "" {
		t.Errorf("Overrides = %v (%v), want dsr@lab's, with who set it", ovs, err)
	}
	if ans, err := Ask(r.client, nat.proto, nat.dst(), 10*time.Second); err != nil {
		t.Errorf("%s, not overridden, with dsr@lab disabled: %v", nat, err)
	} else {
		t.Logf("%s still answers: %v", nat, ans)
	}
	override(&enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Vserver{Vserver: "dsr@lab"}, State: enginepb.OverrideState_OVERRIDE_DEFAULT})
	took = r.a.Wait(t, time.Minute, "dsr@lab's VIPs back after the override was cleared", func() error {
		for _, f := range dsr {
			if has, err := hasAddr(f.vip); err != nil || !has {
				return fmt.Errorf("lb1 lacks %s (%v)", f.vip, err)
			}
			if _, err := Ask(r.client, f.proto, f.dst(), 3*time.Second); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("vserver override cleared: VIPs back and answering after %v", took.Round(time.Millisecond))
	r.waitSteady(t)

	b1, b2 := r.backends[0], r.backends[1]
	override(&enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Backend{Backend: fqdn(b2)}, State: enginepb.OverrideState_OVERRIDE_DISABLED})
	took = r.a.Wait(t, time.Minute, "backend2 out of every service after the disabling override", func() error {
		tab, err := IPVS(r.lb)
		if err != nil {
			return err
		}
		for _, a := range []netip.Addr{b2.IPv4(), b2.IPv6()} {
			if h := tab.Holding(a); len(h) > 0 {
				return fmt.Errorf("backend2 (%s) is still in %v", a, h)
			}
		}
		for _, f := range flows {
			s := tab.Service(f.key())
			if s == nil {
				return Permanent(fmt.Errorf("%s is gone:\n%s", f.key(), tab.Text))
			}
			if _, ok := s.Dest(backendAddr(b1, f.vip)); !ok {
				return Permanent(fmt.Errorf("backend1 left %s too:\n%s", f.key(), tab.Text))
			}
		}
		return nil
	})
	t.Logf("backend override disabled: backend2 in no service after %v", took.Round(time.Millisecond))
	for _, f := range flows {
		ans, err := Ask(r.client, f.proto, f.dst(), 10*time.Second)
		if err != nil {
			t.Errorf("%s with backend2 disabled: %v", f, err)
		} else if ans.Backend != b1.Role {
			t.Errorf("%s with backend2 disabled: answered by %s", f, ans.Backend)
		}
	}
	override(&enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Backend{Backend: fqdn(b2)}, State: enginepb.OverrideState_OVERRIDE_DEFAULT})
	t.Logf("backend override cleared: every destination back after %v", r.waitSteady(t).Round(time.Millisecond))
}

// testDaemonKills kills the engine, the NCC, HA and healthcheck in turn
// with SIGKILL while the client holds TCP connections through the NAT and
// DSR VIPs of both families, and proves that once each daemon is back
// every held connection still carries data.
func (r *labRig) testDaemonKills(t *testing.T) {
	r.waitSteady(t)
	var held []*Conn
	for _, f := range flows {
		if f.proto != "tcp" || f.vip == quiescentVIP {
			continue
		}
		for i := 0; i < len(r.backends); i++ {
			c, err := Hold(r.client, f.dst(), 10*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			held = append(held, c)
		}
	}
	var names []string
	for _, c := range held {
		names = append(names, fmt.Sprintf("%s->%s", c.Dst, c.Answer.Backend))
	}
	t.Logf("holding %d connections: %s", len(held), strings.Join(names, " "))
	h := newHeld(t, held)
	exchange := func(after string) { t.Helper(); h.exchange(t, after, 90*time.Second) }
	exchange("opening")
	// New connections are tried all along, for the log: what a client
	// arriving during a restart sees. (The held ones are the assertion.)
	probe := startProber(r.client, flow{"NAT", "tcp", natVIP4}.dst())
	defer probe.stop()
	for _, d := range []string{"engine", "ncc", "ha", "healthcheck"} {
		probe.reset()
		killedAt := time.Now()
		old, pid, away := r.a.Kill(t, d, 2*time.Minute)
		steady := r.waitSteady(t)
		n, failed, span, errs := probe.reset()
		t.Logf("SIGKILL %s (pid %d) at %s: the watchdog's new pid %d answered after %v; master with every destination in IPVS %v later; "+
			"new connections meanwhile: %d of %d failed (over %v) %v",
			d, old, killedAt.Format("15:04:05.000"), pid, away.Round(time.Millisecond), steady.Round(time.Millisecond), failed, n, span.Round(time.Millisecond), errs)
		exchange("SIGKILL " + d)
		// New connections work too.
		for _, f := range flows {
			if _, err := Ask(r.client, f.proto, f.dst(), 10*time.Second); err != nil {
				t.Errorf("after SIGKILL %s: a new request: %s: %v", d, f, err)
			}
		}
	}
	h.report(t)
}

// prober opens a new connection to a VIP every PollInterval and counts
// those that fail.
type prober struct {
	quit, done chan struct{}

	mu          sync.Mutex // held during each probe, so that reset waits for one under way
	n, failed   int
	first, last time.Time // of the failures
	errs        []string
}

func startProber(n *labtest.Node, dst netip.AddrPort) *prober {
	p := &prober{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.quit:
				return
			case <-time.After(PollInterval):
			}
			p.mu.Lock()
			at := time.Now()
			_, err := Ask(n, "tcp", dst, time.Second)
			p.n++
			if err != nil {
				p.failed++
				if p.first.IsZero() {
					p.first = at
				}
				p.last = time.Now()
				p.errs = append(p.errs, fmt.Sprintf("%s: %v", at.Format("15:04:05.000"), err))
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// reset waits for a probe under way to end and returns the counts since
// the last reset: tries, failures, the time from the first failure to the
// end of the last, and the errors.
func (p *prober) reset() (n, failed int, span time.Duration, errs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, failed, errs = p.n, p.failed, p.errs
	if failed > 0 {
		span = p.last.Sub(p.first)
	}
	p.n, p.failed, p.first, p.last, p.errs = 0, 0, time.Time{}, time.Time{}, nil
	return n, failed, span, errs
}

func (p *prober) stop() {
	close(p.quit)
	<-p.done
}
