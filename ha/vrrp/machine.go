package vrrp

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"
)

// State is a VRRP router state (RFC 5798 section 6.4).
type State int

// The states. Initialize is where a machine starts and where it returns on
// shutdown.
const (
	Initialize State = iota
	Backup
	Master
)

func (s State) String() string {
	switch s {
	case Initialize:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Config is one virtual router's parameters.
type Config struct {
	VRID     uint8 // 1-255
	Priority uint8 // 1-255
	// Interval is this router's advert interval, 10ms to 40.95s, used to
	// the nearest centisecond.
	Interval time.Duration
	// Preempt lets a higher-priority backup take over from a lower-priority
	// master. PreemptDelay, if set, holds that off until a lower-priority
	// master has been heard for that long (keepalived's preempt_delay).
	Preempt      bool
	PreemptDelay time.Duration
	// Local is this router's primary address: the source of its adverts and
	// its side of the equal-priority tie-break. Its family is the virtual
	// router's (IPv6 adverts come from a link-local address).
	Local netip.Addr
	// Peers are the other routers' primary addresses. When set, adverts
	// from any other source are dropped; with Unicast they are also where
	// adverts go instead of the multicast group.
	Peers   []netip.Addr
	Unicast bool
	// Addresses is the address list sent in every advert (the VIPs). What
	// a peer sends is compared, and a difference counted, but the advert
	// is still used: RFC 5798 makes the check optional, and dropping it
	// would turn a config skew between nodes into two masters.
	Addresses []netip.Addr
}

// Validate reports the first thing wrong with c.
func (c *Config) Validate() error {
	if c.VRID == 0 {
		return errors.New("vrrp: config: VRID 0 (want 1-255)")
	}
	if c.Priority == 0 {
		return errors.New("vrrp: config: priority 0 is reserved for a master that stops (want 1-255)")
	}
	if _, err := IntervalCentiseconds(c.Interval); err != nil {
		return fmt.Errorf("vrrp: config: %w", err)
	}
	if c.PreemptDelay < 0 {
		return fmt.Errorf("vrrp: config: negative preempt delay %v", c.PreemptDelay)
	}
	if !c.Local.IsValid() || c.Local.IsUnspecified() || c.Local.IsMulticast() {
		return fmt.Errorf("vrrp: config: local address %v is not a unicast address", c.Local)
	}
	if c.Local.Is6() && !c.Local.IsLinkLocalUnicast() {
		return fmt.Errorf("vrrp: config: IPv6 adverts must come from a link-local address, not %v (RFC 5798 5.1.2.1)", c.Local)
	}
	for _, p := range c.Peers {
		if !p.IsValid() || p.Is4() != c.Local.Is4() || p.IsMulticast() {
			return fmt.Errorf("vrrp: config: peer %v is not a unicast address of the local address's family", p)
		}
		if p.WithZone("") == c.Local.WithZone("") {
			return fmt.Errorf("vrrp: config: peer %v is the local address", p)
		}
	}
	if c.Unicast && len(c.Peers) == 0 {
		return errors.New("vrrp: config: unicast needs at least one peer")
	}
	if len(c.Addresses) > MaxAddresses {
		return fmt.Errorf("vrrp: config: %d addresses, at most %d fit an advert", len(c.Addresses), MaxAddresses)
	}
	for _, a := range c.Addresses {
		if !a.IsValid() || a.Is4() != c.Local.Is4() {
			return fmt.Errorf("vrrp: config: address %v is not of the local address's family", a)
		}
	}
	return nil
}

// SkewTime is RFC 5798's Skew_Time for a router of priority p listening to
// a master that advertises every interval: ((256-p) * interval) / 256.
func SkewTime(interval time.Duration, p uint8) time.Duration {
	return time.Duration(256-int(p)) * interval / 256
}

// MasterDownInterval is RFC 5798's Master_Down_Interval:
// 3 * interval + SkewTime.
func MasterDownInterval(interval time.Duration, p uint8) time.Duration {
	return 3*interval + SkewTime(interval, p)
}

// Packet is a received IP packet as the machine needs it.
type Packet struct {
	Src, Dst netip.Addr
	// HopLimit is the IPv4 TTL or IPv6 hop limit it arrived with.
	HopLimit int
	// Payload is the VRRP message (the IP payload).
	Payload []byte
}

// Outgoing is one advert to send: Payload to Dst, from Config.Local.
type Outgoing struct {
	Dst      netip.Addr
	Payload  []byte
	Priority uint8
}

// Transition is a change of state.
type Transition struct {
	From, To State
	At       time.Time
	Reason   string
}

// Step is what one input asks of the caller: send these adverts now (to
// every destination), report the transition, log the notice.
type Step struct {
	Send       []Outgoing
	Transition *Transition
	// Drop is set when the input was a packet that was not accepted;
	// DropDetail says more.
	Drop       DropReason
	DropDetail string
	// Notice is something worth a log line: a dual master, a learned
	// interval, a preempt delay starting.
	Notice string
}

// DualMaster describes another master heard while this router was master.
type DualMaster struct {
	At       time.Time
	Peer     netip.Addr
	Priority uint8
	// Yielded is true when this router gave way (the other had the higher
	// priority, or the equal priority and the higher address).
	Yielded bool
}

func (d DualMaster) String() string {
	outcome := "this node stayed master and answered at once so the other yields"
	if d.Yielded {
		outcome = "this node yielded"
	}
	return fmt.Sprintf("dual master: %v (priority %d) was also master at %s; %s",
		d.Peer, d.Priority, d.At.UTC().Format(time.RFC3339Nano), outcome)
}

// Stats are the machine's counters and what it knows of the master.
type Stats struct {
	AdvertsReceived     uint64 // accepted adverts
	Priority0Received   uint64
	Dropped             map[DropReason]uint64
	AddressListMismatch uint64
	// DualMaster counts adverts from another master heard while this
	// router was master: a split brain healing, or a preemption.
	DualMaster     uint64
	LastDualMaster *DualMaster
	// The current master as this router sees it (itself when master).
	MasterAddr     netip.Addr
	MasterPriority uint8
	// MasterAdvertInterval is learned from the master's adverts, as a
	// backup must (RFC 5798 6.4.2); MasterDownInterval follows from it.
	MasterAdvertInterval time.Duration
	MasterDownInterval   time.Duration
}

// Machine is one virtual router's state machine. It does no I/O and reads
// no clock: every input carries the time, and Deadline says when Tick must
// next be called. It is not safe for concurrent use.
type Machine struct {
	cfg   Config
	state State

	masterInterval time.Duration // Master_Adver_Interval
	downAt         time.Time     // Backup: Master_Down_Timer expiry
	downReason     string        // why downAt is what it is, for the transition
	advertAt       time.Time     // Master: Adver_Timer expiry
	preemptAt      time.Time     // Backup: end of the preempt delay, zero if not running
	preempting     netip.Addr    // Backup: the lower-priority master being preempted
	preempted      netip.Addr    // Master: the master this one preempted, if it did
	masterSince    time.Time     // Master: when it became master
	held           bool          // relinquished: do not preempt until the next takeover
	discarding     bool          // Backup: ignoring a lower-priority master (to preempt it)
	lastMismatch   string        // the address-list difference last logged
	lastAdvert     time.Time     // when this router last sent an advert at its own priority

	stats Stats
}

// New returns a machine in Initialize; Start sets it going.
func New(cfg Config) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Machine{cfg: cloneConfig(cfg), stats: Stats{Dropped: map[DropReason]uint64{}}}
	return m, nil
}

// cloneConfig copies c, with the interval rounded to what the wire carries
// so that our timer and our adverts agree.
func cloneConfig(c Config) Config {
	c.Peers = slices.Clone(c.Peers)
	c.Addresses = slices.Clone(c.Addresses)
	if cs, err := IntervalCentiseconds(c.Interval); err == nil {
		c.Interval = time.Duration(cs) * Centisecond
	}
	return c
}

// Config returns the machine's configuration.
func (m *Machine) Config() Config { return cloneConfig(m.cfg) }

// State is the current state.
func (m *Machine) State() State { return m.state }

// Stats returns a copy of the counters.
func (m *Machine) Stats() Stats {
	s := m.stats
	s.Dropped = maps.Clone(m.stats.Dropped)
	if d := m.stats.LastDualMaster; d != nil {
		c := *d
		s.LastDualMaster = &c
	}
	return s
}

// Deadline is when Tick must next be called; zero when no timer runs.
func (m *Machine) Deadline() time.Time {
	switch m.state {
	case Backup:
		return m.downAt
	case Master:
		return m.advertAt
	}
	return time.Time{}
}

// Start leaves Initialize (RFC 5798 6.4.1). A router of priority 255 is the
// RFC's address owner and becomes master at once, but only with preemption
// on: no node here really owns the VIPs, and with preemption off a
// restarting node must not take mastership back, as in Seesaw. Everything
// else starts as backup and waits the master down interval.
func (m *Machine) Start(now time.Time) Step {
	if m.state != Initialize {
		return Step{}
	}
	if m.cfg.Priority == 255 && m.cfg.Preempt {
		return m.becomeMaster(now, "priority 255 (address owner) with preemption on")
	}
	m.masterInterval = m.cfg.Interval
	m.held = false
	m.toBackup()
	m.setDown(now, m.mdi(), fmt.Sprintf("no advert within the master down interval %v since start", m.mdi()))
	return Step{Transition: &Transition{From: Initialize, To: Backup, At: now, Reason: "started; waiting for a master's advert"}}
}

func (m *Machine) mdi() time.Duration { return MasterDownInterval(m.masterInterval, m.cfg.Priority) }

func (m *Machine) setDown(now time.Time, d time.Duration, reason string) {
	m.downAt = now.Add(d)
	m.downReason = reason
	m.stats.MasterDownInterval = m.mdi()
	m.stats.MasterAdvertInterval = m.masterInterval
}

func (m *Machine) toBackup() {
	m.state = Backup
	m.advertAt = time.Time{}
	m.preemptAt = time.Time{}
	m.discarding = false
}

// becomeMaster sends an advert and moves to Master.
func (m *Machine) becomeMaster(now time.Time, reason string) Step {
	from := m.state
	m.state = Master
	m.held = false
	m.downAt = time.Time{}
	m.preemptAt = time.Time{}
	m.advertAt = now.Add(m.cfg.Interval)
	m.masterInterval = m.cfg.Interval
	m.masterSince = now
	m.preempted = netip.Addr{}
	if from == Backup && m.discarding {
		m.preempted = m.preempting
	}
	m.discarding = false
	m.stats.MasterAddr = m.cfg.Local
	m.stats.MasterPriority = m.cfg.Priority
	m.stats.MasterAdvertInterval = m.cfg.Interval
	m.stats.MasterDownInterval = 0
	return Step{Send: m.advertsAt(now), Transition: &Transition{From: from, To: Master, At: now, Reason: reason}}
}

// advertsAt is adverts at this router's priority, sent at now.
func (m *Machine) advertsAt(now time.Time) []Outgoing {
	m.lastAdvert = now
	return m.adverts(m.cfg.Priority)
}

// LastAdvert is when this router last sent an advert at its own priority
// (as master); zero if never.
func (m *Machine) LastAdvert() time.Time { return m.lastAdvert }

// adverts encodes one advert per destination.
func (m *Machine) adverts(prio uint8) []Outgoing {
	a := Advertisement{VRID: m.cfg.VRID, Priority: prio, Interval: m.cfg.Interval, Addresses: m.cfg.Addresses}
	dsts := []netip.Addr{Group(m.cfg.Local)}
	if m.cfg.Unicast {
		dsts = m.cfg.Peers
	}
	out := make([]Outgoing, 0, len(dsts))
	for _, d := range dsts {
		b, err := a.Append(nil, m.cfg.Local, d)
		if err != nil {
			// Validate has ruled out everything Append rejects.
			panic(fmt.Sprintf("vrrp: encoding a validated advert: %v", err))
		}
		out = append(out, Outgoing{Dst: d, Payload: b, Priority: prio})
	}
	return out
}

// Tick fires the timer that is due at now, if any.
func (m *Machine) Tick(now time.Time) Step {
	switch m.state {
	case Backup:
		if !m.downAt.IsZero() && !now.Before(m.downAt) {
			return m.becomeMaster(now, m.downReason)
		}
	case Master:
		if !m.advertAt.IsZero() && !now.Before(m.advertAt) {
			m.advertAt = now.Add(m.cfg.Interval)
			return Step{Send: m.advertsAt(now)}
		}
	}
	return Step{}
}

func (m *Machine) drop(r DropReason, format string, args ...any) Step {
	m.stats.Dropped[r]++
	return Step{Drop: r, DropDetail: fmt.Sprintf(format, args...)}
}

// Receive processes one received packet (RFC 5798 7.1 checks, then 6.4.2
// in Backup or 6.4.3 in Master).
func (m *Machine) Receive(now time.Time, p Packet) Step {
	if m.state == Initialize {
		return Step{} // not listening; nothing to count
	}
	src := p.Src.WithZone("")
	// RFC 5798 7.1: an advert must arrive with TTL/hop limit 255, proof
	// that it was not forwarded. That holds for the multicast adverts the
	// RFC defines. Unicast adverts are outside it and come only from
	// configured peers; keepalived does not check their TTL (and sends its
	// IPv6 ones with hop limit 64), so neither do we.
	if p.HopLimit != HopLimit && (p.Dst.IsMulticast() || !p.Dst.IsValid()) {
		return m.drop(DropTTL, "from %v: TTL/hop limit %d, want %d", src, p.HopLimit, HopLimit)
	}
	if src.Is4() != m.cfg.Local.Is4() {
		return m.drop(DropFamily, "from %v: not the virtual router's address family", src)
	}
	a, err := Parse(p.Payload, src, p.Dst.WithZone(""))
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			return m.drop(pe.Reason, "from %v: %s", src, pe.Detail)
		}
		return m.drop(DropMalformed, "from %v: %v", src, err)
	}
	if a.VRID != m.cfg.VRID {
		return m.drop(DropVRID, "from %v: VRID %d, ours %d", src, a.VRID, m.cfg.VRID)
	}
	if src == m.cfg.Local.WithZone("") {
		return m.drop(DropOwn, "advert with our own source address %v (another router with our address?)", src)
	}
	if len(m.cfg.Peers) > 0 && !slices.ContainsFunc(m.cfg.Peers, func(q netip.Addr) bool { return q.WithZone("") == src }) {
		return m.drop(DropUnknownPeer, "from %v: not a configured peer", src)
	}
	m.stats.AdvertsReceived++
	var notice string
	if a.Priority != 0 && !sameAddrs(a.Addresses, m.cfg.Addresses) {
		m.stats.AddressListMismatch++
		n := fmt.Sprintf("advert from %v lists addresses %v, ours are %v (used anyway)", src, a.Addresses, m.cfg.Addresses)
		if n != m.lastMismatch { // once per difference, not once per advert
			notice, m.lastMismatch = n, n
		}
	}
	var st Step
	switch m.state {
	case Backup:
		st = m.backupReceive(now, src, a)
	case Master:
		st = m.masterReceive(now, src, a)
	}
	if st.Notice == "" {
		st.Notice = notice
	} else if notice != "" {
		st.Notice += "; " + notice
	}
	return st
}

