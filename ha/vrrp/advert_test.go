package vrrp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	v4src = netip.MustParseAddr("192.0.2.2")
	v6src = netip.MustParseAddr("fe80::2")
)

// keepalived 2.2.7 adverts captured on a veth pair between two namespaces
// (IP payload only): an IPv4 instance, VRID 51, priority 150, advert_int 0.1,
// VIPs 192.0.2.100 and .101, and an IPv6 instance, VRID 52, priority 150,
// advert_int 0.2, VIP 2001:db8::100, from fe80::2.
var keepalivedCaptures = []struct {
	name     string
	src, dst netip.Addr
	payload  string
	want     Advertisement
}{
	{"ipv4", v4src, GroupV4(), "31339602000a1160c0000264c0000265", Advertisement{
		VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("192.0.2.101")},
	}},
	{"ipv6", v6src, GroupV6(), "3134960100140bdd20010db8000000000000000000000100", Advertisement{
		VRID: 52, Priority: 150, Interval: 200 * time.Millisecond,
		Addresses: []netip.Addr{netip.MustParseAddr("2001:db8::100")},
	}},
}

func TestParseKeepalivedCaptures(t *testing.T) {
	for _, c := range keepalivedCaptures {
		t.Run(c.name, func(t *testing.T) {
			b := mustHex(t, c.payload)
			a, err := Parse(b, c.src, c.dst)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if a.VRID != c.want.VRID || a.Priority != c.want.Priority || a.Interval != c.want.Interval || !slices.Equal(a.Addresses, c.want.Addresses) {
				t.Errorf("Parse = %+v, want %+v", a, c.want)
			}
			// Our encoder produces keepalived's bytes, checksum included.
			got, err := c.want.Append(nil, c.src, c.dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, b) {
				t.Errorf("Append = %x, keepalived sent %x", got, b)
			}
			// The checksum covers the pseudo-header: the same bytes from
			// another source do not verify.
			other := c.src.Next()
			if _, err := Parse(b, other, c.dst); reason(err) != DropChecksum {
				t.Errorf("Parse from %v: err %v, want a checksum error", other, err)
			}
		})
	}
}

func reason(err error) DropReason {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	return ""
}

func TestParseRejects(t *testing.T) {
	good := mustHex(t, keepalivedCaptures[0].payload)
	g := GroupV4()
	mod := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	for _, c := range []struct {
		name string
		b    []byte
		src  netip.Addr
		want DropReason
	}{
		{"empty", nil, v4src, DropMalformed},
		{"short header", good[:7], v4src, DropMalformed},
		{"truncated list", good[:12], v4src, DropMalformed},
		{"trailing byte", append(slices.Clone(good), 0), v4src, DropMalformed},
		{"count too high", mod(func(b []byte) []byte { b[3] = 3; return b }), v4src, DropMalformed},
		{"version 2", mod(func(b []byte) []byte { b[0] = 0x21; return b }), v4src, DropVersion},
		{"type 2", mod(func(b []byte) []byte { b[0] = 0x32; return b }), v4src, DropType},
		{"zero interval", mod(func(b []byte) []byte { b[4], b[5] = 0xf0, 0; return b }), v4src, DropMalformed},
		{"bad checksum", mod(func(b []byte) []byte { b[7] ^= 1; return b }), v4src, DropChecksum},
		{"priority changed", mod(func(b []byte) []byte { b[2]++; return b }), v4src, DropChecksum},
		{"reserved bits changed", mod(func(b []byte) []byte { b[4] |= 0x10; return b }), v4src, DropChecksum},
		{"mixed family", good, v6src, DropFamily},
	} {
		_, err := Parse(c.b, c.src, g)
		if got := reason(err); got != c.want {
			t.Errorf("%s: Parse err = %v (reason %q), want reason %q", c.name, err, got, c.want)
		}
	}
}

func TestReservedBitsIgnored(t *testing.T) {
	// A sender that sets the reserved bits (and checksums them) is heard.
	a := Advertisement{VRID: 1, Priority: 100, Interval: time.Second}
	b, err := a.Append(nil, v4src, GroupV4())
	if err != nil {
		t.Fatal(err)
	}
	b[4] |= 0xf0
	b[6], b[7] = 0, 0
	s := ^sum16(b, v4src, GroupV4())
	b[6], b[7] = byte(s>>8), byte(s)
	got, err := Parse(b, v4src, GroupV4())
	if err != nil || got.Interval != time.Second {
		t.Errorf("Parse = %+v, %v; want interval 1s", got, err)
	}
}

func TestAppendRejects(t *testing.T) {
	many := make([]netip.Addr, 256)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
	}
	for _, c := range []struct {
		name string
		a    Advertisement
		src  netip.Addr
	}{
		{"interval too short", Advertisement{VRID: 1, Interval: time.Millisecond}, v4src},
		{"interval too long", Advertisement{VRID: 1, Interval: 41 * time.Second}, v4src},
		{"too many addresses", Advertisement{VRID: 1, Interval: time.Second, Addresses: many}, v4src},
		{"v6 address in v4 advert", Advertisement{VRID: 1, Interval: time.Second, Addresses: []netip.Addr{v6src}}, v4src},
		{"v4 address in v6 advert", Advertisement{VRID: 1, Interval: time.Second, Addresses: []netip.Addr{v4src}}, v6src},
	} {
		if b, err := c.a.Append(nil, c.src, Group(c.src)); err == nil {
			t.Errorf("%s: Append = %x, want an error", c.name, b)
		}
	}
}

func TestIntervalRounding(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want uint16
	}{
		{10 * time.Millisecond, 1},
		{14 * time.Millisecond, 1},
		{15 * time.Millisecond, 2},
		{20 * time.Millisecond, 2},
		{time.Second, 100},
		{MaxInterval, 0xfff},
	} {
		got, err := IntervalCentiseconds(c.d)
		if err != nil || got != c.want {
			t.Errorf("IntervalCentiseconds(%v) = %d, %v; want %d", c.d, got, err, c.want)
		}
	}
}

// TestSingleBitFlipsDetected: the ones'-complement checksum catches every
// single-bit error in the message, whichever check reports it.
func TestSingleBitFlipsDetected(t *testing.T) {
	for _, c := range keepalivedCaptures {
		b := mustHex(t, c.payload)
		for i := range len(b) * 8 {
			f := slices.Clone(b)
			f[i/8] ^= 1 << (i % 8)
			if a, err := Parse(f, c.src, c.dst); err == nil {
				t.Errorf("%s: bit %d flipped: Parse accepted %+v", c.name, i, a)
			}
		}
	}
}
