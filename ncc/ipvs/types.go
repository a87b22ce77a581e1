package ipvs

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/seesawlb/seesaw/ncc/ipvs/internal/uapi"
)

// Family is an address family as IPVS takes it (AF_INET, AF_INET6).
type Family uint16

// The address families IPVS serves.
const (
	IPv4 Family = 2  // AF_INET
	IPv6 Family = 10 // AF_INET6
)

// FamilyOf is the family of an address (IPv4-mapped IPv6 addresses count
// as IPv4, as the kernel would route them).
func FamilyOf(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return IPv4
	}
	return IPv6
}

// holds reports whether a can be an address of family f: IPv4 takes IPv4
// and IPv4-mapped addresses, IPv6 takes any 16-byte address.
func (f Family) holds(a netip.Addr) bool {
	switch f {
	case IPv4:
		return a.Unmap().Is4()
	case IPv6:
		return a.Is6()
	}
	return false
}

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "family(" + strconv.Itoa(int(f)) + ")"
}

// bits is the length of the family's addresses in bits.
func (f Family) bits() int {
	if f == IPv6 {
		return 128
	}
	return 32
}

// Protocol is the IP protocol of an address/port service.
type Protocol uint16

// The protocols IPVS balances by port.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// ServiceFlags are IPVS virtual service flags (IP_VS_SVC_F_*).
type ServiceFlags uint32

// Service flags. The scheduler flags mean what the scheduler named in the
// service says: sh reads SCHED1/SCHED2 as fallback/port, and so does mh
// (IP_VS_SVC_F_SCHED_MH_FALLBACK and _PORT are defined as SCHED1 and
// SCHED2 in net/netfilter/ipvs/ip_vs_mh.c, outside the uapi header).
const (
	FlagPersistent ServiceFlags = uapi.IP_VS_SVC_F_PERSISTENT
	// FlagHashed is set by the kernel on every service it holds; it is not
	// a setting and Services reports flags without it.
	FlagHashed    ServiceFlags = uapi.IP_VS_SVC_F_HASHED
	FlagOnePacket ServiceFlags = uapi.IP_VS_SVC_F_ONEPACKET
	FlagSched1    ServiceFlags = uapi.IP_VS_SVC_F_SCHED1
	FlagSched2    ServiceFlags = uapi.IP_VS_SVC_F_SCHED2
	FlagSched3    ServiceFlags = uapi.IP_VS_SVC_F_SCHED3

	FlagSHFallback ServiceFlags = uapi.IP_VS_SVC_F_SCHED_SH_FALLBACK
	FlagSHPort     ServiceFlags = uapi.IP_VS_SVC_F_SCHED_SH_PORT
	FlagMHFallback ServiceFlags = uapi.IP_VS_SVC_F_SCHED1
	FlagMHPort     ServiceFlags = uapi.IP_VS_SVC_F_SCHED2
)

// String names the flags the way ipvsadm does for a scheduler-neutral
// reading: persistent, hashed, one-packet, flag-1, flag-2, flag-3.
func (f ServiceFlags) String() string {
	names := []struct {
		f ServiceFlags
		n string
	}{
		{FlagPersistent, "persistent"}, {FlagHashed, "hashed"}, {FlagOnePacket, "one-packet"},
		{FlagSched1, "flag-1"}, {FlagSched2, "flag-2"}, {FlagSched3, "flag-3"},
	}
	var out []string
	rest := f
	for _, n := range names {
		if f&n.f != 0 {
			out = append(out, n.n)
			rest &^= n.f
		}
	}
	if rest != 0 {
		out = append(out, fmt.Sprintf("%#x", uint32(rest)))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "|")
}

// ForwardMethod is how IPVS sends packets to a destination
// (IP_VS_CONN_F_* forwarding values).
type ForwardMethod uint32

// Forwarding methods.
const (
	Masquerade  ForwardMethod = uapi.IP_VS_CONN_F_MASQ // NAT
	Local       ForwardMethod = uapi.IP_VS_CONN_F_LOCALNODE
	Tunnel      ForwardMethod = uapi.IP_VS_CONN_F_TUNNEL
	DirectRoute ForwardMethod = uapi.IP_VS_CONN_F_DROUTE // DSR, "gatewaying"
)

func (m ForwardMethod) String() string {
	switch m {
	case Masquerade:
		return "Masq"
	case Local:
		return "Local"
	case Tunnel:
		return "Tunnel"
	case DirectRoute:
		return "Route"
	}
	return "fwd(" + strconv.Itoa(int(m)) + ")"
}

// TunnelType is the encapsulation of a Tunnel destination (kernel 5.2+; GRE
// from 5.3). Older kernels ignore it and use IPIP.
type TunnelType uint8

// Tunnel types.
const (
	IPIP TunnelType = uapi.IP_VS_CONN_F_TUNNEL_TYPE_IPIP
	GUE  TunnelType = uapi.IP_VS_CONN_F_TUNNEL_TYPE_GUE
	GRE  TunnelType = uapi.IP_VS_CONN_F_TUNNEL_TYPE_GRE
)

