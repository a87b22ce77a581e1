package engine

import (
	"time"

	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// haTracker turns HA's reports into the state the data plane follows. It
// is pure: times are given.
//
// Seesaw's rules, kept: the state is what HA last said; 30 s (the HA state
// timeout) without a word from HA is UNKNOWN, and the LB interface goes
// down. A session that breaks is not silence by itself: a restarted HA is
// back within a second or two.
//
// Where it differs: a master whose HA process restarts does not drop its
// VIPs for it. A restarted HA speaker begins as UNKNOWN, then BACKUP, and
// becomes master one master-down interval later if no peer is master;
// while this node was master (by HA's word, or at engine start by what the
// kernel holds: the LB interface up), such a start-up state is held for
// that interval plus a margin before the LB interface goes down. A
// demotion (HA's own transition from LEADER) and a step-down (SHUTDOWN)
// are followed at once, so a real failover never waits. An engine that
// dies is another matter: HA steps down at once (Seesaw's rule, so the peer
// takes over from a node that cannot decide), and the restarted engine
// follows that SHUTDOWN; a lone node is master again one master-down
// interval later.
type haTracker struct {
	timeout time.Duration // HA silent this long: UNKNOWN

	reported   seesawpb.HAState
	lastReport time.Time // zero: never

	// master: the data plane is the master's (LEADER) until held ends.
	master bool
	held   time.Time // zero: not holding
	// adoptUntil is until when an adopted master (the kernel's LB
	// interface up at start) holds without a word from HA.
	adoptUntil time.Time
	// resume is the last advert of a master HA that restarted for a reload
	// (its Restarting report), for the next HA to resume from; zero: none.
	resume time.Time
}

// haHoldMargin is added to HA's master-down interval when a start-up
// BACKUP is held.
const haHoldMargin = time.Second

func newHATracker(timeout time.Duration) *haTracker {
	return &haTracker{timeout: timeout}
}

// adopt says the kernel had the LB interface up when the engine started:
// this node was master. It stays so until HA says otherwise, or until
// grace passes without HA.
func (t *haTracker) adopt(now time.Time, grace time.Duration) {
	t.master = true
	t.adoptUntil = now.Add(grace)
}

// report applies one state HA reported. demotion says HA itself went from
// LEADER to this state (a transition); mdi is HA's master-down interval
// (0: unknown, 2 s is assumed).
func (t *haTracker) report(now time.Time, s seesawpb.HAState, demotion bool, mdi time.Duration) {
	if t.master && !t.held.IsZero() && !now.Before(t.held) {
		t.master, t.held = false, time.Time{} // the hold ran out
	}
	t.reported, t.lastReport = s, now
	t.adoptUntil = time.Time{}
	switch {
	case s == seesawpb.HAState_HA_STATE_LEADER:
		t.master, t.held = true, time.Time{}
	case t.master && !demotion && (s == seesawpb.HAState_HA_STATE_BACKUP || s == seesawpb.HAState_HA_STATE_UNKNOWN):
		// A speaker starting (UNKNOWN until it has its config, then
		// BACKUP): hold the master's data plane a while.
		if t.held.IsZero() {
			if mdi <= 0 {
				mdi = 2 * time.Second
			}
			t.held = now.Add(mdi + haHoldMargin)
		}
	default:
		// A demotion, or HA stepping down (SHUTDOWN), disabled or in
		// error: the peer may be taking over now.
		t.master, t.held = false, time.Time{}
		t.resume = time.Time{}
	}
}

// restarting records HA's word that it is restarting for a reload, in state
// s, having last advertised as master at lastAdvert. The data plane stays
// as it is (a LEADER stays the master's until the restarted HA says
// otherwise, held as at any HA restart); a master's last advert is kept
// for the next HA (takeResume).
func (t *haTracker) restarting(now time.Time, s seesawpb.HAState, lastAdvert time.Time) {
	t.lastReport = now
	t.resume = time.Time{}
	if s == seesawpb.HAState_HA_STATE_LEADER && t.master && !lastAdvert.IsZero() {
		t.resume = lastAdvert
	}
}

// takeResume returns, once, the last advert of a master HA that restarted
// for a reload, if this node is still master at now: the next HA resumes
// mastership from it (vrrp.Machine.Resume decides whether it is recent
// enough).
func (t *haTracker) takeResume(now time.Time) (time.Time, bool) {
	r := t.resume
	t.resume = time.Time{}
	if r.IsZero() || t.state(now) != seesawpb.HAState_HA_STATE_LEADER {
		return time.Time{}, false
	}
	return r, true
}

// state is the HA state the data plane follows at now.
func (t *haTracker) state(now time.Time) seesawpb.HAState {
	if t.lastReport.IsZero() {
		if t.master && now.Before(t.adoptUntil) {
			return seesawpb.HAState_HA_STATE_LEADER
		}
		return seesawpb.HAState_HA_STATE_UNKNOWN
	}
	if now.Sub(t.lastReport) > t.timeout {
		return seesawpb.HAState_HA_STATE_UNKNOWN
	}
	if t.master {
		if t.held.IsZero() || now.Before(t.held) {
			return seesawpb.HAState_HA_STATE_LEADER
		}
		return t.reported
	}
	return t.reported
}

// next is when state may next change by itself (a hold or the timeout
// ending), zero for never; the engine re-evaluates then.
func (t *haTracker) next(now time.Time) time.Time {
	var out []time.Time
	if !t.held.IsZero() && now.Before(t.held) {
		out = append(out, t.held)
	}
	if !t.adoptUntil.IsZero() && now.Before(t.adoptUntil) {
		out = append(out, t.adoptUntil)
	}
	if !t.lastReport.IsZero() {
		if d := t.lastReport.Add(t.timeout); now.Before(d) {
			out = append(out, d)
		}
	}
	var first time.Time
	for _, x := range out {
		if first.IsZero() || x.Before(first) {
			first = x
		}
	}
	return first
}
