package nfttest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"

	"github.com/seesawlb/seesaw/ncc/nft/nfttest/internal/uapi"
)

// These tests speak to the fake as google/nftables does, and with
// messages made by hand where the library cannot say something (flags,
// a dormant table, a batch that does not end). The same steps run against
// the host's kernel in netns_linux_test.go, which is the judge of every
// outcome written here.

// side is a kernel under test: the fake, or the host's in a namespace.
type side struct {
	name string
	// dial opens a connection for reading the ruleset.
	dial func() (*netlink.Conn, error)
	// lib is google/nftables on this kernel.
	lib *nftables.Conn
	// exchange sends what one sendmsg carries and returns every
	// datagram the kernel answers with.
	exchange func(msgs []netlink.Message) ([][]netlink.Message, error)
}

func fakeSide(t *testing.T, k *Kernel) *side {
	lib, err := nftables.New(nftables.WithTestDial(k.Func()))
	if err != nil {
		t.Fatal(err)
	}
	return &side{
		name: "fake",
		dial: func() (*netlink.Conn, error) { return nltest.Dial(k.Func()), nil },
		lib:  lib,
		exchange: func(msgs []netlink.Message) ([][]netlink.Message, error) {
			f := k.Func()
			for i := range msgs {
				msgs[i].Header.Sequence = uint32(100 + i)
			}
			if _, err := f(msgs); err != nil {
				return nil, err
			}
			var out [][]netlink.Message
			for {
				d, err := f(nil)
				if errors.Is(err, syscall.EAGAIN) {
					return out, nil
				}
				if err != nil {
					return nil, err
				}
				out = append(out, d)
			}
		},
	}
}

// step is one thing done to a kernel, and its outcome.
type step struct {
	name string
	lib  func(c *nftables.Conn)   // queued, then flushed as one batch
	raw  func() []netlink.Message // sent as they are, in one sendmsg
	want string                   // see outcome
}

// outcome says what a step did: "ok" or the errnos a flush returned, in
// order; for raw messages the datagrams that came back, each its
// messages' kinds ("ack", an errno's name, "done", or the nf_tables
// message type).
func (s *side) do(st step) (outcome, detail string, err error) {
	if st.lib != nil {
		st.lib(s.lib)
		ferr := s.lib.Flush()
		if ferr == nil {
			return "ok", "", nil
		}
		return strings.Join(errnos(ferr), " "), ferr.Error(), nil
	}
	ds, err := s.exchange(st.raw())
	if err != nil {
		return "", "", err
	}
	var parts []string
	for _, d := range ds {
		var kinds []string
		for _, m := range d {
			kinds = append(kinds, kindOf(m))
		}
		parts = append(parts, strings.Join(kinds, " "))
	}
	return strings.Join(parts, " | "), "", nil
}

func kindOf(m netlink.Message) string {
	switch {
	case m.Header.Type == netlink.Error:
		if len(m.Data) < 4 {
			return "short-error"
		}
		if e := -int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
			return errName(syscall.Errno(e))
		}
		return "ack"
	case m.Header.Type == netlink.Done:
		return "done"
	case uint16(m.Header.Type)>>8 == unix.NFNL_SUBSYS_NFTABLES:
		return map[uint16]string{unix.NFT_MSG_NEWTABLE: "NEWTABLE", unix.NFT_MSG_NEWCHAIN: "NEWCHAIN", unix.NFT_MSG_NEWRULE: "NEWRULE",
			unix.NFT_MSG_DELTABLE: "DELTABLE", unix.NFT_MSG_DELCHAIN: "DELCHAIN", unix.NFT_MSG_DELRULE: "DELRULE",
			unix.NFT_MSG_NEWGEN: "NEWGEN"}[uint16(m.Header.Type)&0xff]
	}
	return fmt.Sprintf("type-%d", m.Header.Type)
}

// errnos are the errnos in an error's tree, in order.
func errnos(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case syscall.Errno:
			out = append(out, errName(e))
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		default:
			out = append(out, err.Error())
		}
	}
	walk(err)
	return out
}

// errName names an errno as the kernel's sources do (EOPNOTSUPP, which
// is ENOTSUP's number on Linux).
func errName(e syscall.Errno) string {
	if e == unix.EOPNOTSUPP {
		return "EOPNOTSUPP"
	}
	return unix.ErrnoName(e)
}

