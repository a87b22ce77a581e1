package vrrp

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// fuzzAddrs turns fuzzer bytes into a source and destination of one family:
// 4 bytes each for IPv4, 16 for IPv6, else the keepalived capture's.
func fuzzAddrs(src, dst []byte) (netip.Addr, netip.Addr) {
	s, ok1 := netip.AddrFromSlice(src)
	d, ok2 := netip.AddrFromSlice(dst)
	if !ok1 || !ok2 || s.Is4() != d.Is4() {
		return v4src, GroupV4()
	}
	return s, d
}

// FuzzParse: Parse never panics, fails only with a *ParseError, and what it
// accepts re-encodes to the same bytes (apart from the reserved bits, which
// it ignores) and parses back to the same advert.
func FuzzParse(f *testing.F) {
	for _, c := range keepalivedCaptures {
		f.Add(mustHex(f, c.payload), c.src.AsSlice(), c.dst.AsSlice())
	}
	f.Fuzz(func(t *testing.T, b, srcb, dstb []byte) {
		src, dst := fuzzAddrs(srcb, dstb)
		a, err := Parse(b, src, dst)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("Parse error %v is not a *ParseError with a reason", err)
			}
			return
		}
		re, err := a.Append(nil, src, dst)
		if err != nil {
			t.Fatalf("accepted %+v does not re-encode: %v", a, err)
		}
		if b[4]&0xf0 == 0 && !bytes.Equal(re, b) {
			t.Fatalf("re-encoded %x, parsed %x", re, b)
		}
		a2, err := Parse(re, src, dst)
		if err != nil || a2.VRID != a.VRID || a2.Priority != a.Priority || a2.Interval != a.Interval || !slices.Equal(a2.Addresses, a.Addresses) {
			t.Fatalf("round trip: %+v, %v; want %+v", a2, err, a)
		}
	})
}

// FuzzRoundTrip: every advert Append accepts parses back to itself, and the
// checksum binds it to its source and destination.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(51), uint8(150), uint16(10), []byte{192, 0, 2, 100, 192, 0, 2, 101}, false)
	f.Add(uint8(52), uint8(0), uint16(4095), bytes.Repeat([]byte{0x20, 0x01, 0x0d, 0xb8}, 4), true)
	f.Add(uint8(1), uint8(255), uint16(1), []byte{}, false)
	f.Fuzz(func(t *testing.T, vrid, prio uint8, cs uint16, addrb []byte, v6 bool) {
		src, dst, al := v4src, GroupV4(), 4
		if v6 {
			src, dst, al = v6src, GroupV6(), 16
		}
		a := Advertisement{VRID: vrid, Priority: prio, Interval: time.Duration(cs) * Centisecond}
		for len(addrb) >= al {
			ad, _ := netip.AddrFromSlice(addrb[:al])
			a.Addresses = append(a.Addresses, ad)
			addrb = addrb[al:]
		}
		b, err := a.Append(nil, src, dst)
		if cs == 0 || cs > 0xfff || len(a.Addresses) > MaxAddresses {
			if err == nil {
				t.Fatalf("Append accepted %+v", a)
			}
			return
		}
		if err != nil {
			t.Fatalf("Append(%+v): %v", a, err)
		}
		got, err := Parse(b, src, dst)
		if err != nil || got.VRID != a.VRID || got.Priority != a.Priority || got.Interval != a.Interval || !slices.Equal(got.Addresses, a.Addresses) {
			t.Fatalf("Parse(Append(%+v)) = %+v, %v", a, got, err)
		}
		if _, err := Parse(b, src, dst.Next()); err == nil {
			t.Fatalf("advert to %v verifies as sent to %v", dst, dst.Next())
		}
	})
}

