// Package vrrp is the VRRPv3 protocol (RFC 5798) without any I/O: the
// advertisement codec with its pseudo-header checksum, and the
// Initialize/Backup/Master state machine, stepped with explicit times so that
// every timer is testable without sleeping. The HA process (package ha) owns
// the sockets and the clock and feeds packets and time in.
package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Wire constants from RFC 5798 section 5.
const (
	// Version is the only VRRP version this package speaks.
	Version = 3
	// TypeAdvertisement is the only VRRPv3 message type.
	TypeAdvertisement = 1
	// Protocol is the IP protocol number (IPv4) and next header (IPv6).
	Protocol = 112
	// HopLimit is the TTL or hop limit every advert is sent with and must
	// arrive with: a lower value means it crossed a router.
	HopLimit = 255
	// HeaderLen is the fixed part of an advert, before the address list.
	HeaderLen = 8
	// MaxAddresses is what the 8-bit count field can carry.
	MaxAddresses = 255
	// Centisecond is the unit of the advert interval on the wire.
	Centisecond = 10 * time.Millisecond
	// MaxInterval is the largest interval the 12-bit field can carry.
	MaxInterval = 0xfff * Centisecond
)

// GroupV4 and GroupV6 are the multicast groups adverts go to (RFC 5798
// section 5.1.1.2 and 5.1.2.2).
func GroupV4() netip.Addr { return netip.AddrFrom4([4]byte{224, 0, 0, 18}) }

// GroupV6 is ff02::12.
func GroupV6() netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
}

// Group returns the multicast group for the family of a.
func Group(a netip.Addr) netip.Addr {
	if a.Is4() {
		return GroupV4()
	}
	return GroupV6()
}

// Advertisement is a decoded VRRPv3 advertisement.
type Advertisement struct {
	VRID     uint8
	Priority uint8
	// Interval is the sender's advert interval, a whole number of
	// centiseconds between 1 and 4095 on the wire.
	Interval time.Duration
	// Addresses is the address list, all of the sender's address family.
	Addresses []netip.Addr
}

// DropReason says why a received packet was not accepted. Its string is the
// key in the drop counters the HA status reports.
type DropReason string

// The reasons a received packet is dropped (RFC 5798 section 7.1).
const (
	DropTTL         DropReason = "ttl"          // TTL or hop limit is not 255
	DropVersion     DropReason = "version"      // not VRRPv3
	DropType        DropReason = "type"         // not an advertisement
	DropMalformed   DropReason = "malformed"    // truncated, bad length or count, zero interval
	DropChecksum    DropReason = "checksum"     // pseudo-header checksum does not verify
	DropVRID        DropReason = "vrid"         // another virtual router
	DropUnknownPeer DropReason = "unknown_peer" // source is not a configured peer
	DropOwn         DropReason = "own_address"  // our own address as source
	DropFamily      DropReason = "family"       // address family differs from ours
)

// ParseError is why Parse rejected a packet.
type ParseError struct {
	Reason DropReason
	Detail string
}

func (e *ParseError) Error() string { return "vrrp: parse: " + e.Detail }

