package config

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	configpb "github.com/seesawlb/seesaw/proto/config"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// builder turns a decoded cluster.pb into a Cluster and collects every
// problem on the way. Paths name objects the way an operator finds them in
// the file: vserver "web@site" entry TCP/443 healthcheck #1.
type builder struct {
	file  string
	errs  Errors
	warns []Warning
}

func (b *builder) errorf(path, format string, args ...any) {
	b.errs = append(b.errs, Issue{File: b.file, Msg: withPath(path, fmt.Sprintf(format, args...))})
}

func (b *builder) warnf(path, format string, args ...any) {
	b.warns = append(b.warns, Warning{File: b.file, Msg: withPath(path, fmt.Sprintf(format, args...))})
}

func withPath(path, msg string) string {
	if path == "" {
		return msg
	}
	return path + ": " + msg
}

func join(path, seg string) string {
	if path == "" {
		return seg
	}
	return path + " " + seg
}

// Labels for the elements of repeated fields. The required-field walk and the
// semantic checks share them so both name an object the same way.

func nodeLabel(i int, h *configpb.Host) string { return hostLabel("node", i, h) }

func hostLabel(field string, i int, h *configpb.Host) string {
	if h.Fqdn != nil {
		return fmt.Sprintf("%s %q", field, h.GetFqdn())
	}
	return fmt.Sprintf("%s #%d", field, i+1)
}

func vserverLabel(i int, v *configpb.Vserver) string {
	if v.Name != nil {
		return fmt.Sprintf("vserver %q", v.GetName())
	}
	return fmt.Sprintf("vserver #%d", i+1)
}

func entryLabel(i int, e *configpb.VserverEntry) string {
	if e.Protocol != nil && e.Port != nil {
		return fmt.Sprintf("entry %s/%d", e.GetProtocol(), e.GetPort())
	}
	return fmt.Sprintf("entry #%d", i+1)
}

func backendLabel(i int, be *configpb.Backend) string {
	if h := be.GetHost(); h != nil && h.Fqdn != nil {
		return fmt.Sprintf("backend %q", be.GetHost().GetFqdn())
	}
	return fmt.Sprintf("backend #%d", i+1)
}

func vlanLabel(i int, v *configpb.Vlan) string {
	if v.VlanId != nil {
		return fmt.Sprintf("vlan %d", v.GetVlanId())
	}
	return fmt.Sprintf("vlan #%d", i+1)
}

func healthcheckLabel(i int) string { return fmt.Sprintf("healthcheck #%d", i+1) }

func elemLabel(fd protoreflect.FieldDescriptor, i int, m proto.Message) string {
	switch m := m.(type) {
	case *configpb.Host:
		return hostLabel(string(fd.Name()), i, m)
	case *configpb.Vserver:
		return vserverLabel(i, m)
	case *configpb.VserverEntry:
		return entryLabel(i, m)
	case *configpb.Backend:
		return backendLabel(i, m)
	case *configpb.Vlan:
		return vlanLabel(i, m)
	case *configpb.Healthcheck:
		return healthcheckLabel(i)
	}
	return fmt.Sprintf("%s #%d", fd.Name(), i+1)
}

// requireFields reports every unset required field below m.
func (b *builder) requireFields(path string, m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			if fd.Cardinality() == protoreflect.Required {
				b.errorf(path, "missing required field %q", fd.Name())
			}
			continue
		}
		if fd.Message() == nil || fd.IsMap() {
			continue
		}
		if fd.IsList() {
			list := m.Get(fd).List()
			for j := 0; j < list.Len(); j++ {
				sub := list.Get(j).Message()
				b.requireFields(join(path, elemLabel(fd, j, sub.Interface())), sub)
			}
			continue
		}
		b.requireFields(join(path, string(fd.Name())), m.Get(fd).Message())
	}
}

