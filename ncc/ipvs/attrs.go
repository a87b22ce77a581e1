package ipvs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/mdlayher/netlink"

	"github.com/seesawlb/seesaw/ncc/ipvs/internal/uapi"
)

// This file turns the package's types into IPVS netlink attributes and back.
// It is pure (no sockets), so it is fuzzed and tested byte by byte on any OS.
//
// Wire facts, from net/netfilter/ipvs/ip_vs_ctl.c (ip_vs_genl_fill_* and
// ip_vs_genl_parse_*): integers are in host order except ports, the IPv4
// persistence netmask and the IPv4 sync group, which are big-endian (the
// sync daemon's port is in host order);
// addresses travel as a 16-byte union nf_inet_addr (IPv4 in the first four
// bytes); flags are a struct ip_vs_flags {flags, mask}.

// addrLen is sizeof(union nf_inet_addr).
const addrLen = 16

// putAddr writes a as family f: an IPv4 address (or an IPv4-mapped one)
// in the first four bytes, an IPv6 one in all sixteen.
func putAddr(a netip.Addr, f Family) []byte {
	b := make([]byte, addrLen)
	switch {
	case !a.IsValid():
	case f == IPv4:
		v := a.Unmap().As4()
		copy(b, v[:])
	default:
		v := a.As16()
		copy(b, v[:])
	}
	return b
}

// getAddr reads an address of family f from an attribute: at least 4
// (IPv4) or 16 (IPv6) bytes.
func getAddr(b []byte, f Family) (netip.Addr, error) {
	switch f {
	case IPv4:
		if len(b) < 4 {
			return netip.Addr{}, fmt.Errorf("IPv4 address attribute has %d bytes", len(b))
		}
		return netip.AddrFrom4([4]byte(b[:4])), nil
	case IPv6:
		if len(b) < 16 {
			return netip.Addr{}, fmt.Errorf("IPv6 address attribute has %d bytes", len(b))
		}
		return netip.AddrFrom16([16]byte(b[:16])), nil
	}
	return netip.Addr{}, fmt.Errorf("address of unknown family %d", f)
}

// cstring reads a string attribute the way the kernel's C code does: up
// to the first NUL.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// maskOf is the persistence netmask attribute: an IPv4 mask in network
// order, or an IPv6 prefix length as a host-order u32 (the kernel reads
// both with nla_get_be32 but uses the IPv6 value as a plain number).
func maskOf(f Family, prefix uint8) []byte {
	if prefix == 0 {
		prefix = uint8(f.bits())
	}
	if f == IPv6 {
		return binary.NativeEndian.AppendUint32(nil, uint32(prefix))
	}
	return binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-uint32(prefix)))
}

func prefixOf(f Family, b []byte) (uint8, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("netmask attribute has %d bytes, want 4", len(b))
	}
	if f == IPv6 {
		p := binary.NativeEndian.Uint32(b)
		if p > 128 {
			return 0, fmt.Errorf("IPv6 netmask /%d is longer than 128", p)
		}
		return uint8(p), nil
	}
	m := binary.BigEndian.Uint32(b)
	ones := bits.LeadingZeros32(^m)
	if m<<ones != 0 {
		return 0, fmt.Errorf("IPv4 netmask %s is not a prefix", netip.AddrFrom4([4]byte(b)))
	}
	return uint8(ones), nil
}

// encodeServiceKey writes the attributes that name a service.
func encodeServiceKey(ae *netlink.AttributeEncoder, k ServiceKey) {
	ae.Uint16(uapi.IPVS_SVC_ATTR_AF, uint16(k.Family))
	if k.FWMark != 0 {
		ae.Uint32(uapi.IPVS_SVC_ATTR_FWMARK, k.FWMark)
		return
	}
	ae.Uint16(uapi.IPVS_SVC_ATTR_PROTOCOL, uint16(k.Protocol))
	ae.Bytes(uapi.IPVS_SVC_ATTR_ADDR, putAddr(k.Addr, k.Family))
	ae.Bytes(uapi.IPVS_SVC_ATTR_PORT, be16(k.Port))
}

