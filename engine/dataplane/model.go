// Package dataplane is the engine's decision: what the kernel of this node
// should hold, given the config, this node, the HA state, the health check
// results and the operators' overrides. It is pure: no clock, no sockets, no
// files; the same inputs give the same DesiredState, byte for byte.
//
// It works in two steps, so that a health change costs the evaluation only:
//
//   - Derive (config, this node, overrides, the firewall marks in use) →
//     Model: every vserver's services and destinations, the checks to run
//     with, for each, the destinations its result decides, and what does
//     not depend on health or HA (VLANs, sysctls, nftables rules, the
//     services that DSR and TUN checks travel through).
//   - Model.Evaluate (HA state, check results, the previous Plan) → Plan:
//     the DesiredState for the NCC and each vserver's state for operators.
//
// Seesaw v2's semantics are kept where they work (engine/vserver.go there):
// a destination is in IPVS while its backend is enabled and every one of its
// checks is healthy (Unknown is not); a service is up by the low/high
// watermark hysteresis; a unicast VIP is active while any of its services is
// up, an anycast one while all are; both nodes hold the same IPVS services
// and run the same checks, and only the LB interface (with the VRRP MAC and
// the VIPs on it) follows HA. Where this package differs from Seesaw it
// says so.
//
// What a config change costs the kernel. The NCC changes in place whatever
// IPVS lets it change: a service's scheduler and its flags, persistence,
// one-packet; a destination's weight, thresholds and forwarding method.
// So a reload that changes those (or a backend's weight, or an entry's mode)
// is a few in-place writes, and an unchanged vserver none. Only an object's
// identity cannot change in place, and then the old one is deleted and the
// new one added, which ends the connections it carried:
//   - a service's identity (Service.Key): its family, VIP address,
//     protocol and port, or its firewall mark; so a changed VIP, an entry's
//     protocol or port changed, or use_fwm turned on or off (address
//     services become one firewall-mark service, or back);
//   - a destination's identity: its address and port; so a backend
//     re-addressed, or an entry's port changed (its destinations' ports
//     follow it).
//
// Seesaw tore a whole vserver down and rebuilt it for more (a change of
// mode, of the number of entries); here an entry added or removed touches
// that entry's services alone.
package dataplane

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/seesawlb/seesaw/engine/config"
	"github.com/seesawlb/seesaw/ncc/vocab"
	configpb "github.com/seesawlb/seesaw/proto/config"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// Overrides are the operators' overrides by target name: a vserver's name,
// a backend's fqdn, a destination's name ("<vserver>/<ip:port>/<proto>").
// OVERRIDE_DEFAULT (or absence) leaves the config's word.
type Overrides struct {
	Vservers     map[string]enginepb.OverrideState
	Backends     map[string]enginepb.OverrideState
	Destinations map[string]enginepb.OverrideState
}

// apply is Seesaw's rule: an override, when set, wins over the config.
func apply(o enginepb.OverrideState, config bool) bool {
	switch o {
	case enginepb.OverrideState_OVERRIDE_ENABLED:
		return true
	case enginepb.OverrideState_OVERRIDE_DISABLED:
		return false
	}
	return config
}

// Input is what Derive needs.
type Input struct {
	Engine  *config.Engine
	Cluster *config.Cluster
	Node    *config.Node // this node, from Cluster
	// Overrides may be the zero value.
	Overrides Overrides
	// Marks are the firewall marks in use, by what they mark (MarkKey):
	// a previous Model's, or those the engine kept across a restart. A
	// mark stays with its key while the key is wanted; nil starts afresh.
	Marks map[string]uint32
}

// Family is an address family of the data plane.
type Family int

// The two families, in the order everything is listed.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

var families = []Family{IPv4, IPv6}

func (f Family) String() string {
	if f == IPv6 {
		return "inet6"
	}
	return "inet"
}

func (f Family) proto() nccpb.Family {
	if f == IPv6 {
		return nccpb.Family_INET6
	}
	return nccpb.Family_INET
}

func (f Family) of(h config.Host) netip.Prefix {
	if f == IPv6 {
		return h.IPv6
	}
	return h.IPv4
}

func (f Family) addr(a config.Addrs) netip.Addr {
	if f == IPv6 {
		return a.IPv6
	}
	return a.IPv4
}

