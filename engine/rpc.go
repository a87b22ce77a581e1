package engine

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/user"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/seesawlb/seesaw/engine/dataplane"
	"github.com/seesawlb/seesaw/engine/source"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// The engine's RPCs for operators (CLI, ECU): thin adapters over the state
// the engine holds and the plan the loop computed last.

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
		Version:      ipc.Version,
		Site:         cur.res.Engine.ClusterName,
		HaState:      e.haStateNow(),
		Peer:         e.peer.Status(),
		AdminGroups:  e.cfg.AdminGroup,
		ReaderGroups: e.cfg.ReaderGroup,
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
	src, detail := e.sourceLocked(), e.sourceDetail
	var modelWarnings []string
	if e.model != nil {
		modelWarnings = slices.Clone(e.model.Warnings)
	}
	e.mu.Unlock()
	resp := &enginepb.ConfigStatusResponse{Source: src, SourceDetail: detail, LastError: lastErr}
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
	resp.Warnings = append(resp.Warnings, modelWarnings...)
	return resp, nil
}

// ConfigReload pulls the config from the source now. A rejected config is
// an error to the caller too; the running config keeps serving.
func (e *Engine) ConfigReload(ctx context.Context, _ *enginepb.ConfigReloadRequest) (*enginepb.ConfigReloadResponse, error) {
	glog.Infof("engine: config reload requested by %s", e.caller(ctx))
	if err := e.Reload(); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%v (the running config, if any, keeps serving)", err)
	}
	return &enginepb.ConfigReloadResponse{}, nil
}

// ConfigSource gets the source (empty request) or sets it: disk, server,
// peer or none. The choice is kept in the state file, across HA
// transitions and restarts. Setting it pulls from the new source at once;
// a failed pull is reported in reload_error, and the running config keeps
// serving.
func (e *Engine) ConfigSource(ctx context.Context, req *enginepb.ConfigSourceRequest) (*enginepb.ConfigSourceResponse, error) {
	e.mu.Lock()
	prev := e.sourceLocked()
	e.mu.Unlock()
	resp := &enginepb.ConfigSourceResponse{Source: prev, Previous: prev}
	if req.Source != "" {
		glog.Infof("engine: config source %q requested by %s", req.Source, e.caller(ctx))
	}
	if req.Source == "" {
		return resp, nil
	}
	if !source.Valid(req.Source) {
		return nil, status.Errorf(codes.InvalidArgument, "engine: config source %q: the sources are %s", req.Source, strings.Join(source.Names, ", "))
	}
	e.mu.Lock()
	e.source = req.Source
	e.saveStateLocked()
	e.mu.Unlock()
	resp.Source = req.Source
	glog.Infof("engine: config source %s (was %s)", req.Source, prev)
	if err := e.Reload(); err != nil {
		resp.ReloadError = err.Error()
	}
	return resp, nil
}

// planNow is the last plan, or an error for the caller when there is none.
func (e *Engine) planNow() (*dataplane.Plan, error) {
	e.mu.Lock()
	p := e.plan
	e.mu.Unlock()
	if p == nil {
		cur, _ := e.current()
		if cur == nil {
			return nil, e.noConfig()
		}
		return nil, status.Error(codes.Unavailable, "engine: the data plane has not been computed yet (is the NCC answering?)")
	}
	return p, nil
}

// Vservers reports every vserver (or those whose name starts with
// req.name): its state, services and destinations as the engine decided
// them, with the kernel's counters (from the NCC) where it has them.
func (e *Engine) Vservers(ctx context.Context, req *enginepb.VserversRequest) (*enginepb.VserversResponse, error) {
	p, err := e.planNow()
	if err != nil {
		return nil, err
	}
	resp := &enginepb.VserversResponse{}
	for _, v := range p.Vservers {
		if strings.HasPrefix(v.Name, req.Name) {
			resp.Vservers = append(resp.Vservers, proto.Clone(v).(*enginepb.VserverStatus))
		}
	}
	e.mu.Lock()
	for _, v := range resp.Vservers {
		if r := e.overrides["vserver "+v.Name]; r != nil {
			v.OverrideInfo = r.Info
		}
	}
	e.mu.Unlock()
	e.addStats(ctx, resp.Vservers)
	return resp, nil
}

