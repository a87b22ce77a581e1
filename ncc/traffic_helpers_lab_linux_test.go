package ncc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// What the traffic tests (traffic_lab_linux_test.go) share: a topology
// with one LB running the NCC, backends that say who they are, and a
// client that asks.

// trafficPort is the port of every service and every backend server.
const trafficPort = 80

// trafficLab is one topology (client, router, lb1, backends) with an NCC
// serving on a socket and programming IPVS in lb1's namespace.
type trafficLab struct {
	topo *labtest.Topology
	lb   *labtest.Node
	ncc  nccpb.NCCClient
}

// newTrafficLab builds the topology, makes lb1 the backends' gateway and
// starts the NCC for lb1.
//
// lb1 holds labtest.BackendGateway(), as the active LB of a NAT cluster
// does, and forwards: NAT replies must come back through IPVS, and the
// replies of DSR and TUN backends, which leave by the same default route,
// are routed on to the client from there. Those replies come from a VIP,
// which is one of lb1's own addresses, and IPv4 drops a packet arriving
// from a local address as a martian unless accept_local is on (IPv6 has no
// such check); a real site's backends would have a router of their own.
func newTrafficLab(t *testing.T, backends int) *trafficLab {
	t.Helper()
	labtest.RequireLab(t)
	topo := labtest.New(t, labtest.Config{LBs: 1, Backends: backends})
	lab := &trafficLab{topo: topo, lb: topo.LBs[0]}
	gw4, gw6 := labtest.BackendGateway()
	trafficMust(t,
		lab.lb.AddAddr("eth1", netip.PrefixFrom(gw4, labtest.BackendNet4.Bits())),
		lab.lb.AddAddr("eth1", netip.PrefixFrom(gw6, labtest.BackendNet6.Bits())),
		lab.lb.Sysctl("net.ipv4.ip_forward", "1"),
		lab.lb.Sysctl("net.ipv6.conf.all.forwarding", "1"),
		lab.lb.Sysctl("net.ipv4.conf.eth1.accept_local", "1"),
	)
	lab.ncc = startTrafficNCC(t, lab.lb)
	return lab
}

// startTrafficNCC runs the NCC with its IPVS connection and its network
// stack (used when a state has a network part) opened inside n's namespace
// and returns a client of its socket; both stop when the test ends (before
// the topology is removed: cleanups run last first).
func startTrafficNCC(t *testing.T, n *labtest.Node) nccpb.NCCClient {
	t.Helper()
	open := func() (reconcile.IPVS, error) {
		var c *ipvs.Client
		if err := n.Do(func() (err error) { c, err = ipvs.New(); return err }); err != nil {
			return nil, err
		}
		return c, nil
	}
	sock := filepath.Join(t.TempDir(), "ncc.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Socket: sock, AuditInterval: time.Hour, IPVS: open, NFT: nodeNFT(n, t.Logf),
			Net:   func() (netconf.Kernel, error) { return netconf.NewLinux(n.Handle(), n.Do), nil },
			Probe: func() (ipvs.GenlFamily, error) { return ipvs.GenlFamily{ID: 1}, nil }})
	}()
	cc, err := ipc.Dial(sock, ipc.DialOptions{MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ncc: Run: %v", err)
		}
	})
	return nccpb.NewNCCClient(cc)
}

// apply sends the desired state to the NCC; any error fails the test.
func (l *trafficLab) apply(t *testing.T, ds *nccpb.DesiredState) *nccpb.ApplyResponse {
	t.Helper()
	resp, err := call(t, l.ncc.Apply, &nccpb.ApplyRequest{Desired: ds})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if len(resp.GetErrors()) != 0 {
		t.Fatalf("apply: errors %v\nipvsadm -Ln:\n%s", resp.GetErrors(), l.ipvsadm("-Ln"))
	}
	return resp
}

