package nft

import (
	"net/netip"
	"strings"
	"testing"
)

var (
	a   = netip.MustParseAddr
	v4  = a("192.0.2.10")
	v6  = a("2001:db8::10")
	src = a("198.51.100.2")
)

func TestKeysAreCanonicalAndReadBack(t *testing.T) {
	for _, c := range []struct {
		rule any
		key  string
	}{
		{Fwmark{Addr: v4, Proto: TCP, Port: 80, Mark: 7}, "fwmark TCP 192.0.2.10:80 mark 7"},
		{Fwmark{Addr: v4, Proto: UDP, Mark: 65536}, "fwmark UDP 192.0.2.10:* mark 65536"},
		{Fwmark{Addr: v4, Mark: 1}, "fwmark any 192.0.2.10 mark 1"},
		{Fwmark{Addr: v6, Proto: SCTP, Port: 65535, Mark: 4294967295}, "fwmark SCTP [2001:db8::10]:65535 mark 4294967295"},
		{Fwmark{Addr: v6, Mark: 3}, "fwmark any 2001:db8::10 mark 3"},
		{SNAT{VIP: v4, Proto: TCP, Port: 443, ToSource: src}, "snat TCP 192.0.2.10:443 to 198.51.100.2"},
		{SNAT{VIP: v6, Proto: UDP, ToSource: a("2001:db8:2::2")}, "snat UDP [2001:db8::10]:* to 2001:db8:2::2"},
		{SNAT{VIP: v4, ToSource: src}, "snat any 192.0.2.10 to 198.51.100.2"},
	} {
		var key string
		switch r := c.rule.(type) {
		case Fwmark:
			key = r.Key()
		case SNAT:
			key = r.Key()
		}
		if key != c.key {
			t.Errorf("%+v: key %q, want %q", c.rule, key, c.key)
		}
		got, err := parseKey(c.key)
		if err != nil {
			t.Errorf("parseKey(%q): %v", c.key, err)
			continue
		}
		switch r := got.(type) {
		case *Fwmark:
			if *r != c.rule {
				t.Errorf("parseKey(%q) = %+v, want %+v", c.key, *r, c.rule)
			}
		case *SNAT:
			if *r != c.rule {
				t.Errorf("parseKey(%q) = %+v, want %+v", c.key, *r, c.rule)
			}
		}
	}
}

func TestParseKeyRefusesAllButTheCanonicalForm(t *testing.T) {
	for _, k := range []string{
		"",
		"fwmark",
		"fwmark TCP 192.0.2.10:80 mark",
		"fwmark tcp 192.0.2.10:80 mark 7",      // protocol spelled otherwise
		"fwmark TCP 192.0.2.10:080 mark 7",     // leading zero
		"fwmark TCP 192.0.2.10:0 mark 7",       // port 0 is written *
		"fwmark TCP 2001:db8::10:80 mark 7",    // no brackets
		"fwmark TCP [192.0.2.10]:80 mark 7",    // brackets around IPv4
		"fwmark TCP 192.0.2.10:80 mark 0x7",    // hex
		"fwmark TCP 192.0.2.10:80 mark 7 ",     // trailing space
		"fwmark  TCP 192.0.2.10:80 mark 7",     // two spaces
		"fwmark any 192.0.2.10:80 mark 7",      // any protocol has no port
		"fwmark TCP 192.0.2.10 mark 7",         // a protocol has a port
		"fwmark TCP 192.0.2.10:80 to 10.0.0.1", // fwmark with a source
		"snat TCP 192.0.2.10:80 mark 7",        // snat with a mark
		"snat TCP 192.0.2.10:80 to ::ffff:10.0.0.1",
		"fwmark TCP 2001:DB8::10:80 mark 7",
		"fwmark TCP [2001:DB8::10]:80 mark 7", // upper case
		"nat TCP 192.0.2.10:80 to 10.0.0.1",
		"fwmark TCP 192.0.2.10:65536 mark 7",
		"fwmark TCP 192.0.2.10:80 mark 4294967296",
	} {
		if r, err := parseKey(k); err == nil {
			t.Errorf("parseKey(%q) = %+v, want an error", k, r)
		}
	}
}

// FuzzParseKey: whatever a rule's comment holds (anyone may write one),
// reading it does not panic, and what is accepted is canonical.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"fwmark TCP 192.0.2.10:80 mark 7", "snat UDP [2001:db8::10]:* to 2001:db8:2::2", "fwmark any 10.0.0.1 mark 1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseKey(s)
		if err != nil {
			return
		}
		var key string
		switch r := r.(type) {
		case *Fwmark:
			key = r.Key()
		case *SNAT:
			key = r.Key()
		default:
			t.Fatalf("parseKey(%q) = %T", s, r)
		}
		if key != s {
			t.Fatalf("parseKey(%q) accepted a key that reads back as %q", s, key)
		}
	})
}

