package engine

import (
	"strings"
	"testing"
	"time"

	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// TestCatchUpGate walks the failback decision through sequences of inputs,
// as the engine feeds it once a second.
func TestCatchUpGate(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	const refresh, limit = 10 * time.Second, 120 * time.Second
	// in is a returning backup at t0+at, the peer master, with n of the
	// master's m connections.
	in := func(at time.Duration, n, m uint64) catchUpIn {
		return catchUpIn{Now: t0.Add(at), Failback: true, Sync: true, PeerKnown: true, PeerMaster: true,
			Conns: n, ConnsKnown: true, PeerConns: m, PeerConnsKnown: true, Refresh: refresh, Limit: limit}
	}
	with := func(c catchUpIn, f func(*catchUpIn)) catchUpIn { f(&c); return c }
	type step struct {
		in      catchUpIn
		preempt bool
		status  string // a part of the status ("" : empty)
		log     string // a part of the log line ("" : none)
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"failback off: never preempts, says nothing", []step{
			{with(in(0, 0, 0), func(c *catchUpIn) { c.Failback = false }), false, "", ""},
			{with(in(time.Hour, 5, 5), func(c *catchUpIn) { c.Failback = false }), false, "", ""},
		}},
		{"no connection sync (off, or no peer): not held back", []step{
			{with(in(0, 0, 1000), func(c *catchUpIn) { c.Sync = false }), true, "", ""},
		}},
		{"master: nothing to hold", []step{
			{with(in(0, 0, 1000), func(c *catchUpIn) { c.Master = true }), true, "", ""},
		}},
		{"the peer is not master (both starting): VRRP decides", []step{
			{with(in(0, 0, 1000), func(c *catchUpIn) { c.PeerMaster = false }), true, "", ""},
		}},
		{"first start of a pair, both empty: not delayed", []step{
			{in(0, 0, 0), true, "caught up 0/0", "nothing to catch up"},
			{in(time.Second, 0, 0), true, "caught up 0/0", ""},
		}},
		{"catching up, then caught up after a refresh period", []step{
			{in(0, 0, 20), false, "holding back: sync catching up 0/20", ""},
			{in(2*time.Second, 12, 20), false, "holding back: sync catching up 12/20", ""},
			{in(5*time.Second, 20, 20), false, "holding back: sync catching up 20/20", ""}, // too soon: stale entries could match
			{in(refresh, 20, 20), true, "caught up 20/20", "sync caught up: 20 of the master's 20"},
			{in(refresh+time.Second, 3, 20), true, "caught up 20/20", ""}, // latched: no flapping
		}},
		{"the margin: 1% of the master's count may lack", []step{
			{in(0, 9899, 10000), false, "9899/10000", ""},
			{in(refresh, 9899, 10000), false, "9899/10000", ""},
			{in(refresh+time.Second, 9900, 10000), true, "caught up 9900/10000", "9900 of the master's 10000"},
		}},
		{"no margin below 100 connections", []step{
			{in(0, 19, 20), false, "19/20", ""},
			{in(refresh, 19, 20), false, "19/20", ""},
		}},
		{"more than the master (entries it has let expire): caught up", []step{
			{in(0, 30, 20), false, "30/20", ""},
			{in(refresh, 30, 20), true, "caught up 30/20", "caught up"},
		}},
		{"idle connections never come: the limit ends the wait", []step{
			{in(0, 0, 300), false, "0/300", ""},
			{in(limit-time.Second, 200, 300), false, "200/300", ""},
			{in(limit, 200, 300), true, "gave up waiting at 200/300", "100 connections not learnt"},
			{in(limit+time.Second, 200, 300), true, "200/300", ""},
		}},
		{"no view of the peer yet: held, up to the limit", []step{
			{with(in(0, 0, 0), func(c *catchUpIn) { c.PeerKnown, c.PeerMaster, c.PeerConnsKnown = false, false, false }), false, "no view of the peer yet", ""},
			{with(in(limit, 0, 0), func(c *catchUpIn) { c.PeerKnown, c.PeerMaster, c.PeerConnsKnown = false, false, false }), true, "gave up waiting", "without knowing"},
		}},
		{"an older peer that reports no count: held up to the limit", []step{
			{with(in(0, 5, 0), func(c *catchUpIn) { c.PeerConnsKnown = false }), false, "the master's connection count is not known", ""},
			{with(in(limit, 5, 0), func(c *catchUpIn) { c.PeerConnsKnown = false }), true, "gave up waiting", "without knowing"},
		}},
		{"own count unknown (NCC not answering): held", []step{
			{with(in(0, 0, 0), func(c *catchUpIn) { c.ConnsKnown = false }), false, "this node's connection count is not known", ""},
		}},
		{"becoming master resets; a later return catches up again", []step{
			{in(0, 0, 0), true, "caught up 0/0", "nothing"},
			{with(in(time.Second, 0, 0), func(c *catchUpIn) { c.Master = true }), true, "", ""},
			{in(time.Minute, 10, 50), false, "10/50", ""},
			{in(time.Minute+refresh, 50, 50), true, "caught up 50/50", "after 10s"},
		}},
		{"the peer stops being master: reset, the clock starts again", []step{
			{in(0, 0, 50), false, "0/50", ""},
			{with(in(5*time.Second, 0, 50), func(c *catchUpIn) { c.PeerMaster = false }), true, "", ""},
			{in(8*time.Second, 50, 50), false, "50/50", ""},
			{in(8*time.Second+refresh, 50, 50), true, "caught up", "caught up"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g catchUpGate
			for i, s := range tc.steps {
				out := g.decide(s.in)
				if out.Preempt != s.preempt {
					t.Errorf("step %d: preempt %v, want %v (%q)", i, out.Preempt, s.preempt, out.Status)
				}
				if s.status == "" && out.Status != "" || !strings.Contains(out.Status, s.status) {
					t.Errorf("step %d: status %q, want %q", i, out.Status, s.status)
				}
				if s.log == "" && out.Log != "" || !strings.Contains(out.Log, s.log) {
					t.Errorf("step %d: log %q, want %q", i, out.Log, s.log)
				}
			}
		})
	}
}

func TestIPVSConns(t *testing.T) {
	st := &nccpb.DesiredState{Services: []*nccpb.Service{
		{Destinations: []*nccpb.Destination{
			{ActiveConnections: 3, InactiveConnections: 2, PersistentConnections: 7},
			{ActiveConnections: 1},
		}},
		{Destinations: []*nccpb.Destination{{InactiveConnections: 4000000000}}},
		{},
	}}
	if n := ipvsConns(st); n != 4000000006 {
		t.Errorf("ipvsConns = %d, want 4000000006 (templates not counted)", n)
	}
	if n := ipvsConns(nil); n != 0 {
		t.Errorf("ipvsConns(nil) = %d", n)
	}
}
