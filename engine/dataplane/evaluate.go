package dataplane

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"

	"github.com/seesawlb/seesaw/engine/config"
	configpb "github.com/seesawlb/seesaw/proto/config"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Health is the last result of each check by id. A check without a result
// is Unknown, which is not healthy.
type Health map[uint64]*hcpb.Result

// Adopted is what the kernel held when the engine started, by service key
// and by destination key (DestinationKey) with its weight there: a
// restarted engine takes a destination the kernel holds at a weight above
// 0 as healthy until its checks report, and a service the kernel holds as
// up, so that a restart changes nothing the kernel does while the checks
// still say what they said (Seesaw's engine started from nothing, and its
// first evaluation removed every service). The engine stops using it once
// every check has reported, or after a grace period.
type Adopted struct {
	Services     map[string]bool
	Destinations map[string]int32
}

// DestinationKey names a destination of a service: the service's Key and
// the destination's address and port.
func DestinationKey(serviceKey string, addr netip.Addr, port uint16) string {
	return serviceKey + " " + netip.AddrPortFrom(addr, port).String()
}

// AdoptedFrom reads what a desired state (the kernel's, from the NCC's
// GetState) holds.
func AdoptedFrom(ds *nccpb.DesiredState) *Adopted {
	a := &Adopted{Services: map[string]bool{}, Destinations: map[string]int32{}}
	for _, s := range ds.GetServices() {
		f := IPv4
		if s.Family == nccpb.Family_INET6 {
			f = IPv6
		}
		var key string
		if s.Fwmark != 0 {
			key = fmt.Sprintf("%s FWM %d", f, s.Fwmark)
		} else {
			addr, err := netip.ParseAddr(s.Address)
			if err != nil {
				continue
			}
			key = fmt.Sprintf("%s %s %s", f, protocolName(s.Protocol), netip.AddrPortFrom(addr.Unmap(), uint16(s.Port)))
		}
		a.Services[key] = true
		for _, d := range s.Destinations {
			addr, err := netip.ParseAddr(d.Address)
			if err != nil {
				continue
			}
			a.Destinations[DestinationKey(key, addr.Unmap(), uint16(d.Port))] = d.Weight
		}
	}
	return a
}

func protocolName(p nccpb.Protocol) string {
	switch p {
	case nccpb.Protocol_UDP:
		return "UDP"
	case nccpb.Protocol_SCTP:
		return "SCTP"
	}
	return "TCP"
}

// Plan is one evaluation of a Model: what the kernel should hold, and the
// state of every vserver, service and destination that led to it.
type Plan struct {
	Model   *Model
	HA      seesawpb.HAState
	Desired *nccpb.DesiredState
	// Vservers and Backends are the operators' view, in config order and
	// by fqdn; statistics are not here (the kernel has them).
	Vservers []*enginepb.VserverStatus
	Backends []*enginepb.BackendStatus
	VLANs    []*enginepb.VLANStatus
	// up is each service's state by Service.Key, for the hysteresis of the
	// next evaluation; healthy each destination's by name.
	up      map[string]bool
	healthy map[string]bool
	sig     []byte // see EvaluateAdopting
}

// Up says whether the service with the given key was up in this plan.
func (p *Plan) Up(key string) bool { return p != nil && p.up[key] }

// Compute is Derive then Evaluate: the whole decision in one call.
func Compute(in Input, ha seesawpb.HAState, health Health, prev *Plan) *Plan {
	return Derive(in).Evaluate(ha, health, prev)
}

// destState is a destination's state in one evaluation.
type destState struct {
	healthy bool
	failing []string
}

func (m *Model) destState(s *Service, d *Destination, health Health, prev *Plan, adopted *Adopted) destState {
	st := destState{healthy: d.Enabled}
	held := false
	if adopted != nil {
		w, ok := adopted.Destinations[DestinationKey(s.key, d.Addr, d.Port)]
		held = ok && (w > 0 || d.Spec.Weight == 0)
	}
	// A check with no result on a destination that was healthy is one the
	// config has just changed (its id follows its definition) or added:
	// the destination keeps its state until the check reports, as Seesaw
	// kept a re-expanded check's status, so that editing a check does not
	// take its backends out.
	held = held || prev != nil && prev.healthy[d.Name]
	for _, id := range d.Checks {
		r := health[id]
		switch {
		case r == nil && held:
			// No result yet; the destination was healthy (or the kernel
			// had it when the engine started).
		case r == nil:
			st.healthy = false
			st.failing = append(st.failing, m.CheckInfo[id].Name+": unknown (no result yet)")
		case !r.Healthy:
			st.healthy = false
			st.failing = append(st.failing, m.CheckInfo[id].Name+": "+r.Message)
		}
	}
	return st
}

