package engine

import (
	"context"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// sourceDisk is the only config source in this build.
const sourceDisk = "disk"

func (e *Engine) noConfig() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lastErr != "" {
		return status.Errorf(codes.FailedPrecondition, "engine: no config loaded: %s", e.lastErr)
	}
	return status.Error(codes.FailedPrecondition, "engine: no config loaded")
}

// ClusterStatus reports the cluster from the running config and the HA state
// from HA's reports.
func (e *Engine) ClusterStatus(context.Context, *enginepb.ClusterStatusRequest) (*enginepb.ClusterStatusResponse, error) {
	cur, _ := e.current()
	if cur == nil {
		return nil, e.noConfig()
	}
	resp := &enginepb.ClusterStatusResponse{
		Version: ipc.Version,
		Site:    cur.res.Engine.ClusterName,
		HaState: e.haStateNow(),
	}
	for _, n := range cur.res.Cluster.Nodes {
		node := &enginepb.Node{
			Fqdn:            n.FQDN,
			Priority:        uint32(n.Priority),
			HaEnabled:       n.HAEnabled,
			AnycastEnabled:  n.AnycastEnabled,
			BgpEnabled:      n.BGPEnabled,
			VserversEnabled: n.VserversEnabled,
			ThisNode:        n == cur.res.ThisNode,
		}
		if n.IPv4.IsValid() {
			node.Ipv4 = n.IPv4.Addr().String()
		}
		if n.IPv6.IsValid() {
			node.Ipv6 = n.IPv6.Addr().String()
		}
		resp.Nodes = append(resp.Nodes, node)
	}
	return resp, nil
}

// ConfigStatus reports the running config and the last rejected one.
func (e *Engine) ConfigStatus(context.Context, *enginepb.ConfigStatusRequest) (*enginepb.ConfigStatusResponse, error) {
	e.mu.Lock()
	cur, lastErr, lastErrTime := e.cur, e.lastErr, e.lastErrTime
	e.mu.Unlock()
	resp := &enginepb.ConfigStatusResponse{Source: sourceDisk, LastError: lastErr}
	if lastErr != "" {
		resp.LastErrorTime = timestamppb.New(lastErrTime)
	}
	if cur == nil {
		return resp, nil
	}
	cl := cur.res.Cluster
	resp.Loaded = timestamppb.New(cur.at)
	if !cl.LastUpdated.IsZero() {
		resp.LastUpdate = timestamppb.New(cl.LastUpdated)
	}
	for _, a := range cl.Proto.GetMetadata().GetAttribute() {
		resp.Attributes = append(resp.Attributes, &enginepb.Attribute{Name: a.GetName(), Value: a.GetValue()})
	}
	resp.Warnings = slices.Clone(cl.StatusWarnings)
	for _, w := range cur.res.Warnings {
		resp.Warnings = append(resp.Warnings, w.String())
	}
	return resp, nil
}

// ConfigReload re-reads the config from disk now. A rejected config is an
// error to the caller too; the running config keeps serving.
func (e *Engine) ConfigReload(context.Context, *enginepb.ConfigReloadRequest) (*enginepb.ConfigReloadResponse, error) {
	glog.Infof("engine: config reload requested")
	if err := e.Reload(); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%v (the running config, if any, keeps serving)", err)
	}
	return &enginepb.ConfigReloadResponse{}, nil
}

// ConfigSource gets the source (empty request) or sets it; "disk" is the
// only one this build has, and setting it reloads.
func (e *Engine) ConfigSource(_ context.Context, req *enginepb.ConfigSourceRequest) (*enginepb.ConfigSourceResponse, error) {
	resp := &enginepb.ConfigSourceResponse{Source: sourceDisk, Previous: sourceDisk}
	switch req.Source {
	case "":
		return resp, nil
	case sourceDisk:
		if err := e.Reload(); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "%v (the running config, if any, keeps serving)", err)
		}
		return resp, nil
	}
	return nil, status.Errorf(codes.FailedPrecondition,
		"engine: config source %q: only the %q source exists in this build (no peer or config server yet)", req.Source, sourceDisk)
}

func (e *Engine) Vservers(context.Context, *enginepb.VserversRequest) (*enginepb.VserversResponse, error) {
	return nil, status.Error(codes.Unimplemented, "engine: Vservers: vserver state machines are not in this build")
}

func (e *Engine) Backends(context.Context, *enginepb.BackendsRequest) (*enginepb.BackendsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "engine: Backends: backend state is not in this build")
}

func (e *Engine) VLANs(context.Context, *enginepb.VLANsRequest) (*enginepb.VLANsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "engine: VLANs: VLAN state is not in this build")
}

func (e *Engine) Override(context.Context, *enginepb.OverrideRequest) (*enginepb.OverrideResponse, error) {
	return nil, status.Error(codes.Unimplemented, "engine: Override: overrides are not in this build")
}