// buildCluster validates pb and builds the typed views. The Cluster is
// returned even when there are errors.
func buildCluster(file string, pb *configpb.Cluster) (*Cluster, Errors) {
	b := &builder{file: file}
	b.requireFields("", pb.ProtoReflect())

	c := &Cluster{
		File:         file,
		Proto:        pb,
		BGPLocalASN:  pb.GetBgpLocalAsn(),
		BGPRemoteASN: pb.GetBgpRemoteAsn(),
	}
	if pb.SeesawVip != nil {
		c.VIP = b.host("seesaw_vip", pb.SeesawVip)
		if noAddr(pb.SeesawVip) {
			b.errorf("seesaw_vip", "has no ipv4 or ipv6 address")
		}
	}
	switch pb.GetSeesawVip().GetStatus() {
	case configpb.Host_PRODUCTION, configpb.Host_TESTING, configpb.Host_BUILDING:
		c.HAEnabled = true
	}

	b.nodes(c, pb)
	for i, s := range pb.GetDedicatedVipSubnet() {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			b.errorf(fmt.Sprintf("dedicated_vip_subnet #%d", i+1), "%q is not a CIDR", s)
			continue
		}
		c.DedicatedVIPSubnets = append(c.DedicatedVIPSubnets, p.Masked())
	}
	b.vlans(c, pb)
	for i, p := range pb.GetBgpPeer() {
		h := b.host(hostLabel("bgp_peer", i, p), p)
		if noAddr(p) {
			b.errorf(hostLabel("bgp_peer", i, p), "has no ipv4 or ipv6 address")
		}
		c.BGPPeers = append(c.BGPPeers, h)
	}
	b.vservers(c, pb)

	for _, mv := range pb.GetMisconfiguredVserver() {
		c.StatusWarnings = append(c.StatusWarnings, mv.GetName()+": "+mv.GetErrorMessage())
	}
	slices.Sort(c.StatusWarnings)
	if md := pb.GetMetadata(); md != nil && md.LastUpdated != nil {
		c.LastUpdated = time.Unix(md.GetLastUpdated(), 0).UTC()
	}
	c.Warnings = b.warns
	return c, b.errs
}

type enumValue interface {
	~int32
	Descriptor() protoreflect.EnumDescriptor
	Number() protoreflect.EnumNumber
}

// knownEnum reports whether v is a value the schema defines. prototext
// accepts a bare number for a closed enum, so unknown values do reach us.
func knownEnum[E enumValue](v E) bool {
	return v.Descriptor().Values().ByNumber(v.Number()) != nil
}

// noAddr reports a Host with neither address field (a malformed one has
// already been reported).
func noAddr(h *configpb.Host) bool { return h.Ipv4 == nil && h.Ipv6 == nil }

// host parses a Host's CIDRs, reporting malformed ones and family mix-ups.
func (b *builder) host(path string, h *configpb.Host) Host {
	out := Host{FQDN: h.GetFqdn(), Status: h.GetStatus()}
	if h.Status != nil && !knownEnum(h.GetStatus()) {
		b.errorf(path, "unknown status %d", h.GetStatus())
	}
	if h.Ipv4 != nil {
		out.IPv4 = b.cidr(path, "ipv4", h.GetIpv4(), 4)
	}
	if h.Ipv6 != nil {
		out.IPv6 = b.cidr(path, "ipv6", h.GetIpv6(), 6)
	}
	return out
}

func (b *builder) cidr(path, field, s string, family int) netip.Prefix {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		hint := ""
		if _, aerr := netip.ParseAddr(s); aerr == nil {
			hint = " (add the prefix length, e.g. /32 or /128)"
		}
		b.errorf(path, "%s %q is not a CIDR%s", field, s, hint)
		return netip.Prefix{}
	}
	if family == 4 && !p.Addr().Is4() {
		b.errorf(path, "%s %q is not an IPv4 CIDR", field, s)
		return netip.Prefix{}
	}
	if family == 6 && (!p.Addr().Is6() || p.Addr().Is4In6()) {
		b.errorf(path, "%s %q is not an IPv6 CIDR", field, s)
		return netip.Prefix{}
	}
	return p
}

func (b *builder) nodes(c *Cluster, pb *configpb.Cluster) {
	fqdns := map[string]string{}
	addrs := map[netip.Addr]string{}
	for i, n := range pb.GetNode() {
		path := nodeLabel(i, n)
		h := b.host(path, n)
		if n.Fqdn != nil {
			if prev, ok := fqdns[h.FQDN]; ok {
				b.errorf(path, "duplicate node fqdn (also %s)", prev)
			}
			fqdns[h.FQDN] = fmt.Sprintf("node #%d", i+1)
		}
		for _, a := range h.Addrs() {
			if prev, ok := addrs[a]; ok {
				b.errorf(path, "address %s is also used by %s", a, prev)
				continue
			}
			addrs[a] = path
		}
		if !h.IPv4.IsValid() && n.Ipv4 == nil {
			// VRRP priorities, peer sync and seesaw.cfg's node_ipv4 need it.
			b.errorf(path, "has no ipv4 address")
		}
		for _, a := range c.VIP.Addrs() {
			if h.HasAddr(a) {
				b.errorf(path, "address %s is the cluster VIP (seesaw_vip)", a)
			}
		}
		if v := c.VIP.IPv4; v.IsValid() && h.IPv4.IsValid() && !h.IPv4.Masked().Contains(v.Addr()) {
			b.warnf(path, "cluster VIP %s is outside the node's subnet %s", v.Addr(), h.IPv4.Masked())
		}
		node := &Node{Host: h}
		node.HAEnabled = c.HAEnabled && n.GetStatus() == pb.GetSeesawVip().GetStatus()
		switch n.GetStatus() {
		case configpb.Host_PRODUCTION, configpb.Host_TESTING:
			node.AnycastEnabled = true
			node.BGPEnabled = true
			node.VserversEnabled = true
		case configpb.Host_BUILDING:
			node.BGPEnabled = true
		}
		c.Nodes = append(c.Nodes, node)
	}
	assignPriorities(c.Nodes)
}

