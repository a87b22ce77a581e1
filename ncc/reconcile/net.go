package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/seesawlb/seesaw/ncc/netconf"
)

// Kinds of network objects in Changes.
const (
	KindLink    = "link"
	KindAddress = "address"
	KindRoute   = "route"
	KindRule    = "rule"
	KindSysctl  = "sysctl"
)

// NetReconciler keeps the host's network configuration at a desired
// state: the LB interface (up or down, VRRP MAC or its own), the dummy
// interface, VLAN interfaces, the macvlan of the IPv6 VRRP MAC, the
// addresses on those links, the routes of the policy tables and the rules
// that lead to them, and sysctls.
//
// It owns every global address on the LB interface, the dummy interface,
// the VLAN interfaces of the LB interface and its IPv6 VRRP macvlan; every
// route and rule of the non-system tables the state names; nothing else.
// Of links it owns the ones it makes, known by kind, parent and name: the
// VLANs of the LB interface ("<lb>.<id>") and the macvlans on it named
// "vrrp6.<vrid>" (netconf.ParseVMAC6Name); other links it never changes
// but for the LB interface's state and MAC. Routes it is given for
// the system tables (local, main) it adds but never removes. Unlike the
// IPVS reconciler it reads the kernel on every run: the objects are few,
// and links going down take routes with them behind anyone's back.
type NetReconciler struct {
	mu      sync.Mutex
	k       netconf.Kernel
	logf    func(format string, args ...any)
	desired *netconf.State
	// origMAC is a link's MAC before the NCC gave it the VRRP MAC, for
	// links whose permanent MAC the kernel does not know (veth, some
	// virtual NICs).
	origMAC map[string]net.HardwareAddr
}

// NewNet returns a reconciler over k; logf as for NewIPVS.
func NewNet(k netconf.Kernel, logf func(format string, args ...any)) *NetReconciler {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &NetReconciler{k: k, logf: logf, origMAC: map[string]net.HardwareAddr{}}
}

// netOp is one planned write.
type netOp struct {
	change Change
	do     func(netconf.Kernel) error
}

