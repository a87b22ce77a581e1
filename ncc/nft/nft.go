// Package nft keeps the NCC's packet rules in nftables: the firewall marks
// that steer a VIP's traffic to a fwmark IPVS service, and the source NAT
// that makes Seesaw's NAT mode "full NAT" (the backends see the LB's
// address, so their replies come back through it without a route to the
// clients).
//
// The NCC owns one table, inet "seesaw", and nothing else in nftables: it
// never flushes the ruleset and never reads or writes another table. In
// its table it keeps at most two base chains:
//
//	chain fwmark    type filter hook prerouting priority mangle (-150)
//	  ip daddr VIP meta l4proto tcp th dport P meta mark set M
//	chain vip_snat  type nat hook postrouting priority srcnat (100)
//	  meta l4proto tcp ct original ip daddr VIP ct original proto-dst P snat ip to S
//
// (ip6 for IPv6). nftables has no match for IPVS connections like
// iptables' -m ipvs; with net.ipv4.vs.conntrack=1 IPVS gives each
// connection a conntrack entry whose original tuple is client -> VIP:port,
// and its NAT transmitter sends the packet through LOCAL_OUT and
// POSTROUTING with that entry not yet confirmed, so the nat chain sees it
// and the original-direction match is the ipvs match.
//
// A chain exists only while it has rules, and the table only while a chain
// does: a nat base chain turns connection tracking on for every packet of
// the namespace, which an LB without NAT vservers should not pay for.
//
// Every rule carries its canonical key as its comment, e.g. "fwmark TCP
// 192.0.2.10:80 mark 7", and in its userdata, beside the comment, a digest
// of the expressions the NCC made for that key (nft(8) neither shows nor
// keeps it). A rule is the desired one when its key is desired and its
// digest is that of what the key makes now; anything else in the table is
// deleted (a rule made by hand, even with our comment, has no digest). So
// a reconciler started on a kernel that holds its rules adopts them, and
// applying a state the kernel already holds writes nothing. All the writes
// of one run go to the kernel in one nftables transaction, however many:
// they all happen or none does.
//
// Matching "any": protocol unspecified (AnyProto) with port 0 matches every
// packet to the address; a protocol with port 0 matches every port of that
// protocol. A port without a protocol is refused, since a transport port
// means nothing without knowing the transport.
package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The table the NCC owns and its chains. The names are no keywords of
// nft(8) ("snat" is one), so that an operator can name them unquoted.
const (
	Table          = "seesaw"
	ChainFwmark    = "fwmark"
	ChainSNAT      = "vip_snat"
	ChainReplyDrop = "reply_drop"
)

// ErrNotSupported is wrapped when nftables cannot be used here: not Linux,
// or a kernel without nf_tables.
var ErrNotSupported = errors.New("nftables is not supported")

// Kinds of objects in the reconciler's changes.
const (
	KindTable  = "nft-table"
	KindChain  = "nft-chain"
	KindFwmark = "nft-fwmark"
	KindSNAT   = "nft-snat"
	KindDrop   = "nft-reply-drop"
	// KindRule is a rule in the NCC's table that the NCC did not make (or
	// that is not what its comment says): it is deleted.
	KindRule = "nft-rule"
)

// Proto is an IP protocol number; AnyProto matches them all.
type Proto uint8

// Protocols a rule may match.
const (
	AnyProto Proto = 0
	TCP      Proto = 6
	UDP      Proto = 17
	SCTP     Proto = 132
)

