// Package netconftest is a fake of the host's network stack for the NCC's
// tests: links, addresses, routes, rules and sysctls in memory, with the
// kernel's answers to what it refuses (errno for errno where it matters)
// and its side effects (a link going down takes the routes through it; a
// deleted link takes its addresses, routes, VLANs and macvlans; an address
// has a local route of the kernel's, made and removed with it, as Linux
// makes them; a link's last IPv4 address takes its IPv4 routes). It renders its state as text, one line per object,
// sorted, so that tests compare states as strings; the lab runs the same
// sequences on a real kernel.
package netconftest

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/seesawlb/seesaw/ncc/netconf"
)

type link struct {
	netconf.Link
	addrs []netip.Prefix
}

// route is a route with the metric the kernel orders the routes to one
// destination by: IPv6 gives the local routes it makes for addresses 0 and
// every route added over netlink 1024 (a 0 asked for becomes 1024); IPv4
// routes are all 0 here. A lookup takes the first route of a destination.
type route struct {
	netconf.Route
	metric int
}

// Kernel is a fake network stack. The zero value is not usable; call New.
type Kernel struct {
	mu      sync.Mutex
	links   map[string]*link
	next    int
	routes  []route // in the kernel's order
	rules   []netconf.Rule
	sysctls map[string]string
	writes  int
	// fail makes the next matching call fail with an errno.
	fail func(op string) syscall.Errno
}

// New returns a stack with lo, the default rules and the given sysctls
// (keys as paths under /proc/sys, e.g. "net/ipv4/ip_forward").
func New(sysctls map[string]string) *Kernel {
	k := &Kernel{links: map[string]*link{}, next: 1, sysctls: map[string]string{}}
	k.links["lo"] = &link{Link: netconf.Link{Name: "lo", Index: 1, Kind: "loopback", Up: true}}
	k.next = 2
	for _, f := range []netconf.Family{netconf.IPv4, netconf.IPv6} {
		k.rules = append(k.rules,
			netconf.Rule{Family: f, Priority: 0, Table: 255},
			netconf.Rule{Family: f, Priority: 32766, Table: 254},
		)
		if f == netconf.IPv4 {
			k.rules = append(k.rules, netconf.Rule{Family: f, Priority: 32767, Table: 253})
		}
	}
	for key, v := range sysctls {
		k.sysctls[netconf.SysctlPath(key)] = v
	}
	return k
}

// AddPhysical adds a device as if a NIC had it: up or down, with its own
// (permanent) MAC.
func (k *Kernel) AddPhysical(name string, mac net.HardwareAddr, up bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.links[name] = &link{Link: netconf.Link{Name: name, Index: k.next, Up: up, MAC: mac, PermMAC: mac}}
	k.next++
}

// Writes is how many changing calls the stack got, failed ones included.
func (k *Kernel) Writes() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.writes
}

// FailNext makes calls for which fn returns non-zero fail with that errno
// (op is the method name, e.g. "AddRoute"), until replaced.
func (k *Kernel) FailNext(fn func(op string) syscall.Errno) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fail = fn
}

// Edit changes the stack behind the NCC's back (someone ran ip).
func (k *Kernel) Edit(fn func(k *Kernel)) { fn(k) }

// write counts a changing call and applies an injected failure.
func (k *Kernel) write(op string) error {
	k.writes++
	if k.fail != nil {
		if e := k.fail(op); e != 0 {
			return e
		}
	}
	return nil
}

func (k *Kernel) get(name string) (*link, error) {
	l, ok := k.links[name]
	if !ok {
		return nil, fmt.Errorf("netconftest: link %s: %w", name, netconf.ErrNotExist)
	}
	return l, nil
}