// encodeService writes a whole service: the kernel wants the scheduler,
// flags, timeout and netmask in every NEW and SET.
func encodeService(ae *netlink.AttributeEncoder, s Service) {
	encodeServiceKey(ae, s.ServiceKey)
	ae.String(uapi.IPVS_SVC_ATTR_SCHED_NAME, s.Scheduler)
	if s.PEName != "" {
		ae.String(uapi.IPVS_SVC_ATTR_PE_NAME, s.PEName)
	}
	flags := make([]byte, 0, 8)
	flags = binary.NativeEndian.AppendUint32(flags, uint32(s.Flags&^FlagHashed))
	// The mask says which flags to set; all of them, so that SET replaces
	// the flags instead of merging with the old ones.
	flags = binary.NativeEndian.AppendUint32(flags, ^uint32(0))
	ae.Bytes(uapi.IPVS_SVC_ATTR_FLAGS, flags)
	ae.Uint32(uapi.IPVS_SVC_ATTR_TIMEOUT, s.Timeout)
	ae.Bytes(uapi.IPVS_SVC_ATTR_NETMASK, maskOf(s.Family, s.Netmask))
}

// decodeService reads the attributes inside IPVS_CMD_ATTR_SERVICE.
func decodeService(b []byte) (ServiceStats, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return ServiceStats{}, err
	}
	var (
		s                  ServiceStats
		addr, mask, flags  []byte
		hasPort, hasFamily bool
		stats32, stats64   *Stats
	)
	for ad.Next() {
		switch ad.Type() {
		case uapi.IPVS_SVC_ATTR_AF:
			s.Family = Family(ad.Uint16())
			hasFamily = true
		case uapi.IPVS_SVC_ATTR_PROTOCOL:
			s.Protocol = Protocol(ad.Uint16())
		case uapi.IPVS_SVC_ATTR_ADDR:
			addr = ad.Bytes()
		case uapi.IPVS_SVC_ATTR_PORT:
			s.Port = getBE16(ad)
			hasPort = true
		case uapi.IPVS_SVC_ATTR_FWMARK:
			s.FWMark = ad.Uint32()
		case uapi.IPVS_SVC_ATTR_SCHED_NAME:
			s.Scheduler = cstring(ad.Bytes())
		case uapi.IPVS_SVC_ATTR_FLAGS:
			flags = ad.Bytes()
		case uapi.IPVS_SVC_ATTR_TIMEOUT:
			s.Timeout = ad.Uint32()
		case uapi.IPVS_SVC_ATTR_NETMASK:
			mask = ad.Bytes()
		case uapi.IPVS_SVC_ATTR_PE_NAME:
			s.PEName = cstring(ad.Bytes())
		case uapi.IPVS_SVC_ATTR_STATS:
			stats32 = new(Stats)
			ad.Nested(decodeStats(stats32))
		case uapi.IPVS_SVC_ATTR_STATS64:
			stats64 = new(Stats)
			ad.Nested(decodeStats(stats64))
		}
	}
	if err := ad.Err(); err != nil {
		return ServiceStats{}, err
	}
	if !hasFamily {
		return ServiceStats{}, errors.New("service has no address family")
	}
	if s.Family != IPv4 && s.Family != IPv6 {
		return ServiceStats{}, fmt.Errorf("service has unknown address family %d", s.Family)
	}
	if s.FWMark != 0 {
		// The kernel keeps fwmark services under protocol TCP and no
		// address; neither is part of their identity.
		s.Protocol, s.Addr, s.Port = 0, netip.Addr{}, 0
	} else {
		if addr == nil || !hasPort {
			return ServiceStats{}, errors.New("service has neither a firewall mark nor an address and port")
		}
		if s.Addr, err = getAddr(addr, s.Family); err != nil {
			return ServiceStats{}, fmt.Errorf("service: %w", err)
		}
	}
	if flags != nil {
		if len(flags) < 4 {
			return ServiceStats{}, fmt.Errorf("service flags attribute has %d bytes", len(flags))
		}
		s.Flags = ServiceFlags(binary.NativeEndian.Uint32(flags)) &^ FlagHashed
	}
	if mask != nil {
		if s.Netmask, err = prefixOf(s.Family, mask); err != nil {
			return ServiceStats{}, fmt.Errorf("service %s: %w", s.ServiceKey, err)
		}
	}
	switch {
	case stats64 != nil:
		s.Stats = *stats64
	case stats32 != nil:
		s.Stats = *stats32
	}
	return s, nil
}

