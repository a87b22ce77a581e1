package netconf_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/deploy/testenv"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/netconf/netconftest"
	"github.com/seesawlb/seesaw/ncc/reconcile"
)

// TestVIPSourceOnTheHostKernel gives VIPs a source on the host's kernel,
// through the real netconf.Linux and the reconciler, in a namespace whose
// LB interface (eth1) and node interface (eth0, with the node's own
// addresses, the sources) are veths to a peer namespace. It shows:
//   - ip's view of the local table: the VIPs' routes with the sources in
//     place of the kernel's, IPv4 and IPv6 (IPv6's at metric 1024, the
//     kernel's own, at 0, gone);
//   - a TCP connection opened in the namespace to the VIP comes from the
//     source, and from the VIP again once the source is cleared;
//   - what the kernel does of itself, which the reconciler answers: it
//     leaves the rewritten route when the VIP's address goes (the host
//     goes on taking the address for its own); it puts its own route back
//     when the address is added again (IPv6 first, where a lookup finds
//     it) and when the link comes up (IPv6 loses the rewritten route when
//     the link goes down); each audit repairs it;
//   - the fake (netconftest) holds the same local routes after each step.
func TestVIPSourceOnTheHostKernel(t *testing.T) {
	testenv.RequireRoot(t)
	lb, peer := labtest.NewTestNode(t, "lb"), labtest.NewTestNode(t, "peer")
	for i, name := range []string{"eth0", "eth1"} {
		if err := labtest.Veth(lb, name, peer, fmt.Sprintf("p%d", i)); err != nil {
			t.Fatal(err)
		}
		if err := peer.LinkUp(fmt.Sprintf("p%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	node := []netip.Prefix{netip.MustParsePrefix("10.0.0.5/24"), netip.MustParsePrefix("2001:db8:ff::5/64")}
	for _, a := range node {
		if err := lb.AddAddr("eth0", a); err != nil {
			t.Fatal(err)
		}
	}
	if err := lb.LinkUp("eth0"); err != nil {
		t.Fatal(err)
	}
	k := netconf.NewLinux(lb.Handle(), lb.Do)
	r := reconcile.NewNet(k, t.Logf)
	fake := netconftest.New(nil)
	fake.AddPhysical("eth0", nil, true)
	fake.AddPhysical("eth1", nil, false)
	for _, a := range node {
		if err := fake.AddAddr("eth0", a); err != nil {
			t.Fatal(err)
		}
	}
	rf := reconcile.NewNet(fake, nil)

	vip4, vip6 := netip.MustParsePrefix("192.0.2.10/24"), netip.MustParsePrefix("2001:db8::10/64")
	state := func(src bool) netconf.State {
		s := netconf.State{LB: netconf.LBInterface{Name: "eth1", Up: true}, VIPs: []netconf.VIP{{Addr: vip4, Link: "eth1"}, {Addr: vip6, Link: "eth1"},
			{Addr: netip.MustParsePrefix("198.51.100.20/32"), Link: "eth1"}}}
		if src {
			s.VIPs[0].Source, s.VIPs[1].Source = node[0].Addr(), node[1].Addr()
		}
		return s
	}
	// local lists the local table's routes to the VIPs, the kernel's too,
	// by destination and in the kernel's order for one.
	local := func(k netconf.Kernel) string {
		rs, err := k.Routes(netconf.LocalTable)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortStableFunc(rs, func(a, b netconf.Route) int { return a.Dst.Addr().Compare(b.Dst.Addr()) })
		var b strings.Builder
		for _, r := range rs {
			if a := r.Dst.Addr(); a == vip4.Addr() || a == vip6.Addr() {
				b.WriteString(r.String() + "\n")
			}
		}
		return b.String()
	}
	// agree checks that the fake, put through the same, holds the same
	// (in a moment: the kernel adds its IPv6 local routes from a work
	// queue).
	agree := func(step string, do func(k netconf.Kernel) error) {
		t.Helper()
		if err := do(fake); err != nil {
			t.Fatalf("%s: the fake: %v", step, err)
		}
		want := local(fake)
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			got := local(k)
			if got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s the kernel's local routes of the VIPs are:\n%s\nthe fake's:\n%s", step, got, want)
			}
		}
	}
	apply := func(name string, s netconf.State) {
		t.Helper()
		applyCleanly(t, r, name, s)
		agree(name, func(netconf.Kernel) error { _, err := rf.Apply(s, false); return err })
	}
	audit := func(name string) {
		t.Helper()
		changes, err := r.Audit()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(changes) == 0 {
			t.Errorf("%s: the audit found nothing to repair", name)
		}
		agree(name, func(netconf.Kernel) error { _, err := rf.Audit(); return err })
	}
	ip := func(args ...string) string { return lb.Run(t, "ip", args...) }
	// has fails the test unless ip's output has each of want, and none of
	// not.
	has := func(step, out string, want []string, not ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: lacks %q:\n%s", step, w, out)
			}
		}
		for _, n := range not {
			if strings.Contains(out, n) {
				t.Errorf("%s: has %q:\n%s", step, n, out)
			}
		}
	}
	// from is the local address of a TCP connection opened in the
	// namespace to the VIP, as the listener on the VIP sees it too.
	from := func(vip netip.Addr) netip.Addr {
		t.Helper()
		l, err := lb.Listen("tcp", netip.AddrPortFrom(vip, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := lb.Dial(ctx, "tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		local, peer := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(), s.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		if local != peer {
			t.Fatalf("the connection is from %s, the listener says from %s", local, peer)
		}
		return local
	}
	sources := func(step string, want4, want6 netip.Addr) {
		t.Helper()
		if got := from(vip4.Addr()); got != want4 {
			t.Errorf("%s: a connection to %s comes from %s, want %s", step, vip4.Addr(), got, want4)
		}
		if got := from(vip6.Addr()); got != want6 {
			t.Errorf("%s: a connection to %s comes from %s, want %s", step, vip6.Addr(), got, want6)
		}
	}
	const (
		ours4   = "local 192.0.2.10 dev eth1 scope host src 10.0.0.5"
		ours6   = "local 2001:db8::10 dev eth1 src 2001:db8:ff::5 metric 1024"
		kernel4 = "local 192.0.2.10 dev eth1 proto kernel scope host src 192.0.2.10"
		kernel6 = "local 2001:db8::10 dev eth1 proto kernel metric 0"
	)

	apply("no sources", state(false))
	has("no sources: ip route show table local", ip("route", "show", "table", "local"), []string{kernel4}, ours4)
	has("no sources: ip -6 route show table local", ip("-6", "route", "show", "table", "local"), []string{kernel6}, ours6)
	sources("no sources", vip4.Addr(), vip6.Addr())

	apply("sources", state(true))
	out4, out6 := ip("route", "show", "table", "local"), ip("-6", "route", "show", "table", "local")
	t.Logf("with the sources:\n%s%s", out4, out6)
	has("sources: ip route show table local", out4, []string{ours4}, kernel4)
	has("sources: ip -6 route show table local", out6, []string{ours6}, kernel6)
	sources("sources", node[0].Addr(), node[1].Addr())

	// The VIPs' addresses go behind the NCC's back: the kernel leaves the
	// routes it did not make, and the host still takes the VIPs for its
	// own. (Another IPv4 address stays on eth1: with the link's last one
	// IPv4 takes every route through the link, local ones too.) The
	// addresses come back: so do the kernel's routes, IPv4's after the
	// NCC's, IPv6's before it, where a lookup finds it first.
	for _, v := range []netip.Prefix{vip4, vip6} {
		if err := k.DeleteAddr("eth1", v); err != nil {
			t.Fatal(err)
		}
	}
	agree("the VIPs' addresses deleted", func(k netconf.Kernel) error {
		return errors.Join(k.DeleteAddr("eth1", vip4), k.DeleteAddr("eth1", vip6))
	})
	has("addresses gone: ip route show table local", ip("route", "show", "table", "local"), []string{ours4})
	has("addresses gone: ip -6 route show table local", ip("-6", "route", "show", "table", "local"), []string{ours6})
	has("addresses gone: ip route get", ip("route", "get", vip4.Addr().String()), []string{"local 192.0.2.10", "src 10.0.0.5"})
	for _, v := range []netip.Prefix{vip4, vip6} {
		if err := k.AddAddr("eth1", v); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the kernel's IPv6 local route", func() bool {
		return strings.Contains(ip("-6", "route", "show", "table", "local"), kernel6)
	})
	agree("the VIPs' addresses added again", func(k netconf.Kernel) error {
		return errors.Join(k.AddAddr("eth1", vip4), k.AddAddr("eth1", vip6))
	})
	has("addresses back: ip route show table local", ip("route", "show", "table", "local"), []string{ours4, kernel4})
	has("addresses back: ip -6 route get", ip("-6", "route", "get", vip6.Addr().String()), []string{"src 2001:db8::10"})
	audit("audit after the addresses came back")
	has("repaired: ip route show table local", ip("route", "show", "table", "local"), []string{ours4}, kernel4)
	has("repaired: ip -6 route show table local", ip("-6", "route", "show", "table", "local"), []string{ours6}, kernel6)
	sources("repaired", node[0].Addr(), node[1].Addr())

	// The link down and up: IPv4 keeps the NCC's route and the kernel
	// puts its own after it as the link comes up; IPv6 loses the route,
	// and the address too (eth1 does not keep them while down).
	if err := k.SetUp("eth1", false); err != nil {
		t.Fatal(err)
	}
	has("link down: ip route show table local", ip("route", "show", "table", "local"), []string{ours4}, kernel4)
	has("link down: ip -6 route show table local", ip("-6", "route", "show", "table", "local"), nil, "2001:db8::10")
	if err := k.SetUp("eth1", true); err != nil {
		t.Fatal(err)
	}
	has("link up: ip route show table local", ip("route", "show", "table", "local"), []string{ours4, kernel4})
	agree("the link down and up", func(k netconf.Kernel) error { return errors.Join(k.SetUp("eth1", false), k.SetUp("eth1", true)) })
	audit("audit after the link came up")
	has("repaired after the link came up: ip route show table local", ip("route", "show", "table", "local"), []string{ours4}, kernel4)
	has("repaired after the link came up: ip -6 route show table local", ip("-6", "route", "show", "table", "local"), []string{ours6}, kernel6)
	sources("repaired after the link came up", node[0].Addr(), node[1].Addr())

	// The sources cleared: the kernel's form again (IPv6's the NCC's,
	// without a src), and connections from the VIPs themselves.
	apply("sources cleared", state(false))
	has("sources cleared: ip route show table local", ip("route", "show", "table", "local"), []string{kernel4}, ours4)
	has("sources cleared: ip -6 route show table local", ip("-6", "route", "show", "table", "local"),
		[]string{"local 2001:db8::10 dev eth1 metric 1024"}, ours6, kernel6)
	sources("sources cleared", vip4.Addr(), vip6.Addr())

	// The VIPs removed, with sources and without: nothing of them left.
	for _, s := range []netconf.State{state(true), state(false)} {
		apply("the VIPs again", s)
		apply("the VIPs removed", netconf.State{LB: netconf.LBInterface{Name: "eth1", Up: true}})
		has("the VIPs removed: ip route show table local", ip("route", "show", "table", "local"), nil, "192.0.2.10")
		has("the VIPs removed: ip -6 route show table local", ip("-6", "route", "show", "table", "local"), nil, "2001:db8::10")
	}
}

// waitFor polls cond until it holds, failing the test after a while: the
// kernel adds IPv6 local routes from a work queue.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come", what)
		}
	}
}
