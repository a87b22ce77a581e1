// Package netconf is the NCC's view of the host's network configuration:
// links (the LB interface, the dummy interface for dedicated VIPs, VLAN
// interfaces, the macvlan that carries the IPv6 VRRP MAC), their addresses, policy routes and rules, and sysctls. It
// defines the desired state the NCC keeps (State) and the kernel operations
// it needs (Kernel), implemented on Linux with vishvananda/netlink (Linux)
// and, for tests, by netconftest.
package netconf

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// ErrNotExist is wrapped when a link does not exist.
var ErrNotExist = errors.New("no such link")

// Family is an address family (AF_INET, AF_INET6).
type Family int

// Address families.
const (
	IPv4 Family = 2
	IPv6 Family = 10
)

func (f Family) String() string {
	if f == IPv6 {
		return "inet6"
	}
	return "inet"
}

// FamilyOf is the family of a prefix or address.
func FamilyOf(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return IPv4
	}
	return IPv6
}

// Link is a network interface as the kernel reports it.
type Link struct {
	Name    string
	Index   int
	Kind    string // "dummy", "vlan", "macvlan", "veth", ...; "" for a physical device
	Up      bool   // administratively up
	MAC     net.HardwareAddr
	PermMAC net.HardwareAddr // the device's own address, when the kernel knows it
	Parent  string           // a VLAN's or macvlan's parent (lower) link
	VLANID  int
}

// Route is a route in a routing table.
type Route struct {
	Family  Family
	Table   int
	Dst     netip.Prefix // zero: the default route of Family
	Gateway netip.Addr
	Device  string
	Src     netip.Addr
	Local   bool // type local (in the local table: this host owns Dst)
	// Kernel: the kernel made it (proto kernel), as it makes a local
	// route for each address of the host. A route added with Kernel set
	// is added as the kernel's own, which the kernel then removes with
	// the address as it would its own.
	Kernel bool
}

func (r Route) family() Family {
	switch {
	case r.Family != 0:
		return r.Family
	case r.Dst.IsValid():
		return FamilyOf(r.Dst.Addr())
	case r.Gateway.IsValid():
		return FamilyOf(r.Gateway)
	}
	return IPv4
}

// Normalize fills in the family and masks the destination, as the kernel
// reports routes.
func (r Route) Normalize() Route {
	r.Family = r.family()
	if r.Dst.IsValid() {
		r.Dst = r.Dst.Masked()
		if r.Dst.Bits() == 0 {
			r.Dst = netip.Prefix{}
		}
	}
	return r
}

// String is the route as `ip route show table N` puts it.
func (r Route) String() string {
	var b strings.Builder
	if r.Local {
		b.WriteString("local ")
	}
	if r.Dst.IsValid() {
		if (r.Dst.Addr().Is4() && r.Dst.Bits() == 32) || (r.Dst.Addr().Is6() && r.Dst.Bits() == 128) {
			b.WriteString(r.Dst.Addr().String())
		} else {
			b.WriteString(r.Dst.String())
		}
	} else {
		b.WriteString("default")
	}
	if r.Gateway.IsValid() {
		b.WriteString(" via " + r.Gateway.String())
	}
	if r.Device != "" {
		b.WriteString(" dev " + r.Device)
	}
	if r.Src.IsValid() {
		b.WriteString(" src " + r.Src.String())
	}
	if r.Kernel {
		b.WriteString(" proto kernel")
	}
	return fmt.Sprintf("table %d %s %s", r.Table, r.family(), b.String())
}

// Rule is a policy-routing rule.
type Rule struct {
	Family   Family
	Priority int // 0: let the kernel choose (then any priority matches)
	Table    int
	From     netip.Prefix // zero: all
	To       netip.Prefix // zero: all
	FWMark   uint32
}

func (r Rule) family() Family {
	switch {
	case r.Family != 0:
		return r.Family
	case r.From.IsValid():
		return FamilyOf(r.From.Addr())
	case r.To.IsValid():
		return FamilyOf(r.To.Addr())
	}
	return IPv4
}

