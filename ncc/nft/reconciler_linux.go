package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"

	"github.com/seesawlb/seesaw/ncc/reconcile"
)

// Reconciler keeps the NCC's nftables table at a desired State. A run
// reads the table, so what the kernel holds is adopted at once, and plans
// against what it read; but once a run has left the kernel holding a set
// of rules, an Apply of the same rules trusts that record and costs
// nothing (reading a large table is not cheap), as the IPVS reconciler
// does; Audit always reads, and repairs. It is safe for concurrent use;
// runs are serialised.
type Reconciler struct {
	mu   sync.Mutex
	c    *nftables.Conn
	nsfd int // the namespace Open was given, duplicated; -1 when none
	// dial opens the connection the table is read on (the library's
	// own connections go the same way: see Open and OpenTestDial).
	dial func() (*netlink.Conn, error)
	// socket says the connections are the kernel's sockets, whose
	// buffers can be sized and peeked at.
	socket  bool
	logf    func(format string, args ...any)
	desired *State // the last state applied; nil before the first
	writes  atomic.Uint64
	// batch is the number of writes in the batch being sent, for
	// sizeBuffers; 0 otherwise.
	batch atomic.Int64
	// held is the keys of the rules the kernel held after the last run
	// that read or wrote it without error; nil when that is not known.
	held map[string]bool
}

// Open returns a reconciler for the network namespace netns refers to (an
// open file of /run/netns/NAME or /proc/PID/ns/net), or for the caller's
// own namespace when netns is 0. The reconciler keeps a duplicate of the
// descriptor until Close. logf gets one line per kernel write and per
// drift repaired; nil discards them.
func Open(netns int, logf func(format string, args ...any)) (*Reconciler, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	r := &Reconciler{nsfd: -1, logf: logf, socket: true}
	r.dial = func() (*netlink.Conn, error) {
		return netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: r.c.NetNS})
	}
	// No lasting socket: a failed batch may leave answers unread on it.
	opts := []nftables.ConnOption{nftables.WithSockOptions(r.sizeBuffers)}
	if netns != 0 {
		fd, err := unix.FcntlInt(uintptr(netns), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("nft: open: namespace descriptor %d: %w", netns, err)
		}
		r.nsfd = fd
		opts = append(opts, nftables.WithNetNSFd(fd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("nft: open: %w", err)
	}
	r.c = c
	return r, nil
}

// OpenTestDial returns a reconciler that talks to nf_tables through dial
// rather than a socket to the kernel: every connection it opens, its own
// and google/nftables' (nftables.WithTestDial), is nltest.Dial(dial). A
// connection sends once (a request, or a batch) and then reads the
// answers, so dial answers a send with nothing and gives the kernel's
// answers one datagram per call with a nil request, as a socket would
// (package nfttest's Kernel does). A reconciler's calls to dial never
// overlap. logf is as for Open.
func OpenTestDial(dial nltest.Func, logf func(format string, args ...any)) (*Reconciler, error) {
	if dial == nil {
		return nil, errors.New("nft: open: no dial function")
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c, err := nftables.New(nftables.WithTestDial(dial))
	if err != nil {
		return nil, fmt.Errorf("nft: open: %w", err)
	}
	return &Reconciler{c: c, nsfd: -1, logf: logf, dial: func() (*netlink.Conn, error) { return nltest.Dial(dial), nil }}, nil
}

// Socket buffer sizes for a batch: what it sends, and what the kernel
// answers (an acknowledgement per write, and a copy of each new rule: the
// library asks for both), as the kernel counts them.
const (
	bufBase      = 256 << 10
	sendPerWrite = 1 << 10
	recvPerWrite = 4 << 10
)

// sizeBuffers makes a socket about to send a batch big enough for it and
// for the kernel's answers: the default buffers hold a few hundred rules'
// worth, and a batch is sent, and answered, whole. It uses the FORCE
// options, which root may use past the system's limits, as nft(8) does.
func (r *Reconciler) sizeBuffers(c *netlink.Conn) error {
	n := int(r.batch.Load())
	if n == 0 {
		return nil
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, o := range []struct{ force, plain, size int }{
			{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, bufBase + n*sendPerWrite},
			{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, bufBase + n*recvPerWrite},
		} {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.force, o.size); err != nil {
				serr = errors.Join(serr, unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.plain, o.size))
			}
		}
	})
	return errors.Join(err, serr)
}

// Close releases the namespace descriptor Open kept. The kernel's rules
// stay.
func (r *Reconciler) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nsfd < 0 {
		return nil
	}
	err := unix.Close(r.nsfd)
	r.nsfd = -1
	return err
}

// Writes counts the messages that changed the kernel (each table, chain and
// rule added or deleted), since Open; those of a batch that failed too,
// as the NCC counts failed writes.
func (r *Reconciler) Writes() uint64 { return r.writes.Load() }