// Evaluate decides the data plane for an HA state and check results. prev
// is the previous plan (nil at start): a service keeps its state between
// the watermarks, as in Seesaw.
func (m *Model) Evaluate(ha seesawpb.HAState, health Health, prev *Plan) *Plan {
	return m.EvaluateAdopting(ha, health, prev, nil)
}

// EvaluateAdopting is Evaluate for an engine that has just started, with
// what the kernel held then (see Adopted); nil adopts nothing.
func (m *Model) EvaluateAdopting(ha seesawpb.HAState, health Health, prev *Plan, adopted *Adopted) *Plan {
	e := m.Engine
	master := ha == seesawpb.HAState_HA_STATE_LEADER
	p := &Plan{Model: m, HA: ha, up: map[string]bool{}, healthy: map[string]bool{}}
	// What the desired state depends on beyond the model, one byte a
	// decision, in a fixed order: when it is what the previous plan of
	// the same model had, so is the desired state, and the previous one
	// is reused (the caller then knows, by identity, that nothing changed).
	p.sig = append(p.sig, b2b(master))
	var services []*Service
	var vips []*VIP
	anycast := e.AnycastEnabled && m.Node != nil && m.Node.AnycastEnabled
	dstatus := make(map[*Destination]*enginepb.DestinationStatus, len(m.Backends)*2)
	for _, v := range m.Vservers {
		vs := &enginepb.VserverStatus{
			Name: v.Config.Name, Fqdn: v.Config.Address.FQDN, Enabled: v.Enabled, ConfigEnabled: v.ConfigEnabled,
			Override: v.Override, UseFwm: v.Config.UseFWM,
			Warnings: append(slices.Clone(v.Config.Warnings), v.Warnings...),
		}
		if a := v.Config.Address.IPv4; a.IsValid() {
			vs.Ipv4 = a.Addr().String()
		}
		if a := v.Config.Address.IPv6; a.IsValid() {
			vs.Ipv6 = a.Addr().String()
		}
		var upV4, upV6 []bool
		for _, s := range v.Services {
			ss := m.evaluateService(v, s, health, prev, adopted, p, dstatus)
			vs.Services = append(vs.Services, ss)
			if s.Family == IPv6 {
				upV6 = append(upV6, ss.Active)
			} else {
				upV4 = append(upV4, ss.Active)
			}
			p.sig = append(p.sig, b2b(ss.Active))
			if ss.Active {
				services = append(services, s)
				for _, d := range s.Destinations {
					st := dstatus[d]
					p.sig = append(p.sig, b2b(st.InIpvs)|b2b(st.Quiesced)<<1)
				}
			}
		}
		for _, vip := range v.VIPs {
			ups := upV4
			if vip.Family == IPv6 {
				ups = upV6
			}
			active := slices.Contains(ups, true)
			if vip.Type == config.AnycastVIP {
				active = len(ups) > 0 && !slices.Contains(ups, false)
			}
			placed := vip.Type != config.AnycastVIP || active && anycast
			vs.Vips = append(vs.Vips, &enginepb.VIPStatus{Address: vip.Addr.String(), Placement: placementName(vip),
				Interface: vip.Link, Active: active, Placed: placed})
			p.sig = append(p.sig, b2b(placed))
			if placed {
				vips = append(vips, vip)
			}
		}
		p.Vservers = append(p.Vservers, vs)
	}
	p.Backends = m.backendStatus(dstatus)
	p.VLANs = m.vlanStatus()
	if prev != nil && prev.Model == m && bytes.Equal(prev.sig, p.sig) {
		p.Desired = prev.Desired
		return p
	}
	p.Desired = m.desired(master, services, vips, dstatus)
	return p
}