// Model is a config derived for this node with the overrides applied; it
// changes with the config and the overrides, never with health or HA.
type Model struct {
	Engine  *config.Engine
	Cluster *config.Cluster
	Node    *config.Node

	Vservers []*Vserver
	// Checks is the full check set for the healthcheck process, by id.
	Checks *hcpb.CheckSet
	// CheckInfo tells, for each check id, what it is for people and which
	// destinations its result decides.
	CheckInfo map[uint64]*CheckInfo
	// Marks are the firewall marks in use, by MarkKey.
	Marks map[string]uint32
	// Backends are the backends of every vserver by fqdn, in first-seen
	// order, with the destinations they back.
	Backends []*Backend
	// Warnings are findings about this node's data plane that do not stop
	// it, for the engine's status.
	Warnings []string

	// static is the part of the desired state that depends on neither
	// health nor HA.
	static staticState
}

type staticState struct {
	vlans       []*nccpb.VLAN
	sysctls     map[string]string
	nft         *nccpb.NFTState
	syncDaemons []*nccpb.SyncDaemon
	timeouts    *nccpb.IPVSTimeouts
	natGateways []netip.Prefix // held while master
	checkSvcs   []*nccpb.Service
	clusterVIPs []*nccpb.VIP
	serviceVIPs []*nccpb.VIP // always-on anycast monitoring addresses
	rules       []*nccpb.Rule
	lbRoutes    []*nccpb.Route // only while the LB interface is up
	conntrackd  *nccpb.Conntrackd
}

// Vserver is a vserver as this node serves it.
type Vserver struct {
	Config        *config.Vserver
	ConfigEnabled bool
	Override      enginepb.OverrideState
	// Enabled: the config (or an override) enables it and this node
	// serves vservers at all.
	Enabled  bool
	Services []*Service
	VIPs     []*VIP
	Warnings []string
}

// VIP is one address of a vserver.
type VIP struct {
	Family Family
	Addr   netip.Prefix // as placed: with the prefix of its network, or a host prefix
	Type   config.VIPType
	Link   string // where it goes
	VLAN   uint16 // the VLAN whose interface holds it, 0 for none
	Source netip.Addr
}

// Service is one IPVS service of a vserver: an entry in one family, or with
// use_fwm all entries in one family.
type Service struct {
	Family Family
	Entry  *config.Entry // the entry; for use_fwm the first, whose settings apply
	VIP    netip.Addr
	Fwmark uint32 // use_fwm only
	// Spec is the service as IPVS is to hold it, without destinations.
	Spec         *nccpb.Service
	Destinations []*Destination
	Quiescent    bool
	key          string
}

// Key names the service uniquely: "inet TCP 192.0.2.10:80" or "inet
// FWM 300" (its IPVS identity).
func (s *Service) Key() string { return s.key }

// Destination is one backend of one service.
type Destination struct {
	Name          string // "<vserver>/<ip:port>/<proto>"
	Backend       *config.Backend
	Addr          netip.Addr
	Port          uint16
	ConfigEnabled bool
	Override      enginepb.OverrideState // the destination's own, else the backend's
	Enabled       bool
	// InService counts in the watermark denominator (Seesaw: not PROPOSED
	// or BUILDING, so disabled backends still count).
	InService bool
	Checks    []uint64 // ids of the checks that decide it
	Spec      *nccpb.Destination
}

// Backend is a backend across every vserver that has it.
type Backend struct {
	FQDN          string
	Host          config.Host
	ConfigEnabled bool
	Override      enginepb.OverrideState
	Destinations  []*Destination
}

// CheckInfo is what a check is for.
type CheckInfo struct {
	ID           uint64
	Name         string // Seesaw's "<TYPE>/<port>"
	Backend      string // fqdn
	Vservers     []string
	Destinations []string // names
}

// MarkKey names what a firewall mark marks: a use_fwm vserver's services of
// one family, or the checks of one mode that travel to one backend.
func vserverMarkKey(name string, f Family) string { return fmt.Sprintf("vserver %s %s", name, f) }

func checkMarkKey(backend netip.Addr, mode configpb.Healthcheck_Mode) string {
	return fmt.Sprintf("check %s %s", backend, mode)
}