func (t TunnelType) String() string {
	switch t {
	case IPIP:
		return "ipip"
	case GUE:
		return "gue"
	case GRE:
		return "gre"
	}
	return "tun(" + strconv.Itoa(int(t)) + ")"
}

// TunnelFlags are the encapsulation flags of GUE and GRE tunnels
// (IP_VS_TUNNEL_ENCAP_FLAG_*). Zero is "no checksum".
type TunnelFlags uint16

// Tunnel encapsulation flags.
const (
	TunnelCSum    TunnelFlags = uapi.IP_VS_TUNNEL_ENCAP_FLAG_CSUM
	TunnelRemCSum TunnelFlags = uapi.IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM
)

// ServiceKey is what identifies a virtual service: an address, protocol and
// port, or a firewall mark within an address family.
type ServiceKey struct {
	Family   Family
	Protocol Protocol   // unset for fwmark services
	Addr     netip.Addr // unset for fwmark services
	Port     uint16     // unset for fwmark services
	FWMark   uint32     // non-zero: a firewall-mark service
}

// AddrPortKey is the key of an address/port service; the family comes from
// the address.
func AddrPortKey(p Protocol, ap netip.AddrPort) ServiceKey {
	a := ap.Addr().Unmap()
	return ServiceKey{Family: FamilyOf(a), Protocol: p, Addr: a, Port: ap.Port()}
}

// FWMarkKey is the key of a firewall-mark service.
func FWMarkKey(f Family, mark uint32) ServiceKey {
	return ServiceKey{Family: f, FWMark: mark}
}

// String is the key as ipvsadm lists it: "TCP 192.0.2.1:80",
// "UDP [2001:db8::1]:53", "FWM 7 IPv6".
func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		if k.Family == IPv6 {
			return fmt.Sprintf("FWM %d IPv6", k.FWMark)
		}
		return fmt.Sprintf("FWM %d", k.FWMark)
	}
	return k.Protocol.String() + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// validate checks what the kernel would refuse, so that the error names
// the field instead of a bare EINVAL.
func (k ServiceKey) validate() error {
	if k.Family != IPv4 && k.Family != IPv6 {
		return fmt.Errorf("address family %d is neither IPv4 nor IPv6", k.Family)
	}
	if k.FWMark != 0 {
		if k.Addr.IsValid() || k.Port != 0 || k.Protocol != 0 {
			return fmt.Errorf("fwmark service %d has an address, protocol or port too", k.FWMark)
		}
		return nil
	}
	if !k.Addr.IsValid() {
		return fmt.Errorf("service has neither an address nor a firewall mark")
	}
	if !k.Family.holds(k.Addr) {
		return fmt.Errorf("address %s is not %s", k.Addr, k.Family)
	}
	if k.Protocol == 0 {
		return fmt.Errorf("service %s has no protocol", k.Addr)
	}
	return nil
}

// Service is a virtual service as it is configured: its identity and
// settings, nothing the kernel counts.
type Service struct {
	ServiceKey
	// Scheduler is the scheduler's name: rr, wrr, lc, wlc, lblc, lblcr, dh,
	// sh, sed, nq, fo, ovf, mh, twos (each a kernel module ip_vs_<name>).
	Scheduler string
	// Flags: FlagPersistent, FlagOnePacket and the scheduler's flags.
	Flags ServiceFlags
	// Timeout is the persistence timeout in seconds (with FlagPersistent).
	Timeout uint32
	// Netmask is the persistence netmask as a prefix length: clients whose
	// addresses share this prefix stick to one destination. 0 means the
	// whole address (32 or 128), which is what the kernel then reports.
	Netmask uint8
	// PEName is the persistence engine ("sip"), usually empty.
	PEName string
}

// Normalize fills in what the kernel would report for unset fields: the
// full netmask. Two services that normalize equal are the same to IPVS.
func (s Service) Normalize() Service {
	if s.Netmask == 0 {
		s.Netmask = uint8(s.Family.bits())
	}
	s.Flags &^= FlagHashed
	return s
}

func (s Service) validate() error {
	if err := s.ServiceKey.validate(); err != nil {
		return err
	}
	if s.Scheduler == "" || len(s.Scheduler) >= uapi.IP_VS_SCHEDNAME_MAXLEN {
		return fmt.Errorf("scheduler name %q: want 1 to %d characters", s.Scheduler, uapi.IP_VS_SCHEDNAME_MAXLEN-1)
	}
	if len(s.PEName) >= uapi.IP_VS_PENAME_MAXLEN {
		return fmt.Errorf("persistence engine name %q is longer than %d", s.PEName, uapi.IP_VS_PENAME_MAXLEN-1)
	}
	if int(s.Netmask) > s.Family.bits() {
		return fmt.Errorf("netmask /%d is longer than an %s address", s.Netmask, s.Family)
	}
	return nil
}

// Stats are IPVS counters and the kernel's estimated rates (per second).
type Stats struct {
	Connections uint64
	PacketsIn   uint64
	PacketsOut  uint64
	BytesIn     uint64
	BytesOut    uint64
	CPS         uint64
	PPSIn       uint64
	PPSOut      uint64
	BPSIn       uint64
	BPSOut      uint64
}

