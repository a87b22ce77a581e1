package announce

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func hx(s string) []byte {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		l, _, _ = strings.Cut(l, "#")
		b.WriteString(strings.Join(strings.Fields(l), ""))
	}
	out, err := hex.DecodeString(b.String())
	if err != nil {
		panic(err)
	}
	return out
}

var vmac = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x2a}

// The expected frames are written from RFC 826/5227 and RFC 4861; the
// checksum was computed apart (a few lines of Python over the same bytes).
func TestFrames(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want string
	}{
		{"192.0.2.10", `
			ff ff ff ff ff ff  00 00 5e 00 01 2a  08 06   # broadcast, from the VRRP MAC, ARP
			00 01 08 00 06 04 00 01                        # Ethernet, IPv4, 6, 4, request
			00 00 5e 00 01 2a  c0 00 02 0a                 # sender: MAC, VIP
			00 00 00 00 00 00  c0 00 02 0a                 # target: none, VIP (an announcement)
			00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  # padding to 60 bytes`},
		{"2001:db8::10", `
			33 33 00 00 00 01  00 00 5e 00 01 2a  86 dd   # all nodes, from the VRRP MAC, IPv6
			60 00 00 00  00 20 3a ff                       # payload 32, ICMPv6, hop limit 255
			20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 10   # from the VIP
			ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 01   # to ff02::1
			88 00 9b e3                                    # neighbour advertisement, checksum
			20 00 00 00                                    # override
			20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 10   # target: the VIP
			02 01 00 00 5e 00 01 2a                        # target link-layer address`},
	} {
		got, err := Frame(vmac, netip.MustParseAddr(tt.addr))
		if err != nil {
			t.Fatal(err)
		}
		if want := hx(tt.want); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", tt.addr, got, want)
		}
	}
}

func TestFrameRefuses(t *testing.T) {
	if _, err := Frame(vmac, netip.MustParseAddr("ff02::1")); err == nil {
		t.Error("a multicast address was announced")
	}
	if _, err := Frame(vmac[:4], netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("a short MAC was taken")
	}
	// An IPv4-mapped address is announced as IPv4.
	if f, err := Frame(vmac, netip.MustParseAddr("::ffff:192.0.2.10")); err != nil || f[12] != 0x08 || f[13] != 0x06 {
		t.Errorf("mapped address: %x %v", f, err)
	}
}
