package netconf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Linux is Kernel on a real network stack, through rtnetlink
// (vishvananda/netlink) and /proc/sys.
type Linux struct {
	h *netlink.Handle
	// do runs a function in the handle's network namespace: sysctls are
	// files of the namespace the reading thread is in.
	do func(func() error) error
}

// NewLinux returns a Kernel on h, a netlink handle in the namespace to
// manage (netlink.NewHandle() for the NCC's own). do runs a function inside
// that namespace for /proc/sys; nil runs it as is, for the NCC's own
// namespace.
func NewLinux(h *netlink.Handle, do func(func() error) error) *Linux {
	if do == nil {
		do = func(f func() error) error { return f() }
	}
	return &Linux{h: h, do: do}
}

// dumpAttempts bounds the re-reads of a dump the kernel marks interrupted.
const dumpAttempts = 8

// retry runs a dump again while the kernel says it was interrupted.
func retry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpAttempts {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

func (l *Linux) link(name string) (netlink.Link, error) {
	lk, err := l.h.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil, fmt.Errorf("netconf: link %s: %w", name, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("netconf: link %s: %w", name, err)
	}
	return lk, nil
}

func (l *Linux) Links() ([]Link, error) {
	lks, err := retry(l.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("netconf: list links: %w", err)
	}
	names := map[int]string{}
	for _, lk := range lks {
		names[lk.Attrs().Index] = lk.Attrs().Name
	}
	out := make([]Link, 0, len(lks))
	for _, lk := range lks {
		a := lk.Attrs()
		k := Link{Name: a.Name, Index: a.Index, Kind: lk.Type(), Up: a.Flags&net.FlagUp != 0,
			MAC: a.HardwareAddr, PermMAC: a.PermHWAddr}
		if k.Kind == "device" {
			k.Kind = ""
		}
		switch v := lk.(type) {
		case *netlink.Vlan:
			k.Parent, k.VLANID = names[a.ParentIndex], v.VlanId
		case *netlink.Macvlan:
			k.Parent = names[a.ParentIndex]
		}
		out = append(out, k)
	}
	return out, nil
}

func (l *Linux) AddDummy(name string) error {
	if err := l.h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		return fmt.Errorf("netconf: add dummy %s: %w (is the dummy module available?)", name, err)
	}
	return nil
}

func (l *Linux) AddVLAN(parent string, id int) error {
	p, err := l.link(parent)
	if err != nil {
		return err
	}
	name := VLAN{Parent: parent, ID: id}.Name()
	err = l.h.LinkAdd(&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: p.Attrs().Index}, VlanId: id})
	if err != nil {
		return fmt.Errorf("netconf: add VLAN %s: %w (is the 8021q module available?)", name, err)
	}
	return nil
}

