package ecu

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
	wdpb "github.com/seesawlb/seesaw/proto/watchdog"
)

// snapshot is everything the page, the JSON API and /metrics show, read
// from the engine (and the other daemons) at one moment. A snapshot is
// never changed once published: readers share it without locks.
type snapshot struct {
	Taken time.Time // when the engine's parts were read
	// Stale is set when the engine did not answer the last attempt: the
	// engine's parts are then those of the last snapshot that had them,
	// and EngineErr says why.
	Stale bool
	// Partial is set on a snapshot read for /metrics alone: it lacks the
	// parts only the page and the API show (Backends, Events), and its
	// Checks are brief (no config, destinations or result message).
	Partial   bool
	EngineErr string
	Tried     time.Time // when the engine was last asked

	Cluster  *enginepb.ClusterStatusResponse
	HA       *hapb.Status
	Config   *enginepb.ConfigStatusResponse
	Vservers []*enginepb.VserverStatus
	Backends []*enginepb.BackendStatus
	Checks   []*enginepb.CheckView
	Events   []*enginepb.Event
	// DualMasterAt is when the ECU last saw HA's dual-master counter
	// grow (zero: not since the ECU started): the page's red banner is
	// for a recent one, not for one long healed.
	DualMasterAt time.Time

	// Components are the daemons' own status by name, the ECU's included;
	// ComponentErrs those that did not answer.
	Components    map[string]*seesawpb.ComponentStatus
	ComponentErrs map[string]string
	Watchdog      *wdpb.ServicesResponse
	WatchdogErr   string
	// CheckRuns are the healthcheck process's counts of each check's
	// runs, by check id (nil without its socket or answer).
	CheckRuns map[uint64]checkRuns

	// Runtime are the Go runtime and process figures of each daemon that
	// answered seesaw.Component/Runtime, the ECU's own included.
	Runtime map[string]*seesawpb.RuntimeStats
}

// checkRuns counts one check's runs since the healthcheck process started.
type checkRuns struct{ successes, failures uint64 }

// hasEngine reports whether the snapshot holds the engine's parts at all.
func (s *snapshot) hasEngine() bool { return s != nil && s.Cluster != nil }

// snapshots reads snapshots and shares them: requests arriving while one
// is being read wait for it, and requests within maxAge of the last one
// get it, so that the engine's load does not grow with the number of
// clients and a slow engine holds up no more than one read.
type snapshots struct {
	fetch func(ctx context.Context, prev *snapshot) *snapshot
	// fetchPartial, when set, reads a Partial snapshot, for /metrics.
	fetchPartial func(ctx context.Context, prev *snapshot) *snapshot
	maxAge       time.Duration
	now          func() time.Time

	mu           sync.Mutex
	last         *snapshot
	inflight     chan struct{} // closed when the read under way ends
	inflightFull bool          // the read under way is not Partial
}

// get returns a whole snapshot at most maxAge old, reading a new one when
// needed. When ctx ends first it returns the last one (possibly nil).
func (s *snapshots) get(ctx context.Context) *snapshot { return s.getFor(ctx, true) }

// getPartial is get for /metrics: a Partial snapshot will do. A
// Prometheus scraping every 15 s or more reads the engine at every
// scrape: leaving out what /metrics does not show spares the ECU and the
// engine a tenth of their work (at 1,000 vservers × 10 backends).
func (s *snapshots) getPartial(ctx context.Context) *snapshot {
	return s.getFor(ctx, s.fetchPartial == nil)
}

func (s *snapshots) getFor(ctx context.Context, full bool) *snapshot {
	s.mu.Lock()
	for {
		if s.last != nil && s.now().Sub(s.last.Tried) < s.maxAge && (!full || !s.last.Partial) {
			defer s.mu.Unlock()
			return s.last
		}
		if s.inflight == nil || !full || s.inflightFull {
			break
		}
		// A read for /metrics is under way and this needs more: wait for
		// it, then read the rest if it is still wanted.
		wait := s.inflight
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.last
		}
		s.mu.Lock()
	}
	wait := s.inflight
	if wait == nil {
		wait = make(chan struct{})
		s.inflight, s.inflightFull = wait, full
		prev := s.last
		fetch := s.fetch
		if !full {
			fetch = s.fetchPartial
		}
		go func() {
			// The read is not tied to one client's request: a client
			// that goes away does not spoil it for the others.
			snap := fetch(context.Background(), prev)
			s.mu.Lock()
			s.last, s.inflight = snap, nil
			s.mu.Unlock()
			close(wait)
		}()
	}
	s.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// peek returns the last snapshot without reading a new one.
func (s *snapshots) peek() *snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// fetchSnapshot reads a snapshot: the engine's RPCs and every daemon's
// status in parallel, all bounded by the snapshot timeout.
func (e *ecu) fetchSnapshot(ctx context.Context, prev *snapshot) *snapshot {
	return e.fetchSnapshotParts(ctx, prev, true)
}

// fetchPartialSnapshot reads a Partial snapshot, for /metrics.
func (e *ecu) fetchPartialSnapshot(ctx context.Context, prev *snapshot) *snapshot {
	return e.fetchSnapshotParts(ctx, prev, false)
}