func (k *Kernel) Links() ([]netconf.Link, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []netconf.Link
	for _, l := range k.links {
		c := l.Link
		c.MAC, c.PermMAC = slices.Clone(c.MAC), slices.Clone(c.PermMAC)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

func (k *Kernel) addLink(l netconf.Link) error {
	if _, ok := k.links[l.Name]; ok {
		return syscall.EEXIST
	}
	l.Index = k.next
	k.next++
	// A fresh device has a random locally administered MAC.
	l.MAC = net.HardwareAddr{0x02, 0, 0, 0, byte(l.Index >> 8), byte(l.Index)}
	k.links[l.Name] = &link{Link: l}
	return nil
}

func (k *Kernel) AddDummy(name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("AddDummy"); err != nil {
		return err
	}
	return k.addLink(netconf.Link{Name: name, Kind: "dummy"})
}

func (k *Kernel) AddVLAN(parent string, id int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("AddVLAN"); err != nil {
		return err
	}
	p, err := k.get(parent)
	if err != nil {
		return err
	}
	l := netconf.Link{Name: netconf.VLAN{Parent: parent, ID: id}.Name(), Kind: "vlan", Parent: parent, VLANID: id}
	if err := k.addLink(l); err != nil {
		return err
	}
	k.links[l.Name].MAC = slices.Clone(p.MAC) // a VLAN takes its parent's MAC
	return nil
}

// AddMACVLAN adds a macvlan, down, with its MAC. Its administrative state
// is its own: unlike a VLAN it does not follow its parent up and down (the
// kernel only passes the parent's carrier on).
func (k *Kernel) AddMACVLAN(parent, name string, mac net.HardwareAddr) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("AddMACVLAN"); err != nil {
		return err
	}
	if _, err := k.get(parent); err != nil {
		return err
	}
	if err := k.addLink(netconf.Link{Name: name, Kind: "macvlan", Parent: parent}); err != nil {
		return err
	}
	k.links[name].MAC = slices.Clone(mac)
	return nil
}

func (k *Kernel) DeleteLink(name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("DeleteLink"); err != nil {
		return err
	}
	if _, err := k.get(name); err != nil {
		return err
	}
	k.deleteLink(name)
	return nil
}

func (k *Kernel) deleteLink(name string) {
	delete(k.links, name)
	for p := range k.sysctls {
		if strings.HasPrefix(p, "net/ipv4/conf/"+name+"/") || strings.HasPrefix(p, "net/ipv6/conf/"+name+"/") {
			delete(k.sysctls, p)
		}
	}
	k.routes = slices.DeleteFunc(k.routes, func(r route) bool { return r.Device == name })
	for n, l := range k.links {
		if (l.Kind == "vlan" || l.Kind == "macvlan") && l.Parent == name {
			k.deleteLink(n)
		}
	}
}

func (k *Kernel) SetUp(name string, up bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("SetUp"); err != nil {
		return err
	}
	l, err := k.get(name)
	if err != nil {
		return err
	}
	if up && l.Kind == "vlan" && !k.links[l.Parent].Up {
		return syscall.ENETDOWN // a VLAN is up only while its parent is
	}
	k.setUp(l, up)
	return nil
}

// setUp changes a link's state with the kernel's side effects: a link
// that goes down loses the routes through it but its IPv4 local ones (IPv6
// takes its local routes too) and, unless told to keep them, its IPv6
// addresses; a link that comes up gets the kernel's local routes of its
// addresses again (IPv4 puts them after any other to the same address);
// VLANs follow their parent up and down.
func (k *Kernel) setUp(l *link, up bool) {
	if l.Up && !up {
		k.routes = slices.DeleteFunc(k.routes, func(r route) bool {
			return r.Device == l.Name && (!r.Local || r.Family == netconf.IPv6)
		})
		if k.sysctls["net/ipv6/conf/"+l.Name+"/keep_addr_on_down"] != "1" {
			l.addrs = slices.DeleteFunc(l.addrs, func(p netip.Prefix) bool { return p.Addr().Is6() })
		}
	}
	changed := l.Up != up
	l.Up = up
	if changed && up {
		for _, a := range l.addrs {
			k.addKernelLocal(l, a)
		}
	}
	if changed {
		for _, c := range k.links {
			if c.Kind == "vlan" && c.Parent == l.Name {
				k.setUp(c, up)
			}
		}
	}
}

func (k *Kernel) SetMAC(name string, mac net.HardwareAddr) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("SetMAC"); err != nil {
		return err
	}
	l, err := k.get(name)
	if err != nil {
		return err
	}
	l.MAC = slices.Clone(mac)
	return nil
}

