package ipvs

import (
	"testing"

	"github.com/mdlayher/netlink"

	"github.com/seesawlb/seesaw/ncc/ipvs/internal/uapi"
)

// The fuzzers feed the decoders arbitrary replies. A decoder may refuse
// its input, but must not panic, and whatever it accepts must survive a
// round trip through the encoder unchanged (so that what the client reads
// it can write back). Seeds are in testdata/fuzz.

func encoded(t *testing.T, fn func(ae *netlink.AttributeEncoder)) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	fn(ae)
	b, err := ae.Encode()
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

func FuzzDecodeService(f *testing.F) {
	f.Add(hx(kernelService))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeServiceMessage(b)
		if err != nil {
			return
		}
		again, err := decodeServiceMessage(encoded(t, serviceAttr(s.Service)))
		if err != nil {
			t.Fatalf("re-decode %+v: %v", s.Service, err)
		}
		if got, want := again.Service.Normalize(), s.Service.Normalize(); got != want {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
	})
}

func FuzzDecodeDestination(f *testing.F) {
	f.Add(hx(kernelDest), false)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		fam := IPv4
		if v6 {
			fam = IPv6
		}
		d, err := decodeDestinationMessage(b, fam)
		if err != nil {
			return
		}
		again, err := decodeDestinationMessage(encoded(t, func(ae *netlink.AttributeEncoder) {
			ae.Nested(uapi.IPVS_CMD_ATTR_DEST, func(nae *netlink.AttributeEncoder) error {
				encodeDestination(nae, d.Destination)
				return nil
			})
		}), fam)
		if err != nil {
			t.Fatalf("re-decode %+v: %v", d.Destination, err)
		}
		if again.Destination != d.Destination {
			t.Fatalf("round trip:\n got %+v\nwant %+v", again.Destination, d.Destination)
		}
	})
}

func FuzzDecodeDaemon(f *testing.F) {
	f.Add(hx(`40 00 03 00
		08 00 01 00 01 00 00 00  0b 00 02 00 64 75 6d 6d 79 30 00 00  08 00 03 00 05 00 00 00
		06 00 04 00 78 05 00 00  06 00 07 00 91 22 00 00  05 00 08 00 03 00 00 00
		08 00 05 00 ef 01 02 03`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDaemonMessage(b)
		if err != nil {
			return
		}
		again, err := decodeDaemonMessage(encoded(t, func(ae *netlink.AttributeEncoder) {
			ae.Nested(uapi.IPVS_CMD_ATTR_DAEMON, func(nae *netlink.AttributeEncoder) error {
				encodeDaemon(nae, d)
				return nil
			})
		}))
		if err != nil {
			t.Fatalf("re-decode %+v: %v", d, err)
		}
		if again != d {
			t.Fatalf("round trip:\n got %+v\nwant %+v", again, d)
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add(hx(`08 00 04 00 84 03 00 00  08 00 05 00 78 00 00 00  08 00 06 00 2c 01 00 00`))
	f.Add(hx(`08 00 01 00 01 02 01 00  08 00 02 00 00 10 00 00`))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeInfo(b) // must not panic
		to, err := decodeTimeouts(b)
		if err != nil {
			return
		}
		again, err := decodeTimeouts(encoded(t, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP, to.TCP)
			ae.Uint32(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, to.TCPFin)
			ae.Uint32(uapi.IPVS_CMD_ATTR_TIMEOUT_UDP, to.UDP)
		}))
		if err != nil || again != to {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, to)
		}
	})
}