// Derive builds the Model of in. It never fails: what cannot be served is
// left out and said in Warnings (the config was validated before).
func Derive(in Input) *Model {
	m := &Model{Engine: in.Engine, Cluster: in.Cluster, Node: in.Node, CheckInfo: map[uint64]*CheckInfo{}}
	c := in.Cluster
	serving := in.Node != nil && in.Node.VserversEnabled
	if in.Node != nil && !serving {
		m.Warnings = append(m.Warnings, fmt.Sprintf("node %s has status %s: it serves no vservers and no VLANs", in.Node.FQDN, statusName(in.Node.Status)))
	}

	// Marks: what is wanted is known only once the vservers are walked, so
	// the walk asks for marks by key and the allocation is settled after,
	// keeping the earlier marks and then placing new keys.
	alloc := newMarks(in.Marks)

	backends := map[string]*Backend{}
	backendOf := func(b *config.Backend) *Backend {
		if bk, ok := backends[b.FQDN]; ok {
			return bk
		}
		bk := &Backend{FQDN: b.FQDN, Host: b.Host, ConfigEnabled: b.Enabled, Override: in.Overrides.Backends[b.FQDN]}
		backends[b.FQDN] = bk
		m.Backends = append(m.Backends, bk)
		return bk
	}

	checks := &checkSet{byKey: map[string]*hcpb.Check{}, info: m.CheckInfo}
	for _, cv := range c.Vservers {
		v := &Vserver{Config: cv, ConfigEnabled: cv.Enabled, Override: in.Overrides.Vservers[cv.Name]}
		v.Enabled = serving && apply(v.Override, cv.Enabled)
		m.Vservers = append(m.Vservers, v)
		for _, f := range families {
			vip := f.of(cv.Address)
			if !vip.IsValid() {
				continue
			}
			m.deriveFamily(v, f, vip.Addr(), in.Overrides, alloc, backendOf, checks)
		}
		if v.Enabled {
			m.placeVIPs(v)
		}
		for _, b := range cv.Backends {
			backendOf(b) // backends without a destination of a family still show
		}
	}
	alloc.settle()
	m.Marks = alloc.marks
	// Now every mark is known: fill them in.
	for _, v := range m.Vservers {
		if !v.Config.UseFWM {
			continue
		}
		for _, s := range v.Services {
			s.Fwmark = alloc.get(vserverMarkKey(v.Config.Name, s.Family))
			s.Spec.Fwmark = s.Fwmark
			s.key = fmt.Sprintf("%s FWM %d", s.Family, s.Fwmark)
		}
	}
	m.Checks = checks.finish(alloc)
	m.deriveStatic(alloc)
	slices.SortStableFunc(m.Backends, func(a, b *Backend) int { return cmp.Compare(a.FQDN, b.FQDN) })
	return m
}

func statusName(s configpb.Host_Status) string { return s.String() }