func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

func (m *Machine) backupReceive(now time.Time, src netip.Addr, a Advertisement) Step {
	if a.Priority == 0 {
		m.stats.Priority0Received++
		// The master is stepping down: take over after Skew_Time only, so
		// that the highest-priority backup speaks first.
		skew := SkewTime(m.masterInterval, m.cfg.Priority)
		m.downAt = now.Add(skew)
		m.downReason = fmt.Sprintf("master %v stepped down (priority 0 advert); took over after skew time %v", src, skew)
		return Step{}
	}
	lower := a.Priority < m.cfg.Priority
	var notice string
	if lower && m.cfg.Preempt && !m.held && m.cfg.PreemptDelay > 0 {
		if m.preemptAt.IsZero() {
			m.preemptAt = now.Add(m.cfg.PreemptDelay)
			notice = fmt.Sprintf("lower-priority master %v (priority %d): preempting after the preempt delay %v", src, a.Priority, m.cfg.PreemptDelay)
		}
	} else if !lower {
		m.preemptAt = time.Time{}
	}
	inDelay := !m.preemptAt.IsZero() && now.Before(m.preemptAt)
	if !m.cfg.Preempt || m.held || !lower || inDelay {
		m.discarding = false
		if a.Interval != m.masterInterval {
			notice = join(notice, fmt.Sprintf("master %v advertises every %v; master down interval now %v", src, a.Interval, MasterDownInterval(a.Interval, m.cfg.Priority)))
			m.masterInterval = a.Interval
		}
		m.stats.MasterAddr, m.stats.MasterPriority = src, a.Priority
		m.setDown(now, m.mdi(), fmt.Sprintf("no advert from master %v for the master down interval %v", src, m.mdi()))
		return Step{Notice: notice}
	}
	// Preempting: ignore the lower-priority master and let the down timer
	// run out (RFC 5798 6.4.2), as keepalived does.
	if !m.discarding || m.preempting != src {
		m.discarding = true
		m.preempting = src
		notice = join(notice, fmt.Sprintf("ignoring lower-priority master %v (priority %d < %d): preempting", src, a.Priority, m.cfg.Priority))
		m.downReason = fmt.Sprintf("preempted lower-priority master %v (priority %d < %d)", src, a.Priority, m.cfg.Priority)
	}
	return Step{Notice: notice}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// wins reports whether an advert of priority p from src beats this router.
func (m *Machine) wins(p uint8, src netip.Addr) bool {
	if p != m.cfg.Priority {
		return p > m.cfg.Priority
	}
	return src.Compare(m.cfg.Local.WithZone("")) > 0
}

func (m *Machine) masterReceive(now time.Time, src netip.Addr, a Advertisement) Step {
	if a.Priority == 0 {
		// Another master stepped down; make sure everyone hears us now.
		m.stats.Priority0Received++
		m.advertAt = now.Add(m.cfg.Interval)
		return Step{Send: m.advertsAt(now), Notice: fmt.Sprintf("priority 0 advert from %v while master: advertising at once", src)}
	}
	d := DualMaster{At: now, Peer: src, Priority: a.Priority, Yielded: m.wins(a.Priority, src)}
	// The master this one just preempted says goodbye with one last advert
	// (see below): that is the handover working, not a split brain.
	handover := !d.Yielded && src == m.preempted && now.Before(m.masterSince.Add(MasterDownInterval(a.Interval, m.cfg.Priority)))
	notice := "advert from " + src.String() + ", the master this node just preempted"
	if !handover {
		m.stats.DualMaster++
		m.stats.LastDualMaster = &d
		notice = d.String()
	}
	if handover {
		return Step{Notice: notice}
	}
	if !d.Yielded {
		// Answer at once so the other master yields now rather than at our
		// next advert (keepalived does the same unless lower_prio_no_advert).
		m.advertAt = now.Add(m.cfg.Interval)
		return Step{Send: m.advertsAt(now), Notice: notice}
	}
	why := fmt.Sprintf("higher priority %d advert from %v", a.Priority, src)
	if a.Priority == m.cfg.Priority {
		why = fmt.Sprintf("equal priority %d advert from higher address %v", a.Priority, src)
	}
	// One last advert at our own priority before yielding, so that the
	// winner learns there were two masters (keepalived's
	// higher_prio_send_advert): after a split brain both sides then report
	// it, not only the side that yields.
	farewell := m.advertsAt(now)
	m.toBackup()
	m.masterInterval = a.Interval
	m.stats.MasterAddr, m.stats.MasterPriority = src, a.Priority
	m.setDown(now, m.mdi(), fmt.Sprintf("no advert from master %v for the master down interval %v", src, m.mdi()))
	return Step{Send: farewell, Transition: &Transition{From: Master, To: Backup, At: now, Reason: why}, Notice: d.String()}
}

// Relinquish gives up mastership: a master sends a priority-0 advert so the
// best backup takes over after its skew time, and becomes backup. Either way
// the machine then does not preempt until it next becomes master by the down
// timer (the other node failing), so that a manual failover sticks.
func (m *Machine) Relinquish(now time.Time, reason string) Step {
	switch m.state {
	case Master:
		st := Step{Send: m.adverts(0)}
		m.toBackup()
		m.held = true
		m.masterInterval = m.cfg.Interval
		m.stats.MasterAddr, m.stats.MasterPriority = netip.Addr{}, 0
		m.setDown(now, m.mdi(), fmt.Sprintf("no master took over within the master down interval %v after relinquishing", m.mdi()))
		st.Transition = &Transition{From: Master, To: Backup, At: now, Reason: "relinquished: " + reason}
		return st
	case Backup:
		m.held = true
		m.preemptAt = time.Time{}
		if m.discarding {
			// Stop ignoring the lower-priority master we meant to preempt.
			m.discarding = false
			m.setDown(now, m.mdi(), fmt.Sprintf("no advert for the master down interval %v", m.mdi()))
		}
		return Step{Notice: "relinquish while backup: not preempting until the next takeover"}
	}
	return Step{}
}

// Shutdown stops the machine: a master sends a priority-0 advert (RFC 5798
// 6.4.3) so a backup takes over after its skew time rather than the whole
// master down interval. The machine returns to Initialize and ignores
// everything until Start.
func (m *Machine) Shutdown(now time.Time, reason string) Step {
	from := m.state
	if from == Initialize {
		return Step{}
	}
	var st Step
	if from == Master {
		st.Send = m.adverts(0)
	}
	m.state = Initialize
	m.downAt, m.advertAt, m.preemptAt = time.Time{}, time.Time{}, time.Time{}
	m.discarding = false
	m.stats.MasterAddr, m.stats.MasterPriority = netip.Addr{}, 0
	st.Transition = &Transition{From: from, To: Initialize, At: now, Reason: reason}
	return st
}

// Handoff stops the machine for a restart of its process (a reload) that
// is to resume mastership: unlike Shutdown, a master sends no priority-0
// advert but one last advert at its own priority, so that the backups'
// master down timers (3 x advert interval + skew) start from now, and the
// restarted router, told by Resume when this one last advertised, takes
// over again within them. The machine returns to Initialize. A stop that
// is not a restart must use Shutdown, so that a backup takes over at once.
func (m *Machine) Handoff(now time.Time, reason string) Step {
	from := m.state
	if from == Initialize {
		return Step{}
	}
	var st Step
	if from == Master {
		st.Send = m.advertsAt(now)
	}
	m.state = Initialize
	m.downAt, m.advertAt, m.preemptAt = time.Time{}, time.Time{}, time.Time{}
	m.discarding = false
	m.stats.MasterAddr, m.stats.MasterPriority = netip.Addr{}, 0
	st.Transition = &Transition{From: from, To: Initialize, At: now, Reason: reason}
	return st
}

// ResumeWindow is how long after a master's last advert a restarted router
// may still resume mastership at once (Resume): three advert intervals, the
// least master down interval of any backup (which adds its skew time on
// top), so that no backup can have taken over yet.
func ResumeWindow(interval time.Duration) time.Duration { return 3 * interval }

// Resume leaves Initialize like Start, but for a router whose previous
// incarnation (the process before a restart for a reload) was master and
// last advertised at lastAdvert, and stopped with Handoff. If that was
// less than ResumeWindow ago, no backup can have taken over: it becomes
// master at once and advertises, and the backups never notice. Otherwise
// (or with lastAdvert zero) it starts as Start does, as backup.
func (m *Machine) Resume(now, lastAdvert time.Time, reason string) Step {
	if m.state != Initialize {
		return Step{}
	}
	if !lastAdvert.IsZero() && now.Before(lastAdvert.Add(ResumeWindow(m.cfg.Interval))) {
		return m.becomeMaster(now, fmt.Sprintf("resumed mastership after a restart (%s): last advert %v ago, within %v",
			reason, now.Sub(lastAdvert).Round(time.Millisecond), ResumeWindow(m.cfg.Interval)))
	}
	st := m.Start(now)
	if !lastAdvert.IsZero() && st.Transition != nil && st.Transition.To == Backup {
		st.Notice = fmt.Sprintf("not resuming mastership after a restart (%s): last advert %v ago, beyond %v; a backup may have taken over",
			reason, now.Sub(lastAdvert).Round(time.Millisecond), ResumeWindow(m.cfg.Interval))
	}
	return st
}

// Update changes the parameters that need no new sockets: priority,
// interval, preemption and its delay, peers and addresses. VRID, local
// address and unicast mode need a new machine.
func (m *Machine) Update(now time.Time, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.VRID != m.cfg.VRID || c.Local != m.cfg.Local || c.Unicast != m.cfg.Unicast {
		return errors.New("vrrp: update: VRID, local address and unicast mode need a new machine")
	}
	old := m.cfg
	m.cfg = cloneConfig(c)
	switch m.state {
	case Master:
		if c.Interval != old.Interval {
			m.masterInterval = c.Interval
			if next := now.Add(c.Interval); next.Before(m.advertAt) {
				m.advertAt = next
			}
		}
		m.stats.MasterPriority = c.Priority
	case Backup:
		if !c.Preempt || c.PreemptDelay != old.PreemptDelay {
			m.preemptAt = time.Time{}
		}
	}
	return nil
}
