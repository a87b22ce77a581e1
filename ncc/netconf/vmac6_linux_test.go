package netconf_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/deploy/testenv"
	"github.com/seesawlb/seesaw/ncc/announce"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/netconf/netconftest"
	"github.com/seesawlb/seesaw/ncc/reconcile"
)

// TestVMAC6OnTheHostKernel runs the IPv6 VRRP MAC's life on the host's
// kernel, through the real netconf.Linux and the reconciler: the LB
// interface is a veth whose peer lives in another namespace, a neighbour
// on the LAN. The macvlan is made with the IPv6 VRRP MAC and the IPv6 VIP;
// the neighbour resolves the VIP to that MAC, and the IPv4 VIP, only ever
// to the IPv4 one, and an announcement made as the NCC makes it moves the
// neighbour to it; then it goes down with the backup, keeping the VIP,
// comes up with the master again and answers, and goes away with use_vmac
// off and at cleanup. After each step the kernel reads as the
// fake does after the same step.
func TestVMAC6OnTheHostKernel(t *testing.T) {
	testenv.RequireRoot(t)
	id := rand.Uint32() % 1000000
	lb, err := labtest.NewNode("lb", fmt.Sprintf("v6lb%d", id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	peer, err := labtest.NewNode("peer", fmt.Sprintf("v6peer%d", id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	if err := labtest.Veth(lb, "eth1", peer, "p1"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"192.0.2.2/24", "2001:db8::2/64"} {
		if err := peer.AddAddr("p1", netip.MustParsePrefix(a)); err != nil {
			t.Fatal(err)
		}
	}
	eth1, err := lb.Handle().LinkByName("eth1")
	if err != nil {
		t.Fatal(err)
	}
	ownMAC := eth1.Attrs().HardwareAddr

	k := netconf.NewLinux(lb.Handle(), lb.Do)
	r := reconcile.NewNet(k, t.Logf)
	fake := netconftest.New(nil)
	fake.AddPhysical("eth1", ownMAC, true)
	rf := reconcile.NewNet(fake, nil)
	sysctls := []string{"net/ipv6/conf/vrrp6.42/accept_dad", "net/ipv6/conf/vrrp6.42/accept_ra",
		"net/ipv6/conf/vrrp6.42/keep_addr_on_down", "net/ipv4/conf/vrrp6.42/arp_ignore"}
	vip4, vip6 := netip.MustParsePrefix("192.0.2.10/24"), netip.MustParsePrefix("2001:db8::10/64")
	vips := []netconf.VIP{{Addr: vip4, Link: "eth1"}, {Addr: vip6, Link: "eth1"}}
	lbIf := netconf.LBInterface{Name: "eth1", Up: true, VRID: 42, UseVMAC: true}

	apply := func(name string, s netconf.State) {
		t.Helper()
		applyCleanly(t, r, name, s)
		if _, err := rf.Apply(s, false); err != nil {
			t.Fatal(err)
		}
		got, err := netconftest.Snapshot(k, []string{"eth1"}, nil, sysctls)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := netconftest.Snapshot(fake, []string{"eth1"}, nil, sysctls)
		if got != want {
			t.Fatalf("after %s the kernel holds:\n%s\nthe fake:\n%s", name, got, want)
		}
	}
	ip := func(args ...string) string { return lb.Run(t, "ip", args...) }

	// The master.
	apply("master", netconf.State{LB: lbIf, VIPs: vips})
	if out := ip("-d", "-o", "link", "show", "dev", "vrrp6.42"); !strings.Contains(out, "00:00:5e:00:02:2a") ||
		!strings.Contains(out, "macvlan mode bridge") || !strings.Contains(out, "vrrp6.42@eth1") {
		t.Errorf("the macvlan: %s", out)
	}
	if out := ip("-6", "-o", "addr", "show", "dev", "vrrp6.42"); !strings.Contains(out, "2001:db8::10/64") {
		t.Errorf("the IPv6 VIP is not on the macvlan: %s", out)
	}
	if out := ip("-o", "addr", "show", "dev", "eth1"); strings.Contains(out, "2001:db8::10") || !strings.Contains(out, "192.0.2.10/24") {
		t.Errorf("eth1: %s", out)
	}

	// The neighbour reaches the VIPs: the IPv6 one at the IPv6 VRRP MAC,
	// the IPv4 one at the IPv4 VRRP MAC, and no ARP reply offers another.
	arp, err := openARP(peer, "p1")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(arp)
	for _, a := range []netip.Addr{vip6.Addr(), vip4.Addr()} {
		reach(t, lb, peer, a)
	}
	for _, n := range []struct{ addr, mac string }{{"2001:db8::10", "00:00:5e:00:02:2a"}, {"192.0.2.10", "00:00:5e:00:01:2a"}} {
		if out := peer.Run(t, "ip", "neigh", "show", n.addr, "dev", "p1"); !strings.Contains(out, "lladdr "+n.mac) {
			t.Errorf("the neighbour has %s at: %s (want %s)", n.addr, out, n.mac)
		}
	}
	replies := arpReplies(t, arp, vip4.Addr(), 300*time.Millisecond)
	if len(replies) == 0 {
		t.Errorf("no ARP reply for %s seen", vip4.Addr())
	}
	for _, m := range replies {
		if m != "00:00:5e:00:01:2a" {
			t.Errorf("an ARP reply offers %s at %s", vip4.Addr(), m)
		}
	}

	// An announcement as the NCC makes it (ncc.go announce: on the VIP's
	// link in the kept state, with that link's MAC) moves a neighbour that
	// had the IPv6 VIP at another MAC (the other node's) to the IPv6 VRRP
	// MAC.
	peer.Run(t, "ip", "neigh", "replace", "2001:db8::10", "lladdr", "02:00:00:00:00:99", "dev", "p1", "nud", "stale")
	announceAsTheNCC(t, lb, k, r, vip6.Addr())
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out := peer.Run(t, "ip", "neigh", "show", "2001:db8::10", "dev", "p1")
		if strings.Contains(out, "lladdr 00:00:5e:00:02:2a") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the announcement the neighbour has the VIP at: %s", out)
		}
	}

	// The backup: the macvlan down, the VIP kept on it.
	backup := lbIf
	backup.Up = false
	apply("backup", netconf.State{LB: backup, VIPs: vips})
	if out := ip("-6", "-o", "addr", "show", "dev", "vrrp6.42"); !strings.Contains(out, "2001:db8::10/64") {
		t.Errorf("the backup's macvlan lost the VIP: %s", out)
	}

	// The master again: the VIPs kept while down answer at once.
	apply("master again", netconf.State{LB: lbIf, VIPs: vips})
	peer.Run(t, "ip", "neigh", "flush", "dev", "p1")
	reach(t, lb, peer, vip6.Addr())
	if out := peer.Run(t, "ip", "neigh", "show", "2001:db8::10", "dev", "p1"); !strings.Contains(out, "lladdr 00:00:5e:00:02:2a") {
		t.Errorf("after the failover the neighbour has the VIP at: %s", out)
	}

	// use_vmac off: the macvlan gone, the VIP back on the LB interface,
	// and the interface's own MAC.
	own := lbIf
	own.UseVMAC = false
	apply("use_vmac off", netconf.State{LB: own, VIPs: vips})
	if out, err := lb.Output("ip", "link", "show", "dev", "vrrp6.42"); err == nil {
		t.Errorf("the macvlan is still there: %s", out)
	}
	if out := ip("-6", "-o", "addr", "show", "dev", "eth1"); !strings.Contains(out, "2001:db8::10/64") {
		t.Errorf("the VIP is not back on eth1: %s", out)
	}

	// On again, then cleanup: nothing of the NCC's left.
	apply("use_vmac on again", netconf.State{LB: lbIf, VIPs: vips})
	apply("cleanup", netconf.State{LB: netconf.LBInterface{Name: "eth1"}})
	if out, err := lb.Output("ip", "link", "show", "dev", "vrrp6.42"); err == nil {
		t.Errorf("the macvlan survived cleanup: %s", out)
	}
	if out := ip("-o", "link", "show", "dev", "eth1"); !strings.Contains(out, ownMAC.String()) {
		t.Errorf("eth1 after cleanup: %s (want its own MAC %s)", out, ownMAC)
	}
}

// announceAsTheNCC announces addr the way the NCC's announce does: from
// the link the reconciler's kept state puts it on, with that link's MAC.
func announceAsTheNCC(t *testing.T, lb *labtest.Node, k netconf.Kernel, r *reconcile.NetReconciler, addr netip.Addr) {
	t.Helper()
	d, _ := r.Desired()
	var link string
	for _, v := range d.VIPs {
		if v.Addr.Addr() == addr {
			link = v.Link
		}
	}
	links, err := k.Links()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Name != link {
			continue
		}
		f, err := announce.Frame(l.MAC, addr)
		if err != nil {
			t.Fatal(err)
		}
		var s *announce.Sender
		if err := lb.Do(func() (err error) { s, err = announce.NewSender(); return err }); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Send(l.Index, f); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is on %q, which is not a link", addr, link)
}

// reach sends UDP datagrams from peer to addr until lb gets one: the peer
// has resolved addr to a MAC that lands on lb.
func reach(t *testing.T, lb, peer *labtest.Node, addr netip.Addr) {
	t.Helper()
	dst := netip.AddrPortFrom(addr, 9999)
	pc, err := lb.ListenPacket("udp", dst.String())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var c *net.UDPConn
	if err := peer.Do(func() (err error) { c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst)); return err }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for deadline := time.Now().Add(10 * time.Second); ; {
		c.Write([]byte("hello")) // an error here (no neighbour yet) is retried
		pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := pc.ReadFrom(buf); err == nil && string(buf[:n]) == "hello" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached the LB namespace", addr)
		}
	}
}