// deriveFamily adds v's services of one family, with their destinations
// and the checks that decide them.
func (m *Model) deriveFamily(v *Vserver, f Family, vip netip.Addr, ov Overrides, alloc *marks,
	backendOf func(*config.Backend) *Backend, checks *checkSet) {
	cv := v.Config
	var bes []*config.Backend
	for _, b := range cv.Backends {
		if f.of(b.Host).IsValid() {
			bes = append(bes, b)
		}
	}
	if len(bes) == 0 || len(cv.Entries) == 0 {
		return
	}
	entries := cv.Entries
	if cv.UseFWM {
		// One firewall-mark service per family balances every entry, with
		// the first entry's settings (as Seesaw: entries of a use_fwm
		// vserver must agree, and config check says so when they do not).
		entries = entries[:1]
		alloc.want(vserverMarkKey(cv.Name, f))
	}
	for _, e := range entries {
		s := &Service{Family: f, Entry: e, VIP: vip, Quiescent: e.Quiescent}
		s.Spec = serviceSpec(f, e)
		if !cv.UseFWM { // a use_fwm service gets its mark once the marks settle
			s.Spec.Address = vip.String()
			s.Spec.Protocol = protocol(e.Protocol)
			s.Spec.Port = uint32(e.Port)
			s.key = fmt.Sprintf("%s %s %s", f, e.Protocol, netip.AddrPortFrom(vip, e.Port))
		}
		for _, b := range bes {
			addr := f.of(b.Host).Addr()
			d := &Destination{Backend: b, Addr: addr, ConfigEnabled: b.Enabled, InService: b.InService}
			if cv.UseFWM {
				d.Name = fmt.Sprintf("%s/%s/FWM", cv.Name, addr)
			} else {
				d.Port = e.Port
				d.Name = fmt.Sprintf("%s/%s/%s", cv.Name, netip.AddrPortFrom(addr, e.Port), e.Protocol)
			}
			bk := backendOf(b)
			d.Override = bk.Override
			if o := ov.Destinations[d.Name]; o != enginepb.OverrideState_OVERRIDE_DEFAULT {
				d.Override = o
			}
			d.Enabled = apply(d.Override, b.Enabled)
			if d.Override == enginepb.OverrideState_OVERRIDE_ENABLED {
				d.InService = true
			}
			d.Spec = &nccpb.Destination{
				Address:        addr.String(),
				Port:           uint32(d.Port),
				Forward:        forward(e.Mode),
				Weight:         b.Weight,
				UpperThreshold: uint32(e.UThreshold),
				LowerThreshold: uint32(e.LThreshold),
			}
			if d.Override == enginepb.OverrideState_OVERRIDE_DRAIN {
				// Drained: kept in IPVS at weight 0, so its established
				// connections finish and new ones go elsewhere.
				d.Spec.Weight = 0
			}
			bk.Destinations = append(bk.Destinations, d)
			s.Destinations = append(s.Destinations, d)
		}
		v.Services = append(v.Services, s)
	}
	if !v.Enabled {
		return // a disabled vserver's checks are not run (Seesaw drops them)
	}
	// The checks: the vserver's own against every destination of the
	// backend in this family, each entry's against its destination (all
	// of the family's with use_fwm, where one service carries every
	// entry).
	for _, b := range bes {
		var dests []*Destination
		for _, s := range v.Services {
			if s.Family != f {
				continue
			}
			for _, d := range s.Destinations {
				if d.Backend == b {
					dests = append(dests, d)
				}
			}
		}
		if len(enabledOnly(dests)) == 0 {
			continue // no enabled destination of this backend: nothing to check
		}
		addr := f.of(b.Host).Addr()
		for _, hc := range cv.Healthchecks {
			checks.add(hc, vip, addr, alloc, enabledOnly(dests))
		}
		for i, e := range cv.Entries {
			ds := enabledOnly(dests)
			if !cv.UseFWM {
				ds = enabledOnly(dests[i : i+1])
			}
			for _, hc := range e.Healthchecks {
				checks.add(hc, vip, addr, alloc, ds)
			}
		}
	}
}

func enabledOnly(ds []*Destination) []*Destination {
	var out []*Destination
	for _, d := range ds {
		if d.Enabled {
			out = append(out, d)
		}
	}
	return out
}

func protocol(p configpb.Protocol) nccpb.Protocol {
	switch p {
	case configpb.Protocol_UDP:
		return nccpb.Protocol_UDP
	case configpb.Protocol_SCTP:
		return nccpb.Protocol_SCTP
	}
	return nccpb.Protocol_TCP
}

func forward(m configpb.VserverEntry_Mode) nccpb.Forward {
	switch m {
	case configpb.VserverEntry_NAT:
		return nccpb.Forward_FORWARD_NAT
	case configpb.VserverEntry_TUN:
		return nccpb.Forward_FORWARD_TUNNEL
	}
	return nccpb.Forward_FORWARD_DSR
}

// serviceSpec is an entry's IPVS service settings in family f.
func serviceSpec(f Family, e *config.Entry) *nccpb.Service {
	s := &nccpb.Service{
		Family:    f.proto(),
		Scheduler: strings.ToLower(e.Scheduler.String()),
		OnePacket: e.OnePacket,
	}
	switch e.Scheduler {
	case configpb.VserverEntry_SH, configpb.VserverEntry_MH:
		// As Seesaw: fall back to another destination when the hashed one
		// is unavailable, and hash the source port too.
		s.Flags = vocab.SchedFallback | vocab.SchedPort
	}
	if e.Persistence > 0 {
		s.PersistenceTimeout = uint32(e.Persistence)
		s.PersistenceNetmask = 32
		if f == IPv6 {
			s.PersistenceNetmask = 128
		}
	}
	return s
}

