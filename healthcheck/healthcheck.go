// Package healthcheck is the health-checking daemon: it runs the checks the
// engine asks for against the backends and streams the results back.
//
// This build is the skeleton: it keeps a HealthcheckSession open to the
// engine (reconnecting with backoff when it breaks), holds the check set the
// engine sends, and lists it on its own socket. No checker runs yet; the
// status says so, and no result is ever invented.
package healthcheck

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

const (
	// DefaultSocket is where healthcheck serves its status.
	DefaultSocket = "/var/run/seesaw/healthcheck/healthcheck.sock"
	// DefaultEngineSocket is where healthcheck finds the engine.
	DefaultEngineSocket = "/var/run/seesaw/engine/engine.sock"
)

// noChecker is what this build does not do.
const noChecker = "no checker runs in this build: the checks from the engine are held and listed, never run, and no results are sent"

// Config is what healthcheck runs with.
type Config struct {
	Socket       string
	EngineSocket string
	// RetryMin and RetryMax bound the wait between attempts to reopen a
	// broken engine session (defaults 100ms and 5s).
	RetryMin, RetryMax time.Duration
}

func (c *Config) setDefaults() {
	if c.Socket == "" {
		c.Socket = DefaultSocket
	}
	if c.EngineSocket == "" {
		c.EngineSocket = DefaultEngineSocket
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(5*time.Second, c.RetryMin)
	}
}

// Set is the checks the engine asked for, by id.
type Set struct {
	mu     sync.Mutex
	checks map[uint64]*hcpb.Check
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{checks: map[uint64]*hcpb.Check{}} }

// Apply applies one CheckSet message: a full set replaces everything held,
// otherwise upserts and removals change it in place. It returns the number of
// checks held afterwards.
func (s *Set) Apply(cs *hcpb.CheckSet) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs.Full {
		clear(s.checks)
	}
	for _, c := range cs.Upsert {
		s.checks[c.Id] = c
	}
	for _, id := range cs.Remove {
		delete(s.checks, id)
	}
	return len(s.checks)
}

// List returns the checks held, ordered by id.
func (s *Set) List() []*hcpb.Check {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*hcpb.Check, 0, len(s.checks))
	for _, id := range slices.Sorted(maps.Keys(s.checks)) {
		out = append(out, s.checks[id])
	}
	return out
}

// Len is the number of checks held.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.checks)
}

// server answers the Healthcheck service.
type server struct {
	hcpb.UnimplementedHealthcheckServer
	set *Set
}

// ListChecks lists the checks held. Nothing has run, so none has a result
// and none is claimed healthy.
func (s server) ListChecks(context.Context, *hcpb.ListChecksRequest) (*hcpb.ListChecksResponse, error) {
	resp := &hcpb.ListChecksResponse{}
	for _, c := range s.set.List() {
		resp.Checks = append(resp.Checks, &hcpb.CheckStatus{Check: c})
	}
	return resp, nil
}

// Run serves healthcheck until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	comp := ipc.NewComponent("healthcheck")
	comp.SetFacility("checker", false, noChecker)
	comp.SetFacility("engine", false, "not connected yet to "+cfg.EngineSocket)
	comp.SetDetail("socket", cfg.Socket)
	comp.SetDetail("engine_socket", cfg.EngineSocket)
	set := NewSet()
	comp.SetHook(func(st *seesawpb.ComponentStatus) { st.Details["checks"] = strconv.Itoa(set.Len()) })

	srv, err := ipc.NewServer(ipc.ServerOptions{
		Path: cfg.Socket,
		// Status only: any local user who can reach the socket may read it.
		DirMode:    0o755,
		SocketMode: 0o666,
		Policy:     ipc.Policy{Read: ipc.Rule{Anyone: true}},
		Logf:       glog.Warningf,
	})
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	hcpb.RegisterHealthcheckServer(srv, server{set: set})
	seesawpb.RegisterComponentServer(srv, comp)
	cc, err := ipc.Dial(cfg.EngineSocket, ipc.DialOptions{MaxBackoff: cfg.RetryMax})
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer cc.Close()
	glog.Infof("healthcheck: serving on %s; engine at %s; %s", cfg.Socket, cfg.EngineSocket, noChecker)

	var wg sync.WaitGroup
	wg.Go(func() { engineLoop(ctx, cc, cfg, comp, set) })
	err = srv.Serve(ctx, 2*time.Second)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	glog.Infof("healthcheck: stopped")
	return nil
}

// engineLoop keeps a session with the engine open until ctx is done. The
// checks held survive a broken session: when the engine comes back it sends
// a full set, which replaces them.
func engineLoop(ctx context.Context, cc *grpc.ClientConn, cfg Config, comp *ipc.Component, set *Set) {
	retry := cfg.RetryMin
	for ctx.Err() == nil {
		established, err := session(ctx, cc, cfg, comp, set)
		if ctx.Err() != nil {
			return
		}
		if established {
			retry = cfg.RetryMin
		}
		comp.SetFacility("engine", false, fmt.Sprintf("session with the engine broke: %v; reconnecting", err))
		glog.Warningf("healthcheck: engine session: %v; retrying in %v", err, retry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, cfg.RetryMax)
	}
}

// session runs one HealthcheckSession stream until it breaks.
func session(ctx context.Context, cc *grpc.ClientConn, cfg Config, comp *ipc.Component, set *Set) (established bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := enginepb.NewEngineClient(cc).HealthcheckSession(sctx, grpc.WaitForReady(true))
	if err != nil {
		return false, fmt.Errorf("open HealthcheckSession: %w", err)
	}
	// An empty batch opens the conversation; the engine ignores empty batches.
	if err := stream.Send(&hcpb.Results{}); err != nil {
		return false, fmt.Errorf("send: %w", err)
	}
	for {
		cs, err := stream.Recv()
		if err != nil {
			return established, fmt.Errorf("receive: %w", err)
		}
		if !established {
			established = true
			comp.SetFacility("engine", true, "HealthcheckSession open to "+cfg.EngineSocket)
			glog.Infof("healthcheck: engine session established")
		}
		n := set.Apply(cs)
		glog.Infof("healthcheck: check set from engine (full=%v, %d upserts, %d removals): holding %d checks, running none",
			cs.Full, len(cs.Upsert), len(cs.Remove), n)
	}
}
