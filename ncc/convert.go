package ncc

import (
	"fmt"
	"math"
	"net/netip"

	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// The wire contract (proto/ncc) is converted to the IPVS client's types
// here and only here. Errors name the field, so that an engine bug shows
// where it is.

// schedFlags are the service flags the request's flags field may carry;
// persistence and one-packet scheduling have fields of their own.
const schedFlags = ipvs.FlagSched1 | ipvs.FlagSched2 | ipvs.FlagSched3

func familyFromProto(f nccpb.Family) (ipvs.Family, error) {
	switch f {
	case nccpb.Family_INET:
		return ipvs.IPv4, nil
	case nccpb.Family_INET6:
		return ipvs.IPv6, nil
	case nccpb.Family_FAMILY_UNSPECIFIED:
		return 0, nil
	}
	return 0, fmt.Errorf("family %d is neither INET nor INET6", f)
}

func familyToProto(f ipvs.Family) nccpb.Family {
	switch f {
	case ipvs.IPv4:
		return nccpb.Family_INET
	case ipvs.IPv6:
		return nccpb.Family_INET6
	}
	return nccpb.Family_FAMILY_UNSPECIFIED
}

// ipvsFromProto takes the IPVS part of a desired state.
func ipvsFromProto(ds *nccpb.DesiredState) (reconcile.IPVSState, error) {
	var st reconcile.IPVSState
	for i, s := range ds.GetServices() {
		v, err := serviceFromProto(s)
		if err != nil {
			return st, fmt.Errorf("services[%d]: %w", i, err)
		}
		st.Services = append(st.Services, v)
	}
	for i, d := range ds.GetSyncDaemons() {
		sd, err := daemonFromProto(d)
		if err != nil {
			return st, fmt.Errorf("sync_daemons[%d]: %w", i, err)
		}
		st.SyncDaemons = append(st.SyncDaemons, sd)
	}
	if t := ds.GetIpvsTimeouts(); t != nil {
		// The kernel keeps them as jiffies in an int: a week is plenty
		// and far from overflowing at any HZ.
		for _, v := range []struct {
			name string
			s    uint32
		}{{"tcp", t.Tcp}, {"tcp_fin", t.TcpFin}, {"udp", t.Udp}} {
			if v.s > 7*24*3600 {
				return st, fmt.Errorf("ipvs_timeouts: %s %ds is longer than a week", v.name, v.s)
			}
		}
		st.Timeouts = &ipvs.Timeouts{TCP: t.Tcp, TCPFin: t.TcpFin, UDP: t.Udp}
	}
	return st, st.Validate()
}

func serviceFromProto(s *nccpb.Service) (ipvs.VirtualServer, error) {
	fam, err := familyFromProto(s.GetFamily())
	if err != nil {
		return ipvs.VirtualServer{}, err
	}
	var k ipvs.ServiceKey
	if s.GetFwmark() != 0 {
		if s.GetAddress() != "" || s.GetPort() != 0 || s.GetProtocol() != nccpb.Protocol_PROTOCOL_UNSPECIFIED {
			return ipvs.VirtualServer{}, fmt.Errorf("fwmark %d: a firewall-mark service has no address, protocol or port", s.GetFwmark())
		}
		if fam == 0 {
			return ipvs.VirtualServer{}, fmt.Errorf("fwmark %d: family is required", s.GetFwmark())
		}
		k = ipvs.FWMarkKey(fam, s.GetFwmark())
	} else {
		addr, err := netip.ParseAddr(s.GetAddress())
		if err != nil {
			return ipvs.VirtualServer{}, fmt.Errorf("address: %w", err)
		}
		if addr.Zone() != "" {
			return ipvs.VirtualServer{}, fmt.Errorf("address %s: a zone is not allowed", addr)
		}
		addr = addr.Unmap()
		if fam != 0 && fam != ipvs.FamilyOf(addr) {
			return ipvs.VirtualServer{}, fmt.Errorf("address %s is not %s", addr, fam)
		}
		if s.GetPort() > math.MaxUint16 {
			return ipvs.VirtualServer{}, fmt.Errorf("port %d is above 65535", s.GetPort())
		}
		var p ipvs.Protocol
		switch s.GetProtocol() {
		case nccpb.Protocol_TCP:
			p = ipvs.TCP
		case nccpb.Protocol_UDP:
			p = ipvs.UDP
		case nccpb.Protocol_SCTP:
			p = ipvs.SCTP
		default:
			return ipvs.VirtualServer{}, fmt.Errorf("%s: protocol %v is not TCP, UDP or SCTP", addr, s.GetProtocol())
		}
		k = ipvs.AddrPortKey(p, netip.AddrPortFrom(addr, uint16(s.GetPort())))
	}
	v := ipvs.VirtualServer{Service: ipvs.Service{ServiceKey: k, Scheduler: s.GetScheduler()}}
	fail := func(format string, args ...any) (ipvs.VirtualServer, error) {
		return ipvs.VirtualServer{}, fmt.Errorf("%s: %s", k, fmt.Sprintf(format, args...))
	}
	if v.Scheduler == "" {
		return fail("scheduler is required")
	}
	f := ipvs.ServiceFlags(s.GetFlags())
	if f&^schedFlags != 0 {
		return fail("flags %#x: only the scheduler flags (%#x) go here; persistence and one-packet have fields of their own", s.GetFlags(), uint32(schedFlags))
	}
	v.Flags = f
	if s.GetOnePacket() {
		v.Flags |= ipvs.FlagOnePacket
	}
	if t := s.GetPersistenceTimeout(); t != 0 {
		v.Flags |= ipvs.FlagPersistent
		v.Timeout = t
	}
	bits := 32
	if k.Family == ipvs.IPv6 {
		bits = 128
	}
	if m := s.GetPersistenceNetmask(); m > uint32(bits) {
		return fail("persistence_netmask /%d is longer than the address", m)
	}
	v.Netmask = uint8(s.GetPersistenceNetmask())
	seen := map[ipvs.DestinationKey]bool{}
	for i, d := range s.GetDestinations() {
		dest, err := destFromProto(d, k.Family)
		if err != nil {
			return fail("destinations[%d]: %v", i, err)
		}
		if seen[dest.Key()] {
			return fail("destinations[%d]: %s is listed twice", i, dest)
		}
		seen[dest.Key()] = true
		v.Destinations = append(v.Destinations, dest)
	}
	return v, nil
}

func destFromProto(d *nccpb.Destination, svcFamily ipvs.Family) (ipvs.Destination, error) {
	addr, err := netip.ParseAddr(d.GetAddress())
	if err != nil {
		return ipvs.Destination{}, fmt.Errorf("address: %w", err)
	}
	addr = addr.Unmap()
	fam, err := familyFromProto(d.GetFamily())
	if err != nil {
		return ipvs.Destination{}, err
	}
	if fam == 0 {
		fam = ipvs.FamilyOf(addr)
	}
	if fam != ipvs.FamilyOf(addr) {
		return ipvs.Destination{}, fmt.Errorf("address %s is not %s", addr, fam)
	}
	if fam != svcFamily && d.GetForward() != nccpb.Forward_FORWARD_TUNNEL {
		return ipvs.Destination{}, fmt.Errorf("%s: only a tunnel reaches a destination of another family than its service", addr)
	}
	if d.GetPort() > math.MaxUint16 || d.GetTunnelPort() > math.MaxUint16 || d.GetTunnelFlags() > math.MaxUint16 {
		return ipvs.Destination{}, fmt.Errorf("%s: port, tunnel_port or tunnel_flags above 65535", addr)
	}
	if d.GetWeight() < 0 {
		return ipvs.Destination{}, fmt.Errorf("%s: weight %d is negative", addr, d.GetWeight())
	}
	if d.GetLowerThreshold() > d.GetUpperThreshold() {
		return ipvs.Destination{}, fmt.Errorf("%s: lower_threshold %d is above upper_threshold %d", addr, d.GetLowerThreshold(), d.GetUpperThreshold())
	}
	out := ipvs.Destination{
		Addr: addr, Port: uint16(d.GetPort()), Family: fam,
		Weight: uint32(d.GetWeight()), UpperThreshold: d.GetUpperThreshold(), LowerThreshold: d.GetLowerThreshold(),
		TunnelPort: uint16(d.GetTunnelPort()), TunnelFlags: ipvs.TunnelFlags(d.GetTunnelFlags()),
	}
	switch d.GetForward() {
	case nccpb.Forward_FORWARD_NAT:
		out.Forward = ipvs.Masquerade
	case nccpb.Forward_FORWARD_LOCAL:
		out.Forward = ipvs.Local
	case nccpb.Forward_FORWARD_TUNNEL:
		out.Forward = ipvs.Tunnel
	case nccpb.Forward_FORWARD_DSR:
		out.Forward = ipvs.DirectRoute
	default:
		return ipvs.Destination{}, fmt.Errorf("%s: forward %d is unknown", addr, d.GetForward())
	}
	switch d.GetTunnelType() {
	case nccpb.TunnelType_TUNNEL_IPIP:
		out.TunnelType = ipvs.IPIP
	case nccpb.TunnelType_TUNNEL_GUE:
		out.TunnelType = ipvs.GUE
		if out.Forward == ipvs.Tunnel && out.TunnelPort == 0 {
			return ipvs.Destination{}, fmt.Errorf("%s: a GUE tunnel needs tunnel_port", addr)
		}
	case nccpb.TunnelType_TUNNEL_GRE:
		out.TunnelType = ipvs.GRE
	default:
		return ipvs.Destination{}, fmt.Errorf("%s: tunnel_type %d is unknown", addr, d.GetTunnelType())
	}
	return out, nil
}

func daemonFromProto(d *nccpb.SyncDaemon) (ipvs.SyncDaemon, error) {
	var out ipvs.SyncDaemon
	switch d.GetRole() {
	case nccpb.SyncDaemon_MASTER:
		out.State = ipvs.SyncMaster
	case nccpb.SyncDaemon_BACKUP:
		out.State = ipvs.SyncBackup
	default:
		return out, fmt.Errorf("role %v is neither MASTER nor BACKUP", d.GetRole())
	}
	if d.GetInterface() == "" {
		return out, fmt.Errorf("%s: interface is required", out.State)
	}
	if d.GetPort() > math.MaxUint16 || d.GetTtl() > math.MaxUint8 || d.GetMaxLength() > math.MaxUint16 {
		return out, fmt.Errorf("%s: port, ttl or max_length out of range", out.State)
	}
	out.Interface, out.SyncID = d.GetInterface(), d.GetSyncId()
	out.Port, out.TTL, out.MaxLen = uint16(d.GetPort()), uint8(d.GetTtl()), uint16(d.GetMaxLength())
	if g := d.GetMulticastGroup(); g != "" {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return out, fmt.Errorf("%s: multicast_group: %w", out.State, err)
		}
		if !a.IsMulticast() {
			return out, fmt.Errorf("%s: multicast_group %s is not a multicast address", out.State, a)
		}
		out.MulticastGroup = a
	}
	return out, nil
}