// placeVIPs decides where each of an enabled vserver's VIPs goes: a
// unicast VIP on the LB interface, or on the VLAN interface whose subnet
// holds it, with that network's prefix length; a dedicated or anycast VIP
// on the dummy interface as a host address.
//
// Seesaw failed the whole engine (log.Fatalf, its issues #46 and #107) for
// a unicast VIP that no interface's subnet holds; here it goes on the LB
// interface as a host address, where the kernel answers ARP for it and a
// router can route to it.
func (m *Model) placeVIPs(v *Vserver) {
	e := m.Engine
	for _, f := range families {
		p := f.of(v.Config.Address)
		if !p.IsValid() {
			continue
		}
		a := p.Addr()
		vip := &VIP{Family: f, Type: m.Cluster.ClassifyVIP(a, e.AnycastRanges)}
		switch vip.Type {
		case config.UnicastVIP:
			vip.Link, vip.Addr = e.LBInterface, netip.PrefixFrom(a, a.BitLen())
			if n, ok := m.lbNetwork(f); ok && n.Contains(a) {
				vip.Addr = netip.PrefixFrom(a, n.Bits())
			} else {
				for _, vl := range m.Cluster.VLANs {
					if n := f.of(vl.Host); n.IsValid() && n.Masked().Contains(a) {
						vip.Link, vip.VLAN, vip.Addr = vlanName(e.LBInterface, vl.ID), vl.ID, netip.PrefixFrom(a, n.Bits())
						break
					}
				}
			}
		default:
			vip.Link, vip.Addr = e.DummyInterface, netip.PrefixFrom(a, a.BitLen())
		}
		// DSR and TUN checks dial the VIP; the backend holds the VIP too,
		// so the probe must not come from it (see nccpb.VIP.source).
		if m.hasTunnelledChecks(v, f) {
			if src := f.addr(e.Node); src.IsValid() {
				vip.Source = src
			} else {
				v.Warnings = append(v.Warnings, fmt.Sprintf("%s has DSR or TUN checks but seesaw.cfg gives this node no %s address to send them from; the backend may take them for its own", a, f))
			}
		}
		v.VIPs = append(v.VIPs, vip)
	}
}

func (m *Model) hasTunnelledChecks(v *Vserver, f Family) bool {
	if !slices.ContainsFunc(v.Config.Backends, func(b *config.Backend) bool { return f.of(b.Host).IsValid() }) {
		return false
	}
	tun := func(hcs []*config.Healthcheck) bool {
		return slices.ContainsFunc(hcs, func(h *config.Healthcheck) bool { return h.Mode != configpb.Healthcheck_PLAIN })
	}
	if tun(v.Config.Healthchecks) {
		return true
	}
	for _, e := range v.Config.Entries {
		if tun(e.Healthchecks) {
			return true
		}
	}
	return false
}

// lbNetwork is the network of the LB interface in family f: this node's
// own network (the LB NIC shares its L2 with the node NIC, as Seesaw
// requires), else the cluster VIP's.
func (m *Model) lbNetwork(f Family) (netip.Prefix, bool) {
	if m.Node != nil {
		if p := f.of(m.Node.Host); p.IsValid() && p.Bits() < p.Addr().BitLen() {
			return p.Masked(), true
		}
	}
	if p := f.of(m.Cluster.VIP); p.IsValid() && p.Bits() < p.Addr().BitLen() {
		return p.Masked(), true
	}
	return netip.Prefix{}, false
}

func vlanName(parent string, id uint16) string { return fmt.Sprintf("%s.%d", parent, id) }