func (k *Kernel) Addrs(name string) ([]netip.Prefix, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l, err := k.get(name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.addrs), nil
}

func (k *Kernel) AddAddr(name string, p netip.Prefix) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("AddAddr"); err != nil {
		return err
	}
	l, err := k.get(name)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(l.addrs, func(a netip.Prefix) bool { return a.Addr() == p.Addr() }) {
		return syscall.EEXIST
	}
	l.addrs = append(l.addrs, p)
	k.addKernelLocal(l, p)
	return nil
}

// kernelLocal is the local route the kernel makes for an address: in the
// local table, through the address's link, proto kernel; IPv4 gives it the
// address as its src, IPv6 no src.
func kernelLocal(link string, p netip.Prefix) route {
	a := p.Addr()
	r := netconf.Route{Family: netconf.FamilyOf(a), Table: netconf.LocalTable, Dst: netip.PrefixFrom(a, a.BitLen()),
		Device: link, Local: true, Kernel: true}
	if r.Family == netconf.IPv4 {
		r.Src = a
	}
	return route{Route: r}
}

// addKernelLocal adds the kernel's local route for an address of l, as
// Linux does when the address is added and when l comes up: IPv4 whether
// l is up or not, after the other routes to the address (the kernel
// appends it); IPv6 only while l is up, before the others (metric 0).
// Linux adds the IPv6 one from a work queue, a moment after the write
// that causes it; here it is there at once.
func (k *Kernel) addKernelLocal(l *link, p netip.Prefix) {
	r := kernelLocal(l.Name, p)
	if r.Family == netconf.IPv6 && !l.Up {
		return
	}
	if !slices.Contains(k.routes, r) {
		k.insert(r)
	}
}

// insert puts r among the routes in the kernel's order: after the routes
// to its destination with the same or a lower metric, before those with a
// higher one.
func (k *Kernel) insert(r route) {
	at := len(k.routes)
	for i := len(k.routes) - 1; i >= 0; i-- {
		if o := k.routes[i]; sameRoute(o.Route, r.Route) {
			if o.metric <= r.metric {
				at = i + 1
				break
			}
			at = i
		}
	}
	k.routes = slices.Insert(k.routes, at, r)
}

// removeKernelLocal is what the kernel does to routes when an address
// of link goes: IPv4 deletes the local route that is the kernel's form for
// it (as made, or added again as such); IPv6 deletes the one it made
// itself, and drops the address as the src of the routes through link.
// (IPv4's flush of the main table's routes with the address as their src
// is not modelled.)
func (k *Kernel) removeKernelLocal(link string, p netip.Prefix) {
	want := kernelLocal(link, p)
	if i := slices.Index(k.routes, want); i >= 0 {
		k.routes = slices.Delete(k.routes, i, i+1)
	}
	if want.Family == netconf.IPv6 {
		for i, r := range k.routes {
			if r.Device == link && r.Src == p.Addr() {
				k.routes[i].Src = netip.Addr{}
			}
		}
	}
}

func (k *Kernel) DeleteAddr(name string, p netip.Prefix) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("DeleteAddr"); err != nil {
		return err
	}
	l, err := k.get(name)
	if err != nil {
		return err
	}
	i := slices.Index(l.addrs, p)
	if i < 0 {
		return syscall.EADDRNOTAVAIL
	}
	l.addrs = slices.Delete(l.addrs, i, i+1)
	k.removeKernelLocal(name, p)
	// An IPv4 primary address takes the secondaries of its subnet with
	// it, unless they are to be promoted.
	primary := !slices.ContainsFunc(l.addrs[:i], func(q netip.Prefix) bool { return q.Addr().Is4() && q.Masked() == p.Masked() })
	promote := k.sysctls["net/ipv4/conf/"+name+"/promote_secondaries"] == "1" || k.sysctls["net/ipv4/conf/all/promote_secondaries"] == "1"
	if p.Addr().Is4() && primary && !promote {
		l.addrs = slices.DeleteFunc(l.addrs, func(q netip.Prefix) bool {
			if q.Addr().Is4() && q.Masked() == p.Masked() {
				k.removeKernelLocal(name, q)
				return true
			}
			return false
		})
	}
	// The link's last IPv4 address gone, IPv4 is off on it: every IPv4
	// route through it goes, local ones too.
	if p.Addr().Is4() && !slices.ContainsFunc(l.addrs, func(q netip.Prefix) bool { return q.Addr().Is4() }) {
		k.routes = slices.DeleteFunc(k.routes, func(r route) bool { return r.Device == name && r.Family == netconf.IPv4 })
	}
	return nil
}