// addStats fills in IPVS counters from the NCC. Without an answer the
// state is still worth having: a warning says why the counters are absent.
func (e *Engine) addStats(ctx context.Context, vs []*enginepb.VserverStatus) {
	if e.ncc == nil || len(vs) == 0 {
		return
	}
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := e.ncc.GetState(gctx, &nccpb.GetStateRequest{WithStats: true})
	if err != nil {
		for _, v := range vs {
			v.Warnings = append(v.Warnings, "no IPVS counters: the NCC did not answer: "+status.Convert(err).Message())
		}
		return
	}
	svcs := map[string]*nccpb.Service{}
	for _, s := range st.GetState().GetServices() {
		svcs[statsKey(s.Family, s.Protocol, s.Address, s.Port, s.Fwmark)] = s
	}
	for _, v := range vs {
		for _, ss := range v.Services {
			k := statsKey(ss.Family, ss.Protocol, ss.Vip, ss.Port, ss.Fwmark)
			ks := svcs[k]
			if ks == nil {
				continue
			}
			ss.Stats = ks.Stats
			dests := map[string]*nccpb.Destination{}
			for _, d := range ks.Destinations {
				dests[dataplane.HostPort(d.Address, d.Port)] = d
			}
			for _, d := range ss.Destinations {
				kd := dests[dataplane.HostPort(d.Address, d.Port)]
				if kd == nil {
					continue
				}
				d.Stats = kd.Stats
				d.ActiveConnections, d.InactiveConnections, d.PersistentConnections = kd.ActiveConnections, kd.InactiveConnections, kd.PersistentConnections
			}
		}
	}
}

func statsKey(f nccpb.Family, p nccpb.Protocol, addr string, port, fwmark uint32) string {
	if fwmark != 0 {
		return fmt.Sprintf("%d FWM %d", f, fwmark)
	}
	return fmt.Sprintf("%d %d %s", f, p, dataplane.HostPort(addr, port))
}

// Backends reports every backend (or those whose fqdn starts with
// req.fqdn), across the vservers that have it.
func (e *Engine) Backends(_ context.Context, req *enginepb.BackendsRequest) (*enginepb.BackendsResponse, error) {
	p, err := e.planNow()
	if err != nil {
		return nil, err
	}
	resp := &enginepb.BackendsResponse{}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range p.Backends {
		if !strings.HasPrefix(b.Fqdn, req.Fqdn) {
			continue
		}
		c := proto.Clone(b).(*enginepb.BackendStatus)
		if r := e.overrides["backend "+b.Fqdn]; r != nil {
			c.OverrideInfo = r.Info
		}
		resp.Backends = append(resp.Backends, c)
	}
	return resp, nil
}

// VLANs reports the VLAN interfaces of the config, with how many backends
// and VIPs are in each one's subnets.
func (e *Engine) VLANs(context.Context, *enginepb.VLANsRequest) (*enginepb.VLANsResponse, error) {
	p, err := e.planNow()
	if err != nil {
		return nil, err
	}
	resp := &enginepb.VLANsResponse{}
	for _, v := range p.VLANs {
		resp.Vlans = append(resp.Vlans, proto.Clone(v).(*enginepb.VLANStatus))
	}
	return resp, nil
}