// ipvsadm runs ipvsadm in lb1's namespace, for failure messages: it
// returns the error's text rather than failing.
func (l *trafficLab) ipvsadm(args ...string) string {
	out, err := l.lb.Output("ipvsadm", args...)
	if err != nil {
		return err.Error()
	}
	return string(out)
}

// stats is `ipvsadm -Ln --stats` of lb1, for failure messages.
func (l *trafficLab) stats() string { return l.ipvsadm("-Ln", "--stats") }

// trafficMust fails the test at the first error.
func trafficMust(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// trafficFamily is the NCC's family of an address.
func trafficFamily(a netip.Addr) nccpb.Family {
	if a.Is4() {
		return nccpb.Family_INET
	}
	return nccpb.Family_INET6
}

// trafficHost is an address of a net's host part n, without the prefix.
func trafficHost(p netip.Prefix, n int) netip.Addr { return labtest.Host(p, n).Addr() }

// trafficHostPrefix is a single-address prefix: a /32 or a /128.
func trafficHostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// trafficService is a service on vip:trafficPort over the backends'
// addresses, weight 1 each, all with one forwarding method.
func trafficService(proto nccpb.Protocol, vip netip.Addr, sched string, fwd nccpb.Forward, backends ...netip.Addr) *nccpb.Service {
	s := &nccpb.Service{Family: trafficFamily(vip), Protocol: proto, Address: vip.String(), Port: trafficPort, Scheduler: sched}
	for _, b := range backends {
		s.Destinations = append(s.Destinations, &nccpb.Destination{Address: b.String(), Port: trafficPort, Forward: fwd, Weight: 1})
	}
	return s
}

// trafficAnswer is what a backend says: its name, the address it saw the
// request come from, and the address the request was sent to.
type trafficAnswer struct {
	Backend     string
	Peer, Local netip.Addr
}

func (a trafficAnswer) String() string {
	return fmt.Sprintf("%s (saw %s -> %s)", a.Backend, a.Peer, a.Local)
}

func parseTrafficAnswer(s string) (trafficAnswer, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return trafficAnswer{}, fmt.Errorf("answer %q: want name, peer and local address", s)
	}
	peer, err1 := netip.ParseAddr(f[1])
	local, err2 := netip.ParseAddr(f[2])
	if err := errors.Join(err1, err2); err != nil {
		return trafficAnswer{}, fmt.Errorf("answer %q: %w", s, err)
	}
	return trafficAnswer{Backend: f[0], Peer: peer, Local: local}, nil
}

func formatTrafficAnswer(name string, peer, local net.Addr) string {
	return fmt.Sprintf("%s %s %s\n", name, trafficAddr(peer), trafficAddr(local))
}

func trafficAddr(a net.Addr) netip.Addr {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	return ap.Addr().Unmap()
}

// serveTraffic starts b's servers on trafficPort: TCP on every address of
// both families, UDP on each of udpAddrs. Every TCP connection and every
// UDP datagram is answered with formatTrafficAnswer.
//
// UDP sockets are bound to one address each because a socket bound to the
// wildcard answers from whatever address the route to the client picks
// (the backend's own), where a DSR or TUN backend must answer from the VIP
// the request went to; TCP answers from a connection's own address anyway.
func serveTraffic(t *testing.T, b *labtest.Node, udpAddrs ...netip.Addr) {
	t.Helper()
	for _, network := range []string{"tcp4", "tcp6"} {
		l, err := b.Listen(network, fmt.Sprintf(":%d", trafficPort))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				io.WriteString(c, formatTrafficAnswer(b.Role, c.RemoteAddr(), c.LocalAddr()))
				c.Close()
			}
		}()
	}
	for _, a := range udpAddrs {
		pc, err := b.ListenPacket("udp", netip.AddrPortFrom(a, trafficPort).String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 1500)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo([]byte(formatTrafficAnswer(b.Role, from, pc.LocalAddr())), from)
			}
		}()
	}
}

