package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/golang/glog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hapb "github.com/seesawlb/seesaw/proto/ha"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Failback: a node of higher priority that comes back after a failure takes
// mastership back ([connection_sync] failback = true, VRRP preemption), but
// not before its connection sync has caught up with the master. keepalived
// preempts at once (its issues #237 and #1076): the returning node's table
// is empty, so every connection the master opened while it was away breaks
// when the node takes over.
//
// What the kernel allows: the master's sync daemon sends a connection only
// when a packet of it passes (when it is established, when its state
// changes, and then at most once a sync_refresh_period while packets flow).
// Nothing is ever resent for a returning node's sake, and an idle
// connection is not resent at all until it next sends. So the returning
// node cannot ask for the table; it can only wait and count. The rule:
//
//   - while this node is backup and the peer master (or not known not to
//     be), HA runs without preemption and with a priority below the
//     peer's: it stays backup, obeying the lower-priority master's
//     adverts, while a master that dies is still taken over from at once.
//     The lower priority matters when adverts go missing for a moment (a
//     loaded host): this node then becomes master too, and with its own
//     priority the master would yield to it, connections and all; below
//     the peer's, it is this node that yields. (When the peer's priority
//     is 1 already, 1 ties, and the higher address wins a tie.)
//   - it preempts once its IPVS holds as many connections as the master's
//     (from peer sync), less a margin of 1% for the connections opened
//     within the last sync flush (a part-filled sync buffer waits up to
//     2 s), and at least one sync_refresh_period has passed since it began
//     catching up: by then every connection that sent anything has been
//     resent, so matching counts are not a coincidence of stale entries
//     (an engine restarted without a reboot finds its old table);
//   - the master's count is taken at its peak over the last refresh
//     period: it dips while one of its destinations is out of service;
//   - a master with no connections (none seen since catching up began)
//     has nothing to teach: the first start of a pair is not delayed;
//   - idle connections may never come: after catch_up_limit it takes over
//     anyway and logs how many it had not learnt (they break, as they
//     would have with keepalived; the sloppy_tcp fallback saves those of
//     the mh scheduler);
//   - without connection sync (off, or no peer), nothing is held back;
//     with it but without peer sync (no certificates in the SSL dir), the
//     master's count is never known and the wait is catch_up_limit.
//
// A TCP keepalive is a packet too: a connection with keepalives on either
// end (Go's default is every 15 s, Linux's two hours) is resent within that
// interval plus the refresh period, idle or not.

// catchUpMargin is the share of the master's connections a returning node
// may lack (1/catchUpMargin).
const catchUpMargin = 100

// connsPollInterval is how often the engine reads its IPVS connection
// count from the NCC while connection sync runs.
const connsPollInterval = time.Second

// catchUpIn is what the failback decision looks at.
type catchUpIn struct {
	Now      time.Time
	Failback bool // [connection_sync] failback
	Sync     bool // connection sync on, with a peer
	Master   bool // this node is master (the state the data plane follows)

	PeerKnown  bool // peer sync has a current view of the peer
	PeerMaster bool // the peer says it is master
	// The connection counts; known false: not reported (yet).
	PeerConns, Conns           uint64
	PeerConnsKnown, ConnsKnown bool

	Refresh time.Duration // sync_refresh_period
	Limit   time.Duration // catch_up_limit
}

// catchUpOut is the decision.
type catchUpOut struct {
	Preempt bool   // HA may take mastership from a lower-priority master
	Hold    bool   // HA keeps a priority below the peer's
	Status  string // what the status says; "" when there is nothing to say
	Log     string // said once, when the decision changes
}

// catchUpGate keeps the decision's memory: when catching up began, and
// whether it is over. It is pure: times are given.
type catchUpGate struct {
	since        time.Time // zero: not catching up
	done         bool      // caught up (or gave up waiting) since `since`
	learnt, want uint64
	// The master's counts over the last refresh period: the target is
	// their peak, since a master's count dips while a destination is out
	// of service (its connections are not counted then, though they live
	// on and come back with it). nonZero: a count above 0 was seen since
	// catching up began.
	peers   []peerCount
	nonZero bool
}

type peerCount struct {
	at time.Time
	n  uint64
}

// peak records the master's count m at now and returns the highest over
// the last window.
func (g *catchUpGate) peak(now time.Time, m uint64, window time.Duration) uint64 {
	g.peers = append(g.peers, peerCount{now, m})
	i := 0
	for i < len(g.peers)-1 && now.Sub(g.peers[i].at) > window {
		i++
	}
	g.peers = g.peers[i:]
	var p uint64
	for _, c := range g.peers {
		p = max(p, c.n)
	}
	if m > 0 {
		g.nonZero = true
	}
	return p
}

func (g *catchUpGate) reset() { *g = catchUpGate{} }

