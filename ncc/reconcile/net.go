package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

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
//
// A VIP with a Source has its route in the local table rewritten: the
// kernel's (src the VIP for IPv4, none for IPv6) gives way to
// netconf.VIP.LocalRoute, so that connections the host opens to the VIP
// come from the Source (Seesaw v2 does the same for its health checks). In
// the local table the reconciler owns those kernel routes, and the local
// routes to single addresses on the links whose addresses it owns that are
// not the kernel's (proto kernel): the kernel makes none of those, the
// reconciler makes them. One whose address no longer has a source goes back
// to the kernel's form, one whose address is gone from those links is
// deleted: the kernel leaves a local route it did not make when the
// address goes, and the host would go on taking the address for its own.
// Every other local route, of the VIPs without a source and of every
// other address, stays as the kernel made it.
//
// IPv4 replaces the kernel's route in place, at once (a lookup finds the
// first of the routes to an address, and a replacement takes its place).
// IPv6 cannot: the kernel's own has metric 0, and a route added over
// netlink asking for 0 gets 1024; so the VIP's route goes in beside the
// kernel's, which is then deleted. IPv6 takes no route through a link that is down, and drops
// them all when the link goes down: an IPv6 VIP on a link that is down
// has no local route at all (nor its source) until the link comes up.
// The kernel puts its own local routes back when an address is added and
// when its link comes up, IPv6 a moment later from a work queue: after
// such writes Apply waits for them (up to settle) and looks again.
type NetReconciler struct {
	mu      sync.Mutex
	k       netconf.Kernel
	logf    func(format string, args ...any)
	desired *netconf.State
	// held is the state the host held after the last run that left it so
	// without an error; nil when that is not known.
	held *netconf.State
	// origMAC is a link's MAC before the NCC gave it the VRRP MAC, for
	// links whose permanent MAC the kernel does not know (veth, some
	// virtual NICs).
	origMAC map[string]net.HardwareAddr
	// settle bounds the wait for the kernel's IPv6 local routes after
	// writes that make it add them; poll is how often it looks.
	settle, poll time.Duration
	// onTakeover, when set, is called by a takeover's fast path (see
	// takeover) once the LB interface is up, before the host's state is
	// read; with the reconciler's lock held.
	onTakeover func(desired netconf.State)
}

// OnTakeover sets what a takeover's fast path calls once the LB interface
// is up (the NCC announces the VIPs from there): it gets the desired
// state, placed, and must not call back into the reconciler.
func (r *NetReconciler) OnTakeover(f func(desired netconf.State)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onTakeover = f
}

// NewNet returns a reconciler over k; logf as for NewIPVS.
func NewNet(k netconf.Kernel, logf func(format string, args ...any)) *NetReconciler {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &NetReconciler{k: k, logf: logf, origMAC: map[string]net.HardwareAddr{}, settle: 2 * time.Second, poll: 2 * time.Millisecond}
}

// OriginalMACs are the MACs the reconciler found on links before it gave
// them the VRRP MAC, for those whose permanent MAC the kernel does not
// report: what it puts back when the VRRP MAC goes. A caller keeps them
// across restarts (RememberMACs).
func (r *NetReconciler) OriginalMACs() map[string]net.HardwareAddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]net.HardwareAddr, len(r.origMAC))
	for name, mac := range r.origMAC {
		out[name] = slices.Clone(mac)
	}
	return out
}

// RememberMACs tells a new reconciler the MACs an earlier one found
// (OriginalMACs): once a link carries the VRRP MAC its own can no longer be
// read from it. A MAC this reconciler has seen itself is kept.
func (r *NetReconciler) RememberMACs(macs map[string]net.HardwareAddr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, mac := range macs {
		if _, seen := r.origMAC[name]; !seen && len(mac) == 6 && !isVRRPMAC(mac) {
			r.origMAC[name] = slices.Clone(mac)
		}
	}
}

// netOp is one planned write.
type netOp struct {
	change Change
	do     func(netconf.Kernel) error
	local  bool // of the local routes of VIPs with a source
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
	// As the IPVS and nftables reconcilers do, a run trusts that the host
	// still holds a state the last run left it holding without an error:
	// applying it again reads nothing and writes nothing (reading every
	// link, address, route and rule back cost more than the rest of an
	// apply on a large node). Drift is the audit's to find and repair.
	if r.held != nil && reflect.DeepEqual(*r.held, desired) {
		return nil, nil
	}
	var pre []Change
	if !dryRun {
		pre = r.takeover(desired)
	}
	changes, err := r.apply(desired, dryRun, pre)
	r.noteHeld(desired, dryRun, changes, err)
	return changes, err
}

