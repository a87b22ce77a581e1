package nfttest

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/mdlayher/netlink"

	"github.com/seesawlb/seesaw/ncc/nft/nfttest/internal/uapi"
)

// This file is the kernel's side of the wire: nfnetlink's batches
// (net/netfilter/nfnetlink.c) and nf_tables' requests
// (net/netfilter/nf_tables_api.c), answered as Linux answers them: as
// the version the namespace tests ran against (6.18) does, where versions
// differ.

// serve answers what one sendmsg carried with the datagrams the kernel
// sends back. A send that starts with a batch's begin is a batch, up to
// its end (the kernel ignores what follows); any other is requests, each
// answered alone.
func (k *Kernel) serve(msgs []netlink.Message) [][]netlink.Message {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(msgs) > 0 && msgs[0].Header.Type == uapi.NFNL_MSG_BATCH_BEGIN {
		return k.batch(msgs)
	}
	var out [][]netlink.Message
	for _, m := range msgs {
		out = append(out, k.request(m)...)
	}
	return out
}

// msgType is a message's nf_tables type, and whether it is nf_tables'.
func msgType(m netlink.Message) (uint8, bool) {
	t := uint16(m.Header.Type)
	return uint8(t), t>>8 == uapi.NFNL_SUBSYS_NFTABLES
}

func isWrite(t uint8) bool {
	switch t {
	case uapi.NFT_MSG_NEWTABLE, uapi.NFT_MSG_DELTABLE, uapi.NFT_MSG_NEWCHAIN, uapi.NFT_MSG_DELCHAIN,
		uapi.NFT_MSG_NEWRULE, uapi.NFT_MSG_DELRULE:
		return true
	}
	return false
}

func isGet(t uint8) bool {
	return t == uapi.NFT_MSG_GETTABLE || t == uapi.NFT_MSG_GETCHAIN || t == uapi.NFT_MSG_GETRULE
}

// request answers one message sent outside a batch (netlink_rcv_skb and
// nfnetlink_rcv_msg): gets and dumps; writes are refused, as they are
// batch-only.
func (k *Kernel) request(m netlink.Message) [][]netlink.Message {
	f := m.Header.Flags
	if f&uapi.NLM_F_REQUEST == 0 || uint16(m.Header.Type) < uapi.NLMSG_MIN_TYPE {
		return ackIf(m, 0)
	}
	typ, ours := msgType(m)
	if !ours {
		// A kernel without the subsystem: this one has only nf_tables.
		return ackIf(m, syscall.EINVAL)
	}
	k.requests++
	switch {
	case isWrite(typ):
		return ackIf(m, syscall.EINVAL)
	case !isGet(typ):
		return ackIf(m, syscall.EOPNOTSUPP)
	}
	if len(m.Data) < 4 {
		return ackIf(m, syscall.EINVAL)
	}
	fam := m.Data[0]
	a, errno := parseRequest(typ, m.Data[4:])
	if errno != 0 {
		return ackIf(m, errno)
	}
	if f&uapi.NLM_F_DUMP != 0 {
		// A dump is never acknowledged.
		return k.dump(m, typ, fam, a)
	}
	body, errno := k.get(typ, fam, a)
	if errno != 0 {
		return ackIf(m, errno)
	}
	reply := netlink.Message{Header: netlink.Header{Type: newType(typ), Sequence: m.Header.Sequence, PID: m.Header.PID}, Data: body}
	return append([][]netlink.Message{{reply}}, ackIf(m, 0)...)
}

// newType is the type of the reply to a get: the object's NEW message.
func newType(get uint8) netlink.HeaderType {
	return netlink.HeaderType(uapi.NFNL_SUBSYS_NFTABLES<<8 | uint16(get-1))
}

// ackIf is the acknowledgement a request gets: always for an error, else
// if it asked for one. An error carries the request whole; a success only
// its header (NLM_F_CAPPED), as for a socket without NETLINK_CAP_ACK.
func ackIf(m netlink.Message, errno syscall.Errno) [][]netlink.Message {
	if errno == 0 && m.Header.Flags&uapi.NLM_F_ACK == 0 {
		return nil
	}
	return [][]netlink.Message{{ack(m, errno)}}
}

func ack(m netlink.Message, errno syscall.Errno) netlink.Message {
	body := binary.NativeEndian.AppendUint32(nil, uint32(-int32(errno)))
	hdr := make([]byte, 16)
	binary.NativeEndian.PutUint32(hdr[0:], uint32(16+len(m.Data)))
	binary.NativeEndian.PutUint16(hdr[4:], uint16(m.Header.Type))
	binary.NativeEndian.PutUint16(hdr[6:], uint16(m.Header.Flags))
	binary.NativeEndian.PutUint32(hdr[8:], m.Header.Sequence)
	binary.NativeEndian.PutUint32(hdr[12:], m.Header.PID)
	body = append(body, hdr...)
	var flags netlink.HeaderFlags
	if errno == 0 {
		flags = uapi.NLM_F_CAPPED
	} else {
		body = append(body, m.Data...)
	}
	return netlink.Message{Header: netlink.Header{Type: uapi.NLMSG_ERROR, Flags: flags, Sequence: m.Header.Sequence, PID: m.Header.PID}, Data: body}
}