// getBE16 reads a big-endian u16 attribute, leaving an error in ad when
// the length is wrong.
func getBE16(ad *netlink.AttributeDecoder) uint16 {
	var v uint16
	ad.Do(func(b []byte) error {
		if len(b) != 2 {
			return fmt.Errorf("port attribute %d has %d bytes, want 2", ad.Type(), len(b))
		}
		v = binary.BigEndian.Uint16(b)
		return nil
	})
	return v
}

// decodeStats reads IPVS_*_ATTR_STATS (u32 counters, u64 bytes) and
// IPVS_*_ATTR_STATS64 (all u64) alike, by each attribute's length.
func decodeStats(s *Stats) func(*netlink.AttributeDecoder) error {
	return func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			var p *uint64
			switch ad.Type() {
			case uapi.IPVS_STATS_ATTR_CONNS:
				p = &s.Connections
			case uapi.IPVS_STATS_ATTR_INPKTS:
				p = &s.PacketsIn
			case uapi.IPVS_STATS_ATTR_OUTPKTS:
				p = &s.PacketsOut
			case uapi.IPVS_STATS_ATTR_INBYTES:
				p = &s.BytesIn
			case uapi.IPVS_STATS_ATTR_OUTBYTES:
				p = &s.BytesOut
			case uapi.IPVS_STATS_ATTR_CPS:
				p = &s.CPS
			case uapi.IPVS_STATS_ATTR_INPPS:
				p = &s.PPSIn
			case uapi.IPVS_STATS_ATTR_OUTPPS:
				p = &s.PPSOut
			case uapi.IPVS_STATS_ATTR_INBPS:
				p = &s.BPSIn
			case uapi.IPVS_STATS_ATTR_OUTBPS:
				p = &s.BPSOut
			default:
				continue // IPVS_STATS_ATTR_PAD and anything newer
			}
			ad.Do(func(b []byte) error {
				switch len(b) {
				case 4:
					*p = uint64(binary.NativeEndian.Uint32(b))
				case 8:
					*p = binary.NativeEndian.Uint64(b)
				default:
					return fmt.Errorf("statistic %d has %d bytes", ad.Type(), len(b))
				}
				return nil
			})
		}
		return nil
	}
}

// encodeDestinationKey writes the attributes that name a destination.
func encodeDestinationKey(ae *netlink.AttributeEncoder, d Destination) {
	ae.Bytes(uapi.IPVS_DEST_ATTR_ADDR, putAddr(d.Addr, d.family()))
	ae.Bytes(uapi.IPVS_DEST_ATTR_PORT, be16(d.Port))
	ae.Uint16(uapi.IPVS_DEST_ATTR_ADDR_FAMILY, uint16(d.family()))
}

// encodeDestination writes a whole destination. Tunnel settings are sent
// always (zero for non-tunnels) so that the kernel does not keep stale ones
// from an earlier forwarding method.
func encodeDestination(ae *netlink.AttributeEncoder, d Destination) {
	encodeDestinationKey(ae, d)
	ae.Uint32(uapi.IPVS_DEST_ATTR_FWD_METHOD, uint32(d.Forward))
	ae.Uint32(uapi.IPVS_DEST_ATTR_WEIGHT, d.Weight)
	ae.Uint32(uapi.IPVS_DEST_ATTR_U_THRESH, d.UpperThreshold)
	ae.Uint32(uapi.IPVS_DEST_ATTR_L_THRESH, d.LowerThreshold)
	ae.Uint8(uapi.IPVS_DEST_ATTR_TUN_TYPE, uint8(d.TunnelType))
	ae.Bytes(uapi.IPVS_DEST_ATTR_TUN_PORT, be16(d.TunnelPort))
	ae.Uint16(uapi.IPVS_DEST_ATTR_TUN_FLAGS, uint16(d.TunnelFlags))
}