func statsToProto(s ipvs.Stats) *nccpb.Stats {
	return &nccpb.Stats{
		Connections: s.Connections, PacketsIn: s.PacketsIn, PacketsOut: s.PacketsOut,
		BytesIn: s.BytesIn, BytesOut: s.BytesOut, Cps: s.CPS, PpsIn: s.PPSIn, PpsOut: s.PPSOut,
		BpsIn: s.BPSIn, BpsOut: s.BPSOut,
	}
}

func serviceToProto(s ipvs.Service) *nccpb.Service {
	p := &nccpb.Service{
		Family:             familyToProto(s.Family),
		Fwmark:             s.FWMark,
		Scheduler:          s.Scheduler,
		Flags:              uint32(s.Flags & schedFlags),
		OnePacket:          s.Flags&ipvs.FlagOnePacket != 0,
		PersistenceNetmask: uint32(s.Netmask),
	}
	if s.Flags&ipvs.FlagPersistent != 0 {
		p.PersistenceTimeout = s.Timeout
	}
	if s.FWMark == 0 {
		p.Protocol = nccpb.Protocol(s.Protocol)
		p.Address = s.Addr.String()
		p.Port = uint32(s.Port)
	}
	return p
}

func destToProto(d ipvs.Destination) *nccpb.Destination {
	return &nccpb.Destination{
		Address: d.Addr.String(), Port: uint32(d.Port), Family: familyToProto(d.Family),
		Forward: nccpb.Forward(d.Forward), Weight: int32(min(d.Weight, math.MaxInt32)),
		UpperThreshold: d.UpperThreshold, LowerThreshold: d.LowerThreshold,
		TunnelType: nccpb.TunnelType(d.TunnelType), TunnelPort: uint32(d.TunnelPort), TunnelFlags: uint32(d.TunnelFlags),
	}
}