// Override sets or clears (OVERRIDE_DEFAULT) an override of a vserver, a
// backend or a destination. It is applied at once and kept in the state
// file, with who set it and when. The target must exist in the running
// config: an override of a name that is not there would do nothing and
// say nothing.
func (e *Engine) Override(ctx context.Context, req *enginepb.OverrideRequest) (*enginepb.OverrideResponse, error) {
	rec := &enginepb.OverrideRecord{}
	var kind, name string
	switch t := req.Target.(type) {
	case *enginepb.OverrideRequest_Vserver:
		kind, name, rec.Target = "vserver", t.Vserver, &enginepb.OverrideRecord_Vserver{Vserver: t.Vserver}
	case *enginepb.OverrideRequest_Backend:
		kind, name, rec.Target = "backend", t.Backend, &enginepb.OverrideRecord_Backend{Backend: t.Backend}
	case *enginepb.OverrideRequest_Destination:
		kind, name, rec.Target = "destination", t.Destination, &enginepb.OverrideRecord_Destination{Destination: t.Destination}
	default:
		return nil, status.Error(codes.InvalidArgument, "engine: override: name a vserver, a backend or a destination")
	}
	if _, ok := enginepb.OverrideState_name[int32(req.State)]; !ok {
		return nil, status.Errorf(codes.InvalidArgument, "engine: override: state %d is not default, disabled, enabled or drain", req.State)
	}
	if req.State == enginepb.OverrideState_OVERRIDE_DRAIN && kind == "vserver" {
		return nil, status.Errorf(codes.InvalidArgument, "engine: override: vserver %s: drain is for backends and destinations; disable the vserver instead", name)
	}
	e.mu.Lock()
	m := e.model
	e.mu.Unlock()
	if m == nil {
		return nil, e.noConfig()
	}
	names := targetNames(m, kind)
	if !slices.Contains(names, name) {
		return nil, status.Errorf(codes.NotFound, "engine: override: no %s %q in the running config%s", kind, name, suggest(names, name))
	}
	who := e.caller(ctx)
	rec.Info = &enginepb.OverrideInfo{State: req.State, SetBy: who, SetAt: timestamppb.New(e.now())}
	key := overrideKey(rec)
	e.mu.Lock()
	prev := enginepb.OverrideState_OVERRIDE_DEFAULT
	if old := e.overrides[key]; old != nil {
		prev = old.Info.GetState()
	}
	e.setOverrideLocked(key, rec)
	e.ovGen++
	gen := e.ovGen
	e.saveStateLocked()
	e.mu.Unlock()
	e.wake()
	glog.Infof("engine: override %s %s: %s (was %s), set by %s", kind, name, overrideWord(req.State), overrideWord(prev), who)
	e.waitPlanned(ctx, gen)
	e.events.add("override", kind+" "+name, req.State == enginepb.OverrideState_OVERRIDE_DISABLED,
		fmt.Sprintf("override %s (was %s), set by %s", overrideWord(req.State), overrideWord(prev), who))
	return &enginepb.OverrideResponse{Target: kind + " " + name, Previous: prev}, nil
}

// waitPlanned waits, for a second at most, until the engine's plan takes
// overrides generation gen into account, so that what the caller reads
// next (warnings, vserver states) shows the change it just made. The
// kernel may still be catching up; a slow loop only makes the answer
// come before the plan does, never an error.
func (e *Engine) waitPlanned(ctx context.Context, gen uint64) {
	deadline := time.NewTimer(time.Second)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		if e.planOvGen >= gen {
			e.mu.Unlock()
			return
		}
		if e.planned == nil {
			e.planned = make(chan struct{})
		}
		ch := e.planned
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		}
	}
}

func overrideWord(s enginepb.OverrideState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "OVERRIDE_"))
}

// targetNames are the names of one kind in the model.
func targetNames(m *dataplane.Model, kind string) []string {
	var out []string
	switch kind {
	case "vserver":
		for _, v := range m.Vservers {
			out = append(out, v.Config.Name)
		}
	case "backend":
		for _, b := range m.Backends {
			out = append(out, b.FQDN)
		}
	case "destination":
		for _, v := range m.Vservers {
			for _, s := range v.Services {
				for _, d := range s.Destinations {
					out = append(out, d.Name)
				}
			}
		}
	}
	return out
}

// suggest names up to three of names that start like name.
func suggest(names []string, name string) string {
	var close []string
	for n := len(name); n > 0 && len(close) == 0; n-- {
		for _, c := range names {
			if strings.HasPrefix(c, name[:n]) && len(close) < 3 {
				close = append(close, c)
			}
		}
		if n < len(name)-8 {
			break
		}
	}
	if len(close) == 0 {
		return ""
	}
	return " (did you mean " + strings.Join(close, ", ") + "?)"
}

// Overrides lists the overrides in force.
func (e *Engine) Overrides(context.Context, *enginepb.OverridesRequest) (*enginepb.OverridesResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	resp := &enginepb.OverridesResponse{}
	keys := make([]string, 0, len(e.overrides))
	for k := range e.overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		resp.Overrides = append(resp.Overrides, proto.Clone(e.overrides[k]).(*enginepb.OverrideRecord))
	}
	return resp, nil
}

