package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// HASession is HA's stream. The engine sends the HA config derived from the
// running config (again whenever it changes) and relinquish requests, and
// records HA's transitions and status reports. A newer session replaces an
// older one. A session that ends does not change the HA state by itself:
// 30 s without a report does (Seesaw's rule; see haTracker).
func (e *Engine) HASession(stream grpc.BidiStreamingServer[hapb.Report, hapb.Command]) error {
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	s := &haSession{cmds: make(chan *hapb.Command, 4), cancel: cancel, restartSent: make(chan struct{})}
	e.mu.Lock()
	if old := e.ha; old != nil {
		old.cancel(errSuperseded)
		glog.Warningf("engine: a new HA session replaces the open one")
	}
	e.ha = s
	e.mu.Unlock()
	peer := "unknown"
	if c, ok := ipc.CredFromContext(ctx); ok {
		peer = c.String()
	}
	glog.Infof("engine: HA session opened by %s", peer)
	defer func() {
		e.mu.Lock()
		if e.ha == s {
			e.ha = nil
		}
		e.mu.Unlock()
	}()

	// A master's HA that restarted for a reload said so (Restarting):
	// the new one resumes mastership, told before its config.
	e.mu.Lock()
	last, resume := e.ht.takeResume(e.now())
	e.mu.Unlock()
	if resume {
		glog.Infof("engine: this node was master when HA restarted; telling the new HA to resume (last advert %v)", last)
		r := &hapb.Resume{LastAdvert: timestamppb.New(last), Reason: "HA restarted for a reload while master"}
		if err := stream.Send(&hapb.Command{Command: &hapb.Command_Resume{Resume: r}}); err != nil {
			return e.haEnded(peer, err)
		}
	}

	reports, errc := ipc.RecvLoop(ctx, stream.Recv)
	var sent *hapb.Config
	for {
		cur, changed := e.current()
		e.mu.Lock()
		want, fbChanged := e.haConfigLocked(cur), e.failbackChangedLocked()
		e.mu.Unlock()
		if want != nil && !proto.Equal(want, sent) {
			if err := stream.Send(&hapb.Command{Command: &hapb.Command_Config{Config: want}}); err != nil {
				return e.haEnded(peer, err)
			}
			sent = want
		}
		select {
		case <-fbChanged:
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errSuperseded) {
				e.haEnded(peer, errSuperseded)
				return status.Error(codes.Aborted, "engine: "+errSuperseded.Error())
			}
			return e.haEnded(peer, ctx.Err())
		case <-changed:
		case c := <-s.cmds:
			if err := stream.Send(c); err != nil {
				return e.haEnded(peer, err)
			}
			if c.GetEngineRestarting() != nil {
				close(s.restartSent)
			}
		case r := <-reports:
			e.recordHA(r)
		case err := <-errc:
			return e.haEnded(peer, err)
		}
	}
}

// engineRestartGrace is how long HA keeps speaking, mastership included,
// for an engine restarted for a reload to be back (EngineRestarting).
const engineRestartGrace = 10 * time.Second

// announceRestartWait bounds how long announceRestart waits for the HA
// session to take the notice.
const announceRestartWait = time.Second

// announceRestart tells HA, if a session is open, that the engine is
// restarting for a reload, and returns once the notice has gone (or could
// not go within announceRestartWait).
func (e *Engine) announceRestart() {
	e.mu.Lock()
	s := e.ha
	e.mu.Unlock()
	if s == nil {
		glog.Infof("engine: restarting for a reload; no HA session to tell")
		return
	}
	glog.Infof("engine: restarting for a reload; telling HA to keep speaking for up to %v", engineRestartGrace)
	cmd := &hapb.Command{Command: &hapb.Command_EngineRestarting{EngineRestarting: &hapb.EngineRestarting{
		Within: durationpb.New(engineRestartGrace), Reason: "the engine is restarting for a reload"}}}
	timeout := time.After(announceRestartWait)
	select {
	case s.cmds <- cmd:
	case <-timeout:
		glog.Warningf("engine: could not queue the restart notice for HA")
		return
	}
	select {
	case <-s.restartSent:
	case <-timeout:
		glog.Warningf("engine: the restart notice did not reach HA within %v", announceRestartWait)
	}
}

func (e *Engine) haEnded(peer string, err error) error {
	if errors.Is(err, io.EOF) {
		glog.Infof("engine: HA session from %s closed", peer)
		return nil
	}
	glog.Warningf("engine: HA session from %s ended: %v", peer, err)
	return err
}

