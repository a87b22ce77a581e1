package engine

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/dataplane"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// maxLoggedChanges is how many of one apply's changes are logged one per
// line; the rest are counted.
const maxLoggedChanges = 50

// Loop is the reconcile loop, level-triggered: whenever anything it depends
// on changes (a reload, a check result that changes a state, an HA report,
// an override, a new NCC process, a timer of its own) it computes the whole
// desired state and, if it differs from what the NCC last took, sends it
// with Apply. A burst of changes is one computation: they only set a flag
// the loop reads when it is next free. An NCC that does not answer, or
// answers with errors, is tried again with backoff, never given up on.
//
// Run starts it; a test may run it with its own NCC (SetNCC).
func (e *Engine) Loop(ctx context.Context) {
	var (
		model    *dataplane.Model
		modelCfg *loaded
		modelOv  uint64
		prev     *dataplane.Plan
		retry    time.Duration // backoff after a failed apply; 0: none pending
		retryAt  time.Time
	)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return
		}
		e.step(ctx, &model, &modelCfg, &modelOv, &prev, &retry, &retryAt)
		// Wake up again for a change (a kick), a retry, or a timer of the
		// HA state or of the adoption running out.
		wait := time.Hour
		now := e.now()
		e.mu.Lock()
		if t := e.ht.next(now); !t.IsZero() {
			wait = min(wait, t.Sub(now)+time.Millisecond)
		}
		if !e.adoptUntil.IsZero() && e.adopted != nil {
			wait = min(wait, e.adoptUntil.Sub(now)+time.Millisecond)
		}
		e.mu.Unlock()
		if retry > 0 {
			wait = min(wait, retryAt.Sub(now))
		}
		wait = max(wait, 0)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		case <-timer.C:
		}
	}
}

