package reconcile

import (
	"errors"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/netconf/netconftest"
)

// The network reconciler is tested like the IPVS one: desired states with
// the text the fake stack must show after each, applied in order and in
// random orders, each applied twice to prove the second writes nothing.
// lab_linux_test.go replays them on a real kernel.

var (
	p        = netip.MustParsePrefix
	eth0MAC  = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0}
	eth1MAC  = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}
	lbBackup = netconf.LBInterface{Name: "eth1", Up: false, VRID: 42, UseVMAC: true, Dummy: "dummy0", Table: 2}
)

type netCase struct {
	name string
	in   netconf.State
	want string
}

func netTable() []netCase {
	lbMaster := lbBackup
	lbMaster.Up = true
	lbOwnMAC := lbMaster
	lbOwnMAC.UseVMAC = false
	clusterRules := []netconf.Rule{
		{Priority: 100, Table: 2, From: p("192.0.2.10/32")},
		{Priority: 101, Table: 2, To: p("192.0.2.10/32")},
	}
	sys := func(fwd, arp string) map[string]string {
		return map[string]string{"net.ipv4.ip_forward": fwd, "net.ipv4.conf.all.arp_ignore": arp}
	}
	master := netconf.State{
		LB: lbMaster,
		VIPs: []netconf.VIP{
			{Addr: p("192.0.2.10/24"), Link: "eth1"}, {Addr: p("192.0.2.20/24"), Link: "eth1"},
			{Addr: p("2001:db8::10/64"), Link: "eth1"}, {Addr: p("198.51.100.5/32"), Link: "dummy0"},
		},
		Routes: []netconf.Route{
			{Table: 2, Dst: p("192.0.2.0/24"), Device: "eth1"},
			{Table: 2, Gateway: netip.MustParseAddr("192.0.2.1"), Device: "eth1"},
		},
		Rules:   clusterRules,
		Sysctls: sys("1", "1"),
	}
	withVLAN := master
	withVLAN.VLANs = []netconf.VLAN{{Parent: "eth1", ID: 100, Addrs: []netip.Prefix{p("203.0.113.2/24")}}}
	withVLAN.VIPs = append(append([]netconf.VIP(nil), master.VIPs...), netconf.VIP{Addr: p("203.0.113.10/24"), Link: "eth1.100"})
	withVLAN.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.arp_ignore": "1", "net/ipv4/conf/eth1.100/arp_ignore": "1"}
	// VIPs with sources: one on the LB interface with the node's own
	// address on eth0 (a link the NCC does not own), one on the dummy and
	// the IPv6 one (on the macvlan) with the VLAN's addresses; one without.
	sources := withVLAN
	sources.VLANs = []netconf.VLAN{{Parent: "eth1", ID: 100, Addrs: []netip.Prefix{p("203.0.113.2/24"), p("2001:db8:100::2/64")}}}
	sources.VIPs = []netconf.VIP{
		{Addr: p("192.0.2.10/24"), Link: "eth1", Source: netip.MustParseAddr("10.0.0.5")},
		{Addr: p("192.0.2.20/24"), Link: "eth1"},
		{Addr: p("2001:db8::10/64"), Link: "eth1", Source: netip.MustParseAddr("2001:db8:100::2")},
		{Addr: p("198.51.100.5/32"), Link: "dummy0", Source: netip.MustParseAddr("203.0.113.2")},
	}
	return []netCase{
		{
			name: "backup with the VRRP MAC",
			in: netconf.State{
				LB:      lbBackup,
				VIPs:    []netconf.VIP{{Addr: p("192.0.2.10/24"), Link: "eth1"}, {Addr: p("2001:db8::10/64"), Link: "eth1"}},
				Rules:   clusterRules,
				Sysctls: sys("1", "1"),
			},
			want: `addr eth0 10.0.0.5/24
addr eth1 192.0.2.10/24
addr vrrp6.42 2001:db8::10/64
link dummy0 up dummy
link eth0 up 52:54:00:00:00:00
link eth1 down 00:00:5e:00:01:2a
link vrrp6.42 down macvlan eth1 00:00:5e:00:02:2a
rule inet 100: from 192.0.2.10 lookup 2
rule inet 101: from all to 192.0.2.10 lookup 2
sysctl net/ipv4/conf/all/arp_ignore 1
sysctl net/ipv4/conf/vrrp6.42/arp_ignore 1
sysctl net/ipv4/ip_forward 1
sysctl net/ipv6/conf/vrrp6.42/accept_dad 0
sysctl net/ipv6/conf/vrrp6.42/accept_ra 0
sysctl net/ipv6/conf/vrrp6.42/keep_addr_on_down 1
`,
		},
		{
			name: "master: up, VIPs on the LB interface and the dummy, policy routes",
			in:   master,
			want: `addr dummy0 198.51.100.5/32
addr eth0 10.0.0.5/24
addr eth1 192.0.2.10/24
addr eth1 192.0.2.20/24
addr vrrp6.42 2001:db8::10/64
link dummy0 up dummy
link eth0 up 52:54:00:00:00:00
link eth1 up 00:00:5e:00:01:2a
link vrrp6.42 up macvlan eth1 00:00:5e:00:02:2a
route table 2 inet 192.0.2.0/24 dev eth1
route table 2 inet default via 192.0.2.1 dev eth1
rule inet 100: from 192.0.2.10 lookup 2
rule inet 101: from all to 192.0.2.10 lookup 2
sysctl net/ipv4/conf/all/arp_ignore 1
sysctl net/ipv4/conf/vrrp6.42/arp_ignore 1
sysctl net/ipv4/ip_forward 1
sysctl net/ipv6/conf/vrrp6.42/accept_dad 0
sysctl net/ipv6/conf/vrrp6.42/accept_ra 0
sysctl net/ipv6/conf/vrrp6.42/keep_addr_on_down 1
`,
		},
		{
			name: "master with a VLAN",
			in:   withVLAN,
			want: `addr dummy0 198.51.100.5/32
addr eth0 10.0.0.5/24
addr eth1 192.0.2.10/24
addr eth1 192.0.2.20/24
addr eth1.100 203.0.113.10/24
addr eth1.100 203.0.113.2/24
addr vrrp6.42 2001:db8::10/64
link dummy0 up dummy
link eth0 up 52:54:00:00:00:00
link eth1 up 00:00:5e:00:01:2a
link eth1.100 up vlan eth1 100
link vrrp6.42 up macvlan eth1 00:00:5e:00:02:2a
route table 2 inet 192.0.2.0/24 dev eth1
route table 2 inet default via 192.0.2.1 dev eth1
rule inet 100: from 192.0.2.10 lookup 2
rule inet 101: from all to 192.0.2.10 lookup 2
sysctl net/ipv4/conf/all/arp_ignore 1
sysctl net/ipv4/conf/eth1.100/arp_ignore 1
sysctl net/ipv4/conf/vrrp6.42/arp_ignore 1
sysctl net/ipv4/ip_forward 1
sysctl net/ipv6/conf/vrrp6.42/accept_dad 0
sysctl net/ipv6/conf/vrrp6.42/accept_ra 0
sysctl net/ipv6/conf/vrrp6.42/keep_addr_on_down 1
`,
		},
		{
			name: "master with VIP sources: their local routes rewritten",
			in:   sources,
			want: `addr dummy0 198.51.100.5/32
addr eth0 10.0.0.5/24
addr eth1 192.0.2.10/24
addr eth1 192.0.2.20/24
addr eth1.100 2001:db8:100::2/64
addr eth1.100 203.0.113.2/24
addr vrrp6.42 2001:db8::10/64
link dummy0 up dummy
link eth0 up 52:54:00:00:00:00
link eth1 up 00:00:5e:00:01:2a
link eth1.100 up vlan eth1 100
link vrrp6.42 up macvlan eth1 00:00:5e:00:02:2a
route table 2 inet 192.0.2.0/24 dev eth1
route table 2 inet default via 192.0.2.1 dev eth1
route table 255 inet local 192.0.2.10 dev eth1 src 10.0.0.5
route table 255 inet local 198.51.100.5 dev dummy0 src 203.0.113.2
route table 255 inet6 local 2001:db8::10 dev vrrp6.42 src 2001:db8:100::2
rule inet 100: from 192.0.2.10 lookup 2
rule inet 101: from all to 192.0.2.10 lookup 2
sysctl net/ipv4/conf/all/arp_ignore 1
sysctl net/ipv4/conf/eth1.100/arp_ignore 1
sysctl net/ipv4/conf/vrrp6.42/arp_ignore 1
sysctl net/ipv4/ip_forward 1
sysctl net/ipv6/conf/vrrp6.42/accept_dad 0
sysctl net/ipv6/conf/vrrp6.42/accept_ra 0
sysctl net/ipv6/conf/vrrp6.42/keep_addr_on_down 1
`,
		},
		{
			name: "own MAC, a VIP moved to the dummy, a fwmark rule",
			in: netconf.State{
				LB:      lbOwnMAC,
				VIPs:    []netconf.VIP{{Addr: p("192.0.2.10/24"), Link: "eth1"}, {Addr: p("192.0.2.20/32"), Link: "dummy0"}},
				Routes:  []netconf.Route{{Table: 2, Gateway: netip.MustParseAddr("192.0.2.1"), Device: "eth1"}},
				Rules:   []netconf.Rule{{Priority: 100, Table: 2, From: p("192.0.2.10/32")}, {Priority: 102, Table: 2, FWMark: 1}},
				Sysctls: sys("1", "0"),
			},
			want: `addr dummy0 192.0.2.20/32
addr eth0 10.0.0.5/24
addr eth1 192.0.2.10/24
link dummy0 up dummy
link eth0 up 52:54:00:00:00:00
link eth1 up 52:54:00:00:00:01
route table 2 inet default via 192.0.2.1 dev eth1
rule inet 100: from 192.0.2.10 lookup 2
rule inet 102: from all fwmark 0x1 lookup 2
sysctl net/ipv4/conf/all/arp_ignore 0
sysctl net/ipv4/ip_forward 1
`,
		},
		{
			name: "stopped",
			in:   netconf.State{LB: netconf.LBInterface{Name: "eth1", Dummy: "dummy0", Table: 2}, Sysctls: sys("0", "0")},
			want: `addr eth0 10.0.0.5/24
link dummy0 up dummy
link eth0 up 52:54:00:00:00:00
link eth1 down 52:54:00:00:00:01
sysctl net/ipv4/conf/all/arp_ignore 0
sysctl net/ipv4/ip_forward 0
`,
		},
	}
}