// Failover asks HA to give up mastership. On the backup, the request goes
// to the master over peer sync.
func (e *Engine) Failover(ctx context.Context, _ *enginepb.FailoverRequest) (*enginepb.FailoverResponse, error) {
	glog.Infof("engine: failover requested by %s", e.caller(ctx))
	e.mu.Lock()
	s := e.ha
	e.mu.Unlock()
	if s == nil {
		return nil, status.Error(codes.FailedPrecondition, "engine: failover: no HA session (is seesaw_ha running?)")
	}
	if st := e.haStateNow(); st != seesawpb.HAState_HA_STATE_LEADER {
		msg, err := e.peer.Failover(ctx, "failover requested by an operator on the peer")
		if err != nil {
			return nil, status.Errorf(status.Code(err), "engine: failover: this node is %v, not the master, and the master could not be asked: %s",
				st, status.Convert(err).Message())
		}
		glog.Infof("engine: failover: asked the peer: %s", msg)
		return &enginepb.FailoverResponse{Message: "the peer (master) " + msg}, nil
	}
	msg, err := e.failoverLocal("failover requested by an operator")
	if err != nil {
		return nil, err
	}
	return &enginepb.FailoverResponse{Message: msg}, nil
}

// failoverLocal asks this node's HA to give up mastership; an error if this
// node is not the master.
func (e *Engine) failoverLocal(reason string) (string, error) {
	e.mu.Lock()
	s := e.ha
	state := e.ht.state(e.now())
	e.mu.Unlock()
	if state != seesawpb.HAState_HA_STATE_LEADER {
		return "", status.Errorf(codes.FailedPrecondition, "engine: failover: this node is %v, not the master", state)
	}
	if s == nil {
		return "", status.Error(codes.FailedPrecondition, "engine: failover: no HA session (is seesaw_ha running?)")
	}
	cmd := &hapb.Command{Command: &hapb.Command_Relinquish{Relinquish: &hapb.Relinquish{Reason: reason}}}
	select {
	case s.cmds <- cmd:
	default:
		return "", status.Error(codes.Unavailable, "engine: failover: HA has not yet taken the previous requests")
	}
	glog.Infof("engine: failover: asked HA to relinquish mastership (%s)", reason)
	return "asked HA to relinquish mastership", nil
}

// Peer reports peer sync and the peer's last view.
func (e *Engine) Peer(context.Context, *enginepb.PeerStatusRequest) (*enginepb.PeerStatus, error) {
	return e.peer.Status(), nil
}

// HAStatus is HA's last report, with the engine's view of the state.
func (e *Engine) HAStatus(context.Context, *enginepb.HAStatusRequest) (*hapb.Status, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := &hapb.Status{}
	if e.haStatus != nil {
		st = proto.Clone(e.haStatus).(*hapb.Status)
	}
	st.State = e.ht.state(e.now())
	if !e.ht.lastReport.IsZero() {
		st.LastUpdate = timestamppb.New(e.ht.lastReport)
	}
	if e.ha == nil {
		st.Facilities = append(st.Facilities, &seesawpb.Facility{Name: "ha-session", Detail: "no HA session open (is seesaw_ha running?)"})
	}
	if f := e.failbackFacilityLocked(); f != nil {
		st.Facilities = append(st.Facilities, f)
	}
	return st, nil
}