// step is one turn of the loop.
func (e *Engine) step(ctx context.Context, model **dataplane.Model, modelCfg **loaded, modelOv *uint64,
	prev **dataplane.Plan, retry *time.Duration, retryAt *time.Time) {
	// Every wake-up before this point is seen by this step (tests wait
	// for the wake-ups to be done with: Engine.settled).
	wakes := e.wakes.Load()
	defer e.stepped.Store(wakes)
	if *retry > 0 && e.now().Before(*retryAt) {
		return
	}
	e.mu.Lock()
	cur := e.cur
	if cur == nil {
		e.mu.Unlock()
		return
	}
	if *model == nil || *modelCfg != cur || *modelOv != e.ovGen {
		in := dataplane.Input{Engine: cur.res.Engine, Cluster: cur.res.Cluster, Node: cur.res.ThisNode,
			Overrides: e.overridesInput(), Marks: e.marks}
		*modelCfg, *modelOv = cur, e.ovGen
		e.mu.Unlock()
		m := dataplane.Derive(in)
		e.mu.Lock()
		*model = m
		e.model = m
		if !maps.Equal(m.Marks, e.marks) {
			e.marks = m.Marks
			e.saveStateLocked()
		}
		if !proto.Equal(m.Checks, e.checks) {
			e.checks = m.Checks
			close(e.checksChanged)
			e.checksChanged = make(chan struct{})
			// Results of checks no longer asked for would never be
			// replaced: forget them.
			keep := make(map[uint64]bool, len(m.Checks.Upsert))
			for _, c := range m.Checks.Upsert {
				keep[c.Id] = true
			}
			maps.DeleteFunc(e.results, func(id uint64, _ *hcpb.Result) bool { return !keep[id] })
		}
	}
	// Before the first apply, what the kernel holds is read, to be adopted
	// (the model and its checks are made all the same: the healthcheck
	// process needs them whether or not the NCC answers).
	if !e.readKernel {
		e.mu.Unlock()
		if err := e.adoptKernel(ctx, cur); err != nil {
			e.failed(retry, retryAt, fmt.Sprintf("cannot read what the kernel holds before the first apply: %v", err))
			return
		}
		e.mu.Lock()
	}
	now := e.now()
	ha := e.ht.state(now)
	health := make(dataplane.Health, len(e.results))
	maps.Copy(health, e.results)
	adopted := e.adopted
	if adopted != nil && (!now.Before(e.adoptUntil) || allReported((*model).Checks, health)) {
		glog.Infof("engine: every check has reported (or the grace ran out): the kernel's state at start is no longer adopted")
		e.adopted, adopted = nil, nil
	}
	resend := e.resend
	e.resend = false
	applied := e.apply.applied
	e.mu.Unlock()

	p := (*model).EvaluateAdopting(ha, health, *prev, adopted)
	// An evaluation that changes nothing hands back the previous desired
	// state itself: identity says "unchanged", without comparing the
	// whole state (which cost more than the evaluation at 10,000
	// destinations).
	if *prev != nil && p.Desired != (*prev).Desired {
		logTransitions(e.events, *prev, p)
	}
	*prev = p
	e.mu.Lock()
	e.plan, e.planOvGen = p, *modelOv
	if e.planned != nil {
		close(e.planned)
		e.planned = nil
	}
	e.mu.Unlock()

	if !resend && *retry == 0 && applied == p.Desired {
		return
	}
	if e.ncc == nil {
		e.failed(retry, retryAt, "no NCC")
		return
	}
	becameMaster := p.Desired.GetLbInterface().GetUp() && !applied.GetLbInterface().GetUp()
	actx, cancel := context.WithTimeout(ctx, e.cfg.NCCTimeout)
	resp, err := e.ncc.Apply(actx, &nccpb.ApplyRequest{Desired: p.Desired})
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		e.failed(retry, retryAt, fmt.Sprintf("NCC apply: %v", err))
		return
	}
	e.applied(p.Desired, resp)
	if len(resp.Errors) > 0 {
		e.failed(retry, retryAt, fmt.Sprintf("the NCC could not make %d changes (the rest were made): %s", len(resp.Errors), applyErrors(resp.Errors, 3)))
	} else {
		*retry = 0
	}
	if becameMaster {
		// The NCC announces the VIPs itself when it brings the interface
		// up; this asks again at once, in case that was before this
		// apply's VIPs were all in place.
		actx, cancel := context.WithTimeout(ctx, e.cfg.NCCTimeout)
		if r, err := e.ncc.Announce(actx, &nccpb.AnnounceRequest{}); err != nil {
			glog.Warningf("engine: announce after becoming master: %v", err)
		} else if len(r.Errors) > 0 {
			glog.V(1).Infof("engine: announce after becoming master: %d sent; %s", r.Sent, strings.Join(r.Errors, "; "))
		}
		cancel()
	}
}

// allReported says whether every check has a result.
func allReported(cs *hcpb.CheckSet, h dataplane.Health) bool {
	for _, c := range cs.GetUpsert() {
		if h[c.Id] == nil {
			return false
		}
	}
	return true
}