// decodeDestination reads the attributes inside IPVS_CMD_ATTR_DEST. f is
// the service's family, which kernels before 4.2 do not repeat per
// destination.
func decodeDestination(b []byte, f Family) (DestinationStats, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return DestinationStats{}, err
	}
	var (
		d                DestinationStats
		addr             []byte
		hasPort          bool
		stats32, stats64 *Stats
	)
	for ad.Next() {
		switch ad.Type() {
		case uapi.IPVS_DEST_ATTR_ADDR:
			addr = ad.Bytes()
		case uapi.IPVS_DEST_ATTR_PORT:
			d.Port = getBE16(ad)
			hasPort = true
		case uapi.IPVS_DEST_ATTR_FWD_METHOD:
			d.Forward = ForwardMethod(ad.Uint32() & uapi.IP_VS_CONN_F_FWD_MASK)
		case uapi.IPVS_DEST_ATTR_WEIGHT:
			d.Weight = ad.Uint32()
		case uapi.IPVS_DEST_ATTR_U_THRESH:
			d.UpperThreshold = ad.Uint32()
		case uapi.IPVS_DEST_ATTR_L_THRESH:
			d.LowerThreshold = ad.Uint32()
		case uapi.IPVS_DEST_ATTR_ACTIVE_CONNS:
			d.ActiveConns = ad.Uint32()
		case uapi.IPVS_DEST_ATTR_INACT_CONNS:
			d.InactiveConns = ad.Uint32()
		case uapi.IPVS_DEST_ATTR_PERSIST_CONNS:
			d.PersistentConns = ad.Uint32()
		case uapi.IPVS_DEST_ATTR_ADDR_FAMILY:
			d.Family = Family(ad.Uint16())
		case uapi.IPVS_DEST_ATTR_TUN_TYPE:
			d.TunnelType = TunnelType(ad.Uint8())
		case uapi.IPVS_DEST_ATTR_TUN_PORT:
			d.TunnelPort = getBE16(ad)
		case uapi.IPVS_DEST_ATTR_TUN_FLAGS:
			d.TunnelFlags = TunnelFlags(ad.Uint16())
		case uapi.IPVS_DEST_ATTR_STATS:
			stats32 = new(Stats)
			ad.Nested(decodeStats(stats32))
		case uapi.IPVS_DEST_ATTR_STATS64:
			stats64 = new(Stats)
			ad.Nested(decodeStats(stats64))
		}
	}
	if err := ad.Err(); err != nil {
		return DestinationStats{}, err
	}
	if d.Family == 0 {
		d.Family = f
	}
	if addr == nil || !hasPort {
		return DestinationStats{}, errors.New("destination has no address or port")
	}
	if d.Addr, err = getAddr(addr, d.Family); err != nil {
		return DestinationStats{}, fmt.Errorf("destination: %w", err)
	}
	switch {
	case stats64 != nil:
		d.Stats = *stats64
	case stats32 != nil:
		d.Stats = *stats32
	}
	return d, nil
}

// encodeDaemon writes a sync daemon for IPVS_CMD_NEW_DAEMON.
func encodeDaemon(ae *netlink.AttributeEncoder, d SyncDaemon) {
	ae.Uint32(uapi.IPVS_DAEMON_ATTR_STATE, uint32(d.State))
	ae.String(uapi.IPVS_DAEMON_ATTR_MCAST_IFN, d.Interface)
	ae.Uint32(uapi.IPVS_DAEMON_ATTR_SYNC_ID, d.SyncID)
	if d.MaxLen != 0 {
		ae.Uint16(uapi.IPVS_DAEMON_ATTR_SYNC_MAXLEN, d.MaxLen)
	}
	if g := d.MulticastGroup; g.IsValid() {
		if g.Is4() {
			v := g.As4()
			ae.Bytes(uapi.IPVS_DAEMON_ATTR_MCAST_GROUP, v[:])
		} else {
			v := g.As16()
			ae.Bytes(uapi.IPVS_DAEMON_ATTR_MCAST_GROUP6, v[:])
		}
	}
	if d.Port != 0 {
		// Host order, unlike the service and destination ports: the
		// kernel keeps the sync port as a plain number.
		ae.Uint16(uapi.IPVS_DAEMON_ATTR_MCAST_PORT, d.Port)
	}
	if d.TTL != 0 {
		ae.Uint8(uapi.IPVS_DAEMON_ATTR_MCAST_TTL, d.TTL)
	}
}