// AddMACVLAN makes the macvlan in bridge mode: with the one macvlan the
// NCC puts on the LB interface, bridge and private mode behave alike on
// the wire; bridge mode also lets other bridge-mode macvlans on the same
// interface (containers, say) reach the VIPs and hear their announcements
// without a hairpinning switch, which private mode would forbid and VEPA,
// the kernel's default, would need.
func (l *Linux) AddMACVLAN(parent, name string, mac net.HardwareAddr) error {
	p, err := l.link(parent)
	if err != nil {
		return err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.ParentIndex, attrs.HardwareAddr = name, p.Attrs().Index, mac
	if err := l.h.LinkAdd(&netlink.Macvlan{LinkAttrs: attrs, Mode: netlink.MACVLAN_MODE_BRIDGE}); err != nil {
		return fmt.Errorf("netconf: add macvlan %s on %s: %w (is the macvlan module available?)", name, parent, err)
	}
	return nil
}

func (l *Linux) DeleteLink(name string) error {
	lk, err := l.link(name)
	if err != nil {
		return err
	}
	if err := l.h.LinkDel(lk); err != nil {
		return fmt.Errorf("netconf: delete link %s: %w", name, err)
	}
	return nil
}

func (l *Linux) SetUp(name string, up bool) error {
	lk, err := l.link(name)
	if err != nil {
		return err
	}
	if up {
		err = l.h.LinkSetUp(lk)
	} else {
		err = l.h.LinkSetDown(lk)
	}
	if err != nil {
		return fmt.Errorf("netconf: set %s up=%t: %w", name, up, err)
	}
	return nil
}

func (l *Linux) SetMAC(name string, mac net.HardwareAddr) error {
	lk, err := l.link(name)
	if err != nil {
		return err
	}
	if err := l.h.LinkSetHardwareAddr(lk, mac); err != nil {
		return fmt.Errorf("netconf: set %s address %s: %w", name, mac, err)
	}
	return nil
}

func toPrefix(n *net.IPNet) netip.Prefix {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

func toIPNet(p netip.Prefix) *net.IPNet {
	if !p.IsValid() {
		return nil
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (l *Linux) Addrs(link string) ([]netip.Prefix, error) {
	lk, err := l.link(link)
	if err != nil {
		return nil, err
	}
	as, err := retry(func() ([]netlink.Addr, error) { return l.h.AddrList(lk, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("netconf: addresses of %s: %w", link, err)
	}
	var out []netip.Prefix
	for _, a := range as {
		if a.Scope != unix.RT_SCOPE_UNIVERSE {
			continue // link-local and host addresses are the kernel's
		}
		out = append(out, toPrefix(a.IPNet))
	}
	return out, nil
}

func (l *Linux) addr(link string, p netip.Prefix, add bool) error {
	lk, err := l.link(link)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: toIPNet(p)}
	if p.Addr().Is6() {
		// Usable at once: a VIP that waits for duplicate address
		// detection is a VIP that does not answer after a failover.
		a.Flags = unix.IFA_F_NODAD
	}
	if add {
		err = l.h.AddrAdd(lk, a)
	} else {
		err = l.h.AddrDel(lk, a)
	}
	if err != nil {
		op := "add"
		if !add {
			op = "delete"
		}
		return fmt.Errorf("netconf: %s address %s on %s: %w", op, p, link, err)
	}
	return nil
}

func (l *Linux) AddAddr(link string, p netip.Prefix) error    { return l.addr(link, p, true) }
func (l *Linux) DeleteAddr(link string, p netip.Prefix) error { return l.addr(link, p, false) }

func (l *Linux) linkNames() (map[int]string, map[string]int, error) {
	lks, err := retry(l.h.LinkList)
	if err != nil {
		return nil, nil, fmt.Errorf("netconf: list links: %w", err)
	}
	byIndex, byName := map[int]string{}, map[string]int{}
	for _, lk := range lks {
		byIndex[lk.Attrs().Index], byName[lk.Attrs().Name] = lk.Attrs().Name, lk.Attrs().Index
	}
	return byIndex, byName, nil
}

func (l *Linux) Routes(table int) ([]Route, error) {
	names, _, err := l.linkNames()
	if err != nil {
		return nil, err
	}
	rs, err := retry(func() ([]netlink.Route, error) {
		return l.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("netconf: routes of table %d: %w", table, err)
	}
	var out []Route
	for _, r := range rs {
		if r.Table != table {
			continue
		}
		if r.Type != unix.RTN_UNICAST && r.Type != unix.RTN_LOCAL {
			continue // broadcast, multicast and the like are the kernel's
		}
		rt := Route{Family: Family(r.Family), Table: table, Device: names[r.LinkIndex], Local: r.Type == unix.RTN_LOCAL,
			Kernel: r.Protocol == unix.RTPROT_KERNEL}
		if r.Dst != nil {
			rt.Dst = toPrefix(r.Dst)
		}
		if a, ok := netip.AddrFromSlice(r.Gw); ok {
			rt.Gateway = a.Unmap()
		}
		if a, ok := netip.AddrFromSlice(r.Src); ok {
			rt.Src = a.Unmap()
		}
		out = append(out, rt.Normalize())
	}
	return out, nil
}

// route is r as netlink puts it; del for a deletion, where the origin
// (protocol) is a match rather than a property.
func (l *Linux) route(r Route, del bool) (*netlink.Route, error) {
	r = r.Normalize()
	nr := &netlink.Route{Table: r.Table, Family: int(r.Family), Dst: toIPNet(r.Dst), Type: unix.RTN_UNICAST, Scope: netlink.SCOPE_UNIVERSE}
	if r.Gateway.IsValid() {
		nr.Gw = r.Gateway.AsSlice()
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if r.Local {
		nr.Type, nr.Scope = unix.RTN_LOCAL, netlink.SCOPE_HOST
	}
	switch {
	case r.Kernel:
		nr.Protocol = unix.RTPROT_KERNEL
	case r.Local && del:
		// The NCC's own local routes are proto boot, as netlink adds
		// them. Deleting one of them must not take the kernel's route to
		// the same address: IPv6 does not match a deletion on its src.
		nr.Protocol = unix.RTPROT_BOOT
	}
	if r.Device != "" {
		lk, err := l.link(r.Device)
		if err != nil {
			return nil, err
		}
		nr.LinkIndex = lk.Attrs().Index
	}
	return nr, nil
}

func (l *Linux) AddRoute(r Route) error {
	nr, err := l.route(r, false)
	if err == nil {
		err = l.h.RouteAdd(nr)
	}
	if err != nil {
		return fmt.Errorf("netconf: add route %s: %w", r, err)
	}
	return nil
}

func (l *Linux) ReplaceRoute(r Route) error {
	nr, err := l.route(r, false)
	if err == nil {
		err = l.h.RouteReplace(nr)
	}
	if err != nil {
		return fmt.Errorf("netconf: replace route %s: %w", r, err)
	}
	return nil
}

func (l *Linux) DeleteRoute(r Route) error {
	nr, err := l.route(r, true)
	if err == nil {
		err = l.h.RouteDel(nr)
	}
	if err != nil {
		return fmt.Errorf("netconf: delete route %s: %w", r, err)
	}
	return nil
}

func (l *Linux) Rules() ([]Rule, error) {
	rs, err := retry(func() ([]netlink.Rule, error) { return l.h.RuleList(netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("netconf: list rules: %w", err)
	}
	out := make([]Rule, 0, len(rs))
	for _, r := range rs {
		ru := Rule{Family: Family(r.Family), Priority: r.Priority, Table: r.Table, FWMark: r.Mark}
		if r.Src != nil {
			ru.From = toPrefix(r.Src)
		}
		if r.Dst != nil {
			ru.To = toPrefix(r.Dst)
		}
		out = append(out, ru.Normalize())
	}
	return out, nil
}

func (l *Linux) rule(r Rule) *netlink.Rule {
	r = r.Normalize()
	nr := netlink.NewRule()
	nr.Family, nr.Table, nr.Src, nr.Dst = int(r.Family), r.Table, toIPNet(r.From), toIPNet(r.To)
	if r.Priority != 0 {
		nr.Priority = r.Priority
	}
	if r.FWMark != 0 {
		nr.Mark = r.FWMark
	}
	return nr
}

func (l *Linux) AddRule(r Rule) error {
	if err := l.h.RuleAdd(l.rule(r)); err != nil {
		return fmt.Errorf("netconf: add rule %s: %w", r, err)
	}
	return nil
}

func (l *Linux) DeleteRule(r Rule) error {
	if err := l.h.RuleDel(l.rule(r)); err != nil {
		return fmt.Errorf("netconf: delete rule %s: %w", r, err)
	}
	return nil
}

func (l *Linux) Sysctl(key string) (string, error) {
	var v string
	err := l.do(func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", SysctlPath(key)))
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("netconf: read sysctl %s: %w", key, err)
	}
	return v, nil
}

func (l *Linux) SetSysctl(key, value string) error {
	err := l.do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", SysctlPath(key)), []byte(value), 0)
	})
	if err != nil {
		return fmt.Errorf("netconf: set sysctl %s=%s: %w", key, value, err)
	}
	return nil
}