// decide says whether HA may preempt now.
func (g *catchUpGate) decide(in catchUpIn) catchUpOut {
	switch {
	case !in.Failback:
		g.reset()
		return catchUpOut{} // Seesaw's rule: never preempt
	case !in.Sync:
		g.reset()
		return catchUpOut{Preempt: true}
	case in.Master && !(in.PeerKnown && in.PeerMaster):
		g.reset()
		return catchUpOut{Preempt: true}
	case !in.Master && in.PeerKnown && !in.PeerMaster:
		// No master to learn from (both starting, or the peer backup). No
		// need to preempt either, as preemption only matters against a
		// master's adverts; and the view may be a heartbeat old: a peer
		// that has just become master must not be preempted before this
		// node has learnt anything.
		g.reset()
		return catchUpOut{}
	}
	// Backup (or not yet anything) with the peer master or not known not
	// to be; or master while the peer says it is master too (two masters
	// for a moment: this node must yield if it has not caught up).
	if g.since.IsZero() {
		g.since = in.Now
	}
	elapsed := in.Now.Sub(g.since)
	if g.done {
		return catchUpOut{Preempt: true, Status: fmt.Sprintf("caught up %d/%d", g.learnt, g.want)}
	}
	counted := in.PeerKnown && in.PeerConnsKnown && in.ConnsKnown
	n, m := in.Conns, in.PeerConns
	if in.PeerKnown && in.PeerConnsKnown {
		m = g.peak(in.Now, m, in.Refresh)
	}
	switch {
	case counted && m == 0 && !g.nonZero:
		g.done, g.learnt, g.want = true, n, m
		return catchUpOut{Preempt: true, Status: "caught up 0/0",
			Log: "failback: the master holds no connections: nothing to catch up"}
	case counted && n+m/catchUpMargin >= m && elapsed >= in.Refresh:
		g.done, g.learnt, g.want = true, n, m
		return catchUpOut{Preempt: true, Status: fmt.Sprintf("caught up %d/%d", n, m),
			Log: fmt.Sprintf("failback: sync caught up: %d of the master's %d connections after %v; taking mastership back",
				n, m, elapsed.Round(time.Millisecond))}
	case elapsed >= in.Limit:
		g.done = true
		if !counted {
			g.learnt, g.want = n, m
			return catchUpOut{Preempt: true, Status: "gave up waiting: the connection counts are not known",
				Log: fmt.Sprintf("failback: the catch-up limit %v passed without knowing the master's connection count (peer sync: %v); taking mastership back",
					in.Limit, in.PeerKnown)}
		}
		g.learnt, g.want = n, m
		missing := uint64(0)
		if m > n {
			missing = m - n
		}
		return catchUpOut{Preempt: true, Status: fmt.Sprintf("gave up waiting at %d/%d", n, m),
			Log: fmt.Sprintf("failback: the catch-up limit %v passed with %d of the master's %d connections: taking mastership back; %d connections not learnt (idle ones the master has not resent) will break",
				in.Limit, n, m, missing)}
	}
	if !counted {
		why := "the master's connection count is not known yet"
		if !in.PeerKnown {
			why = "no view of the peer yet"
		} else if !in.ConnsKnown {
			why = "this node's connection count is not known yet"
		}
		return catchUpOut{Hold: true, Status: "holding back: sync catching up: " + why}
	}
	return catchUpOut{Hold: true, Status: fmt.Sprintf("holding back: sync catching up %d/%d", n, m)}
}

// failback is the engine's failback state. Guarded by Engine.mu.
type failback struct {
	gate    catchUpGate
	out     catchUpOut
	decided bool // out holds a decision
	// changed is closed and replaced whenever out.Preempt changes: the HA
	// session sends HA its config again.
	changed chan struct{}

	conns   uint64
	connsAt time.Time // zero: not known
	connErr string
	// kick asks watchConns for a decision now (a view from the peer came);
	// nil while it does not run.
	kick chan struct{}
}

// failbackChanged returns the channel closed at the next change of the
// failback decision. Hold e.mu.
func (e *Engine) failbackChangedLocked() <-chan struct{} {
	if e.fb.changed == nil {
		e.fb.changed = make(chan struct{})
	}
	return e.fb.changed
}

// haConfigLocked is the HA config to send: the loaded one, with preemption
// as the failback decision says. Hold e.mu.
func (e *Engine) haConfigLocked(cur *loaded) *hapb.Config {
	if cur == nil || cur.ha == nil {
		return nil
	}
	if !cur.res.Engine.ConnSync.Failback {
		return cur.ha
	}
	hc := proto.Clone(cur.ha).(*hapb.Config)
	hc.Preempt = e.fb.decided && e.fb.out.Preempt
	// Until the first decision, hold as if catching up.
	hold := !e.fb.decided && cur.res.Engine.ConnSync.Enabled && cur.res.Engine.Peer.IPv4.IsValid() || e.fb.decided && e.fb.out.Hold
	if hold {
		hc.Priority = heldPriority(hc.Priority, peerPriority(cur))
	}
	return hc
}

// peerPriority is the highest priority of the other nodes of the cluster
// (0: none).
func peerPriority(cur *loaded) uint32 {
	var p uint32
	for _, n := range cur.res.Cluster.Nodes {
		if n != cur.res.ThisNode && n.HAEnabled {
			p = max(p, uint32(n.Priority))
		}
	}
	return p
}