// deriveStatic builds what depends on neither health nor HA.
func (m *Model) deriveStatic(alloc *marks) {
	e, c := m.Engine, m.Cluster
	st := &m.static
	serving := m.Node != nil && m.Node.VserversEnabled
	ifaces := []string{e.NodeInterface, e.LBInterface}
	if serving {
		for _, vl := range c.VLANs {
			v := &nccpb.VLAN{Id: uint32(vl.ID), Parent: e.LBInterface}
			for _, p := range []netip.Prefix{vl.Host.IPv4, vl.Host.IPv6} {
				if p.IsValid() {
					v.Addresses = append(v.Addresses, p.String())
				}
			}
			st.vlans = append(st.vlans, v)
			ifaces = append(ifaces, vlanName(e.LBInterface, vl.ID))
		}
	}
	st.sysctls = vocab.ApplianceSysctls(ifaces...)
	st.nft = &nccpb.NFTState{}
	nat := false
	for _, v := range m.Vservers {
		if !v.Enabled {
			continue
		}
		for _, s := range v.Services {
			if s.Entry.Mode == configpb.VserverEntry_NAT && s.Entry.SourceNAT {
				nat = true
			}
		}
		m.deriveNFT(v)
	}
	if nat {
		st.sysctls[vocab.ConntrackSysctl] = "1"
	}
	m.deriveConnSync()
	var ctWarn string
	if st.conntrackd, ctWarn = deriveConntrackd(e, nat); ctWarn != "" {
		m.Warnings = append(m.Warnings, ctWarn)
	}
	// The floating gateway of NAT without source NAT, on the backends'
	// network, while this node is master: the backends route their
	// replies through it.
	for _, p := range []netip.Prefix{e.NATGateway.IPv4, e.NATGateway.IPv6} {
		if p.IsValid() {
			if gw := e.GatewayInterface; gw != "" && gw != e.LBInterface {
				st.natGateways = append(st.natGateways, p)
				continue
			}
			// On the LB interface's own network it is a VIP like the
			// cluster VIP: the interface is down on the backup.
			st.clusterVIPs = append(st.clusterVIPs, &nccpb.VIP{Address: p.String(), Placement: nccpb.VIPPlacement_VIP_ON_LB_INTERFACE,
				Interface: e.LBInterface, Announce: true})
		}
	}
	// The cluster VIP on the LB interface with the node network's prefix
	// (Seesaw's LBInterfaceInit), announced while this node is master;
	// policy routing for it and for the unicast VIPs on the LB interface,
	// so that their traffic, and the kernel's ARP answers for them, use
	// the LB interface (Seesaw's "arpflux" rules, here for IPv6 too).
	table := uint32(e.RoutingTableID)
	for _, f := range families {
		p := f.of(c.VIP)
		if !p.IsValid() {
			continue
		}
		a := p.Addr()
		st.clusterVIPs = append(st.clusterVIPs, &nccpb.VIP{Address: p.String(), Placement: nccpb.VIPPlacement_VIP_ON_LB_INTERFACE, Interface: e.LBInterface, Announce: true})
		if table == 0 {
			continue
		}
		host := netip.PrefixFrom(a, a.BitLen()).String()
		st.rules = append(st.rules,
			&nccpb.Rule{Family: f.proto(), Table: table, To: host},
			&nccpb.Rule{Family: f.proto(), Table: table, From: host})
		if n, ok := m.lbNetwork(f); ok {
			st.lbRoutes = append(st.lbRoutes, &nccpb.Route{Family: f.proto(), Table: table, Destination: n.String(), Device: e.LBInterface})
		}
	}
	if table != 0 {
		seen := map[string]bool{}
		for _, v := range m.Vservers {
			for _, vip := range v.VIPs {
				host := netip.PrefixFrom(vip.Addr.Addr(), vip.Addr.Addr().BitLen()).String()
				if vip.Link != e.LBInterface || seen[host] || isClusterVIP(c, vip.Addr.Addr()) {
					continue
				}
				seen[host] = true
				st.rules = append(st.rules, &nccpb.Rule{Family: vip.Family.proto(), Table: table, From: host})
			}
		}
	}
	if e.AnycastEnabled && m.Node != nil && m.Node.AnycastEnabled {
		for _, a := range append(slices.Clone(e.ServiceAnycastIPv4), e.ServiceAnycastIPv6...) {
			st.serviceVIPs = append(st.serviceVIPs, &nccpb.VIP{Address: netip.PrefixFrom(a, a.BitLen()).String(), Placement: nccpb.VIPPlacement_VIP_ON_DUMMY, Interface: e.DummyInterface})
		}
	}
	// The services DSR and TUN checks travel through: one firewall-mark
	// service per (backend, mode) with that backend alone, so a probe sent
	// to the VIP with the mark reaches that backend as client traffic
	// would (Seesaw's engine/healthcheck.go).
	for _, ck := range m.Checks.Upsert {
		if ck.Fwmark == 0 {
			continue
		}
		if seen := slices.ContainsFunc(st.checkSvcs, func(s *nccpb.Service) bool { return s.Fwmark == ck.Fwmark }); seen {
			continue
		}
		a := netip.MustParseAddr(ck.Address)
		fam := IPv4
		if a.Is6() {
			fam = IPv6
		}
		fwd := nccpb.Forward_FORWARD_DSR
		if ck.Mode == hcpb.CheckMode_TUN {
			fwd = nccpb.Forward_FORWARD_TUNNEL
		}
		st.checkSvcs = append(st.checkSvcs, &nccpb.Service{
			Family: fam.proto(), Fwmark: ck.Fwmark, Scheduler: "rr",
			Destinations: []*nccpb.Destination{{Address: a.String(), Forward: fwd, Weight: 1}},
		})
	}
	slices.SortFunc(st.checkSvcs, func(a, b *nccpb.Service) int { return cmp.Compare(a.Fwmark, b.Fwmark) })
}

