package keepalived

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/config"
	configpb "github.com/seesawlb/seesaw/proto/config"
)

// Input is one node's keepalived configuration, parsed.
type Input struct {
	// Stmts is the parsed configuration (Parse, ParseFile).
	Stmts []*Stmt
}

// ImportOptions are what keepalived does not say.
type ImportOptions struct {
	// Name is the cluster's name ([cluster] name). Empty: the first
	// vrrp_instance's name, lower-cased.
	Name string
	// ClusterVIP is Seesaw's cluster VIP (seesaw_vip), at most one per
	// family. Empty: the first virtual_ipaddress of each family that no
	// virtual_server uses. keepalived has no such address when every VIP
	// carries a virtual server; then it must be given.
	ClusterVIP []netip.Prefix
	// FWMarks say what the firewall rules behind each "virtual_server
	// fwmark N" mark: keepalived never sees it. A fwmark virtual server
	// without one is listed as unmapped.
	FWMarks []FWMark
}

// FWMark is what packets a keepalived firewall mark stands for: the VIPs
// (at most one per family) and the protocols and ports. It becomes a
// vserver with use_fwm: true, whose marks Seesaw sets itself.
type FWMark struct {
	Mark  uint32
	Addrs []netip.Addr
	Ports []ProtoPort
}

// ProtoPort is "tcp/443".
type ProtoPort struct {
	Protocol string // TCP, UDP or SCTP
	Port     int
}

// ParseFWMark reads the command line's form of an FWMark:
// "MARK ADDR [ADDR] PROTO/PORT [PROTO/PORT...]", e.g. "7 192.0.2.30 tcp/80 tcp/443".
func ParseFWMark(s string) (FWMark, error) {
	f := strings.Fields(s)
	var fm FWMark
	if len(f) < 3 {
		return fm, fmt.Errorf("%q: want MARK ADDR [ADDR] PROTO/PORT..., e.g. \"7 192.0.2.30 tcp/80 tcp/443\"", s)
	}
	n, err := strconv.ParseUint(f[0], 0, 32)
	if err != nil || n == 0 {
		return fm, fmt.Errorf("%q: %q is not a firewall mark (1-4294967295)", s, f[0])
	}
	fm.Mark = uint32(n)
	for _, w := range f[1:] {
		if a, err := netip.ParseAddr(w); err == nil && a.Zone() == "" {
			a = a.Unmap()
			if slices.ContainsFunc(fm.Addrs, func(b netip.Addr) bool { return b.Is4() == a.Is4() }) {
				return fm, fmt.Errorf("%q: one address per family (a Seesaw vserver has one VIP per family)", s)
			}
			fm.Addrs = append(fm.Addrs, a)
			continue
		}
		proto, port, ok := strings.Cut(w, "/")
		proto = strings.ToUpper(proto)
		n, perr := strconv.Atoi(port)
		if !ok || (proto != "TCP" && proto != "UDP" && proto != "SCTP") || perr != nil || n < 1 || n > 65535 {
			return fm, fmt.Errorf("%q: %q is neither an IP address nor PROTO/PORT (tcp/443)", s, w)
		}
		fm.Ports = append(fm.Ports, ProtoPort{Protocol: proto, Port: n})
	}
	if len(fm.Addrs) == 0 || len(fm.Ports) == 0 {
		return fm, fmt.Errorf("%q: needs at least one address and one PROTO/PORT", s)
	}
	return fm, nil
}

// Engine is one node's seesaw.cfg.
type Engine struct {
	// Label says which configuration it came from, for its header comment.
	Label      string
	Name       string
	Node, Peer config.Addrs
	VIP        config.Addrs
	VRID       int
	// AdvertMillis is advert_int in milliseconds ([cluster]
	// advert_interval); 0 leaves Seesaw's default.
	AdvertMillis  int
	UseVMAC       bool
	NodeInterface string
	LBInterface   string
	// NATGateway is [nat_gateway]: the gateway of NAT backends that
	// keepalived floated as a virtual_ipaddress on their link
	// (GatewayInterface). Invalid: none.
	NATGateway       struct{ IPv4, IPv6 netip.Prefix }
	GatewayInterface string
	// Guessed lists what was assumed rather than read, for comments.
	Guessed []string
}

// Result is an imported configuration.
type Result struct {
	Cluster *configpb.Cluster
	// Engines holds this node's seesaw.cfg and, when its address is known,
	// the peer's.
	Engines []*Engine
	// Unmapped lists, in file order, every statement not carried over.
	Unmapped []Unmapped
	// Sources names each vserver's virtual_server lines, for comments in
	// cluster.pb.
	Sources map[string][]Pos
}