func b2b(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// desired builds the desired state of an evaluation: the model's static
// part, the LB interface as HA wants it, the services that are up with
// their destinations, the VIPs that are placed.
func (m *Model) desired(master bool, services []*Service, vips []*VIP, dstatus map[*Destination]*enginepb.DestinationStatus) *nccpb.DesiredState {
	e := m.Engine
	ds := &nccpb.DesiredState{
		LbInterface: &nccpb.LBInterface{
			Name:           e.LBInterface,
			Up:             master,
			Vrid:           uint32(e.VRID),
			UseVmac:        e.UseVMAC,
			DummyInterface: e.DummyInterface,
			RoutingTable:   uint32(e.RoutingTableID),
		},
		Sysctls:      m.static.sysctls,
		Nft:          m.static.nft,
		SyncDaemons:  m.static.syncDaemons,
		IpvsTimeouts: m.static.timeouts,
		Conntrackd:   m.static.conntrackd,
		Vlans:        m.static.vlans,
		Rules:        m.static.rules,
	}
	if master {
		ds.Routes = m.static.lbRoutes
	}
	ds.Vips = append(ds.Vips, m.static.clusterVIPs...)
	for _, p := range m.static.natGateways {
		// Listed on the backup too, not held, so that a node that
		// stops being master gives it up.
		ds.FloatingAddresses = append(ds.FloatingAddresses, &nccpb.FloatingAddress{Address: p.String(),
			Interface: m.Engine.GatewayInterface, Held: master})
	}
	for _, s := range services {
		svc := cloneService(s.Spec)
		for _, d := range s.Destinations {
			st := dstatus[d]
			if !st.InIpvs {
				continue
			}
			dd := cloneDest(d.Spec)
			if st.Quiesced {
				dd.Weight = 0
			}
			svc.Destinations = append(svc.Destinations, dd)
		}
		ds.Services = append(ds.Services, svc)
	}
	for _, vip := range vips {
		pv := &nccpb.VIP{Address: vip.Addr.String(), Interface: vip.Link, Announce: vip.Type == config.UnicastVIP}
		pv.Placement = nccpb.VIPPlacement_VIP_ON_LB_INTERFACE
		if vip.Type != config.UnicastVIP {
			pv.Placement = nccpb.VIPPlacement_VIP_ON_DUMMY
		}
		if vip.Source.IsValid() {
			pv.Source = vip.Source.String()
		}
		ds.Vips = append(ds.Vips, pv)
	}
	ds.Vips = append(ds.Vips, m.static.serviceVIPs...)
	ds.Services = append(ds.Services, m.static.checkSvcs...)
	if e.LBInterface == e.NodeInterface {
		// The LB interface is the node's own NIC (keepalived's layout):
		// the NCC must never take it down, so the VIPs on it move as
		// floating addresses, held by the master only.
		ds.LbInterface.Shared = true
		var kept []*nccpb.VIP
		for _, v := range ds.Vips {
			if v.Placement == nccpb.VIPPlacement_VIP_ON_LB_INTERFACE && (v.Interface == "" || v.Interface == e.LBInterface) {
				ds.FloatingAddresses = append(ds.FloatingAddresses, &nccpb.FloatingAddress{Address: v.Address, Interface: e.LBInterface, Held: master})
				continue
			}
			kept = append(kept, v)
		}
		ds.Vips = kept
	}
	return ds
}

func placementName(v *VIP) string {
	switch {
	case v.VLAN != 0:
		return fmt.Sprintf("vlan %d", v.VLAN)
	case v.Type == config.DedicatedVIP:
		return "dummy (dedicated)"
	case v.Type == config.AnycastVIP:
		return "dummy (anycast)"
	}
	return "lb-interface"
}

// evaluateService decides one service's destinations and state.
func (m *Model) evaluateService(v *Vserver, s *Service, health Health, prev *Plan, adopted *Adopted, p *Plan,
	dstatus map[*Destination]*enginepb.DestinationStatus) *enginepb.ServiceStatus {
	e := s.Entry
	ss := &enginepb.ServiceStatus{
		Family: s.Family.proto(), Protocol: s.Spec.Protocol, Port: s.Spec.Port, Fwmark: s.Fwmark,
		Mode: e.Mode.String(), Scheduler: s.Spec.Scheduler, OnePacket: e.OnePacket, Persistence: uint32(e.Persistence),
		Enabled: v.Enabled, LowWatermark: e.LowWatermark, HighWatermark: e.HighWatermark,
		Vip: s.VIP.String(), Quiescent: s.Quiescent,
	}
	var healthy, inService int
	for _, d := range s.Destinations {
		st := m.destState(s, d, health, prev, adopted)
		p.healthy[d.Name] = st.healthy
		dst := &enginepb.DestinationStatus{
			Name: d.Name, Backend: d.Backend.FQDN, Address: d.Addr.String(), Port: uint32(d.Port),
			Weight: d.Spec.Weight, Enabled: d.Enabled, Healthy: st.healthy, Override: d.Override,
			FailingChecks: st.failing,
		}
		dstatus[d] = dst
		ss.Destinations = append(ss.Destinations, dst)
		if st.healthy {
			healthy++
		}
		if d.InService {
			inService++
		}
	}
	ss.HealthyDestinations, ss.InServiceDestinations = uint32(healthy), uint32(inService)
	if inService > 0 {
		ss.CurrentWatermark = float32(healthy) / float32(inService)
	}
	// Seesaw's hysteresis: an up service stays up down to the low
	// watermark, a down one comes up at the high one; 0 means one healthy
	// destination is enough.
	wasUp := prev.Up(s.key) || prev == nil && adopted != nil && adopted.Services[s.key]
	threshold := e.HighWatermark
	if wasUp {
		threshold = e.LowWatermark
	}
	up := v.Enabled && inService > 0 && healthy > 0 && (threshold == 0 || ss.CurrentWatermark >= threshold)
	p.up[s.key] = up
	ss.Healthy = up
	ss.Active = up
	// Maglev hashing is the stateless fallback for connections the sync
	// missed: both nodes must hold the same destinations in the same
	// order, so a destination of an mh service is quiesced, never taken
	// out (taking it out and back would put it at the head of the
	// kernel's list, and every later pick would differ from the peer's).
	mh := e.Scheduler == configpb.VserverEntry_MH
	for _, d := range s.Destinations {
		dst := dstatus[d]
		switch {
		case !ss.Active:
		case dst.Healthy && d.Enabled:
			dst.InIpvs, dst.Active = true, d.Spec.Weight > 0
		case mh, s.Quiescent && d.Enabled:
			// Seesaw parsed quiescent and ignored it: here an unhealthy
			// destination stays at weight 0, so its established
			// connections finish and new ones go elsewhere.
			dst.InIpvs, dst.Quiesced = true, true
		}
	}
	return ss
}

func (m *Model) backendStatus(dstatus map[*Destination]*enginepb.DestinationStatus) []*enginepb.BackendStatus {
	var out []*enginepb.BackendStatus
	for _, b := range m.Backends {
		bs := &enginepb.BackendStatus{Fqdn: b.FQDN, Override: b.Override, ConfigEnabled: b.ConfigEnabled,
			Enabled: apply(b.Override, b.ConfigEnabled)}
		if b.Host.IPv4.IsValid() {
			bs.Ipv4 = b.Host.IPv4.Addr().String()
		}
		if b.Host.IPv6.IsValid() {
			bs.Ipv6 = b.Host.IPv6.Addr().String()
		}
		for _, d := range b.Destinations {
			bs.Destinations = append(bs.Destinations, d.Name)
			if st := dstatus[d]; st != nil {
				if st.Healthy {
					bs.HealthyDestinations++
				}
				if st.Active {
					bs.ActiveDestinations++
				}
			}
		}
		out = append(out, bs)
	}
	return out
}

func (m *Model) vlanStatus() []*enginepb.VLANStatus {
	var out []*enginepb.VLANStatus
	for _, vl := range m.Cluster.VLANs {
		st := &enginepb.VLANStatus{Id: uint32(vl.ID), Fqdn: vl.Host.FQDN}
		if vl.Host.IPv4.IsValid() {
			st.Ipv4 = vl.Host.IPv4.String()
		}
		if vl.Host.IPv6.IsValid() {
			st.Ipv6 = vl.Host.IPv6.String()
		}
		in := func(n netip.Prefix, a netip.Prefix) bool {
			return n.IsValid() && a.IsValid() && n.Masked().Contains(a.Addr())
		}
		for _, b := range m.Backends {
			if in(vl.Host.IPv4, b.Host.IPv4) {
				st.BackendsV4++
			}
			if in(vl.Host.IPv6, b.Host.IPv6) {
				st.BackendsV6++
			}
		}
		for _, v := range m.Cluster.Vservers {
			if in(vl.Host.IPv4, v.Address.IPv4) {
				st.VipsV4++
			}
			if in(vl.Host.IPv6, v.Address.IPv6) {
				st.VipsV6++
			}
		}
		out = append(out, st)
	}
	return out
}

func cloneService(s *nccpb.Service) *nccpb.Service {
	return &nccpb.Service{Family: s.Family, Protocol: s.Protocol, Address: s.Address, Port: s.Port, Fwmark: s.Fwmark,
		Scheduler: s.Scheduler, Flags: s.Flags, OnePacket: s.OnePacket, PersistenceTimeout: s.PersistenceTimeout,
		PersistenceNetmask: s.PersistenceNetmask}
}

func cloneDest(d *nccpb.Destination) *nccpb.Destination {
	return &nccpb.Destination{Address: d.Address, Port: d.Port, Family: d.Family, Forward: d.Forward, Weight: d.Weight,
		UpperThreshold: d.UpperThreshold, LowerThreshold: d.LowerThreshold, TunnelType: d.TunnelType,
		TunnelPort: d.TunnelPort, TunnelFlags: d.TunnelFlags}
}
