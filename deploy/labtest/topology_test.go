package labtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/testenv"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestHost(t *testing.T) {
	for _, c := range []struct {
		net  netip.Prefix
		n    int
		want string
	}{
		{NodeNet4, 2, "192.0.2.2/24"},
		{NodeNet6, 2, "2001:db8:0:1::2/64"},
		{BackendNet6, 11, "2001:db8:0:2::11/64"},
		{BackendNet4, 11, "198.51.100.11/24"},
	} {
		if got := Host(c.net, c.n).String(); got != c.want {
			t.Errorf("Host(%s, %d) = %s, want %s", c.net, c.n, got, c.want)
		}
	}
}

// TestTopology builds the topology on the host kernel: namespaces, veth
// pairs and bridges exist here.
func TestTopology(t *testing.T) {
	testenv.RequireRoot(t)
	checkTopology(t)
}

// TestLabTopology builds it in the lab's guest, then also the links only
// the guest's kernel has: dummy, VLAN, IPIP and IPv6 tunnels.
func TestLabTopology(t *testing.T) {
	RequireLab(t)
	topo := checkTopology(t)
	lb := topo.LBs[0]
	eth0, err := lb.Handle().LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	links := []netlink.Link{
		&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "dummy0"}},
		&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: "eth0.100", ParentIndex: eth0.Attrs().Index}, VlanId: 100},
		&netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: "ipip1"}, Local: lb.IPv4().AsSlice(), Remote: topo.Router.IPv4().AsSlice()},
		&netlink.Ip6tnl{LinkAttrs: netlink.LinkAttrs{Name: "ip6tnl1"}, Local: lb.IPv6().AsSlice(), Remote: topo.Router.IPv6().AsSlice()},
		&netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "vmac0", ParentIndex: eth0.Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE},
	}
	for _, l := range links {
		if err := lb.AddLink(l); err != nil {
			t.Error(err)
		}
	}
	// A VIP on the dummy answers from the LB's namespace, over IPv4 and IPv6.
	if err := lb.AddAddr("dummy0", netip.MustParsePrefix("192.0.2.100/32")); err != nil {
		t.Fatal(err)
	}
	if err := lb.AddAddr("dummy0", netip.MustParsePrefix("2001:db8:0:1::100/128")); err != nil {
		t.Fatal(err)
	}
	out := lb.Run(t, "ip", "-d", "link", "show")
	for _, want := range []string{"dummy0", "eth0.100@eth0", "vlan protocol 802.1Q id 100", "ipip1", "ip6tnl1", "vmac0@eth0"} {
		if !strings.Contains(out, want) {
			t.Errorf("ip -d link in lb1 lacks %q:\n%s", want, out)
		}
	}
	echo(t, lb, topo.Client, "192.0.2.100")
	// Linux answers ARP for any of its addresses on any link, but neighbour
	// solicitations only for the receiving link's: the router routes the
	// IPv6 VIP to the LB instead.
	if err := topo.Router.AddRoute(netip.MustParsePrefix("2001:db8:0:1::100/128"), lb.IPv6()); err != nil {
		t.Fatal(err)
	}
	echo(t, lb, topo.Client, "2001:db8:0:1::100")
}