// nfgen is the nfgenmsg header of what the kernel sends: the family, the
// version, and the ruleset's generation as the resource id.
func (k *Kernel) nfgen(family uint8) []byte {
	return []byte{family, uapi.NFNETLINK_V0, byte(k.gen >> 8), byte(k.gen)}
}

// get answers a get of one object (nf_tables_gettable, _getchain,
// _getrule).
func (k *Kernel) get(typ, fam uint8, a attrs) ([]byte, syscall.Errno) {
	switch typ {
	case uapi.NFT_MSG_GETTABLE:
		t, errno := k.findTable(k.tables, fam, a, uapi.NFTA_TABLE_NAME)
		if errno != 0 {
			return nil, errno
		}
		return k.encodeTable(t), 0
	case uapi.NFT_MSG_GETCHAIN:
		t, errno := k.findTable(k.tables, fam, a, uapi.NFTA_CHAIN_TABLE)
		if errno != 0 {
			return nil, errno
		}
		if !a.has(uapi.NFTA_CHAIN_NAME) {
			return nil, syscall.EINVAL
		}
		c := t.chainNamed(a.str(uapi.NFTA_CHAIN_NAME))
		if c == nil {
			return nil, syscall.ENOENT
		}
		return k.encodeChain(t, c), 0
	default:
		t, errno := k.findTable(k.tables, fam, a, uapi.NFTA_RULE_TABLE)
		if errno != 0 {
			return nil, errno
		}
		if !a.has(uapi.NFTA_RULE_CHAIN) {
			return nil, syscall.EINVAL
		}
		c := t.chainNamed(a.str(uapi.NFTA_RULE_CHAIN))
		if c == nil {
			return nil, syscall.ENOENT
		}
		if !a.has(uapi.NFTA_RULE_HANDLE) {
			return nil, syscall.EINVAL
		}
		i := c.ruleIndex(a.be64(uapi.NFTA_RULE_HANDLE))
		if i < 0 {
			return nil, syscall.ENOENT
		}
		return k.encodeRule(t, c, c.rules[i], 0), 0
	}
}

// dump answers a dump (nf_tables_dump_tables, _chains, _rules): every
// object of the family (all families for NFPROTO_UNSPEC); rules only of
// the table, and the chain, the request names. Its messages come in
// datagrams the size of the kernel's buffers, then NLMSG_DONE in a
// datagram of its own (nf_tables fills a buffer before it knows whether
// anything is left).
func (k *Kernel) dump(m netlink.Message, typ, fam uint8, a attrs) [][]netlink.Message {
	var bodies [][]byte
	flags := netlink.HeaderFlags(uapi.NLM_F_MULTI)
	for _, t := range k.tables {
		if fam != uapi.NFPROTO_UNSPEC && fam != t.family {
			continue
		}
		switch typ {
		case uapi.NFT_MSG_GETTABLE:
			bodies = append(bodies, k.encodeTable(t))
		case uapi.NFT_MSG_GETCHAIN:
			for _, c := range t.chains {
				bodies = append(bodies, k.encodeChain(t, c))
			}
		default:
			flags |= uapi.NLM_F_APPEND
			if a.has(uapi.NFTA_RULE_TABLE) && a.str(uapi.NFTA_RULE_TABLE) != t.name {
				continue
			}
			for _, c := range t.chains {
				if a.has(uapi.NFTA_RULE_CHAIN) && a.str(uapi.NFTA_RULE_CHAIN) != c.name {
					continue
				}
				for i, r := range c.rules {
					var prev uint64
					if i > 0 {
						prev = c.rules[i-1].handle
					}
					bodies = append(bodies, k.encodeRule(t, c, r, prev))
				}
			}
		}
	}
	var msgs []netlink.Message
	for _, b := range bodies {
		msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: newType(typ), Flags: flags,
			Sequence: m.Header.Sequence, PID: m.Header.PID}, Data: b})
	}
	done := netlink.Message{Header: netlink.Header{Type: uapi.NLMSG_DONE, Flags: uapi.NLM_F_MULTI, Sequence: m.Header.Sequence, PID: m.Header.PID},
		Data: make([]byte, 4)}
	return append(pack(msgs, func(size int) bool { return size <= uapi.NLMSG_GOODSIZE }), []netlink.Message{done})
}

// pack puts messages into datagrams: a message joins the datagram before
// it while fits says the datagram's size with it is fine.
func pack(msgs []netlink.Message, fits func(size int) bool) [][]netlink.Message {
	var out [][]netlink.Message
	size := 0
	for _, m := range msgs {
		n := 16 + align(len(m.Data))
		if len(out) == 0 || !fits(size+n) {
			out = append(out, nil)
			size = 0
		}
		out[len(out)-1] = append(out[len(out)-1], m)
		size += n
	}
	return out
}

func align(n int) int { return (n + 3) &^ 3 }