// takeover is the fast path of a backup becoming the master. Its LB
// interface is down with every VIP on it (IPv6 ones too: keep_addr_on_down)
// and the state is otherwise the one held: bringing the link up is what
// makes the VIPs live, and it need not wait for the host's state to be
// read and planned (tens of milliseconds on a small virtual machine, all
// of it client-visible outage). It brings up the LB interface and the IPv6
// VRRP macvlan, calls onTakeover, and returns the writes for apply to
// count as its own; the full plan then runs as always. Only when the held
// state is known (the last run left the host so, without an error) and
// the LB interface is to change in nothing but coming up; a held state
// the host no longer has is found by the plan that follows, as any drift.
func (r *NetReconciler) takeover(desired netconf.State) []Change {
	if r.held == nil || desired.LB.Name == "" || desired.LB.Shared || !desired.LB.Up || r.held.LB.Up {
		return nil
	}
	held := r.held.LB
	held.Up = true
	if held != desired.LB || desired.NeedsVMAC6() != r.held.NeedsVMAC6() {
		return nil
	}
	names := []string{desired.LB.Name}
	if desired.NeedsVMAC6() {
		names = append(names, desired.LB.VMAC6Link())
	}
	var pre []Change
	for _, name := range names {
		c := Change{Op: Update, Kind: KindLink, Object: name, Detail: "up"}
		c.Err = r.k.SetUp(name, true)
		r.logf("net: takeover: %s", c)
		if c.Err != nil {
			// The plan that follows finds the link down and tries
			// again; its outcome is the one to report.
			return pre
		}
		pre = append(pre, c)
	}
	if r.onTakeover != nil {
		r.onTakeover(desired)
	}
	return pre
}

// noteHeld records what the host holds after a run: desired, when the run
// wrote it all (or found it all in place); unknown otherwise.
func (r *NetReconciler) noteHeld(desired netconf.State, dryRun bool, changes []Change, err error) {
	if dryRun {
		return
	}
	r.held = nil
	if err == nil && !slices.ContainsFunc(changes, func(c Change) bool { return c.Err != nil }) {
		r.held = &desired
	}
}

// Audit applies the last applied state again, repairing what someone else
// changed; before the first Apply it does nothing.
func (r *NetReconciler) Audit() ([]Change, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.desired == nil {
		return nil, nil
	}
	changes, err := r.apply(*r.desired, false, nil)
	r.noteHeld(*r.desired, false, changes, err)
	for _, c := range changes {
		r.logf("net: audit: drift repaired: %s", c)
	}
	return changes, err
}