// trafficAsk connects from inside n to dst (network "tcp" or "udp") and
// returns the answer. src, when valid, is the source address; mark, when
// not zero, is put on the socket with SO_MARK, as a DSR or TUN health
// check does. timeout bounds the whole exchange. A UDP request is sent
// again every half second until an answer comes: the first may be lost
// while a neighbour is being resolved.
func trafficAsk(n *labtest.Node, network string, src netip.Addr, dst netip.AddrPort, mark int, timeout time.Duration) (trafficAnswer, error) {
	deadline := time.Now().Add(timeout)
	d := net.Dialer{Deadline: deadline}
	if src.IsValid() {
		if network == "udp" {
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		} else {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
	}
	if mark != 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, mark)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	var c net.Conn
	if err := n.Do(func() (err error) { c, err = d.Dial(network, dst.String()); return err }); err != nil {
		return trafficAnswer{}, err
	}
	defer c.Close()
	var (
		b   []byte
		err error
	)
	if network == "udp" {
		buf := make([]byte, 1500)
		for {
			if _, err = c.Write([]byte("who?\n")); err != nil {
				break
			}
			try := time.Now().Add(500 * time.Millisecond)
			if try.After(deadline) {
				try = deadline
			}
			c.SetReadDeadline(try)
			var k int
			if k, err = c.Read(buf); err == nil {
				b = buf[:k]
				break
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !time.Now().Before(deadline) {
				break
			}
		}
	} else {
		c.SetDeadline(deadline)
		b, err = io.ReadAll(c)
	}
	if err != nil {
		return trafficAnswer{}, fmt.Errorf("%s %s: %w", network, dst, err)
	}
	return parseTrafficAnswer(string(b))
}

// trafficTunnels creates, on a backend, the IPIP (tun4) and IPv6-in-IPv6
// (tun6) devices that decapsulate what IPVS tunnels to it, from any
// sender. The guest keeps the kernel's fallback tunl0 and ip6tnl0 to the
// initial namespace (net.core.fb_tunnels_only_for_init_net=1), so a
// namespace makes its own; with no local or remote address they match
// every tunnelled packet, as tunl0 would. Strict reverse-path filtering is
// off: the decapsulated packet comes from the client, which the backend
// routes by eth0, not by the tunnel.
func trafficTunnels(t *testing.T, b *labtest.Node) {
	t.Helper()
	trafficMust(t,
		b.AddLink(&netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: "tun4"}, Proto: unix.IPPROTO_IPIP}),
		b.AddLink(&netlink.Ip6tnl{LinkAttrs: netlink.LinkAttrs{Name: "tun6"}, Proto: unix.IPPROTO_IPV6}),
		b.Sysctl("net.ipv4.conf.all.rp_filter", "0"),
		b.Sysctl("net.ipv4.conf.tun4.rp_filter", "0"),
	)
}

// trafficRx is the packets a link of n has received.
func trafficRx(t *testing.T, n *labtest.Node, link string) uint64 {
	t.Helper()
	l, err := n.Handle().LinkByName(link)
	if err != nil {
		t.Fatalf("%s: link %s: %v", n.Role, link, err)
	}
	if l.Attrs().Statistics == nil {
		t.Fatalf("%s: link %s has no statistics", n.Role, link)
	}
	return l.Attrs().Statistics.RxPackets
}

// trafficDSRBackend readies a backend for direct routing of the vips: it
// holds them on lo, where they are local but, with arp_ignore=1 and
// arp_announce=2, never answered or announced by ARP on eth0 (IPv6 answers
// neighbour solicitations only for addresses of the interface asked on).
func trafficDSRBackend(t *testing.T, b *labtest.Node, vips ...netip.Addr) {
	t.Helper()
	trafficMust(t,
		b.Sysctl("net.ipv4.conf.all.arp_ignore", "1"),
		b.Sysctl("net.ipv4.conf.all.arp_announce", "2"),
	)
	for _, v := range vips {
		trafficMust(t, b.AddAddr("lo", trafficHostPrefix(v)))
	}
}