// Apply makes the host hold desired and returns the writes it made (or
// would make, with dryRun). A write that failed is in the changes with its
// error; the others were done. desired is placed first (netconf.State.Placed:
// with UseVMAC the LB interface's IPv6 VIPs go on its IPv6 VRRP macvlan);
// the reconciler keeps the placed state for Audit and Desired.
func (r *NetReconciler) Apply(desired netconf.State, dryRun bool) ([]Change, error) {
	desired = desired.Placed()
	if err := desired.Validate(); err != nil {
		return nil, fmt.Errorf("reconcile: net: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !dryRun {
		r.desired = &desired
	}
	return r.apply(desired, dryRun)
}

// Audit applies the last applied state again, repairing what someone else
// changed; before the first Apply it does nothing.
func (r *NetReconciler) Audit() ([]Change, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.desired == nil {
		return nil, nil
	}
	changes, err := r.apply(*r.desired, false)
	for _, c := range changes {
		r.logf("net: audit: drift repaired: %s", c)
	}
	return changes, err
}

func (r *NetReconciler) apply(desired netconf.State, dryRun bool) ([]Change, error) {
	ops, failed, err := r.plan(desired)
	if err != nil {
		return nil, fmt.Errorf("reconcile: net: read the host's state: %w", err)
	}
	changes := failed
	again := false
	for _, o := range ops {
		c := o.change
		if !dryRun {
			c.Err = o.do(r.k)
			r.logf("net: %s", c)
			// Writes with side effects the plan may not foresee (a
			// link's state, an IPv4 primary going): look again.
			again = again || c.Kind == KindLink || c.Kind == KindAddress && c.Op == Delete
		}
		changes = append(changes, c)
	}
	if !again {
		return changes, nil
	}
	ops, failed, err = r.plan(desired)
	if err != nil {
		return changes, fmt.Errorf("reconcile: net: read the host's state: %w", err)
	}
	for _, f := range failed {
		if !slices.ContainsFunc(changes, func(c Change) bool { return c.String() == f.String() }) {
			changes = append(changes, f)
		}
	}
	for _, o := range ops {
		c := o.change
		c.Err = o.do(r.k)
		r.logf("net: %s", c)
		changes = append(changes, c)
	}
	return changes, nil
}

// plan lists the writes that take the host to desired. failed are changes
// that cannot even be tried (a missing LB interface, an unreadable sysctl).
func (r *NetReconciler) plan(d netconf.State) (ops []netOp, failed []Change, err error) {
	links, err := r.k.Links()
	if err != nil {
		return nil, nil, err
	}
	byName := map[string]netconf.Link{}
	for _, l := range links {
		byName[l.Name] = l
	}
	add := func(c Change, do func(netconf.Kernel) error) { ops = append(ops, netOp{change: c, do: do}) }

	// Links: the dummy and the VLANs exist and are up.
	ensureUp := func(name string, create func(netconf.Kernel) error, kind string) {
		l, ok := byName[name]
		if !ok {
			add(Change{Op: Add, Kind: KindLink, Object: name, Detail: kind}, create)
		}
		if !ok || !l.Up {
			add(Change{Op: Update, Kind: KindLink, Object: name, Detail: "up"}, func(k netconf.Kernel) error { return k.SetUp(name, true) })
		}
	}
	if d.LB.Dummy != "" {
		ensureUp(d.LB.Dummy, func(k netconf.Kernel) error { return k.AddDummy(d.LB.Dummy) }, "dummy")
	}
	wantVLAN := map[string]bool{}
	for _, v := range d.VLANs {
		wantVLAN[v.Name()] = true
		if _, ok := byName[v.Name()]; !ok {
			add(Change{Op: Add, Kind: KindLink, Object: v.Name(), Detail: fmt.Sprintf("vlan %d on %s", v.ID, v.Parent)},
				func(k netconf.Kernel) error { return k.AddVLAN(v.Parent, v.ID) })
		}
	}

	// The LB interface: its MAC (changed while down), then up or down.
	lbDown, lbExists := false, false
	if name := d.LB.Name; name != "" {
		lb, ok := byName[name]
		lbExists = ok
		if !ok {
			failed = append(failed, Change{Op: Update, Kind: KindLink, Object: name,
				Err: fmt.Errorf("the LB interface %s: %w", name, netconf.ErrNotExist)})
		} else {
			vmac := netconf.VRRPMAC(d.LB.VRID)
			if _, seen := r.origMAC[name]; !seen && !isVRRPMAC(lb.MAC) {
				r.origMAC[name] = slices.Clone(lb.MAC)
			}
			want := lb.MAC
			switch {
			case d.LB.UseVMAC:
				want = vmac
			case len(lb.PermMAC) == 6 && !bytes.Equal(lb.PermMAC, make([]byte, 6)):
				want = lb.PermMAC
			case r.origMAC[name] != nil:
				want = r.origMAC[name]
			}
			up := lb.Up
			goesDown := false
			if !bytes.Equal(lb.MAC, want) {
				if up {
					add(Change{Op: Update, Kind: KindLink, Object: name, Detail: "down, to change its MAC"},
						func(k netconf.Kernel) error { return k.SetUp(name, false) })
					up, goesDown = false, true
				}
				mac := slices.Clone(want)
				add(Change{Op: Update, Kind: KindLink, Object: name, Detail: fmt.Sprintf("MAC %s -> %s", lb.MAC, mac)},
					func(k netconf.Kernel) error { return k.SetMAC(name, mac) })
			}
			if up != d.LB.Up {
				goesDown = goesDown || !d.LB.Up
				add(Change{Op: Update, Kind: KindLink, Object: name, Detail: upDown(d.LB.Up)},
					func(k netconf.Kernel) error { return k.SetUp(name, d.LB.Up) })
			}
			// A link that goes down loses its routes and (unless told
			// to keep them) its IPv6 addresses: plan as if they were
			// gone already, and put them back.
			lbDown = goesDown
		}
	}

	// The macvlan of the IPv6 VRRP MAC. v6 is its name once it is sure to
	// be the NCC's, and only then do the IPv6 VIPs go on it.
	var v6 string
	v6Down := false
	if d.NeedsVMAC6() && lbExists {
		name, parent, mac := d.LB.VMAC6Link(), d.LB.Name, netconf.VRRP6MAC(d.LB.VRID)
		l, ok := byName[name]
		if ok && !ownVMAC6(l, parent) {
			failed = append(failed, Change{Op: Add, Kind: KindLink, Object: name,
				Err: fmt.Errorf("%s exists and is not a macvlan on %s, so not the NCC's: left alone, without the IPv6 VIPs", name, parent)})
		} else {
			v6 = name
			if !ok {
				add(Change{Op: Add, Kind: KindLink, Object: name, Detail: fmt.Sprintf("macvlan on %s, MAC %s", parent, mac)},
					func(k netconf.Kernel) error { return k.AddMACVLAN(parent, name, mac) })
			} else if !bytes.Equal(l.MAC, mac) {
				// A macvlan's MAC changes while it is up.
				add(Change{Op: Update, Kind: KindLink, Object: name, Detail: fmt.Sprintf("MAC %s -> %s", l.MAC, mac)},
					func(k netconf.Kernel) error { return k.SetMAC(name, mac) })
			}
			// Its sysctls before its first up; the state's own
			// sysctls, if they name these, win (and come last).
			keep := "" // keep_addr_on_down when it goes down below
			for _, sc := range vmac6Sysctls(name) {
				cur := ""
				if ok {
					var err error
					if cur, err = r.k.Sysctl(sc.key); err != nil && !isNotExist(err) {
						failed = append(failed, Change{Op: Update, Kind: KindSysctl, Object: sc.key, Err: err})
						continue
					}
				}
				set := !hasSysctl(d.Sysctls, sc.key) && !(ok && netconf.SysctlValue(cur) == sc.val)
				if strings.HasSuffix(sc.key, "/keep_addr_on_down") {
					keep = cur
					if set {
						keep = sc.val
					}
				}
				if !set {
					continue
				}
				key, val := sc.key, sc.val
				add(Change{Op: Update, Kind: KindSysctl, Object: key, Detail: strings.TrimPrefix(cur+" -> "+val, " ")},
					func(k netconf.Kernel) error { return k.SetSysctl(key, val) })
			}
			// Up and down with the LB interface's desired state (a
			// macvlan does not follow its parent's by itself): the
			// backup holds the VIPs on it, down, and becoming the
			// master is one write.
			if up := ok && l.Up; up != d.LB.Up {
				want := d.LB.Up
				add(Change{Op: Update, Kind: KindLink, Object: name, Detail: upDown(want)},
					func(k netconf.Kernel) error { return k.SetUp(name, want) })
				v6Down = up && netconf.SysctlValue(keep) != "1"
			}
		}
	}

	// VLANs are up while their parent is (the kernel takes them down and
	// up with it): a new one, or one whose parent stays up, is brought up.
	for _, v := range d.VLANs {
		parentUp := byName[v.Parent].Up
		if v.Parent == d.LB.Name {
			parentUp = d.LB.Up
		}
		if l, ok := byName[v.Name()]; parentUp && (!ok || !l.Up || lbDown && v.Parent == d.LB.Name) {
			name := v.Name()
			add(Change{Op: Update, Kind: KindLink, Object: name, Detail: "up"}, func(k netconf.Kernel) error { return k.SetUp(name, true) })
		}
	}

	// Addresses on the links the NCC owns. The macvlan's come first: the
	// IPv6 VIPs moving onto it are there before they leave the LB
	// interface (a link holds an address once, the host may hold it twice).
	want := map[string][]netip.Prefix{}
	owned := []string{}
	for _, n := range []string{v6, d.LB.Name, d.LB.Dummy} {
		if n != "" && !slices.Contains(owned, n) {
			owned = append(owned, n)
		}
	}
	for _, v := range d.VLANs {
		owned = append(owned, v.Name())
		want[v.Name()] = append(want[v.Name()], v.Addrs...)
	}
	for _, v := range d.VIPs {
		want[v.Link] = append(want[v.Link], v.Addr)
	}
	for _, name := range owned {
		var have []netip.Prefix
		if _, ok := byName[name]; ok {
			if have, err = r.k.Addrs(name); err != nil {
				return nil, nil, err
			}
		}
		if lbDown && (name == d.LB.Name || byName[name].Kind == "vlan" && byName[name].Parent == d.LB.Name) || v6Down && name == v6 {
			have = slices.DeleteFunc(have, func(p netip.Prefix) bool { return p.Addr().Is6() })
		}
		w := slices.Clone(want[name])
		slices.SortFunc(w, netconf.ComparePrefixes)
		w = slices.Compact(w)
		var adds, early, late []netip.Prefix
		for _, p := range w {
			if !slices.Contains(have, p) {
				adds = append(adds, p)
			}
		}
		for _, p := range have {
			if slices.Contains(w, p) {
				continue
			}
			// The same address with another length must go first:
			// a link holds an address once.
			if slices.ContainsFunc(w, func(q netip.Prefix) bool { return q.Addr() == p.Addr() }) {
				early = append(early, p)
			} else {
				late = append(late, p)
			}
		}
		slices.SortFunc(late, netconf.ComparePrefixes)
		del := func(p netip.Prefix) {
			add(Change{Op: Delete, Kind: KindAddress, Object: name + " " + p.String()},
				func(k netconf.Kernel) error {
					// Gone already: an IPv4 primary took its
					// secondaries with it.
					if err := k.DeleteAddr(name, p); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
						return err
					}
					return nil
				})
		}
		for _, p := range early {
			del(p)
		}
		for _, p := range adds {
			add(Change{Op: Add, Kind: KindAddress, Object: name + " " + p.String()},
				func(k netconf.Kernel) error {
					// Kept over the link going down after all
					// (keep_addr_on_down): it is there, which is
					// what was wanted.
					if err := k.AddAddr(name, p); err != nil && !errors.Is(err, syscall.EEXIST) {
						return err
					}
					return nil
				})
		}
		for _, p := range late {
			del(p)
		}
	}

	// Routes: the owned tables wholly, the system tables only added to.
	tables := d.OwnedTables()
	wantRoutes := map[int][]netconf.Route{}
	for _, rt := range d.Routes {
		wantRoutes[rt.Table] = append(wantRoutes[rt.Table], rt.Normalize())
		if netconf.SystemTable(rt.Table) && !slices.Contains(tables, rt.Table) {
			tables = append(tables, rt.Table)
		}
	}
	sort.Ints(tables)
	for _, t := range tables {
		have, err := r.k.Routes(t)
		if err != nil {
			return nil, nil, err
		}
		if lbDown {
			have = slices.DeleteFunc(have, func(h netconf.Route) bool {
				l := byName[h.Device]
				return !h.Local && (h.Device == d.LB.Name || l.Kind == "vlan" && l.Parent == d.LB.Name)
			})
		}
		matched := make([]bool, len(have))
		for _, w := range wantRoutes[t] {
			if i := slices.Index(have, w); i >= 0 {
				matched[i] = true
				continue
			}
			if i := slices.IndexFunc(have, func(h netconf.Route) bool { return sameRouteKey(h, w) }); i >= 0 {
				matched[i] = true
				old := have[i]
				add(Change{Op: Delete, Kind: KindRoute, Object: old.String(), Detail: "replaced"},
					func(k netconf.Kernel) error { return k.DeleteRoute(old) })
			}
			add(Change{Op: Add, Kind: KindRoute, Object: w.String()}, func(k netconf.Kernel) error { return k.AddRoute(w) })
		}
		if netconf.SystemTable(t) {
			continue
		}
		for i, h := range have {
			if !matched[i] {
				add(Change{Op: Delete, Kind: KindRoute, Object: h.String()}, func(k netconf.Kernel) error { return k.DeleteRoute(h) })
			}
		}
	}

	// Rules: the desired ones, and none other leading to an owned table.
	haveRules, err := r.k.Rules()
	if err != nil {
		return nil, nil, err
	}
	ruleUsed := make([]bool, len(haveRules))
	for _, w := range d.Rules {
		w = w.Normalize()
		i := slices.IndexFunc(haveRules, func(h netconf.Rule) bool { return w.Matches(h) })
		if i >= 0 {
			ruleUsed[i] = true
			continue
		}
		add(Change{Op: Add, Kind: KindRule, Object: w.String()}, func(k netconf.Kernel) error { return k.AddRule(w) })
	}
	for i, h := range haveRules {
		if !ruleUsed[i] && slices.Contains(d.OwnedTables(), h.Table) {
			add(Change{Op: Delete, Kind: KindRule, Object: h.String()}, func(k netconf.Kernel) error { return k.DeleteRule(h) })
		}
	}

	// VLANs and IPv6 VRRP macvlans of the LB interface that are no longer
	// wanted go last, with their addresses: the VIPs are in their new
	// places by now.
	keepV6 := ""
	if d.NeedsVMAC6() {
		keepV6 = d.LB.VMAC6Link()
	}
	for _, l := range links {
		name := l.Name
		switch {
		case l.Kind == "vlan" && l.Parent == d.LB.Name && d.LB.Name != "" && !wantVLAN[l.Name]:
			add(Change{Op: Delete, Kind: KindLink, Object: name, Detail: fmt.Sprintf("vlan %d on %s", l.VLANID, l.Parent)},
				func(k netconf.Kernel) error { return k.DeleteLink(name) })
		case ownVMAC6(l, d.LB.Name) && l.Name != keepV6:
			add(Change{Op: Delete, Kind: KindLink, Object: name, Detail: fmt.Sprintf("macvlan on %s", l.Parent)},
				func(k netconf.Kernel) error { return k.DeleteLink(name) })
		}
	}

	// Sysctls, after the links they may name exist.
	keys := make([]string, 0, len(d.Sysctls))
	for key := range d.Sysctls {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		val := d.Sysctls[key]
		cur, err := r.k.Sysctl(key)
		missing := err != nil && isNotExist(err)
		if err != nil && !missing {
			failed = append(failed, Change{Op: Update, Kind: KindSysctl, Object: key, Err: err})
			continue
		}
		if !missing && netconf.SysctlValue(cur) == netconf.SysctlValue(val) {
			continue
		}
		detail := cur + " -> " + val
		if missing {
			detail = "-> " + val // perhaps on a link made above
		}
		add(Change{Op: Update, Kind: KindSysctl, Object: key, Detail: detail},
			func(k netconf.Kernel) error { return k.SetSysctl(key, val) })
	}
	return ops, failed, nil
}

