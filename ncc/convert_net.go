package ncc

import (
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/seesawlb/seesaw/ncc/netconf"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// hasNet says whether a desired state says anything about the host's
// network configuration. When it says nothing, the NCC leaves the network
// alone (an engine that manages IPVS only).
func hasNet(ds *nccpb.DesiredState) bool {
	return ds.GetLbInterface() != nil || len(ds.GetVips()) > 0 || len(ds.GetVlans()) > 0 ||
		len(ds.GetRoutes()) > 0 || len(ds.GetRules()) > 0 || len(ds.GetSysctls()) > 0 || len(ds.GetFloatingAddresses()) > 0
}

// parsePrefix takes "192.0.2.1/24", or a bare address as a host prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()), nil
}

func parseOptPrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	return parsePrefix(s)
}

func parseOptAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err
}

// netFromProto takes the network part of a desired state.
func netFromProto(ds *nccpb.DesiredState) (netconf.State, error) {
	var st netconf.State
	if lb := ds.GetLbInterface(); lb != nil {
		if lb.GetVrid() > math.MaxUint8 {
			return st, fmt.Errorf("lb_interface: vrid %d is above 255", lb.GetVrid())
		}
		if lb.GetRoutingTable() > math.MaxInt32 {
			return st, fmt.Errorf("lb_interface: routing_table %d is too large", lb.GetRoutingTable())
		}
		if lb.GetName() == "" {
			return st, fmt.Errorf("lb_interface: name is required")
		}
		st.LB = netconf.LBInterface{Name: lb.GetName(), Up: lb.GetUp(), VRID: uint8(lb.GetVrid()), UseVMAC: lb.GetUseVmac(),
			Dummy: lb.GetDummyInterface(), Table: int(lb.GetRoutingTable()), Shared: lb.GetShared()}
	}
	for i, v := range ds.GetVips() {
		p, err := parsePrefix(v.GetAddress())
		if err != nil {
			return st, fmt.Errorf("vips[%d]: address: %w", i, err)
		}
		link := v.GetInterface()
		if link == "" {
			switch v.GetPlacement() {
			case nccpb.VIPPlacement_VIP_ON_LB_INTERFACE:
				link = st.LB.Name
			case nccpb.VIPPlacement_VIP_ON_DUMMY:
				link = st.LB.Dummy
			}
		}
		if link == "" {
			return st, fmt.Errorf("vips[%d] (%s): no interface and no placement (or no interface for it)", i, p)
		}
		src, err := parseOptAddr(v.GetSource())
		if err != nil {
			return st, fmt.Errorf("vips[%d] (%s): source: %w", i, p, err)
		}
		st.VIPs = append(st.VIPs, netconf.VIP{Addr: p, Link: link, Announce: v.GetAnnounce(), Source: src})
	}
	for i, f := range ds.GetFloatingAddresses() {
		p, err := parsePrefix(f.GetAddress())
		if err != nil {
			return st, fmt.Errorf("floating_addresses[%d]: address: %w", i, err)
		}
		if f.GetInterface() == "" {
			return st, fmt.Errorf("floating_addresses[%d] (%s): no interface", i, p)
		}
		st.Floating = append(st.Floating, netconf.Floating{Addr: p, Link: f.GetInterface(), Held: f.GetHeld()})
	}
	for i, v := range ds.GetVlans() {
		if v.GetId() > 4094 {
			return st, fmt.Errorf("vlans[%d]: id %d is above 4094", i, v.GetId())
		}
		vl := netconf.VLAN{Parent: v.GetParent(), ID: int(v.GetId())}
		if vl.Parent == "" {
			vl.Parent = st.LB.Name
		}
		for j, a := range v.GetAddresses() {
			p, err := parsePrefix(a)
			if err != nil {
				return st, fmt.Errorf("vlans[%d].addresses[%d]: %w", i, j, err)
			}
			vl.Addrs = append(vl.Addrs, p)
		}
		st.VLANs = append(st.VLANs, vl)
	}
	for i, r := range ds.GetRoutes() {
		rt, err := routeFromProto(r)
		if err != nil {
			return st, fmt.Errorf("routes[%d]: %w", i, err)
		}
		st.Routes = append(st.Routes, rt)
	}
	for i, r := range ds.GetRules() {
		ru, err := ruleFromProto(r)
		if err != nil {
			return st, fmt.Errorf("rules[%d]: %w", i, err)
		}
		st.Rules = append(st.Rules, ru)
	}
	if len(ds.GetSysctls()) > 0 {
		st.Sysctls = map[string]string{}
		for k, v := range ds.GetSysctls() {
			if k == "" || strings.Contains(k, "..") {
				return st, fmt.Errorf("sysctls: key %q is not a sysctl", k)
			}
			st.Sysctls[k] = v
		}
	}
	return st, st.Validate()
}