// checkTopology builds the default topology and proves what it promises:
// named namespaces, the planned addresses, TCP over the bridges and through
// the router on IPv4 and IPv6, commands running in the right namespace, and
// the caller's own namespace left alone.
func checkTopology(t *testing.T) *Topology {
	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	// The main thread's namespace is what /proc/self/net shows.
	mainBefore, err := netns.GetFromPath("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer mainBefore.Close()

	topo := New(t, Config{})
	if len(topo.LBs) != 2 || len(topo.Backends) != 2 {
		t.Fatalf("got %d LBs and %d backends, want 2 and 2", len(topo.LBs), len(topo.Backends))
	}
	for _, n := range append(topo.Nodes(), topo.Switch) {
		if _, err := os.Stat(filepath.Join("/run/netns", n.NS)); err != nil {
			t.Errorf("namespace of %s: %v", n.Role, err)
		}
	}
	lb1, lb2, be1 := topo.LBs[0], topo.LBs[1], topo.Backends[0]
	for _, c := range []struct {
		n    *Node
		want string
	}{{lb1, "192.0.2.2"}, {lb2, "192.0.2.3"}, {be1, "198.51.100.11"}, {topo.Client, "203.0.113.10"}} {
		if got := c.n.IPv4().String(); got != c.want {
			t.Errorf("%s IPv4 = %s, want %s", c.n.Role, got, c.want)
		}
	}
	// An independent witness: ip(8), run in the namespace, sees the
	// planned addresses there and nothing of the host's links.
	out := lb1.Run(t, "ip", "-br", "addr")
	for _, want := range []string{"192.0.2.2/24", "2001:db8:0:1::2/64", "198.51.100.2/24", "lo "} {
		if !strings.Contains(out, want) {
			t.Errorf("ip -br addr in lb1 lacks %q:\n%s", want, out)
		}
	}
	for _, other := range []string{"192.0.2.1/", "192.0.2.3/", "198.51.100.11/", "lb1-eth0"} {
		if strings.Contains(out, other) {
			t.Errorf("ip -br addr in lb1 shows %q, which is not lb1's:\n%s", other, out)
		}
	}

	// Same bridge, both families.
	echo(t, be1, lb1, be1.IPv4().String())
	echo(t, be1, lb1, be1.IPv6().String())
	echo(t, lb2, lb1, lb2.IPv4().String())
	// Through the router: client net to node net.
	echo(t, lb2, topo.Client, lb2.IPv4().String())
	echo(t, lb2, topo.Client, lb2.IPv6().String())

	after, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if !before.Equal(after) {
		t.Error("the test's own thread was left in another namespace")
	}
	// The runtime may run a goroutine that is locked to a thread inside a
	// namespace (a server still returning) on the main thread for a
	// moment; a leak is a main thread that stays there.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mainAfter, err := netns.GetFromPath("/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		same := mainBefore.Equal(mainAfter)
		mainAfter.Close()
		if same {
			break
		}
		if time.Now().After(deadline) {
			t.Error("the process's main thread was left in another namespace")
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return topo
}

// echo serves one TCP connection in server's namespace and connects to it
// from client's namespace at addr: a line goes there and back.
func echo(t *testing.T, server, client *Node, addr string) {
	t.Helper()
	l, err := server.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatalf("listen in %s: %v", server.Role, err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Fprintf(c, "%s says %s", server.Role, line)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("dial %s from %s: %v", l.Addr(), client.Role, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "hello from %s\n", client.Role)
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from %s: %v", l.Addr(), err)
	}
	if want := fmt.Sprintf("%s says hello from %s\n", server.Role, client.Role); string(got) != want {
		t.Errorf("%s -> %s at %s: got %q, want %q", client.Role, server.Role, addr, got, want)
	}
}

// TestTopologyCleanup proves that closing a topology deletes its
// namespaces and stops what runs in them.
func TestTopologyCleanup(t *testing.T) {
	testenv.RequireRoot(t)
	topo, err := Build(Config{LBs: 1, Backends: 1, Prefix: randomPrefix()})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{topo.Switch.NS}
	for _, n := range topo.Nodes() {
		names = append(names, n.NS)
	}
	cmd := exec.Command("sleep", "600")
	if err := topo.Backends[0].Start(cmd); err != nil {
		topo.Close()
		t.Fatal(err)
	}
	if err := topo.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if _, err := os.Stat(filepath.Join("/run/netns", name)); !os.IsNotExist(err) {
			t.Errorf("namespace %s still there after Close: %v", name, err)
		}
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err == nil {
			t.Error("the process in the backend exited cleanly; Close should have killed it")
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Error("the process in the backend still runs after Close")
	}
}

// TestTopologyLBNICAndRoutedBackends: the LB NIC is on the node's L2 (an
// address put on it is reached from the client through the router), and
// the backends reach the client through the router, not an LB.
func TestTopologyLBNICAndRoutedBackends(t *testing.T) {
	testenv.RequireRoot(t)
	topo := New(t, Config{LBs: 1, Backends: 1, LBNIC: "eth2", RoutedBackends: true})
	lb, be := topo.LBs[0], topo.Backends[0]
	if _, ok := lb.Iface("eth2"); !ok {
		t.Fatal("lb1 has no eth2")
	}
	if err := lb.AddAddr("eth2", netip.MustParsePrefix("192.0.2.50/24")); err != nil {
		t.Fatal(err)
	}
	echo(t, lb, topo.Client, "192.0.2.50")
	echo(t, topo.Client, be, topo.Client.IPv4().String())
	echo(t, topo.Client, be, topo.Client.IPv6().String())
}