func TestValidate(t *testing.T) {
	fw := func(addr string, p Proto, port uint16, mark uint32) Fwmark {
		return Fwmark{Addr: a(addr), Proto: p, Port: port, Mark: mark}
	}
	sn := func(vip string, p Proto, port uint16, to string) SNAT {
		return SNAT{VIP: a(vip), Proto: p, Port: port, ToSource: a(to)}
	}
	good := State{
		Fwmarks: []Fwmark{
			fw("192.0.2.10", TCP, 80, 7), fw("192.0.2.10", UDP, 80, 8), fw("192.0.2.10", TCP, 443, 7),
			fw("192.0.2.11", TCP, 0, 9), fw("192.0.2.11", TCP, 80, 9), // overlapping, same mark
			fw("2001:db8::10", AnyProto, 0, 10),
		},
		SNAT: []SNAT{
			sn("192.0.2.10", TCP, 80, "198.51.100.2"), sn("192.0.2.10", TCP, 81, "198.51.100.3"),
			sn("2001:db8::10", SCTP, 0, "2001:db8:2::2"), sn("192.0.2.12", AnyProto, 0, "198.51.100.2"),
		},
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("a good state: %v", err)
	}
	if err := (State{}).Validate(); err != nil {
		t.Errorf("the empty state: %v", err)
	}
	for _, c := range []struct {
		st   State
		want string
	}{
		{State{Fwmarks: []Fwmark{fw("192.0.2.10", TCP, 80, 0)}}, "fwmarks[0] (TCP 192.0.2.10:80 mark 0): mark 0 is no mark"},
		{State{Fwmarks: []Fwmark{{Proto: TCP, Port: 80, Mark: 1}}}, "fwmarks[0] (TCP invalid IP:80 mark 1): address is missing"},
		{State{Fwmarks: []Fwmark{fw("0.0.0.0", TCP, 80, 1)}}, "address 0.0.0.0 is the unspecified address"},
		{State{Fwmarks: []Fwmark{fw("fe80::1%eth0", TCP, 80, 1)}}, "a zone is not allowed"},
		{State{Fwmarks: []Fwmark{fw("::ffff:192.0.2.1", TCP, 80, 1)}}, "IPv4-mapped"},
		{State{Fwmarks: []Fwmark{fw("192.0.2.10", AnyProto, 80, 1)}}, "fwmarks[0] (any 192.0.2.10:80 mark 1): port 80 without a protocol"},
		{State{Fwmarks: []Fwmark{fw("192.0.2.10", Proto(1), 0, 1)}}, "protocol 1 is not TCP, UDP or SCTP"},
		{State{Fwmarks: []Fwmark{fw("192.0.2.10", TCP, 80, 1), fw("192.0.2.10", TCP, 80, 1)}}, "fwmarks[1] (TCP 192.0.2.10:80 mark 1): listed twice (as fwmarks[0] too)"},
		{State{Fwmarks: []Fwmark{fw("192.0.2.10", TCP, 80, 1), fw("192.0.2.10", TCP, 80, 2)}}, "fwmarks[1] (TCP 192.0.2.10:80 mark 2): takes packets fwmarks[0] (TCP 192.0.2.10:80 mark 1) takes too"},
		{State{Fwmarks: []Fwmark{fw("192.0.2.10", TCP, 80, 1), fw("192.0.2.10", AnyProto, 0, 2)}}, "fwmarks[1] (any 192.0.2.10 mark 2): takes packets fwmarks[0]"},
		{State{Fwmarks: []Fwmark{fw("192.0.2.10", TCP, 0, 1), fw("192.0.2.10", TCP, 22, 2)}}, "fwmarks[1] (TCP 192.0.2.10:22 mark 2): takes packets fwmarks[0] (TCP 192.0.2.10:* mark 1)"},
		{State{SNAT: []SNAT{sn("192.0.2.10", TCP, 80, "2001:db8::1")}}, "snat[0] (TCP 192.0.2.10:80 to 2001:db8::1): to_source 2001:db8::1 and vip 192.0.2.10 are of different families"},
		{State{SNAT: []SNAT{{VIP: v4, Proto: TCP, Port: 80}}}, "snat[0] (TCP 192.0.2.10:80 to invalid IP): to_source is missing"},
		{State{SNAT: []SNAT{sn("192.0.2.10", TCP, 80, "0.0.0.0")}}, "to_source 0.0.0.0 is the unspecified address"},
		{State{SNAT: []SNAT{sn("192.0.2.10", AnyProto, 80, "198.51.100.2")}}, "port 80 without a protocol"},
		{State{SNAT: []SNAT{sn("192.0.2.10", TCP, 80, "198.51.100.2"), sn("192.0.2.10", TCP, 80, "198.51.100.2")}}, "snat[1] (TCP 192.0.2.10:80 to 198.51.100.2): listed twice"},
		{State{SNAT: []SNAT{sn("192.0.2.10", TCP, 80, "198.51.100.2"), sn("192.0.2.10", TCP, 0, "198.51.100.3")}}, "snat[1] (TCP 192.0.2.10:* to 198.51.100.3): takes connections snat[0]"},
	} {
		err := c.st.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.st, err, c.want)
		}
	}
}