// FuzzMachine drives two machines and a stream of arbitrary packets through
// arbitrary time steps, checking invariants that hold whatever happens:
// timers are never in the past after a step, a master always has an advert
// timer and a backup a down timer, everything sent parses, and two machines
// that hear each other never stay master together.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{0, 10, 1, 200, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(100), uint8(100), true)
	f.Add([]byte{9, 9, 9, 0, 0, 0, 255, 1, 2}, uint8(1), uint8(255), false)
	f.Fuzz(func(t *testing.T, ops []byte, p1, p2 uint8, preempt bool) {
		p1, p2 = max(p1, 1), max(p2, 1)
		a1, a2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
		mk := func(local, peer netip.Addr, p uint8) *Machine {
			m, err := New(Config{VRID: 7, Priority: p, Interval: 20 * time.Millisecond, Preempt: preempt, Local: local, Peers: []netip.Addr{peer}})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		ms := [2]*Machine{mk(a1, a2, p1), mk(a2, a1, p2)}
		srcs := [2]netip.Addr{a1, a2}
		now := time.Unix(1000, 0)
		var wire [2][]Outgoing // adverts in flight to machine i
		check := func(i int, st Step) {
			m := ms[i]
			for _, o := range st.Send {
				if _, err := Parse(o.Payload, srcs[i], o.Dst); err != nil {
					t.Fatalf("machine %d sent an advert that does not parse: %v", i, err)
				}
				wire[1-i] = append(wire[1-i], o)
			}
			d := m.Deadline()
			switch m.State() {
			case Master, Backup:
				if d.IsZero() || d.Before(now) {
					t.Fatalf("machine %d in %v has deadline %v at %v", i, m.State(), d, now)
				}
			}
		}
		for i := range ms {
			check(i, ms[i].Start(now))
		}
		connected := true
		for k, op := range ops {
			i := k % 2
			switch op % 6 {
			case 0: // time passes up to the next deadline
				next := ms[0].Deadline()
				if d := ms[1].Deadline(); next.IsZero() || (!d.IsZero() && d.Before(next)) {
					next = d
				}
				if !next.IsZero() {
					now = next
				}
				for j := range ms {
					check(j, ms[j].Tick(now))
				}
			case 1: // deliver what is in flight to i
				for len(wire[i]) > 0 {
					o := wire[i][0]
					wire[i] = wire[i][1:]
					if connected {
						check(i, ms[i].Receive(now, Packet{Src: srcs[1-i], Dst: o.Dst, HopLimit: HopLimit, Payload: o.Payload}))
					}
				}
			case 2: // garbage from the peer's address
				check(i, ms[i].Receive(now, Packet{Src: srcs[1-i], Dst: GroupV4(), HopLimit: int(op), Payload: ops[k:]}))
			case 3:
				connected = !connected
			case 4:
				check(i, ms[i].Relinquish(now, "fuzz"))
			case 5:
				now = now.Add(time.Duration(op) * time.Millisecond)
				for j := range ms {
					check(j, ms[j].Tick(now))
				}
			}
		}
		// Heal and run to quiescence: hearing each other, at most one master
		// remains within a few rounds of adverts.
		for range 200 {
			next := ms[0].Deadline()
			if d := ms[1].Deadline(); next.IsZero() || (!d.IsZero() && d.Before(next)) {
				next = d
			}
			if next.IsZero() {
				break
			}
			now = next
			for j := range ms {
				check(j, ms[j].Tick(now))
			}
			for j := range ms {
				for len(wire[j]) > 0 {
					o := wire[j][0]
					wire[j] = wire[j][1:]
					check(j, ms[j].Receive(now, Packet{Src: srcs[1-j], Dst: o.Dst, HopLimit: HopLimit, Payload: o.Payload}))
				}
			}
		}
		if ms[0].State() == Master && ms[1].State() == Master {
			t.Fatalf("both machines master after healing (priorities %d, %d)", p1, p2)
		}
		if ms[0].State() != Master && ms[1].State() != Master {
			t.Fatalf("no master after healing (priorities %d, %d): %v, %v", p1, p2, ms[0].State(), ms[1].State())
		}
	})
}
