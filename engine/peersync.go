package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/seesawlb/seesaw/engine/config"
	"github.com/seesawlb/seesaw/engine/peer"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// The engine's side of peer sync (package peer): the view it gives the
// peer, the peer's overrides it merges, and the settings from seesaw.cfg.

// maxFailingChecks bounds the failing checks a view lists.
const maxFailingChecks = 100

func (e *Engine) peerOptions() peer.Options {
	o := e.cfg.Peer
	if o.Logf == nil {
		o.Logf = glog.Infof
	}
	if o.Now == nil {
		o.Now = e.cfg.Now
	}
	return o
}

// RunPeer runs peer sync, and failover on health over it, until ctx is
// done, following seesaw.cfg.
func (e *Engine) RunPeer(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { e.peer.Run(ctx, e.peerSettings) })
	wg.Go(func() { e.watchHealth(ctx) })
	wg.Go(func() { e.watchConns(ctx) })
	wg.Wait()
}

// watchHealth hands mastership to the backup when it sees clearly more
// healthy destinations than this master (peer.HealthDecider decides).
func (e *Engine) watchHealth(ctx context.Context) {
	policy := e.cfg.HealthFailover.WithDefaults()
	d := peer.NewHealthDecider(policy)
	t := time.NewTicker(policy.Interval)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v := peerLocal{e}.View()
		ps := e.peer.Status()
		pv := ps.View
		in := peer.HealthInput{
			Now:         e.now(),
			Master:      v.HaState == seesawpb.HAState_HA_STATE_LEADER,
			PeerBackup:  ps.Connected && pv.GetHaState() == seesawpb.HAState_HA_STATE_BACKUP,
			SameConfig:  v.ConfigDigest != "" && v.ConfigDigest == pv.GetConfigDigest(),
			Healthy:     int(v.HealthyDestinations),
			Total:       int(v.Destinations),
			PeerHealthy: int(pv.GetHealthyDestinations()),
			PeerTotal:   int(pv.GetDestinations()),
		}
		fire, why := d.Decide(in)
		e.peer.SetHealthNote(why)
		if !fire {
			if why != last && in.Master && in.PeerBackup {
				glog.V(1).Infof("engine: failover on health: %s", why)
			}
			last = why
			continue
		}
		glog.Warningf("engine: failover on health: %s: handing mastership to the backup", why)
		if msg, err := e.failoverLocal("failover on health: " + why); err != nil {
			glog.Errorf("engine: failover on health: %v", err)
		} else {
			glog.Infof("engine: failover on health: %s", msg)
		}
	}
}

// peerSettings are peer sync's settings from the running config.
func (e *Engine) peerSettings() (peer.Settings, <-chan struct{}) {
	cur, changed := e.current()
	st := peer.Settings{SSLDir: e.cfg.SSLDir, Port: e.cfg.PeerPort}
	if cur == nil {
		st.Disabled = "no config loaded"
		return st, changed
	}
	en := cur.res.Engine
	if st.Port == 0 {
		st.Port = en.SyncPort
	}
	if cur.res.ThisNode != nil {
		st.Name = cur.res.ThisNode.FQDN
	}
	for _, a := range []netip.Addr{en.Node.IPv4, en.Node.IPv6} {
		if a.IsValid() {
			st.Node = append(st.Node, a)
		}
	}
	for _, a := range []netip.Addr{en.Peer.IPv4, en.Peer.IPv6} {
		if a.IsValid() {
			st.Peer = append(st.Peer, a)
		}
	}
	if !en.Peer.IPv4.IsValid() {
		st.Disabled = fmt.Sprintf("no peer: %s sets no [cluster] peer_ipv4", en.File)
	}
	if e.cfg.PeerLocal.IsValid() && e.cfg.PeerRemote.IsValid() {
		st.Node, st.Peer, st.Disabled = []netip.Addr{e.cfg.PeerLocal}, []netip.Addr{e.cfg.PeerRemote}, ""
	}
	return st, changed
}