// A batch (nfnetlink_rcv_batch): its messages are applied in turn to what
// the batch has made so far; each is acknowledged if it asks, or fails;
// the batch is committed if it ends and nothing failed, and aborted
// otherwise. The commit's echoes come first, then the acknowledgements,
// one datagram each, in the order of the messages.
func (k *Kernel) batch(msgs []netlink.Message) [][]netlink.Message {
	begin := msgs[0]
	if len(begin.Data) < 4 {
		return [][]netlink.Message{{ack(begin, syscall.EINVAL)}}
	}
	// The subsystem is in the resource id, big-endian (or, from old
	// nft(8), in host order).
	if res := binary.BigEndian.Uint16(begin.Data[2:4]); res != uapi.NFNL_SUBSYS_NFTABLES &&
		binary.NativeEndian.Uint16(begin.Data[2:4]) != uapi.NFNL_SUBSYS_NFTABLES {
		return [][]netlink.Message{{ack(begin, syscall.EINVAL)}}
	}
	a, err := parseAttrs(begin.Data[4:])
	if err != nil {
		return [][]netlink.Message{{ack(begin, syscall.EINVAL)}}
	}
	if errno := a.check(batchPolicy); errno != 0 {
		return [][]netlink.Message{{ack(begin, errno)}}
	}
	if a.has(uapi.NFNL_BATCH_GENID) && a.be32(uapi.NFNL_BATCH_GENID) != k.gen {
		// The ruleset changed since the client read it.
		return [][]netlink.Message{{ack(begin, syscall.Errno(uapi.ERESTART))}}
	}
	if k.fail == syscall.EPERM && slices.ContainsFunc(msgs, func(m netlink.Message) bool {
		typ, ours := msgType(m)
		return ours && isWrite(typ)
	}) {
		k.fail = 0
		return [][]netlink.Message{{ack(begin, syscall.EPERM)}}
	}
	tx := k.begin()
	if len(msgs) > 1 {
		tx.first = msgs[1]
	}
	var acks []netlink.Message
	done, failed := false, false
	for _, m := range msgs[1:] {
		typ, ours := msgType(m)
		if m.Header.Type == uapi.NFNL_MSG_BATCH_END {
			done = true
			break
		}
		if m.Header.Type == uapi.NFNL_MSG_BATCH_BEGIN {
			// Malformed: the kernel drops what it had to say.
			acks, failed = nil, true
			break
		}
		var errno syscall.Errno
		switch {
		case m.Header.Flags&uapi.NLM_F_REQUEST == 0, uint16(m.Header.Type) < uapi.NLMSG_MIN_TYPE, !ours, isGet(typ):
			errno = syscall.EINVAL
		case !isWrite(typ):
			k.requests++
			errno = syscall.EOPNOTSUPP
		default:
			k.requests++
			k.writes++
			if k.fail != 0 {
				errno, k.fail = k.fail, 0
			} else {
				errno = tx.apply(typ, m)
			}
		}
		if m.Header.Flags&uapi.NLM_F_ACK != 0 || errno != 0 {
			acks = append(acks, ack(m, errno))
		}
		if errno != 0 {
			failed = true
		}
	}
	var out [][]netlink.Message
	if done && !failed {
		out = k.commit(tx)
	} else {
		k.abort(tx)
	}
	for _, a := range acks {
		out = append(out, []netlink.Message{a})
	}
	return out
}

// tx is a batch's transaction: the ruleset as the batch has made it so
// far.
type tx struct {
	k       *Kernel
	tables  []*table
	changed bool
	// pending are the tables whose flags, or whose chains' hooks (an
	// updated chain, a deleted base chain), the batch changed: the
	// kernel refuses to change their flags again
	// (nft_table_pending_update).
	pending map[*table]bool
	// first is the batch's first message: when it asks for an echo, so
	// does the commit's announcement of the new generation.
	first netlink.Message
	// echoes make the copies of what changed, for the requests that
	// asked (NLM_F_ECHO), once the batch is committed; nil when the
	// object is gone by then.
	echoes []func() *netlink.Message
}

func (k *Kernel) begin() *tx {
	t := &tx{k: k, pending: map[*table]bool{}}
	for _, tb := range k.tables {
		t.tables = append(t.tables, tb.clone())
	}
	return t
}

// commit makes the batch's ruleset the kernel's and returns the echoes,
// packed as nf_tables packs its notifications (nft_commit_notify): into
// buffers of NLMSG_GOODSIZE; then, if the batch's first message asked for
// echoes, the new generation's announcement (nf_tables_gen_notify). A
// batch that changed nothing is no commit.
func (k *Kernel) commit(t *tx) [][]netlink.Message {
	k.tables = t.tables
	if !t.changed {
		return nil
	}
	k.gen++
	var msgs []netlink.Message
	for _, e := range t.echoes {
		if m := e(); m != nil {
			msgs = append(msgs, *m)
		}
	}
	out := pack(msgs, func(size int) bool { return size < uapi.NLMSG_GOODSIZE })
	if t.first.Header.Flags&uapi.NLM_F_ECHO != 0 {
		out = append(out, []netlink.Message{k.newGen(t.first)})
	}
	return out
}