// backend is the backend with that role name.
func (l *trafficLab) backend(t *testing.T, name string) *labtest.Node {
	t.Helper()
	for _, b := range l.topo.Backends {
		if b.Role == name {
			return b
		}
	}
	t.Fatalf("the answer names %q, which is no backend", name)
	return nil
}

// destConns is the connections IPVS holds now (active and inactive) to
// the destination of the fwmark service mark, as the NCC reads them.
func (l *trafficLab) destConns(t *testing.T, mark uint32) uint32 {
	t.Helper()
	resp, err := call(t, l.ncc.GetState, &nccpb.GetStateRequest{WithStats: true})
	if err != nil {
		t.Fatalf("get state: %v", err)
	}
	var n uint32
	for _, s := range resp.GetState().GetServices() {
		if s.GetFwmark() == mark {
			for _, d := range s.GetDestinations() {
				n += d.GetActiveConnections() + d.GetInactiveConnections()
			}
		}
	}
	return n
}

// requireScheduler fails the test unless lb1's IPVS, as ipvsadm lists it,
// has the TCP service vip:trafficPort with that scheduler.
func (l *trafficLab) requireScheduler(t *testing.T, vip netip.Addr, sched string) {
	t.Helper()
	out := l.ipvsadm("-Ln")
	key := netip.AddrPortFrom(vip, trafficPort).String()
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "TCP" && f[1] == key {
			if f[2] != sched {
				t.Fatalf("ipvsadm lists %s with scheduler %s, want %s:\n%s", key, f[2], sched, out)
			}
			return
		}
	}
	t.Fatalf("ipvsadm does not list TCP %s:\n%s", key, out)
}

// requireSources fails the test unless lb1 holds each of vips with a
// local route whose src is source of the VIP's family, and not the
// kernel's own, as ip lists the local table; and GetState reports each
// VIP with that source.
func (l *trafficLab) requireSources(t *testing.T, vips []netip.Addr, source map[nccpb.Family]netip.Addr) {
	t.Helper()
	resp, err := call(t, l.ncc.GetState, &nccpb.GetStateRequest{})
	if err != nil {
		t.Fatalf("get state: %v", err)
	}
	reported := map[netip.Addr]string{}
	for _, v := range resp.GetState().GetVips() {
		if p, err := netip.ParsePrefix(v.GetAddress()); err == nil {
			reported[p.Addr()] = v.GetSource()
		}
	}
	tables := map[nccpb.Family]string{}
	for f, arg := range map[nccpb.Family]string{nccpb.Family_INET: "-4", nccpb.Family_INET6: "-6"} {
		out, err := l.lb.Output("ip", arg, "route", "show", "table", "local")
		if err != nil {
			t.Fatalf("ip %s route show table local on lb1: %v: %s", arg, err, out)
		}
		tables[f] = string(out)
	}
	for _, v := range vips {
		f := trafficFamily(v)
		src := source[f]
		if got := reported[v]; got != src.String() {
			t.Errorf("GetState reports VIP %s with source %q, want %s", v, got, src)
		}
		var ours, kernels int
		for _, line := range strings.Split(tables[f], "\n") {
			fs := strings.Fields(line)
			if len(fs) < 2 || fs[0] != "local" || fs[1] != v.String() {
				continue
			}
			if i := slices.Index(fs, "src"); i > 0 && i+1 < len(fs) && fs[i+1] == src.String() {
				ours++
			}
			if strings.Contains(line, "proto kernel") {
				kernels++
			}
		}
		if ours != 1 || kernels != 0 {
			t.Errorf("lb1's local table has for %s %d routes with src %s and %d of the kernel's, want 1 and 0:\n%s", v, ours, src, kernels, tables[f])
		}
	}
}