// openARP opens a packet socket for the ARP frames link of n receives.
func openARP(n *labtest.Node, link string) (int, error) {
	fd := -1
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ARP))
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index})
	})
	if err != nil && fd >= 0 {
		unix.Close(fd)
	}
	return fd, err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// arpReplies reads the ARP replies for addr that arrive on fd (opened
// before the request went out) until window has passed without any new
// frame, and returns the MACs they offer.
func arpReplies(t *testing.T, fd int, addr netip.Addr, window time.Duration) []string {
	t.Helper()
	tv := unix.NsecToTimeval(window.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	var macs []string
	buf := make([]byte, 128)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return macs // the window passed quietly
		}
		// Ethernet (14), then ARP: op at 6, sender MAC at 8, IP at 14.
		f := buf[:n]
		if len(f) < 14+28 || binary.BigEndian.Uint16(f[14+6:]) != 2 {
			continue
		}
		if ip, _ := netip.AddrFromSlice(f[14+14 : 14+18]); ip == addr {
			macs = append(macs, net.HardwareAddr(f[14+8:14+14]).String())
		}
	}
}

// applyCleanly applies s with r: every change must land, and a second
// apply must write nothing.
func applyCleanly(t *testing.T, r *reconcile.NetReconciler, name string, s netconf.State) {
	t.Helper()
	changes, err := r.Apply(s, false)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, c := range changes {
		if c.Err != nil {
			t.Errorf("%s: %s", name, c)
		}
	}
	if again, err := r.Apply(s, false); err != nil || len(again) != 0 {
		t.Errorf("%s applied twice: %v %v", name, again, err)
	}
}