func (e *ecu) fetchSnapshotParts(ctx context.Context, prev *snapshot, full bool) *snapshot {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(e.cfg.SnapshotTimeout, e.cfg.CallTimeout))
	defer cancel()
	now := e.cfg.Now()
	s := &snapshot{Tried: now, Taken: now, Partial: !full, Components: map[string]*seesawpb.ComponentStatus{}, ComponentErrs: map[string]string{},
		Runtime: map[string]*seesawpb.RuntimeStats{}}
	eng := enginepb.NewEngineClient(e.engine)

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	fail := func(what string, err error) {
		mu.Lock()
		errs = append(errs, fmt.Sprintf("%s: %v", what, err))
		mu.Unlock()
	}
	wg.Go(func() {
		r, err := eng.ClusterStatus(ctx, &enginepb.ClusterStatusRequest{})
		if err != nil {
			fail("ClusterStatus", err)
		}
		s.Cluster = r
	})
	wg.Go(func() {
		r, err := eng.HAStatus(ctx, &enginepb.HAStatusRequest{})
		if err != nil {
			fail("HAStatus", err)
		}
		s.HA = r
	})
	wg.Go(func() {
		r, err := eng.ConfigStatus(ctx, &enginepb.ConfigStatusRequest{})
		if err != nil {
			fail("ConfigStatus", err)
		}
		s.Config = r
	})
	// Without a config the engine answers FailedPrecondition to the
	// config's parts: that is an empty list, not an engine away.
	noConfig := func(err error) bool { return codeOf(err) == "FailedPrecondition" }
	wg.Go(func() {
		r, err := eng.Vservers(ctx, &enginepb.VserversRequest{})
		if err != nil && !noConfig(err) {
			fail("Vservers", err)
		}
		s.Vservers = r.GetVservers()
	})
	if full {
		wg.Go(func() {
			r, err := eng.Backends(ctx, &enginepb.BackendsRequest{})
			if err != nil && !noConfig(err) {
				fail("Backends", err)
			}
			s.Backends = r.GetBackends()
		})
	}
	wg.Go(func() {
		// /metrics needs only the checks' state and last timings.
		r, err := eng.Checks(ctx, &enginepb.ChecksRequest{Brief: !full})
		if err != nil && !noConfig(err) {
			fail("Checks", err)
		}
		s.Checks = r.GetChecks()
	})
	if full {
		wg.Go(func() {
			r, err := eng.Events(ctx, &enginepb.EventsRequest{})
			if err != nil && codeOf(err) != "Unimplemented" {
				fail("Events", err)
			}
			s.Events = r.GetEvents()
		})
	}
	for _, name := range e.names {
		wg.Go(func() {
			st, err := seesawpb.NewComponentClient(e.conns[name]).Status(ctx, &seesawpb.StatusRequest{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.ComponentErrs[name] = err.Error()
				return
			}
			s.Components[name] = st
		})
		wg.Go(func() {
			if rt := e.fetchRuntime(ctx, name); rt != nil {
				mu.Lock()
				defer mu.Unlock()
				s.Runtime[name] = rt
			}
		})
	}
	if hc := e.conns["healthcheck"]; hc != nil {
		wg.Go(func() {
			r, err := hcpb.NewHealthcheckClient(hc).ListChecks(ctx, &hcpb.ListChecksRequest{OmitHistory: true, CountsOnly: true})
			if err != nil {
				return // the daemon's status says why
			}
			runs := make(map[uint64]checkRuns, len(r.Checks))
			for _, c := range r.Checks {
				runs[c.GetCheck().GetId()] = checkRuns{c.Successes, c.Failures}
			}
			s.CheckRuns = runs
		})
	}
	if wd := e.conns["watchdog"]; wd != nil {
		wg.Go(func() {
			r, err := wdpb.NewWatchdogClient(wd).Services(ctx, &wdpb.ServicesRequest{})
			if err != nil {
				s.WatchdogErr = err.Error()
				return
			}
			s.Watchdog = r
		})
	}
	wg.Wait()
	s.Components["ecu"] = e.comp.Snapshot()
	s.Runtime["ecu"] = ipc.ReadRuntime()

	if len(errs) > 0 {
		sort.Strings(errs)
		s.Stale, s.EngineErr = true, errs[0]
		if len(errs) > 1 {
			s.EngineErr += fmt.Sprintf(" (and %d more)", len(errs)-1)
		}
		// Keep showing what was last known of the engine. That is all
		// there is to show until the engine answers: the snapshot is not
		// Partial, whatever parts it lacks, so that requests within
		// maxAge share it rather than asking a silent engine again.
		s.Partial = false
		s.Taken = time.Time{}
		s.Cluster, s.HA, s.Config, s.Vservers, s.Backends, s.Checks, s.Events = nil, nil, nil, nil, nil, nil, nil
		if prev != nil {
			s.Taken = prev.Taken
			s.Cluster, s.HA, s.Config, s.Vservers, s.Backends, s.Checks, s.Events =
				prev.Cluster, prev.HA, prev.Config, prev.Vservers, prev.Backends, prev.Checks, prev.Events
		}
		if e.comp.SetFacility("engine", false, "engine at "+e.cfg.EngineSocket+" does not answer: "+s.EngineErr) {
			glogWarningf("ecu: engine does not answer: %s", s.EngineErr)
		}
	} else if e.comp.SetFacility("engine", true, "engine answers at "+e.cfg.EngineSocket) {
		glogInfof("ecu: engine answers")
	}
	if prev != nil {
		s.DualMasterAt = prev.DualMasterAt
		if prev.HA != nil && s.HA.GetDualMaster() > prev.HA.GetDualMaster() {
			s.DualMasterAt = now
		}
	}
	return s
}