// recordHA applies one report from HA.
func (e *Engine) recordHA(r *hapb.Report) {
	reannounce := false
	e.mu.Lock()
	now := e.now()
	before := e.ht.state(now)
	switch r := r.Report.(type) {
	case *hapb.Report_Transition:
		t := r.Transition
		glog.Infof("engine: HA %v -> %v: %s", t.From, t.To, t.Reason)
		e.events.add("ha", "this node", t.From == seesawpb.HAState_HA_STATE_LEADER, fmt.Sprintf("HA %v -> %v: %s", t.From, t.To, t.Reason))
		e.ht.report(now, t.To, t.From == seesawpb.HAState_HA_STATE_LEADER, e.haStatus.GetMasterDownInterval().AsDuration())
		e.haTransitions = append(e.haTransitions, t)
		if len(e.haTransitions) > maxTransitions {
			e.haTransitions = e.haTransitions[len(e.haTransitions)-maxTransitions:]
		}
	case *hapb.Report_Status:
		if e.haStatus == nil || e.haStatus.State != r.Status.State {
			glog.V(1).Infof("engine: HA reports state %v", r.Status.State)
		}
		if r.Status.State == seesawpb.HAState_HA_STATE_LEADER && e.haStatus != nil && r.Status.DualMaster > e.haStatus.DualMaster {
			// Another master was heard and this node stayed master (a
			// partition healed, a false takeover): the other one may
			// have drawn the VIPs' traffic meanwhile, so announce them
			// again now rather than at the NCC's next periodic round.
			glog.Infof("engine: HA stayed master over another master (%s): announcing the VIPs again", r.Status.Warning)
			e.announceDue = true
			reannounce = true
		}
		e.haStatus = r.Status
		e.ht.report(now, r.Status.State, false, r.Status.GetMasterDownInterval().AsDuration())
	case *hapb.Report_Restarting:
		x := r.Restarting
		var last time.Time
		if x.GetLastAdvert() != nil {
			last = x.GetLastAdvert().AsTime()
		}
		glog.Infof("engine: HA restarting in state %v (%s); last advert %v", x.GetState(), x.GetReason(), last)
		e.events.add("ha", "this node", false, fmt.Sprintf("HA restarting in state %v: %s", x.GetState(), x.GetReason()))
		e.ht.restarting(now, x.GetState(), last)
	}
	after := e.ht.state(now)
	e.mu.Unlock()
	if before != after {
		glog.Infof("engine: the data plane follows HA state %v (was %v)", after, before)
	}
	if before != after || reannounce {
		e.wake()
	}
}

// HealthcheckSession is the healthcheck process's stream. The engine sends
// the full check set (again whenever it changes) and records the results;
// a result that changes a check's state wakes the reconcile loop.
func (e *Engine) HealthcheckSession(stream grpc.BidiStreamingServer[hcpb.Results, hcpb.CheckSet]) error {
	ctx := stream.Context()
	peer := "unknown"
	if c, ok := ipc.CredFromContext(ctx); ok {
		peer = c.String()
	}
	e.mu.Lock()
	e.hcSessions++
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.hcSessions--
		e.mu.Unlock()
	}()
	glog.Infof("engine: healthcheck session opened by %s", peer)

	batches, errc := ipc.RecvLoop(ctx, stream.Recv)
	var sent *hcpb.CheckSet
	for {
		e.mu.Lock()
		checks, changed := e.checks, e.checksChanged
		out := checks
		if checks != nil && sent == nil {
			// A new checker (a restart, or a crash) continues from what
			// the engine last heard of each check, not from nothing.
			out = e.withKnownLocked(checks)
		}
		e.mu.Unlock()
		if checks != nil && checks != sent {
			if err := stream.Send(out); err != nil {
				return e.hcEnded(peer, err)
			}
			sent = checks
			glog.V(1).Infof("engine: sent %d checks to healthcheck", len(checks.Upsert))
		}
		select {
		case <-ctx.Done():
			return e.hcEnded(peer, ctx.Err())
		case <-changed:
		case b := <-batches:
			e.recordResults(b)
		case err := <-errc:
			return e.hcEnded(peer, err)
		}
	}
}

// withKnownLocked is checks with the engine's last known state of each
// (CheckSet.known), from the latest results: a checker that starts with no
// history then still needs retries+1 failures to take a healthy
// destination out. A result from a checker that sends no consecutive
// counts stands for one run of its kind.
func (e *Engine) withKnownLocked(checks *hcpb.CheckSet) *hcpb.CheckSet {
	out := &hcpb.CheckSet{Full: checks.Full, Upsert: checks.Upsert, Remove: checks.Remove}
	for _, c := range checks.Upsert {
		r := e.results[c.Id]
		if r == nil {
			continue
		}
		k := &hcpb.KnownState{Id: c.Id, Healthy: r.Healthy,
			ConsecutiveSuccesses: r.ConsecutiveSuccesses, ConsecutiveFailures: r.ConsecutiveFailures}
		if k.ConsecutiveSuccesses == 0 && k.ConsecutiveFailures == 0 {
			if r.Success {
				k.ConsecutiveSuccesses = 1
			} else {
				k.ConsecutiveFailures = 1
			}
		}
		out.Known = append(out.Known, k)
	}
	return out
}

func (e *Engine) hcEnded(peer string, err error) error {
	if errors.Is(err, io.EOF) {
		glog.Infof("engine: healthcheck session from %s closed", peer)
		return nil
	}
	glog.Warningf("engine: healthcheck session from %s ended: %v", peer, err)
	return err
}

// recordResults keeps the last result of each check, and wakes the loop
// when one is new or says something new (a state, or the message the
// status shows).
func (e *Engine) recordResults(b *hcpb.Results) {
	if len(b.Results) == 0 {
		return
	}
	changed := false
	e.mu.Lock()
	for _, r := range b.Results {
		old := e.results[r.Id]
		if old == nil || old.Healthy != r.Healthy || old.Message != r.Message {
			changed = true
		}
		e.results[r.Id] = r
		e.nResults++
	}
	e.mu.Unlock()
	if changed {
		e.wake()
	}
}