// heldPriority is the priority a node catching up runs with: below the
// peer's, never above its own, at least 1.
func heldPriority(own, peer uint32) uint32 {
	if peer == 0 {
		return own
	}
	return max(1, min(own, peer-1))
}

// watchConns reads this node's IPVS connection count from the NCC (for the
// peer's view and for failback), and decides failback, every second.
func (e *Engine) watchConns(ctx context.Context) {
	t := time.NewTicker(connsPollInterval)
	defer t.Stop()
	kick := make(chan struct{}, 1)
	e.mu.Lock()
	e.fb.kick = kick
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.fb.kick = nil
		e.mu.Unlock()
	}()
	for {
		e.pollConns(ctx)
		e.decideFailback()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
			e.decideFailback()
		}
	}
}

// pollConns asks the NCC for the IPVS counters, while connection sync runs.
func (e *Engine) pollConns(ctx context.Context) {
	cur, _ := e.current()
	if e.ncc == nil || cur == nil || !cur.res.Engine.ConnSync.Enabled || !cur.res.Engine.Peer.IPv4.IsValid() {
		return
	}
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := e.ncc.GetState(gctx, &nccpb.GetStateRequest{WithStats: true})
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		if e.fb.connErr == "" {
			glog.Warningf("engine: reading the IPVS connection count: %v", err)
		}
		e.fb.connErr = err.Error()
		e.fb.connsAt = time.Time{}
		return
	}
	e.fb.connErr = ""
	e.fb.conns, e.fb.connsAt = ipvsConns(st.GetState()), e.now()
}

// ipvsConns is the connections a kernel's IPVS holds: active and inactive
// ones summed over every destination. A synced connection counts on the
// backup as on the master, once its destination exists there.
func ipvsConns(st *nccpb.DesiredState) uint64 {
	var n uint64
	for _, s := range st.GetServices() {
		for _, d := range s.GetDestinations() {
			n += uint64(d.GetActiveConnections()) + uint64(d.GetInactiveConnections())
		}
	}
	return n
}

// decideFailback runs the failback decision and tells HA when it changes.
func (e *Engine) decideFailback() {
	cur, _ := e.current()
	ps := e.peer.Status()
	e.mu.Lock()
	now := e.now()
	in := catchUpIn{Now: now, Master: e.ht.state(now) == seesawpb.HAState_HA_STATE_LEADER}
	if cur != nil {
		cs := cur.res.Engine.ConnSync
		in.Failback = cs.Failback
		in.Sync = cs.Enabled && cur.res.Engine.Peer.IPv4.IsValid()
		in.Refresh, in.Limit = cs.RefreshPeriod, cs.CatchUpLimit
	}
	if ps.GetConnected() && ps.GetView() != nil {
		v := ps.GetView()
		in.PeerKnown = true
		in.PeerMaster = v.GetHaState() == seesawpb.HAState_HA_STATE_LEADER
		in.PeerConns, in.PeerConnsKnown = v.GetIpvsConnections(), v.GetIpvsConnectionsAt() != nil
	}
	in.Conns, in.ConnsKnown = e.fb.conns, !e.fb.connsAt.IsZero()
	out := e.fb.gate.decide(in)
	changed := !e.fb.decided || out.Preempt != e.fb.out.Preempt || out.Hold != e.fb.out.Hold
	quiet := (out.Status == "") != (e.fb.out.Status == "")
	e.fb.out, e.fb.decided = out, true
	if changed && e.fb.changed != nil {
		close(e.fb.changed)
		e.fb.changed = nil
	}
	e.mu.Unlock()
	if out.Log != "" {
		glog.Info("engine: " + out.Log)
	}
	if (changed || quiet) && in.Failback {
		glog.Infof("engine: failback: HA preempts: %v, priority below the peer's: %v (%s; this node master: %v, the peer's view: %v, master: %v, %d connections)",
			out.Preempt, out.Hold, out.Status, in.Master, in.PeerKnown, in.PeerMaster, in.PeerConns)
	}
	switch {
	case out.Status != "":
		e.comp.SetFacility("failback", true, out.Status)
	case in.Failback:
		e.comp.SetFacility("failback", true, "not holding back")
	}
	if out.Log != "" {
		e.comp.SetDetail("failback_last", now.UTC().Format(time.RFC3339)+" "+out.Log)
	}
}

// kickFailbackLocked has the failback decision made again now. Hold e.mu.
func (e *Engine) kickFailbackLocked() {
	select {
	case e.fb.kick <- struct{}{}:
	default:
	}
}

// failbackFacilityLocked is the failback line of HAStatus, nil when there
// is nothing to say. Hold e.mu.
func (e *Engine) failbackFacilityLocked() *seesawpb.Facility {
	if !e.fb.decided || e.fb.out.Status == "" {
		return nil
	}
	return &seesawpb.Facility{Name: "failback", Available: e.fb.out.Preempt, Detail: e.fb.out.Status}
}

// connsTimestamp is the time of the connection count, for the peer view.
func connsTimestamp(at time.Time) *timestamppb.Timestamp {
	if at.IsZero() {
		return nil
	}
	return timestamppb.New(at)
}