// clusterDigest is the config version peer sync compares.
func clusterDigest(c *config.Cluster) string {
	if c == nil || c.Proto == nil {
		return ""
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.Proto)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// setOverrideLocked records rec as the override of key: a default one
// clears it (and is kept as cleared). Hold e.mu.
func (e *Engine) setOverrideLocked(key string, rec *enginepb.OverrideRecord) {
	if rec.GetInfo().GetState() == enginepb.OverrideState_OVERRIDE_DEFAULT {
		delete(e.overrides, key)
		e.cleared[key] = rec
		return
	}
	e.overrides[key] = rec
	delete(e.cleared, key)
}

// peerLocal is the engine as peer sync sees it.
type peerLocal struct{ e *Engine }

// View is what this engine tells its peer.
func (p peerLocal) View() *enginepb.PeerView {
	e := p.e
	e.mu.Lock()
	defer e.mu.Unlock()
	v := &enginepb.PeerView{Version: ipc.Version, HaState: e.ht.state(e.now()), ConfigSource: e.sourceLocked()}
	v.IpvsConnections, v.IpvsConnectionsAt = e.fb.conns, connsTimestamp(e.fb.connsAt)
	if cur := e.cur; cur != nil {
		if cur.res.ThisNode != nil {
			v.Node = cur.res.ThisNode.FQDN
		}
		if lu := cur.res.Cluster.LastUpdated; !lu.IsZero() {
			v.ConfigLastUpdated = timestamppb.New(lu)
		}
		v.ConfigLoaded = timestamppb.New(cur.at)
		v.ConfigDigest = cur.digest
	}
	if e.plan != nil {
		for _, vs := range e.plan.Vservers {
			for _, s := range vs.Services {
				if !s.Enabled {
					continue
				}
				for _, d := range s.Destinations {
					v.Destinations++
					if d.Healthy {
						v.HealthyDestinations++
					}
				}
			}
		}
	}
	if e.model != nil {
		var failing []string
		for _, c := range e.checks.GetUpsert() {
			if r := e.results[c.Id]; r != nil && !r.Healthy {
				info := e.model.CheckInfo[c.Id]
				failing = append(failing, fmt.Sprintf("%s %s: %s", info.Backend, info.Name, r.Message))
			}
		}
		sort.Strings(failing)
		v.FailingCheckCount = uint32(len(failing))
		if len(failing) > maxFailingChecks {
			failing = failing[:maxFailingChecks]
		}
		v.FailingChecks = failing
	}
	for _, r := range sortedRecords(e.overrides) {
		v.Overrides = append(v.Overrides, proto.Clone(r).(*enginepb.OverrideRecord))
	}
	for _, r := range sortedRecords(e.cleared) {
		v.Overrides = append(v.Overrides, proto.Clone(r).(*enginepb.OverrideRecord))
	}
	return v
}

// PeerView merges the peer's overrides (the newest wins), and with the
// peer source fetches the master's config when its version differs.
func (p peerLocal) PeerView(v *enginepb.PeerView) {
	e := p.e
	e.mu.Lock()
	adopt := peer.Merge(func(k string) *enginepb.OverrideRecord {
		if r := e.overrides[k]; r != nil {
			return r
		}
		return e.cleared[k]
	}, v.Overrides)
	for _, r := range adopt {
		r = proto.Clone(r).(*enginepb.OverrideRecord)
		e.setOverrideLocked(overrideKey(r), r)
		glog.Infof("engine: override %s: %s, from the peer %s (set by %s at %s)", overrideKey(r), overrideWord(r.Info.GetState()),
			v.Node, r.Info.GetSetBy(), r.Info.GetSetAt().AsTime().UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	if len(adopt) > 0 {
		e.ovGen++
		e.saveStateLocked()
	}
	e.kickFailbackLocked() // the peer's state or count may have changed
	fetch := e.sourceLocked() == sourcePeer && v.HaState == seesawpb.HAState_HA_STATE_LEADER && v.ConfigDigest != "" &&
		(e.cur == nil || e.cur.digest != v.ConfigDigest)
	e.mu.Unlock()
	if len(adopt) > 0 {
		e.wake()
	}
	if fetch {
		e.kickSource()
	}
}

// Failover gives up mastership for the peer.
func (p peerLocal) Failover(_ context.Context, reason string) (string, error) {
	glog.Infof("engine: failover requested by the peer: %s", reason)
	return p.e.failoverLocal(reason)
}

// Config is the running config, for the peer source.
func (p peerLocal) Config() (*enginepb.PeerConfigResponse, error) {
	e := p.e
	e.mu.Lock()
	cur, st := e.cur, e.ht.state(e.now())
	e.mu.Unlock()
	if cur == nil {
		return nil, status.Error(codes.FailedPrecondition, "engine: no config loaded")
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cur.res.Cluster.Proto)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "engine: %v", err)
	}
	return &enginepb.PeerConfigResponse{HaState: st, Cluster: b}, nil
}