func daemonToProto(d ipvs.SyncDaemon) *nccpb.SyncDaemon {
	p := &nccpb.SyncDaemon{
		Role: nccpb.SyncDaemon_Role(d.State), Interface: d.Interface, SyncId: d.SyncID,
		Port: uint32(d.Port), Ttl: uint32(d.TTL), MaxLength: uint32(d.MaxLen),
	}
	if d.MulticastGroup.IsValid() {
		p.MulticastGroup = d.MulticastGroup.String()
	}
	return p
}

func changeToProto(c reconcile.Change) *nccpb.Change {
	op := nccpb.Change_OP_UNSPECIFIED
	switch c.Op {
	case reconcile.Add:
		op = nccpb.Change_ADD
	case reconcile.Update:
		op = nccpb.Change_UPDATE
	case reconcile.Delete:
		op = nccpb.Change_DELETE
	}
	return &nccpb.Change{Op: op, Kind: c.Kind, Object: c.Object, Detail: c.Detail}
}

// Validate checks a desired state as Apply does before it writes anything:
// nil when the NCC would take it, else the error Apply would answer with
// (InvalidArgument). The engine's tests hold every state it computes to it.
func Validate(ds *nccpb.DesiredState) error {
	if _, err := ipvsFromProto(ds); err != nil {
		return err
	}
	if hasNet(ds) {
		if _, err := netFromProto(ds); err != nil {
			return err
		}
	}
	_, err := nftFromProto(ds)
	return err
}