// Normalize fills in the family and masks the prefixes.
func (r Rule) Normalize() Rule {
	r.Family = r.family()
	if r.From.IsValid() {
		r.From = r.From.Masked()
	}
	if r.To.IsValid() {
		r.To = r.To.Masked()
	}
	return r
}

// Matches says whether a rule the kernel holds is this desired one.
func (r Rule) Matches(have Rule) bool {
	w := r.Normalize()
	if w.Priority == 0 {
		have.Priority = 0
	}
	return w == have.Normalize()
}

// String is the rule as `ip rule` puts it.
func (r Rule) String() string {
	from, to := "all", ""
	if r.From.IsValid() {
		from = prefixString(r.From)
	}
	if r.To.IsValid() {
		to = " to " + prefixString(r.To)
	}
	mark := ""
	if r.FWMark != 0 {
		mark = fmt.Sprintf(" fwmark %#x", r.FWMark)
	}
	return fmt.Sprintf("%s %d: from %s%s%s lookup %d", r.family(), r.Priority, from, to, mark, r.Table)
}

// prefixString writes a host prefix as its address, like ip does.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// LBInterface is the load-balancing interface and what goes with it.
type LBInterface struct {
	Name string // "": the NCC manages no links
	Up   bool   // up on the master, down on the backup
	VRID uint8
	// UseVMAC gives the interface the IPv4 VRRP MAC 00:00:5e:00:01:<VRID>
	// instead of its own, and its IPv6 VIPs the IPv6 VRRP MAC
	// 00:00:5e:00:02:<VRID>: a NIC has one MAC, so they go on a macvlan
	// on top of it (VMAC6Link), as keepalived's use_vmac does.
	UseVMAC bool
	Dummy   string // the interface for dedicated and anycast VIPs, created if missing
	Table   int    // the policy-routing table for VIP traffic (0: none)
	// Shared: the interface is the node's own NIC. The NCC leaves the
	// link alone (never down, never another MAC, its addresses not the
	// NCC's); what would be VIPs on it are Floating addresses.
	Shared bool
}

// VRRPMAC is the IPv4 VRRP virtual router MAC of vrid (RFC 5798).
func VRRPMAC(vrid uint8) net.HardwareAddr {
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, vrid}
}

// VRRP6MAC is the IPv6 VRRP virtual router MAC of vrid (RFC 5798).
func VRRP6MAC(vrid uint8) net.HardwareAddr {
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x02, vrid}
}

// vmac6Prefix starts the name of every IPv6 VRRP macvlan.
const vmac6Prefix = "vrrp6."

// VMAC6Name is the name of the macvlan that carries the IPv6 VRRP MAC of
// vrid: "vrrp6.<vrid>", 9 characters at most.
func VMAC6Name(vrid uint8) string { return fmt.Sprintf("%s%d", vmac6Prefix, vrid) }

// ParseVMAC6Name says whether name is VMAC6Name of some VRID, and which.
// A macvlan so named on the LB interface is the NCC's: it is how the NCC
// knows the ones it made, after a restart or a change of VRID, as it knows
// its VLAN interfaces by their "<parent>.<id>" names.
func ParseVMAC6Name(name string) (uint8, bool) {
	rest, ok := strings.CutPrefix(name, vmac6Prefix)
	n, err := strconv.Atoi(rest)
	// Only the name VMAC6Name gives: no sign, no leading zero.
	if !ok || err != nil || n < 0 || n > 255 || strconv.Itoa(n) != rest {
		return 0, false
	}
	return uint8(n), true
}

// VMAC6Link is the link that carries the LB interface's IPv6 VIPs: the
// macvlan VMAC6Name(VRID) on it with UseVMAC, "" without.
func (lb LBInterface) VMAC6Link() string {
	if !lb.UseVMAC || lb.Name == "" {
		return ""
	}
	return VMAC6Name(lb.VRID)
}

// VLAN is a VLAN interface on a parent link, with addresses of its own.
type VLAN struct {
	Parent string
	ID     int
	Addrs  []netip.Prefix
}

// Name is the VLAN interface's name, "<parent>.<id>".
func (v VLAN) Name() string { return fmt.Sprintf("%s.%d", v.Parent, v.ID) }