// deriveConnSync adds IPVS connection sync, for a node with a peer: both
// sync daemons, always (a takeover then starts nothing, and a node that
// comes back receives at once), on the node interface with the VRID as
// sync id unless seesaw.cfg says otherwise; the sysctls that make the
// sync carry every connection; and the connection timeouts, set alike on
// both nodes.
func (m *Model) deriveConnSync() {
	e, st := m.Engine, &m.static
	cs := e.ConnSync
	if !cs.Enabled || !e.Peer.IPv4.IsValid() && !e.Peer.IPv6.IsValid() {
		return
	}
	iface := cmp.Or(cs.Interface, e.NodeInterface)
	id := uint32(cmp.Or(cs.SyncID, e.VRID))
	for _, r := range []nccpb.SyncDaemon_Role{nccpb.SyncDaemon_MASTER, nccpb.SyncDaemon_BACKUP} {
		st.syncDaemons = append(st.syncDaemons, &nccpb.SyncDaemon{Role: r, Interface: iface, SyncId: id, MaxLength: uint32(cs.MaxLength)})
	}
	maps.Copy(st.sysctls, vocab.ConnSyncSysctls(vocab.SyncSettings{
		RefreshPeriodSeconds: int(cs.RefreshPeriod / time.Second), Retries: cs.Retries, SockSize: cs.SockSize, Sloppy: cs.Sloppy,
	}))
	st.timeouts = &nccpb.IPVSTimeouts{Tcp: uint32(cs.TCPTimeout / time.Second), TcpFin: uint32(cs.TCPFinTimeout / time.Second), Udp: uint32(cs.UDPTimeout / time.Second)}
}

func isClusterVIP(c *config.Cluster, a netip.Addr) bool {
	return c.VIP.IPv4.IsValid() && c.VIP.IPv4.Addr() == a || c.VIP.IPv6.IsValid() && c.VIP.IPv6.Addr() == a
}

// deriveNFT adds an enabled vserver's packet rules: the marks of a use_fwm
// vserver's entries, and the source NAT of its NAT entries. Seesaw's NAT is
// full NAT: the backends see the cluster VIP as the client and reply to it,
// so they need no route back through the load balancer.
func (m *Model) deriveNFT(v *Vserver) {
	st := &m.static
	for _, s := range v.Services {
		entries := []*config.Entry{s.Entry}
		if v.Config.UseFWM {
			entries = v.Config.Entries
		}
		for _, e := range entries {
			if v.Config.UseFWM {
				st.nft.Fwmarks = append(st.nft.Fwmarks, &nccpb.FwmarkRule{Family: s.Family.proto(), Address: s.VIP.String(),
					Protocol: protocol(e.Protocol), Port: uint32(e.Port), Mark: s.Fwmark})
			}
			if e.Mode != configpb.VserverEntry_NAT {
				continue
			}
			if !e.SourceNAT {
				// NAT without source NAT: the backends see the client and
				// send their replies through the cluster VIP; drop those
				// IPVS has no connection for (see nccpb.ReplyDropRule).
				for _, d := range s.Destinations {
					port := d.Port
					if port == 0 {
						port = e.Port // use_fwm: the entry's port
					}
					st.nft.ReplyDrops = append(st.nft.ReplyDrops, &nccpb.ReplyDropRule{Family: s.Family.proto(),
						Address: d.Addr.String(), Protocol: protocol(e.Protocol), Port: uint32(port)})
				}
				if !s.Family.of(m.Cluster.VIP).IsValid() {
					v.Warnings = append(v.Warnings, fmt.Sprintf("NAT %s without source NAT: the cluster has no %s VIP for the backends to route their replies through; they need a route through this node that follows the master", s.key, s.Family))
				}
				continue
			}
			src := s.Family.of(m.Cluster.VIP)
			to := netip.Addr{}
			if src.IsValid() {
				to = src.Addr()
			} else if a := s.Family.addr(m.Engine.Node); a.IsValid() {
				to = a
				v.Warnings = append(v.Warnings, fmt.Sprintf("NAT %s: the cluster has no %s VIP; source NAT to this node's address %s, which does not move on failover", s.key, s.Family, a))
			} else {
				v.Warnings = append(v.Warnings, fmt.Sprintf("NAT %s: the cluster has no %s VIP and this node no %s address: no source NAT, so the backends must route replies through this node", s.key, s.Family, s.Family))
				continue
			}
			st.nft.Snat = append(st.nft.Snat, &nccpb.SNATRule{Family: s.Family.proto(), Vip: s.VIP.String(),
				Protocol: protocol(e.Protocol), Port: uint32(e.Port), ToSource: to.String()})
		}
	}
}

