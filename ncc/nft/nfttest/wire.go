package nfttest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"syscall"

	"github.com/seesawlb/seesaw/ncc/nft/nfttest/internal/uapi"
)

// This file reads and writes netlink attributes as the kernel does:
// headers in host byte order, nf_tables' numbers in network byte order,
// nests without NLA_F_NESTED (nla_nest_start_noflag).

// attrs maps attribute types to their payloads; the last of a type wins,
// as in the kernel's nla_parse.
type attrs map[uint16][]byte

const (
	nlaHeader   = 4
	nlaTypeMask = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
)

var errAttrs = errors.New("malformed attributes")

// walkAttrs calls fn with each attribute in b, in order.
func walkAttrs(b []byte, fn func(typ uint16, data []byte) error) error {
	for len(b) >= nlaHeader {
		n := int(binary.NativeEndian.Uint16(b))
		if n < nlaHeader || n > len(b) {
			return errAttrs
		}
		if err := fn(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[nlaHeader:n]); err != nil {
			return err
		}
		b = b[min(align(n), len(b)):]
	}
	return nil
}

func parseAttrs(b []byte) (attrs, error) {
	a := attrs{}
	err := walkAttrs(b, func(typ uint16, data []byte) error {
		a[typ] = data
		return nil
	})
	return a, err
}

func (a attrs) has(t uint16) bool {
	_, ok := a[t]
	return ok
}