// VIP is an address the NCC places on a link.
type VIP struct {
	Addr     netip.Prefix // with the prefix length of the link's network (or /32, /128)
	Link     string
	Announce bool // gratuitous ARP / unsolicited NA while the LB interface is up
	// Source, when valid, is the source address of connections this host
	// opens to the VIP: its route in the local table is LocalRoute's
	// instead of the kernel's, whose src is the VIP itself. A DSR or TUN
	// health check dials the VIP, and a backend that holds the VIP too
	// would answer a probe from the VIP to itself. Of the VIP's family,
	// and an address of the host (the kernel refuses any other).
	Source netip.Addr
}

// LocalRoute is the route of the VIP's address in the local table with
// Source as its src (the kernel's own has the VIP's address, or none for
// IPv6); the zero Route without a Source.
func (v VIP) LocalRoute() Route {
	if !v.Source.IsValid() {
		return Route{}
	}
	a := v.Addr.Addr()
	return Route{Family: FamilyOf(a), Table: LocalTable, Dst: netip.PrefixFrom(a, a.BitLen()), Device: v.Link, Src: v.Source, Local: true}
}

// LocalTable is the kernel's local routing table.
const LocalTable = 255

// State is the network configuration the NCC keeps.
type State struct {
	LB       LBInterface
	VIPs     []VIP
	VLANs    []VLAN
	Routes   []Route
	Rules    []Rule
	Sysctls  map[string]string
	Floating []Floating
}

// Floating is an address that moves with mastership on a link the NCC
// owns nothing else of (the backends' network, for NAT without source
// NAT): on it while Held, and announced; made absent otherwise.
type Floating struct {
	Addr netip.Prefix
	Link string
	Held bool
}

// Placed is s with the IPv6 VIPs of the LB interface on its VMAC6Link
// when UseVMAC is on, where the kernel answers neighbour solicitations for
// them with the IPv6 VRRP MAC; s itself otherwise. It is what the host is
// to hold: the reconciler applies it, and a VIP's Link in it is the link
// to announce the VIP from. s is not changed; Placed of a placed state is
// itself.
func (s State) Placed() State {
	v6 := s.LB.VMAC6Link()
	if v6 == "" {
		return s
	}
	vips := slices.Clone(s.VIPs)
	for i, v := range vips {
		if v.Link == s.LB.Name && FamilyOf(v.Addr.Addr()) == IPv6 {
			vips[i].Link = v6
		}
	}
	s.VIPs = vips
	return s
}

// NeedsVMAC6 says whether s (placed) has the macvlan VMAC6Link: UseVMAC
// with IPv6 VIPs on it. Without them there is nothing for it to carry, and
// it is not made.
func (s State) NeedsVMAC6() bool {
	v6 := s.LB.VMAC6Link()
	return v6 != "" && slices.ContainsFunc(s.VIPs, func(v VIP) bool { return v.Link == v6 })
}

// SystemTable says whether a routing table is one of the kernel's own
// (local 255, main 254, default 253), where the NCC adds routes but never
// removes any.
func SystemTable(t int) bool { return t >= 253 && t <= 255 }

