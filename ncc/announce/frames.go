// Package announce tells a LAN where a VIP lives now: a gratuitous ARP
// (an ARP announcement, RFC 5227) for an IPv4 address and an unsolicited
// neighbour advertisement with the override flag (RFC 4861 §7.2.6) for an
// IPv6 one, as whole Ethernet frames sent on the VIP's interface. Hosts and
// switches that knew the address at another MAC (the other node's, before
// a failover) update their caches.
//
// Frames are built here, pure and testable; Sender (Linux only) sends them
// through an AF_PACKET socket.
package announce

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
)

// Frame is the announcement of addr from an interface whose MAC is mac:
// an ARP announcement for IPv4, an unsolicited neighbour advertisement for
// IPv6.
func Frame(mac net.HardwareAddr, addr netip.Addr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, errors.New("announce: a MAC of 6 bytes is needed")
	}
	addr = addr.Unmap()
	switch {
	case addr.Is4():
		return arpAnnouncement(mac, addr), nil
	case addr.Is6() && !addr.IsMulticast():
		return unsolicitedNA(mac, addr), nil
	}
	return nil, errors.New("announce: not a unicast address: " + addr.String())
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// arpAnnouncement is an ARP request for addr from addr (sender and target
// protocol addresses both the VIP), broadcast, padded to the 60 bytes of a
// minimal Ethernet frame.
func arpAnnouncement(mac net.HardwareAddr, addr netip.Addr) []byte {
	b := make([]byte, 0, 60)
	b = append(b, broadcast...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, 0x0806) // ETH_P_ARP
	b = binary.BigEndian.AppendUint16(b, 1)      // hardware: Ethernet
	b = binary.BigEndian.AppendUint16(b, 0x0800) // protocol: IPv4
	b = append(b, 6, 4)                          // address lengths
	b = binary.BigEndian.AppendUint16(b, 1)      // request
	ip := addr.As4()
	b = append(b, mac...)
	b = append(b, ip[:]...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	b = append(b, ip[:]...)
	return append(b, make([]byte, 60-len(b))...)
}

// allNodes is ff02::1 and its multicast MAC.
var (
	allNodes    = netip.MustParseAddr("ff02::1")
	allNodesMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
)

// unsolicitedNA is a neighbour advertisement of addr at mac to all nodes,
// with the override flag and the target link-layer address option, from
// addr, hop limit 255 (receivers drop anything else).
func unsolicitedNA(mac net.HardwareAddr, addr netip.Addr) []byte {
	const icmpLen = 4 + 4 + 16 + 8
	b := make([]byte, 0, 14+40+icmpLen)
	b = append(b, allNodesMAC...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, 0x86dd) // ETH_P_IPV6
	b = append(b, 0x60, 0, 0, 0)                 // version 6, no class or flow
	b = binary.BigEndian.AppendUint16(b, icmpLen)
	b = append(b, 58, 255) // next header ICMPv6, hop limit 255
	src, dst := addr.As16(), allNodes.As16()
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	icmp := len(b)
	b = append(b, 136, 0, 0, 0)  // neighbour advertisement, code 0, checksum
	b = append(b, 0x20, 0, 0, 0) // flags: override
	b = append(b, src[:]...)     // target
	b = append(b, 2, 1)          // option: target link-layer address, 8 bytes
	b = append(b, mac...)
	binary.BigEndian.PutUint16(b[icmp+2:], icmpv6Checksum(src, dst, b[icmp:]))
	return b
}

// icmpv6Checksum is the Internet checksum of the IPv6 pseudo-header and the
// message (whose checksum field is zero).
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var pseudo [8]byte
	binary.BigEndian.PutUint32(pseudo[:4], uint32(len(msg)))
	pseudo[7] = 58
	add(pseudo[:])
	add(msg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