// sameRouteKey is the kernel's identity of a route: one per table, family,
// type and destination.
func sameRouteKey(a, b netconf.Route) bool {
	return a.Table == b.Table && a.Family == b.Family && a.Dst == b.Dst && a.Local == b.Local
}

// ownVMAC6 says whether l is an IPv6 VRRP macvlan the NCC made on the LB
// interface lb.
func ownVMAC6(l netconf.Link, lb string) bool {
	_, named := netconf.ParseVMAC6Name(l.Name)
	return named && lb != "" && l.Kind == "macvlan" && l.Parent == lb
}

type linkSysctl struct{ key, val string }

// vmac6Sysctls are what the IPv6 VIPs on the macvlan name need of it, set
// while it is new and down (the VIPs themselves are added without DAD):
//
//   - accept_dad 0: its link-local address comes from the shared VRRP MAC,
//     the same on both nodes; it must neither wait for nor fail duplicate
//     address detection in a failover (with accept_dad 2 inherited from
//     the host's defaults a failure would disable IPv6 on it, VIPs and all).
//   - accept_ra 0: no SLAAC addresses from the shared MAC (which the NCC
//     would take for stray addresses on a link it owns), no default route
//     through it.
//   - keep_addr_on_down 1: the VIPs stay on it while it is down on the
//     backup; going down and up is one write each.
//   - IPv4 arp_ignore 1: it has no IPv4 address, but broadcast ARP requests
//     reach it too; without this it would answer for the LB interface's
//     IPv4 VIPs with the IPv6 VRRP MAC. The IPv4 side is otherwise as
//     before: the IPv4 VIPs stay on the LB interface with its MAC.
func vmac6Sysctls(link string) []linkSysctl {
	return []linkSysctl{
		{"net/ipv6/conf/" + link + "/accept_dad", "0"},
		{"net/ipv6/conf/" + link + "/accept_ra", "0"},
		{"net/ipv6/conf/" + link + "/keep_addr_on_down", "1"},
		{"net/ipv4/conf/" + link + "/arp_ignore", "1"},
	}
}

