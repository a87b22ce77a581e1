package nft

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/seesawlb/seesaw/ncc/reconcile"
)

// This file turns rules into nftables objects and plans the writes that
// take what the kernel holds to what is desired. It reads and writes
// nothing itself, so that the plan is tested without a kernel.

const (
	inet = byte(unix.NFPROTO_INET)
	reg1 = unix.NFT_REG_1
	// tableDormant is NFT_TABLE_F_DORMANT: a dormant table's chains are
	// not hooked, so its rules do nothing.
	tableDormant = unix.NFT_TABLE_F_DORMANT
	// commentType is the userdata TLV type nft(8) uses for a rule's
	// comment (NFTNL_UDATA_RULE_COMMENT).
	commentType = 0
	// digestType is the userdata TLV type of the digest of the rule's
	// expressions, which nft(8) neither shows nor keeps (its userdata
	// types stop at 1): a rule made by hand, even from a copy of ours,
	// has none.
	digestType = 0xc5
	digestLen  = 16
)

func table() *nftables.Table {
	return &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}
}

// chainSpec is one of the NCC's base chains.
type chainSpec struct {
	name string
	typ  nftables.ChainType
	hook nftables.ChainHook
	prio nftables.ChainPriority
}

// chainSpecs are the NCC's chains, in the order they are planned.
func chainSpecs() []chainSpec {
	return []chainSpec{
		{ChainFwmark, nftables.ChainTypeFilter, *nftables.ChainHookPrerouting, *nftables.ChainPriorityMangle},
		{ChainSNAT, nftables.ChainTypeNAT, *nftables.ChainHookPostrouting, *nftables.ChainPriorityNATSource},
		{ChainReplyDrop, nftables.ChainTypeFilter, *nftables.ChainHookForward, replyDropPriority},
	}
}

// replyDropPriority runs the reply-drop chain after IPVS's forward hook
// (ip_vs_reply4/6 at priority 100), which has translated every reply it
// has a connection for by then.
const replyDropPriority = nftables.ChainPriority(110)

func (s chainSpec) String() string {
	hook := map[nftables.ChainHook]string{*nftables.ChainHookPrerouting: "prerouting", *nftables.ChainHookPostrouting: "postrouting",
		*nftables.ChainHookForward: "forward"}[s.hook]
	return fmt.Sprintf("type %s hook %s priority %d", s.typ, hook, s.prio)
}

func (s chainSpec) chain() *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	hook, prio := s.hook, s.prio
	return &nftables.Chain{Name: s.name, Table: table(), Type: s.typ, Hooknum: &hook, Priority: &prio, Policy: &accept}
}

// matches says whether a chain the kernel holds is this one: a chain of
// another type, hook, priority or policy is deleted and made again.
func (s chainSpec) matches(c *nftables.Chain) bool {
	return c.Type == s.typ && c.Hooknum != nil && *c.Hooknum == s.hook && c.Priority != nil && *c.Priority == s.prio &&
		(c.Policy == nil || *c.Policy == nftables.ChainPolicyAccept)
}

// encodeUserdata is a rule's userdata: its key as the comment nft(8)
// shows, as nft writes it (type, length, the text and its NUL), then the
// digest of its expressions.
func encodeUserdata(key string, digest []byte) []byte {
	b := []byte{commentType, byte(len(key) + 1)}
	b = append(b, key...)
	b = append(b, 0, digestType, byte(len(digest)))
	return append(b, digest...)
}

// decodeUserdata finds the comment and the digest in a rule's userdata.
// Userdata is whatever the rule's writer put there: it is read with care.
func decodeUserdata(ud []byte) (comment string, digest []byte) {
	for len(ud) >= 2 {
		typ, n := ud[0], int(ud[1])
		if len(ud) < 2+n {
			break
		}
		switch typ {
		case commentType:
			comment = string(bytes.TrimSuffix(ud[2:2+n], []byte{0}))
		case digestType:
			digest = ud[2 : 2+n]
		}
		ud = ud[2+n:]
	}
	return comment, digest
}