// Apply makes the kernel hold desired in the NCC's table and returns the
// writes it made (or would make, with dryRun). They are sent in one
// batch, which the kernel applies whole or not at all: when it fails,
// every change carries the error (and the next run reads the table
// again). An error alone means the table could not be read, or desired is
// not valid; then nothing was written. Validate's errors name the rule.
func (r *Reconciler) Apply(desired State, dryRun bool) ([]reconcile.Change, error) {
	if err := desired.Validate(); err != nil {
		return nil, fmt.Errorf("nft: %w", err)
	}
	desired = State{Fwmarks: slices.Clone(desired.Fwmarks), SNAT: slices.Clone(desired.SNAT), ReplyDrops: slices.Clone(desired.ReplyDrops)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !dryRun {
		r.desired = &desired
	}
	return r.apply(desired, dryRun, true)
}

// Audit applies the last applied state again, repairing what someone else
// changed (a flushed or deleted table, a rule removed or added); before
// the first Apply it does nothing.
func (r *Reconciler) Audit() ([]reconcile.Change, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.desired == nil {
		return nil, nil
	}
	changes, err := r.apply(*r.desired, false, false)
	for _, c := range changes {
		r.logf("nft: audit: drift repaired: %s", c)
	}
	return changes, err
}

// Desired is the last applied state, if any.
func (r *Reconciler) Desired() (State, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.desired == nil {
		return State{}, false
	}
	return *r.desired, true
}

// Known reads the rules the kernel holds in the NCC's table that the
// reconciler recognises as its own and would keep (the others a run
// deletes). It needs no Apply first: this is what a reconciler adopts.
func (r *Reconciler) Known() (State, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	have, err := r.read()
	if err != nil {
		return State{}, err
	}
	return known(have), nil
}

// Cleanup deletes the NCC's table, with everything in it, and forgets the
// applied state (so that Audit does not put it back). Nothing else in
// nftables is touched.
func (r *Reconciler) Cleanup() ([]reconcile.Change, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.desired, r.held = nil, nil
	have, err := r.read()
	if err != nil {
		return nil, err
	}
	if have.table == nil {
		r.held = map[string]bool{}
		return nil, nil
	}
	changes := r.write(plan(State{}, kernelState{table: have.table}))
	if changes[0].Err == nil {
		r.held = map[string]bool{}
	}
	return changes, nil
}

// keys is the set of a state's rule keys.
func keys(st State) map[string]bool {
	m := make(map[string]bool, len(st.Fwmarks)+len(st.SNAT)+len(st.ReplyDrops))
	for _, f := range st.Fwmarks {
		m[f.Key()] = true
	}
	for _, s := range st.SNAT {
		m[s.Key()] = true
	}
	for _, d := range st.ReplyDrops {
		m[d.Key()] = true
	}
	return m
}

// holds says whether the record says the kernel holds exactly st's rules.
func (r *Reconciler) holds(st State) bool {
	if r.held == nil || len(r.held) != len(st.Fwmarks)+len(st.SNAT)+len(st.ReplyDrops) {
		return false
	}
	for _, f := range st.Fwmarks {
		if !r.held[f.Key()] {
			return false
		}
	}
	for _, s := range st.SNAT {
		if !r.held[s.Key()] {
			return false
		}
	}
	for _, d := range st.ReplyDrops {
		if !r.held[d.Key()] {
			return false
		}
	}
	return true
}

// apply plans desired against the table as read, or, with trust, as the
// record has it when that says desired is held.
func (r *Reconciler) apply(desired State, dryRun, trust bool) ([]reconcile.Change, error) {
	if trust && r.holds(desired) {
		return nil, nil
	}
	have, err := r.read()
	if err != nil {
		r.held = nil
		if desired.Empty() && errors.Is(err, ErrNotSupported) {
			// Nothing is wanted of a kernel without nftables, and
			// it holds nothing.
			r.held = map[string]bool{}
			return nil, nil
		}
		return nil, err
	}
	ops := plan(desired, have)
	if len(ops) == 0 {
		r.held = keys(desired)
	}
	if dryRun {
		changes := make([]reconcile.Change, len(ops))
		for i, o := range ops {
			changes[i] = o.change
		}
		return changes, nil
	}
	changes := r.write(ops)
	r.held = nil
	if len(changes) == 0 || changes[0].Err == nil {
		r.held = keys(desired)
	}
	return changes, nil
}

// write sends ops in one batch.
func (r *Reconciler) write(ops []op) []reconcile.Change {
	changes := make([]reconcile.Change, len(ops))
	if len(ops) == 0 {
		return changes
	}
	for i, o := range ops {
		changes[i] = o.change
		o.queue(r.c)
	}
	r.writes.Add(uint64(len(ops)))
	r.batch.Store(int64(len(ops)))
	defer r.batch.Store(0)
	var err error
	if ferr := r.c.Flush(); ferr != nil {
		err = fmt.Errorf("nft: a batch of %d writes: %w", len(ops), ferr)
	}
	for i := range changes {
		changes[i].Err = err
		r.logf("nft: %s", changes[i])
	}
	return changes
}

// read reads the NCC's table: whether it exists, its chains and their
// rules. Other tables are never written; of them only the names of their
// inet chains are read (the kernel lists chains by family, not by table).
func (r *Reconciler) read() (kernelState, error) {
	var st kernelState
	conn, err := r.dial()
	if err != nil {
		if errors.Is(err, unix.EPROTONOSUPPORT) {
			err = fmt.Errorf("%w (no nfnetlink in this kernel): %w", ErrNotSupported, err)
		}
		return st, fmt.Errorf("nft: open netlink: %w", err)
	}
	defer conn.Close()
	if st.table, err = getTable(conn); err != nil {
		if errors.Is(err, unix.EINVAL) {
			// nfnetlink refuses messages for a subsystem it lacks.
			err = fmt.Errorf("%w (is nf_tables loaded?): %w", ErrNotSupported, err)
		}
		return st, fmt.Errorf("nft: get table inet %s: %w", Table, err)
	}
	if st.table == nil {
		return st, nil
	}
	chains, err := r.c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return st, fmt.Errorf("nft: list chains: %w", err)
	}
	rules, err := getRules(conn, r.socket)
	if err != nil {
		return st, fmt.Errorf("nft: list rules of table inet %s: %w", Table, err)
	}
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == Table {
			st.chains = append(st.chains, &kernelChain{chain: ch, rules: rules[ch.Name]})
		}
	}
	return st, nil
}