// checkSet collects the checks of a Model, one per hcpb.Key.
type checkSet struct {
	byKey map[string]*hcpb.Check
	dests map[string][]*Destination
	info  map[uint64]*CheckInfo
	order []string
}

func (cs *checkSet) add(hc *config.Healthcheck, vip, addr netip.Addr, alloc *marks, dests []*Destination) {
	if len(dests) == 0 {
		return
	}
	ck := &hcpb.Check{
		Type:      hcpb.CheckType(hcpb.CheckType_value[hc.Type.String()]),
		Address:   addr.String(),
		Port:      uint32(hc.Port),
		Mode:      hcpb.CheckMode(hcpb.CheckMode_value[hc.Mode.String()]),
		Interval:  durationpb.New(hc.Interval),
		Timeout:   durationpb.New(hc.Timeout),
		Retries:   int32(hc.Retries),
		Rise:      1, // Seesaw v2: one success makes a check healthy again
		Fall:      int32(hc.Retries) + 1,
		Send:      hc.Send,
		Receive:   hc.Receive,
		Code:      int32(hc.Code),
		Method:    hc.Method,
		Proxy:     hc.Proxy,
		TlsVerify: hc.TLSVerify,
	}
	if hc.Mode != configpb.Healthcheck_PLAIN {
		// Its mark is known once every mark is wanted (finish); the key
		// has the backend and the mode, which the mark stands for.
		ck.Target = vip.String()
		alloc.want(checkMarkKey(addr, hc.Mode))
	}
	key := hcpb.Key(ck)
	if cs.dests == nil {
		cs.dests = map[string][]*Destination{}
	}
	if _, ok := cs.byKey[key]; !ok {
		cs.byKey[key] = ck
		cs.order = append(cs.order, key)
		ck.Name = fmt.Sprintf("%s/%d %s", ck.Type, ck.Port, addr)
		if ck.Target != "" {
			ck.Name += fmt.Sprintf(" via %s %s", ck.Target, ck.Mode)
		}
	}
	cs.dests[key] = append(cs.dests[key], dests...)
}

// finish settles the checks' marks and ids and records which destinations
// each decides. An id is a hash of the check's hcpb.Key, so a check keeps
// its id while it is the same check.
func (cs *checkSet) finish(alloc *marks) *hcpb.CheckSet {
	set := &hcpb.CheckSet{Full: true}
	used := map[uint64]string{}
	for _, key := range cs.order {
		ck := cs.byKey[key]
		if ck.Target != "" {
			a := netip.MustParseAddr(ck.Address)
			ck.Fwmark = alloc.get(checkMarkKey(a, configpb.Healthcheck_Mode(ck.Mode)))
		}
		k := hcpb.Key(ck)
		id := hashID(k)
		// A collision of 64-bit hashes is not expected; if one happens the
		// later check (in config order) takes the next free id.
		for used[id] != "" && used[id] != k {
			id++
			if id == 0 {
				id = 1
			}
		}
		ds := cs.dests[key]
		used[id] = k
		ck.Id = id
		set.Upsert = append(set.Upsert, ck)
		info := cs.info[id]
		if info == nil {
			info = &CheckInfo{ID: id, Name: fmt.Sprintf("%s/%d", ck.Type, ck.Port)}
			cs.info[id] = info
		}
		for _, d := range ds {
			if !slices.Contains(d.Checks, id) {
				d.Checks = append(d.Checks, id)
			}
			if !slices.Contains(info.Destinations, d.Name) {
				info.Destinations = append(info.Destinations, d.Name)
			}
			if info.Backend == "" {
				info.Backend = d.Backend.FQDN
			}
			vs, _, _ := strings.Cut(d.Name, "/")
			if !slices.Contains(info.Vservers, vs) {
				info.Vservers = append(info.Vservers, vs)
			}
		}
	}
	slices.SortFunc(set.Upsert, func(a, b *hcpb.Check) int { return cmp.Compare(a.Id, b.Id) })
	return set
}

// hashID is a nonzero 64-bit FNV-1a hash of key.
func hashID(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	if id := h.Sum64(); id != 0 {
		return id
	}
	return 1
}