// assignPriorities sorts nodes by IPv4 address and gives the lowest 255 and
// the i-th (0-based) len(nodes)-i, as Seesaw v2's addNodes does. A node
// without IPv4 sorts first, as Seesaw's nil address did. (With three nodes
// that is 255, 2, 1: the top node is always far ahead of the rest.)
func assignPriorities(nodes []*Node) {
	slices.SortStableFunc(nodes, func(a, b *Node) int {
		return a.IPv4.Addr().Compare(b.IPv4.Addr())
	})
	// Seesaw gave the first node 255 and the others len-i (1 for the
	// second of a pair). VRRP's skew time is (256-priority)/256 of an
	// advert interval, so a backup at priority 1 waited almost four
	// intervals to take over where one at 254 waits barely three; the
	// order, which is all that Seesaw's configs say, is kept.
	for i, n := range nodes {
		n.Priority = uint8(max(255-i, 1))
	}
}

func (b *builder) vlans(c *Cluster, pb *configpb.Cluster) {
	seen := map[int32]int{}
	for i, v := range pb.GetVlan() {
		path := vlanLabel(i, v)
		if v.VlanId != nil {
			id := v.GetVlanId()
			if id < 1 || id > 4094 {
				b.errorf(path, "vlan_id %d is out of range 1..4094", id)
			} else if prev, ok := seen[id]; ok {
				b.errorf(path, "duplicate vlan_id (also vlan #%d)", prev)
			}
			seen[id] = i + 1
		}
		if v.Host == nil {
			continue
		}
		h := b.host(join(path, "host"), v.Host)
		if noAddr(v.Host) {
			b.errorf(join(path, "host"), "has no ipv4 or ipv6 address")
		}
		c.VLANs = append(c.VLANs, &VLAN{ID: uint16(v.GetVlanId()), Host: h})
	}
}

// vipUse records which vserver serves which protocol/port on an address.
type vipUse struct {
	vserver string
	keys    map[string]bool
}

func (b *builder) vservers(c *Cluster, pb *configpb.Cluster) {
	names := map[string]int{}
	vips := map[netip.Addr][]vipUse{}
	for i, vs := range pb.GetVserver() {
		path := vserverLabel(i, vs)
		dup := false
		if vs.Name != nil {
			if prev, ok := names[vs.GetName()]; ok {
				b.errorf(path, "duplicate vserver name (also vserver #%d)", prev)
				dup = true // its VIP clashes are a consequence; don't repeat them
			} else {
				names[vs.GetName()] = i + 1
			}
		}
		v := &Vserver{
			Name:     vs.GetName(),
			UseFWM:   vs.GetUseFwm(),
			Warnings: slices.Sorted(slices.Values(vs.GetWarning())),
			Proto:    vs,
		}
		if vs.EntryAddress != nil {
			apath := join(path, "entry_address")
			v.Address = b.host(apath, vs.EntryAddress)
			v.Enabled = servingStatus(v.Address.Status)
			if noAddr(vs.EntryAddress) {
				b.errorf(apath, "has no ipv4 or ipv6 address")
			}
			for _, a := range v.Address.Addrs() {
				if c.VIP.HasAddr(a) {
					b.errorf(apath, "%s is the cluster VIP (seesaw_vip); a vserver needs its own address", a)
				}
				for _, n := range c.Nodes {
					if n.HasAddr(a) {
						b.errorf(apath, "%s is the address of node %q", a, n.FQDN)
					}
				}
			}
		}
		b.entries(path, v, vs)
		b.backends(path, v, vs)
		for j, hc := range vs.GetHealthcheck() {
			v.Healthchecks = append(v.Healthchecks, b.healthcheck(join(path, healthcheckLabel(j)), hc, nil))
		}

		// Seesaw keys IPVS services and iptables rules by VIP, protocol and
		// port, so two vservers may share an address only on disjoint ports.
		keys := map[string]bool{}
		for _, e := range v.Entries {
			keys[e.Key()] = true
		}
		for _, a := range v.Address.Addrs() {
			if dup {
				break
			}
			for _, u := range vips[a] {
				var clash []string
				for k := range keys {
					if u.keys[k] {
						clash = append(clash, k)
					}
				}
				if len(clash) > 0 {
					slices.Sort(clash)
					b.errorf(join(path, "entry_address"), "%s %s is also served by %s", a, strings.Join(clash, ", "), u.vserver)
				}
			}
			vips[a] = append(vips[a], vipUse{vserver: path, keys: keys})
		}
		c.Vservers = append(c.Vservers, v)
	}
}