func netFamily(f nccpb.Family) (netconf.Family, error) {
	switch f {
	case nccpb.Family_INET:
		return netconf.IPv4, nil
	case nccpb.Family_INET6:
		return netconf.IPv6, nil
	case nccpb.Family_FAMILY_UNSPECIFIED:
		return 0, nil
	}
	return 0, fmt.Errorf("family %d is neither INET nor INET6", f)
}

func routeFromProto(r *nccpb.Route) (netconf.Route, error) {
	fam, err := netFamily(r.GetFamily())
	if err != nil {
		return netconf.Route{}, err
	}
	rt := netconf.Route{Family: fam, Table: int(r.GetTable()), Device: r.GetDevice(), Local: r.GetLocal()}
	if r.GetTable() == 0 || r.GetTable() > math.MaxInt32 {
		return rt, fmt.Errorf("table %d is not a routing table", r.GetTable())
	}
	if rt.Dst, err = parseOptPrefix(r.GetDestination()); err != nil {
		return rt, fmt.Errorf("destination: %w", err)
	}
	if rt.Gateway, err = parseOptAddr(r.GetGateway()); err != nil {
		return rt, fmt.Errorf("gateway: %w", err)
	}
	if rt.Src, err = parseOptAddr(r.GetSource()); err != nil {
		return rt, fmt.Errorf("source: %w", err)
	}
	if !rt.Dst.IsValid() && fam == 0 && !rt.Gateway.IsValid() {
		return rt, fmt.Errorf("a default route needs a family or a gateway")
	}
	if !rt.Gateway.IsValid() && rt.Device == "" {
		return rt, fmt.Errorf("route %s has neither a gateway nor a device", rt)
	}
	return rt.Normalize(), nil
}

func ruleFromProto(r *nccpb.Rule) (netconf.Rule, error) {
	fam, err := netFamily(r.GetFamily())
	if err != nil {
		return netconf.Rule{}, err
	}
	ru := netconf.Rule{Family: fam, Priority: int(r.GetPriority()), Table: int(r.GetTable()), FWMark: r.GetFwmark()}
	if r.GetTable() == 0 || r.GetTable() > math.MaxInt32 || r.GetPriority() > math.MaxInt32 {
		return ru, fmt.Errorf("table %d or priority %d out of range", r.GetTable(), r.GetPriority())
	}
	if ru.From, err = parseOptPrefix(r.GetFrom()); err != nil {
		return ru, fmt.Errorf("from: %w", err)
	}
	if ru.To, err = parseOptPrefix(r.GetTo()); err != nil {
		return ru, fmt.Errorf("to: %w", err)
	}
	return ru.Normalize(), nil
}

func netToProto(st netconf.State, ds *nccpb.DesiredState) {
	str := func(a netip.Addr) string {
		if a.IsValid() {
			return a.String()
		}
		return ""
	}
	if st.LB.Name != "" {
		ds.LbInterface = &nccpb.LBInterface{Name: st.LB.Name, Up: st.LB.Up, Vrid: uint32(st.LB.VRID), UseVmac: st.LB.UseVMAC,
			DummyInterface: st.LB.Dummy, RoutingTable: uint32(st.LB.Table), Shared: st.LB.Shared}
	}
	for _, v := range st.VIPs {
		pl := nccpb.VIPPlacement_VIP_PLACEMENT_UNSPECIFIED
		switch v.Link {
		case st.LB.Name, st.LB.VMAC6Link():
			// The IPv6 VRRP macvlan is the LB interface's IPv6 face
			// (use_vmac); interface says which link holds the VIP.
			pl = nccpb.VIPPlacement_VIP_ON_LB_INTERFACE
		case st.LB.Dummy:
			pl = nccpb.VIPPlacement_VIP_ON_DUMMY
		}
		ds.Vips = append(ds.Vips, &nccpb.VIP{Address: v.Addr.String(), Placement: pl, Interface: v.Link, Source: str(v.Source)})
	}
	for _, v := range st.VLANs {
		pv := &nccpb.VLAN{Id: uint32(v.ID), Parent: v.Parent}
		for _, a := range v.Addrs {
			pv.Addresses = append(pv.Addresses, a.String())
		}
		ds.Vlans = append(ds.Vlans, pv)
	}
	pstr := func(p netip.Prefix) string {
		if p.IsValid() {
			return p.String()
		}
		return ""
	}
	for _, r := range st.Routes {
		ds.Routes = append(ds.Routes, &nccpb.Route{Family: nccpb.Family(r.Family), Table: uint32(r.Table), Destination: pstr(r.Dst),
			Gateway: str(r.Gateway), Device: r.Device, Source: str(r.Src), Local: r.Local})
	}
	for _, r := range st.Rules {
		ds.Rules = append(ds.Rules, &nccpb.Rule{Family: nccpb.Family(r.Family), Priority: uint32(r.Priority), Table: uint32(r.Table),
			From: pstr(r.From), To: pstr(r.To), Fwmark: r.FWMark})
	}
	if len(st.Sysctls) > 0 {
		ds.Sysctls = st.Sysctls
	}
}