// ServiceStats is a service as the kernel reports it: the configuration
// and what it has observed.
type ServiceStats struct {
	Service
	Stats Stats
}

// Destination is a real server of a service as it is configured.
type Destination struct {
	Addr netip.Addr
	Port uint16
	// Family is the destination's address family when it differs from the
	// service's (IPv6 service, IPv4 tunnel destination). Zero: the
	// address's family.
	Family         Family
	Forward        ForwardMethod
	Weight         uint32 // the kernel takes 0..MaxInt32; 0 stops new connections
	UpperThreshold uint32 // 0: no limit
	LowerThreshold uint32
	TunnelType     TunnelType  // with Forward == Tunnel
	TunnelPort     uint16      // GUE's UDP port
	TunnelFlags    TunnelFlags // GUE/GRE checksum options
}

// DestinationKey is what identifies a destination within its service.
type DestinationKey struct {
	Addr netip.Addr
	Port uint16
}

// Key is the destination's identity within its service.
func (d Destination) Key() DestinationKey { return DestinationKey{Addr: d.Addr, Port: d.Port} }

func (k DestinationKey) String() string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

func (d Destination) String() string { return d.Key().String() }

// family is the destination's effective address family.
func (d Destination) family() Family {
	if d.Family != 0 {
		return d.Family
	}
	return FamilyOf(d.Addr)
}

// Normalize fills in what the kernel reports for unset fields: the family.
// Tunnel settings of non-tunnel destinations are kept, since the kernel
// keeps and reports them too.
func (d Destination) Normalize() Destination {
	d.Family = d.family()
	if d.Family == IPv4 {
		d.Addr = d.Addr.Unmap()
	}
	return d
}

func (d Destination) validate() error {
	if !d.Addr.IsValid() {
		return fmt.Errorf("destination has no address")
	}
	if !d.family().holds(d.Addr) {
		return fmt.Errorf("destination %s is not %s", d.Addr, d.Family)
	}
	if d.Forward > DirectRoute {
		return fmt.Errorf("destination %s: forwarding method %d is unknown", d, d.Forward)
	}
	if d.Weight > math.MaxInt32 {
		return fmt.Errorf("destination %s: weight %d is above %d", d, d.Weight, math.MaxInt32)
	}
	if d.LowerThreshold > d.UpperThreshold {
		return fmt.Errorf("destination %s: lower threshold %d is above the upper %d", d, d.LowerThreshold, d.UpperThreshold)
	}
	return nil
}

// DestinationStats is a destination as the kernel reports it.
type DestinationStats struct {
	Destination
	ActiveConns     uint32
	InactiveConns   uint32
	PersistentConns uint32
	Stats           Stats
}

// Timeouts are IPVS's connection timeouts. In SetTimeouts a zero field
// leaves that timeout as it is.
type Timeouts struct {
	TCP    uint32 // seconds, established TCP
	TCPFin uint32 // seconds, TCP after FIN
	UDP    uint32 // seconds
}

// Info is what IPVS says about itself.
type Info struct {
	Version       uint32 // e.g. 0x010201 for 1.2.1
	ConnTableSize uint32 // size of the connection hash table
}

// VersionString is the version as "1.2.1".
func (i Info) VersionString() string {
	return fmt.Sprintf("%d.%d.%d", i.Version>>16&0xff, i.Version>>8&0xff, i.Version&0xff)
}

// SyncState is the role of a connection-synchronisation daemon.
type SyncState uint32

// Sync daemon roles.
const (
	SyncMaster SyncState = uapi.IP_VS_STATE_MASTER
	SyncBackup SyncState = uapi.IP_VS_STATE_BACKUP
)

func (s SyncState) String() string {
	switch s {
	case SyncMaster:
		return "master"
	case SyncBackup:
		return "backup"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// SyncDaemon is a connection-synchronisation daemon: a master sends the
// connection table to a multicast group, a backup applies what it hears.
type SyncDaemon struct {
	State     SyncState
	Interface string // multicast interface
	SyncID    uint32 // only messages with this id are applied (0..255)
	// The rest are optional when starting; zero is the kernel's default
	// (1472-byte payloads, 224.0.0.81 or ff02::..., port 8848, TTL 1).
	MaxLen         uint16
	MulticastGroup netip.Addr
	Port           uint16
	TTL            uint8
}

func (d SyncDaemon) validate() error {
	if d.State != SyncMaster && d.State != SyncBackup {
		return fmt.Errorf("sync daemon state %d is neither master nor backup", d.State)
	}
	if d.Interface == "" || len(d.Interface) >= uapi.IP_VS_IFNAME_MAXLEN {
		return fmt.Errorf("sync daemon interface %q: want 1 to %d characters", d.Interface, uapi.IP_VS_IFNAME_MAXLEN-1)
	}
	if d.MulticastGroup.IsValid() && !d.MulticastGroup.IsMulticast() {
		return fmt.Errorf("sync daemon group %s is not a multicast address", d.MulticastGroup)
	}
	return nil
}