// str is a string attribute up to its NUL (nla_strdup).
func (a attrs) str(t uint16) string {
	b := a[t]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func (a attrs) be32(t uint16) uint32 { return binary.BigEndian.Uint32(a[t]) }
func (a attrs) be64(t uint16) uint64 { return binary.BigEndian.Uint64(a[t]) }

// kind is how the kernel's attribute policies (struct nla_policy) check an
// attribute.
type kind struct {
	min int // the fewest bytes
	max int // for strings, without their NUL, and binaries: the most; 0: any
	str bool
}

var (
	u32    = kind{min: 4}
	u64    = kind{min: 8}
	nested = kind{}
)

func str(max int) kind { return kind{max: max, str: true} }
func bin(max int) kind { return kind{max: max} }

type policy map[uint16]kind

// The policies of nf_tables_api.c for what the fake reads.
var (
	namePolicy  = str(uapi.NFT_NAME_MAXLEN - 1)
	tablePolicy = policy{uapi.NFTA_TABLE_NAME: namePolicy, uapi.NFTA_TABLE_FLAGS: u32, uapi.NFTA_TABLE_HANDLE: u64,
		uapi.NFTA_TABLE_USERDATA: bin(uapi.NFT_USERDATA_MAXLEN)}
	chainPolicy = policy{uapi.NFTA_CHAIN_TABLE: namePolicy, uapi.NFTA_CHAIN_HANDLE: u64, uapi.NFTA_CHAIN_NAME: namePolicy,
		uapi.NFTA_CHAIN_HOOK: nested, uapi.NFTA_CHAIN_POLICY: u32, uapi.NFTA_CHAIN_TYPE: str(uapi.NFT_MODULE_AUTOLOAD_LIMIT),
		uapi.NFTA_CHAIN_FLAGS: u32, uapi.NFTA_CHAIN_ID: u32, uapi.NFTA_CHAIN_USERDATA: bin(uapi.NFT_USERDATA_MAXLEN)}
	hookPolicy = policy{uapi.NFTA_HOOK_HOOKNUM: u32, uapi.NFTA_HOOK_PRIORITY: u32, uapi.NFTA_HOOK_DEV: str(15), uapi.NFTA_HOOK_DEVS: nested}
	rulePolicy = policy{uapi.NFTA_RULE_TABLE: namePolicy, uapi.NFTA_RULE_CHAIN: namePolicy, uapi.NFTA_RULE_HANDLE: u64,
		uapi.NFTA_RULE_EXPRESSIONS: nested, uapi.NFTA_RULE_POSITION: u64, uapi.NFTA_RULE_USERDATA: bin(uapi.NFT_USERDATA_MAXLEN),
		uapi.NFTA_RULE_ID: u32, uapi.NFTA_RULE_POSITION_ID: u32, uapi.NFTA_RULE_CHAIN_ID: u32}
	batchPolicy = policy{uapi.NFNL_BATCH_GENID: u32} // nfnetlink.c
	exprPolicy  = policy{uapi.NFTA_EXPR_NAME: str(uapi.NFT_MODULE_AUTOLOAD_LIMIT), uapi.NFTA_EXPR_DATA: nested}
)

// check is the kernel's validation of parsed attributes against a policy
// (liberal, as nf_tables parses): too short, or too long, is ERANGE.
func (a attrs) check(p policy) syscall.Errno {
	for t, b := range a {
		k, ok := p[t]
		if !ok {
			continue
		}
		n := len(b)
		if k.str && n > 0 && b[n-1] == 0 {
			n--
		}
		if n < k.min || k.max > 0 && n > k.max {
			return syscall.ERANGE
		}
	}
	return 0
}

// parseRequest reads an nf_tables message's attributes, after its
// nfgenmsg, and checks them as the kernel does before it acts.
func parseRequest(typ uint8, b []byte) (attrs, syscall.Errno) {
	a, err := parseAttrs(b)
	if err != nil {
		return nil, syscall.EINVAL
	}
	p := rulePolicy
	switch typ {
	case uapi.NFT_MSG_NEWTABLE, uapi.NFT_MSG_GETTABLE, uapi.NFT_MSG_DELTABLE:
		p = tablePolicy
	case uapi.NFT_MSG_NEWCHAIN, uapi.NFT_MSG_GETCHAIN, uapi.NFT_MSG_DELCHAIN:
		p = chainPolicy
	}
	return a, a.check(p)
}

// enc writes attributes.
type enc []byte

func (e *enc) attr(t uint16, b []byte) {
	*e = binary.NativeEndian.AppendUint16(*e, uint16(nlaHeader+len(b)))
	*e = binary.NativeEndian.AppendUint16(*e, t)
	*e = append(*e, b...)
	for len(*e)%4 != 0 {
		*e = append(*e, 0)
	}
}

func (e *enc) str(t uint16, s string) { e.attr(t, append([]byte(s), 0)) }
func (e *enc) u32(t uint16, v uint32) { e.attr(t, binary.BigEndian.AppendUint32(nil, v)) }
func (e *enc) u64(t uint16, v uint64) { e.attr(t, binary.BigEndian.AppendUint64(nil, v)) }

// encodeTable is nf_tables_fill_table_info, in its order.
func (k *Kernel) encodeTable(t *table) []byte {
	e := enc(k.nfgen(t.family))
	e.str(uapi.NFTA_TABLE_NAME, t.name)
	e.u32(uapi.NFTA_TABLE_USE, uint32(len(t.chains)))
	e.u64(uapi.NFTA_TABLE_HANDLE, t.handle)
	e.u32(uapi.NFTA_TABLE_FLAGS, t.flags)
	if t.udata != nil {
		e.attr(uapi.NFTA_TABLE_USERDATA, t.udata)
	}
	return e
}

// encodeChain is nf_tables_fill_chain_info. A chain's use is its rules.
func (k *Kernel) encodeChain(t *table, c *chain) []byte {
	e := enc(k.nfgen(t.family))
	e.str(uapi.NFTA_CHAIN_TABLE, t.name)
	e.str(uapi.NFTA_CHAIN_NAME, c.name)
	e.u64(uapi.NFTA_CHAIN_HANDLE, c.handle)
	if b := c.base; b != nil {
		var h enc
		h.u32(uapi.NFTA_HOOK_HOOKNUM, b.hook)
		h.u32(uapi.NFTA_HOOK_PRIORITY, uint32(b.prio))
		e.attr(uapi.NFTA_CHAIN_HOOK, h)
		e.u32(uapi.NFTA_CHAIN_POLICY, b.policy)
		e.str(uapi.NFTA_CHAIN_TYPE, b.typ)
		e.u32(uapi.NFTA_CHAIN_FLAGS, uapi.NFT_CHAIN_BASE)
	}
	e.u32(uapi.NFTA_CHAIN_USE, uint32(len(c.rules)))
	if c.udata != nil {
		e.attr(uapi.NFTA_CHAIN_USERDATA, c.udata)
	}
	return e
}

// encodeRule is nf_tables_fill_rule_info; prev, when not 0, is the
// handle of the rule before it.
func (k *Kernel) encodeRule(t *table, c *chain, r *rule, prev uint64) []byte {
	e := enc(k.nfgen(t.family))
	e.str(uapi.NFTA_RULE_TABLE, t.name)
	e.str(uapi.NFTA_RULE_CHAIN, c.name)
	e.u64(uapi.NFTA_RULE_HANDLE, r.handle)
	if prev != 0 {
		e.u64(uapi.NFTA_RULE_POSITION, prev)
	}
	var list enc
	for _, x := range r.exprs {
		list.attr(uapi.NFTA_LIST_ELEM, x)
	}
	e.attr(uapi.NFTA_RULE_EXPRESSIONS, list)
	if r.udata != nil {
		e.attr(uapi.NFTA_RULE_USERDATA, r.udata)
	}
	return e
}