// digest sums expressions as they are sent to the kernel. The kernel's
// account of a rule differs in form from what it was given (registers,
// flags it adds), so a rule is recognised by this digest, kept in its
// userdata, rather than by decoding its expressions: a rule whose digest
// is not that of what its key makes now (made by hand, or by an NCC that
// wrote the rule otherwise) is replaced.
func digest(es []expr.Any) []byte {
	h := sha256.New()
	for _, e := range es {
		b, err := expr.Marshal(inet, e)
		if err != nil {
			// Not one of ours: ours all marshal.
			return nil
		}
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	return h.Sum(nil)[:digestLen]
}

// l3 is what matches an address's family: the nfproto value and where the
// destination address is in the network header.
func l3(a netip.Addr) (nfproto byte, offset, length uint32) {
	if a.Is4() {
		return unix.NFPROTO_IPV4, 16, 4
	}
	return unix.NFPROTO_IPV6, 24, 16
}

func eq(data []byte) *expr.Cmp {
	return &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: data}
}

// familyIs matches the address's family. It comes before anything that
// reads the network header: an IPv4 offset means something else in an
// IPv6 header.
func familyIs(a netip.Addr) []expr.Any {
	nfproto, _, _ := l3(a)
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1}, eq([]byte{nfproto})}
}

func protoIs(p Proto) []expr.Any {
	if p == AnyProto {
		return nil
	}
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1}, eq([]byte{byte(p)})}
}

// exprs is what the rule does in the kernel:
//
//	meta nfproto ipv4 ip daddr A [meta l4proto P [th dport N]] meta mark set M
func (f Fwmark) exprs() []expr.Any {
	_, off, n := l3(f.Addr)
	es := append(familyIs(f.Addr),
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}, eq(f.Addr.AsSlice()))
	es = append(es, protoIs(f.Proto)...)
	if f.Port != 0 {
		es = append(es, &expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			eq(binaryutil.BigEndian.PutUint16(f.Port)))
	}
	// The mark register is in host byte order.
	return append(es, &expr.Immediate{Register: reg1, Data: binaryutil.NativeEndian.PutUint32(f.Mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1})
}

// exprs is what the rule does in the kernel:
//
//	meta nfproto ipv4 [meta l4proto P] ct original ip daddr A [ct original proto-dst N] snat ip to S
//
// The source port is the client's, unless another connection to the same
// backend has it already (the kernel's rule without "random"): so a node
// that takes over a connection it has no conntrack entry for (no
// conntrackd, or the entry not yet synced) makes the same binding the old
// master made, and the backend sees the connection it knows. With
// "random" every such connection got a new port and the backend reset it.
//
// In the inet family "ct original daddr" loads 16 bytes whatever the
// connection's family; for IPv4 the address is the first 4 and only those
// are compared (the family was matched first).
func (s SNAT) exprs() []expr.Any {
	nfproto, _, _ := l3(s.VIP)
	es := append(familyIs(s.VIP), protoIs(s.Proto)...)
	es = append(es, &expr.Ct{Key: expr.CtKeyDST, Direction: 0, Register: reg1}, eq(s.VIP.AsSlice()))
	if s.Port != 0 {
		es = append(es, &expr.Ct{Key: expr.CtKeyPROTODST, Direction: 0, Register: reg1}, eq(binaryutil.BigEndian.PutUint16(s.Port)))
	}
	// The kernel reports a NAT's address range as min and max even when
	// given min only: both are given, so that what is read back is what
	// was written.
	return append(es, &expr.Immediate{Register: reg1, Data: s.ToSource.AsSlice()},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: uint32(nfproto), RegAddrMin: reg1, RegAddrMax: reg1})
}

// exprs is what the rule does in the kernel:
//
//	meta nfproto ipv4 ip saddr A [meta l4proto P [th sport N]] drop
func (d ReplyDrop) exprs() []expr.Any {
	_, off, n := l3(d.Addr)
	off -= n // the source address comes right before the destination
	es := append(familyIs(d.Addr),
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}, eq(d.Addr.AsSlice()))
	es = append(es, protoIs(d.Proto)...)
	if d.Port != 0 {
		es = append(es, &expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
			eq(binaryutil.BigEndian.PutUint16(d.Port)))
	}
	return append(es, &expr.Verdict{Kind: expr.VerdictDrop})
}

// wantRule is a desired rule, ready for the kernel.
type wantRule struct {
	kind, chain, object, key string
	exprs                    []expr.Any
	digest                   []byte
}

func fwmarkRule(f Fwmark) wantRule {
	es := f.exprs()
	return wantRule{kind: KindFwmark, chain: ChainFwmark, object: f.String(), key: f.Key(), exprs: es, digest: digest(es)}
}

