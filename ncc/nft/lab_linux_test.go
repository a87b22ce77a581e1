package nft

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
)

// TestLabSNATFullNAT proves the SNAT rule end to end with IPVS, in the
// kernel lab: a client connects through the router to a VIP on lb1, where
// IPVS forwards over NAT to two backends that have no route back to the
// client. Without the NCC's rule the connections fail; with it each backend
// sees the connection coming from lb1's own address on the backend network
// (full NAT, as Seesaw's iptables rule made it), and answers through lb1;
// with the rule removed they fail again. IPv4 and IPv6.
//
//	go test -exec "$(pwd)/bin/seesaw-lab exec" -run '^TestLabSNATFullNAT$' -v ./ncc/nft
func TestLabSNATFullNAT(t *testing.T) {
	labtest.RequireLab(t)
	topo := labtest.New(t, labtest.Config{LBs: 1, Backends: 2})
	lb := topo.LBs[0]
	eth1, _ := lb.Iface("eth1")
	vip4 := netip.AddrPortFrom(labtest.Host(labtest.NodeNet4, 100).Addr(), 80)
	vip6 := netip.AddrPortFrom(labtest.Host(labtest.NodeNet6, 100).Addr(), 80)
	for _, err := range []error{
		lb.AddAddr("eth0", netip.PrefixFrom(vip4.Addr(), 32)),
		lb.AddAddr("eth0", netip.PrefixFrom(vip6.Addr(), 128)),
		lb.Sysctl("net.ipv4.ip_forward", "1"),
		lb.Sysctl("net/ipv6/conf/all/forwarding", "1"),
		// IPVS keeps a conntrack entry per connection (for both
		// families): what the rule matches.
		lb.Sysctl("net.ipv4.vs.conntrack", "1"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, vip := range []netip.AddrPort{vip4, vip6} {
		lb.Run(t, "ipvsadm", "-A", "-t", vip.String(), "-s", "rr")
	}
	for _, b := range topo.Backends {
		// No way back to the client but through whoever the
		// connection came from.
		b.Run(t, "ip", "-4", "route", "del", "default")
		b.Run(t, "ip", "-6", "route", "del", "default")
		l, err := b.Listen("tcp", ":8080")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go serveName(l, b.Role)
		e0, _ := b.Iface("eth0")
		lb.Run(t, "ipvsadm", "-a", "-t", vip4.String(), "-r", netip.AddrPortFrom(e0.IPv4.Addr(), 8080).String(), "-m")
		lb.Run(t, "ipvsadm", "-a", "-t", vip6.String(), "-r", netip.AddrPortFrom(e0.IPv6.Addr(), 8080).String(), "-m")
	}
	ask := func(vip netip.AddrPort, timeout time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		c, err := topo.Client.Dial(ctx, "tcp", vip.String())
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		b, err := io.ReadAll(c)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	fails := func(when string) {
		t.Helper()
		for _, vip := range []netip.AddrPort{vip4, vip6} {
			if got, err := ask(vip, 1500*time.Millisecond); err == nil {
				t.Errorf("%s: a connection to %s was answered: %q", when, vip, got)
			}
		}
	}
	fails("without the SNAT rule")

	r := open(t, lb)
	st := State{SNAT: []SNAT{
		{VIP: vip4.Addr(), Proto: TCP, Port: vip4.Port(), ToSource: eth1.IPv4.Addr()},
		{VIP: vip6.Addr(), Proto: TCP, Port: vip6.Port(), ToSource: eth1.IPv6.Addr()},
	}}
	if cs := apply(t, r, st); len(cs) != 4 {
		t.Fatalf("apply: %s", strs(cs))
	}
	for _, vip := range []netip.AddrPort{vip4, vip6} {
		want := eth1.IPv4.Addr().String()
		if vip.Addr().Is6() {
			want = eth1.IPv6.Addr().String()
		}
		seen := map[string]int{}
		for i := range 4 {
			got, err := ask(vip, 10*time.Second)
			if err != nil {
				t.Fatalf("connection %d to %s with the SNAT rule: %v\nipvsadm -Ln:\n%s\n%s", i, vip,
					err, lb.Run(t, "ipvsadm", "-Ln"), lb.Run(t, "nft", "list", "ruleset"))
			}
			name, from, _ := strings.Cut(got, " ")
			if from != want {
				t.Errorf("%s: %s saw the connection from %q, want lb1's %s", vip, name, from, want)
			}
			seen[name]++
		}
		if seen["backend1"] != 2 || seen["backend2"] != 2 {
			t.Errorf("%s: round robin over 4 connections: %v, want 2 each", vip, seen)
		}
	}

	// Applying again writes nothing; the rule removed, NAT stops.
	if cs := apply(t, r, st); len(cs) != 0 {
		t.Errorf("the same state again: %s", strs(cs))
	}
	apply(t, r, State{})
	fails("with the SNAT rule removed")
}

// serveName answers every connection with the server's name and the
// caller's address, then closes it.
func serveName(l net.Listener, name string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		fmt.Fprintf(c, "%s %s\n", name, host)
		c.Close()
	}
}