// adoptKernel reads what the kernel holds before the first apply: the
// destinations the checks will decide are kept as they are until the
// checks report, and an LB interface that is up (this node was master)
// stays up until HA says otherwise. So a restarted engine, before it knows
// anything new, changes nothing.
func (e *Engine) adoptKernel(ctx context.Context, cur *loaded) error {
	if e.ncc == nil {
		return fmt.Errorf("no NCC")
	}
	gctx, cancel := context.WithTimeout(ctx, e.cfg.NCCTimeout)
	defer cancel()
	st, err := e.ncc.GetState(gctx, &nccpb.GetStateRequest{})
	if status.Code(err) == codes.FailedPrecondition {
		// The NCC has no IPVS to read (its status says why): there is
		// nothing to adopt there, and the rest can be applied.
		glog.Warningf("engine: the NCC cannot read IPVS (%v): nothing adopted from the kernel", status.Convert(err).Message())
		e.mu.Lock()
		e.readKernel = true
		e.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	ds := st.GetState()
	now := e.now()
	grace := adoptGrace(cur)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.readKernel = true
	if len(ds.GetServices()) > 0 {
		e.adopted = dataplane.AdoptedFrom(ds)
		e.adoptUntil = now.Add(grace)
		glog.Infof("engine: the kernel holds %d IPVS services: they stay as they are until the checks report (at most %v)", len(ds.GetServices()), grace)
	}
	if ds.GetLbInterface().GetUp() {
		e.ht.adopt(now, cur.res.Engine.HAStateTimeout)
		glog.Infof("engine: the LB interface %s is up (this node was master): it stays up until HA says otherwise", ds.GetLbInterface().GetName())
	}
	return nil
}

// adoptGrace is how long a restarted engine keeps the kernel's state for
// checks that have not reported: a fresh healthcheck process reports each
// check within its interval and timeout.
func adoptGrace(cur *loaded) time.Duration {
	g := 10 * time.Second
	for _, v := range cur.res.Cluster.Vservers {
		for _, h := range v.Healthchecks {
			g = max(g, h.Interval+h.Timeout+5*time.Second)
		}
		for _, en := range v.Entries {
			for _, h := range en.Healthchecks {
				g = max(g, h.Interval+h.Timeout+5*time.Second)
			}
		}
	}
	return min(g, 2*time.Minute)
}

// failed records a failed apply and sets the next retry.
func (e *Engine) failed(retry *time.Duration, retryAt *time.Time, msg string) {
	if *retry == 0 {
		*retry = e.cfg.RetryMin
	} else {
		*retry = min(2**retry, e.cfg.RetryMax)
	}
	*retryAt = e.now().Add(*retry)
	e.mu.Lock()
	e.apply.failures++
	e.apply.rpcErr = msg
	n := e.apply.failures
	e.mu.Unlock()
	if e.comp.SetFacility("dataplane", false, fmt.Sprintf("%s; retrying (attempt %d, next in %v)", msg, n, *retry)) || n%20 == 0 {
		glog.Warningf("engine: %s; retrying in %v (attempt %d)", msg, *retry, n)
	}
}

// applied records an Apply the NCC answered, and logs what it changed.
func (e *Engine) applied(ds *nccpb.DesiredState, resp *nccpb.ApplyResponse) {
	now := e.now()
	for i, c := range resp.Changes {
		if i == maxLoggedChanges {
			glog.Infof("engine: ncc: ... and %d more changes", len(resp.Changes)-i+int(resp.ChangesOmitted))
			break
		}
		glog.Infof("engine: ncc: %s %s %s %s", strings.ToLower(c.Op.String()), c.Kind, c.Object, c.Detail)
	}
	for _, a := range resp.Errors {
		glog.Errorf("engine: ncc: could not %s %s: %s", a.Kind, a.Object, a.Message)
	}
	var errs []string
	for _, a := range resp.Errors {
		errs = append(errs, fmt.Sprintf("%s %s: %s", a.Kind, a.Object, a.Message))
	}
	e.mu.Lock()
	e.nApplies++
	e.nKernelWrites += resp.KernelWrites
	e.nApplyErrors += uint64(len(resp.Errors))
	e.apply = applyStatus{at: now, changes: len(resp.Changes) + int(resp.ChangesOmitted), writes: resp.KernelWrites,
		errors: errs, applied: ds, failures: e.apply.failures}
	if len(errs) == 0 {
		e.apply.failures = 0
	}
	e.mu.Unlock()
	if len(errs) == 0 {
		e.comp.SetFacility("dataplane", true, fmt.Sprintf("applied: %d IPVS services, LB interface %s; last apply at %s made %d changes",
			len(ds.Services), upDown(ds.GetLbInterface().GetUp()), now.UTC().Format(time.RFC3339), len(resp.Changes)+int(resp.ChangesOmitted)))
	}
	if len(resp.Changes) > 0 {
		glog.V(1).Infof("engine: applied: %d changes, %d kernel writes, in %v", len(resp.Changes), resp.KernelWrites, resp.Took.AsDuration())
	}
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

func applyErrors(errs []*nccpb.ApplyError, n int) string {
	var s []string
	for i, a := range errs {
		if i == n {
			s = append(s, fmt.Sprintf("and %d more", len(errs)-n))
			break
		}
		s = append(s, fmt.Sprintf("%s %s: %s", a.Kind, a.Object, a.Message))
	}
	return strings.Join(s, "; ")
}

// logTransitions logs what changed for operators between two plans: a
// service up or down, a destination in or out, the LB interface.
func logTransitions(ev *eventLog, prev, p *dataplane.Plan) {
	if a, b := prev.Desired.GetLbInterface().GetUp(), p.Desired.GetLbInterface().GetUp(); a != b {
		glog.Infof("engine: HA %v: LB interface %s", p.HA, upDown(b))
	}
	if prev.Model == p.Model {
		// The same model: its vservers, services and destinations are in
		// the same places in both plans.
		for i, v := range p.Vservers {
			for j, s := range v.Services {
				os := prev.Vservers[i].Services[j]
				logService(ev, v, s, os.Active)
				for k, d := range s.Destinations {
					logDestination(ev, os.Destinations[k], d)
				}
			}
		}
		return
	}
	old := map[string]*enginepb.DestinationStatus{}
	oldSvc := map[string]bool{}
	for _, v := range prev.Vservers {
		for _, s := range v.Services {
			oldSvc[v.Name+" "+s.Vip+" "+svcLabel(s)] = s.Active
			for _, d := range s.Destinations {
				old[d.Name] = d
			}
		}
	}
	for _, v := range p.Vservers {
		for _, s := range v.Services {
			k := v.Name + " " + s.Vip + " " + svcLabel(s)
			if was, ok := oldSvc[k]; ok {
				logService(ev, v, s, was)
			}
			for _, d := range s.Destinations {
				if o := old[d.Name]; o != nil {
					logDestination(ev, o, d)
				}
			}
		}
	}
}

func logService(ev *eventLog, v *enginepb.VserverStatus, s *enginepb.ServiceStatus, was bool) {
	if was != s.Active {
		ev.add("service", fmt.Sprintf("%s %s %s", v.Name, s.Vip, svcLabel(s)), !s.Active,
			fmt.Sprintf("%s (%d of %d destinations healthy)", upDown(s.Active), s.HealthyDestinations, s.InServiceDestinations))
		glog.Infof("engine: vserver %s service %s %s: %s (%d of %d destinations healthy)", v.Name, s.Vip, svcLabel(s), upDown(s.Active), s.HealthyDestinations, s.InServiceDestinations)
	}
}

func logDestination(ev *eventLog, o, d *enginepb.DestinationStatus) {
	if o.InIpvs == d.InIpvs && o.Quiesced == d.Quiesced && o.Healthy == d.Healthy {
		return
	}
	var msg string
	switch {
	case d.Quiesced:
		msg = "quiesced (weight 0): " + strings.Join(d.FailingChecks, "; ")
	case d.InIpvs:
		msg = fmt.Sprintf("in service (weight %d)", d.Weight)
	case !d.Enabled:
		msg = "out of service: disabled"
	case !d.Healthy:
		msg = "out of service: " + strings.Join(d.FailingChecks, "; ")
	default:
		msg = "out of service: its service is down"
	}
	ev.add("destination", d.Name, !d.InIpvs || d.Quiesced, msg)
	glog.Infof("engine: destination %s %s", d.Name, msg)
}

func svcLabel(s *enginepb.ServiceStatus) string {
	if s.Fwmark != 0 {
		return fmt.Sprintf("FWM %d", s.Fwmark)
	}
	return fmt.Sprintf("%s/%d", s.Protocol, s.Port)
}

// haStateNow is the HA state the data plane follows now.
func (e *Engine) haStateNow() seesawpb.HAState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ht.state(e.now())
}