func (p Proto) String() string {
	switch p {
	case AnyProto:
		return "any"
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

func parseProto(s string) (Proto, bool) {
	for _, p := range []Proto{AnyProto, TCP, UDP, SCTP} {
		if p.String() == s {
			return p, true
		}
	}
	return 0, false
}

// Fwmark marks the packets to an address (and protocol and port) so that
// a fwmark IPVS service with that mark takes them.
type Fwmark struct {
	Addr  netip.Addr
	Proto Proto  // AnyProto: every protocol (then Port must be 0)
	Port  uint16 // 0: every port
	Mark  uint32
}

// SNAT rewrites the source of the connections IPVS forwards for a VIP (and
// protocol and port) to ToSource, keeping the client's source port where
// it is free (see exprs).
type SNAT struct {
	VIP      netip.Addr
	Proto    Proto
	Port     uint16
	ToSource netip.Addr
}

// ReplyDrop drops what a NAT backend sends from an address (and protocol
// and port) that IPVS did not translate: a reply of a connection this node
// has no entry for. The chain runs in the forward hook after IPVS's own
// (priority 100), so that a translated reply, whose source is the VIP by
// then, passes.
type ReplyDrop struct {
	Addr  netip.Addr
	Proto Proto
	Port  uint16
}

// String is the rule as changes name it: "TCP 198.51.100.11:80".
func (d ReplyDrop) String() string { return dest(d.Proto, d.Addr, d.Port) }

// Key is the rule's identity in the kernel: its comment.
func (d ReplyDrop) Key() string { return "reply-drop " + d.String() }

// dest writes what a rule matches: "TCP 192.0.2.10:80", "TCP
// [2001:db8::1]:*" (every port), "any 192.0.2.10" (every protocol).
func dest(p Proto, a netip.Addr, port uint16) string {
	if p == AnyProto && port == 0 {
		return "any " + a.String()
	}
	ps := "*"
	if port != 0 {
		ps = strconv.Itoa(int(port))
	}
	host := a.String()
	if a.Is6() {
		host = "[" + host + "]"
	}
	return p.String() + " " + host + ":" + ps
}

// String is the rule as changes name it: "TCP 192.0.2.10:80 mark 7".
func (f Fwmark) String() string {
	return dest(f.Proto, f.Addr, f.Port) + " mark " + strconv.FormatUint(uint64(f.Mark), 10)
}

// String is the rule as changes name it: "TCP 192.0.2.10:80 to 198.51.100.2".
func (s SNAT) String() string {
	return dest(s.Proto, s.VIP, s.Port) + " to " + s.ToSource.String()
}

// Key is the rule's identity in the kernel: its comment.
func (f Fwmark) Key() string { return "fwmark " + f.String() }

// Key is the rule's identity in the kernel: its comment.
func (s SNAT) Key() string { return "snat " + s.String() }

// parseDest reads what dest writes.
func parseDest(ps, d string) (Proto, netip.Addr, uint16, error) {
	p, ok := parseProto(ps)
	if !ok {
		return 0, netip.Addr{}, 0, fmt.Errorf("protocol %q", ps)
	}
	if p == AnyProto {
		a, err := netip.ParseAddr(d)
		return p, a, 0, err
	}
	host, port, ok := strings.Cut(d, "]:")
	if ok {
		host = strings.TrimPrefix(host, "[")
	} else if i := strings.LastIndexByte(d, ':'); i >= 0 {
		host, port = d[:i], d[i+1:]
	} else {
		return 0, netip.Addr{}, 0, fmt.Errorf("%q has no port", d)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return 0, netip.Addr{}, 0, err
	}
	if port == "*" {
		return p, a, 0, nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return 0, netip.Addr{}, 0, fmt.Errorf("port %q", port)
	}
	return p, a, uint16(n), nil
}

// parseKey reads a rule's comment back into the rule it names: a *Fwmark
// or a *SNAT, valid. Only the canonical form is accepted (the one Key
// writes), so that one rule has one key.
func parseKey(key string) (any, error) {
	f := strings.Fields(key)
	if len(f) == 3 && f[0] == "reply-drop" {
		p, a, port, err := parseDest(f[1], f[2])
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		d := ReplyDrop{Addr: a, Proto: p, Port: port}
		if d.Key() != key {
			return nil, fmt.Errorf("key %q is not in canonical form (%q)", key, d.Key())
		}
		if err := (State{ReplyDrops: []ReplyDrop{d}}).Validate(); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		return &d, nil
	}
	if len(f) != 5 {
		return nil, fmt.Errorf("key %q: not a rule of the NCC's", key)
	}
	p, a, port, err := parseDest(f[1], f[2])
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", key, err)
	}
	var r any
	var canon string
	switch {
	case f[0] == "fwmark" && f[3] == "mark":
		m, err := strconv.ParseUint(f[4], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("key %q: mark: %w", key, err)
		}
		fw := Fwmark{Addr: a, Proto: p, Port: port, Mark: uint32(m)}
		r, canon = &fw, fw.Key()
	case f[0] == "snat" && f[3] == "to":
		to, err := netip.ParseAddr(f[4])
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		s := SNAT{VIP: a, Proto: p, Port: port, ToSource: to}
		r, canon = &s, s.Key()
	default:
		return nil, fmt.Errorf("key %q: not a rule of the NCC's", key)
	}
	if canon != key {
		return nil, fmt.Errorf("key %q is not in canonical form (%q)", key, canon)
	}
	var st State
	switch r := r.(type) {
	case *Fwmark:
		st.Fwmarks = []Fwmark{*r}
	case *SNAT:
		st.SNAT = []SNAT{*r}
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("key %q: %w", key, err)
	}
	return r, nil
}

// State is the NCC's packet rules.
type State struct {
	Fwmarks    []Fwmark
	SNAT       []SNAT
	ReplyDrops []ReplyDrop
}

// Empty says whether the state has no rules: then the NCC's table goes.
func (s State) Empty() bool { return len(s.Fwmarks) == 0 && len(s.SNAT) == 0 && len(s.ReplyDrops) == 0 }

// checkAddr refuses what no rule should match or produce.
func checkAddr(what string, a netip.Addr) error {
	switch {
	case !a.IsValid():
		return fmt.Errorf("%s is missing", what)
	case a.Zone() != "":
		return fmt.Errorf("%s %s: a zone is not allowed", what, a)
	case a.Is4In6():
		return fmt.Errorf("%s %s: an IPv4-mapped IPv6 address; give the IPv4 address", what, a)
	case a.IsUnspecified():
		return fmt.Errorf("%s %s is the unspecified address", what, a)
	}
	return nil
}

func checkMatch(p Proto, port uint16) error {
	if _, ok := parseProto(p.String()); !ok {
		return fmt.Errorf("protocol %d is not TCP, UDP or SCTP", p)
	}
	if p == AnyProto && port != 0 {
		return fmt.Errorf("port %d without a protocol: a port means nothing without its transport", port)
	}
	return nil
}

// overlap says whether two matches on one address can take the same
// packet.
func overlap(p1 Proto, port1 uint16, p2 Proto, port2 uint16) bool {
	return (p1 == p2 || p1 == AnyProto || p2 == AnyProto) && (port1 == port2 || port1 == 0 || port2 == 0)
}

// Validate checks each rule and that no two rules disagree about the same
// packets (two marks, or two sources, for one packet would make the
// outcome depend on the order of the rules in the kernel). Errors name the
// rule by its index and content.
func (s State) Validate() error {
	byAddr := map[netip.Addr][]int{}
	for i, f := range s.Fwmarks {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("fwmarks[%d] (%s): %s", i, f, fmt.Sprintf(format, args...))
		}
		if err := checkAddr("address", f.Addr); err != nil {
			return fail("%v", err)
		}
		if err := checkMatch(f.Proto, f.Port); err != nil {
			return fail("%v", err)
		}
		if f.Mark == 0 {
			return fail("mark 0 is no mark (IPVS fwmark services have a mark from 1)")
		}
		for _, j := range byAddr[f.Addr] {
			g := s.Fwmarks[j]
			switch {
			case g == f:
				return fail("listed twice (as fwmarks[%d] too)", j)
			case overlap(f.Proto, f.Port, g.Proto, g.Port) && f.Mark != g.Mark:
				return fail("takes packets fwmarks[%d] (%s) takes too, with another mark", j, g)
			}
		}
		byAddr[f.Addr] = append(byAddr[f.Addr], i)
	}
	byAddr = map[netip.Addr][]int{}
	for i, n := range s.SNAT {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("snat[%d] (%s): %s", i, n, fmt.Sprintf(format, args...))
		}
		if err := checkAddr("vip", n.VIP); err != nil {
			return fail("%v", err)
		}
		if err := checkAddr("to_source", n.ToSource); err != nil {
			return fail("%v", err)
		}
		if n.VIP.Is4() != n.ToSource.Is4() {
			return fail("to_source %s and vip %s are of different families", n.ToSource, n.VIP)
		}
		if err := checkMatch(n.Proto, n.Port); err != nil {
			return fail("%v", err)
		}
		for _, j := range byAddr[n.VIP] {
			g := s.SNAT[j]
			switch {
			case g == n:
				return fail("listed twice (as snat[%d] too)", j)
			case overlap(n.Proto, n.Port, g.Proto, g.Port) && n.ToSource != g.ToSource:
				return fail("takes connections snat[%d] (%s) takes too, to another source", j, g)
			}
		}
		byAddr[n.VIP] = append(byAddr[n.VIP], i)
	}
	seen := map[ReplyDrop]int{}
	for i, d := range s.ReplyDrops {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("reply_drops[%d] (%s): %s", i, d, fmt.Sprintf(format, args...))
		}
		if err := checkAddr("address", d.Addr); err != nil {
			return fail("%v", err)
		}
		if err := checkMatch(d.Proto, d.Port); err != nil {
			return fail("%v", err)
		}
		if j, ok := seen[d]; ok {
			return fail("listed twice (as reply_drops[%d] too)", j)
		}
		seen[d] = i
	}
	return nil
}