// newGen is nf_tables_fill_gen_info: the generation, and the process
// that made it (the one the kernel would name: this one).
func (k *Kernel) newGen(m netlink.Message) netlink.Message {
	e := enc(k.nfgen(uapi.NFPROTO_UNSPEC))
	e.u32(uapi.NFTA_GEN_ID, k.gen)
	e.u32(uapi.NFTA_GEN_PROC_PID, uint32(os.Getpid()))
	comm := filepath.Base(os.Args[0])
	e.str(uapi.NFTA_GEN_PROC_NAME, comm[:min(len(comm), uapi.TASK_COMM_LEN-1)])
	return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(uapi.NFNL_SUBSYS_NFTABLES<<8 | uapi.NFT_MSG_NEWGEN),
		Sequence: m.Header.Sequence, PID: m.Header.PID}, Data: e}
}

// abort forgets the batch, but not the handles it used: a table's handle
// counter is not wound back.
func (k *Kernel) abort(t *tx) {
	for _, tb := range k.tables {
		for _, u := range t.tables {
			if u.handle == tb.handle {
				tb.last = max(tb.last, u.last)
			}
		}
	}
}

// echo queues the copy of what a request changed, made at commit.
func (t *tx) echo(m netlink.Message, typ uint8, flags netlink.HeaderFlags, body func() []byte) {
	if m.Header.Flags&uapi.NLM_F_ECHO == 0 {
		return
	}
	t.echoes = append(t.echoes, func() *netlink.Message {
		b := body()
		if b == nil {
			return nil
		}
		// The generation is the one the commit made.
		b = slices.Clone(b)
		copy(b, t.k.nfgen(b[0]))
		return &netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(uapi.NFNL_SUBSYS_NFTABLES<<8 | uint16(typ)),
			Flags: flags, Sequence: m.Header.Sequence, PID: m.Header.PID}, Data: b}
	})
}

// echoFlags are the flags of a new object's echo: NLM_F_APPEND for an
// appended or replacing rule, and the request's NLM_F_CREATE and
// NLM_F_EXCL.
func echoFlags(m netlink.Message) netlink.HeaderFlags {
	f := m.Header.Flags
	out := f & (uapi.NLM_F_CREATE | uapi.NLM_F_EXCL)
	if f&(uapi.NLM_F_APPEND|uapi.NLM_F_REPLACE) != 0 {
		out |= uapi.NLM_F_APPEND
	}
	return out
}

func (t *tx) apply(typ uint8, m netlink.Message) syscall.Errno {
	if len(m.Data) < 4 {
		return syscall.EINVAL
	}
	fam := m.Data[0]
	a, errno := parseRequest(typ, m.Data[4:])
	if errno != 0 {
		return errno
	}
	switch typ {
	case uapi.NFT_MSG_NEWTABLE:
		return t.newTable(m, fam, a)
	case uapi.NFT_MSG_DELTABLE:
		return t.delTable(m, fam, a)
	case uapi.NFT_MSG_NEWCHAIN:
		return t.newChain(m, fam, a)
	case uapi.NFT_MSG_DELCHAIN:
		return t.delChain(m, fam, a)
	case uapi.NFT_MSG_NEWRULE:
		return t.newRule(m, fam, a)
	default:
		return t.delRule(m, fam, a)
	}
}

// findTable is nft_table_lookup: by the name in attribute attr, in the
// family.
func (k *Kernel) findTable(tables []*table, fam uint8, a attrs, attr uint16) (*table, syscall.Errno) {
	if !a.has(attr) {
		return nil, syscall.EINVAL
	}
	name := a.str(attr)
	for _, t := range tables {
		if t.family == fam && t.name == name {
			return t, 0
		}
	}
	return nil, syscall.ENOENT
}

// supported is nft_supported_family: the families of a kernel with them
// all.
func supported(fam uint8) bool {
	_, ok := families[fam]
	return ok
}

// newTable is nf_tables_newtable: a new table, or flags for one.
func (t *tx) newTable(m netlink.Message, fam uint8, a attrs) syscall.Errno {
	if !supported(fam) {
		return syscall.EOPNOTSUPP
	}
	tb, errno := t.k.findTable(t.tables, fam, a, uapi.NFTA_TABLE_NAME)
	switch {
	case errno == syscall.ENOENT:
	case errno != 0:
		return errno
	case m.Header.Flags&uapi.NLM_F_EXCL != 0:
		return syscall.EEXIST
	case m.Header.Flags&uapi.NLM_F_REPLACE != 0:
		return syscall.EOPNOTSUPP
	default:
		return t.updTable(m, tb, a)
	}
	var flags uint32
	if a.has(uapi.NFTA_TABLE_FLAGS) {
		flags = a.be32(uapi.NFTA_TABLE_FLAGS)
		if flags&^uapi.NFT_TABLE_F_DORMANT != 0 {
			// Owners and unknown flags.
			return syscall.EOPNOTSUPP
		}
	}
	t.k.tableHandle++
	tb = &table{family: fam, name: a.str(uapi.NFTA_TABLE_NAME), handle: t.k.tableHandle, flags: flags,
		udata: nonEmpty(a[uapi.NFTA_TABLE_USERDATA])}
	t.tables = append(t.tables, tb)
	t.changed = true
	t.echo(m, uapi.NFT_MSG_NEWTABLE, echoFlags(m), func() []byte { return t.k.encodeTable(tb) })
	return 0
}