// decodeDaemon reads the attributes inside IPVS_CMD_ATTR_DAEMON.
func decodeDaemon(b []byte) (SyncDaemon, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return SyncDaemon{}, err
	}
	var d SyncDaemon
	hasState := false
	for ad.Next() {
		switch ad.Type() {
		case uapi.IPVS_DAEMON_ATTR_STATE:
			d.State = SyncState(ad.Uint32())
			hasState = true
		case uapi.IPVS_DAEMON_ATTR_MCAST_IFN:
			d.Interface = cstring(ad.Bytes())
		case uapi.IPVS_DAEMON_ATTR_SYNC_ID:
			d.SyncID = ad.Uint32()
		case uapi.IPVS_DAEMON_ATTR_SYNC_MAXLEN:
			d.MaxLen = ad.Uint16()
		case uapi.IPVS_DAEMON_ATTR_MCAST_GROUP:
			ad.Do(func(b []byte) error {
				if len(b) != 4 {
					return fmt.Errorf("IPv4 sync group has %d bytes", len(b))
				}
				d.MulticastGroup = netip.AddrFrom4([4]byte(b))
				return nil
			})
		case uapi.IPVS_DAEMON_ATTR_MCAST_GROUP6:
			ad.Do(func(b []byte) error {
				if len(b) != 16 {
					return fmt.Errorf("IPv6 sync group has %d bytes", len(b))
				}
				d.MulticastGroup = netip.AddrFrom16([16]byte(b))
				return nil
			})
		case uapi.IPVS_DAEMON_ATTR_MCAST_PORT:
			d.Port = ad.Uint16()
		case uapi.IPVS_DAEMON_ATTR_MCAST_TTL:
			d.TTL = ad.Uint8()
		}
	}
	if err := ad.Err(); err != nil {
		return SyncDaemon{}, err
	}
	if !hasState {
		return SyncDaemon{}, errors.New("sync daemon has no state")
	}
	return d, nil
}

// decodeTimeouts reads the reply to IPVS_CMD_GET_CONFIG.
func decodeTimeouts(b []byte) (Timeouts, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return Timeouts{}, err
	}
	var t Timeouts
	for ad.Next() {
		switch ad.Type() {
		case uapi.IPVS_CMD_ATTR_TIMEOUT_TCP:
			t.TCP = ad.Uint32()
		case uapi.IPVS_CMD_ATTR_TIMEOUT_TCP_FIN:
			t.TCPFin = ad.Uint32()
		case uapi.IPVS_CMD_ATTR_TIMEOUT_UDP:
			t.UDP = ad.Uint32()
		}
	}
	return t, ad.Err()
}

// decodeInfo reads the reply to IPVS_CMD_GET_INFO.
func decodeInfo(b []byte) (Info, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return Info{}, err
	}
	var i Info
	for ad.Next() {
		switch ad.Type() {
		case uapi.IPVS_INFO_ATTR_VERSION:
			i.Version = ad.Uint32()
		case uapi.IPVS_INFO_ATTR_CONN_TAB_SIZE:
			i.ConnTableSize = ad.Uint32()
		}
	}
	return i, ad.Err()
}

// nested finds the first attribute of type typ in a message's attributes,
// for the replies that wrap a service, destination or daemon in one.
func nested(b []byte, typ uint16) ([]byte, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	for ad.Next() {
		if ad.Type() == typ {
			return ad.Bytes(), nil
		}
	}
	if err := ad.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("reply lacks attribute %d", typ)
}
