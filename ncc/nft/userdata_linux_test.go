package nft

import (
	"bytes"
	"testing"
)

// FuzzDecodeUserdata: a rule's userdata is whatever its writer put there
// (nft(8), another program, a person); reading it never panics, and what
// the NCC writes reads back as written.
func FuzzDecodeUserdata(f *testing.F) {
	f.Add([]byte(nil), "fwmark TCP 192.0.2.10:80 mark 7", []byte{1, 2, 3})
	f.Add([]byte{0, 5, 'a', 'b'}, "snat UDP [2001:db8::10]:* to 2001:db8:2::2", []byte{})
	f.Add([]byte{commentType, 255}, "", []byte{9})
	f.Fuzz(func(t *testing.T, raw []byte, key string, sum []byte) {
		decodeUserdata(raw)
		if len(key) > 250 || len(sum) > 250 || bytes.IndexByte([]byte(key), 0) >= 0 {
			return
		}
		c, d := decodeUserdata(encodeUserdata(key, sum))
		if c != key || !bytes.Equal(d, sum) {
			t.Fatalf("encodeUserdata(%q, %x) reads back as %q, %x", key, sum, c, d)
		}
	})
}