// updTable is nf_tables_updtable: only the dormant flag changes, once a
// batch.
func (t *tx) updTable(m netlink.Message, tb *table, a attrs) syscall.Errno {
	if !a.has(uapi.NFTA_TABLE_FLAGS) {
		return 0
	}
	flags := a.be32(uapi.NFTA_TABLE_FLAGS)
	switch {
	case flags&^uapi.NFT_TABLE_F_DORMANT != 0:
		return syscall.EOPNOTSUPP
	case flags == tb.flags:
		return 0
	case t.pending[tb]:
		return syscall.EINVAL
	}
	t.pending[tb] = true
	tb.flags = flags
	t.changed = true
	t.echo(m, uapi.NFT_MSG_NEWTABLE, echoFlags(m), func() []byte { return t.k.encodeTable(tb) })
	return 0
}

// delTable is nf_tables_deltable: a table with all it holds; without a
// family, or without a name or handle, every table of the family (all
// families) of the name (any name): nft flush ruleset.
func (t *tx) delTable(m netlink.Message, fam uint8, a attrs) syscall.Errno {
	if fam == uapi.NFPROTO_UNSPEC || !a.has(uapi.NFTA_TABLE_NAME) && !a.has(uapi.NFTA_TABLE_HANDLE) {
		t.tables = slices.DeleteFunc(t.tables, func(tb *table) bool {
			if (fam == uapi.NFPROTO_UNSPEC || tb.family == fam) && (!a.has(uapi.NFTA_TABLE_NAME) || a.str(uapi.NFTA_TABLE_NAME) == tb.name) {
				t.dropTable(m, tb)
				return true
			}
			return false
		})
		return 0
	}
	var tb *table
	if a.has(uapi.NFTA_TABLE_HANDLE) {
		h := a.be64(uapi.NFTA_TABLE_HANDLE)
		for _, u := range t.tables {
			if u.family == fam && u.handle == h {
				tb = u
			}
		}
		if tb == nil {
			return syscall.ENOENT
		}
	} else {
		var errno syscall.Errno
		if tb, errno = t.k.findTable(t.tables, fam, a, uapi.NFTA_TABLE_NAME); errno != 0 {
			return errno
		}
	}
	if m.Header.Flags&uapi.NLM_F_NONREC != 0 && len(tb.chains) > 0 {
		return syscall.EBUSY
	}
	t.dropTable(m, tb)
	t.tables = slices.DeleteFunc(t.tables, func(u *table) bool { return u == tb })
	return 0
}

// dropTable records a table's deletion, with its chains' and rules', in
// the kernel's order (nft_flush_table).
func (t *tx) dropTable(m netlink.Message, tb *table) {
	for _, c := range tb.chains {
		t.dropRules(m, tb, c, c.rules)
	}
	for _, c := range tb.chains {
		t.dropChain(m, tb, c)
	}
	body := t.k.encodeTable(tb)
	t.echo(m, uapi.NFT_MSG_DELTABLE, 0, func() []byte { return body })
	t.changed = true
}

func (t *tx) dropChain(m netlink.Message, tb *table, c *chain) {
	body := t.k.encodeChain(tb, c)
	t.echo(m, uapi.NFT_MSG_DELCHAIN, 0, func() []byte { return body })
	t.changed = true
}

func (t *tx) dropRules(m netlink.Message, tb *table, c *chain, rules []*rule) {
	for _, r := range rules {
		body := t.k.encodeRule(tb, c, r, 0)
		t.echo(m, uapi.NFT_MSG_DELRULE, 0, func() []byte { return body })
		t.changed = true
	}
}

// Chain types and the hooks each may use, by family
// (nft_chain_filter_*, nft_chain_nat_*, nft_chain_route_*).
var chainTypes = map[uint8]map[string]uint32{
	uapi.NFPROTO_INET: {
		"filter": 1<<uapi.NF_INET_PRE_ROUTING | 1<<uapi.NF_INET_LOCAL_IN | 1<<uapi.NF_INET_FORWARD | 1<<uapi.NF_INET_LOCAL_OUT | 1<<uapi.NF_INET_POST_ROUTING,
		"nat":    1<<uapi.NF_INET_PRE_ROUTING | 1<<uapi.NF_INET_LOCAL_IN | 1<<uapi.NF_INET_LOCAL_OUT | 1<<uapi.NF_INET_POST_ROUTING,
		"route":  1<<uapi.NF_INET_LOCAL_OUT | 1<<uapi.NF_INET_PRE_ROUTING,
	},
	uapi.NFPROTO_IPV4: {
		"filter": 1<<uapi.NF_INET_PRE_ROUTING | 1<<uapi.NF_INET_LOCAL_IN | 1<<uapi.NF_INET_FORWARD | 1<<uapi.NF_INET_LOCAL_OUT | 1<<uapi.NF_INET_POST_ROUTING,
		"nat":    1<<uapi.NF_INET_PRE_ROUTING | 1<<uapi.NF_INET_LOCAL_IN | 1<<uapi.NF_INET_LOCAL_OUT | 1<<uapi.NF_INET_POST_ROUTING,
		"route":  1 << uapi.NF_INET_LOCAL_OUT,
	},
}

