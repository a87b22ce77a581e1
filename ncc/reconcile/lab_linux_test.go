package reconcile

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/ipvs/ipvslab"
	"github.com/seesawlb/seesaw/ncc/ipvs/ipvstest"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/netconf/netconftest"
	"github.com/seesawlb/seesaw/ncc/vocab"
)

// TestLabIPVSStates replays the state table of ipvs_test.go on the lab's
// real kernel, in order and in random orders: after each state, ipvsadm
// must show what the fake kernel showed, and a second apply must write
// nothing.
func TestLabIPVSStates(t *testing.T) {
	labtest.RequireLab(t)
	n, c := ipvslab.Node(t, "reconcile")
	r := NewIPVS(c, nil)

	check := func(s stateCase) {
		t.Helper()
		changes, err := r.Apply(s.in, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range changes {
			if ch.Err != nil {
				t.Errorf("%s: %s", s.name, ch)
			}
		}
		st, err := c.State()
		if err != nil {
			t.Fatal(err)
		}
		var table []ipvs.VirtualServer
		for _, v := range st {
			table = append(table, v.Config())
		}
		daemons, err := c.SyncDaemons()
		if err != nil {
			t.Fatal(err)
		}
		if got := ipvstest.Render(table, daemons); got != s.want {
			t.Fatalf("after %q the kernel holds:\n%s\nwant:\n%s", s.name, got, s.want)
		}
		out, err := n.Output("ipvsadm", "-Sn")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ipvs.CanonicalSave(string(out)), ipvs.Save(table); got != want {
			t.Fatalf("after %q ipvsadm -Sn shows:\n%s\nwant:\n%s", s.name, got, want)
		}
		out, err = n.Output("ipvsadm", "-L", "--daemon")
		if err != nil {
			t.Fatal(err)
		}
		var wantDaemons []string
		for _, l := range strings.Split(s.want, "\n") {
			if strings.Contains(l, "sync daemon") {
				wantDaemons = append(wantDaemons, l)
			}
		}
		if got, want := strings.TrimSpace(string(out)), strings.Join(wantDaemons, "\n"); got != want {
			t.Fatalf("after %q ipvsadm --list-daemon shows:\n%s\nwant:\n%s", s.name, got, want)
		}
		before := c.Writes()
		again, err := r.Apply(s.in, false)
		if err != nil || len(again) != 0 || c.Writes() != before {
			t.Fatalf("%s applied twice: %d writes, %v, %v", s.name, c.Writes()-before, again, err)
		}
	}
	table := stateTable()
	for _, s := range table {
		check(s)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := 0; round < 5; round++ {
		for _, i := range rng.Perm(len(table)) {
			check(table[i])
		}
	}

	// A new reconciler (a restarted NCC) adopts the kernel's state.
	last := table[len(table)-1]
	check(last)
	w := c.Writes()
	fresh := NewIPVS(c, nil)
	if changes, err := fresh.Apply(last.in, false); err != nil || c.Writes() != w {
		t.Errorf("restart: %d writes: %v %v", c.Writes()-w, changes, err)
	}
	// Someone flushes IPVS; the audit puts it back.
	if _, err := n.Output("ipvsadm", "-C"); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Audit(); err != nil {
		t.Fatal(err)
	}
	if out, _ := n.Output("ipvsadm", "-Sn"); ipvs.CanonicalSave(string(out)) != ipvs.Save(last.in.Services) {
		t.Errorf("after the audit ipvsadm -Sn shows:\n%s", out)
	}
}

// TestLabNetStates replays the network state table of net_test.go on the
// lab's kernel, in order and in random orders: after each state the real
// stack must read as the fake did (the local table's routes of VIPs with a
// source included), and a second apply must write nothing.
// The node interface (eth0) and the LB interface (eth1) are veths whose
// peers live in another namespace.
func TestLabNetStates(t *testing.T) {
	labtest.RequireLab(t)
	lb, h := netLabNode(t)
	if err := lb.LinkUp("lo"); err != nil {
		t.Fatal(err)
	}
	k := netconf.NewLinux(h, lb.Do)
	r := NewNet(counting{Kernel: k}, nil)
	sysctls := []string{"net.ipv4.ip_forward", "net.ipv4.conf.all.arp_ignore", "net/ipv4/conf/eth1.100/arp_ignore",
		"net/ipv4/conf/vrrp6.42/arp_ignore", "net/ipv6/conf/vrrp6.42/accept_dad", "net/ipv6/conf/vrrp6.42/accept_ra",
		"net/ipv6/conf/vrrp6.42/keep_addr_on_down"}

	check := func(s netCase) {
		t.Helper()
		changes, err := r.Apply(s.in, false)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for _, c := range changes {
			if c.Err != nil {
				t.Errorf("%s: %s", s.name, c)
			}
		}
		// The local table shows the VIPs' routes with a source: the
		// kernel's own are left out (netconftest.Render).
		got, err := netconftest.Snapshot(k, []string{"eth0", "eth1", "dummy0"}, []int{2, netconf.LocalTable}, sysctls)
		if err != nil {
			t.Fatal(err)
		}
		if got != s.want {
			t.Fatalf("after %q the kernel holds:\n%s\nwant:\n%s\nchanges:\n%s", s.name, got, s.want, changeList(changes))
		}
		before := writes.Load()
		again, err := r.Apply(s.in, false)
		if err != nil || len(again) != 0 || writes.Load() != before {
			t.Fatalf("%s applied twice: %d writes:\n%s%v", s.name, writes.Load()-before, changeList(again), err)
		}
	}
	table := netTable()
	for _, s := range table {
		check(s)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for range 4 {
		for _, i := range rng.Perm(len(table)) {
			check(table[i])
		}
	}
	// The independent witness, for the VLAN state (which has the IPv6 VIP
	// on the IPv6 VRRP macvlan): ip's own view.
	check(table[2])
	// The kernel updates a link's operstate asynchronously (linkwatch), so
	// "state UP" may lag the admin-up that Apply made.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out, err := lb.Output("ip", "-o", "link", "show", "dev", "eth1"); err == nil && strings.Contains(string(out), "state UP") {
			break
		}
	}
	for cmd, want := range map[string][]string{
		"ip -o addr show dev eth1.100":    {"203.0.113.2/24", "203.0.113.10/24"},
		"ip -o link show dev eth1":        {"00:00:5e:00:01:2a", "state UP"},
		"ip rule":                         {"100:\tfrom 192.0.2.10 lookup 2", "101:\tfrom all to 192.0.2.10 lookup 2"},
		"ip route show table 2":           {"default via 192.0.2.1 dev eth1", "192.0.2.0/24 dev eth1"},
		"ip -6 -o addr show dev vrrp6.42": {"2001:db8::10/64"},
		"ip -d -o link show dev vrrp6.42": {"vrrp6.42@eth1", "00:00:5e:00:02:2a", "macvlan mode bridge"},
	} {
		args := strings.Fields(cmd)
		out, err := lb.Output(args[0], args[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s lacks %q:\n%s", cmd, w, out)
			}
		}
	}
	// The macvlan is administratively up (its operstate follows eth1's
	// carrier, asynchronously), and the IPv6 VIP is not on eth1.
	if out, err := lb.Output("ip", "-o", "link", "show", "dev", "vrrp6.42"); err != nil || !strings.Contains(string(out), ",UP") {
		t.Errorf("vrrp6.42 is not up: %s %v", out, err)
	}
	if out, err := lb.Output("ip", "-6", "-o", "addr", "show", "dev", "eth1"); err != nil || strings.Contains(string(out), "2001:db8::10") {
		t.Errorf("the IPv6 VIP is (also) on eth1: %s %v", out, err)
	}
}

// netLabNode makes the LB node of the network replays: eth0 (up, with
// 10.0.0.5/24) and eth1 (down), each a veth to a peer namespace, with the
// MACs the fake's table expects; and a netlink handle in the node.
func netLabNode(t *testing.T) (*labtest.Node, *netlink.Handle) {
	t.Helper()
	lb, peer := labtest.NewTestNode(t, "lb"), labtest.NewTestNode(t, "peer")
	h := lb.Handle()
	for i, name := range []string{"eth0", "eth1"} {
		if err := labtest.Veth(lb, name, peer, fmt.Sprintf("p%d", i)); err != nil {
			t.Fatal(err)
		}
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		mac := eth0MAC
		if name == "eth1" {
			mac = eth1MAC
			if err := h.LinkSetDown(l); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.LinkSetHardwareAddr(l, mac); err != nil {
			t.Fatal(err)
		}
	}
	if err := lb.AddAddr("eth0", p("10.0.0.5/24")); err != nil {
		t.Fatal(err)
	}
	return lb, h
}

// TestLabNetVMAC6States replays the IPv6 VRRP MAC's state table of
// net_test.go (use_vmac on and off, with and without IPv6 VIPs, master and
// backup, a change of VRID, a VLAN, cleanup) on the lab's kernel, with the
// same links the NCC did not make, in order and in random orders: after
// each state the real stack must read as the fake does after the same
// states, and a second apply must write nothing.
func TestLabNetVMAC6States(t *testing.T) {
	labtest.RequireLab(t)
	lb, h := netLabNode(t)
	// The links of someone else's (foreignLinks), as newVMAC6Fake makes
	// them.
	k := netconf.NewLinux(h, lb.Do)
	for _, err := range []error{
		k.AddMACVLAN("eth1", "mv0", net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}),
		k.SetUp("mv0", true),
		lb.AddAddr("mv0", p("2001:db8:ff::1/64")),
		k.AddMACVLAN("eth0", "vrrp6.7", netconf.VRRP6MAC(7)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	fake := newVMAC6Fake(t)
	r, rf := NewNet(counting{Kernel: k}, nil), NewNet(fake, nil)
	var sysctls []string
	for _, vrid := range []uint8{42, 43} {
		n := netconf.VMAC6Name(vrid)
		sysctls = append(sysctls, "net/ipv4/conf/"+n+"/arp_ignore", "net/ipv6/conf/"+n+"/accept_dad",
			"net/ipv6/conf/"+n+"/accept_ra", "net/ipv6/conf/"+n+"/keep_addr_on_down")
	}
	links := []string{"eth0", "eth1", "dummy0"}

	check := func(s netCase) {
		t.Helper()
		changes, err := r.Apply(s.in, false)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for _, c := range changes {
			if c.Err != nil {
				t.Errorf("%s: %s", s.name, c)
			}
		}
		if _, err := rf.Apply(s.in, false); err != nil {
			t.Fatal(err)
		}
		got, err := netconftest.Snapshot(k, links, nil, sysctls)
		if err != nil {
			t.Fatal(err)
		}
		want, err := netconftest.Snapshot(fake, links, nil, sysctls)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("after %q the kernel holds:\n%s\nthe fake:\n%s\nchanges:\n%s", s.name, got, want, changeList(changes))
		}
		before := writes.Load()
		again, err := r.Apply(s.in, false)
		if err != nil || len(again) != 0 || writes.Load() != before {
			t.Fatalf("%s applied twice: %d writes:\n%s%v", s.name, writes.Load()-before, changeList(again), err)
		}
	}
	table := vmac6Table()
	for _, s := range table {
		check(s)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	for range 4 {
		for _, i := range rng.Perm(len(table)) {
			check(table[i])
		}
	}
	// ip's own view of the master's macvlan and of the foreign ones.
	check(table[0])
	for cmd, want := range map[string][]string{
		"ip -d -o link show dev vrrp6.42": {"vrrp6.42@eth1", "00:00:5e:00:02:2a", "macvlan mode bridge"},
		"ip -6 -o addr show dev vrrp6.42": {"2001:db8::10/64", "2001:db8::11/128"},
		"ip -6 -o addr show dev mv0":      {"2001:db8:ff::1/64"},
		"ip -d -o link show dev vrrp6.7":  {"vrrp6.7@eth0", "00:00:5e:00:02:07"},
		"ip -6 -o addr show dev dummy0":   {"2001:db8:5::1/128"},
		"ip -4 -o addr show dev eth1":     {"192.0.2.10/24"},
	} {
		args := strings.Fields(cmd)
		out, err := lb.Output(args[0], args[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s lacks %q:\n%s", cmd, w, out)
			}
		}
	}
}

// writes counts the changing calls of counting kernels.
var writes atomic.Int64

// counting is a Kernel that counts its changing calls.
type counting struct{ netconf.Kernel }

func (c counting) AddDummy(n string) error        { writes.Add(1); return c.Kernel.AddDummy(n) }
func (c counting) AddVLAN(p string, id int) error { writes.Add(1); return c.Kernel.AddVLAN(p, id) }
func (c counting) AddMACVLAN(p, n string, m net.HardwareAddr) error {
	writes.Add(1)
	return c.Kernel.AddMACVLAN(p, n, m)
}
func (c counting) DeleteLink(n string) error     { writes.Add(1); return c.Kernel.DeleteLink(n) }
func (c counting) SetUp(n string, up bool) error { writes.Add(1); return c.Kernel.SetUp(n, up) }
func (c counting) SetMAC(n string, m net.HardwareAddr) error {
	writes.Add(1)
	return c.Kernel.SetMAC(n, m)
}
func (c counting) AddAddr(n string, a netip.Prefix) error {
	writes.Add(1)
	return c.Kernel.AddAddr(n, a)
}
func (c counting) DeleteAddr(n string, a netip.Prefix) error {
	writes.Add(1)
	return c.Kernel.DeleteAddr(n, a)
}
func (c counting) AddRoute(r netconf.Route) error     { writes.Add(1); return c.Kernel.AddRoute(r) }
func (c counting) ReplaceRoute(r netconf.Route) error { writes.Add(1); return c.Kernel.ReplaceRoute(r) }
func (c counting) DeleteRoute(r netconf.Route) error  { writes.Add(1); return c.Kernel.DeleteRoute(r) }
func (c counting) AddRule(r netconf.Rule) error       { writes.Add(1); return c.Kernel.AddRule(r) }
func (c counting) DeleteRule(r netconf.Rule) error    { writes.Add(1); return c.Kernel.DeleteRule(r) }
func (c counting) SetSysctl(k, v string) error        { writes.Add(1); return c.Kernel.SetSysctl(k, v) }

// TestLabApplianceSysctls applies the settings an LB node needs
// (vocab.ApplianceSysctls) on the lab's kernel, where IPVS is loaded:
// every key exists in a fresh namespace and takes its value, sysctl(8)
// reads them back, and a second apply writes nothing.
func TestLabApplianceSysctls(t *testing.T) {
	labtest.RequireLab(t)
	lb, err := labtest.NewNode("lb", fmt.Sprintf("sysctl%d", rand.Uint32()%1000000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	if err := lb.AddLink(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}}); err != nil {
		t.Fatal(err)
	}
	want := vocab.ApplianceSysctls("eth1")
	want[vocab.ConntrackSysctl] = "1" // what a node with a NAT vserver adds
	r := NewNet(counting{Kernel: netconf.NewLinux(lb.Handle(), lb.Do)}, nil)
	changes, err := r.Apply(netconf.State{LB: netconf.LBInterface{Name: "eth1"}, Sysctls: want}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Err != nil {
			t.Errorf("%s", c)
		}
	}
	for k, v := range want {
		out, err := lb.Output("sysctl", "-n", strings.ReplaceAll(k, "/", "."))
		if strings.Contains(k, "/") {
			out, err = lb.Output("cat", "/proc/sys/"+k)
		}
		if err != nil || strings.TrimSpace(string(out)) != v {
			t.Errorf("%s: %q %v, want %s", k, out, err, v)
		}
	}
	before := writes.Load()
	if again, err := r.Apply(netconf.State{LB: netconf.LBInterface{Name: "eth1"}, Sysctls: want}, false); err != nil || len(again) != 0 || writes.Load() != before {
		t.Errorf("applied twice: %d writes, %v", writes.Load()-before, err)
	}
}