// The table and its rules are read here rather than with the library,
// whose decoders take a table's flags in host byte order and refuse the
// one-byte ct direction the kernel reports.

// message asks nf_tables about the NCC's table; attr is the table name's
// attribute for the message type.
func message(msgType uint16, attr uint16, flags netlink.HeaderFlags) (netlink.Message, error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: attr, Data: []byte(Table + "\x00")}})
	if err != nil {
		return netlink.Message{}, err
	}
	// nfgenmsg: family, version, resource id.
	hdr := []byte{inet, unix.NFNETLINK_V0, 0, 0}
	return netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msgType), Flags: netlink.Request | flags},
		Data:   append(hdr, attrs...),
	}, nil
}

func decoder(m netlink.Message) (*netlink.AttributeDecoder, error) {
	if len(m.Data) < 4 {
		return nil, fmt.Errorf("a message of %d bytes", len(m.Data))
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	return ad, nil
}

// getTable reads the NCC's table; nil when there is none.
func getTable(conn *netlink.Conn) (*nftables.Table, error) {
	msg, err := message(unix.NFT_MSG_GETTABLE, unix.NFTA_TABLE_NAME, 0)
	if err != nil {
		return nil, err
	}
	msgs, err := conn.Execute(msg)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t := table()
	for _, m := range msgs {
		ad, err := decoder(m)
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_TABLE_FLAGS:
				t.Flags = ad.Uint32()
			case unix.NFTA_TABLE_USE:
				t.Use = ad.Uint32()
			}
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// getRules lists the rules of the NCC's table by chain, with their handles
// and userdata only: the digest in the userdata says what a rule is.
// socket says conn is a socket to the kernel (see below).
func getRules(conn *netlink.Conn, socket bool) (map[string][]kernelRule, error) {
	msg, err := message(unix.NFT_MSG_GETRULE, unix.NFTA_RULE_TABLE, netlink.Dump)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Send(msg); err != nil {
		return nil, err
	}
	// The kernel fills each part of a dump up to the largest read the
	// socket has seen, and resumes a rule dump by walking the table from
	// its start: with the library's reads (each the size of the part
	// waiting) the parts stay at a page and a large table costs time
	// quadratic in its rules. One look with a large buffer makes the
	// parts large.
	if socket {
		raw, err := conn.SyscallConn()
		if err != nil {
			return nil, err
		}
		peek := make([]byte, 32<<10)
		if err := raw.Read(func(fd uintptr) bool {
			_, _, err := unix.Recvfrom(int(fd), peek, unix.MSG_PEEK|unix.MSG_DONTWAIT)
			return err != unix.EAGAIN
		}); err != nil {
			return nil, err
		}
	}
	msgs, err := conn.Receive()
	if err != nil {
		return nil, err
	}
	out := map[string][]kernelRule{}
	for _, m := range msgs {
		ad, err := decoder(m)
		if err != nil {
			return nil, err
		}
		var chain string
		var kr kernelRule
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_CHAIN:
				chain = ad.String()
			case unix.NFTA_RULE_HANDLE:
				kr.handle = ad.Uint64()
			case unix.NFTA_RULE_USERDATA:
				kr.comment, kr.digest = decodeUserdata(ad.Bytes())
			}
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
		if kr.handle == 0 {
			return nil, fmt.Errorf("a rule of chain %q without a handle", chain)
		}
		out[chain] = append(out[chain], kr)
	}
	return out, nil
}