func snatRule(s SNAT) wantRule {
	es := s.exprs()
	return wantRule{kind: KindSNAT, chain: ChainSNAT, object: s.String(), key: s.Key(), exprs: es, digest: digest(es)}
}

func replyDropRule(d ReplyDrop) wantRule {
	es := d.exprs()
	return wantRule{kind: KindDrop, chain: ChainReplyDrop, object: d.String(), key: d.Key(), exprs: es, digest: digest(es)}
}

func (w wantRule) rule() *nftables.Rule {
	return &nftables.Rule{Table: table(), Chain: &nftables.Chain{Name: w.chain, Table: table()}, Exprs: w.exprs,
		UserData: encodeUserdata(w.key, w.digest)}
}

func wantRules(st State) map[string][]wantRule {
	m := map[string][]wantRule{}
	for _, f := range st.Fwmarks {
		m[ChainFwmark] = append(m[ChainFwmark], fwmarkRule(f))
	}
	for _, s := range st.SNAT {
		m[ChainSNAT] = append(m[ChainSNAT], snatRule(s))
	}
	for _, d := range st.ReplyDrops {
		m[ChainReplyDrop] = append(m[ChainReplyDrop], replyDropRule(d))
	}
	return m
}

// recognise says which rule a kernel rule in chain is: the rule its
// comment names, when that rule belongs in this chain. ok says its digest
// is that of the expressions that rule makes. A rule without such a comment
// is described by its chain and handle.
func recognise(chain string, r kernelRule) (w wantRule, ok bool) {
	if parsed, err := parseKey(r.comment); err == nil {
		switch p := parsed.(type) {
		case *Fwmark:
			w = fwmarkRule(*p)
		case *SNAT:
			w = snatRule(*p)
		case *ReplyDrop:
			w = replyDropRule(*p)
		}
		if w.chain == chain {
			return w, len(r.digest) == digestLen && bytes.Equal(r.digest, w.digest)
		}
	}
	return wantRule{kind: KindRule, chain: chain, object: fmt.Sprintf("%s handle %d", chain, r.handle)}, false
}

// kernelRule is a rule of the NCC's table as the kernel reports it.
type kernelRule struct {
	handle  uint64
	comment string
	digest  []byte
}

// kernelChain is a chain of the NCC's table and its rules.
type kernelChain struct {
	chain *nftables.Chain
	rules []kernelRule
}

// kernelState is the NCC's table as the kernel holds it.
type kernelState struct {
	table  *nftables.Table // nil: there is none
	chains []*kernelChain
}

// op is one planned write: the change it makes and how to queue it in a
// batch.
type op struct {
	change reconcile.Change
	queue  func(*nftables.Conn)
}