func init() { chainTypes[uapi.NFPROTO_IPV6] = chainTypes[uapi.NFPROTO_IPV4] }

// natMinPriority is NF_IP_PRI_CONNTRACK: a nat chain must run after
// connection tracking.
const natMinPriority = -200

// parseHook is nft_chain_parse_hook for a new base chain.
func parseHook(fam uint8, a attrs) (*baseChain, syscall.Errno) {
	h, err := parseAttrs(a[uapi.NFTA_CHAIN_HOOK])
	if err != nil {
		return nil, syscall.EINVAL
	}
	if errno := h.check(hookPolicy); errno != 0 {
		return nil, errno
	}
	if !h.has(uapi.NFTA_HOOK_HOOKNUM) || !h.has(uapi.NFTA_HOOK_PRIORITY) {
		return nil, syscall.ENOENT
	}
	b := &baseChain{typ: "filter", hook: h.be32(uapi.NFTA_HOOK_HOOKNUM), prio: int32(h.be32(uapi.NFTA_HOOK_PRIORITY)), policy: uapi.NF_ACCEPT}
	types, ok := chainTypes[fam]
	if !ok {
		return nil, syscall.EOPNOTSUPP // not modelled
	}
	if a.has(uapi.NFTA_CHAIN_TYPE) {
		b.typ = a.str(uapi.NFTA_CHAIN_TYPE)
	}
	mask, ok := types[b.typ]
	if !ok {
		return nil, syscall.ENOENT
	}
	if b.hook >= 32 || mask&(1<<b.hook) == 0 || h.has(uapi.NFTA_HOOK_DEV) || h.has(uapi.NFTA_HOOK_DEVS) {
		return nil, syscall.EOPNOTSUPP
	}
	if b.typ == "nat" && b.prio <= natMinPriority {
		return nil, syscall.EOPNOTSUPP
	}
	return b, 0
}

// newChain is nf_tables_newchain: a new chain, or a change to one.
func (t *tx) newChain(m netlink.Message, fam uint8, a attrs) syscall.Errno {
	tb, errno := t.k.findTable(t.tables, fam, a, uapi.NFTA_CHAIN_TABLE)
	if errno != 0 {
		return errno
	}
	var c *chain
	switch {
	case a.has(uapi.NFTA_CHAIN_HANDLE):
		if c = tb.chainHandle(a.be64(uapi.NFTA_CHAIN_HANDLE)); c == nil {
			return syscall.ENOENT
		}
	case a.has(uapi.NFTA_CHAIN_NAME):
		c = tb.chainNamed(a.str(uapi.NFTA_CHAIN_NAME))
	case a.has(uapi.NFTA_CHAIN_ID):
		return syscall.EOPNOTSUPP // a bound chain: not modelled
	default:
		return syscall.EINVAL
	}
	policy := uint32(uapi.NF_ACCEPT)
	if a.has(uapi.NFTA_CHAIN_POLICY) {
		if c != nil && c.base == nil || c == nil && !a.has(uapi.NFTA_CHAIN_HOOK) {
			return syscall.EOPNOTSUPP
		}
		policy = a.be32(uapi.NFTA_CHAIN_POLICY)
		if policy != uapi.NF_ACCEPT && policy != uapi.NF_DROP {
			return syscall.EINVAL
		}
	}
	var flags uint32
	switch {
	case a.has(uapi.NFTA_CHAIN_FLAGS):
		flags = a.be32(uapi.NFTA_CHAIN_FLAGS)
	case c != nil && c.base != nil:
		flags = uapi.NFT_CHAIN_BASE
	}
	if flags&^uapi.NFT_CHAIN_BASE != 0 {
		// Unknown flags; offloaded and bound chains are not modelled.
		return syscall.EOPNOTSUPP
	}
	if c != nil {
		switch {
		case m.Header.Flags&uapi.NLM_F_EXCL != 0:
			return syscall.EEXIST
		case m.Header.Flags&uapi.NLM_F_REPLACE != 0:
			return syscall.EOPNOTSUPP
		}
		if c.base != nil {
			flags |= uapi.NFT_CHAIN_BASE
		}
		return t.updChain(m, fam, tb, c, a, flags)
	}
	if !a.has(uapi.NFTA_CHAIN_NAME) {
		return syscall.EINVAL
	}
	if !a.has(uapi.NFTA_CHAIN_HOOK) && flags&uapi.NFT_CHAIN_BASE != 0 {
		return syscall.EINVAL
	}
	c = &chain{name: a.str(uapi.NFTA_CHAIN_NAME), udata: nonEmpty(a[uapi.NFTA_CHAIN_USERDATA])}
	if a.has(uapi.NFTA_CHAIN_HOOK) {
		if c.base, errno = parseHook(fam, a); errno != 0 {
			return errno
		}
		c.base.policy = policy
	}
	tb.last++
	c.handle = tb.last
	tb.chains = append(tb.chains, c)
	t.changed = true
	t.echo(m, uapi.NFT_MSG_NEWCHAIN, echoFlags(m), func() []byte { return t.k.encodeChain(tb, c) })
	return 0
}