func (k *Kernel) Routes(table int) ([]netconf.Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []netconf.Route
	for _, r := range k.routes {
		if r.Table == table {
			out = append(out, r.Route)
		}
	}
	return out, nil
}

// sameRoute is the kernel's identity of a route: table, family, type and
// destination (one route per destination without metrics or TOS).
func sameRoute(a, b netconf.Route) bool {
	return a.Table == b.Table && a.Family == b.Family && a.Dst == b.Dst && a.Local == b.Local
}

// userMetric is the metric the kernel gives a route added over netlink.
func userMetric(r netconf.Route) int {
	if r.Family == netconf.IPv6 {
		return 1024
	}
	return 0
}

// check is what the kernel refuses of a route to add: a device that does
// not exist or is down (IPv4 takes local routes on a down device, IPv6
// nothing), and a src that is not an address of the host.
func (k *Kernel) check(r netconf.Route) error {
	if r.Device != "" {
		l, err := k.get(r.Device)
		if err != nil {
			return err
		}
		if !l.Up && (!r.Local || r.Family == netconf.IPv6) {
			return syscall.ENETDOWN // "Nexthop device is not up"
		}
	}
	if r.Src.IsValid() && !(r.Local && r.Family == netconf.IPv4 && r.Src == r.Dst.Addr()) && !k.holds(r.Src) {
		return syscall.EINVAL // "Invalid prefsrc address" / "Invalid source address"
	}
	return nil
}

// holds says whether an address is one of the host's.
func (k *Kernel) holds(a netip.Addr) bool {
	for _, l := range k.links {
		if slices.ContainsFunc(l.addrs, func(p netip.Prefix) bool { return p.Addr() == a }) {
			return true
		}
	}
	return false
}

func (k *Kernel) AddRoute(r netconf.Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("AddRoute"); err != nil {
		return err
	}
	r = r.Normalize()
	if err := k.check(r); err != nil {
		return err
	}
	m := userMetric(r)
	if slices.ContainsFunc(k.routes, func(o route) bool { return sameRoute(o.Route, r) && o.metric == m }) {
		return syscall.EEXIST
	}
	k.insert(route{Route: r, metric: m})
	return nil
}

func (k *Kernel) ReplaceRoute(r netconf.Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("ReplaceRoute"); err != nil {
		return err
	}
	r = r.Normalize()
	if err := k.check(r); err != nil {
		return err
	}
	m := userMetric(r)
	if i := slices.IndexFunc(k.routes, func(o route) bool { return sameRoute(o.Route, r) && o.metric == m }); i >= 0 {
		// IPv4 refuses to put r in the first route's place while another
		// route to the destination is r already.
		if j := slices.Index(k.routes, route{Route: r, metric: m}); r.Family == netconf.IPv4 && j >= 0 && j != i {
			return syscall.EEXIST
		}
		k.routes[i].Route = r
		return nil
	}
	k.insert(route{Route: r, metric: m})
	return nil
}

func (k *Kernel) DeleteRoute(r netconf.Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("DeleteRoute"); err != nil {
		return err
	}
	r = r.Normalize()
	i := slices.IndexFunc(k.routes, func(o route) bool {
		return sameRoute(o.Route, r) &&
			(r.Device == "" || o.Device == r.Device) &&
			(!r.Gateway.IsValid() || o.Gateway == r.Gateway) &&
			(r.Family == netconf.IPv6 || !r.Src.IsValid() || o.Src == r.Src) &&
			(!r.Kernel || o.Kernel) && (!r.Local || r.Kernel || !o.Kernel)
	})
	if i < 0 {
		return syscall.ESRCH
	}
	k.routes = slices.Delete(k.routes, i, i+1)
	return nil
}