func (b *builder) entries(path string, v *Vserver, vs *configpb.Vserver) {
	seen := map[string]int{}
	for j, pe := range vs.GetVserverEntry() {
		epath := join(path, entryLabel(j, pe))
		e := &Entry{
			Protocol:      pe.GetProtocol(),
			Port:          uint16(pe.GetPort()),
			Scheduler:     pe.GetScheduler(),
			Mode:          pe.GetMode(),
			Persistence:   int(pe.GetPersistence()),
			OnePacket:     pe.GetOnePacket(),
			Quiescent:     pe.GetQuiescent(),
			SourceNAT:     pe.GetSourceNat(),
			LowWatermark:  pe.GetServerLowWatermark(),
			HighWatermark: pe.GetServerHighWatermark(),
			LThreshold:    int(pe.GetLthreshold()),
			UThreshold:    int(pe.GetUthreshold()),
		}
		if e.HighWatermark < e.LowWatermark {
			e.HighWatermark = e.LowWatermark
		}
		if pe.Protocol != nil && !knownEnum(pe.GetProtocol()) {
			b.errorf(epath, "unknown protocol %d", pe.GetProtocol())
		}
		if pe.Port != nil && (pe.GetPort() < 1 || pe.GetPort() > 65535) {
			b.errorf(epath, "port %d is out of range 1..65535", pe.GetPort())
		}
		if pe.Protocol != nil && pe.Port != nil {
			if prev, ok := seen[e.Key()]; ok {
				b.errorf(epath, "duplicate entry (also entry #%d)", prev)
			} else {
				seen[e.Key()] = j + 1
			}
		}
		if !knownEnum(pe.GetScheduler()) {
			b.errorf(epath, "unknown scheduler %d", pe.GetScheduler())
		}
		if !knownEnum(pe.GetMode()) {
			b.errorf(epath, "unknown mode %d", pe.GetMode())
		}
		if e.Persistence < 0 {
			b.errorf(epath, "persistence %d must not be negative", e.Persistence)
		}
		if e.LThreshold < 0 {
			b.errorf(epath, "lthreshold %d must not be negative", e.LThreshold)
		}
		if e.UThreshold < 0 {
			b.errorf(epath, "uthreshold %d must not be negative", e.UThreshold)
		}
		if e.UThreshold > 0 && e.LThreshold > e.UThreshold {
			b.errorf(epath, "lthreshold %d is above uthreshold %d", e.LThreshold, e.UThreshold)
		}
		if pe.SourceNat != nil && !e.SourceNAT && e.Mode != configpb.VserverEntry_NAT {
			b.warnf(epath, "source_nat: false only means something with mode NAT; ignored for %s", e.Mode)
		}
		if e.OnePacket && pe.GetProtocol() != configpb.Protocol_UDP {
			b.errorf(epath, "one_packet is only valid for UDP (IPVS ignores it for %s)", pe.GetProtocol())
		}
		for _, wm := range []struct {
			name string
			set  bool
			val  float32
		}{
			{"server_low_watermark", pe.ServerLowWatermark != nil, pe.GetServerLowWatermark()},
			{"server_high_watermark", pe.ServerHighWatermark != nil, pe.GetServerHighWatermark()},
		} {
			if wm.set && (math.IsNaN(float64(wm.val)) || wm.val < 0 || wm.val > 1) {
				b.errorf(epath, "%s %v is outside 0..1", wm.name, wm.val)
			}
		}
		for k, hc := range pe.GetHealthcheck() {
			e.Healthchecks = append(e.Healthchecks, b.healthcheck(join(epath, healthcheckLabel(k)), hc, e))
		}
		v.Entries = append(v.Entries, e)
	}

	// One firewall-mark service carries every entry, with the first entry's
	// scheduler, persistence and mode; differing entries would be silently
	// served with the wrong settings.
	if v.UseFWM && len(v.Entries) > 1 {
		first := v.Entries[0]
		for j, e := range v.Entries[1:] {
			epath := join(path, entryLabel(j+1, vs.GetVserverEntry()[j+1]))
			if e.Scheduler != first.Scheduler {
				b.errorf(epath, "use_fwm: scheduler %s differs from %s on %s", e.Scheduler, first.Scheduler, first.Key())
			}
			if e.Persistence != first.Persistence {
				b.errorf(epath, "use_fwm: persistence %d differs from %d on %s", e.Persistence, first.Persistence, first.Key())
			}
			if e.Mode != first.Mode {
				b.errorf(epath, "use_fwm: mode %s differs from %s on %s", e.Mode, first.Mode, first.Key())
			}
		}
	}
}