// updChain is nf_tables_updchain: a base chain's hook must be the one it
// has (its hook and priority, checked first, EOPNOTSUPP; then its type,
// EEXIST); its policy, and with a handle its name, may change.
func (t *tx) updChain(m netlink.Message, fam uint8, tb *table, c *chain, a attrs, flags uint32) syscall.Errno {
	if c.base == nil && flags != 0 || c.base != nil && flags != uapi.NFT_CHAIN_BASE {
		return syscall.EOPNOTSUPP
	}
	if a.has(uapi.NFTA_CHAIN_HOOK) {
		if c.base == nil {
			return syscall.EEXIST
		}
		h, err := parseAttrs(a[uapi.NFTA_CHAIN_HOOK])
		if err != nil {
			return syscall.EINVAL
		}
		if errno := h.check(hookPolicy); errno != 0 {
			return errno
		}
		if h.has(uapi.NFTA_HOOK_HOOKNUM) && h.be32(uapi.NFTA_HOOK_HOOKNUM) != c.base.hook ||
			h.has(uapi.NFTA_HOOK_PRIORITY) && int32(h.be32(uapi.NFTA_HOOK_PRIORITY)) != c.base.prio {
			return syscall.EOPNOTSUPP
		}
		if a.has(uapi.NFTA_CHAIN_TYPE) {
			typ := a.str(uapi.NFTA_CHAIN_TYPE)
			if _, ok := chainTypes[fam][typ]; !ok {
				return syscall.ENOENT
			}
			if typ != c.base.typ {
				return syscall.EEXIST
			}
		}
		if h.has(uapi.NFTA_HOOK_DEV) || h.has(uapi.NFTA_HOOK_DEVS) {
			return syscall.EOPNOTSUPP
		}
	}
	if a.has(uapi.NFTA_CHAIN_HANDLE) && a.has(uapi.NFTA_CHAIN_NAME) {
		name := a.str(uapi.NFTA_CHAIN_NAME)
		if tb.chainNamed(name) != nil {
			return syscall.EEXIST
		}
		c.name = name
	}
	if a.has(uapi.NFTA_CHAIN_POLICY) {
		c.base.policy = a.be32(uapi.NFTA_CHAIN_POLICY)
	}
	t.pending[tb] = true
	t.changed = true
	t.echo(m, uapi.NFT_MSG_NEWCHAIN, echoFlags(m), func() []byte { return t.k.encodeChain(tb, c) })
	return 0
}

// delChain is nf_tables_delchain: a chain with its rules.
func (t *tx) delChain(m netlink.Message, fam uint8, a attrs) syscall.Errno {
	tb, errno := t.k.findTable(t.tables, fam, a, uapi.NFTA_CHAIN_TABLE)
	if errno != 0 {
		return errno
	}
	var c *chain
	switch {
	case a.has(uapi.NFTA_CHAIN_HANDLE):
		c = tb.chainHandle(a.be64(uapi.NFTA_CHAIN_HANDLE))
	case a.has(uapi.NFTA_CHAIN_NAME):
		c = tb.chainNamed(a.str(uapi.NFTA_CHAIN_NAME))
	default:
		return syscall.EINVAL
	}
	if c == nil {
		return syscall.ENOENT
	}
	// A chain's use counts its rules (and the jumps to it, which the
	// fake does not have).
	if m.Header.Flags&uapi.NLM_F_NONREC != 0 && len(c.rules) > 0 {
		return syscall.EBUSY
	}
	t.dropRules(m, tb, c, c.rules)
	t.dropChain(m, tb, c)
	tb.chains = slices.DeleteFunc(tb.chains, func(u *chain) bool { return u == c })
	if c.base != nil {
		t.pending[tb] = true
	}
	return 0
}

