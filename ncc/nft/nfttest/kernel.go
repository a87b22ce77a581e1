// Package nfttest is a fake of the kernel's nf_tables at the netlink wire,
// for testing code that keeps the NCC's nftables table (package nft)
// without privileges: a Kernel answers what google/nftables and the nft
// reconciler send (batches of table, chain and rule writes; gets and dumps
// of them) with the kernel's semantics, errno for errno, and the kernel's
// datagrams; keeps the ruleset in memory; counts writes; and renders what
// it holds as `nft list ruleset` does. Code above the NCC (the engine) runs
// "config in, kernel text out" over it; this package's namespace test runs
// the same sequences against the host's kernel and requires the same
// outcome.
//
// Requests are decoded by this package's own code, written from the
// kernel's user-space API (internal/uapi, checked against the installed
// headers) and net/netfilter/nf_tables_api.c, not with the client's, so
// that the two check each other. Rule expressions are kept as the client
// sent them, as opaque bytes, and returned so: the reconciler knows its
// rules by the comment and digest in their userdata, so the fake need not
// understand them.
//
// Not modelled (a request for it is refused with EOPNOTSUPP, or as noted):
// what is inside an expression (the kernel refuses a wrong register, and
// returns expressions in its own form; the fake keeps what it is given and
// checks only each expression's name); sets, maps, objects, flowtables and
// generation requests; base chains outside the inet, ip and ip6 families,
// and hooks that need a device; table owners and persistence; chain and
// rule ids within a batch; socket buffers (the kernel's ENOBUFS); and
// notifications to anyone but a request's own echo.
package nfttest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"syscall"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"

	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/nft/nfttest/internal/uapi"
)

// Table is an nftables table as the fake holds it, for Tables and Edit.
type Table struct {
	Family   string // "inet", "ip", "ip6", "arp", "bridge" or "netdev"
	Name     string
	Handle   uint64 // the kernel's; 0 in Edit: the kernel gives one
	Dormant  bool   // NFT_TABLE_F_DORMANT: its chains are not hooked
	UserData []byte
	Chains   []Chain
	// last is the last handle the table gave a chain or a rule: both
	// come from one counter per table, which a failed batch does not
	// wind back.
	last uint64
}

// Chain is a chain of a Table.
type Chain struct {
	Name     string
	Handle   uint64     // 0 in Edit: the table gives one
	Base     *BaseChain // nil: a regular chain, which only jumps reach
	UserData []byte
	Rules    []Rule
}

// BaseChain is what hooks a chain into the network stack.
type BaseChain struct {
	Type     string // "filter", "nat" or "route"
	Hook     string // "prerouting", "input", "forward", "output" or "postrouting"
	Priority int32
	Policy   string // "accept" or "drop"
}

// Rule is a rule of a Chain.
type Rule struct {
	Handle uint64 // 0 in Edit: the table gives one
	// Exprs are the rule's expressions, each the payload of one
	// NFTA_LIST_ELEM of NFTA_RULE_EXPRESSIONS as it was sent (its
	// NFTA_EXPR_NAME and NFTA_EXPR_DATA).
	Exprs    [][]byte
	UserData []byte
}

// Comment is the rule's comment, as nft(8) shows it: the
// NFTNL_UDATA_RULE_COMMENT entry of its userdata.
func (r Rule) Comment() string {
	ud := r.UserData
	for len(ud) >= 2 {
		typ, n := ud[0], int(ud[1])
		if len(ud) < 2+n {
			break
		}
		if typ == udataComment {
			return string(bytes.TrimRight(ud[2:2+n], "\x00"))
		}
		ud = ud[2+n:]
	}
	return ""
}

// ExprNames are the names of the rule's expressions, in order.
func (r Rule) ExprNames() []string {
	var names []string
	for _, e := range r.Exprs {
		a, _ := parseAttrs(e)
		names = append(names, a.str(uapi.NFTA_EXPR_NAME))
	}
	return names
}

// udataComment is NFTNL_UDATA_RULE_COMMENT, libnftnl's type for a rule's
// comment in its userdata (type, length, the text and its NUL).
const udataComment = 0

// CommentUserdata is userdata holding only a comment, as nft(8) writes it
// for `comment "..."`: what a rule made by hand carries.
func CommentUserdata(comment string) []byte {
	return append(append([]byte{udataComment, byte(len(comment) + 1)}, comment...), 0)
}

// Kernel is a fake nf_tables holding one network namespace's ruleset. It
// is safe for concurrent use. The zero value is not usable; call New.
type Kernel struct {
	mu     sync.Mutex
	tables []*table // in creation order, as the kernel lists them
	// tableHandle is the last handle given to a table (the kernel
	// counts them per namespace).
	tableHandle uint64
	gen         uint32 // the ruleset's generation: one more per change
	writes      int
	requests    int
	fail        syscall.Errno
}