// Import maps one node's keepalived configuration, and optionally its
// peer's, to Seesaw's. With the peer's file the pair's addresses,
// priorities and interfaces come from each side; without it, from the
// unicast peers of this node's file.
func Import(self Input, peer *Input, o ImportOptions) (*Result, error) {
	a := read(self.Stmts)
	var b *file
	if peer != nil {
		b = read(peer.Stmts)
	}
	m := &mapper{o: o, self: a, peer: b, res: &Result{Sources: map[string][]Pos{}}}
	errs := slices.Clone(a.errs)
	if b != nil {
		errs = append(errs, b.errs...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	m.run()
	if len(m.errs) > 0 {
		return nil, m.errs
	}
	m.res.Unmapped = sortUnmapped(m.res.Unmapped)
	return m.res, nil
}

// sortUnmapped orders the list by file and line and drops repeats (one
// file given for both nodes, with conditional lines, is read twice).
func sortUnmapped(u []Unmapped) []Unmapped {
	slices.SortStableFunc(u, func(x, y Unmapped) int {
		if c := strings.Compare(x.Pos.File, y.Pos.File); c != 0 {
			return c
		}
		return x.Pos.Line - y.Pos.Line
	})
	return slices.Compact(u)
}

type mapper struct {
	o          ImportOptions
	self, peer *file
	res        *Result
	errs       config.Errors
}

func (m *mapper) errorf(p Pos, format string, args ...any) {
	m.errs = append(m.errs, config.Issue{File: p.File, Line: p.Line, Msg: fmt.Sprintf(format, args...)})
}

func (m *mapper) note(p Pos, what, why string) {
	m.res.Unmapped = append(m.res.Unmapped, Unmapped{Pos: p, What: what, Why: why})
}

// side is one node as the import sees it.
type side struct {
	f        *file
	fqdn     string
	addr     config.Addrs
	pos      [2]Pos // where addr.IPv4 and addr.IPv6 came from
	iface    string
	lbIface  string
	priority int
	prioPos  Pos
	state    string
}

func (m *mapper) run() {
	a := m.self
	m.res.Unmapped = append(m.res.Unmapped, a.unmapped...)
	m.res.Unmapped = append(m.res.Unmapped, a.vsUnmapped...)
	if m.peer != nil {
		m.res.Unmapped = append(m.res.Unmapped, m.peer.unmapped...)
	}
	if len(a.vrrp) == 0 {
		m.errs = append(m.errs, fmt.Errorf("keepalived: no vrrp_instance: Seesaw is a pair and needs the VRRP instance that moves the VIPs"))
		return
	}
	first := a.vrrp[0]
	if first.vrid == 0 {
		m.errorf(first.pos, "vrrp_instance %s has no virtual_router_id", first.name)
		return
	}
	for _, f := range []*file{a, m.peer} {
		if f == nil {
			continue
		}
		for i, in := range f.vrrp {
			if i > 0 && in.vrid != first.vrid && in.vrid != 0 {
				m.note(in.vridPos, fmt.Sprintf("virtual_router_id %d", in.vrid),
					fmt.Sprintf("Seesaw runs one VRRP router per pair: vrid %d (from %s) moves these VIPs too", first.vrid, first.vridPos))
			}
			if i > 0 && in.iface != "" && in.iface != f.vrrp[0].iface {
				m.note(in.pos, "interface "+in.iface, fmt.Sprintf("Seesaw has one node and one LB interface per node; %s (from the first vrrp_instance) was used", f.vrrp[0].iface))
			}
			if i > 0 && in.advert != f.vrrp[0].advert {
				m.note(in.advPos, fmt.Sprintf("advert_int %g", in.advert), fmt.Sprintf("one advert interval per pair: %g (from the first vrrp_instance) was used", f.vrrp[0].advert))
			}
		}
	}

	name := m.o.Name
	if name == "" {
		name = strings.ToLower(first.name)
		if name == "" {
			name = "keepalived"
		}
	}

	selfSide := m.side(a, "this node")
	var peerSide *side
	if m.peer != nil {
		if len(m.peer.vrrp) == 0 {
			m.errs = append(m.errs, fmt.Errorf("keepalived: the peer's file has no vrrp_instance"))
			return
		}
		peerSide = m.side(m.peer, "the peer")
		if pv := m.peer.vrrp[0]; pv.vrid != first.vrid {
			m.errorf(pv.vridPos, "virtual_router_id %d differs from %d at %s: the two files are not one pair", pv.vrid, first.vrid, first.vridPos)
		}
	} else {
		peerSide = m.unicastPeer(a)
	}
	if selfSide == nil {
		return
	}
	if peerSide != nil && peerSide.addr.IPv4 == selfSide.addr.IPv4 {
		m.errorf(peerSide.pos[0], "the peer's address %s is this node's own", peerSide.addr.IPv4)
		return
	}
	if len(m.errs) > 0 {
		return
	}

	// VIPs: those carrying virtual servers become vserver addresses; the
	// first of each family that carries none is the cluster VIP.
	used := map[netip.Addr]bool{}
	for _, vs := range a.vs {
		if vs.fwmark == 0 {
			used[vs.addr] = true
		}
	}
	for _, fm := range m.o.FWMarks {
		if !slices.ContainsFunc(a.vs, func(vs *virtualServer) bool { return vs.fwmark == fm.Mark }) {
			m.errs = append(m.errs, fmt.Errorf("keepalived: --fwmark %d: no virtual_server fwmark %d in the configuration", fm.Mark, fm.Mark))
		}
		for _, x := range fm.Addrs {
			used[x] = true
		}
	}
	var vips []vip
	for _, in := range a.vrrp {
		vips = append(vips, in.vips...)
	}
	natGW, isGW := m.natGateways(a, used, selfSide.lbIface)
	var clusterVIP [2]netip.Prefix // [0] v4, [1] v6
	for _, p := range m.o.ClusterVIP {
		clusterVIP[fam(p.Addr())] = p
	}
	for _, v := range vips {
		if used[v.prefix.Addr()] || isGW[v.prefix] {
			continue
		}
		i := fam(v.prefix.Addr())
		if !clusterVIP[i].IsValid() && len(m.o.ClusterVIP) == 0 {
			clusterVIP[i] = v.prefix
			continue
		}
		if clusterVIP[i] != v.prefix {
			m.note(v.pos, v.prefix.String(), "a VIP that carries no virtual_server; Seesaw holds only the cluster VIP and the vservers' VIPs")
		}
	}
	for i, p := range clusterVIP {
		if p.IsValid() && used[p.Addr()] {
			m.errs = append(m.errs, fmt.Errorf("keepalived: cluster VIP %s carries a virtual_server; Seesaw's cluster VIP must be an address of its own", p))
		}
		if p.IsValid() && (selfSide.addr.IPv4 == p.Addr() || selfSide.addr.IPv6 == p.Addr()) {
			m.errorf(selfSide.pos[i], "this node's address %s is also the cluster VIP", p.Addr())
		}
	}
	if !clusterVIP[0].IsValid() && !clusterVIP[1].IsValid() {
		m.errorf(first.pos, "every VIP of the VRRP instances carries a virtual_server, but Seesaw also needs a cluster VIP "+
			"(seesaw_vip: an address of its own that the master holds, and NAT backends' gateway): give one with --cluster-vip ADDR/LEN")
	}
	if len(m.errs) > 0 {
		return
	}

	c := &configpb.Cluster{
		SeesawVip: &configpb.Host{Fqdn: proto.String(name + "-vip"), Status: configpb.Host_PRODUCTION.Enum()},
	}
	if p := clusterVIP[0]; p.IsValid() {
		c.SeesawVip.Ipv4 = proto.String(p.String())
	}
	if p := clusterVIP[1]; p.IsValid() {
		c.SeesawVip.Ipv6 = proto.String(p.String())
	}
	sides := []*side{selfSide}
	if peerSide != nil {
		sides = append(sides, peerSide)
	}
	subnets := slices.Clone(vips)
	for _, p := range clusterVIP {
		if p.IsValid() {
			subnets = append(subnets, vip{prefix: p})
		}
	}
	for _, s := range sides {
		c.Node = append(c.Node, nodeHost(s, subnets))
	}
	m.priorities(sides)

	vsList := m.vservers(a, name)
	c.Vserver = vsList
	if m.peer != nil {
		pm := &mapper{o: m.o, self: m.peer, res: &Result{Sources: map[string][]Pos{}}}
		theirs := pm.vservers(m.peer, name)
		if !equalVservers(vsList, theirs) || len(pm.errs) > 0 {
			at := Pos{}
			if len(m.peer.vs) > 0 {
				at = m.peer.vs[0].pos
			} else if len(m.peer.vrrp) > 0 {
				at = m.peer.vrrp[0].pos
			}
			m.note(at, "virtual servers", "differ from this node's file; this node's were imported (Seesaw's pair serves one set)")
		}
	}
	m.res.Cluster = c

	useVMAC := first.useVMAC
	for i, s := range sides {
		e := &Engine{
			Label:         s.label(),
			Name:          name,
			Node:          s.addr,
			VRID:          first.vrid,
			AdvertMillis:  advertMillis(first.advert),
			UseVMAC:       useVMAC,
			NodeInterface: s.iface,
			LBInterface:   s.lbIface,
		}
		if p := clusterVIP[0]; p.IsValid() {
			e.VIP.IPv4 = p.Addr()
		}
		if p := clusterVIP[1]; p.IsValid() {
			e.VIP.IPv6 = p.Addr()
		}
		if len(sides) == 2 {
			e.Peer = sides[1-i].addr
		}
		for _, g := range natGW {
			if !g.prefix.IsValid() {
				continue
			}
			if g.prefix.Addr().Is4() {
				e.NATGateway.IPv4 = g.prefix
			} else {
				e.NATGateway.IPv6 = g.prefix
			}
			// The gateway's link as this node's own file names it.
			e.GatewayInterface = cmp.Or(e.GatewayInterface, s.vipDev(g.prefix), g.dev)
		}
		if s.f == nil {
			e.Guessed = append(e.Guessed, "interfaces: the peer's file was not given; assumed the same as this node's")
		}
		m.res.Engines = append(m.res.Engines, e)
	}
}

// lbDev is the interface the VIPs of f's first vrrp_instance live on: the
// dev of the first that carries a virtual_server, else of the first with
// a dev (empty: none says). A NAT gateway listed before them (on the
// backends' link) does not make that link the LB interface.
func (m *mapper) lbDev(f *file) string {
	used := map[netip.Addr]bool{}
	for _, vs := range f.vs {
		if vs.fwmark == 0 {
			used[vs.addr] = true
		}
	}
	for _, fm := range m.o.FWMarks {
		for _, a := range fm.Addrs {
			used[a] = true
		}
	}
	var any string
	for _, v := range f.vrrp[0].vips {
		if v.dev != "" && used[v.prefix.Addr()] {
			return v.dev
		}
		if any == "" {
			any = v.dev
		}
	}
	return any
}

// natGateways finds the gateway of NAT backends, one per family, as a
// keepalived LVS-NAT pair floats it: a virtual_ipaddress that carries no
// virtual_server, lies on another link than the VIPs (its dev is not
// lbIface) and has in its subnet a real_server of a NAT virtual_server
// (keepalived's NAT leaves the client's address, so backends must route
// replies through the master). It becomes [nat_gateway]. isGW holds every
// such address, a second one of a family too (listed as not imported), so
// that none is taken for the cluster VIP.
func (m *mapper) natGateways(f *file, used map[netip.Addr]bool, lbIface string) (gw [2]vip, isGW map[netip.Prefix]bool) {
	isGW = map[netip.Prefix]bool{}
	var reals []netip.Addr
	for _, vs := range f.vs {
		if vs.method != "NAT" {
			continue
		}
		for _, rs := range vs.reals {
			reals = append(reals, rs.addr)
		}
	}
	for _, in := range f.vrrp {
		for _, v := range in.vips {
			p := v.prefix
			if used[p.Addr()] || v.dev == "" || v.dev == lbIface || p.Bits() == p.Addr().BitLen() ||
				!slices.ContainsFunc(reals, p.Masked().Contains) {
				continue
			}
			isGW[p] = true
			i := fam(p.Addr())
			if gw[i].prefix.IsValid() {
				if gw[i].prefix != p {
					m.note(v.pos, p.String(), fmt.Sprintf("another gateway of NAT backends: Seesaw's [nat_gateway] holds one per family, %s (from %s)", gw[i].prefix, gw[i].pos))
				}
				continue
			}
			gw[i] = v
		}
	}
	return gw, isGW
}

// vipDev is the dev that s's own file gives the VIP p ("" when it does
// not list it, or s has no file).
func (s *side) vipDev(p netip.Prefix) string {
	if s.f == nil {
		return ""
	}
	for _, in := range s.f.vrrp {
		for _, v := range in.vips {
			if v.prefix == p {
				return v.dev
			}
		}
	}
	return ""
}

func (s *side) label() string {
	if s.f == nil {
		return "the peer (from this node's unicast_peer)"
	}
	return s.fqdn
}

func fam(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// side reads a node's own addresses and settings from its file.
func (m *mapper) side(f *file, who string) *side {
	s := &side{f: f, priority: f.vrrp[0].priority, prioPos: f.vrrp[0].prioPos, state: f.vrrp[0].state}
	for _, in := range f.vrrp {
		if !in.src.IsValid() {
			continue
		}
		i := fam(in.src)
		if prev := s.addrAt(i); prev.IsValid() && prev != in.src {
			m.errorf(in.srcPos, "source address %s differs from %s at %s: one node has one address per family", in.src, prev, s.pos[i])
			continue
		}
		s.setAddr(i, in.src, in.srcPos)
	}
	first := f.vrrp[0]
	s.iface, s.lbIface = first.iface, cmp.Or(m.lbDev(f), first.iface)
	if s.iface == "" {
		m.errorf(first.pos, "vrrp_instance %s has no interface: Seesaw needs the interface its adverts use", first.name)
		return nil
	}
	if s.lbIface == "" {
		s.lbIface = s.iface
	}
	if !s.addr.IPv4.IsValid() {
		m.errorf(first.pos, "cannot tell %s's IPv4 address: keepalived takes it from interface %s; "+
			"add unicast_src_ip (or mcast_src_ip) to the IPv4 vrrp_instance", who, first.iface)
		return nil
	}
	s.fqdn = f.routerID
	if s.fqdn == "" {
		s.fqdn = s.addr.IPv4.String()
	}
	return s
}

func (s *side) addrAt(i int) netip.Addr {
	if i == 0 {
		return s.addr.IPv4
	}
	return s.addr.IPv6
}

func (s *side) setAddr(i int, a netip.Addr, p Pos) {
	if i == 0 {
		s.addr.IPv4 = a
	} else {
		s.addr.IPv6 = a
	}
	s.pos[i] = p
}

// unicastPeer finds the peer from this node's unicast_peer lists.
func (m *mapper) unicastPeer(f *file) *side {
	s := &side{iface: "", priority: -1}
	for _, in := range f.vrrp {
		for j, p := range in.peers {
			i := fam(p.addr)
			if prev := s.addrAt(i); prev.IsValid() && prev != p.addr || j > 0 {
				m.note(p.pos, p.addr.String(), "Seesaw is a pair: only the first unicast peer of each family is the peer")
				continue
			}
			s.setAddr(i, p.addr, p.pos)
		}
	}
	if !s.addr.IPv4.IsValid() {
		if len(f.vrrp) > 0 {
			m.note(f.vrrp[0].pos, "vrrp_instance "+f.vrrp[0].name,
				"no IPv4 unicast_peer and no peer file: cluster.pb has this node only; add the peer with its own keepalived.conf")
		}
		return nil
	}
	first := f.vrrp[0]
	s.iface, s.lbIface = first.iface, cmp.Or(m.lbDev(f), first.iface)
	s.fqdn = s.addr.IPv4.String()
	return s
}

// nodeHost is a node's Host: its addresses with the prefix length of the
// VIP subnet they lie in (keepalived has no other hint), else host routes.
func nodeHost(s *side, vips []vip) *configpb.Host {
	h := &configpb.Host{Fqdn: proto.String(s.fqdn), Status: configpb.Host_PRODUCTION.Enum()}
	for i, a := range []netip.Addr{s.addr.IPv4, s.addr.IPv6} {
		if !a.IsValid() {
			continue
		}
		p := netip.PrefixFrom(a, a.BitLen())
		for _, v := range vips {
			if v.prefix.Bits() < a.BitLen() && v.prefix.Masked().Contains(a) {
				p = netip.PrefixFrom(a, v.prefix.Bits())
				break
			}
		}
		if i == 0 {
			h.Ipv4 = proto.String(p.String())
		} else {
			h.Ipv6 = proto.String(p.String())
		}
	}
	return h
}

// priorities reports where Seesaw's choice of master differs from
// keepalived's: Seesaw gives 255 to the node with the lower IPv4 address.
func (m *mapper) priorities(sides []*side) {
	self := sides[0]
	if len(sides) == 1 {
		return
	}
	peer := sides[1]
	selfFirst := self.addr.IPv4.Less(peer.addr.IPv4)
	var kaSelfFirst bool
	var at Pos
	var what string
	switch {
	case peer.priority >= 0 && self.priority != peer.priority:
		kaSelfFirst = self.priority > peer.priority
		at, what = self.prioPos, fmt.Sprintf("priority %d", self.priority)
		if kaSelfFirst != selfFirst && !at.valid() {
			at, what = peer.prioPos, fmt.Sprintf("priority %d", peer.priority)
		}
	case self.state != "":
		kaSelfFirst = self.state == "MASTER"
		at, what = self.f.vrrp[0].statePos, "state "+self.state
	default:
		return
	}
	if kaSelfFirst == selfFirst {
		return
	}
	if !at.valid() {
		at = self.f.vrrp[0].pos
	}
	want, got := self, peer
	if !kaSelfFirst {
		want, got = peer, self
	}
	m.note(at, what, fmt.Sprintf("Seesaw prefers the node with the lower IPv4 address as master (%s, priority 255); keepalived preferred %s",
		got.addr.IPv4, want.addr.IPv4))
}

func (p Pos) valid() bool { return p.File != "" }

// vservers maps the virtual servers: one vserver per VIP, with one entry per
// port, or one per VIP and port when the ports' real servers differ (Seesaw
// serves every entry of a vserver from the same backends).
func (m *mapper) vservers(f *file, cluster string) []*configpb.Vserver {
	type group struct {
		addr netip.Addr
		sig  string
		vs   []*virtualServer
	}
	var groups []*group
	var marked []*virtualServer
	for _, vs := range f.vs {
		if vs.fwmark != 0 {
			marked = append(marked, vs)
			continue
		}
		if len(vs.reals) == 0 {
			m.note(vs.pos, "virtual_server "+vs.addr.String()+" "+fmt.Sprint(vs.port), "has no real_server; nothing to serve")
			continue
		}
		if vs.port == 0 {
			m.errorf(vs.pos, "virtual_server %s has no port (all ports, persistent): Seesaw serves one port per entry", vs.addr)
			continue
		}
		sig := backendSig(vs)
		var g *group
		for _, x := range groups {
			if x.addr == vs.addr && x.sig == sig {
				g = x
			}
		}
		if g == nil {
			g = &group{addr: vs.addr, sig: sig}
			groups = append(groups, g)
		}
		g.vs = append(g.vs, vs)
	}
	perAddr := map[netip.Addr]int{}
	for _, g := range groups {
		perAddr[g.addr]++
	}
	rp := f.email
	if rp == "" {
		rp = "root"
	}
	var out []*configpb.Vserver
	for _, g := range groups {
		name := vipName(g.addr)
		if perAddr[g.addr] > 1 {
			name = fmt.Sprintf("%s:%d/%s", name, g.vs[0].port, strings.ToLower(g.vs[0].protocol))
		}
		name += "@" + cluster
		v := &configpb.Vserver{
			Name:         proto.String(name),
			EntryAddress: vipHost(g.addr),
			Rp:           proto.String(rp),
		}
		for _, rs := range g.vs[0].reals {
			v.Backend = append(v.Backend, &configpb.Backend{
				Host:   backendHost(rs.addr),
				Weight: proto.Int32(int32(rs.weight)),
			})
		}
		for _, vs := range g.vs {
			m.res.Sources[name] = append(m.res.Sources[name], vs.pos)
			if e := m.entry(vs); e != nil {
				v.VserverEntry = append(v.VserverEntry, e)
			}
		}
		out = append(out, v)
	}
	for _, vs := range marked {
		if v := m.fwmarkVserver(vs, cluster, rp); v != nil {
			out = append(out, v)
		}
	}
	return out
}

// fwmarkVserver maps a "virtual_server fwmark N" with what --fwmark says
// the mark stands for: a use_fwm vserver with one entry per port.
func (m *mapper) fwmarkVserver(vs *virtualServer, cluster, rp string) *configpb.Vserver {
	i := slices.IndexFunc(m.o.FWMarks, func(fm FWMark) bool { return fm.Mark == vs.fwmark })
	if i < 0 {
		m.note(vs.pos, what(vs.stmt), fmt.Sprintf("the VIPs and ports behind mark %d are in firewall rules keepalived never sees; "+
			"say what they are with --fwmark \"%d ADDR PROTO/PORT...\"", vs.fwmark, vs.fwmark))
		return nil
	}
	if len(vs.reals) == 0 {
		m.note(vs.pos, what(vs.stmt), "has no real_server; nothing to serve")
		return nil
	}
	fm := m.o.FWMarks[i]
	name := fmt.Sprintf("fwmark%d@%s", fm.Mark, cluster)
	v := &configpb.Vserver{
		Name:         proto.String(name),
		EntryAddress: &configpb.Host{Fqdn: proto.String(fm.Addrs[0].String()), Status: configpb.Host_PRODUCTION.Enum()},
		Rp:           proto.String(rp),
		UseFwm:       proto.Bool(true),
	}
	for _, a := range fm.Addrs {
		setAddr(v.EntryAddress, netip.PrefixFrom(a, a.BitLen()))
	}
	for _, rs := range vs.reals {
		v.Backend = append(v.Backend, &configpb.Backend{Host: backendHost(rs.addr), Weight: proto.Int32(int32(rs.weight))})
	}
	m.res.Sources[name] = append(m.res.Sources[name], vs.pos)
	tmpl := m.entry(vs)
	if tmpl == nil {
		return nil
	}
	for _, pp := range fm.Ports {
		e := proto.Clone(tmpl).(*configpb.VserverEntry)
		e.Protocol = configpb.Protocol(configpb.Protocol_value[pp.Protocol]).Enum()
		e.Port = proto.Int32(int32(pp.Port))
		if e.GetOnePacket() && pp.Protocol != "UDP" {
			e.OnePacket = nil
		}
		v.VserverEntry = append(v.VserverEntry, e)
	}
	return v
}

func vipName(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

func vipHost(a netip.Addr) *configpb.Host {
	h := &configpb.Host{Fqdn: proto.String(a.String()), Status: configpb.Host_PRODUCTION.Enum()}
	setAddr(h, netip.PrefixFrom(a, a.BitLen()))
	return h
}

func backendHost(a netip.Addr) *configpb.Host {
	h := &configpb.Host{Fqdn: proto.String(a.String()), Status: configpb.Host_PRODUCTION.Enum()}
	setAddr(h, netip.PrefixFrom(a, a.BitLen()))
	return h
}

func setAddr(h *configpb.Host, p netip.Prefix) {
	if p.Addr().Is4() {
		h.Ipv4 = proto.String(p.String())
	} else {
		h.Ipv6 = proto.String(p.String())
	}
}

// backendSig identifies a virtual server's backends: addresses and weights.
func backendSig(vs *virtualServer) string {
	var b strings.Builder
	for _, rs := range vs.reals {
		fmt.Fprintf(&b, "%s/%d,", rs.addr, rs.weight)
	}
	return b.String()
}

var schedulers = map[string]configpb.VserverEntry_Scheduler{
	"rr": configpb.VserverEntry_RR, "wrr": configpb.VserverEntry_WRR, "lc": configpb.VserverEntry_LC,
	"wlc": configpb.VserverEntry_WLC, "sh": configpb.VserverEntry_SH, "mh": configpb.VserverEntry_MH,
}

func (m *mapper) entry(vs *virtualServer) *configpb.VserverEntry {
	e := &configpb.VserverEntry{Port: proto.Int32(int32(vs.port))}
	if vs.fwmark == 0 {
		e.Protocol = configpb.Protocol(configpb.Protocol_value[vs.protocol]).Enum()
	}
	if s, ok := schedulers[vs.sched]; ok {
		e.Scheduler = s.Enum()
	} else {
		e.Scheduler = configpb.VserverEntry_WLC.Enum()
		m.note(vs.schedPos, vs.schedWhat, "no such Seesaw scheduler (rr wrr lc wlc sh mh); wlc was used")
	}
	m.schedFlags(vs)
	switch vs.method {
	case "DR":
		e.Mode = configpb.VserverEntry_DSR.Enum()
	case "TUN":
		e.Mode = configpb.VserverEntry_TUN.Enum()
	default:
		// keepalived's NAT rewrites the destination only: the backends see
		// the client and route replies through the master.
		e.Mode = configpb.VserverEntry_NAT.Enum()
		e.SourceNat = proto.Bool(false)
	}
	if vs.persist > 0 {
		e.Persistence = proto.Int32(int32(vs.persist))
	}
	if vs.ops {
		if vs.protocol == "UDP" || vs.fwmark != 0 {
			e.OnePacket = proto.Bool(true)
		} else {
			m.note(vs.pos, "ops", "one-packet scheduling is for UDP only")
		}
	}
	var inhibit, up, lo []int
	for i, rs := range vs.reals {
		if rs.port != vs.port {
			m.errorf(rs.pos, "real_server port %d differs from the virtual_server's port %d: Seesaw sends to the backend on the entry's port", rs.port, vs.port)
		}
		if rs.method != vs.method {
			m.note(rs.methPos, "lvs_method "+rs.method, fmt.Sprintf("Seesaw forwards every backend of an entry the same way; the virtual server's %s was used", vs.method))
		}
		if rs.inhibit {
			inhibit = append(inhibit, i)
		}
		up = append(up, rs.upper)
		lo = append(lo, rs.lower)
	}
	if len(inhibit) == len(vs.reals) {
		e.Quiescent = proto.Bool(true)
	} else if len(inhibit) > 0 {
		m.note(vs.reals[inhibit[0]].pos, "inhibit_on_failure", "Seesaw quiesces all backends of an entry or none; not set")
	}
	if u := uniform(up); u > 0 {
		e.Uthreshold = proto.Int32(int32(u))
	} else if u < 0 {
		m.note(vs.pos, "uthreshold", "differs between real servers; Seesaw sets one per entry; not set")
	}
	if l := uniform(lo); l > 0 {
		e.Lthreshold = proto.Int32(int32(l))
	} else if l < 0 {
		m.note(vs.pos, "lthreshold", "differs between real servers; Seesaw sets one per entry; not set")
	}

	// Checks: Seesaw checks every backend of an entry the same way. The
	// first real server's checks are used; any other that differs is listed.
	first := m.checks(vs, vs.reals[0])
	e.Healthcheck = first
	for _, rs := range vs.reals[1:] {
		hc := m.checks(vs, rs)
		if !equalChecks(first, hc) {
			at := rs.pos
			if len(rs.checks) > 0 {
				at = rs.checks[0].pos
			}
			m.note(at, "checks of real_server "+rs.addr.String(),
				fmt.Sprintf("differ from real_server %s's at %s; Seesaw checks every backend of an entry alike, and used those", vs.reals[0].addr, vs.reals[0].pos))
		}
	}
	return e
}

// schedFlags compares the scheduler flags: Seesaw sets fallback and port
// on every sh and mh service (as Seesaw v2 did) and none elsewhere.
func (m *mapper) schedFlags(vs *virtualServer) {
	hashing := vs.sched == "sh" || vs.sched == "mh"
	for _, name := range []string{"fallback", "port"} {
		s, set := vs.schedFlags[name]
		switch {
		case hashing && !set:
			what := map[string]string{"fallback": "another destination when the hashed one is unavailable",
				"port": "the source port is hashed too"}[name]
			m.note(vs.schedPos, vs.schedWhat, fmt.Sprintf("Seesaw also sets %s-%s (%s)", vs.sched, name, what))
		case !hashing && set:
			m.note(s.Pos, what(s), "Seesaw sets scheduler flags on sh and mh services only")
		}
	}
}

// uniform returns the common value, or -1 if they differ.
func uniform(xs []int) int {
	for _, x := range xs[1:] {
		if x != xs[0] {
			return -1
		}
	}
	return xs[0]
}

func (m *mapper) checks(vs *virtualServer, rs *realServer) []*configpb.Healthcheck {
	var out []*configpb.Healthcheck
	for _, c := range rs.checks {
		for _, t := range []struct {
			pos Pos
			key string
			val float64
		}{{c.defaults.delayPos, "delay_loop", c.defaults.delayLoop}, {c.defaults.timeoutPos, "connect_timeout", c.defaults.connectTimeout}} {
			if t.val != math.Ceil(t.val) || t.val < 1 {
				m.note(t.pos, fmt.Sprintf("%s %g", t.key, t.val), fmt.Sprintf("Seesaw's check times are whole seconds; %ds was used", seconds(t.val)))
			}
		}
		hc := &configpb.Healthcheck{
			Interval: proto.Int32(seconds(c.defaults.delayLoop)),
			Timeout:  proto.Int32(seconds(c.defaults.connectTimeout)),
		}
		if c.defaults.retry > 0 {
			hc.Retries = proto.Int32(int32(c.defaults.retry))
		}
		if c.port != 0 && c.port != vs.port {
			hc.Port = proto.Int32(int32(c.port))
		}
		switch c.kind {
		case "TCP_CHECK":
			hc.Type = configpb.Healthcheck_TCP.Enum()
		case "HTTP_GET", "SSL_GET":
			hc.Type = configpb.Healthcheck_HTTP.Enum()
			if c.kind == "SSL_GET" {
				hc.Type = configpb.Healthcheck_HTTPS.Enum()
				// keepalived's SSL_GET does not verify the certificate.
				hc.TlsVerify = proto.Bool(false)
			}
			if c.path != "" {
				hc.Send = proto.String(c.path)
			}
			if c.code != 0 && c.code != 200 {
				hc.Code = proto.Int32(int32(c.code))
			}
		case "DNS_CHECK":
			hc.Type = configpb.Healthcheck_DNS.Enum()
			name := c.dnsName
			if name == "" {
				name = "."
			}
			t := c.dnsType
			if t == "" {
				t = "SOA"
			}
			hc.Send = proto.String(name)
			hc.Method = proto.String(t)
		case "UDP_CHECK":
			hc.Type = configpb.Healthcheck_UDP.Enum()
		case "PING_CHECK":
			hc.Type = configpb.Healthcheck_ICMP_PING.Enum()
			hc.Port = nil
		}
		out = append(out, hc)
	}
	return out
}

// seconds rounds a keepalived timer up to whole seconds, at least 1.
func seconds(t float64) int32 {
	s := math.Ceil(t)
	if s < 1 {
		return 1
	}
	return int32(s)
}

func equalChecks(a, b []*configpb.Healthcheck) bool {
	return slices.EqualFunc(a, b, func(x, y *configpb.Healthcheck) bool { return proto.Equal(x, y) })
}

func equalVservers(a, b []*configpb.Vserver) bool {
	return slices.EqualFunc(a, b, func(x, y *configpb.Vserver) bool { return proto.Equal(x, y) })
}

// advertMillis is keepalived's advert_int (seconds) as seesaw.cfg's
// advert_interval (milliseconds, whole centiseconds as VRRPv3 carries
// them, 10 ms to 40.95 s).
func advertMillis(sec float64) int {
	if sec <= 0 {
		return 0
	}
	ms := int(math.Round(sec*100)) * 10
	return min(max(ms, 10), 40950)
}