// Checks reports the health checks: each one's Seesaw name, what it
// probes, the destinations its result decides, its state, and with
// with_history the history the healthcheck process keeps.
func (e *Engine) Checks(ctx context.Context, req *enginepb.ChecksRequest) (*enginepb.ChecksResponse, error) {
	e.mu.Lock()
	m, checks := e.model, e.checks
	results := map[uint64]*hcpb.Result{}
	if m != nil {
		for _, c := range checks.GetUpsert() {
			if r := e.results[c.Id]; r != nil {
				results[c.Id] = r
			}
		}
	}
	e.mu.Unlock()
	if m == nil {
		return nil, e.noConfig()
	}
	resp := &enginepb.ChecksResponse{}
	byID := map[uint64]*enginepb.CheckView{}
	var ids []uint64
	for _, c := range checks.GetUpsert() {
		info := m.CheckInfo[c.Id]
		if req.Vserver != "" && !slices.ContainsFunc(info.Vservers, func(v string) bool { return strings.HasPrefix(v, req.Vserver) }) ||
			!strings.HasPrefix(info.Backend, req.Backend) {
			continue
		}
		cv := &enginepb.CheckView{Name: info.Name, Check: c, Destinations: info.Destinations, Backend: info.Backend}
		r := results[c.Id]
		if r != nil {
			cv.Known, cv.Healthy, cv.Last = true, r.Healthy, r
		}
		if req.Brief {
			cv.Check, cv.Destinations = &hcpb.Check{Id: c.Id, Address: c.Address, Target: c.Target}, nil
			if r != nil {
				cv.Last = &hcpb.Result{Time: r.Time, Duration: r.Duration}
			}
		}
		resp.Checks = append(resp.Checks, cv)
		byID[c.Id] = cv
		ids = append(ids, c.Id)
	}
	if req.WithHistory && len(ids) > 0 {
		if e.hc == nil {
			for _, cv := range resp.Checks {
				cv.Note = "no history: the engine has no healthcheck socket (-healthcheck_socket)"
			}
		} else {
			lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			lr, err := e.hc.ListChecks(lctx, &hcpb.ListChecksRequest{Ids: ids})
			cancel()
			if err != nil {
				for _, cv := range resp.Checks {
					cv.Note = "no history: the healthcheck process did not answer: " + status.Convert(err).Message()
				}
			}
			for _, cs := range lr.GetChecks() {
				if cv := byID[cs.GetCheck().GetId()]; cv != nil {
					cv.History, cv.Successes, cv.Failures = cs.History, cs.Successes, cs.Failures
				}
			}
		}
	}
	sort.SliceStable(resp.Checks, func(i, j int) bool {
		a, b := resp.Checks[i], resp.Checks[j]
		if a.Backend != b.Backend {
			return a.Backend < b.Backend
		}
		return a.Name < b.Name
	})
	return resp, nil
}

// Events lists the engine's recent events, oldest first.
func (e *Engine) Events(_ context.Context, req *enginepb.EventsRequest) (*enginepb.EventsResponse, error) {
	evs, next := e.events.since(req.After)
	return &enginepb.EventsResponse{Events: evs, NextSeq: next}, nil
}

// caller names who is calling, for the log line every write leaves and
// the override's set_by: the local user the kernel reports, or, for a call
// a trusted relay (the ECU's remote control) forwards, the name the relay
// gives (a client certificate's) and the relay.
func (e *Engine) caller(ctx context.Context) string {
	if who, relay, ok := ipc.RelayedCaller(ctx, e.trustedRelay); ok {
		return fmt.Sprintf("%s (remote control, through %s)", who, localName(relay))
	}
	c, ok := ipc.CredFromContext(ctx)
	if !ok {
		return "unknown"
	}
	return localName(c)
}

// trustedRelay says whether c may name the caller of its calls.
func (e *Engine) trustedRelay(c ipc.Cred) bool {
	if e.cfg.RelayUIDs == nil {
		return c.UID == uint32(os.Geteuid())
	}
	return slices.Contains(e.cfg.RelayUIDs, c.UID)
}

// localName is "alice (uid 1000, pid 42)".
func localName(c ipc.Cred) string {
	name := "uid " + strconv.FormatUint(uint64(c.UID), 10)
	if u, err := user.LookupId(strconv.FormatUint(uint64(c.UID), 10)); err == nil {
		name = u.Username
	}
	return fmt.Sprintf("%s (uid %d, pid %d)", name, c.UID, c.PID)
}

// SetComponent gives the engine the status service of another daemon
// (the NCC, the healthcheck process), which Versions asks.
func (e *Engine) SetComponent(name string, c seesawpb.ComponentClient) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.components == nil {
		e.components = map[string]seesawpb.ComponentClient{}
	}
	e.components[name] = c
}

// Versions reports the engine's own status (version, pid, start time) and
// that of each daemon it talks to, asked now.
func (e *Engine) Versions(ctx context.Context, _ *enginepb.VersionsRequest) (*enginepb.VersionsResponse, error) {
	own, err := e.comp.Status(ctx, &seesawpb.StatusRequest{})
	if err != nil {
		return nil, err
	}
	resp := &enginepb.VersionsResponse{Components: []*seesawpb.ComponentStatus{own}}
	e.mu.Lock()
	names := slices.Sorted(maps.Keys(e.components))
	clients := maps.Clone(e.components)
	e.mu.Unlock()
	for _, n := range names {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := clients[n].Status(cctx, &seesawpb.StatusRequest{})
		cancel()
		if err != nil {
			resp.Unreachable = append(resp.Unreachable, n+": "+status.Convert(err).Message())
			continue
		}
		resp.Components = append(resp.Components, st)
	}
	return resp, nil
}