// New returns a kernel with an empty ruleset.
func New() *Kernel { return &Kernel{gen: 1} }

// Func is a transport to this kernel for one client: google/nftables takes
// it as nftables.WithTestDial, package nft as nft.OpenTestDial. It is what
// a socket to the kernel does for a client that sends once per connection
// (as both do): a send is answered with nothing, and each later call with
// a nil request gives the next datagram the kernel sent, in the kernel's
// boundaries (acknowledgements one per datagram, echoed rules packed into
// page-sized ones, a dump's parts and then its NLMSG_DONE apart), or
// EAGAIN when there is none (where a socket would block). A send starts a
// new exchange: what the last one left unread is dropped, as closing its
// socket would. Calls must not overlap; give each client its own Func.
func (k *Kernel) Func() nltest.Func {
	c := &client{k: k}
	return c.do
}

// Reconciler opens the NCC's nftables reconciler over this kernel.
func (k *Kernel) Reconciler(logf func(format string, args ...any)) (*nft.Reconciler, error) {
	return nft.OpenTestDial(k.Func(), logf)
}

type client struct {
	k     *Kernel
	mu    sync.Mutex
	queue [][]netlink.Message
}

func (c *client) do(reqs []netlink.Message) ([]netlink.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if reqs == nil {
		if len(c.queue) == 0 {
			return nil, fmt.Errorf("nfttest: receive: nothing was sent to read (a socket would block): %w", syscall.EAGAIN)
		}
		d := c.queue[0]
		c.queue = c.queue[1:]
		return d, nil
	}
	c.queue = c.k.serve(reqs)
	return nil, nil
}

// Writes is how many table, chain and rule writes (NEW and DEL messages)
// the kernel received, those of batches that failed too.
func (k *Kernel) Writes() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.writes
}

// Requests is how many nf_tables messages of any kind the kernel
// received, batch delimiters aside.
func (k *Kernel) Requests() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.requests
}

// FailNext makes the next batch that carries a write fail with errno: its
// first write is answered with it, and the batch is aborted as the
// kernel aborts it (the other messages are acknowledged as processed,
// nothing is applied). EPERM is refused as the kernel refuses a client
// without CAP_NET_ADMIN: one error for the whole batch. 0 disarms it.
func (k *Kernel) FailNext(errno syscall.Errno) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fail = errno
}

// Flush empties the ruleset behind the clients' backs, as `nft flush
// ruleset` run by someone else.
func (k *Kernel) Flush() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tables = nil
	k.gen++
}

// Tables is the ruleset, copied.
func (k *Kernel) Tables() []Table {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]Table, 0, len(k.tables))
	for _, t := range k.tables {
		out = append(out, t.export())
	}
	return out
}

// Edit changes the ruleset behind the clients' backs, as nft(8) run by
// someone else: fn gets the ruleset and returns the new one. Tables,
// chains and rules with no handle get one, as the kernel would give them.
// The ruleset is left as it was if the new one is not valid.
func (k *Kernel) Edit(fn func([]Table) []Table) error {
	tables := k.Tables()
	tables = fn(tables)
	k.mu.Lock()
	defer k.mu.Unlock()
	next := k.tableHandle
	var out []*table
	seen := map[string]bool{}
	for _, et := range tables {
		t, err := importTable(et, &next)
		if err != nil {
			return fmt.Errorf("nfttest: edit: %w", err)
		}
		id := fmt.Sprintf("%d %s", t.family, t.name)
		if seen[id] {
			return fmt.Errorf("nfttest: edit: table %s %s twice", et.Family, et.Name)
		}
		seen[id] = true
		out = append(out, t)
	}
	k.tables, k.tableHandle = out, next
	k.gen++
	return nil
}

// The kernel's own form of the ruleset. Rules are never changed once
// made, so copies of a chain share them.
type table struct {
	family uint8
	name   string
	handle uint64
	flags  uint32
	udata  []byte
	chains []*chain
	last   uint64 // see Table.last
}

type chain struct {
	name   string
	handle uint64
	base   *baseChain
	udata  []byte
	rules  []*rule
}

type baseChain struct {
	typ    string
	hook   uint32
	prio   int32
	policy uint32
}

type rule struct {
	handle uint64
	exprs  [][]byte
	udata  []byte
}

func (t *table) clone() *table {
	c := *t
	c.chains = make([]*chain, len(t.chains))
	for i, ch := range t.chains {
		cc := *ch
		cc.rules = slices.Clone(ch.rules)
		if ch.base != nil {
			b := *ch.base
			cc.base = &b
		}
		c.chains[i] = &cc
	}
	return &c
}

