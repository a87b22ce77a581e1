package labtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestLabIPVSNAT sends real TCP connections from the client through the
// router to a VIP on lb1, where IPVS (programmed with ipvsadm, by hand, as
// the appliance will do it) balances them round robin over NAT to the two
// backends, which see the client's own address.
func TestLabIPVSNAT(t *testing.T) {
	RequireLab(t)
	topo := New(t, Config{LBs: 1, Backends: 2})
	lb := topo.LBs[0]
	vip := netip.MustParseAddrPort("192.0.2.100:80")
	gw4, _ := BackendGateway()
	for _, err := range []error{
		lb.AddAddr("eth0", netip.PrefixFrom(vip.Addr(), 32)),
		lb.AddAddr("eth1", netip.PrefixFrom(gw4, BackendNet4.Bits())),
		lb.Sysctl("net.ipv4.ip_forward", "1"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	lb.Run(t, "ipvsadm", "-A", "-t", vip.String(), "-s", "rr")
	for _, b := range topo.Backends {
		l, err := b.Listen("tcp", "0.0.0.0:8080")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go serveName(l, b.Role)
		lb.Run(t, "ipvsadm", "-a", "-t", vip.String(), "-r", b.IPv4().String()+":8080", "-m")
	}

	seen := map[string]int{}
	for i := 0; i < 4; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := topo.Client.Dial(ctx, "tcp", vip.String())
		cancel()
		if err != nil {
			t.Fatalf("connection %d to the VIP: %v\nipvsadm -Ln:\n%s", i, err, lb.Run(t, "ipvsadm", "-Ln"))
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		name, from, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		if from != topo.Client.IPv4().String() {
			t.Errorf("%s saw the connection from %q, want the client's %s", name, from, topo.Client.IPv4())
		}
		seen[name]++
	}
	if seen["backend1"] != 2 || seen["backend2"] != 2 {
		t.Errorf("round robin over 4 connections: %v, want 2 each", seen)
	}
	// The independent witness: IPVS counted the connections per backend.
	stats := lb.Run(t, "ipvsadm", "-Ln", "--stats")
	for _, b := range topo.Backends {
		if !strings.Contains(stats, b.IPv4().String()+":8080") {
			t.Errorf("ipvsadm --stats lacks %s:\n%s", b.Role, stats)
		}
	}
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
