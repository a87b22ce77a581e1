package engine

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
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
		{"master, the peer not master or not known: nothing to hold", []step{
			{with(in(0, 0, 1000), func(c *catchUpIn) { c.Master, c.PeerMaster = true, false }), true, "", ""},
			{with(in(0, 0, 1000), func(c *catchUpIn) { c.Master, c.PeerKnown, c.PeerMaster = true, false, false }), true, "", ""},
		}},
		{"master while the peer is master too (adverts missed) and not caught up: holds, so as to yield", []step{
			{with(in(0, 0, 1000), func(c *catchUpIn) { c.Master = true }), false, "holding back: sync catching up 0/1000", ""},
			{with(in(refresh, 1000, 1000), func(c *catchUpIn) { c.Master = true }), true, "caught up 1000/1000", "caught up"},
		}},
		{"the peer is not master (both starting): no master to learn from, none to preempt", []step{
			{with(in(0, 0, 1000), func(c *catchUpIn) { c.PeerMaster = false }), false, "", ""},
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
		{"a dip of the master's count (a destination out of service) is not a target", []step{
			{in(0, 0, 12), false, "0/12", ""},
			{in(time.Second, 0, 0), false, "0/12", ""},
			{in(refresh, 6, 4), false, "6/12", ""},
			{in(refresh+2*time.Second, 6, 4), true, "caught up 6/4", "6 of the master's 4"}, // the 12 left the window
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
			{with(in(time.Second, 0, 0), func(c *catchUpIn) { c.Master, c.PeerMaster = true, false }), true, "", ""},
			{in(time.Minute, 10, 50), false, "10/50", ""},
			{in(time.Minute+refresh, 50, 50), true, "caught up 50/50", "after 10s"},
		}},
		{"the peer stops being master: reset, the clock starts again", []step{
			{in(0, 0, 50), false, "0/50", ""},
			{with(in(5*time.Second, 0, 50), func(c *catchUpIn) { c.PeerMaster = false }), false, "", ""},
			{in(8*time.Second, 50, 50), false, "50/50", ""},
			{in(8*time.Second+refresh, 50, 50), true, "caught up", "caught up"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g catchUpGate
			for i, s := range tc.steps {
				out := g.decide(s.in)
				if hold := !s.preempt && s.status != ""; out.Hold != hold {
					t.Errorf("step %d: hold %v, want %v (%q)", i, out.Hold, hold, out.Status)
				}
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

// setConns makes the rig's NCC report n IPVS connections (on the first
// destination of the first service that has one).
func (r *rig) setConns(n *atomic.Uint32) {
	r.ncc.mu.Lock()
	defer r.ncc.mu.Unlock()
	r.ncc.onState = func(resp *nccpb.GetStateResponse) {
		for _, s := range resp.GetState().GetServices() {
			for _, d := range s.Destinations {
				d.ActiveConnections, d.InactiveConnections = n.Load(), 0
			}
			if len(s.Destinations) > 0 {
				s.Destinations = s.Destinations[:1]
				return
			}
		}
	}
}

// TestFailbackWaitsForSync: two engines over real peer sync. lb2 took over
// while lb1 was away and holds 50 connections; lb1 comes back. Its HA gets
// a config without preemption, and its status says it is catching up,
// until its own IPVS holds the 50 too; then HA gets preemption.
func TestFailbackWaitsForSync(t *testing.T) {
	a, b, _ := newPairCfg(t, "[connection_sync]\nfailback = true\nrefresh_period = 1\ncatch_up_limit = 3600\n")
	var aConns, bConns atomic.Uint32
	a.setConns(&aConns)
	b.setConns(&bConns)
	bConns.Store(50)
	a.waitFor("lb1 sees lb2's 50 connections", func() bool { return a.peerStatus().View.GetIpvsConnections() == 50 })
	b.ha(seesawpb.HAState_HA_STATE_BACKUP, seesawpb.HAState_HA_STATE_LEADER)
	a.waitFor("lb1 sees lb2 master with 50 connections", func() bool {
		v := a.peerStatus().View
		return v.GetHaState() == seesawpb.HAState_HA_STATE_LEADER && v.GetIpvsConnections() == 50 && v.GetIpvsConnectionsAt() != nil
	})

	a.waitFor("lb1 holding back", func() bool {
		a.e.mu.Lock()
		defer a.e.mu.Unlock()
		return a.e.fb.out.Hold
	})
	eng := enginepb.NewEngineClient(serveEngine(t, a.e))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := eng.HASession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if c := cmd.GetConfig(); c == nil || c.Preempt || c.Priority != 253 {
		t.Fatalf("lb1's first HA command %v, want a config without preemption, priority 253 (below lb2's 254)", cmd)
	}
	stream.Send(&hapb.Report{Report: &hapb.Report_Transition{Transition: &hapb.Transition{
		From: seesawpb.HAState_HA_STATE_UNKNOWN, To: seesawpb.HAState_HA_STATE_BACKUP, Reason: "test"}}})
	failback := func() string {
		hs, err := eng.HAStatus(ctx, &enginepb.HAStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range hs.Facilities {
			if f.Name == "failback" {
				return f.Detail
			}
		}
		return ""
	}
	a.waitFor("lb1 holding back at 0/50", func() bool { return failback() == "holding back: sync catching up 0/50" })
	aConns.Store(30)
	a.waitFor("lb1 holding back at 30/50", func() bool { return failback() == "holding back: sync catching up 30/50" })
	if st, _ := a.e.comp.Facility("failback"); st.GetDetail() != "holding back: sync catching up 30/50" {
		t.Errorf("lb1's component facility: %v", st)
	}
	aConns.Store(50)
	for {
		cmd, err = stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		c := cmd.GetConfig()
		if c.GetPreempt() && c.GetPriority() == 255 {
			break
		}
		if c == nil || c.Preempt || c.Priority != 1 {
			t.Fatalf("lb1's HA command while catching up: %v, want its config without preemption, priority 1", cmd)
		}
	}
	if s := failback(); s != "caught up 50/50" {
		t.Errorf("lb1's failback status once caught up: %q", s)
	}
	// lb2, master, is never held, and says nothing of it.
	b.e.mu.Lock()
	out, hc := b.e.fb.out, b.e.haConfigLocked(b.e.cur)
	b.e.mu.Unlock()
	if !out.Preempt || out.Status != "" || !hc.Preempt {
		t.Errorf("lb2 (master): %+v, HA config preempt %v", out, hc.Preempt)
	}
}

// TestFailbackOffKeepsSeesawsRule: without failback, HA never preempts.
func TestFailbackOffKeepsSeesawsRule(t *testing.T) {
	a, _, _ := newPair(t)
	a.waitFor("a failback decision", func() bool {
		a.e.mu.Lock()
		defer a.e.mu.Unlock()
		return a.e.fb.decided
	})
	a.e.mu.Lock()
	hc, f := a.e.haConfigLocked(a.e.cur), a.e.failbackFacilityLocked()
	a.e.mu.Unlock()
	if hc.Preempt || f != nil {
		t.Errorf("failback off: preempt %v, facility %v", hc.Preempt, f)
	}
}

func TestHeldPriority(t *testing.T) {
	for _, c := range []struct{ own, peer, want uint32 }{
		{255, 1, 1},     // Seesaw's pair: 1 ties; the higher address wins a tie
		{255, 100, 99},  // below the peer's
		{50, 100, 50},   // already below: kept
		{255, 0, 255},   // no peer in the cluster config
		{200, 201, 200}, // already below
	} {
		if got := heldPriority(c.own, c.peer); got != c.want {
			t.Errorf("heldPriority(%d, %d) = %d, want %d", c.own, c.peer, got, c.want)
		}
	}
}