// plan lists the writes that take the table from have to desired, in the
// order one batch must carry them: the table, then deletions (rules before
// their chains), then new chains, then new rules, and the table's deletion
// last.
func plan(desired State, have kernelState) []op {
	want := wantRules(desired)
	var first, dels, chains, adds, last []op
	need := !desired.Empty()
	tableObj := "inet " + Table
	switch {
	case need && have.table == nil:
		first = append(first, op{reconcile.Change{Op: reconcile.Add, Kind: KindTable, Object: tableObj},
			func(c *nftables.Conn) { c.AddTable(table()) }})
	case need && have.table.Flags&tableDormant != 0:
		// Adding an existing table sets its flags: to none.
		first = append(first, op{reconcile.Change{Op: reconcile.Update, Kind: KindTable, Object: tableObj, Detail: "dormant -> active"},
			func(c *nftables.Conn) { c.AddTable(table()) }})
	case !need && have.table != nil:
		last = append(last, op{reconcile.Change{Op: reconcile.Delete, Kind: KindTable, Object: tableObj},
			func(c *nftables.Conn) { c.DelTable(table()) }})
	}

	// delRule deletes r, which w describes (see recognise).
	delRule := func(kc *kernelChain, r kernelRule, w wantRule, detail string) {
		ch := kc.chain.Name
		h := r.handle
		dels = append(dels, op{reconcile.Change{Op: reconcile.Delete, Kind: w.kind, Object: w.object, Detail: detail},
			func(c *nftables.Conn) {
				// Only a handle of 0 is refused, and the kernel gives none.
				_ = c.DelRule(&nftables.Rule{Table: table(), Chain: &nftables.Chain{Name: ch, Table: table()}, Handle: h})
			}})
	}
	delChain := func(kc *kernelChain, detail string) {
		for _, r := range kc.rules {
			w, _ := recognise(kc.chain.Name, r)
			delRule(kc, r, w, "")
		}
		name := kc.chain.Name
		dels = append(dels, op{reconcile.Change{Op: reconcile.Delete, Kind: KindChain, Object: name, Detail: detail},
			func(c *nftables.Conn) { c.DelChain(&nftables.Chain{Name: name, Table: table()}) }})
	}
	addChain := func(s chainSpec) {
		chains = append(chains, op{reconcile.Change{Op: reconcile.Add, Kind: KindChain, Object: s.name, Detail: s.String()},
			func(c *nftables.Conn) { c.AddChain(s.chain()) }})
	}
	addRule := func(w wantRule) {
		adds = append(adds, op{reconcile.Change{Op: reconcile.Add, Kind: w.kind, Object: w.object},
			func(c *nftables.Conn) { c.AddRule(w.rule()) }})
	}

	byName := map[string]*kernelChain{}
	for _, kc := range have.chains {
		byName[kc.chain.Name] = kc
	}
	ours := map[string]bool{}
	for _, s := range chainSpecs() {
		ours[s.name] = true
		ws := want[s.name]
		kc := byName[s.name]
		switch {
		case kc == nil && len(ws) == 0:
		case kc == nil:
			addChain(s)
			for _, w := range ws {
				addRule(w)
			}
		case len(ws) == 0:
			delChain(kc, "")
		case !s.matches(kc.chain):
			delChain(kc, "replaced: not "+s.String())
			addChain(s)
			for _, w := range ws {
				addRule(w)
			}
		default:
			byKey := make(map[string]*wantRule, len(ws))
			for i := range ws {
				byKey[ws[i].key] = &ws[i]
			}
			// What each kernel rule is: a desired one as desired
			// (the common case, found by its key), or as recognise
			// says.
			type seen struct {
				w  wantRule
				ok bool
			}
			rules := make([]seen, len(kc.rules))
			genuine := map[string]bool{}
			for i, r := range kc.rules {
				if w := byKey[r.comment]; w != nil && bytes.Equal(r.digest, w.digest) {
					rules[i] = seen{*w, true}
				} else {
					rules[i].w, rules[i].ok = recognise(s.name, r)
				}
				if rules[i].ok {
					genuine[rules[i].w.key] = true
				}
			}
			kept := make(map[string]bool, len(ws))
			for i, r := range kc.rules {
				w, ok := rules[i].w, rules[i].ok
				wanted := byKey[w.key] != nil
				switch {
				case ok && wanted && !kept[w.key]:
					kept[w.key] = true
				case ok && kept[w.key]:
					delRule(kc, r, w, "a duplicate")
				case ok:
					delRule(kc, r, w, "")
				case w.kind != KindRule && wanted && !genuine[w.key]:
					delRule(kc, r, w, "replaced: not made as its comment says")
				case w.kind != KindRule:
					delRule(kc, r, w, "not made as its comment says")
				case r.comment != "":
					delRule(kc, r, w, fmt.Sprintf("not the NCC's (comment %q)", r.comment))
				default:
					delRule(kc, r, w, "not the NCC's")
				}
			}
			for _, w := range ws {
				if !kept[w.key] {
					addRule(w)
				}
			}
		}
	}
	for _, kc := range have.chains {
		if !ours[kc.chain.Name] {
			delChain(kc, "not the NCC's")
		}
	}
	return append(append(append(append(first, dels...), chains...), adds...), last...)
}

// known lists the rules plan would keep: the recognised rules of the
// NCC's chains as they should be.
func known(have kernelState) State {
	var st State
	specs := map[string]chainSpec{}
	for _, s := range chainSpecs() {
		specs[s.name] = s
	}
	seen := map[string]bool{}
	for _, kc := range have.chains {
		s, ours := specs[kc.chain.Name]
		if !ours || !s.matches(kc.chain) {
			continue
		}
		for _, r := range kc.rules {
			if _, ok := recognise(s.name, r); !ok || seen[r.comment] {
				continue
			}
			seen[r.comment] = true
			switch p, _ := parseKey(r.comment); p := p.(type) {
			case *Fwmark:
				st.Fwmarks = append(st.Fwmarks, *p)
			case *SNAT:
				st.SNAT = append(st.SNAT, *p)
			case *ReplyDrop:
				st.ReplyDrops = append(st.ReplyDrops, *p)
			}
		}
	}
	return st
}