func parseErr(r DropReason, format string, args ...any) error {
	return &ParseError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// addrLen is the length of one address-list entry for src's family.
func addrLen(src netip.Addr) int {
	if src.Is4() {
		return 4
	}
	return 16
}

// Parse decodes and verifies one advertisement: the IP payload b that came
// from src to dst (which the checksum covers). It checks version, type,
// length against the address count, the interval and the checksum, in that
// order; the error is a *ParseError naming the reason. TTL, VRID and source
// checks need configuration and are the Machine's.
func Parse(b []byte, src, dst netip.Addr) (Advertisement, error) {
	var a Advertisement
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return a, parseErr(DropFamily, "source %v and destination %v are not one address family", src, dst)
	}
	if len(b) < HeaderLen {
		return a, parseErr(DropMalformed, "%d bytes, shorter than the %d-byte header", len(b), HeaderLen)
	}
	if v := b[0] >> 4; v != Version {
		return a, parseErr(DropVersion, "version %d, want %d", v, Version)
	}
	if t := b[0] & 0x0f; t != TypeAdvertisement {
		return a, parseErr(DropType, "type %d, want %d (advertisement)", t, TypeAdvertisement)
	}
	n := int(b[3])
	al := addrLen(src)
	if want := HeaderLen + n*al; len(b) != want {
		return a, parseErr(DropMalformed, "%d bytes, want %d for %d addresses", len(b), want, n)
	}
	// The top 4 bits are reserved: ignored on receipt (RFC 5798 5.2.7).
	cs := binary.BigEndian.Uint16(b[4:6]) & 0x0fff
	if cs == 0 {
		return a, parseErr(DropMalformed, "advert interval 0")
	}
	if sum := checksum(b, src, dst); sum != 0 {
		return a, parseErr(DropChecksum, "checksum %#04x does not verify (off by %#04x)", binary.BigEndian.Uint16(b[6:8]), sum)
	}
	a.VRID, a.Priority = b[1], b[2]
	a.Interval = time.Duration(cs) * Centisecond
	if n > 0 {
		a.Addresses = make([]netip.Addr, n)
		for i := range n {
			p := b[HeaderLen+i*al : HeaderLen+(i+1)*al]
			if al == 4 {
				a.Addresses[i] = netip.AddrFrom4([4]byte(p))
			} else {
				a.Addresses[i] = netip.AddrFrom16([16]byte(p))
			}
		}
	}
	return a, nil
}

// IntervalCentiseconds is d in the wire's unit, rounded to the nearest
// centisecond, or an error when it does not fit the 12-bit field.
func IntervalCentiseconds(d time.Duration) (uint16, error) {
	if d < Centisecond || d > MaxInterval {
		return 0, fmt.Errorf("vrrp: advert interval %v is outside %v..%v", d, Centisecond, MaxInterval)
	}
	return uint16((d + Centisecond/2) / Centisecond), nil
}

// Append encodes a as sent from src to dst (which the checksum covers) and
// appends it to b.
func (a *Advertisement) Append(b []byte, src, dst netip.Addr) ([]byte, error) {
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return b, fmt.Errorf("vrrp: encode: source %v and destination %v are not one address family", src, dst)
	}
	if len(a.Addresses) > MaxAddresses {
		return b, fmt.Errorf("vrrp: encode: %d addresses, at most %d fit", len(a.Addresses), MaxAddresses)
	}
	cs, err := IntervalCentiseconds(a.Interval)
	if err != nil {
		return b, err
	}
	start := len(b)
	b = append(b, Version<<4|TypeAdvertisement, a.VRID, a.Priority, byte(len(a.Addresses)))
	b = binary.BigEndian.AppendUint16(b, cs)
	b = append(b, 0, 0) // checksum, filled in below
	for _, ad := range a.Addresses {
		if ad.Is4() != src.Is4() || ad.Is4In6() {
			return b[:start], fmt.Errorf("vrrp: encode: address %v is not of the source's family (%v)", ad, src)
		}
		b = append(b, ad.AsSlice()...)
	}
	msg := b[start:]
	binary.BigEndian.PutUint16(msg[6:8], ^sum16(msg, src, dst))
	return b, nil
}

// checksum returns the ones'-complement sum of the message and its
// pseudo-header, complemented: zero when the message's checksum verifies.
func checksum(msg []byte, src, dst netip.Addr) uint16 {
	return ^sum16(msg, src, dst)
}

// sum16 is the folded ones'-complement sum (RFC 1071) of the pseudo-header
// and msg. The IPv4 pseudo-header (src, dst, zero, protocol, length) and the
// IPv6 one of RFC 8200 section 8.1 (src, dst, 32-bit length, zeros, next
// header) sum to the same 16-bit words apart from the addresses, so one
// function serves both.
func sum16(msg []byte, src, dst netip.Addr) uint16 {
	var s uint32
	add := func(p []byte) {
		for len(p) >= 2 {
			s += uint32(p[0])<<8 | uint32(p[1])
			p = p[2:]
		}
		if len(p) == 1 {
			s += uint32(p[0]) << 8
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	s += Protocol
	s += uint32(len(msg)) // at most 8+255*16 bytes: one 16-bit word
	add(msg)
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