func (b *builder) backends(path string, v *Vserver, vs *configpb.Vserver) {
	fqdns := map[string]string{}
	addrs := map[netip.Addr]string{}
	for j, pb := range vs.GetBackend() {
		bpath := join(path, backendLabel(j, pb))
		if pb.GetWeight() < 0 || pb.GetWeight() > 65535 {
			b.errorf(bpath, "weight %d is out of range 0..65535", pb.GetWeight())
		}
		if pb.Host == nil {
			continue
		}
		h := b.host(bpath, pb.Host)
		if pb.Host.Fqdn != nil {
			if prev, ok := fqdns[h.FQDN]; ok {
				b.errorf(bpath, "duplicate backend fqdn (also backend #%s)", prev)
			}
			fqdns[h.FQDN] = fmt.Sprint(j + 1)
		}
		if noAddr(pb.Host) {
			b.errorf(bpath, "has no ipv4 or ipv6 address")
		}
		for _, a := range h.Addrs() {
			if prev, ok := addrs[a]; ok {
				b.errorf(bpath, "duplicate backend address %s (also %s)", a, prev)
				continue
			}
			addrs[a] = backendLabel(j, pb)
		}
		st := h.Status
		v.Backends = append(v.Backends, &Backend{
			Host:      h,
			Weight:    pb.GetWeight(),
			Enabled:   servingStatus(st),
			InService: st != configpb.Host_PROPOSED && st != configpb.Host_BUILDING,
		})
	}
}

// healthcheck validates one check. entry is the entry of an entry-level
// check, whose port it defaults to, and nil for a vserver-level check, which
// must name its port.
func (b *builder) healthcheck(path string, hc *configpb.Healthcheck, entry *Entry) *Healthcheck {
	if hc.Type != nil && !knownEnum(hc.GetType()) {
		b.errorf(path, "unknown type %d", hc.GetType())
	}
	if !knownEnum(hc.GetMode()) {
		b.errorf(path, "unknown mode %d", hc.GetMode())
	}
	port := hc.GetPort()
	switch {
	case entry == nil && port == 0:
		b.errorf(path, "a vserver-level healthcheck needs a port")
	case port < 0 || port > 65535:
		b.errorf(path, "port %d is out of range 1..65535", port)
	case port == 0:
		port = int32(entry.Port)
	}
	interval, timeout := hc.GetInterval(), hc.GetTimeout()
	if interval <= 0 {
		b.errorf(path, "interval %d must be > 0", interval)
	}
	if timeout <= 0 {
		b.errorf(path, "timeout %d must be > 0", timeout)
	}
	if interval > 0 && timeout > interval {
		b.warnf(path, "timeout %ds is longer than interval %ds", timeout, interval)
	}
	if hc.GetRetries() < 0 {
		b.errorf(path, "retries %d must not be negative", hc.GetRetries())
	}
	if code := hc.GetCode(); code != 0 && (code < 100 || code > 599) {
		b.errorf(path, "code %d is not an HTTP status code", code)
	}
	b.checkFields(path, hc)
	return &Healthcheck{
		Type:      hc.GetType(),
		Mode:      hc.GetMode(),
		Port:      uint16(max(0, min(port, 65535))),
		Interval:  time.Duration(interval) * time.Second,
		Timeout:   time.Duration(timeout) * time.Second,
		Retries:   int(hc.GetRetries()),
		Send:      hc.GetSend(),
		Receive:   hc.GetReceive(),
		Code:      int(hc.GetCode()),
		Method:    hc.GetMethod(),
		Proxy:     hc.GetProxy(),
		TLSVerify: hc.GetTlsVerify(),
	}
}
