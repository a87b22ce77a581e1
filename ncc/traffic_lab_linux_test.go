package ncc

import (
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// The traffic tests: real TCP and UDP from the client namespace, through
// the router, to VIPs on lb1, where IPVS as the NCC programmed it (Apply
// over the NCC's socket) hands them to backend namespaces. Each backend
// answers with its name, the address the request came from and the address
// it was sent to, so a test sees who answered and what reached them.

// trafficConnTimeout bounds one exchange that should succeed; the guest is
// an emulated machine and may be slow.
const trafficConnTimeout = 10 * time.Second

// TestLabTrafficForwarding proves each forwarding method over IPv4 and
// IPv6, TCP and UDP, with one service per (method, family, protocol), rr
// over two backends, applied in one Apply:
//   - every connection is answered, by backend1 and backend2 in turn;
//   - the backend saw the client's own address (no source NAT anywhere);
//   - the request reached the backend addressed as the method says: NAT
//     rewrote it to the backend's own address, DSR and TUN left the VIP;
//   - TUN packets, and only those, arrived through the backend's tunnel
//     device.
//
// The replies of DSR and TUN backends pass lb1 too, as their default
// gateway (see newTrafficLab), and IPVS counts them in OutPkts all the
// same, so its counters cannot tell the methods apart; the addresses and
// the tunnel counters do.
func TestLabTrafficForwarding(t *testing.T) {
	lab := newTrafficLab(t, 2)
	client := lab.topo.Client
	modes := []struct {
		name string
		fwd  nccpb.Forward
		host int // the VIP's host part on the node net
	}{
		{"NAT", nccpb.Forward_FORWARD_NAT, 100},
		{"DSR", nccpb.Forward_FORWARD_DSR, 101},
		// TUN last: a straggler of its connections (the client's closing
		// packets) arrives tunnelled, and must not count under another
		// method's subtest of the same family.
		{"TUN", nccpb.Forward_FORWARD_TUNNEL, 102},
	}
	families := []struct {
		name         string
		node, client netip.Prefix
		tunnel       string // the backends' tunnel device of the family
	}{
		{"IPv4", labtest.NodeNet4, labtest.ClientNet4, "tun4"},
		{"IPv6", labtest.NodeNet6, labtest.ClientNet6, "tun6"},
	}
	protos := []nccpb.Protocol{nccpb.Protocol_TCP, nccpb.Protocol_UDP}

	// The VIPs are lb1's, on its node-facing interface, where the router
	// resolves them. DSR backends hold their VIPs on lo, TUN backends on
	// their tunnel devices; NAT VIPs stay on lb1 alone.
	vip := func(host int, fam int) netip.Addr { return trafficHost(families[fam].node, host) }
	var dsrVIPs, tunVIPs []netip.Addr
	for f := range families {
		for _, m := range modes {
			trafficMust(t, lab.lb.AddAddr("eth0", trafficHostPrefix(vip(m.host, f))))
		}
		dsrVIPs = append(dsrVIPs, vip(modes[1].host, f))
		tunVIPs = append(tunVIPs, vip(modes[2].host, f))
	}
	for _, b := range lab.topo.Backends {
		trafficDSRBackend(t, b, dsrVIPs...)
		trafficTunnels(t, b)
		trafficMust(t, b.AddAddr("tun4", trafficHostPrefix(tunVIPs[0])), b.AddAddr("tun6", trafficHostPrefix(tunVIPs[1])))
		serveTraffic(t, b, append([]netip.Addr{b.IPv4(), b.IPv6()}, append(dsrVIPs, tunVIPs...)...)...)
	}

	ds := &nccpb.DesiredState{}
	for f := range families {
		for _, m := range modes {
			for _, p := range protos {
				var dests []netip.Addr
				for _, b := range lab.topo.Backends {
					dests = append(dests, []netip.Addr{b.IPv4(), b.IPv6()}[f])
				}
				ds.Services = append(ds.Services, trafficService(p, vip(m.host, f), "rr", m.fwd, dests...))
			}
		}
	}
	lab.apply(t, ds)

	for f, fam := range families {
		for _, m := range modes {
			for _, p := range protos {
				t.Run(fmt.Sprintf("%s/%s/%s", m.name, fam.name, p), func(t *testing.T) {
					v := vip(m.host, f)
					network := strings.ToLower(p.String())
					from := trafficHost(fam.client, 10)
					rx := func() (n []uint64) {
						for _, b := range lab.topo.Backends {
							n = append(n, trafficRx(t, b, fam.tunnel))
						}
						return n
					}
					rx0 := rx()
					const conns = 4
					seen := map[string]int{}
					for i := range conns {
						a, err := trafficAsk(client, network, netip.Addr{}, netip.AddrPortFrom(v, trafficPort), 0, trafficConnTimeout)
						if err != nil {
							t.Fatalf("request %d to %s: %v\nipvsadm -Ln --stats on lb1:\n%s", i, v, err, lab.stats())
						}
						b := lab.backend(t, a.Backend)
						wantLocal := v
						if m.fwd == nccpb.Forward_FORWARD_NAT {
							wantLocal = []netip.Addr{b.IPv4(), b.IPv6()}[f]
						}
						if a.Peer != from || a.Local != wantLocal {
							t.Errorf("request %d: answered by %v, want it to see %s -> %s\nipvsadm -Ln --stats on lb1:\n%s", i, a, from, wantLocal, lab.stats())
						}
						seen[a.Backend]++
					}
					if want := map[string]int{"backend1": conns / 2, "backend2": conns / 2}; !maps.Equal(seen, want) {
						t.Errorf("rr answers %v, want %v\nipvsadm -Ln --stats on lb1:\n%s", seen, want, lab.stats())
					}
					for i, n := range rx() {
						got := n - rx0[i]
						if m.fwd == nccpb.Forward_FORWARD_TUNNEL && got < conns/2 {
							t.Errorf("%s's %s received %d packets, want at least %d (the requests come tunnelled)", lab.topo.Backends[i].Role, fam.tunnel, got, conns/2)
						}
						if m.fwd != nccpb.Forward_FORWARD_TUNNEL && got != 0 {
							t.Errorf("%s's %s received %d packets under %s, want none", lab.topo.Backends[i].Role, fam.tunnel, got, m.name)
						}
					}
				})
			}
		}
	}
}

// TestLabTrafficSchedulers measures, by which backend answers, how IPVS
// spreads IPv4 TCP connections (NAT, four backends) under each scheduler
// the NCC sets. Each subtest applies a state holding its own service alone
// (on a VIP of its own, so no connection of another subtest can match), so
// the Apply also removes the previous subtest's service.
func TestLabTrafficSchedulers(t *testing.T) {
	lab := newTrafficLab(t, 4)
	client := lab.topo.Client
	var backends []netip.Addr
	for _, b := range lab.topo.Backends {
		backends = append(backends, b.IPv4())
		serveTraffic(t, b)
	}
	// Sources for the hashing schedulers: more addresses on the client's
	// eth0, which the router reaches on its client net.
	var sources []netip.Addr
	for i := range 64 {
		a := trafficHost(labtest.ClientNet4, 100+i)
		trafficMust(t, client.AddAddr("eth0", netip.PrefixFrom(a, labtest.ClientNet4.Bits())))
		sources = append(sources, a)
	}
	vips := map[string]netip.Addr{}
	for i, s := range []string{"rr", "wrr", "sh", "mh"} {
		vips[s] = trafficHost(labtest.NodeNet4, 110+i)
		trafficMust(t, lab.lb.AddAddr("eth0", trafficHostPrefix(vips[s])))
	}
	// ask makes one connection from src (the client's own address when
	// invalid) and returns who answered, failing the test if none did or
	// the backend did not see src.
	ask := func(t *testing.T, vip, src netip.Addr) string {
		t.Helper()
		a, err := trafficAsk(client, "tcp", src, netip.AddrPortFrom(vip, trafficPort), 0, trafficConnTimeout)
		if err != nil {
			t.Fatalf("connection from %s to %s: %v\nipvsadm -Ln --stats on lb1:\n%s", src, vip, err, lab.stats())
		}
		if !src.IsValid() {
			src = client.IPv4()
		}
		if a.Peer != src {
			t.Fatalf("%v: want it to see the connection from %s", a, src)
		}
		return a.Backend
	}
	count := func(t *testing.T, vip netip.Addr, n int) map[string]int {
		t.Helper()
		seen := map[string]int{}
		for range n {
			seen[ask(t, vip, netip.Addr{})]++
		}
		return seen
	}

	t.Run("rr", func(t *testing.T) {
		lab.apply(t, &nccpb.DesiredState{Services: []*nccpb.Service{
			trafficService(nccpb.Protocol_TCP, vips["rr"], "rr", nccpb.Forward_FORWARD_NAT, backends...),
		}})
		lab.requireScheduler(t, vips["rr"], "rr")
		const k = 4
		seen := count(t, vips["rr"], k*len(backends))
		want := map[string]int{}
		for _, b := range lab.topo.Backends {
			want[b.Role] = k
		}
		if !maps.Equal(seen, want) {
			t.Errorf("rr over %d connections: %v, want %v\nipvsadm -Ln --stats on lb1:\n%s", k*len(backends), seen, want, lab.stats())
		}
	})

	t.Run("wrr", func(t *testing.T) {
		s := trafficService(nccpb.Protocol_TCP, vips["wrr"], "wrr", nccpb.Forward_FORWARD_NAT, backends[:3]...)
		want := map[string]int{}
		const k = 3 // rounds of the weights' sum, 6 connections each
		for i, d := range s.Destinations {
			d.Weight = int32(i + 1)
			want[lab.topo.Backends[i].Role] = k * (i + 1)
		}
		lab.apply(t, &nccpb.DesiredState{Services: []*nccpb.Service{s}})
		lab.requireScheduler(t, vips["wrr"], "wrr")
		if seen := count(t, vips["wrr"], k*6); !maps.Equal(seen, want) {
			t.Errorf("wrr with weights 1, 2, 3 over %d connections: %v, want %v\nipvsadm -Ln --stats on lb1:\n%s", k*6, seen, want, lab.stats())
		}
	})

	// sh hashes the source address alone (without the sh-port flag): every
	// connection of a source lands where its first did, and different
	// sources land on different backends.
	t.Run("sh", func(t *testing.T) {
		lab.apply(t, &nccpb.DesiredState{Services: []*nccpb.Service{
			trafficService(nccpb.Protocol_TCP, vips["sh"], "sh", nccpb.Forward_FORWARD_NAT, backends...),
		}})
		lab.requireScheduler(t, vips["sh"], "sh")
		used := map[string]int{}
		for _, src := range sources[:16] {
			first := ask(t, vips["sh"], src)
			for i := range 2 {
				if got := ask(t, vips["sh"], src); got != first {
					t.Errorf("source %s: connection %d went to %s, the first to %s\nipvsadm -Ln --stats on lb1:\n%s", src, i+2, got, first, lab.stats())
				}
			}
			used[first]++
		}
		if len(used) < 2 {
			t.Errorf("16 sources all went to one backend: %v", used)
		}
		t.Logf("16 sources over the backends: %v", used)
	})

	// mh (Maglev hashing, of the source address unless flag mh-port): with
	// a backend removed, every source of the other backends stays where it
	// was, and those of the removed one move.
	t.Run("mh", func(t *testing.T) {
		s := trafficService(nccpb.Protocol_TCP, vips["mh"], "mh", nccpb.Forward_FORWARD_NAT, backends...)
		lab.apply(t, &nccpb.DesiredState{Services: []*nccpb.Service{s}})
		lab.requireScheduler(t, vips["mh"], "mh")
		before := map[netip.Addr]string{}
		used := map[string]int{}
		for _, src := range sources {
			before[src] = ask(t, vips["mh"], src)
			used[before[src]]++
		}
		t.Logf("%d sources over 4 backends: %v", len(sources), used)
		gone := lab.topo.Backends[3].Role
		if len(used) != 4 || used[gone] == 0 {
			t.Fatalf("%d sources did not reach all four backends (%v): the removal would prove little", len(sources), used)
		}
		s.Destinations = s.Destinations[:3]
		lab.apply(t, &nccpb.DesiredState{Services: []*nccpb.Service{s}})
		moved := 0
		for _, src := range sources {
			got := ask(t, vips["mh"], src)
			switch {
			case got == gone:
				t.Errorf("source %s still reaches the removed %s\nipvsadm -Ln --stats on lb1:\n%s", src, gone, lab.stats())
			case before[src] == gone:
				moved++
			case got != before[src]:
				t.Errorf("source %s moved from %s to %s, though %s remains", src, before[src], got, before[src])
			}
		}
		t.Logf("%d sources of %s moved; the other %d stayed", moved, gone, len(sources)-moved)
	})
}

// TestLabTrafficHealthCheckMarks proves the DSR and TUN health-check marks
// (the reference's §5.2): for each (backend, method) an IPVS fwmark service
// (family only, rr) with that backend as its one destination, forwarding
// DR or TUN; a checker on the LB dials VIP:port with SO_MARK set to the
// mark, and IPVS, which handles locally originated packets too, forwards
// it exactly as it would a client's. backend1 and backend2 are well
// configured (the VIPs on lo, tunnel devices up); backend3 runs the same
// server but does not hold the VIPs, the DSR misconfiguration that
// black-holes traffic (the reference's §3.7), and its own address answers
// a plain check all the same. For each method and family:
//   - the probe marked for backend1 is answered by backend1, the one for
//     backend2 by backend2;
//   - the probe marked for backend3 gets no answer, though a plain probe of
//     backend3's own address does;
//   - the client's unmarked connections to the VIP, whose service has the
//     good backends only (the engine would have taken backend3 out), are
//     answered by them.
//
// The checker binds no address: a socket dialling a local address (the
// VIP) would take the VIP as its source, and the backend, which holds the
// VIP, would send its answer to itself. The NCC puts the VIPs on lb1
// (eth0, its LB interface here) with a source, lb1's own address on the
// backend net (eth1), as Seesaw v2 does: each VIP's route in the local
// table has that src (checked with ip and GetState), and the probes come
// from it. The answer comes back from the VIP, which is lb1's own as well,
// and is a martian to IPv4 unless accept_local is on (newTrafficLab turns
// it on).
func TestLabTrafficHealthCheckMarks(t *testing.T) {
	lab := newTrafficLab(t, 3)
	good, bad := lab.topo.Backends[:2], lab.topo.Backends[2]
	modes := []struct {
		name string
		fwd  nccpb.Forward
		host int // the VIP's host part on the node net
	}{
		{"DSR", nccpb.Forward_FORWARD_DSR, 120},
		{"TUN", nccpb.Forward_FORWARD_TUNNEL, 121},
	}
	families := []struct {
		name   string
		family nccpb.Family
		node   netip.Prefix
		addr   func(*labtest.Node) netip.Addr
	}{
		{"IPv4", nccpb.Family_INET, labtest.NodeNet4, (*labtest.Node).IPv4},
		{"IPv6", nccpb.Family_INET6, labtest.NodeNet6, (*labtest.Node).IPv6},
	}
	// Marks from the range the engine allocates them from, one block of
	// ten per (method, family): base + backend number.
	mark := func(m, f, backend int) uint32 { return 65536 + uint32(20*f+10*m+backend) }

	// The VIPs go on eth0, with the sources; the NCC owns every address
	// of its LB interface, so lb1's own on eth0 are in the state too.
	eth0, _ := lab.lb.Iface("eth0")
	eth1, _ := lab.lb.Iface("eth1")
	source := map[nccpb.Family]netip.Addr{nccpb.Family_INET: eth1.IPv4.Addr(), nccpb.Family_INET6: eth1.IPv6.Addr()}
	ds := &nccpb.DesiredState{LbInterface: &nccpb.LBInterface{Name: "eth0", Up: true}}
	for _, a := range []netip.Prefix{eth0.IPv4, eth0.IPv6} {
		ds.Vips = append(ds.Vips, &nccpb.VIP{Address: a.String(), Placement: nccpb.VIPPlacement_VIP_ON_LB_INTERFACE})
	}
	var vips []netip.Addr
	for _, f := range families {
		for _, m := range modes {
			v := trafficHost(f.node, m.host)
			ds.Vips = append(ds.Vips, &nccpb.VIP{Address: trafficHostPrefix(v).String(), Placement: nccpb.VIPPlacement_VIP_ON_LB_INTERFACE,
				Source: source[f.family].String()})
			vips = append(vips, v)
		}
	}
	for _, b := range good {
		trafficDSRBackend(t, b, vips...)
		trafficTunnels(t, b)
		serveTraffic(t, b, append([]netip.Addr{b.IPv4(), b.IPv6()}, vips...)...)
	}
	trafficDSRBackend(t, bad) // the ARP settings, but no VIP
	trafficTunnels(t, bad)
	serveTraffic(t, bad, bad.IPv4(), bad.IPv6())

	for fi, f := range families {
		for mi, m := range modes {
			v := trafficHost(f.node, m.host)
			var dests []netip.Addr
			for _, b := range good {
				dests = append(dests, f.addr(b))
			}
			ds.Services = append(ds.Services, trafficService(nccpb.Protocol_TCP, v, "rr", m.fwd, dests...))
			for i, b := range lab.topo.Backends {
				ds.Services = append(ds.Services, &nccpb.Service{
					Family: f.family, Fwmark: mark(mi, fi, i+1), Scheduler: "rr",
					Destinations: []*nccpb.Destination{{Address: f.addr(b).String(), Port: trafficPort, Forward: m.fwd, Weight: 1}},
				})
			}
		}
	}
	lab.apply(t, ds)
	lab.requireSources(t, vips, source)

	for fi, f := range families {
		for mi, m := range modes {
			t.Run(m.name+"/"+f.name, func(t *testing.T) {
				vip := netip.AddrPortFrom(trafficHost(f.node, m.host), trafficPort)
				src := source[f.family] // where the NCC's local route has the probes come from
				// Each backend twice in a row: unmarked probes, which the
				// VIP's rr service would take, could not do that.
				for i, b := range []*labtest.Node{good[0], good[0], good[1], good[1]} {
					m := int(mark(mi, fi, 1+i/2))
					a, err := trafficAsk(lab.lb, "tcp", netip.Addr{}, vip, m, trafficConnTimeout)
					if err != nil {
						t.Fatalf("probe of %s with mark %d: %v\nipvsadm -Ln --stats on lb1:\n%s", b.Role, m, err, lab.stats())
					}
					if a.Backend != b.Role || a.Peer != src || a.Local != vip.Addr() {
						t.Errorf("probe with mark %d: answered by %v, want %s seeing %s -> %s\nipvsadm -Ln --stats on lb1:\n%s", m, a, b.Role, src, vip.Addr(), lab.stats())
					}
				}
				// The misconfigured backend: the probe's packets reach it
				// (IPVS sent them there: its connection entry says so) and
				// go nowhere, so the probe times out.
				m3 := mark(mi, fi, 3)
				if a, err := trafficAsk(lab.lb, "tcp", netip.Addr{}, vip, int(m3), 2*time.Second); err == nil {
					t.Errorf("probe of %s, which lacks the VIP, with mark %d: answered by %v, want no answer\nipvsadm -Ln --stats on lb1:\n%s", bad.Role, m3, a, lab.stats())
				}
				if n := lab.destConns(t, m3); n == 0 {
					t.Errorf("IPVS has no connection to %s under mark %d: the probe did not go there\nipvsadm -Lnc on lb1:\n%s", bad.Role, m3, lab.ipvsadm("-Lnc"))
				}
				// What a plain check sees: the server is up.
				if a, err := trafficAsk(lab.lb, "tcp", netip.Addr{}, netip.AddrPortFrom(f.addr(bad), trafficPort), 0, trafficConnTimeout); err != nil || a.Backend != bad.Role {
					t.Errorf("plain probe of %s's own address: %v, %v; want its answer", bad.Role, a, err)
				}
				seen := map[string]int{}
				for i := range 4 {
					a, err := trafficAsk(lab.topo.Client, "tcp", netip.Addr{}, vip, 0, trafficConnTimeout)
					if err != nil {
						t.Fatalf("client connection %d to %s: %v\nipvsadm -Ln --stats on lb1:\n%s", i, vip, err, lab.stats())
					}
					seen[a.Backend]++
				}
				if want := map[string]int{good[0].Role: 2, good[1].Role: 2}; !maps.Equal(seen, want) {
					t.Errorf("client connections answered by %v, want %v\nipvsadm -Ln --stats on lb1:\n%s", seen, want, lab.stats())
				}
			})
		}
	}
}