// newNetFake is a host with a node interface the NCC must never touch
// (eth0, with its address) and an LB interface, down (eth1).
func newNetFake(t *testing.T) *netconftest.Kernel {
	t.Helper()
	k := netconftest.New(map[string]string{"net.ipv4.ip_forward": "0", "net.ipv4.conf.all.arp_ignore": "0"})
	k.AddPhysical("eth0", eth0MAC, true)
	k.AddPhysical("eth1", eth1MAC, false)
	if err := k.AddAddr("eth0", p("10.0.0.5/24")); err != nil {
		t.Fatal(err)
	}
	return k
}

func applyNet(t *testing.T, r *NetReconciler, k interface {
	String() string
	Writes() int
}, s netCase) []Change {
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
	if got := k.String(); got != s.want {
		t.Fatalf("after %q the host holds:\n%s\nwant:\n%s\nchanges:\n%s", s.name, got, s.want, changeList(changes))
	}
	w := k.Writes()
	again, err := r.Apply(s.in, false)
	if err != nil || len(again) != 0 || k.Writes() != w {
		t.Fatalf("%s applied twice: %d writes:\n%s%v", s.name, k.Writes()-w, changeList(again), err)
	}
	return changes
}

func TestNetStatesInOrderAndRandomOrder(t *testing.T) {
	k := newNetFake(t)
	r := NewNet(k, t.Logf)
	table := netTable()
	for _, s := range table {
		applyNet(t, r, k, s)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for range 30 {
		for _, i := range rng.Perm(len(table)) {
			applyNet(t, r, k, table[i])
		}
	}
}

// TestNetMACChangeKeepsIPv6: changing the MAC takes the link down, which
// takes its routes, its VLANs and their IPv6 addresses; they are put back
// in the same run, and the IPv6 VIP comes back from the macvlan.
func TestNetMACChangeKeepsIPv6(t *testing.T) {
	k := newNetFake(t)
	r := NewNet(k, nil)
	s := netTable()[2] // master with a VLAN and the VRRP MAC, up
	s.in.VLANs = []netconf.VLAN{{Parent: "eth1", ID: 100, Addrs: []netip.Prefix{p("203.0.113.2/24"), p("2001:db8:100::2/64")}}}
	s.want = edit(s.want, []string{"addr eth1.100 2001:db8:100::2/64"}, nil)
	applyNet(t, r, k, s)
	own := s
	own.in.LB.UseVMAC = false
	own.want = edit(s.want, []string{"link eth1 up 52:54:00:00:00:01", "addr eth1 2001:db8::10/64"},
		func(l string) bool { return strings.Contains(l, "vrrp6.42") || strings.HasPrefix(l, "link eth1 ") })
	changes := applyNet(t, r, k, own)
	want := "update link eth1: down, to change its MAC\n" +
		"update link eth1: MAC 00:00:5e:00:01:2a -> 52:54:00:00:00:01\n" +
		"update link eth1: up\n" +
		"update link eth1.100: up\n" +
		"add address eth1 2001:db8::10/64\n" +
		"add address eth1.100 2001:db8:100::2/64\n" +
		"add route table 2 inet 192.0.2.0/24 dev eth1\n" +
		"add route table 2 inet default via 192.0.2.1 dev eth1\n" +
		"delete link vrrp6.42: macvlan on eth1\n"
	if got := changeList(changes); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
}

// edit changes a rendered state: without the lines drop says, with add.
func edit(text string, add []string, drop func(string) bool) string {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if drop != nil {
		lines = slices.DeleteFunc(lines, drop)
	}
	lines = append(lines, add...)
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// TestNetRestoresTheMACItFound: a link whose permanent MAC the kernel does
// not know gets back the MAC it had before the VRRP MAC.
func TestNetRestoresTheMACItFound(t *testing.T) {
	k := netconftest.New(nil)
	k.AddPhysical("veth1", net.HardwareAddr{0x0a, 1, 2, 3, 4, 5}, true)
	r := NewNet(&noPermMAC{k}, nil)
	lb := netconf.LBInterface{Name: "veth1", Up: true, VRID: 7, UseVMAC: true}
	if _, err := r.Apply(netconf.State{LB: lb}, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(k.String(), "link veth1 up 00:00:5e:00:01:07") {
		t.Fatalf("VRRP MAC not set:\n%s", k)
	}
	lb.UseVMAC = false
	if _, err := r.Apply(netconf.State{LB: lb}, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(k.String(), "link veth1 up 0a:01:02:03:04:05") {
		t.Errorf("MAC not restored:\n%s", k)
	}
}

// TestNetRestoresTheMACAcrossRestarts: a new reconciler (a restarted NCC,
// or --cleanup) finds the link with the VRRP MAC; told what the first one
// found, it puts the link's own MAC back all the same.
func TestNetRestoresTheMACAcrossRestarts(t *testing.T) {
	k := netconftest.New(nil)
	k.AddPhysical("veth1", net.HardwareAddr{0x0a, 1, 2, 3, 4, 5}, true)
	first := NewNet(&noPermMAC{k}, nil)
	lb := netconf.LBInterface{Name: "veth1", Up: true, VRID: 7, UseVMAC: true}
	if _, err := first.Apply(netconf.State{LB: lb}, false); err != nil {
		t.Fatal(err)
	}
	saved := first.OriginalMACs()
	if got := saved["veth1"].String(); got != "0a:01:02:03:04:05" {
		t.Fatalf("OriginalMACs: %v", saved)
	}
	second := NewNet(&noPermMAC{k}, nil)
	second.RememberMACs(map[string]net.HardwareAddr{"veth1": saved["veth1"], "x": netconf.VRRPMAC(1), "y": {1}})
	lb.UseVMAC = false
	if _, err := second.Apply(netconf.State{LB: lb}, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(k.String(), "link veth1 up 0a:01:02:03:04:05") {
		t.Errorf("MAC not restored by a new reconciler:\n%s", k)
	}
	if m := second.OriginalMACs(); len(m) != 1 {
		t.Errorf("a VRRP MAC or a malformed one was remembered: %v", m)
	}
}

// TestNetRouteGoneWithTheLastAddress: deleting a link's last IPv4 address
// takes every IPv4 route through the link with it, before the plan's own
// delete of such a route comes; that is not a failure.
func TestNetRouteGoneWithTheLastAddress(t *testing.T) {
	k := netconftest.New(nil)
	k.AddPhysical("eth1", net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, true)
	r := NewNet(k, nil)
	lb := netconf.LBInterface{Name: "eth1", Up: true, VRID: 7, Dummy: "dummy0", Table: 2}
	with := netconf.State{LB: lb,
		VIPs:   []netconf.VIP{{Addr: p("198.51.100.1/32"), Link: "dummy0"}},
		Routes: []netconf.Route{{Table: 2, Dst: p("198.51.100.0/24"), Device: "dummy0"}}}
	for _, st := range []netconf.State{with, {LB: lb}} {
		changes, err := r.Apply(st, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			if c.Err != nil {
				t.Errorf("%s", c)
			}
		}
	}
	if strings.Contains(k.String(), "198.51.100") {
		t.Errorf("left behind:\n%s", k)
	}
}

// noPermMAC hides the permanent MACs, as the kernel does for veth.
type noPermMAC struct{ *netconftest.Kernel }

func (n *noPermMAC) Links() ([]netconf.Link, error) {
	ls, err := n.Kernel.Links()
	for i := range ls {
		ls[i].PermMAC = nil
	}
	return ls, err
}

// TestNetAuditRepairsDrift: someone removes a VIP and a rule, and brings
// the LB interface down; the audit puts all back.
func TestNetAuditRepairsDrift(t *testing.T) {
	k := newNetFake(t)
	r := NewNet(k, nil)
	if changes, err := r.Audit(); err != nil || len(changes) != 0 {
		t.Errorf("audit before any apply: %v %v", changes, err)
	}
	s := netTable()[1]
	applyNet(t, r, k, s)
	k.DeleteAddr("eth1", p("192.0.2.20/24"))
	k.DeleteRule(netconf.Rule{Priority: 101, Table: 2, To: p("192.0.2.10/32")})
	k.SetUp("eth1", false)
	changes, err := r.Audit()
	if err != nil {
		t.Fatal(err)
	}
	if k.String() != s.want {
		t.Errorf("after the audit:\n%s\nwant:\n%s\nchanges:\n%s", k, s.want, changeList(changes))
	}
}

// TestNetNeverTouchesWhatItDoesNotOwn: addresses on other links, rules and
// routes of other tables stay.
func TestNetNeverTouchesWhatItDoesNotOwn(t *testing.T) {
	k := newNetFake(t)
	k.AddRule(netconf.Rule{Priority: 50, Table: 7, From: p("10.9.0.0/16")})
	k.AddRoute(netconf.Route{Table: 7, Dst: p("10.9.0.0/16"), Device: "eth0"})
	r := NewNet(k, nil)
	for _, s := range netTable() {
		if _, err := r.Apply(s.in, false); err != nil {
			t.Fatal(err)
		}
		for _, line := range []string{"addr eth0 10.0.0.5/24", "rule inet 50: from 10.9.0.0/16 lookup 7", "route table 7 inet 10.9.0.0/16 dev eth0"} {
			if !strings.Contains(k.String(), line+"\n") {
				t.Fatalf("%s: lost %q:\n%s", s.name, line, k)
			}
		}
	}
}

func TestNetFailuresAreReported(t *testing.T) {
	k := newNetFake(t)
	r := NewNet(k, nil)
	// The LB interface is missing: said, and the rest is done.
	s := netconf.State{LB: netconf.LBInterface{Name: "eth9", Dummy: "dummy0", Table: 2}, Rules: []netconf.Rule{{Priority: 100, Table: 2, From: p("192.0.2.10/32")}}}
	changes, err := r.Apply(s, false)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, c := range changes {
		if c.Err != nil {
			failed = append(failed, c.String())
		}
	}
	if len(failed) == 0 || !strings.Contains(failed[0], "eth9") || !strings.Contains(k.String(), "rule inet 100") {
		t.Errorf("failures %q, host:\n%s", failed, k)
	}
	// A route through a link that is down is refused by the kernel.
	s = netTable()[0].in
	s.Routes = []netconf.Route{{Table: 2, Gateway: netip.MustParseAddr("192.0.2.1"), Device: "eth1"}}
	changes, _ = r.Apply(s, false)
	found := false
	for _, c := range changes {
		if c.Kind == KindRoute && c.Err != nil && strings.Contains(c.Err.Error(), syscall.ENETDOWN.Error()) {
			found = true
		}
	}
	if !found {
		t.Errorf("a route through a down link: %s", changeList(changes))
	}
	// An injected failure of one write does not stop the others.
	k.FailNext(func(op string) syscall.Errno {
		if op == "AddAddr" {
			return syscall.EPERM
		}
		return 0
	})
	changes, _ = r.Apply(netTable()[1].in, false)
	if !strings.Contains(k.String(), "link eth1 up") || !strings.Contains(changeList(changes), "operation not permitted") {
		t.Errorf("with failing address writes:\n%s\n%s", changeList(changes), k)
	}
}

func TestNetDryRun(t *testing.T) {
	k := newNetFake(t)
	r := NewNet(k, nil)
	before := k.String()
	changes, err := r.Apply(netTable()[2].in, true)
	if err != nil || k.Writes() != 1 || k.String() != before {
		// (the one write is newNetFake's address on eth0)
		t.Errorf("a dry run wrote: %d writes, %v", k.Writes(), err)
	}
	if len(changes) < 10 {
		t.Errorf("plan:\n%s", changeList(changes))
	}
}

func TestNetValidate(t *testing.T) {
	for name, s := range map[string]netconf.State{
		"VIP without LB":   {VIPs: []netconf.VIP{{Addr: p("192.0.2.1/32"), Link: "eth1"}}},
		"VIP on eth0":      {LB: netconf.LBInterface{Name: "eth1"}, VIPs: []netconf.VIP{{Addr: p("192.0.2.1/32"), Link: "eth0"}}},
		"VLAN id 0":        {LB: netconf.LBInterface{Name: "eth1"}, VLANs: []netconf.VLAN{{Parent: "eth1"}}},
		"VLAN twice":       {LB: netconf.LBInterface{Name: "eth1"}, VLANs: []netconf.VLAN{{Parent: "eth1", ID: 5}, {Parent: "eth1", ID: 5}}},
		"route, no table":  {Routes: []netconf.Route{{Device: "eth1"}}},
		"rule, no table":   {Rules: []netconf.Rule{{Priority: 5}}},
		"long VLAN name":   {LB: netconf.LBInterface{Name: "enp0s31f6long"}, VLANs: []netconf.VLAN{{Parent: "enp0s31f6long", ID: 4000}}},
		"VIP without link": {LB: netconf.LBInterface{Name: "eth1"}, VIPs: []netconf.VIP{{Addr: p("192.0.2.1/32")}}},
		"source of the other family": {LB: netconf.LBInterface{Name: "eth1"},
			VIPs: []netconf.VIP{{Addr: p("192.0.2.1/32"), Link: "eth1", Source: netip.MustParseAddr("2001:db8::1")}}},
		"source the VIP": {LB: netconf.LBInterface{Name: "eth1"},
			VIPs: []netconf.VIP{{Addr: p("192.0.2.1/24"), Link: "eth1", Source: netip.MustParseAddr("192.0.2.1")}}},
		"two sources": {LB: netconf.LBInterface{Name: "eth1"}, VIPs: []netconf.VIP{
			{Addr: p("192.0.2.1/32"), Link: "eth1", Source: netip.MustParseAddr("10.0.0.5")},
			{Addr: p("192.0.2.1/32"), Link: "eth1", Source: netip.MustParseAddr("10.0.0.6")}}},
		"a source, and on two links": {LB: netconf.LBInterface{Name: "eth1", Dummy: "dummy0"}, VIPs: []netconf.VIP{
			{Addr: p("192.0.2.1/32"), Link: "eth1", Source: netip.MustParseAddr("10.0.0.5")}, {Addr: p("192.0.2.1/32"), Link: "dummy0"}}},
		"a route in place of a source": {LB: netconf.LBInterface{Name: "eth1"},
			VIPs:   []netconf.VIP{{Addr: p("192.0.2.1/32"), Link: "eth1", Source: netip.MustParseAddr("10.0.0.5")}},
			Routes: []netconf.Route{{Table: 255, Dst: p("192.0.2.1/32"), Device: "eth1", Local: true}}},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
}

// vmac6Lines is what the fake shows of the IPv6 VRRP macvlan of vrid on
// eth1.
func vmac6Lines(vrid uint8, up bool) []string {
	name, state := netconf.VMAC6Name(vrid), "down"
	if up {
		state = "up"
	}
	return []string{
		"link " + name + " " + state + " macvlan eth1 " + netconf.VRRP6MAC(vrid).String(),
		"sysctl net/ipv4/conf/" + name + "/arp_ignore 1",
		"sysctl net/ipv6/conf/" + name + "/accept_dad 0",
		"sysctl net/ipv6/conf/" + name + "/accept_ra 0",
		"sysctl net/ipv6/conf/" + name + "/keep_addr_on_down 1",
	}
}

// foreignLinks are links the NCC did not make and must leave as they are:
// a macvlan of someone else's on the LB interface, and one named like the
// NCC's on another interface.
var foreignLinks = []string{
	"addr mv0 2001:db8:ff::1/64",
	"link mv0 up macvlan eth1 02:aa:00:00:00:01",
	"link vrrp6.7 down macvlan eth0 00:00:5e:00:02:07",
}

// newVMAC6Fake is newNetFake with foreignLinks.
func newVMAC6Fake(t *testing.T) *netconftest.Kernel {
	t.Helper()
	k := newNetFake(t)
	for _, err := range []error{
		k.AddMACVLAN("eth1", "mv0", net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}),
		k.SetUp("mv0", true),
		k.AddAddr("mv0", p("2001:db8:ff::1/64")),
		k.AddMACVLAN("eth0", "vrrp6.7", netconf.VRRP6MAC(7)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// vmac6Table is the IPv6 VRRP MAC's state table: use_vmac on and off, with
// and without IPv6 VIPs, master and backup, a change of VRID, cleanup.
func vmac6Table() []netCase {
	lb := netconf.LBInterface{Name: "eth1", Up: true, VRID: 42, UseVMAC: true, Dummy: "dummy0"}
	vips := []netconf.VIP{
		{Addr: p("192.0.2.10/24"), Link: "eth1", Announce: true},
		{Addr: p("2001:db8::10/64"), Link: "eth1", Announce: true},
		{Addr: p("2001:db8::11/128"), Link: "eth1"},
		{Addr: p("2001:db8:5::1/128"), Link: "dummy0"},
	}
	lines := func(more ...string) string {
		base := append([]string{"addr eth0 10.0.0.5/24", "link eth0 up 52:54:00:00:00:00", "link dummy0 up dummy",
			"sysctl net/ipv4/conf/all/arp_ignore 0", "sysctl net/ipv4/ip_forward 0"}, foreignLinks...)
		return edit(strings.Join(base, "\n")+"\n", more, nil)
	}
	with := func(l netconf.LBInterface, f func(*netconf.LBInterface)) netconf.LBInterface { f(&l); return l }
	backup := with(lb, func(l *netconf.LBInterface) { l.Up = false })
	own := with(lb, func(l *netconf.LBInterface) { l.UseVMAC = false })
	ownBackup := with(own, func(l *netconf.LBInterface) { l.Up = false })
	vrid43 := with(lb, func(l *netconf.LBInterface) { l.VRID = 43 })
	onLB := []string{"addr eth1 192.0.2.10/24", "addr dummy0 2001:db8:5::1/128"}
	v6On := func(link string) []string {
		return []string{"addr " + link + " 2001:db8::10/64", "addr " + link + " 2001:db8::11/128"}
	}
	cat := func(ls ...[]string) []string { return slices.Concat(ls...) }
	return []netCase{
		{
			name: "master: the IPv6 VIPs on the macvlan, the IPv4 ones on the LB interface",
			in:   netconf.State{LB: lb, VIPs: vips},
			want: lines(cat(onLB, v6On("vrrp6.42"), vmac6Lines(42, true), []string{"link eth1 up 00:00:5e:00:01:2a"})...),
		},
		{
			name: "backup: the macvlan down, the IPv6 VIPs kept on it",
			in:   netconf.State{LB: backup, VIPs: vips},
			want: lines(cat(onLB, v6On("vrrp6.42"), vmac6Lines(42, false), []string{"link eth1 down 00:00:5e:00:01:2a"})...),
		},
		{
			name: "use_vmac off: no macvlan, the IPv6 VIPs on the LB interface",
			in:   netconf.State{LB: own, VIPs: vips},
			want: lines(cat(onLB, v6On("eth1"), []string{"link eth1 up 52:54:00:00:00:01"})...),
		},
		{
			name: "use_vmac off, backup",
			in:   netconf.State{LB: ownBackup, VIPs: vips},
			want: lines(cat(onLB, v6On("eth1"), []string{"link eth1 down 52:54:00:00:00:01"})...),
		},
		{
			name: "use_vmac on without IPv6 VIPs on the LB interface: no macvlan",
			in:   netconf.State{LB: lb, VIPs: []netconf.VIP{vips[0], vips[3]}},
			want: lines(cat(onLB, []string{"link eth1 up 00:00:5e:00:01:2a"})...),
		},
		{
			name: "another VRID: another macvlan, the old one gone",
			in:   netconf.State{LB: vrid43, VIPs: vips},
			want: lines(cat(onLB, v6On("vrrp6.43"), vmac6Lines(43, true), []string{"link eth1 up 00:00:5e:00:01:2b"})...),
		},
		{
			name: "an IPv6 VIP on a VLAN stays there",
			in: netconf.State{LB: lb, VIPs: append(slices.Clone(vips[:2]), netconf.VIP{Addr: p("2001:db8:100::10/64"), Link: "eth1.100"}),
				VLANs: []netconf.VLAN{{Parent: "eth1", ID: 100}}},
			want: lines(cat(vmac6Lines(42, true), []string{"addr eth1 192.0.2.10/24", "addr vrrp6.42 2001:db8::10/64",
				"addr eth1.100 2001:db8:100::10/64", "link eth1.100 up vlan eth1 100", "link eth1 up 00:00:5e:00:01:2a"})...),
		},
		{
			name: "cleanup",
			in:   netconf.State{LB: netconf.LBInterface{Name: "eth1", Dummy: "dummy0"}},
			want: lines("link eth1 down 52:54:00:00:00:01"),
		},
	}
}

// TestNetVMAC6States applies the IPv6 VRRP MAC's states in order and in
// random orders, each twice: the second writes nothing, and the links the
// NCC did not make stay as they were throughout.
func TestNetVMAC6States(t *testing.T) {
	k := newVMAC6Fake(t)
	r := NewNet(k, t.Logf)
	table := vmac6Table()
	for _, s := range table {
		applyNet(t, r, k, s)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	for range 30 {
		for _, i := range rng.Perm(len(table)) {
			applyNet(t, r, k, table[i])
		}
	}
}

// TestNetVMAC6Failover: with the VIPs kept on the macvlan while it is down,
// becoming the master and the backup each take one write per link: no
// address is put back.
func TestNetVMAC6Failover(t *testing.T) {
	k := newVMAC6Fake(t)
	r := NewNet(k, nil)
	table := vmac6Table()
	master, backup := table[0], table[1]
	applyNet(t, r, k, backup)
	if got, want := changeList(applyNet(t, r, k, master)), "update link eth1: up\nupdate link vrrp6.42: up\n"; got != want {
		t.Errorf("becoming the master:\n%s\nwant:\n%s", got, want)
	}
	if got, want := changeList(applyNet(t, r, k, backup)), "update link eth1: down\nupdate link vrrp6.42: down\n"; got != want {
		t.Errorf("becoming the backup:\n%s\nwant:\n%s", got, want)
	}
}

// TestNetVMAC6Adoption: a restarted NCC finds the macvlan it made and
// writes nothing.
func TestNetVMAC6Adoption(t *testing.T) {
	for _, s := range vmac6Table()[:2] {
		k := newVMAC6Fake(t)
		applyNet(t, NewNet(k, nil), k, s)
		w := k.Writes()
		fresh := NewNet(k, nil)
		if changes, err := fresh.Apply(s.in, false); err != nil || len(changes) != 0 || k.Writes() != w {
			t.Errorf("%s: a new reconciler wrote %d times: %s%v", s.name, k.Writes()-w, changeList(changes), err)
		}
		known, err := fresh.Known()
		if err != nil {
			t.Fatal(err)
		}
		var onV6 []string
		for _, v := range known.VIPs {
			if v.Link == "vrrp6.42" {
				onV6 = append(onV6, v.Addr.String())
			}
		}
		if strings.Join(onV6, " ") != "2001:db8::10/64 2001:db8::11/128" {
			t.Errorf("%s: known VIPs on the macvlan: %v", s.name, known.VIPs)
		}
	}
}

// TestNetVMAC6AuditRepairs: someone deletes the macvlan, or takes it down,
// changes its MAC, removes a VIP from it and resets a sysctl; the audit
// puts it all back.
func TestNetVMAC6AuditRepairs(t *testing.T) {
	k := newVMAC6Fake(t)
	r := NewNet(k, nil)
	s := vmac6Table()[0]
	applyNet(t, r, k, s)
	if err := k.DeleteLink("vrrp6.42"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Audit(); err != nil {
		t.Fatal(err)
	}
	if got := k.String(); got != s.want {
		t.Fatalf("after the macvlan was deleted, the audit left:\n%s\nwant:\n%s", got, s.want)
	}
	for _, err := range []error{
		k.SetSysctl("net/ipv6/conf/vrrp6.42/keep_addr_on_down", "0"),
		k.SetUp("vrrp6.42", false), // and the IPv6 VIPs with it
		k.SetMAC("vrrp6.42", net.HardwareAddr{0x02, 0, 0, 0, 0, 9}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	changes, err := r.Audit()
	if err != nil {
		t.Fatal(err)
	}
	if got := k.String(); got != s.want {
		t.Fatalf("the audit left:\n%s\nwant:\n%s\nchanges:\n%s", got, s.want, changeList(changes))
	}
	if len(changes) == 0 {
		t.Errorf("no repairs reported")
	}
}

// TestNetVMAC6NameTaken: a link by the macvlan's name that is not a
// macvlan on the LB interface is not the NCC's: the apply says so, leaves
// it alone and puts no VIP on it, and does the rest; once it is gone, the
// macvlan is made.
func TestNetVMAC6NameTaken(t *testing.T) {
	k := newVMAC6Fake(t)
	if err := k.AddDummy("vrrp6.42"); err != nil {
		t.Fatal(err)
	}
	r := NewNet(k, nil)
	s := vmac6Table()[0]
	changes, err := r.Apply(s.in, false)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, c := range changes {
		if c.Err != nil {
			failed = append(failed, c.String())
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "vrrp6.42") || !strings.Contains(failed[0], "not the NCC's") {
		t.Errorf("failures: %q", failed)
	}
	got := k.String()
	if !strings.Contains(got, "link vrrp6.42 down dummy\n") || strings.Contains(got, "addr vrrp6.42") ||
		strings.Contains(got, "sysctl net/ipv6/conf/vrrp6.42") || !strings.Contains(got, "addr eth1 192.0.2.10/24\n") {
		t.Errorf("host:\n%s", got)
	}
	if err := k.DeleteLink("vrrp6.42"); err != nil {
		t.Fatal(err)
	}
	applyNet(t, r, k, s)
}

// TestNetVMAC6StateSysctlsWin: a sysctl of the macvlan the state names
// itself is the state's; the two do not take turns.
func TestNetVMAC6StateSysctlsWin(t *testing.T) {
	k := newVMAC6Fake(t)
	r := NewNet(k, nil)
	s := vmac6Table()[0]
	s.in.Sysctls = map[string]string{"net/ipv6/conf/vrrp6.42/accept_dad": "1"}
	s.want = edit(s.want, []string{"sysctl net/ipv6/conf/vrrp6.42/accept_dad 1"},
		func(l string) bool { return l == "sysctl net/ipv6/conf/vrrp6.42/accept_dad 0" })
	applyNet(t, r, k, s)
}

// TestNetVMAC6DryRun: the plan names the macvlan and writes nothing.
func TestNetVMAC6DryRun(t *testing.T) {
	k := newVMAC6Fake(t)
	r := NewNet(k, nil)
	before, w := k.String(), k.Writes()
	changes, err := r.Apply(vmac6Table()[0].in, true)
	if err != nil || k.Writes() != w || k.String() != before {
		t.Fatalf("a dry run wrote: %d writes, %v", k.Writes()-w, err)
	}
	for _, want := range []string{"add link vrrp6.42: macvlan on eth1, MAC 00:00:5e:00:02:2a\n", "update link vrrp6.42: up\n",
		"add address vrrp6.42 2001:db8::10/64\n", "update sysctl net/ipv6/conf/vrrp6.42/keep_addr_on_down: -> 1\n"} {
		if !strings.Contains(changeList(changes), want) {
			t.Errorf("plan lacks %q:\n%s", want, changeList(changes))
		}
	}
	if _, ok := r.Desired(); ok {
		t.Errorf("a dry run kept its state")
	}
}

// TestNetVMAC6Desired: the state kept (for announcements) has the IPv6
// VIPs of the LB interface on the macvlan; the caller's is not changed.
func TestNetVMAC6Desired(t *testing.T) {
	k := newVMAC6Fake(t)
	r := NewNet(k, nil)
	in := vmac6Table()[0].in
	if _, err := r.Apply(in, false); err != nil {
		t.Fatal(err)
	}
	d, _ := r.Desired()
	var links []string
	for _, v := range d.VIPs {
		links = append(links, v.Link)
	}
	if got := strings.Join(links, " "); got != "eth1 vrrp6.42 vrrp6.42 dummy0" {
		t.Errorf("links of the VIPs kept: %s", got)
	}
	if in.VIPs[1].Link != "eth1" {
		t.Errorf("the caller's state was changed")
	}
}

// The local routes of VIPs with a source. newSourceFake is newNetFake with
// more addresses of the node's own on eth0, for sources, and the LB
// interface up with its own MAC.
func newSourceFake(t *testing.T) *netconftest.Kernel {
	t.Helper()
	k := newNetFake(t)
	for _, a := range []string{"10.0.0.6/24", "2001:db8:ff::5/64", "2001:db8:ff::6/64"} {
		if err := k.AddAddr("eth0", p(a)); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

var (
	a4       = netip.MustParseAddr
	lbOwnUp  = netconf.LBInterface{Name: "eth1", Up: true, VRID: 42}
	vip4     = p("192.0.2.10/24")
	vip6     = p("2001:db8::10/64")
	srcState = func(s4, s6 string) netconf.State {
		st := netconf.State{LB: lbOwnUp, VIPs: []netconf.VIP{{Addr: vip4, Link: "eth1"}, {Addr: vip6, Link: "eth1"},
			{Addr: p("198.51.100.20/32"), Link: "eth1"}}}
		if s4 != "" {
			st.VIPs[0].Source = a4(s4)
		}
		if s6 != "" {
			st.VIPs[1].Source = a4(s6)
		}
		return st
	}
)

// localRoutes are the host's routes in the local table to the given
// addresses, the kernel's included, in the kernel's order, one a line.
func localRoutes(t *testing.T, k netconf.Kernel, addrs ...string) string {
	t.Helper()
	rs, err := k.Routes(netconf.LocalTable)
	if err != nil {
		t.Fatal(err)
	}
	// By destination, as Linux lists them; in the kernel's order for one.
	slices.SortStableFunc(rs, func(a, b netconf.Route) int { return a.Dst.Addr().Compare(b.Dst.Addr()) })
	var b strings.Builder
	for _, r := range rs {
		if slices.Contains(addrs, r.Dst.Addr().String()) {
			b.WriteString(r.String() + "\n")
		}
	}
	return b.String()
}

// applySource applies s, checks that it wrote without errors, that the
// local routes of the VIPs are want and that a second apply writes
// nothing; it returns the changes.
func applySource(t *testing.T, r *NetReconciler, k *netconftest.Kernel, name string, s netconf.State, want string) string {
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
	if got := localRoutes(t, k, "192.0.2.10", "2001:db8::10", "198.51.100.20", "10.0.0.5"); got != want {
		t.Fatalf("%s: local routes:\n%s\nwant:\n%s\nchanges:\n%s", name, got, want, changeList(changes))
	}
	w := k.Writes()
	if again, err := r.Apply(s, false); err != nil || len(again) != 0 || k.Writes() != w {
		t.Fatalf("%s applied twice: %d writes:\n%s%v", name, k.Writes()-w, changeList(again), err)
	}
	return changeList(changes)
}

// The local routes the kernel makes for the addresses (localRoutes lists
// the node's address first, then 192.0.2.10, 198.51.100.20, 2001:db8::10): the VIP
// without a source and the node's own address keep theirs throughout.
const (
	kernel20  = "table 255 inet local 198.51.100.20 dev eth1 src 198.51.100.20 proto kernel\n"
	kernelEth = "table 255 inet local 10.0.0.5 dev eth0 src 10.0.0.5 proto kernel\n"
	kernel4   = "table 255 inet local 192.0.2.10 dev eth1 src 192.0.2.10 proto kernel\n"
	kernel6   = "table 255 inet6 local 2001:db8::10 dev eth1 proto kernel\n"
	// The NCC's: with the sources, and IPv6's back without one.
	ours4 = "table 255 inet local 192.0.2.10 dev eth1 src 10.0.0.5\n"
	ours6 = "table 255 inet6 local 2001:db8::10 dev eth1 src 2001:db8:ff::5\n"
	back6 = "table 255 inet6 local 2001:db8::10 dev eth1\n"
)

// loc is what localRoutes lists with r4 and r6 the routes of the VIPs
// 192.0.2.10 and 2001:db8::10.
func loc(r4, r6 string) string { return kernelEth + r4 + kernel20 + r6 }

// TestNetVIPSource: a VIP given a source has its local route, and no
// other: IPv4's in place of the kernel's (one write), IPv6's beside it and
// the kernel's deleted (two); a new source takes the place of the old (one
// write each); without a source the kernel's form comes back (IPv4 the
// kernel's own, IPv6 the NCC's without a src); the VIP removed, no local
// route of it is left, though the kernel does not delete one it did not
// make. The node's address and the VIP without a source keep the kernel's
// routes all along.
func TestNetVIPSource(t *testing.T) {
	k := newSourceFake(t)
	r := NewNet(k, t.Logf)
	applySource(t, r, k, "no sources", srcState("", ""), loc(kernel4, kernel6))

	got := applySource(t, r, k, "sources", srcState("10.0.0.5", "2001:db8:ff::5"),
		loc(ours4, ours6))
	want := "update route table 255 inet local 192.0.2.10 dev eth1 src 10.0.0.5: in place of " + strings.TrimSuffix(kernel4, "\n") + "\n" +
		"add route table 255 inet6 local 2001:db8::10 dev eth1 src 2001:db8:ff::5\n" +
		"delete route " + kernel6
	if got != want {
		t.Errorf("setting the sources:\n%s\nwant:\n%s", got, want)
	}

	got = applySource(t, r, k, "other sources", srcState("10.0.0.6", "2001:db8:ff::6"),
		loc("table 255 inet local 192.0.2.10 dev eth1 src 10.0.0.6\n", "table 255 inet6 local 2001:db8::10 dev eth1 src 2001:db8:ff::6\n"))
	if n := strings.Count(got, "\n"); n != 2 || strings.Count(got, "update route") != 2 {
		t.Errorf("changing the sources:\n%s", got)
	}

	got = applySource(t, r, k, "sources cleared", srcState("", ""),
		loc(kernel4, back6))
	if n := strings.Count(got, "update route"); n != 2 || strings.Count(got, "\n") != 2 {
		t.Errorf("clearing the sources:\n%s", got)
	}

	// The VIPs go, with and without a source: nothing of them is left.
	applySource(t, r, k, "sources again", srcState("10.0.0.5", "2001:db8:ff::5"),
		loc(ours4, ours6))
	gone := netconf.State{LB: lbOwnUp}
	applySource(t, r, k, "VIPs removed", gone, kernelEth)
	applySource(t, r, k, "sources once more", srcState("10.0.0.5", "2001:db8:ff::5"),
		loc(ours4, ours6))
	applySource(t, r, k, "sources cleared once more", srcState("", ""), loc(kernel4, back6))
	applySource(t, r, k, "VIPs removed once more", gone, kernelEth)
}

// TestNetVIPSourceKernelLeavesIt: the fake, as Linux, deletes the
// kernel's local route of an address that goes, and leaves one with
// another src; the reconciler deletes those. (The host kernel and the
// lab show it of Linux itself.)
func TestNetVIPSourceKernelLeavesIt(t *testing.T) {
	k := newSourceFake(t)
	r := NewNet(k, nil)
	applySource(t, r, k, "sources", srcState("10.0.0.5", "2001:db8:ff::5"),
		loc(ours4, ours6))
	// (Another IPv4 address stays on the link: with its last one, IPv4
	// takes every route through the link.)
	for _, v := range []netip.Prefix{vip4, vip6} {
		if err := k.DeleteAddr("eth1", v); err != nil {
			t.Fatal(err)
		}
	}
	want := kernelEth + ours4 + kernel20 + ours6
	if got := localRoutes(t, k, "192.0.2.10", "2001:db8::10", "198.51.100.20", "10.0.0.5"); got != want {
		t.Fatalf("after the addresses went:\n%s\nwant:\n%s", got, want)
	}
	changes, err := r.Apply(netconf.State{LB: lbOwnUp}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := localRoutes(t, k, "192.0.2.10", "2001:db8::10", "198.51.100.20", "10.0.0.5"); got != kernelEth {
		t.Errorf("the reconciler left:\n%s\nchanges:\n%s", got, changeList(changes))
	}
}

// TestNetVIPSourceAdoption: a restarted NCC finds the local routes it
// made, writes nothing, and reports the sources it finds (GetState).
func TestNetVIPSourceAdoption(t *testing.T) {
	k := newSourceFake(t)
	s := srcState("10.0.0.5", "2001:db8:ff::5")
	if _, err := NewNet(k, nil).Apply(s, false); err != nil {
		t.Fatal(err)
	}
	w := k.Writes()
	fresh := NewNet(k, nil)
	if changes, err := fresh.Apply(s, false); err != nil || len(changes) != 0 || k.Writes() != w {
		t.Fatalf("a new reconciler wrote %d times: %s%v", k.Writes()-w, changeList(changes), err)
	}
	known, err := fresh.Known()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range known.VIPs {
		got[v.Addr.String()] = v.Source.String()
	}
	if want := map[string]string{"192.0.2.10/24": "10.0.0.5", "2001:db8::10/64": "2001:db8:ff::5", "198.51.100.20/32": "invalid IP"}; !maps.Equal(got, want) {
		t.Errorf("known sources %v, want %v", got, want)
	}
}

// TestNetVIPSourceAuditRepairs: the kernel's local routes come back when
// someone adds the VIP again (IPv4 after the NCC's, IPv6 before it, where
// a lookup finds it first) or takes the link down and up (IPv6 loses the
// NCC's route with it), or someone puts the kernel's in place of the
// NCC's; each audit makes it as it was.
func TestNetVIPSourceAuditRepairs(t *testing.T) {
	k := newSourceFake(t)
	r := NewNet(k, nil)
	s := srcState("10.0.0.5", "2001:db8:ff::5")
	want := loc(ours4, ours6)
	applySource(t, r, k, "sources", s, want)
	for name, drift := range map[string]func() error{
		"the VIPs added again": func() error {
			return errors.Join(k.DeleteAddr("eth1", vip4), k.AddAddr("eth1", vip4), k.DeleteAddr("eth1", vip6), k.AddAddr("eth1", vip6))
		},
		"the link down and up": func() error { return errors.Join(k.SetUp("eth1", false), k.SetUp("eth1", true)) },
		"the kernel's routes put back": func() error {
			return errors.Join(k.ReplaceRoute(netconf.Route{Table: 255, Dst: p("192.0.2.10/32"), Device: "eth1", Src: a4("192.0.2.10"), Local: true, Kernel: true}),
				k.ReplaceRoute(netconf.Route{Table: 255, Dst: p("2001:db8::10/128"), Device: "eth1", Local: true}))
		},
	} {
		if err := drift(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := localRoutes(t, k, "192.0.2.10", "2001:db8::10", "198.51.100.20", "10.0.0.5"); got == want {
			t.Fatalf("%s: nothing changed", name)
		}
		changes, err := r.Audit()
		if err != nil {
			t.Fatal(err)
		}
		if got := localRoutes(t, k, "192.0.2.10", "2001:db8::10", "198.51.100.20", "10.0.0.5"); got != want || len(changes) == 0 {
			t.Errorf("%s: after the audit:\n%s\nwant:\n%s\nchanges:\n%s", name, got, want, changeList(changes))
		}
		if changes, err := r.Audit(); err != nil || len(changes) != 0 {
			t.Errorf("%s: a second audit: %s%v", name, changeList(changes), err)
		}
	}
}

// TestNetVIPSourceDryRun: the plan names the rewrites and writes nothing.
func TestNetVIPSourceDryRun(t *testing.T) {
	k := newSourceFake(t)
	r := NewNet(k, nil)
	applySource(t, r, k, "no sources", srcState("", ""), loc(kernel4, kernel6))
	before, w := k.String(), k.Writes()
	changes, err := r.Apply(srcState("10.0.0.5", "2001:db8:ff::5"), true)
	if err != nil || k.Writes() != w || k.String() != before {
		t.Fatalf("a dry run wrote: %d writes, %v", k.Writes()-w, err)
	}
	want := "update route table 255 inet local 192.0.2.10 dev eth1 src 10.0.0.5: in place of " + strings.TrimSuffix(kernel4, "\n") + "\n" +
		"add route table 255 inet6 local 2001:db8::10 dev eth1 src 2001:db8:ff::5\n" +
		"delete route " + kernel6
	if got := changeList(changes); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
}

// TestNetVIPSourceNotHeld: a source that is no address of the host is
// refused by the kernel; the apply says so and leaves the VIP the
// kernel's route (putting it back if the VIP had another source), and
// does the rest.
func TestNetVIPSourceNotHeld(t *testing.T) {
	k := newSourceFake(t)
	r := NewNet(k, nil)
	for _, from := range []netconf.State{srcState("", ""), srcState("10.0.0.5", "")} {
		if _, err := r.Apply(from, false); err != nil {
			t.Fatal(err)
		}
		s := srcState("10.9.9.9", "2001:db8:ff::5")
		changes, err := r.Apply(s, false)
		if err != nil {
			t.Fatal(err)
		}
		var failed []string
		for _, c := range changes {
			if c.Err != nil {
				failed = append(failed, c.String())
			}
		}
		if len(failed) != 1 || !strings.Contains(failed[0], "source 10.9.9.9 is not an address of this host") {
			t.Errorf("failures: %q", failed)
		}
		want := loc(kernel4, ours6)
		if got := localRoutes(t, k, "192.0.2.10", "2001:db8::10", "198.51.100.20", "10.0.0.5"); got != want {
			t.Errorf("local routes:\n%s\nwant:\n%s", got, want)
		}
	}
	// The kernel's refusal, had the reconciler tried: the fake knows it.
	err := k.ReplaceRoute(netconf.Route{Table: 255, Dst: p("192.0.2.10/32"), Device: "eth1", Src: a4("10.9.9.9"), Local: true})
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("a src the host does not hold: %v", err)
	}
}

// TestNetVIPSourceFailover: with the IPv6 VIPs on the IPv6 VRRP macvlan,
// the backup keeps the IPv4 VIP's route (IPv4 keeps local routes on a link
// that is down) and has none for the IPv6 one (IPv6 takes them down with
// the link); becoming the master, the links come up, the kernel puts its
// routes back, and the reconciler deletes IPv4's and puts the IPv6 VIP's
// in place of the kernel's. The VIPs without a source cost nothing more.
func TestNetVIPSourceFailover(t *testing.T) {
	k := newSourceFake(t)
	r := NewNet(k, nil)
	lb := netconf.LBInterface{Name: "eth1", Up: true, VRID: 42, UseVMAC: true}
	master := netconf.State{LB: lb, VIPs: []netconf.VIP{{Addr: vip4, Link: "eth1", Source: a4("10.0.0.5")},
		{Addr: vip6, Link: "eth1", Source: a4("2001:db8:ff::5")}, {Addr: p("198.51.100.20/32"), Link: "eth1"}}}
	backup := master
	backup.LB.Up = false
	src4, src6 := "table 255 inet local 192.0.2.10 dev eth1 src 10.0.0.5\n", "table 255 inet6 local 2001:db8::10 dev vrrp6.42 src 2001:db8:ff::5\n"
	applySource(t, r, k, "master", master, loc(src4, src6))
	if got, want := applySource(t, r, k, "backup", backup, loc(src4, "")), "update link eth1: down\nupdate link vrrp6.42: down\n"; got != want {
		t.Errorf("becoming the backup:\n%s\nwant:\n%s", got, want)
	}
	want := "update link eth1: up\nupdate link vrrp6.42: up\n" +
		"delete route " + kernel4 +
		"add route " + src6 +
		"delete route table 255 inet6 local 2001:db8::10 dev vrrp6.42 proto kernel\n"
	if got := applySource(t, r, k, "master again", master, loc(src4, src6)); got != want {
		t.Errorf("becoming the master:\n%s\nwant:\n%s", got, want)
	}
}

// TestNetVIPSourceNeverTouchesOthers: local routes that are not the NCC's
// (on links it does not own, of the kernel's making for addresses without
// a source) stay as they are through every state.
func TestNetVIPSourceNeverTouchesOthers(t *testing.T) {
	k := newSourceFake(t)
	for _, rt := range []netconf.Route{
		{Table: 255, Dst: p("10.9.0.1/32"), Device: "eth0", Src: a4("10.0.0.5"), Local: true},
		{Table: 255, Dst: p("2001:db8:ff::99/128"), Device: "eth0", Src: a4("2001:db8:ff::5"), Local: true},
	} {
		if err := k.AddRoute(rt); err != nil {
			t.Fatal(err)
		}
	}
	before := localRoutes(t, k, "10.9.0.1", "2001:db8:ff::99", "10.0.0.5", "10.0.0.6", "2001:db8:ff::5", "2001:db8:ff::6")
	r := NewNet(k, nil)
	for _, s := range []netconf.State{srcState("10.0.0.5", "2001:db8:ff::5"), srcState("", ""), srcState("10.0.0.6", ""), {LB: lbOwnUp}} {
		if _, err := r.Apply(s, false); err != nil {
			t.Fatal(err)
		}
		if got := localRoutes(t, k, "10.9.0.1", "2001:db8:ff::99", "10.0.0.5", "10.0.0.6", "2001:db8:ff::5", "2001:db8:ff::6"); got != before {
			t.Fatalf("the local routes of others:\n%s\nwere:\n%s", got, before)
		}
	}
}

// A shared LB interface is the node's own NIC (keepalived's layout): the
// NCC never takes it down, never gives it another MAC and never removes
// the node's addresses on it; the VIPs come and go as floating addresses
// with mastership.
func TestNetSharedLBInterface(t *testing.T) {
	k := newNetFake(t)
	r := NewNet(k, nil)
	vips := func(held bool) []netconf.Floating {
		return []netconf.Floating{{Addr: p("10.0.0.40/24"), Link: "eth0", Held: held}, {Addr: p("2001:db8::40/128"), Link: "eth0", Held: held}}
	}
	for _, step := range []struct {
		name   string
		master bool
	}{{"backup", false}, {"master", true}, {"backup again", false}} {
		st := netconf.State{LB: netconf.LBInterface{Name: "eth0", Up: step.master, VRID: 50, Shared: true}, Floating: vips(step.master)}
		if err := st.Validate(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if _, err := r.Apply(st, false); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		text := k.String()
		for _, line := range []string{"link eth0 up " + eth0MAC.String(), "addr eth0 10.0.0.5/24"} {
			if !strings.Contains(text, line+"\n") {
				t.Errorf("%s: the node's NIC lost %q:\n%s", step.name, line, text)
			}
		}
		for _, vip := range []string{"addr eth0 10.0.0.40/24", "addr eth0 2001:db8::40/128"} {
			if got := strings.Contains(text, vip+"\n"); got != step.master {
				t.Errorf("%s: %q present = %v, want %v:\n%s", step.name, vip, got, step.master, text)
			}
		}
		w := k.Writes()
		if _, err := r.Apply(st, false); err != nil {
			t.Fatal(err)
		}
		if k.Writes() != w {
			t.Errorf("%s: applied twice, the second wrote %d times", step.name, k.Writes()-w)
		}
	}
	for name, s := range map[string]netconf.State{
		"use_vmac": {LB: netconf.LBInterface{Name: "eth0", Shared: true, UseVMAC: true}},
		"a VIP on it": {LB: netconf.LBInterface{Name: "eth0", Shared: true},
			VIPs: []netconf.VIP{{Addr: p("10.0.0.40/32"), Link: "eth0"}}},
		"a VLAN on it": {LB: netconf.LBInterface{Name: "eth0", Shared: true}, VLANs: []netconf.VLAN{{Parent: "eth0", ID: 5}}},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("shared LB interface, %s: valid", name)
		}
	}
	// Without Shared, a floating address on the LB interface is refused:
	// the NCC owns that link's addresses.
	if err := (netconf.State{LB: netconf.LBInterface{Name: "eth0"}, Floating: vips(true)}).Validate(); err == nil {
		t.Errorf("a floating address on an LB interface that is not shared: valid")
	}
}

// readCounting counts the reconciler's reads of the host.
type readCounting struct {
	*netconftest.Kernel
	reads int
}

func (k *readCounting) Links() ([]netconf.Link, error) { k.reads++; return k.Kernel.Links() }
func (k *readCounting) Addrs(l string) ([]netip.Prefix, error) {
	k.reads++
	return k.Kernel.Addrs(l)
}
func (k *readCounting) Routes(t int) ([]netconf.Route, error) {
	k.reads++
	return k.Kernel.Routes(t)
}
func (k *readCounting) Rules() ([]netconf.Rule, error)    { k.reads++; return k.Kernel.Rules() }
func (k *readCounting) Sysctl(key string) (string, error) { k.reads++; return k.Kernel.Sysctl(key) }

// TestNetTakeoverBeforeReading: a backup becoming the master brings its LB
// interface and the IPv6 VRRP macvlan up, and calls the takeover hook (the
// NCC's announcement), before it reads anything of the host; the writes
// and the host's end state are those of the full plan. Only from a held
// state: a new reconciler (an NCC restarted), a change beyond coming up,
// or becoming the backup takes the ordinary path.
func TestNetTakeoverBeforeReading(t *testing.T) {
	table := vmac6Table()
	master, backup := table[0], table[1]
	type hook struct {
		calls, reads int
		up           map[string]bool
	}
	setup := func(t *testing.T) (*netconftest.Kernel, *readCounting, *NetReconciler, *hook) {
		k := newVMAC6Fake(t)
		ck := &readCounting{Kernel: k}
		r := NewNet(ck, t.Logf)
		h := &hook{}
		r.OnTakeover(func(d netconf.State) {
			h.calls++
			h.reads = ck.reads
			h.up = map[string]bool{}
			links, _ := k.Links()
			for _, l := range links {
				h.up[l.Name] = l.Up
			}
			if !d.LB.Up || d.LB.Name != "eth1" {
				t.Errorf("the hook got LB %+v", d.LB)
			}
		})
		return k, ck, r, h
	}

	k, ck, r, h := setup(t)
	applyNet(t, r, k, backup)
	if h.calls != 0 {
		t.Fatalf("the hook was called %d times on the way to the backup state", h.calls)
	}
	ck.reads = 0
	if got, want := changeList(applyNet(t, r, k, master)), "update link eth1: up\nupdate link vrrp6.42: up\n"; got != want {
		t.Errorf("becoming the master:\n%s\nwant:\n%s", got, want)
	}
	if h.calls != 1 || h.reads != 0 || !h.up["eth1"] || !h.up["vrrp6.42"] {
		t.Errorf("hook: %d calls, %d reads before it, links up then: %v; want 1 call, no read, eth1 and vrrp6.42 up", h.calls, h.reads, h.up)
	}
	if ck.reads == 0 {
		t.Errorf("the full plan did not run after the takeover")
	}
	applyNet(t, r, k, backup)
	if h.calls != 1 {
		t.Errorf("becoming the backup called the hook")
	}

	t.Run("restarted", func(t *testing.T) {
		k, _, r, h := setup(t)
		applyNet(t, NewNet(k, nil), k, backup)
		applyNet(t, r, k, master)
		if h.calls != 0 {
			t.Errorf("a reconciler that holds nothing took the fast path")
		}
	})
	t.Run("VRID changes too", func(t *testing.T) {
		k, _, r, h := setup(t)
		applyNet(t, r, k, backup)
		m := master.in
		m.LB.VRID = 43
		r.Apply(m, false)
		if h.calls != 0 {
			t.Errorf("a takeover with another VRID took the fast path")
		}
	})
	t.Run("the link does not come up", func(t *testing.T) {
		k, _, r, h := setup(t)
		applyNet(t, r, k, backup)
		fail := true
		k.FailNext(func(op string) syscall.Errno {
			if op == "SetUp" && fail {
				fail = false
				return syscall.EBUSY
			}
			return 0
		})
		changes, err := r.Apply(master.in, false)
		if err != nil {
			t.Fatal(err)
		}
		if h.calls != 0 {
			t.Errorf("the hook was called though the link did not come up")
		}
		// The plan that follows tries again, and its outcome is the
		// one reported.
		if got, want := changeList(changes), "update link eth1: up\nupdate link vrrp6.42: up\n"; got != want {
			t.Errorf("changes:\n%s\nwant:\n%s", got, want)
		}
	})
}