// apply plans and writes; pre are writes already made for this run (the
// takeover's), which count as the first pass's.
func (r *NetReconciler) apply(desired netconf.State, dryRun bool, pre []Change) ([]Change, error) {
	ops, failed, err := r.plan(desired)
	if err != nil {
		return pre, fmt.Errorf("reconcile: net: read the host's state: %w", err)
	}
	linked := slices.ContainsFunc(pre, func(c Change) bool { return c.Kind == KindLink })
	if !dryRun && (linked || slices.ContainsFunc(ops, func(o netOp) bool { return o.change.Kind == KindLink })) {
		// Links going down and up change the local routes behind the
		// plan's back (IPv4 puts its own back as a link comes up, IPv6
		// takes them all with a link that goes down): they are planned
		// again, and written, once the links are as wanted.
		ops = slices.DeleteFunc(ops, func(o netOp) bool { return o.local })
	}
	changes := append(slices.Clip(pre), failed...)
	again := linked
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
	if !dryRun {
		if pending := localPending(desired, changes); len(pending) > 0 {
			if err := r.awaitLocal(pending); err != nil {
				return changes, fmt.Errorf("reconcile: net: read the host's state: %w", err)
			}
			again = true
		}
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
	if name := d.LB.Name; name != "" && !d.LB.Shared {
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
	v6Down := false     // the macvlan goes down and its IPv6 addresses with it
	v6GoesDown := false // the macvlan goes down (its routes go with it)
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
				v6GoesDown = up
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
	lbOwned := d.LB.Name
	if d.LB.Shared {
		lbOwned = "" // the node's NIC: its addresses are not the NCC's
	}
	for _, n := range []string{v6, lbOwned, d.LB.Dummy} {
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

	// Floating addresses, on links the NCC owns nothing else of: each is
	// there while held, gone otherwise; the link's other addresses are
	// not the NCC's.
	for _, f := range d.Floating {
		if _, ok := byName[f.Link]; !ok {
			if f.Held {
				failed = append(failed, Change{Op: Add, Kind: KindAddress, Object: f.Link + " " + f.Addr.String(),
					Err: fmt.Errorf("link %s: %w", f.Link, netconf.ErrNotExist)})
			}
			continue
		}
		have, err := r.k.Addrs(f.Link)
		if err != nil {
			return nil, nil, err
		}
		present := slices.Contains(have, f.Addr)
		switch {
		case f.Held && !present:
			add(Change{Op: Add, Kind: KindAddress, Object: f.Link + " " + f.Addr.String(), Detail: "floating"},
				func(k netconf.Kernel) error {
					if err := k.AddAddr(f.Link, f.Addr); err != nil && !errors.Is(err, syscall.EEXIST) {
						return err
					}
					return nil
				})
		case !f.Held && present:
			add(Change{Op: Delete, Kind: KindAddress, Object: f.Link + " " + f.Addr.String(), Detail: "floating"},
				func(k netconf.Kernel) error {
					if err := k.DeleteAddr(f.Link, f.Addr); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
						return err
					}
					return nil
				})
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
					func(k netconf.Kernel) error { return deleteRoute(k, old) })
			}
			add(Change{Op: Add, Kind: KindRoute, Object: w.String()}, func(k netconf.Kernel) error { return k.AddRoute(w) })
		}
		if netconf.SystemTable(t) {
			continue
		}
		for i, h := range have {
			if !matched[i] {
				add(Change{Op: Delete, Kind: KindRoute, Object: h.String()}, func(k netconf.Kernel) error { return deleteRoute(k, h) })
			}
		}
	}

	// The local routes of the VIPs with a source, and the NCC's others.
	goingDown := func(link string) bool {
		l := byName[link]
		return lbDown && (link == d.LB.Name || l.Kind == "vlan" && l.Parent == d.LB.Name) || v6GoesDown && link == v6
	}
	addLocal := func(c Change, do func(netconf.Kernel) error) {
		ops = append(ops, netOp{change: c, do: do, local: true})
	}
	lf, err := r.planLocal(d, byName, want, owned, goingDown, addLocal)
	if err != nil {
		return nil, nil, err
	}
	failed = append(failed, lf...)

	// Rules: the desired ones, and none other leading to an owned table.
	haveRules, err := r.k.Rules()
	if err != nil {
		return nil, nil, err
	}
	ruleUsed := make([]bool, len(haveRules))
	// The kernel's rules by what a desired one matches: its normalized
	// form, and the same with no priority (a desired rule without one
	// matches any priority).
	byRule := make(map[netconf.Rule][]int, 2*len(haveRules))
	for i, h := range haveRules {
		h = h.Normalize()
		byRule[h] = append(byRule[h], i)
		if h.Priority != 0 {
			h.Priority = 0
			byRule[h] = append(byRule[h], i)
		}
	}
	for _, w := range d.Rules {
		w = w.Normalize()
		i := -1
		if is := byRule[w]; len(is) > 0 {
			i = is[0] // the first, as IndexFunc found it
		}
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

// deleteRoute deletes a route that the plan saw. The kernel may have gone
// first: deleting a link's last IPv4 address, earlier in the same plan,
// takes every IPv4 route through the link with it, in every table. A
// route that is no longer there is deleted.
func deleteRoute(k netconf.Kernel, r netconf.Route) error {
	if err := k.DeleteRoute(r); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// planLocal plans the local routes of the VIPs with a source, and of the
// other addresses the NCC gave one (see NetReconciler), after the
// addresses: want is what the owned links hold once they are placed, and
// goingDown says which links this plan takes down.
func (r *NetReconciler) planLocal(d netconf.State, byName map[string]netconf.Link, want map[string][]netip.Prefix, owned []string,
	goingDown func(string) bool, add func(Change, func(netconf.Kernel) error)) (failed []Change, err error) {
	all, err := r.k.Routes(netconf.LocalTable)
	if err != nil {
		return nil, err
	}
	// What will be there when the routes are written: IPv6 routes through
	// a link that goes down go with it.
	all = slices.DeleteFunc(all, func(h netconf.Route) bool { return h.Family == netconf.IPv6 && goingDown(h.Device) })
	isOwned := func(link string) bool { return slices.Contains(owned, link) }
	mine := func(h netconf.Route) bool { return h.Local && h.Dst.IsSingleIP() && isOwned(h.Device) }

	// Where each address of the owned links is, and the sources wanted.
	heldOn := map[netip.Addr]string{}
	for _, link := range owned {
		for _, p := range want[link] {
			heldOn[p.Addr()] = link
		}
	}
	sources := map[netip.Addr]netconf.VIP{}
	var hostAddrs map[netip.Addr]bool
	for _, v := range d.VIPs {
		if !v.Source.IsValid() || !isOwned(v.Link) {
			continue
		}
		if hostAddrs == nil {
			if hostAddrs, err = r.hostAddrs(byName, want); err != nil {
				return nil, err
			}
		}
		if !hostAddrs[v.Source] {
			failed = append(failed, Change{Op: Add, Kind: KindRoute, Object: v.LocalRoute().String(),
				Err: fmt.Errorf("source %s is not an address of this host: the VIP keeps the kernel's route", v.Source)})
			continue
		}
		sources[v.Addr.Addr()] = v
	}

	var dsts []netip.Addr
	for a := range sources {
		dsts = append(dsts, a)
	}
	for _, h := range all {
		if mine(h) && !h.Kernel && !slices.Contains(dsts, h.Dst.Addr()) {
			dsts = append(dsts, h.Dst.Addr())
		}
	}
	slices.SortFunc(dsts, netip.Addr.Compare)

	for _, a := range dsts {
		var hs, ours []netconf.Route // the NCC's to a, in the kernel's order
		for _, h := range all {
			if h.Dst.Addr() == a && mine(h) {
				hs = append(hs, h)
				if !h.Kernel {
					ours = append(ours, h)
				}
			}
		}
		fam := netconf.FamilyOf(a)
		usable := func(link string) bool {
			l, ok := byName[link]
			return ok && (fam == netconf.IPv4 || l.Up && !goingDown(link))
		}
		// The route a replacement takes the place of: for IPv4 the
		// first to a, for IPv6 the first not of the kernel's making.
		var target netconf.Route
		if i := slices.IndexFunc(all, func(h netconf.Route) bool { return h.Dst.Addr() == a && (fam == netconf.IPv4 || !h.Kernel) }); i >= 0 {
			target = all[i]
		}
		// put makes w a's route, in place of target; the others of hs
		// go after it, and only if it was done.
		put := func(w netconf.Route, others []netconf.Route) {
			if target != (netconf.Route{}) && !mine(target) {
				failed = append(failed, Change{Op: Add, Kind: KindRoute, Object: w.String(),
					Err: fmt.Errorf("the first local route to %s is %s, not the NCC's: left alone", a, target)})
				return
			}
			done := false
			c := Change{Op: Add, Kind: KindRoute, Object: w.String()}
			if target != (netconf.Route{}) {
				c.Op, c.Detail = Update, "in place of "+target.String()
			}
			add(c, func(k netconf.Kernel) error {
				err := k.ReplaceRoute(w)
				done = err == nil
				return err
			})
			for _, h := range others {
				if h != target && h != w {
					r.deleteLocal(add, h, &done)
				}
			}
		}
		// keep: when w is among rs already, the others of rs go.
		keep := func(w netconf.Route, rs []netconf.Route) bool {
			if !slices.Contains(rs, w) {
				return false
			}
			for _, h := range rs {
				if h != w {
					r.deleteLocal(add, h, nil)
				}
			}
			return true
		}
		if v, ok := sources[a]; ok {
			if !usable(v.Link) {
				// IPv6 on a link that is down has no local route; a
				// link yet to be made gets one when it is.
				for _, h := range ours {
					if h.Device != v.Link {
						r.deleteLocal(add, h, nil)
					}
				}
				continue
			}
			if w := v.LocalRoute(); !keep(w, hs) {
				put(w, hs)
			}
			continue
		}
		link, held := heldOn[a]
		switch {
		case len(ours) == 0:
		case !held || !usable(link) || slices.ContainsFunc(hs, func(h netconf.Route) bool { return h.Kernel && h.Device == link }):
			// Gone from the owned links, or without a source now and
			// the kernel's route back: the NCC's go.
			for _, h := range ours {
				r.deleteLocal(add, h, nil)
			}
		default:
			// The kernel's form again, for an address that had a source.
			if back := kernelForm(a, link); !keep(back, ours) {
				put(back, ours)
			}
		}
	}
	return failed, nil
}

// kernelForm is the local route of an address as the kernel makes it, or
// as close as it can be added: IPv4's is the kernel's own (src the address,
// proto kernel), which the kernel deletes with the address; IPv6's has no
// src, but is the NCC's (the kernel's own has metric 0, which no route
// added over netlink can have), deleted by the NCC when the address goes.
func kernelForm(a netip.Addr, link string) netconf.Route {
	r := netconf.Route{Family: netconf.FamilyOf(a), Table: netconf.LocalTable, Dst: netip.PrefixFrom(a, a.BitLen()), Device: link, Local: true}
	if r.Family == netconf.IPv4 {
		r.Src, r.Kernel = a, true
	}
	return r
}

// deleteLocal plans the deletion of a local route; after is, when not
// nil, the replacement it must follow, done or not.
func (r *NetReconciler) deleteLocal(add func(Change, func(netconf.Kernel) error), h netconf.Route, after *bool) {
	add(Change{Op: Delete, Kind: KindRoute, Object: h.String()}, func(k netconf.Kernel) error {
		if after != nil && !*after {
			return errors.New("not done: the route to put in its place was not")
		}
		// Gone already (an address that went took it): as wanted.
		if err := k.DeleteRoute(h); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		return nil
	})
}

// hostAddrs are the host's addresses, as they are and as the plan makes
// them on the owned links: the kernel takes no other as a route's src.
func (r *NetReconciler) hostAddrs(byName map[string]netconf.Link, want map[string][]netip.Prefix) (map[netip.Addr]bool, error) {
	out := map[netip.Addr]bool{}
	for name := range byName {
		as, err := r.k.Addrs(name)
		if isNotExist(err) {
			continue // gone since it was listed
		}
		if err != nil {
			return nil, err
		}
		for _, p := range as {
			out[p.Addr()] = true
		}
	}
	for _, ps := range want {
		for _, p := range ps {
			out[p.Addr()] = true
		}
	}
	return out, nil
}

// localPending are the kernel's IPv6 local routes that the writes done
// (changes) make the kernel add, a moment later, for VIPs with a source:
// those of the addresses added and of the links brought up (VLANs come up
// with their parent).
func localPending(d netconf.State, changes []Change) []netconf.Route {
	var out []netconf.Route
	for _, v := range d.VIPs {
		a := v.Addr.Addr()
		if !v.Source.IsValid() || !a.Is6() {
			continue
		}
		if slices.ContainsFunc(changes, func(c Change) bool {
			if c.Err != nil {
				return false
			}
			switch {
			case c.Kind == KindAddress && c.Op == Add:
				return c.Object == v.Link+" "+v.Addr.String()
			case c.Kind == KindLink && c.Detail == "up":
				return c.Object == v.Link || c.Object == d.LB.Name && slices.ContainsFunc(d.VLANs, func(l netconf.VLAN) bool {
					return l.Name() == v.Link && l.Parent == d.LB.Name
				})
			}
			return false
		}) {
			out = append(out, kernelLocal(v.Link, a))
		}
	}
	return out
}

// kernelLocal is the IPv6 local route the kernel makes for an address.
func kernelLocal(link string, a netip.Addr) netconf.Route {
	return netconf.Route{Family: netconf.IPv6, Table: netconf.LocalTable, Dst: netip.PrefixFrom(a, a.BitLen()), Device: link, Local: true, Kernel: true}
}

// awaitLocal waits, up to r.settle, for the kernel to add the pending
// local routes, forgetting those of links that are not up.
func (r *NetReconciler) awaitLocal(pending []netconf.Route) error {
	deadline := time.Now().Add(r.settle)
	for {
		links, err := r.k.Links()
		if err != nil {
			return err
		}
		have, err := r.k.Routes(netconf.LocalTable)
		if err != nil {
			return err
		}
		pending = slices.DeleteFunc(pending, func(p netconf.Route) bool {
			up := slices.ContainsFunc(links, func(l netconf.Link) bool { return l.Name == p.Device && l.Up })
			return !up || slices.Contains(have, p)
		})
		if len(pending) == 0 {
			return nil
		}
		if !time.Now().Before(deadline) {
			r.logf("net: the kernel's local routes of %d IPv6 VIPs did not come in %v", len(pending), r.settle)
			return nil
		}
		time.Sleep(r.poll)
	}
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
// interface, its IPv6 VRRP macvlan and the dummy as VIPs, each with the
// src of its local route as its Source when that route is the NCC's, on
// VLANs as VLAN addresses), the routes
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
	local, err := r.k.Routes(netconf.LocalTable)
	if err != nil {
		return netconf.State{}, err
	}
	source := func(link string, a netip.Addr) netip.Addr {
		for _, h := range local {
			if h.Local && !h.Kernel && h.Device == link && h.Dst == netip.PrefixFrom(a, a.BitLen()) && h.Src.IsValid() && h.Src != a {
				return h.Src
			}
		}
		return netip.Addr{}
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
				st.VIPs = append(st.VIPs, netconf.VIP{Addr: a, Link: l.Name, Source: source(l.Name, a.Addr())})
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
