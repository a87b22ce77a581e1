package dataplane

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/seesawlb/seesaw/ncc/vocab"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// Text renders a desired state for people, one object a line, in the
// order the state lists them (sysctls sorted): what `seesaw_engine plan`
// prints and what the golden files hold.
//
//	lb-interface eth1 up vrid 60 vmac dummy dummy0 table 2
//	lb-interface eth0 up vrid 20 shared dummy dummy0 table 2 (the node NIC)
//	vip 192.0.2.100/24 on eth1 announce source 192.0.2.2
//	service inet TCP 192.0.2.100:80 rr
//	  -> 198.51.100.11:80 nat weight 1
//	nft snat inet TCP 192.0.2.100:80 to 192.0.2.4
func Text(ds *nccpb.DesiredState) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	if lb := ds.GetLbInterface(); lb != nil {
		state := "down"
		if lb.Up {
			state = "up"
		}
		line := fmt.Sprintf("lb-interface %s %s vrid %d", lb.Name, state, lb.Vrid)
		if lb.UseVmac {
			line += " vmac"
		}
		if lb.Shared {
			line += " shared"
		}
		if lb.DummyInterface != "" {
			line += " dummy " + lb.DummyInterface
		}
		if lb.RoutingTable != 0 {
			line += fmt.Sprintf(" table %d", lb.RoutingTable)
		}
		w("%s", line)
	}
	for _, v := range ds.GetVips() {
		line := fmt.Sprintf("vip %s on %s", v.Address, v.Interface)
		if v.Announce {
			line += " announce"
		}
		if v.Source != "" {
			line += " source " + v.Source
		}
		w("%s", line)
	}
	for _, v := range ds.GetVlans() {
		w("vlan %s.%d %s", v.Parent, v.Id, strings.Join(v.Addresses, " "))
	}
	for _, f := range ds.GetFloatingAddresses() {
		held := "held"
		if !f.Held {
			held = "not held"
		}
		w("floating %s on %s %s", f.Address, f.Interface, held)
	}
	for _, s := range ds.GetServices() {
		w("service %s", ServiceText(s))
		for _, d := range s.Destinations {
			w("  -> %s", DestinationText(d))
		}
	}
	for _, f := range ds.GetNft().GetFwmarks() {
		w("nft fwmark %s %s %s mark %d", family(f.Family), f.Protocol, HostPort(f.Address, f.Port), f.Mark)
	}
	for _, s := range ds.GetNft().GetSnat() {
		w("nft snat %s %s %s to %s", family(s.Family), s.Protocol, HostPort(s.Vip, s.Port), s.ToSource)
	}
	for _, r := range ds.GetNft().GetReplyDrops() {
		w("nft reply-drop %s %s from %s", family(r.Family), r.Protocol, HostPort(r.Address, r.Port))
	}
	for _, r := range ds.GetRoutes() {
		line := fmt.Sprintf("route table %d %s %s", r.Table, family(r.Family), or(r.Destination, "default"))
		if r.Gateway != "" {
			line += " via " + r.Gateway
		}
		if r.Device != "" {
			line += " dev " + r.Device
		}
		if r.Source != "" {
			line += " src " + r.Source
		}
		w("%s", line)
	}
	for _, r := range ds.GetRules() {
		line := fmt.Sprintf("rule %s", family(r.Family))
		if r.Priority != 0 {
			line += fmt.Sprintf(" priority %d", r.Priority)
		}
		line += " from " + or(r.From, "all")
		if r.To != "" {
			line += " to " + r.To
		}
		if r.Fwmark != 0 {
			line += fmt.Sprintf(" fwmark %d", r.Fwmark)
		}
		w("%s lookup %d", line, r.Table)
	}
	for _, d := range ds.GetSyncDaemons() {
		line := fmt.Sprintf("sync-daemon %s %s syncid %d", strings.ToLower(d.Role.String()), d.Interface, d.SyncId)
		if d.MaxLength != 0 {
			line += fmt.Sprintf(" maxlen %d", d.MaxLength)
		}
		w("%s", line)
	}
	if c := ds.GetConntrackd(); c != nil {
		w("conntrackd %s %s -> %s ignore %s", c.Interface, c.LocalAddress, c.PeerAddress, strings.Join(c.IgnoreAddresses, " "))
	}
	if t := ds.GetIpvsTimeouts(); t != nil {
		w("ipvs timeouts tcp %ds tcpfin %ds udp %ds", t.Tcp, t.TcpFin, t.Udp)
	}
	keys := make([]string, 0, len(ds.GetSysctls()))
	for k := range ds.GetSysctls() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w("sysctl %s = %s", k, ds.Sysctls[k])
	}
	return b.String()
}

// ServiceText is a service's identity and settings on one line:
// "inet TCP 192.0.2.100:80 wlc", "inet FWM 300 sh sh-fallback,sh-port".
func ServiceText(s *nccpb.Service) string {
	var line string
	if s.Fwmark != 0 {
		line = fmt.Sprintf("%s FWM %d %s", family(s.Family), s.Fwmark, s.Scheduler)
	} else {
		line = fmt.Sprintf("%s %s %s %s", family(s.Family), s.Protocol, HostPort(s.Address, s.Port), s.Scheduler)
	}
	var flags []string
	if s.Flags&vocab.SchedFallback != 0 {
		flags = append(flags, s.Scheduler+"-fallback")
	}
	if s.Flags&vocab.SchedPort != 0 {
		flags = append(flags, s.Scheduler+"-port")
	}
	if len(flags) > 0 {
		line += " " + strings.Join(flags, ",")
	}
	if s.OnePacket {
		line += " ops"
	}
	if s.PersistenceTimeout != 0 {
		line += fmt.Sprintf(" persistent %d netmask %d", s.PersistenceTimeout, s.PersistenceNetmask)
	}
	return line
}

// DestinationText is a destination on one line: "198.51.100.11:80 nat
// weight 1".
func DestinationText(d *nccpb.Destination) string {
	fwd := map[nccpb.Forward]string{nccpb.Forward_FORWARD_NAT: "nat", nccpb.Forward_FORWARD_DSR: "dsr",
		nccpb.Forward_FORWARD_TUNNEL: "tun", nccpb.Forward_FORWARD_LOCAL: "local"}[d.Forward]
	line := fmt.Sprintf("%s %s weight %d", HostPort(d.Address, d.Port), fwd, d.Weight)
	if d.UpperThreshold != 0 {
		line += fmt.Sprintf(" u-threshold %d", d.UpperThreshold)
	}
	if d.LowerThreshold != 0 {
		line += fmt.Sprintf(" l-threshold %d", d.LowerThreshold)
	}
	return line
}

func family(f nccpb.Family) string {
	if f == nccpb.Family_INET6 {
		return "inet6"
	}
	return "inet"
}

// HostPort is "addr:port" ("[addr]:port" for IPv6), the way the kernel's
// tools write a destination.
func HostPort(addr string, port uint32) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return fmt.Sprintf("%s:%d", addr, port)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)).String()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
