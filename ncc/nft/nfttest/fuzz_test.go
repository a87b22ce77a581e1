package nfttest

import (
	"testing"

	"github.com/mdlayher/netlink"

	"github.com/seesawlb/seesaw/ncc/nft/nfttest/internal/uapi"
)

// FuzzServe: whatever a client sends, as a batch or alone, the fake
// answers without panicking, and what it then holds renders and reads
// back.
func FuzzServe(f *testing.F) {
	f.Add(uint16(uapi.NFT_MSG_NEWTABLE), uint16(netlink.Request|netlink.Acknowledge), []byte{1, 0, 0, 0, 6, 0, 1, 0, 't', 0, 0, 0}, true)
	f.Add(uint16(uapi.NFT_MSG_NEWCHAIN), uint16(netlink.Request|uapi.NLM_F_CREATE), []byte{1, 0, 0, 0, 6, 0, 1, 0, 't', 0, 0, 0, 6, 0, 3, 0, 'c', 0, 0, 0, 4, 0, 4, 0}, true)
	f.Add(uint16(uapi.NFT_MSG_GETRULE), uint16(netlink.Request|netlink.Dump), []byte{0, 0, 0, 0}, false)
	f.Add(uint16(0x8000|uapi.NFNL_MSG_BATCH_BEGIN), uint16(netlink.Request), []byte{0, 0, 0, 10, 5, 0, 1, 0, 1}, false)
	f.Fuzz(func(t *testing.T, typ, flags uint16, data []byte, batch bool) {
		k := New()
		// A table and a chain to act on.
		k.serve(batchOf(msg(uapi.NFT_MSG_NEWTABLE, uapi.NLM_F_CREATE, uapi.NFPROTO_INET, name(uapi.NFTA_TABLE_NAME, "t")),
			msg(uapi.NFT_MSG_NEWCHAIN, uapi.NLM_F_CREATE, uapi.NFPROTO_INET, name(uapi.NFTA_CHAIN_TABLE, "t"), name(uapi.NFTA_CHAIN_NAME, "c"))))
		// An nf_tables message type, or with the top bit any type.
		m := netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(uapi.NFNL_SUBSYS_NFTABLES<<8 | typ&0xff), Flags: netlink.HeaderFlags(flags)}, Data: data}
		if typ&0x8000 != 0 {
			m.Header.Type = netlink.HeaderType(typ &^ 0x8000)
		}
		if batch {
			k.serve(batchOf(m))
			k.serve(batchOf(m, m))
		} else {
			k.serve([]netlink.Message{m})
		}
		_ = k.List(true)
		if _, err := readRuleset(func() (*netlink.Conn, error) { return nltestDial(k), nil }); err != nil {
			t.Fatalf("the fake's ruleset does not read back: %v\n%s", err, k.List(true))
		}
	})
}