func (t *table) chainNamed(name string) *chain {
	for _, c := range t.chains {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (t *table) chainHandle(h uint64) *chain {
	for _, c := range t.chains {
		if c.handle == h {
			return c
		}
	}
	return nil
}

func (c *chain) ruleIndex(h uint64) int {
	return slices.IndexFunc(c.rules, func(r *rule) bool { return r.handle == h })
}

var families = map[uint8]string{
	uapi.NFPROTO_INET: "inet", uapi.NFPROTO_IPV4: "ip", uapi.NFPROTO_IPV6: "ip6",
	uapi.NFPROTO_ARP: "arp", uapi.NFPROTO_BRIDGE: "bridge", uapi.NFPROTO_NETDEV: "netdev",
}

var hooks = map[uint32]string{
	uapi.NF_INET_PRE_ROUTING: "prerouting", uapi.NF_INET_LOCAL_IN: "input", uapi.NF_INET_FORWARD: "forward",
	uapi.NF_INET_LOCAL_OUT: "output", uapi.NF_INET_POST_ROUTING: "postrouting",
}

var policies = map[uint32]string{uapi.NF_ACCEPT: "accept", uapi.NF_DROP: "drop"}

func lookup[K comparable](m map[K]string, s string) (K, bool) {
	for k, v := range m {
		if v == s {
			return k, true
		}
	}
	var zero K
	return zero, false
}

func (t *table) export() Table {
	et := Table{Family: families[t.family], Name: t.name, Handle: t.handle, Dormant: t.flags&uapi.NFT_TABLE_F_DORMANT != 0,
		UserData: slices.Clone(t.udata), last: t.last}
	for _, c := range t.chains {
		ec := Chain{Name: c.name, Handle: c.handle, UserData: slices.Clone(c.udata)}
		if b := c.base; b != nil {
			ec.Base = &BaseChain{Type: b.typ, Hook: hooks[b.hook], Priority: b.prio, Policy: policies[b.policy]}
		}
		for _, r := range c.rules {
			er := Rule{Handle: r.handle, UserData: slices.Clone(r.udata)}
			for _, e := range r.exprs {
				er.Exprs = append(er.Exprs, slices.Clone(e))
			}
			ec.Rules = append(ec.Rules, er)
		}
		et.Chains = append(et.Chains, ec)
	}
	return et
}

// importTable makes an edited table the kernel's, giving handles where
// there are none.
func importTable(et Table, tableHandle *uint64) (*table, error) {
	fam, ok := lookup(families, et.Family)
	if !ok {
		return nil, fmt.Errorf("table %s %s: no family %q", et.Family, et.Name, et.Family)
	}
	t := &table{family: fam, name: et.Name, handle: et.Handle, udata: slices.Clone(et.UserData), last: et.last}
	if et.Dormant {
		t.flags = uapi.NFT_TABLE_F_DORMANT
	}
	if t.handle == 0 {
		*tableHandle++
		t.handle = *tableHandle
	}
	for _, ec := range et.Chains {
		t.last = max(t.last, ec.Handle)
		for _, er := range ec.Rules {
			t.last = max(t.last, er.Handle)
		}
	}
	names := map[string]bool{}
	for _, ec := range et.Chains {
		if names[ec.Name] {
			return nil, fmt.Errorf("table %s %s: chain %s twice", et.Family, et.Name, ec.Name)
		}
		names[ec.Name] = true
		c := &chain{name: ec.Name, handle: ec.Handle, udata: slices.Clone(ec.UserData)}
		if c.handle == 0 {
			t.last++
			c.handle = t.last
		}
		if b := ec.Base; b != nil {
			hook, ok := lookup(hooks, b.Hook)
			if !ok {
				return nil, fmt.Errorf("chain %s: no hook %q", ec.Name, b.Hook)
			}
			policy, ok := lookup(policies, b.Policy)
			if !ok {
				return nil, fmt.Errorf("chain %s: no policy %q", ec.Name, b.Policy)
			}
			c.base = &baseChain{typ: b.Type, hook: hook, prio: b.Priority, policy: policy}
		}
		for _, er := range ec.Rules {
			r := &rule{handle: er.Handle, udata: slices.Clone(er.UserData)}
			if r.handle == 0 {
				t.last++
				r.handle = t.last
			}
			for _, e := range er.Exprs {
				r.exprs = append(r.exprs, slices.Clone(e))
			}
			c.rules = append(c.rules, r)
		}
		t.chains = append(t.chains, c)
	}
	return t, nil
}