// newRule is nf_tables_newrule: a rule appended or inserted (at the
// chain's end or start, or after or before the rule at NFTA_RULE_POSITION)
// or, with a handle and NLM_F_REPLACE, one replaced.
func (t *tx) newRule(m netlink.Message, fam uint8, a attrs) syscall.Errno {
	tb, errno := t.k.findTable(t.tables, fam, a, uapi.NFTA_RULE_TABLE)
	if errno != 0 {
		return errno
	}
	var c *chain
	switch {
	case a.has(uapi.NFTA_RULE_CHAIN):
		if c = tb.chainNamed(a.str(uapi.NFTA_RULE_CHAIN)); c == nil {
			return syscall.ENOENT
		}
	case a.has(uapi.NFTA_RULE_CHAIN_ID):
		return syscall.EOPNOTSUPP // a chain of this batch by id: not modelled
	default:
		return syscall.EINVAL
	}
	f := m.Header.Flags
	var handle uint64
	old := -1 // the rule replaced, or the one to add after or before
	if a.has(uapi.NFTA_RULE_HANDLE) {
		handle = a.be64(uapi.NFTA_RULE_HANDLE)
		if old = c.ruleIndex(handle); old < 0 {
			return syscall.ENOENT
		}
		switch {
		case f&uapi.NLM_F_EXCL != 0:
			return syscall.EEXIST
		case f&uapi.NLM_F_REPLACE == 0:
			return syscall.EOPNOTSUPP
		}
	} else {
		if f&uapi.NLM_F_CREATE == 0 || f&uapi.NLM_F_REPLACE != 0 {
			return syscall.EINVAL
		}
		// The handle is taken before anything else can fail.
		tb.last++
		handle = tb.last
		switch {
		case a.has(uapi.NFTA_RULE_POSITION):
			if old = c.ruleIndex(a.be64(uapi.NFTA_RULE_POSITION)); old < 0 {
				return syscall.ENOENT
			}
		case a.has(uapi.NFTA_RULE_POSITION_ID):
			return syscall.EOPNOTSUPP // a rule of this batch by id: not modelled
		}
	}
	r := &rule{handle: handle, udata: nonEmpty(a[uapi.NFTA_RULE_USERDATA])}
	if r.exprs, errno = parseExprs(a[uapi.NFTA_RULE_EXPRESSIONS]); errno != 0 {
		return errno
	}
	switch {
	case f&uapi.NLM_F_REPLACE != 0:
		c.rules[old] = r
	case f&uapi.NLM_F_APPEND != 0 && old >= 0:
		c.rules = slices.Insert(c.rules, old+1, r)
	case f&uapi.NLM_F_APPEND != 0:
		c.rules = append(c.rules, r)
	case old >= 0:
		c.rules = slices.Insert(c.rules, old, r)
	default:
		c.rules = slices.Insert(c.rules, 0, r)
	}
	t.changed = true
	t.echo(m, uapi.NFT_MSG_NEWRULE, echoFlags(m), func() []byte {
		// The rule as committed, with the rule before it when it is
		// neither first nor last (nf_tables_rule_notify).
		i := c.ruleIndex(r.handle)
		if i < 0 || !slices.Contains(t.tables, tb) || !slices.Contains(tb.chains, c) {
			return nil
		}
		var prev uint64
		if i > 0 && i < len(c.rules)-1 {
			prev = c.rules[i-1].handle
		}
		return t.k.encodeRule(tb, c, r, prev)
	})
	return 0
}

// delRule is nf_tables_delrule: a rule by its handle; without one, all
// of the chain's; without a chain, all of the table's.
func (t *tx) delRule(m netlink.Message, fam uint8, a attrs) syscall.Errno {
	tb, errno := t.k.findTable(t.tables, fam, a, uapi.NFTA_RULE_TABLE)
	if errno != 0 {
		return errno
	}
	if !a.has(uapi.NFTA_RULE_CHAIN) {
		for _, c := range tb.chains {
			t.dropRules(m, tb, c, c.rules)
			c.rules = nil
		}
		return 0
	}
	c := tb.chainNamed(a.str(uapi.NFTA_RULE_CHAIN))
	if c == nil {
		return syscall.ENOENT
	}
	switch {
	case a.has(uapi.NFTA_RULE_HANDLE):
		i := c.ruleIndex(a.be64(uapi.NFTA_RULE_HANDLE))
		if i < 0 {
			return syscall.ENOENT
		}
		t.dropRules(m, tb, c, c.rules[i:i+1])
		c.rules = slices.Delete(c.rules, i, i+1)
	case a.has(uapi.NFTA_RULE_ID):
		return syscall.ENOENT // no rule of this batch has an id here
	default:
		t.dropRules(m, tb, c, c.rules)
		c.rules = nil
	}
	return 0
}

// nonEmpty is userdata as the kernel keeps it: none when it is empty.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return slices.Clone(b)
}

// exprNames are the expressions of a kernel with every nf_tables module.
var exprNames = map[string]bool{}

func init() {
	for _, n := range []string{"bitwise", "byteorder", "cmp", "immediate", "range", "lookup", "dynset", "payload",
		"meta", "rt", "exthdr", "last", "counter", "limit", "log", "quota", "reject", "masq", "redir", "nat", "ct",
		"notrack", "numgen", "hash", "fib", "osf", "socket", "tproxy", "xfrm", "synproxy", "tunnel", "objref",
		"queue", "connlimit", "flow_offload", "dup", "fwd", "match", "target", "inner"} {
		exprNames[n] = true
	}
}

// parseExprs reads a rule's expressions as nf_tables_newrule does up to
// each expression's type: list elements, at most NFT_RULE_MAXEXPRS, each
// of an expression the kernel has. What an expression holds is not
// checked.
func parseExprs(b []byte) ([][]byte, syscall.Errno) {
	var out [][]byte
	err := walkAttrs(b, func(typ uint16, data []byte) error {
		if typ != uapi.NFTA_LIST_ELEM || len(out) == uapi.NFT_RULE_MAXEXPRS {
			return syscall.EINVAL
		}
		e, err := parseAttrs(data)
		if err != nil {
			return syscall.EINVAL
		}
		if errno := e.check(exprPolicy); errno != 0 {
			return errno
		}
		if !e.has(uapi.NFTA_EXPR_NAME) {
			return syscall.EINVAL
		}
		if !exprNames[e.str(uapi.NFTA_EXPR_NAME)] {
			return syscall.ENOENT
		}
		out = append(out, slices.Clone(data))
		return nil
	})
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return nil, errno
	}
	if err != nil {
		return nil, syscall.EINVAL
	}
	return out, 0
}
