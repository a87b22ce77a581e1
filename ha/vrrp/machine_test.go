package vrrp

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	t0   = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ipA  = netip.MustParseAddr("192.0.2.1")
	ipB  = netip.MustParseAddr("192.0.2.2")
	ipC  = netip.MustParseAddr("192.0.2.3")
	vip  = netip.MustParseAddr("192.0.2.100")
	ms   = time.Millisecond
	ival = 100 * ms
)

func cfg(local netip.Addr, prio uint8, mod ...func(*Config)) Config {
	c := Config{VRID: 60, Priority: prio, Interval: ival, Local: local, Addresses: []netip.Addr{vip}}
	for _, f := range mod {
		f(&c)
	}
	return c
}

func newM(t *testing.T, c Config) *Machine {
	t.Helper()
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// advert builds the packet a router at src with these parameters sends.
func advert(t *testing.T, src netip.Addr, vrid, prio uint8, interval time.Duration, addrs ...netip.Addr) Packet {
	t.Helper()
	if addrs == nil {
		addrs = []netip.Addr{vip}
	}
	a := Advertisement{VRID: vrid, Priority: prio, Interval: interval, Addresses: addrs}
	b, err := a.Append(nil, src, Group(src))
	if err != nil {
		t.Fatal(err)
	}
	return Packet{Src: src, Dst: Group(src), HopLimit: HopLimit, Payload: b}
}

func mustTransition(t *testing.T, st Step, from, to State) {
	t.Helper()
	if st.Transition == nil || st.Transition.From != from || st.Transition.To != to {
		t.Fatalf("step %+v: want transition %v -> %v", st, from, to)
	}
}

func sentPriority(t *testing.T, st Step) int {
	t.Helper()
	if len(st.Send) == 0 {
		return -1
	}
	a, err := Parse(st.Send[0].Payload, ipA, st.Send[0].Dst)
	if err != nil {
		// Sent from another local address: find it by trying the others.
		for _, src := range []netip.Addr{ipB, ipC, netip.MustParseAddr("fe80::1")} {
			if a, err = Parse(st.Send[0].Payload, src, st.Send[0].Dst); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("sent advert does not parse: %v", err)
		}
	}
	return int(a.Priority)
}

func TestTimersFollowRFC5798(t *testing.T) {
	for _, c := range []struct {
		interval time.Duration
		prio     uint8
		skew     time.Duration
		mdi      time.Duration
	}{
		{time.Second, 100, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{time.Second, 255, 3906250 * time.Nanosecond, 3003906250 * time.Nanosecond},
		{500 * ms, 1, 498046875 * time.Nanosecond, 1998046875 * time.Nanosecond},
		{20 * ms, 100, 12187500 * time.Nanosecond, 72187500 * time.Nanosecond},
	} {
		if s := SkewTime(c.interval, c.prio); s != c.skew {
			t.Errorf("SkewTime(%v, %d) = %v, want %v", c.interval, c.prio, s, c.skew)
		}
		if d := MasterDownInterval(c.interval, c.prio); d != c.mdi {
			t.Errorf("MasterDownInterval(%v, %d) = %v, want %v", c.interval, c.prio, d, c.mdi)
		}
	}
}

func TestBackupTakesOverAfterMasterDownInterval(t *testing.T) {
	m := newM(t, cfg(ipA, 100))
	mustTransition(t, m.Start(t0), Initialize, Backup)
	mdi := MasterDownInterval(ival, 100)
	if d := m.Deadline(); !d.Equal(t0.Add(mdi)) {
		t.Fatalf("deadline %v, want start + %v", d, mdi)
	}
	// A master advertising keeps pushing the deadline out.
	last := t0
	for i := 1; i <= 10; i++ {
		last = t0.Add(time.Duration(i) * ival)
		if st := m.Tick(last); st.Transition != nil || len(st.Send) > 0 {
			t.Fatalf("early tick did something: %+v", st)
		}
		st := m.Receive(last, advert(t, ipB, 60, 200, ival))
		if st.Drop != "" || st.Transition != nil {
			t.Fatalf("advert %d: %+v", i, st)
		}
	}
	if d := m.Deadline(); !d.Equal(last.Add(mdi)) {
		t.Fatalf("deadline %v, want last advert + %v", d, mdi)
	}
	if st := m.Tick(last.Add(mdi - time.Nanosecond)); st.Transition != nil {
		t.Fatalf("took over before the master down interval: %+v", st)
	}
	st := m.Tick(last.Add(mdi))
	mustTransition(t, st, Backup, Master)
	if p := sentPriority(t, st); p != 100 {
		t.Errorf("takeover advert priority %d, want 100", p)
	}
	if !strings.Contains(st.Transition.Reason, "no advert from master 192.0.2.2") {
		t.Errorf("reason %q", st.Transition.Reason)
	}
	// A master advertises every interval.
	now := last.Add(mdi)
	for range 3 {
		if d := m.Deadline(); !d.Equal(now.Add(ival)) {
			t.Fatalf("next advert at %v, want %v", d, now.Add(ival))
		}
		now = now.Add(ival)
		if st := m.Tick(now); len(st.Send) != 1 {
			t.Fatalf("no advert at %v: %+v", now, st)
		}
	}
	s := m.Stats()
	if s.AdvertsReceived != 10 || s.MasterAddr != ipA || s.MasterPriority != 100 {
		t.Errorf("stats %+v", s)
	}
}

func TestBackupLearnsMasterInterval(t *testing.T) {
	m := newM(t, cfg(ipA, 100)) // we advertise every 100ms
	m.Start(t0)
	st := m.Receive(t0, advert(t, ipB, 60, 200, time.Second))
	if !strings.Contains(st.Notice, "advertises every 1s") {
		t.Errorf("notice %q", st.Notice)
	}
	want := MasterDownInterval(time.Second, 100)
	if d := m.Deadline(); !d.Equal(t0.Add(want)) {
		t.Fatalf("deadline %v, want %v from the master's 1s interval", d.Sub(t0), want)
	}
	if s := m.Stats(); s.MasterAdvertInterval != time.Second || s.MasterDownInterval != want {
		t.Errorf("stats %+v", s)
	}
	// Priority 0: take over after the skew time of the learned interval.
	m.Receive(t0.Add(time.Second), advert(t, ipB, 60, 0, time.Second))
	skew := SkewTime(time.Second, 100)
	if d := m.Deadline(); !d.Equal(t0.Add(time.Second + skew)) {
		t.Fatalf("after priority 0, deadline %v, want +%v", d.Sub(t0), time.Second+skew)
	}
	st = m.Tick(t0.Add(time.Second + skew))
	mustTransition(t, st, Backup, Master)
	if !strings.Contains(st.Transition.Reason, "stepped down") {
		t.Errorf("reason %q", st.Transition.Reason)
	}
	if s := m.Stats(); s.Priority0Received != 1 {
		t.Errorf("priority 0 not counted: %+v", s)
	}
}

func becomeMaster(t *testing.T, m *Machine) time.Time {
	t.Helper()
	m.Start(t0)
	now := m.Deadline()
	mustTransition(t, m.Tick(now), Backup, Master)
	return now
}

func TestMasterElection(t *testing.T) {
	for _, c := range []struct {
		name    string
		prio    uint8 // theirs; ours is 100 at 192.0.2.2
		src     netip.Addr
		yield   bool
		wantWhy string
	}{
		{"higher priority", 101, ipA, true, "higher priority 101"},
		{"lower priority", 99, ipC, false, ""},
		{"equal priority, higher address", 100, ipC, true, "equal priority 100 advert from higher address 192.0.2.3"},
		{"equal priority, lower address", 100, ipA, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newM(t, cfg(ipB, 100))
			now := becomeMaster(t, m).Add(10 * ms)
			st := m.Receive(now, advert(t, c.src, 60, c.prio, 200*ms))
			if c.yield {
				mustTransition(t, st, Master, Backup)
				if !strings.Contains(st.Transition.Reason, c.wantWhy) {
					t.Errorf("reason %q, want %q", st.Transition.Reason, c.wantWhy)
				}
				// One farewell advert at our priority, so the winner
				// learns there were two masters.
				if p := sentPriority(t, st); p != 100 {
					t.Errorf("farewell advert priority %d, want 100", p)
				}
				// Now a backup of a master advertising every 200ms.
				if d, want := m.Deadline(), now.Add(MasterDownInterval(200*ms, 100)); !d.Equal(want) {
					t.Errorf("deadline %v, want %v", d, want)
				}
			} else {
				if st.Transition != nil || m.State() != Master {
					t.Fatalf("yielded to a loser: %+v", st)
				}
				// It answers at once so that the other master yields now.
				if p := sentPriority(t, st); p != 100 {
					t.Errorf("answer priority %d, want an immediate advert at 100", p)
				}
				if d := m.Deadline(); !d.Equal(now.Add(ival)) {
					t.Errorf("advert timer not restarted: %v", d)
				}
			}
			s := m.Stats()
			if s.DualMaster != 1 || s.LastDualMaster == nil || s.LastDualMaster.Yielded != c.yield || s.LastDualMaster.Peer != c.src {
				t.Errorf("dual master not recorded: %+v %+v", s, s.LastDualMaster)
			}
			if !strings.Contains(s.LastDualMaster.String(), "dual master: "+c.src.String()) {
				t.Errorf("warning %q", s.LastDualMaster)
			}
		})
	}
}

// TestPreemptionIsNotADualMaster: the preempted master's farewell advert
// is the handover, not a split brain; the preempted side still counts one
// (it was master and heard another master), which is what happened.
func TestPreemptionIsNotADualMaster(t *testing.T) {
	l := newLAN(t, cfg(ipA, 50), cfg(ipB, 200, func(c *Config) { c.Preempt = true }))
	l.ms[1] = newM(t, cfg(ipB, 200, func(c *Config) { c.Preempt = true })) // B starts later
	l.run(t0.Add(time.Second))
	if m := l.masters(); len(m) != 1 || m[0] != 0 {
		t.Fatalf("masters %v, want A", m)
	}
	l.apply(1, l.ms[1].Start(l.now))
	l.run(l.now.Add(time.Second))
	if m := l.masters(); len(m) != 1 || m[0] != 1 {
		t.Fatalf("masters %v, want B after preempting", m)
	}
	if s := l.ms[1].Stats(); s.DualMaster != 0 {
		t.Errorf("preempting master counted a dual master: %+v", s.LastDualMaster)
	}
	if s := l.ms[0].Stats(); s.DualMaster != 1 || !s.LastDualMaster.Yielded {
		t.Errorf("preempted master: %+v", s.LastDualMaster)
	}
}

func TestMasterAnswersPriorityZero(t *testing.T) {
	m := newM(t, cfg(ipB, 100))
	now := becomeMaster(t, m).Add(30 * ms)
	st := m.Receive(now, advert(t, ipA, 60, 0, ival))
	if sentPriority(t, st) != 100 || st.Transition != nil {
		t.Fatalf("step %+v: want an immediate advert and no transition", st)
	}
	if s := m.Stats(); s.DualMaster != 0 {
		t.Errorf("priority 0 counted as a dual master: %+v", s)
	}
}

func TestPreemption(t *testing.T) {
	lowMaster := func(t *testing.T, m *Machine, from time.Time, n int) time.Time {
		t.Helper()
		for i := range n {
			now := from.Add(time.Duration(i) * ival)
			if d := m.Deadline(); !d.After(now) {
				if st := m.Tick(d); st.Transition != nil {
					return d
				}
			}
			m.Receive(now, advert(t, ipB, 60, 50, ival))
		}
		return time.Time{}
	}
	t.Run("off", func(t *testing.T) {
		m := newM(t, cfg(ipA, 200))
		m.Start(t0)
		if at := lowMaster(t, m, t0, 100); !at.IsZero() {
			t.Fatalf("preempted at %v with preemption off", at.Sub(t0))
		}
		if s := m.Stats(); s.MasterAddr != ipB || s.MasterPriority != 50 {
			t.Errorf("master %v/%d", s.MasterAddr, s.MasterPriority)
		}
	})
	t.Run("on", func(t *testing.T) {
		m := newM(t, cfg(ipA, 200, func(c *Config) { c.Preempt = true }))
		m.Start(t0)
		// The lower master's adverts are ignored, so the takeover comes
		// one master down interval after start, as in keepalived.
		st := m.Receive(t0.Add(10*ms), advert(t, ipB, 60, 50, ival))
		if !strings.Contains(st.Notice, "preempting") {
			t.Errorf("notice %q", st.Notice)
		}
		at := lowMaster(t, m, t0.Add(20*ms), 100)
		if want := t0.Add(MasterDownInterval(ival, 200)); !at.Equal(want) {
			t.Fatalf("preempted at %v, want %v", at.Sub(t0), want.Sub(t0))
		}
	})
	t.Run("delay", func(t *testing.T) {
		m := newM(t, cfg(ipA, 200, func(c *Config) { c.Preempt, c.PreemptDelay = true, time.Second }))
		m.Start(t0)
		at := lowMaster(t, m, t0, 100)
		// Adverts before the delay ends are accepted; the last one is at
		// t0+900ms (t0+1s is not before the delay's end), and the down timer
		// runs out one master down interval after it.
		want := t0.Add(900*ms + MasterDownInterval(ival, 200))
		if !at.Equal(want) {
			t.Fatalf("preempted at %v, want %v", at.Sub(t0), want.Sub(t0))
		}
	})
	t.Run("delay restarts after a higher master", func(t *testing.T) {
		m := newM(t, cfg(ipA, 200, func(c *Config) { c.Preempt, c.PreemptDelay = true, time.Second }))
		m.Start(t0)
		m.Receive(t0, advert(t, ipB, 60, 50, ival))
		m.Receive(t0.Add(500*ms), advert(t, ipC, 60, 250, ival)) // a better master appears
		at := lowMaster(t, m, t0.Add(600*ms), 100)
		if want := t0.Add(600*ms + 900*ms + MasterDownInterval(ival, 200)); !at.Equal(want) {
			t.Fatalf("preempted at %v, want %v", at.Sub(t0), want.Sub(t0))
		}
	})
	t.Run("owner", func(t *testing.T) {
		m := newM(t, cfg(ipA, 255, func(c *Config) { c.Preempt = true }))
		st := m.Start(t0)
		mustTransition(t, st, Initialize, Master)
		if sentPriority(t, st) != 255 {
			t.Error("no advert on becoming master")
		}
		m = newM(t, cfg(ipA, 255))
		mustTransition(t, m.Start(t0), Initialize, Backup)
	})
}

func TestDrops(t *testing.T) {
	good := advert(t, ipB, 60, 200, ival)
	with := func(f func(*Packet)) Packet {
		p := good
		p.Payload = slices.Clone(good.Payload)
		f(&p)
		return p
	}
	for _, c := range []struct {
		name  string
		p     Packet
		peers []netip.Addr
		want  DropReason
	}{
		{"ttl 254", with(func(p *Packet) { p.HopLimit = 254 }), nil, DropTTL},
		{"ttl 1", with(func(p *Packet) { p.HopLimit = 1 }), nil, DropTTL},
		{"bad checksum", with(func(p *Packet) { p.Payload[6]++ }), nil, DropChecksum},
		{"vrid", advert(t, ipB, 61, 200, ival), nil, DropVRID},
		{"version 2", with(func(p *Packet) { p.Payload[0] = 0x21 }), nil, DropVersion},
		{"malformed", with(func(p *Packet) { p.Payload = p.Payload[:6] }), nil, DropMalformed},
		{"unknown peer", advert(t, ipC, 60, 200, ival), []netip.Addr{ipB}, DropUnknownPeer},
		{"own address", advert(t, ipA, 60, 200, ival), nil, DropOwn},
		{"wrong family", advert(t, netip.MustParseAddr("fe80::9"), 60, 200, ival, netip.MustParseAddr("2001:db8::1")), nil, DropFamily},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newM(t, cfg(ipA, 100, func(cf *Config) { cf.Peers = c.peers }))
			m.Start(t0)
			deadline := m.Deadline()
			st := m.Receive(t0.Add(ival), c.p)
			if st.Drop != c.want || st.DropDetail == "" {
				t.Fatalf("drop %q (%s), want %q", st.Drop, st.DropDetail, c.want)
			}
			if !m.Deadline().Equal(deadline) {
				t.Error("a dropped packet reset the down timer")
			}
			s := m.Stats()
			if s.Dropped[c.want] != 1 || s.AdvertsReceived != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
	// Unicast adverts are not held to TTL 255 (keepalived sends IPv6 ones
	// with hop limit 64).
	m := newM(t, cfg(ipA, 100, func(c *Config) { c.Peers, c.Unicast = []netip.Addr{ipB}, true }))
	m.Start(t0)
	b, _ := (&Advertisement{VRID: 60, Priority: 200, Interval: ival, Addresses: []netip.Addr{vip}}).Append(nil, ipB, ipA)
	if st := m.Receive(t0, Packet{Src: ipB, Dst: ipA, HopLimit: 64, Payload: b}); st.Drop != "" {
		t.Errorf("unicast advert with TTL 64 dropped: %+v", st)
	}
	if st := m.Receive(t0, Packet{Src: ipB, Dst: GroupV4(), HopLimit: 64, Payload: advert(t, ipB, 60, 200, ival).Payload}); st.Drop != DropTTL {
		t.Errorf("multicast advert with TTL 64: %+v", st)
	}
	// A configured peer is heard, whatever its zone.
	m = newM(t, cfg(netip.MustParseAddr("fe80::1"), 100, func(c *Config) {
		c.Peers = []netip.Addr{netip.MustParseAddr("fe80::2")}
		c.Addresses = nil
	}))
	m.Start(t0)
	p := advert(t, netip.MustParseAddr("fe80::2"), 60, 200, ival, []netip.Addr{}...)
	p.Src = p.Src.WithZone("veth0")
	if st := m.Receive(t0, p); st.Drop != "" {
		t.Errorf("peer with zone dropped: %+v", st)
	}
}

func TestAddressListMismatchCountedNotDropped(t *testing.T) {
	m := newM(t, cfg(ipA, 100))
	m.Start(t0)
	st := m.Receive(t0, advert(t, ipB, 60, 200, ival, netip.MustParseAddr("192.0.2.200")))
	if st.Drop != "" || !strings.Contains(st.Notice, "lists addresses") {
		t.Fatalf("step %+v", st)
	}
	st = m.Receive(t0.Add(ival), advert(t, ipB, 60, 200, ival, netip.MustParseAddr("192.0.2.200")))
	if st.Notice != "" {
		t.Errorf("the same difference logged again: %q", st.Notice)
	}
	if s := m.Stats(); s.AddressListMismatch != 2 || s.AdvertsReceived != 2 || s.MasterAddr != ipB {
		t.Errorf("stats %+v", s)
	}
}

func TestUnicastAndMulticastDestinations(t *testing.T) {
	m := newM(t, cfg(ipA, 100, func(c *Config) { c.Peers, c.Unicast = []netip.Addr{ipB, ipC}, true }))
	m.Start(t0)
	st := m.Tick(m.Deadline())
	if len(st.Send) != 2 || st.Send[0].Dst != ipB || st.Send[1].Dst != ipC {
		t.Fatalf("unicast sends %+v", st.Send)
	}
	for _, o := range st.Send {
		if _, err := Parse(o.Payload, ipA, o.Dst); err != nil {
			t.Errorf("advert to %v: %v (checksum must cover the unicast destination)", o.Dst, err)
		}
	}
	ll := netip.MustParseAddr("fe80::1")
	m = newM(t, Config{VRID: 1, Priority: 100, Interval: ival, Local: ll})
	m.Start(t0)
	st = m.Tick(m.Deadline())
	if len(st.Send) != 1 || st.Send[0].Dst != GroupV6() {
		t.Fatalf("IPv6 multicast sends %+v", st.Send)
	}
	if _, err := Parse(st.Send[0].Payload, ll, GroupV6()); err != nil {
		t.Error(err)
	}
}

func TestRelinquishAndShutdown(t *testing.T) {
	m := newM(t, cfg(ipA, 200, func(c *Config) { c.Preempt = true }))
	now := becomeMaster(t, m)
	st := m.Relinquish(now, "manual failover")
	mustTransition(t, st, Master, Backup)
	if sentPriority(t, st) != 0 {
		t.Fatal("relinquishing master did not send priority 0")
	}
	// The peer (lower priority) takes over; with preemption on we would
	// normally take it back, but a relinquish sticks.
	for i := 1; i <= 50; i++ {
		now = now.Add(ival)
		if st := m.Tick(now); st.Transition != nil {
			t.Fatalf("took mastership back: %+v", st)
		}
		m.Receive(now, advert(t, ipB, 60, 100, ival))
	}
	// Until the peer fails: then we take over, and preempt again after.
	now = m.Deadline()
	mustTransition(t, m.Tick(now), Backup, Master)
	m.Receive(now.Add(ms), advert(t, ipB, 60, 100, ival)) // a lower master: we stay
	if m.State() != Master {
		t.Fatal("lost mastership to a lower priority")
	}

	st = m.Shutdown(now.Add(2*ms), "stopping")
	mustTransition(t, st, Master, Initialize)
	if sentPriority(t, st) != 0 {
		t.Error("shutdown of a master did not send priority 0")
	}
	if !m.Deadline().IsZero() {
		t.Error("timers run after shutdown")
	}
	if st := m.Receive(now, advert(t, ipB, 60, 100, ival)); st.Drop != "" || st.Transition != nil {
		t.Errorf("stopped machine acted on an advert: %+v", st)
	}
	// A backup shuts down silently.
	m = newM(t, cfg(ipA, 100))
	m.Start(t0)
	st = m.Shutdown(t0, "stopping")
	mustTransition(t, st, Backup, Initialize)
	if len(st.Send) != 0 {
		t.Error("backup sent on shutdown")
	}
}

func TestUpdate(t *testing.T) {
	m := newM(t, cfg(ipA, 100))
	now := becomeMaster(t, m)
	c := m.Config()
	c.Priority, c.Interval = 150, 50*ms
	if err := m.Update(now, c); err != nil {
		t.Fatal(err)
	}
	if d := m.Deadline(); !d.Equal(now.Add(50 * ms)) {
		t.Errorf("advert timer %v after shortening the interval", d.Sub(now))
	}
	if st := m.Tick(m.Deadline()); sentPriority(t, st) != 150 {
		t.Error("new priority not advertised")
	}
	c.VRID = 9
	if err := m.Update(now, c); err == nil {
		t.Error("VRID change accepted in place")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		cfg(ipA, 0),
		cfg(ipA, 100, func(c *Config) { c.VRID = 0 }),
		cfg(ipA, 100, func(c *Config) { c.Interval = 5 * ms }),
		cfg(netip.MustParseAddr("2001:db8::1"), 100, func(c *Config) { c.Addresses = nil }),
		cfg(ipA, 100, func(c *Config) { c.Unicast = true }),
		cfg(ipA, 100, func(c *Config) { c.Peers = []netip.Addr{ipA} }),
		cfg(ipA, 100, func(c *Config) { c.Peers = []netip.Addr{netip.MustParseAddr("fe80::1")} }),
		cfg(ipA, 100, func(c *Config) { c.Addresses = []netip.Addr{netip.MustParseAddr("2001:db8::1")} }),
		cfg(netip.Addr{}, 100),
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", c)
		}
	}
}

// lan is a loss-free, zero-delay segment of machines for whole-protocol
// scenarios in virtual time.
type lan struct {
	t      *testing.T
	now    time.Time
	ms     []*Machine
	addrs  []netip.Addr
	cut    bool // adverts do not pass
	queue  []delivery
	states [][]Transition
}

type delivery struct {
	to int
	p  Packet
}

func newLAN(t *testing.T, cs ...Config) *lan {
	l := &lan{t: t, now: t0, states: make([][]Transition, len(cs))}
	for _, c := range cs {
		l.ms = append(l.ms, newM(t, c))
		l.addrs = append(l.addrs, c.Local)
	}
	for i, m := range l.ms {
		l.apply(i, m.Start(l.now))
	}
	return l
}

func (l *lan) apply(i int, st Step) {
	if st.Transition != nil {
		l.states[i] = append(l.states[i], *st.Transition)
	}
	for _, o := range st.Send {
		if l.cut {
			continue
		}
		for j := range l.ms {
			if j != i {
				l.queue = append(l.queue, delivery{j, Packet{Src: l.addrs[i], Dst: o.Dst, HopLimit: HopLimit, Payload: o.Payload}})
			}
		}
	}
}

// run advances virtual time to until, delivering adverts as they are sent.
func (l *lan) run(until time.Time) {
	for {
		for len(l.queue) > 0 {
			d := l.queue[0]
			l.queue = l.queue[1:]
			l.apply(d.to, l.ms[d.to].Receive(l.now, d.p))
		}
		next := time.Time{}
		for _, m := range l.ms {
			if d := m.Deadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		if next.IsZero() || next.After(until) {
			l.now = until
			return
		}
		l.now = next
		for i, m := range l.ms {
			l.apply(i, m.Tick(l.now))
		}
	}
}

func (l *lan) masters() []int {
	var out []int
	for i, m := range l.ms {
		if m.State() == Master {
			out = append(out, i)
		}
	}
	return out
}

func TestSplitBrainHealsWithinOneIntervalPlusSkew(t *testing.T) {
	for _, prios := range [][2]uint8{{200, 100}, {100, 200}, {100, 100}} {
		l := newLAN(t, cfg(ipA, prios[0]), cfg(ipB, prios[1]))
		l.run(t0.Add(2 * time.Second))
		if m := l.masters(); len(m) != 1 {
			t.Fatalf("%v: masters %v before the cut", prios, m)
		}
		l.cut = true
		l.run(l.now.Add(2 * time.Second))
		if m := l.masters(); len(m) != 2 {
			t.Fatalf("%v: masters %v during the cut, want both", prios, m)
		}
		l.cut = false
		healed := l.now
		bound := ival + SkewTime(ival, min(prios[0], prios[1]))
		for l.now.Before(healed.Add(bound)) && len(l.masters()) != 1 {
			l.run(l.now.Add(ms))
		}
		if m := l.masters(); len(m) != 1 {
			t.Fatalf("%v: masters %v %v after healing, want one", prios, m, l.now.Sub(healed))
		}
		winner := 0
		if prios[1] > prios[0] || (prios[0] == prios[1]) { // B has the higher address
			winner = 1
		}
		if m := l.masters(); m[0] != winner {
			t.Errorf("%v: master %d, want %d", prios, m[0], winner)
		}
		for i, m := range l.ms {
			if s := m.Stats(); s.DualMaster == 0 || s.LastDualMaster == nil {
				t.Errorf("%v: machine %d did not detect the dual master: %+v", prios, i, s)
			}
		}
		t.Logf("%v: one master %v after healing", prios, l.now.Sub(healed))
	}
}

func TestFailoverTimesInVirtualTime(t *testing.T) {
	l := newLAN(t, cfg(ipA, 200), cfg(ipB, 100))
	l.run(t0.Add(time.Second))
	if m := l.masters(); len(m) != 1 || m[0] != 0 {
		t.Fatalf("masters %v, want A", m)
	}
	// A crashes just after an advert: B takes over exactly one master down
	// interval after that advert.
	l.run(l.ms[0].Deadline())
	lastAdvert := l.now
	l.ms[0] = newM(t, cfg(ipA, 200)) // dead: never started
	l.run(lastAdvert.Add(time.Second))
	tr := l.states[1][len(l.states[1])-1]
	if tr.To != Master || !tr.At.Equal(lastAdvert.Add(MasterDownInterval(ival, 100))) {
		t.Fatalf("B's takeover %+v, want at last advert + %v", tr, MasterDownInterval(ival, 100))
	}
	// Graceful: B stops; a restarted A (backup, preempt off) takes over
	// after its skew time.
	l.ms[0] = newM(t, cfg(ipA, 200))
	l.apply(0, l.ms[0].Start(l.now))
	l.run(l.now.Add(time.Second))
	stop := l.now
	l.apply(1, l.ms[1].Shutdown(stop, "stop"))
	l.run(stop.Add(time.Second))
	tr = l.states[0][len(l.states[0])-1]
	if tr.To != Master || !tr.At.Equal(stop.Add(SkewTime(ival, 200))) {
		t.Fatalf("A's takeover %+v, want at stop + %v", tr, SkewTime(ival, 200))
	}
}