var (
	tbl   = &nftables.Table{Name: "t", Family: nftables.TableFamilyINet}
	other = &nftables.Table{Name: "u", Family: nftables.TableFamilyIPv4}
)

func hooked(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{Name: name, Table: tbl, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept}
}

func ruleIn(chain, comment string) *nftables.Rule {
	return &nftables.Rule{Table: tbl, Chain: &nftables.Chain{Name: chain, Table: tbl},
		Exprs:    []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}}, &expr.Counter{}},
		UserData: CommentUserdata(comment)}
}

// exprsAttr is a rule's expressions: each given name with no data.
func exprsAttr(names ...string) netlink.Attribute {
	var list []netlink.Attribute
	for _, n := range names {
		e, _ := netlink.MarshalAttributes([]netlink.Attribute{name(unix.NFTA_EXPR_NAME, n)})
		list = append(list, netlink.Attribute{Type: unix.NFTA_LIST_ELEM, Data: e})
	}
	b, _ := netlink.MarshalAttributes(list)
	return netlink.Attribute{Type: unix.NFTA_RULE_EXPRESSIONS, Data: b}
}

const (
	inet  = unix.NFPROTO_INET
	acked = netlink.Acknowledge
)

// steps is a session with a kernel: every write and refusal the NCC's
// reconciler can meet, and the kernel's datagrams for them.
func steps() []step {
	mangle, srcnat := nftables.ChainPriorityMangle, nftables.ChainPriorityNATSource
	prerouting, postrouting, forward := nftables.ChainHookPrerouting, nftables.ChainHookPostrouting, nftables.ChainHookForward
	prio := func(p int32) *nftables.ChainPriority { v := nftables.ChainPriority(p); return &v }
	return []step{
		{name: "delete a table that is not there", lib: func(c *nftables.Conn) { c.DelTable(tbl) }, want: "ENOENT"},
		{name: "a chain in a table that is not there", lib: func(c *nftables.Conn) { c.AddChain(hooked("pre", nftables.ChainTypeFilter, prerouting, mangle)) }, want: "ENOENT"},
		{name: "a table", lib: func(c *nftables.Conn) { c.AddTable(tbl) }, want: "ok"},
		{name: "the table again", lib: func(c *nftables.Conn) { c.AddTable(tbl) }, want: "ok"},
		{name: "create the table again", lib: func(c *nftables.Conn) { c.CreateTable(tbl) }, want: "EEXIST"},
		{name: "a base chain", lib: func(c *nftables.Conn) { c.AddChain(hooked("pre", nftables.ChainTypeFilter, prerouting, mangle)) }, want: "ok"},
		{name: "the chain again", lib: func(c *nftables.Conn) { c.AddChain(hooked("pre", nftables.ChainTypeFilter, prerouting, mangle)) }, want: "ok"},
		{name: "the chain at another priority", lib: func(c *nftables.Conn) { c.AddChain(hooked("pre", nftables.ChainTypeFilter, prerouting, prio(-140))) }, want: "EOPNOTSUPP"},
		{name: "the chain at another hook", lib: func(c *nftables.Conn) { c.AddChain(hooked("pre", nftables.ChainTypeFilter, forward, mangle)) }, want: "EOPNOTSUPP"},
		{name: "the chain of another type", lib: func(c *nftables.Conn) { c.AddChain(hooked("pre", nftables.ChainTypeNAT, prerouting, prio(-100))) }, want: "EOPNOTSUPP"},
		{name: "a nat chain", lib: func(c *nftables.Conn) { c.AddChain(hooked("post", nftables.ChainTypeNAT, postrouting, srcnat)) }, want: "ok"},
		{name: "nat before conntrack", lib: func(c *nftables.Conn) { c.AddChain(hooked("early", nftables.ChainTypeNAT, prerouting, prio(-300))) }, want: "EOPNOTSUPP"},
		{name: "nat in forward", lib: func(c *nftables.Conn) { c.AddChain(hooked("fwd", nftables.ChainTypeNAT, forward, prio(0))) }, want: "EOPNOTSUPP"},
		{name: "a chain of no type", lib: func(c *nftables.Conn) { c.AddChain(hooked("odd", "nosuchtype", prerouting, prio(0))) }, want: "ENOENT"},
		{name: "a regular chain", lib: func(c *nftables.Conn) { c.AddChain(&nftables.Chain{Name: "reg", Table: tbl}) }, want: "ok"},
		{name: "a policy without a hook", lib: func(c *nftables.Conn) {
			drop := nftables.ChainPolicyDrop
			c.AddChain(&nftables.Chain{Name: "reg2", Table: tbl, Policy: &drop})
		}, want: "EOPNOTSUPP"},
		{name: "rules", lib: func(c *nftables.Conn) {
			c.AddRule(ruleIn("pre", "one"))
			c.AddRule(ruleIn("pre", "two"))
			c.AddRule(ruleIn("post", "three"))
		}, want: "ok"},
		{name: "a rule in a chain that is not there", lib: func(c *nftables.Conn) { c.AddRule(ruleIn("nope", "x")) }, want: "ENOENT"},
		{name: "delete a rule that is not there", lib: func(c *nftables.Conn) {
			c.DelRule(&nftables.Rule{Table: tbl, Chain: &nftables.Chain{Name: "pre", Table: tbl}, Handle: 999})
		}, want: "ENOENT"},
		{name: "insert at the start", lib: func(c *nftables.Conn) { c.InsertRule(ruleIn("pre", "zero")) }, want: "ok"},
		{name: "add after a rule", lib: func(c *nftables.Conn) {
			r := ruleIn("pre", "after one")
			r.Position = 4 // "one": the table's chains took handles 1-3
			c.AddRule(r)
		}, want: "ok"},
		{name: "insert before a rule", lib: func(c *nftables.Conn) {
			r := ruleIn("pre", "before one")
			r.Position = 4
			c.InsertRule(r)
		}, want: "ok"},
		{name: "after a rule that is not there", lib: func(c *nftables.Conn) {
			r := ruleIn("pre", "lost")
			r.Position = 999
			c.AddRule(r)
		}, want: "ENOENT"},
		{name: "replace a rule", lib: func(c *nftables.Conn) {
			r := ruleIn("pre", "two, replaced")
			r.Handle = 5
			c.ReplaceRule(r)
		}, want: "ok"},
		{name: "all or nothing", lib: func(c *nftables.Conn) {
			c.AddRule(ruleIn("pre", "never"))
			c.AddChain(&nftables.Chain{Name: "never", Table: tbl})
			c.DelRule(&nftables.Rule{Table: tbl, Chain: &nftables.Chain{Name: "pre", Table: tbl}, Handle: 998})
			c.AddRule(ruleIn("nope", "never either"))
		}, want: "ENOENT ENOENT"},
		{name: "a new table in a failed batch", lib: func(c *nftables.Conn) {
			c.AddTable(other)
			c.DelTable(&nftables.Table{Name: "nope", Family: nftables.TableFamilyINet})
		}, want: "ENOENT"},
		{name: "another table", lib: func(c *nftables.Conn) {
			c.AddTable(other)
			c.AddChain(&nftables.Chain{Name: "in", Table: other, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookInput, Priority: prio(0)})
		}, want: "ok"},
		{name: "userdata too long", lib: func(c *nftables.Conn) {
			r := ruleIn("pre", "")
			r.UserData = make([]byte, 257)
			c.AddRule(r)
		}, want: "ERANGE"},
		{name: "a name too long", lib: func(c *nftables.Conn) {
			c.AddTable(&nftables.Table{Name: strings.Repeat("n", 256), Family: nftables.TableFamilyINet})
		}, want: "ERANGE"},
		{name: "many rules: echoes in several datagrams", lib: func(c *nftables.Conn) {
			for i := range 100 {
				c.AddRule(ruleIn("post", fmt.Sprintf("many %d", i)))
			}
		}, want: "ok"},
		{name: "flush a chain", lib: func(c *nftables.Conn) { c.FlushChain(&nftables.Chain{Name: "post", Table: tbl}) }, want: "ok"},

		// By hand.
		{name: "a chain again, exclusively", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWCHAIN, acked|unix.NLM_F_CREATE|unix.NLM_F_EXCL, inet, name(unix.NFTA_CHAIN_TABLE, "t"), name(unix.NFTA_CHAIN_NAME, "reg")))
		}, want: "EEXIST"},
		{name: "delete a chain with rules, not recursively", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_DELCHAIN, acked|unix.NLM_F_NONREC, inet, name(unix.NFTA_CHAIN_TABLE, "t"), name(unix.NFTA_CHAIN_NAME, "pre")))
		}, want: "EBUSY"},
		{name: "delete a table with chains, not recursively", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_DELTABLE, acked|unix.NLM_F_NONREC, inet, name(unix.NFTA_TABLE_NAME, "t")))
		}, want: "EBUSY"},
		{name: "dormant", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWTABLE, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_TABLE_NAME, "t"), be32(unix.NFTA_TABLE_FLAGS, unix.NFT_TABLE_F_DORMANT)))
		}, want: "ack"},
		{name: "awake and dormant again in one batch", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWTABLE, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_TABLE_NAME, "t"), be32(unix.NFTA_TABLE_FLAGS, 0)),
				msg(unix.NFT_MSG_NEWTABLE, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_TABLE_NAME, "t"), be32(unix.NFTA_TABLE_FLAGS, unix.NFT_TABLE_F_DORMANT)))
		}, want: "ack | EINVAL"},
		{name: "awake", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWTABLE, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_TABLE_NAME, "t"), be32(unix.NFTA_TABLE_FLAGS, 0)))
		}, want: "ack"},
		{name: "a flag there is not", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWTABLE, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_TABLE_NAME, "t2"), be32(unix.NFTA_TABLE_FLAGS, 0x80)))
		}, want: "EOPNOTSUPP"},
		{name: "a rule without create", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWRULE, acked, inet, name(unix.NFTA_RULE_TABLE, "t"), name(unix.NFTA_RULE_CHAIN, "pre"), exprsAttr("counter")))
		}, want: "EINVAL"},
		{name: "a rule's handle without replace", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWRULE, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_RULE_TABLE, "t"), name(unix.NFTA_RULE_CHAIN, "pre"),
				be64(unix.NFTA_RULE_HANDLE, 4), exprsAttr("counter")))
		}, want: "EOPNOTSUPP"},
		{name: "an expression there is not", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWRULE, acked|unix.NLM_F_CREATE|unix.NLM_F_APPEND, inet, name(unix.NFTA_RULE_TABLE, "t"), name(unix.NFTA_RULE_CHAIN, "pre"),
				exprsAttr("nosuchexpr")))
		}, want: "ENOENT"},
		{name: "a rule without expressions, echoed", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWRULE, acked|unix.NLM_F_CREATE|unix.NLM_F_APPEND|unix.NLM_F_ECHO, inet, name(unix.NFTA_RULE_TABLE, "t"), name(unix.NFTA_RULE_CHAIN, "reg"),
				netlink.Attribute{Type: unix.NFTA_RULE_USERDATA, Data: CommentUserdata("empty")}))
		}, want: "NEWRULE | NEWGEN | ack"},
		{name: "the first message asks for echoes", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWRULE, acked|unix.NLM_F_CREATE|unix.NLM_F_APPEND|unix.NLM_F_ECHO, inet, name(unix.NFTA_RULE_TABLE, "t"), name(unix.NFTA_RULE_CHAIN, "reg"),
				netlink.Attribute{Type: unix.NFTA_RULE_USERDATA, Data: CommentUserdata("first")}),
				msg(unix.NFT_MSG_NEWRULE, acked|unix.NLM_F_CREATE|unix.NLM_F_APPEND|unix.NLM_F_ECHO, inet, name(unix.NFTA_RULE_TABLE, "t"), name(unix.NFTA_RULE_CHAIN, "reg"),
					netlink.Attribute{Type: unix.NFTA_RULE_USERDATA, Data: CommentUserdata("second")}))
		}, want: "NEWRULE NEWRULE | NEWGEN | ack | ack"},
		{name: "a later message asks for echoes", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWCHAIN, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_CHAIN_TABLE, "t"), name(unix.NFTA_CHAIN_NAME, "reg")),
				msg(unix.NFT_MSG_DELRULE, acked|unix.NLM_F_ECHO, inet, name(unix.NFTA_RULE_TABLE, "t"), name(unix.NFTA_RULE_CHAIN, "reg")))
		}, want: "DELRULE DELRULE DELRULE | ack | ack"},
		{name: "chain flags there are not", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWCHAIN, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_CHAIN_TABLE, "t"), name(unix.NFTA_CHAIN_NAME, "flagged"),
				be32(uapi.NFTA_CHAIN_FLAGS, 0x80)))
		}, want: "EOPNOTSUPP"},
		{name: "the chain of another type at its hook", raw: func() []netlink.Message {
			hook, _ := netlink.MarshalAttributes([]netlink.Attribute{be32(unix.NFTA_HOOK_HOOKNUM, unix.NF_INET_PRE_ROUTING), be32(unix.NFTA_HOOK_PRIORITY, 0xffffff6a)})
			return batchOf(msg(unix.NFT_MSG_NEWCHAIN, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_CHAIN_TABLE, "t"), name(unix.NFTA_CHAIN_NAME, "pre"),
				netlink.Attribute{Type: unix.NFTA_CHAIN_HOOK, Data: hook}, name(unix.NFTA_CHAIN_TYPE, "nat")))
		}, want: "EEXIST"},
		{name: "a hook on a regular chain", raw: func() []netlink.Message {
			hook, _ := netlink.MarshalAttributes([]netlink.Attribute{be32(unix.NFTA_HOOK_HOOKNUM, unix.NF_INET_PRE_ROUTING), be32(unix.NFTA_HOOK_PRIORITY, 0)})
			return batchOf(msg(unix.NFT_MSG_NEWCHAIN, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_CHAIN_TABLE, "t"), name(unix.NFTA_CHAIN_NAME, "reg"),
				netlink.Attribute{Type: unix.NFTA_CHAIN_HOOK, Data: hook}))
		}, want: "EEXIST"},
		{name: "dormant while a base chain goes", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_DELCHAIN, acked, inet, name(unix.NFTA_CHAIN_TABLE, "t"), name(unix.NFTA_CHAIN_NAME, "post")),
				msg(unix.NFT_MSG_NEWTABLE, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_TABLE_NAME, "t"), be32(unix.NFTA_TABLE_FLAGS, unix.NFT_TABLE_F_DORMANT)))
		}, want: "ack | EINVAL"},
		{name: "a batch of the wrong generation", raw: func() []netlink.Message {
			b := batchOf(msg(unix.NFT_MSG_NEWCHAIN, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_CHAIN_TABLE, "t"), name(unix.NFTA_CHAIN_NAME, "late")))
			g, _ := netlink.MarshalAttributes([]netlink.Attribute{be32(unix.NFNL_BATCH_GENID, 0xfffffff0)})
			b[0].Data = append(b[0].Data, g...)
			return b
		}, want: "ERESTART"},
		{name: "a batch's generation too short", raw: func() []netlink.Message {
			b := batchOf(msg(unix.NFT_MSG_NEWCHAIN, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_CHAIN_TABLE, "t"), name(unix.NFTA_CHAIN_NAME, "late")))
			b[0].Data = append(b[0].Data, 5, 0, unix.NFNL_BATCH_GENID, 0, 1, 0, 0, 0)
			return b
		}, want: "ERANGE"},
		{name: "a batch that does not end", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWCHAIN, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_CHAIN_TABLE, "t"), name(unix.NFTA_CHAIN_NAME, "unended")))[:2]
		}, want: "ack"},
		{name: "a write outside a batch", raw: func() []netlink.Message {
			return []netlink.Message{msg(unix.NFT_MSG_NEWCHAIN, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_CHAIN_TABLE, "t"), name(unix.NFTA_CHAIN_NAME, "outside"))}
		}, want: "EINVAL"},
		{name: "get a table", raw: func() []netlink.Message {
			return []netlink.Message{msg(unix.NFT_MSG_GETTABLE, acked, inet, name(unix.NFTA_TABLE_NAME, "t"))}
		}, want: "NEWTABLE | ack"},
		{name: "get a table that is not there", raw: func() []netlink.Message {
			return []netlink.Message{msg(unix.NFT_MSG_GETTABLE, 0, inet, name(unix.NFTA_TABLE_NAME, "nope"))}
		}, want: "ENOENT"},
		{name: "get a table without a name", raw: func() []netlink.Message { return []netlink.Message{msg(unix.NFT_MSG_GETTABLE, 0, inet)} }, want: "EINVAL"},
		{name: "get a chain", raw: func() []netlink.Message {
			return []netlink.Message{msg(unix.NFT_MSG_GETCHAIN, 0, inet, name(unix.NFTA_CHAIN_TABLE, "t"), name(unix.NFTA_CHAIN_NAME, "pre"))}
		}, want: "NEWCHAIN"},
		{name: "get a rule without a handle", raw: func() []netlink.Message {
			return []netlink.Message{msg(unix.NFT_MSG_GETRULE, 0, inet, name(unix.NFTA_RULE_TABLE, "t"), name(unix.NFTA_RULE_CHAIN, "pre"))}
		}, want: "EINVAL"},
		{name: "get a rule that is not there", raw: func() []netlink.Message {
			return []netlink.Message{msg(unix.NFT_MSG_GETRULE, 0, inet, name(unix.NFTA_RULE_TABLE, "t"), name(unix.NFTA_RULE_CHAIN, "pre"), be64(unix.NFTA_RULE_HANDLE, 999))}
		}, want: "ENOENT"},
		{name: "get a rule", raw: func() []netlink.Message {
			return []netlink.Message{msg(unix.NFT_MSG_GETRULE, 0, inet, name(unix.NFTA_RULE_TABLE, "t"), name(unix.NFTA_RULE_CHAIN, "pre"), be64(unix.NFTA_RULE_HANDLE, 4))}
		}, want: "NEWRULE"},
		{name: "dump the tables", raw: func() []netlink.Message {
			return []netlink.Message{msg(unix.NFT_MSG_GETTABLE, netlink.Dump, unix.NFPROTO_UNSPEC)}
		}, want: "NEWTABLE NEWTABLE | done"},
		{name: "dump a table's rules", raw: func() []netlink.Message {
			return []netlink.Message{msg(unix.NFT_MSG_GETRULE, netlink.Dump, inet, name(unix.NFTA_RULE_TABLE, "t"))}
		}, want: "NEWRULE NEWRULE NEWRULE NEWRULE NEWRULE | done"},
		{name: "dump the rules of a table that is not there", raw: func() []netlink.Message {
			return []netlink.Message{msg(unix.NFT_MSG_GETRULE, netlink.Dump, inet, name(unix.NFTA_RULE_TABLE, "nope"))}
		}, want: "done"},

		{name: "rename a chain", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWCHAIN, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_CHAIN_TABLE, "t"), be64(unix.NFTA_CHAIN_HANDLE, 3), name(unix.NFTA_CHAIN_NAME, "renamed")))
		}, want: "ack"},
		{name: "rename a chain to a name that is taken", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_NEWCHAIN, acked|unix.NLM_F_CREATE, inet, name(unix.NFTA_CHAIN_TABLE, "t"), be64(unix.NFTA_CHAIN_HANDLE, 3), name(unix.NFTA_CHAIN_NAME, "pre")))
		}, want: "EEXIST"},
		{name: "delete a chain with its rules", lib: func(c *nftables.Conn) { c.DelChain(&nftables.Chain{Name: "pre", Table: tbl}) }, want: "ok"},
		{name: "flush the table", lib: func(c *nftables.Conn) { c.FlushTable(tbl) }, want: "ok"},
		{name: "delete the other table by its handle", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_DELTABLE, acked, unix.NFPROTO_IPV4, be64(uapi.NFTA_TABLE_HANDLE, 3)))
		}, want: "ack"},
		{name: "delete the table", lib: func(c *nftables.Conn) { c.DelTable(tbl) }, want: "ok"},
		{name: "the table once more", lib: func(c *nftables.Conn) {
			c.AddTable(tbl)
			c.AddTable(other)
		}, want: "ok"},
		{name: "delete a name's tables in every family", raw: func() []netlink.Message {
			return batchOf(msg(unix.NFT_MSG_DELTABLE, acked, unix.NFPROTO_UNSPEC, name(unix.NFTA_TABLE_NAME, "t")))
		}, want: "ack"},
		{name: "flush the ruleset", lib: func(c *nftables.Conn) { c.FlushRuleset() }, want: "ok"},
		{name: "the table at last", lib: func(c *nftables.Conn) {
			c.AddTable(tbl)
			c.AddChain(hooked("pre", nftables.ChainTypeFilter, prerouting, mangle))
			c.AddRule(ruleIn("pre", "last"))
		}, want: "ok"},
	}
}

// TestFakeOnTheWire runs the steps on the fake: each has the outcome the
// kernel gives it, and what the fake lists is what a client reads from it.
func TestFakeOnTheWire(t *testing.T) {
	k := New()
	s := fakeSide(t, k)
	for _, st := range steps() {
		got, detail, err := s.do(st)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: %q (%s), want %q", st.name, got, detail, st.want)
		}
		read, err := readRuleset(s.dial)
		if err != nil {
			t.Fatalf("%s: read: %v", st.name, err)
		}
		if r, l := Render(read, true), k.List(true); r != l {
			t.Errorf("%s: a client reads\n%s\nthe fake lists\n%s", st.name, r, l)
		}
	}
}