func (k *Kernel) Rules() ([]netconf.Rule, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.rules), nil
}

func (k *Kernel) AddRule(r netconf.Rule) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("AddRule"); err != nil {
		return err
	}
	r = r.Normalize()
	if r.Priority == 0 {
		// The kernel puts a rule without a priority just before the
		// first one after the local rule.
		r.Priority = 32766
		for _, o := range k.rules {
			if o.Family == r.Family && o.Priority > 0 && o.Priority <= r.Priority {
				r.Priority = o.Priority - 1
			}
		}
	}
	if slices.Contains(k.rules, r) {
		return syscall.EEXIST
	}
	k.rules = append(k.rules, r)
	return nil
}

func (k *Kernel) DeleteRule(r netconf.Rule) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("DeleteRule"); err != nil {
		return err
	}
	i := slices.IndexFunc(k.rules, func(o netconf.Rule) bool { return r.Matches(o) })
	if i < 0 {
		return syscall.ENOENT
	}
	k.rules = slices.Delete(k.rules, i, i+1)
	return nil
}

// sysctlKnown says whether a sysctl exists: preset, or a per-link one of a
// link that exists.
func (k *Kernel) sysctlKnown(path string) bool {
	if _, ok := k.sysctls[path]; ok {
		return true
	}
	for _, fam := range []string{"net/ipv4/conf/", "net/ipv6/conf/", "net/ipv4/neigh/", "net/ipv6/neigh/"} {
		if rest, ok := strings.CutPrefix(path, fam); ok {
			name, _, _ := strings.Cut(rest, "/")
			_, exists := k.links[name]
			return exists || name == "all" || name == "default"
		}
	}
	return false
}

func (k *Kernel) Sysctl(key string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := netconf.SysctlPath(key)
	if !k.sysctlKnown(p) {
		return "", syscall.ENOENT
	}
	if v, ok := k.sysctls[p]; ok {
		return v, nil
	}
	return linkDefault(p), nil
}

// linkDefault is the value a link's sysctl has until set: the kernel's
// defaults for the few that are not 0.
func linkDefault(path string) string {
	if rest, ok := strings.CutPrefix(path, "net/ipv6/conf/"); ok {
		if name, key, _ := strings.Cut(rest, "/"); name != "all" && (key == "accept_dad" || key == "accept_ra") {
			return "1"
		}
	}
	return "0"
}

func (k *Kernel) SetSysctl(key, value string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.write("SetSysctl"); err != nil {
		return err
	}
	p := netconf.SysctlPath(key)
	if !k.sysctlKnown(p) {
		return syscall.ENOENT
	}
	k.sysctls[p] = value
	return nil
}

// String renders the whole state with Render (lo left out).
func (k *Kernel) String() string {
	k.mu.Lock()
	var links []netconf.Link
	addrs := map[string][]netip.Prefix{}
	for _, l := range k.links {
		if l.Name != "lo" {
			links = append(links, l.Link)
			addrs[l.Name] = l.addrs
		}
	}
	routes := make([]netconf.Route, 0, len(k.routes))
	for _, r := range k.routes {
		routes = append(routes, r.Route)
	}
	out := Render(links, addrs, routes, k.rules, k.sysctls)
	k.mu.Unlock()
	return out
}