// hasSysctl says whether sysctls names key, in either spelling.
func hasSysctl(sysctls map[string]string, key string) bool {
	for k := range sysctls {
		if netconf.SysctlPath(k) == netconf.SysctlPath(key) {
			return true
		}
	}
	return false
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

func isVRRPMAC(m net.HardwareAddr) bool {
	return len(m) == 6 && m[0] == 0 && m[1] == 0 && m[2] == 0x5e && m[3] == 0 && (m[4] == 1 || m[4] == 2)
}

func isNotExist(err error) bool {
	return errors.Is(err, netconf.ErrNotExist) || errors.Is(err, fs.ErrNotExist)
}

// Desired is the last applied state, if any, placed (netconf.State.Placed):
// a VIP's Link is where it is, the IPv6 VRRP macvlan for the LB
// interface's IPv6 VIPs under UseVMAC, and so the link to announce it on.
func (r *NetReconciler) Desired() (netconf.State, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.desired == nil {
		return netconf.State{}, false
	}
	return *r.desired, true
}

// Known reads what the host holds of what the last applied state owns:
// the LB interface's state, the addresses on the owned links (on the LB
// interface, its IPv6 VRRP macvlan and the dummy as VIPs, on VLANs as VLAN
// addresses), the routes
// and rules of the owned tables, and the desired sysctls' values. Before
// the first Apply it knows nothing.
func (r *NetReconciler) Known() (netconf.State, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.desired == nil {
		return netconf.State{}, nil
	}
	d := *r.desired
	links, err := r.k.Links()
	if err != nil {
		return netconf.State{}, err
	}
	st := netconf.State{LB: d.LB}
	for _, l := range links {
		switch {
		case l.Name == d.LB.Name && l.Name != "":
			st.LB.Up, st.LB.UseVMAC = l.Up, bytes.Equal(l.MAC, netconf.VRRPMAC(d.LB.VRID))
			fallthrough
		case l.Name == d.LB.Dummy && l.Name != "",
			l.Name == d.LB.VMAC6Link() && ownVMAC6(l, d.LB.Name):
			as, err := r.k.Addrs(l.Name)
			if err != nil {
				return netconf.State{}, err
			}
			for _, a := range as {
				st.VIPs = append(st.VIPs, netconf.VIP{Addr: a, Link: l.Name})
			}
		case l.Kind == "vlan" && l.Parent == d.LB.Name && l.Parent != "":
			as, err := r.k.Addrs(l.Name)
			if err != nil {
				return netconf.State{}, err
			}
			st.VLANs = append(st.VLANs, netconf.VLAN{Parent: l.Parent, ID: l.VLANID, Addrs: as})
		}
	}
	tables := d.OwnedTables()
	for _, t := range tables {
		rs, err := r.k.Routes(t)
		if err != nil {
			return netconf.State{}, err
		}
		st.Routes = append(st.Routes, rs...)
	}
	rules, err := r.k.Rules()
	if err != nil {
		return netconf.State{}, err
	}
	for _, ru := range rules {
		if slices.Contains(tables, ru.Table) {
			st.Rules = append(st.Rules, ru)
		}
	}
	for key := range d.Sysctls {
		if v, err := r.k.Sysctl(key); err == nil {
			if st.Sysctls == nil {
				st.Sysctls = map[string]string{}
			}
			st.Sysctls[key] = netconf.SysctlValue(v)
		}
	}
	return st, nil
}
