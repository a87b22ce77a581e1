package nfttest

import (
	"encoding/binary"
	"fmt"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"

	"github.com/seesawlb/seesaw/ncc/nft/nfttest/internal/uapi"
)

// Helpers for tests that speak to a kernel (the fake, or the host's) in
// messages made by hand, with this package's own reading of the uapi.

// nltestDial is a connection to the fake.
func nltestDial(k *Kernel) *netlink.Conn { return nltest.Dial(k.Func()) }

// readRuleset reads a kernel's ruleset with dumps, decoded by hand.
func readRuleset(dial func() (*netlink.Conn, error)) ([]Table, error) {
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	dump := func(typ uint16) ([]netlink.Message, error) {
		return conn.Execute(netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(uapi.NFNL_SUBSYS_NFTABLES<<8 | typ),
			Flags: netlink.Request | netlink.Dump}, Data: []byte{uapi.NFPROTO_UNSPEC, 0, 0, 0}})
	}
	var tables []Table
	find := func(fam uint8, name string) *Table {
		for i := range tables {
			if tables[i].Family == families[fam] && tables[i].Name == name {
				return &tables[i]
			}
		}
		return nil
	}
	ms, err := dump(uapi.NFT_MSG_GETTABLE)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		a, err := parseAttrs(m.Data[4:])
		if err != nil {
			return nil, err
		}
		tables = append(tables, Table{Family: families[m.Data[0]], Name: a.str(uapi.NFTA_TABLE_NAME), Handle: a.be64(uapi.NFTA_TABLE_HANDLE),
			Dormant: a.be32(uapi.NFTA_TABLE_FLAGS)&uapi.NFT_TABLE_F_DORMANT != 0, UserData: a[uapi.NFTA_TABLE_USERDATA]})
	}
	if ms, err = dump(uapi.NFT_MSG_GETCHAIN); err != nil {
		return nil, err
	}
	for _, m := range ms {
		a, err := parseAttrs(m.Data[4:])
		if err != nil {
			return nil, err
		}
		t := find(m.Data[0], a.str(uapi.NFTA_CHAIN_TABLE))
		if t == nil {
			return nil, fmt.Errorf("chain %s of no table", a.str(uapi.NFTA_CHAIN_NAME))
		}
		c := Chain{Name: a.str(uapi.NFTA_CHAIN_NAME), Handle: a.be64(uapi.NFTA_CHAIN_HANDLE), UserData: a[uapi.NFTA_CHAIN_USERDATA]}
		if a.has(uapi.NFTA_CHAIN_HOOK) {
			h, err := parseAttrs(a[uapi.NFTA_CHAIN_HOOK])
			if err != nil {
				return nil, err
			}
			c.Base = &BaseChain{Type: a.str(uapi.NFTA_CHAIN_TYPE), Hook: hooks[h.be32(uapi.NFTA_HOOK_HOOKNUM)],
				Priority: int32(h.be32(uapi.NFTA_HOOK_PRIORITY)), Policy: policies[a.be32(uapi.NFTA_CHAIN_POLICY)]}
		}
		t.Chains = append(t.Chains, c)
	}
	if ms, err = dump(uapi.NFT_MSG_GETRULE); err != nil {
		return nil, err
	}
	for _, m := range ms {
		a, err := parseAttrs(m.Data[4:])
		if err != nil {
			return nil, err
		}
		t := find(m.Data[0], a.str(uapi.NFTA_RULE_TABLE))
		if t == nil {
			return nil, fmt.Errorf("a rule of no table")
		}
		var c *Chain
		for i := range t.Chains {
			if t.Chains[i].Name == a.str(uapi.NFTA_RULE_CHAIN) {
				c = &t.Chains[i]
			}
		}
		if c == nil {
			return nil, fmt.Errorf("a rule of no chain")
		}
		r := Rule{Handle: a.be64(uapi.NFTA_RULE_HANDLE), UserData: a[uapi.NFTA_RULE_USERDATA]}
		if err := walkAttrs(a[uapi.NFTA_RULE_EXPRESSIONS], func(_ uint16, data []byte) error {
			r.Exprs = append(r.Exprs, data)
			return nil
		}); err != nil {
			return nil, err
		}
		c.Rules = append(c.Rules, r)
	}
	return tables, nil
}

// msg is an nf_tables message made by hand.
func msg(typ uint16, flags netlink.HeaderFlags, fam uint8, attrs ...netlink.Attribute) netlink.Message {
	b, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		panic(err)
	}
	return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(uapi.NFNL_SUBSYS_NFTABLES<<8 | typ), Flags: netlink.Request | flags},
		Data: append([]byte{fam, 0, 0, 0}, b...)}
}

func batchOf(ms ...netlink.Message) []netlink.Message {
	delim := func(typ uint16) netlink.Message {
		return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request}, Data: []byte{0, 0, 0, uapi.NFNL_SUBSYS_NFTABLES}}
	}
	return append(append([]netlink.Message{delim(uapi.NFNL_MSG_BATCH_BEGIN)}, ms...), delim(uapi.NFNL_MSG_BATCH_END))
}

func name(t uint16, s string) netlink.Attribute {
	return netlink.Attribute{Type: t, Data: append([]byte(s), 0)}
}
func be32(t uint16, v uint32) netlink.Attribute {
	return netlink.Attribute{Type: t, Data: binary.BigEndian.AppendUint32(nil, v)}
}
func be64(t uint16, v uint64) netlink.Attribute {
	return netlink.Attribute{Type: t, Data: binary.BigEndian.AppendUint64(nil, v)}
}