// Render shows a network state as text, one object a line, sorted:
//
//	link eth1 up 00:00:5e:00:01:2a
//	link eth1.100 up vlan eth1 100
//	link vrrp6.42 up macvlan eth1 00:00:5e:00:02:2a
//	addr eth1 192.0.2.10/24
//	route table 2 inet default via 192.0.2.1 dev eth1
//	rule inet 100: from 192.0.2.10 lookup 2
//	sysctl net/ipv4/ip_forward 1
//
// Dummies and VLANs show their kind instead of their made-up or inherited
// MAC; a macvlan shows its kind, parent and MAC (the NCC sets it); the
// kernel's default rules are left out, and so are the local routes of the
// kernel's making or form (every address has one; its src, if any, is the
// address itself): a local route shows when it has another src, as a VIP's
// with a source does.
func Render(links []netconf.Link, addrs map[string][]netip.Prefix, routes []netconf.Route, rules []netconf.Rule, sysctls map[string]string) string {
	var lines []string
	for _, l := range links {
		state := "down"
		if l.Up {
			state = "up"
		}
		desc := " " + l.MAC.String()
		switch l.Kind {
		case "dummy":
			desc = " dummy"
		case "vlan":
			desc = fmt.Sprintf(" vlan %s %d", l.Parent, l.VLANID)
		case "macvlan":
			desc = fmt.Sprintf(" macvlan %s %s", l.Parent, l.MAC)
		}
		lines = append(lines, fmt.Sprintf("link %s %s%s", l.Name, state, desc))
		for _, a := range addrs[l.Name] {
			lines = append(lines, fmt.Sprintf("addr %s %s", l.Name, a))
		}
	}
	for _, r := range routes {
		if r.Local && r.Table == netconf.LocalTable && (r.Kernel || !r.Src.IsValid() || r.Src == r.Dst.Addr()) {
			continue
		}
		lines = append(lines, "route "+r.String())
	}
	for _, r := range rules {
		if (r.Priority == 0 && r.Table == 255) || (r.Priority == 32766 && r.Table == 254) || (r.Priority == 32767 && r.Table == 253) {
			continue
		}
		lines = append(lines, "rule "+r.String())
	}
	for p, v := range sysctls {
		lines = append(lines, "sysctl "+netconf.SysctlPath(p)+" "+netconf.SysctlValue(v))
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// Snapshot reads what a network stack (real or fake) holds of the given
// links (and their VLANs and macvlans), routing tables (their routes and the rules that
// lead to them) and sysctls, and renders it with Render, so that a real
// kernel can be compared with the fake.
func Snapshot(k netconf.Kernel, links []string, tables []int, sysctls []string) (string, error) {
	all, err := k.Links()
	if err != nil {
		return "", err
	}
	var ls []netconf.Link
	addrs := map[string][]netip.Prefix{}
	for _, l := range all {
		if !slices.Contains(links, l.Name) && !((l.Kind == "vlan" || l.Kind == "macvlan") && slices.Contains(links, l.Parent)) {
			continue
		}
		ls = append(ls, l)
		if addrs[l.Name], err = k.Addrs(l.Name); err != nil {
			return "", err
		}
	}
	var routes []netconf.Route
	for _, t := range tables {
		rs, err := k.Routes(t)
		if err != nil {
			return "", err
		}
		routes = append(routes, rs...)
	}
	all2, err := k.Rules()
	if err != nil {
		return "", err
	}
	var rules []netconf.Rule
	for _, r := range all2 {
		if slices.Contains(tables, r.Table) {
			rules = append(rules, r)
		}
	}
	vals := map[string]string{}
	for _, key := range sysctls {
		v, err := k.Sysctl(key)
		if err == nil {
			vals[key] = v
		}
	}
	return Render(ls, addrs, routes, rules, vals), nil
}

// IPVSSysctls are the net.ipv4.vs sysctls a kernel with IPVS loaded has,
// at its defaults, with the forwarding switches off: what an engine's
// desired state sets, for a New that stands in for a fresh LB node.
func IPVSSysctls() map[string]string {
	return map[string]string{
		"net/ipv4/ip_forward": "0", "net/ipv6/conf/all/forwarding": "0",
		"net/ipv4/vs/conntrack": "0", "net/ipv4/vs/expire_nodest_conn": "0",
		"net/ipv4/vs/sync_threshold": "3\t50", "net/ipv4/vs/sync_refresh_period": "0",
		"net/ipv4/vs/sync_retries": "0", "net/ipv4/vs/sync_sock_size": "0", "net/ipv4/vs/sync_persist_mode": "0",
		"net/ipv4/vs/sloppy_tcp": "0", "net/ipv4/vs/sloppy_sctp": "0",
	}
}