// Failover asks HA to give up mastership.
func (e *Engine) Failover(context.Context, *enginepb.FailoverRequest) (*enginepb.FailoverResponse, error) {
	e.mu.Lock()
	s := e.ha
	e.mu.Unlock()
	if s == nil {
		return nil, status.Error(codes.FailedPrecondition, "engine: failover: no HA session (is seesaw_ha running?)")
	}
	cmd := &hapb.Command{Command: &hapb.Command_Relinquish{Relinquish: &hapb.Relinquish{Reason: "failover requested by an operator"}}}
	select {
	case s.cmds <- cmd:
	default:
		return nil, status.Error(codes.Unavailable, "engine: failover: HA has not yet taken the previous requests")
	}
	glog.Infof("engine: failover: asked HA to relinquish mastership")
	return &enginepb.FailoverResponse{Message: "asked HA to relinquish mastership"}, nil
}

// HAStatus is HA's last report, with the engine's view of the state.
func (e *Engine) HAStatus(context.Context, *enginepb.HAStatusRequest) (*hapb.Status, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := &hapb.Status{}
	if e.haStatus != nil {
		st = proto.Clone(e.haStatus).(*hapb.Status)
		st.LastUpdate = timestamppb.New(e.haLastUpdate)
	}
	st.State = e.haStateLocked()
	if e.ha == nil {
		st.Facilities = append(st.Facilities, &seesawpb.Facility{Name: "ha-session", Detail: "no HA session open (is seesaw_ha running?)"})
	}
	return st, nil
}

// defaultHAStateTimeout is Seesaw v2's: HA silent this long is UNKNOWN.
const defaultHAStateTimeout = 30 * time.Second

// haStateLocked is HA's state as the engine sees it: UNKNOWN without a
// session, or when HA has been silent longer than the HA state timeout.
func (e *Engine) haStateLocked() seesawpb.HAState {
	if e.ha == nil {
		return seesawpb.HAState_HA_STATE_UNKNOWN
	}
	timeout := defaultHAStateTimeout
	if e.cur != nil && e.cur.res.Engine.HAStateTimeout > 0 {
		timeout = e.cur.res.Engine.HAStateTimeout
	}
	if !e.haLastUpdate.IsZero() && e.cfg.Now().Sub(e.haLastUpdate) > timeout {
		return seesawpb.HAState_HA_STATE_UNKNOWN
	}
	return e.haState
}

func (e *Engine) haStateNow() seesawpb.HAState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.haStateLocked()
}

// HASession is HA's stream. The engine sends the HA config derived from the
// running config (again whenever it changes) and relinquish requests, and
// records HA's transitions and status reports. A newer session replaces an
// older one.
func (e *Engine) HASession(stream grpc.BidiStreamingServer[hapb.Report, hapb.Command]) error {
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	s := &haSession{cmds: make(chan *hapb.Command, 4), cancel: cancel}
	e.mu.Lock()
	if old := e.ha; old != nil {
		old.cancel(errSuperseded)
		glog.Warningf("engine: a new HA session replaces the open one")
	}
	e.ha = s
	// What an earlier HA reported says nothing about this one.
	e.haState = seesawpb.HAState_HA_STATE_UNKNOWN
	e.haLastUpdate = e.cfg.Now()
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

	reports, errc := ipc.RecvLoop(ctx, stream.Recv)
	var sent *hapb.Config
	for {
		cur, changed := e.current()
		if cur != nil && !proto.Equal(cur.ha, sent) {
			if err := stream.Send(&hapb.Command{Command: &hapb.Command_Config{Config: cur.ha}}); err != nil {
				return e.haEnded(peer, err)
			}
			sent = cur.ha
		}
		select {
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
		case r := <-reports:
			e.recordHA(r)
		case err := <-errc:
			return e.haEnded(peer, err)
		}
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
	e.mu.Lock()
	defer e.mu.Unlock()
	e.haLastUpdate = e.cfg.Now()
	switch r := r.Report.(type) {
	case *hapb.Report_Transition:
		t := r.Transition
		glog.Infof("engine: HA %v -> %v: %s", t.From, t.To, t.Reason)
		e.haState = t.To
		e.haTransitions = append(e.haTransitions, t)
		if len(e.haTransitions) > maxTransitions {
			e.haTransitions = e.haTransitions[len(e.haTransitions)-maxTransitions:]
		}
	case *hapb.Report_Status:
		if e.haStatus == nil || e.haStatus.State != r.Status.State {
			glog.V(1).Infof("engine: HA reports state %v", r.Status.State)
		}
		e.haStatus = r.Status
		e.haState = r.Status.State
	}
}

// HealthcheckSession is the healthcheck process's stream. The engine sends
// the full check set derived from the running config (again whenever it
// changes) and records the results.
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
		cur, changed := e.current()
		if cur != nil && !proto.Equal(cur.checks, sent) {
			if err := stream.Send(cur.checks); err != nil {
				return e.hcEnded(peer, err)
			}
			sent = cur.checks
			glog.V(1).Infof("engine: sent %d checks to healthcheck", len(cur.checks.Upsert))
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

func (e *Engine) hcEnded(peer string, err error) error {
	if errors.Is(err, io.EOF) {
		glog.Infof("engine: healthcheck session from %s closed", peer)
		return nil
	}
	glog.Warningf("engine: healthcheck session from %s ended: %v", peer, err)
	return err
}

// recordResults keeps the last result of each check.
func (e *Engine) recordResults(b *hcpb.Results) {
	if len(b.Results) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range b.Results {
		e.results[r.Id] = r
		e.nResults++
	}
}