// OwnedTables are the routing tables the NCC owns wholly: its policy table
// and any other non-system table the state routes or rules name.
func (s State) OwnedTables() []int {
	seen := map[int]bool{}
	var out []int
	add := func(t int) {
		if t != 0 && !SystemTable(t) && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	add(s.LB.Table)
	for _, r := range s.Routes {
		add(r.Table)
	}
	for _, r := range s.Rules {
		add(r.Table)
	}
	return out
}

// Validate checks the state for what no kernel could hold.
func (s State) Validate() error {
	if s.LB.Name == "" && (len(s.VIPs) > 0 || len(s.VLANs) > 0) {
		return errors.New("VIPs and VLANs need an LB interface")
	}
	vlans := map[string]bool{}
	for _, v := range s.VLANs {
		if v.ID < 1 || v.ID > 4094 {
			return fmt.Errorf("VLAN id %d is not in 1..4094", v.ID)
		}
		if v.Parent == "" {
			return fmt.Errorf("VLAN %d has no parent", v.ID)
		}
		if s.LB.Shared && v.Parent == s.LB.Name {
			return fmt.Errorf("VLAN %d is on %s, the node's own NIC (a shared LB interface): VLANs need an LB NIC of its own", v.ID, v.Parent)
		}
		if vlans[v.Name()] {
			return fmt.Errorf("VLAN %s is listed twice", v.Name())
		}
		if v.Name() == s.LB.VMAC6Link() {
			return fmt.Errorf("VLAN interface %s has the name of the IPv6 VRRP macvlan", v.Name())
		}
		if len(v.Name()) > 15 {
			return fmt.Errorf("VLAN interface name %s is longer than 15 characters", v.Name())
		}
		vlans[v.Name()] = true
	}
	if s.LB.Shared && s.LB.UseVMAC {
		return fmt.Errorf("the LB interface %s is the node's own NIC (shared): it cannot take the VRRP MAC (use_vmac)", s.LB.Name)
	}
	v6 := s.LB.VMAC6Link()
	if v6 != "" && (s.LB.Dummy == v6 || s.LB.Name == v6) {
		return fmt.Errorf("interface %s has the name of the IPv6 VRRP macvlan", v6)
	}
	for _, v := range s.VIPs {
		if !v.Addr.IsValid() {
			return errors.New("a VIP has no address")
		}
		if v.Link == "" {
			return fmt.Errorf("VIP %s has no link", v.Addr)
		}
		if v.Link == v6 && v6 != "" {
			if FamilyOf(v.Addr.Addr()) != IPv6 {
				return fmt.Errorf("VIP %s is IPv4, on %s, the macvlan of the IPv6 VRRP MAC", v.Addr, v.Link)
			}
			continue
		}
		if v.Link == s.LB.Name && s.LB.Shared {
			return fmt.Errorf("VIP %s is on %s, the node's own NIC (a shared LB interface): its VIPs are floating addresses", v.Addr, v.Link)
		}
		if v.Link != s.LB.Name && v.Link != s.LB.Dummy && !vlans[v.Link] {
			return fmt.Errorf("VIP %s is on %s, which is not the LB interface, the dummy interface or a VLAN", v.Addr, v.Link)
		}
	}
	seenF := map[netip.Addr]bool{}
	for _, f := range s.Floating {
		switch {
		case !f.Addr.IsValid():
			return errors.New("a floating address has no address")
		case f.Link == "":
			return fmt.Errorf("floating address %s has no link", f.Addr)
		case f.Link == s.LB.Name && !s.LB.Shared || f.Link == s.LB.Dummy || vlans[f.Link] || f.Link == v6 && v6 != "":
			return fmt.Errorf("floating address %s is on %s, whose addresses the NCC owns: make it a VIP", f.Addr, f.Link)
		case seenF[f.Addr.Addr()]:
			return fmt.Errorf("floating address %s is listed twice", f.Addr.Addr())
		case slices.ContainsFunc(s.VIPs, func(v VIP) bool { return v.Addr.Addr() == f.Addr.Addr() }):
			return fmt.Errorf("floating address %s is a VIP too", f.Addr.Addr())
		}
		seenF[f.Addr.Addr()] = true
	}
	if err := s.validateSources(); err != nil {
		return err
	}
	for _, r := range s.Routes {
		if r.Table == 0 {
			return fmt.Errorf("route %s has no table", r)
		}
	}
	for _, r := range s.Rules {
		if r.Table == 0 {
			return fmt.Errorf("rule %s has no table", r)
		}
	}
	return nil
}

// validateSources checks the VIPs' sources: of the VIP's family, a unicast
// address other than the VIP's own, one per VIP address (its local route
// is one), and no route of the state's own in its place.
//
// That the source is an address of the host is not checked here: the
// host's own addresses (the node's address on a link the NCC does not own)
// are not in the state. The reconciler checks it against the host, keeps
// the kernel's route when it is not, and reports a failed change.
func (s State) validateSources() error {
	type placed struct {
		link string
		src  netip.Addr
	}
	with := map[netip.Addr]placed{}
	for _, v := range s.VIPs {
		if !v.Source.IsValid() {
			continue
		}
		a, src := v.Addr.Addr(), v.Source
		switch {
		case FamilyOf(src) != FamilyOf(a):
			return fmt.Errorf("VIP %s: source %s is not of its family", v.Addr, src)
		case src.Unmap() == a.Unmap():
			return fmt.Errorf("VIP %s: source %s is the VIP itself (leave it empty for the kernel's route)", v.Addr, src)
		case src.IsLoopback() || src.IsUnspecified() || src.IsMulticast() || src.IsLinkLocalUnicast() || src == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return fmt.Errorf("VIP %s: source %s is not a unicast address the host can hold for it", v.Addr, src)
		}
		if o, ok := with[a]; ok && o != (placed{v.Link, src}) {
			return fmt.Errorf("VIP %s is listed with source %s on %s and %s on %s: it has one local route", a, o.src, o.link, src, v.Link)
		}
		with[a] = placed{v.Link, src}
	}
	for _, v := range s.VIPs {
		if o, ok := with[v.Addr.Addr()]; ok && v.Link != o.link {
			return fmt.Errorf("VIP %s is on %s and %s, with a source on %s: it has one local route", v.Addr.Addr(), v.Link, o.link, o.link)
		}
	}
	for _, r := range s.Routes {
		r = r.Normalize()
		if _, ok := with[r.Dst.Addr()]; ok && r.Table == LocalTable && r.Dst.IsSingleIP() {
			return fmt.Errorf("route %s is the local route of a VIP with a source, which the VIP's source decides", r)
		}
	}
	return nil
}

// ComparePrefixes orders prefixes by address, then length.
func ComparePrefixes(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// Kernel is what the NCC needs of the host's network stack. Links that do
// not exist give errors matching ErrNotExist.
type Kernel interface {
	Links() ([]Link, error)
	AddDummy(name string) error
	AddVLAN(parent string, id int) error
	// AddMACVLAN adds a macvlan in bridge mode on parent, with the given
	// MAC, down.
	AddMACVLAN(parent, name string, mac net.HardwareAddr) error
	DeleteLink(name string) error
	SetUp(name string, up bool) error
	SetMAC(name string, mac net.HardwareAddr) error
	// Addrs are a link's global addresses (link-local ones are the
	// kernel's).
	Addrs(link string) ([]netip.Prefix, error)
	AddAddr(link string, p netip.Prefix) error
	DeleteAddr(link string, p netip.Prefix) error
	// Routes are the unicast and local routes of a table, in the
	// kernel's order: of two routes to one destination the first is the
	// one a lookup finds.
	Routes(table int) ([]Route, error)
	AddRoute(Route) error
	// ReplaceRoute puts r in place of the route the kernel takes for the
	// same one, at once, or adds it: for IPv4 the first route to the
	// same destination in the table (refused, EEXIST, when another route
	// to it is r already); for IPv6 the first to it with the same metric,
	// which is never one of the local routes the kernel makes for its
	// addresses: those have metric 0, and a route added over netlink
	// asking for 0 gets 1024.
	ReplaceRoute(Route) error
	// DeleteRoute deletes the first route matching r: same table, type
	// and destination; its device and gateway when r names them; for
	// IPv4 its src when r has one; and its origin: with Kernel the
	// kernel's (proto kernel), for a local route without Kernel one
	// added as the NCC adds them (proto boot). IPv6 does not match on
	// src: the origin is what keeps the kernel's local route from being
	// taken for the NCC's to the same address.
	DeleteRoute(Route) error
	Rules() ([]Rule, error)
	AddRule(Rule) error
	DeleteRule(Rule) error
	Sysctl(key string) (string, error)
	SetSysctl(key, value string) error
}

// SysctlPath turns a sysctl key into its path under /proc/sys:
// "net.ipv4.ip_forward" is net/ipv4/ip_forward. A key with slashes is a
// path already, which is how to name an interface with a dot in it
// ("net/ipv4/conf/eth1.100/arp_ignore").
func SysctlPath(key string) string {
	if strings.Contains(key, "/") {
		return strings.Trim(key, "/")
	}
	return strings.ReplaceAll(key, ".", "/")
}

// SysctlValue normalizes a sysctl value for comparison: the kernel
// separates the numbers of a vector with tabs.
func SysctlValue(v string) string { return strings.Join(strings.Fields(v), " ") }
