package ha

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/seesawlb/seesaw/ha/vrrp"
	hapb "github.com/seesawlb/seesaw/proto/ha"
)

// DefaultAdvertInterval is used when the engine sends none: RFC 5798's
// default. (The engine sends Seesaw's 500ms.)
const DefaultAdvertInterval = time.Second

// Params is everything a speaker runs with.
type Params struct {
	// Interface is where adverts go and come from: the node interface, as
	// in Seesaw, whose address is the advert source.
	Interface string
	VRRP      vrrp.Config
}

// sameSocket reports whether p and q can share one socket and machine, so
// that a change between them is an in-place update, not a restart.
func (p Params) sameSocket(q Params) bool {
	return p.Interface == q.Interface && p.VRRP.VRID == q.VRRP.VRID &&
		p.VRRP.Local == q.VRRP.Local && p.VRRP.Unicast == q.VRRP.Unicast
}

// AddrLookup finds an interface's advert source: its first IPv4 address,
// or its IPv6 link-local address.
type AddrLookup func(iface string, v6 bool) (netip.Addr, error)

// InterfaceAddr is the AddrLookup of the running host.
func InterfaceAddr(iface string, v6 bool) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("ha: %w", err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("ha: addresses of %s: %w", iface, err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !v6 && ip.Is4() {
			return ip, nil
		}
		if v6 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	what := "IPv4 address"
	if v6 {
		what = "IPv6 link-local address"
	}
	return netip.Addr{}, fmt.Errorf("ha: interface %s has no %s to send adverts from", iface, what)
}

// ParamsFromProto turns the engine's HA config into speaker parameters.
//
// One speaker runs one virtual router of one address family, as a
// keepalived instance does: IPv4 when local_address is set (Seesaw's case,
// and what the engine sends), else IPv6 when local_address_v6 is set or the
// peers are IPv6, else IPv4 from the interface's address. A missing local
// address is looked up on the interface. The address list keeps only the
// router's family, since an advert carries one family.
func ParamsFromProto(c *hapb.Config, lookup AddrLookup) (Params, error) {
	if c.GetInterface() == "" {
		return Params{}, errors.New("ha: config: no interface")
	}
	if c.Vrid < 1 || c.Vrid > 255 {
		return Params{}, fmt.Errorf("ha: config: VRID %d is outside 1-255", c.Vrid)
	}
	if c.Priority < 1 || c.Priority > 255 {
		return Params{}, fmt.Errorf("ha: config: priority %d is outside 1-255", c.Priority)
	}
	peers, err := parseAddrs("peer", c.Peers)
	if err != nil {
		return Params{}, err
	}
	addrs, err := parseAddrs("address", c.Addresses)
	if err != nil {
		return Params{}, err
	}
	var local netip.Addr
	switch {
	case c.LocalAddress != "":
		local, err = parseAddr("local_address", c.LocalAddress)
	case c.LocalAddressV6 != "":
		local, err = parseAddr("local_address_v6", c.LocalAddressV6)
	default:
		v6 := len(peers) > 0 && peers[0].Is6()
		local, err = lookup(c.Interface, v6)
	}
	if err != nil {
		return Params{}, err
	}
	interval := DefaultAdvertInterval
	if c.AdvertInterval != nil {
		interval = c.AdvertInterval.AsDuration()
	}
	v := vrrp.Config{
		VRID:         uint8(c.Vrid),
		Priority:     uint8(c.Priority),
		Interval:     interval,
		Preempt:      c.Preempt,
		PreemptDelay: c.PreemptDelay.AsDuration(),
		Local:        local,
		Peers:        peers,
		Unicast:      c.Unicast,
		Addresses:    slices.DeleteFunc(addrs, func(a netip.Addr) bool { return a.Is4() != local.Is4() }),
	}
	if err := v.Validate(); err != nil {
		return Params{}, fmt.Errorf("ha: config: %w", err)
	}
	return Params{Interface: c.Interface, VRRP: v}, nil
}

func parseAddr(what, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("ha: config: %s: %w", what, err)
	}
	return a.Unmap().WithZone(""), nil
}

func parseAddrs(what string, ss []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range ss {
		a, err := parseAddr(what, s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
