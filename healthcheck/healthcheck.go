// Package healthcheck is the health-checking daemon: it runs the checks the
// engine asks for against the backends and streams the results back.
//
// The engine sends its check set over a HealthcheckSession stream (a full
// set, then changes); a Manager runs every check on its own schedule; each
// transition goes back to the engine within about BatchDelay, batched, and
// the whole state goes back on every new session and every ResyncInterval.
// Checks keep running while the engine is away, and what changed meanwhile
// reaches it in the resync when it returns.
//
// The checkers (ICMP_PING, TCP, TCP_TLS, UDP, HTTP, HTTPS, DNS, RADIUS; one
// file each) follow Seesaw v2's cluster.pb semantics. DSR and TUN checks
// go to the VIP with SO_MARK set to the check's fwmark. Plain TCP and HTTP
// checks, the bulk at scale, run on I/O loops (one epoll goroutine per
// processor, which also schedules) instead of a goroutine each; see
// loop_linux.go. Any checker can also run once from the command line: see
// CheckCommand.
package healthcheck

import (
	"context"
	"fmt"
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

var (
	// DefaultSocket is where healthcheck serves its status.
	DefaultSocket = ipc.DefaultSocket("healthcheck")
	// DefaultEngineSocket is where healthcheck finds the engine.
	DefaultEngineSocket = ipc.DefaultSocket("engine")
)

// Config is what healthcheck runs with.
type Config struct {
	Socket       string
	EngineSocket string
	// RetryMin and RetryMax bound the wait between attempts to reopen a
	// broken engine session (defaults 100ms and 5s).
	RetryMin, RetryMax time.Duration
	// BatchDelay is how long a transition may wait for others to share its
	// batch (default 50ms); BatchSize caps a batch (default 500 results).
	BatchDelay time.Duration
	BatchSize  int
	// ResyncInterval is how often every check's latest result is sent
	// again (default 15s, Seesaw v2's notify interval).
	ResyncInterval time.Duration
	// History is how many recent results each check keeps (default 10).
	History int
	// DryRun reports every check healthy and sends no probe.
	DryRun bool
	// Env is shared by the checkers (default NewEnv()).
	Env *Env
	// NewChecker builds checkers (default NewChecker); tests replace it.
	NewChecker func(*hcpb.Check, *Env) (Checker, error)
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
	if c.BatchDelay <= 0 {
		c.BatchDelay = 50 * time.Millisecond
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = 15 * time.Second
	}
}

// maxCheckSet is the largest CheckSet message accepted from the engine:
// room for a few hundred thousand checks in one full set, well past gRPC's
// 4 MiB default (about 30,000 checks).
const maxCheckSet = 256 << 20

// server answers the Healthcheck service.
type server struct {
	hcpb.UnimplementedHealthcheckServer
	m *Manager
}

// ListChecks lists the checks with their state and history.
func (s server) ListChecks(_ context.Context, req *hcpb.ListChecksRequest) (*hcpb.ListChecksResponse, error) {
	return s.m.List(req), nil
}

// Run serves healthcheck until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	env := cfg.Env
	if env == nil {
		env = NewEnv()
		defer env.Close()
	}
	ob := newOutbox()
	m := NewManager(ManagerOptions{Env: env, History: cfg.History, Notify: ob.push, NewChecker: cfg.NewChecker, DryRun: cfg.DryRun})
	defer m.Stop()

	comp := ipc.NewComponent("healthcheck")
	if cfg.DryRun {
		// Chosen by the operator, so not a fault; but say so everywhere.
		comp.SetFacility("checker", true, "dry run: no check is sent, every check is reported healthy")
		comp.SetWarnings("dry run (-dry_run): backends are not checked; every check is reported healthy")
	} else {
		comp.SetFacility("checker", true, "running the engine's checks")
	}
	comp.SetFacility("engine", false, "not connected yet to "+cfg.EngineSocket)
	comp.SetDetail("socket", cfg.Socket)
	comp.SetDetail("engine_socket", cfg.EngineSocket)
	comp.SetHook(func(st *seesawpb.ComponentStatus) {
		checks, probes := m.Len()
		s := m.Stats()
		st.Details["checks"] = strconv.Itoa(checks)
		st.Details["probes"] = strconv.Itoa(probes)
		st.Details["runs"] = strconv.FormatUint(s.Runs, 10)
		st.Details["failed_runs"] = strconv.FormatUint(s.Failures, 10)
		st.Details["skipped_slots"] = strconv.FormatUint(s.Skipped, 10)
		st.Details["in_flight"] = strconv.FormatInt(s.InFlight, 10)
		st.Details["lateness_p99"] = s.Lateness.Quantile(0.99).String()
		st.Details["results_pending"] = strconv.Itoa(ob.len())
	})

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
	hcpb.RegisterHealthcheckServer(srv, server{m: m})
	seesawpb.RegisterComponentServer(srv, comp)
	cc, err := ipc.Dial(cfg.EngineSocket, ipc.DialOptions{MaxBackoff: cfg.RetryMax})
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer cc.Close()
	glog.Infof("healthcheck: serving on %s; engine at %s", cfg.Socket, cfg.EngineSocket)

	var wg sync.WaitGroup
	wg.Go(func() { engineLoop(ctx, cc, cfg, comp, m, ob) })
	err = srv.Serve(ctx, 2*time.Second)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	glog.Infof("healthcheck: stopped")
	return nil
}

// engineLoop keeps a session with the engine open until ctx is done. The
// checks keep running while it is broken: the engine's next full set keeps
// those it still wants, with their state.
func engineLoop(ctx context.Context, cc *grpc.ClientConn, cfg Config, comp *ipc.Component, m *Manager, ob *outbox) {
	retry := cfg.RetryMin
	for ctx.Err() == nil {
		established, err := session(ctx, cc, cfg, comp, m, ob)
		if ctx.Err() != nil {
			return
		}
		if established {
			retry = cfg.RetryMin
		}
		comp.SetFacility("engine", false, fmt.Sprintf("session with the engine broke: %v; reconnecting (checks keep running)", err))
		glog.Warningf("healthcheck: engine session: %v; retrying in %v", err, retry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, cfg.RetryMax)
	}
}

// session runs one HealthcheckSession stream until it breaks. It applies
// the check sets the engine sends; after the first it sends every check's
// latest result (the resync), then transitions in batches and a resync
// every ResyncInterval. Only this goroutine sends on the stream.
func session(ctx context.Context, cc *grpc.ClientConn, cfg Config, comp *ipc.Component, m *Manager, ob *outbox) (established bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := enginepb.NewEngineClient(cc).HealthcheckSession(sctx, grpc.WaitForReady(true), grpc.MaxCallRecvMsgSize(maxCheckSet))
	if err != nil {
		return false, fmt.Errorf("open HealthcheckSession: %w", err)
	}
	// An empty batch opens the conversation; the engine ignores empty batches.
	if err := stream.Send(&hcpb.Results{}); err != nil {
		return false, fmt.Errorf("send: %w", err)
	}
	sets, errc := ipc.RecvLoop(sctx, stream.Recv)
	resync := time.NewTicker(cfg.ResyncInterval)
	defer resync.Stop()
	flush := time.NewTimer(0)
	<-flush.C
	flushArmed := false

	send := func(rs []*hcpb.Result) error {
		for len(rs) > 0 {
			n := min(len(rs), cfg.BatchSize)
			if err := stream.Send(&hcpb.Results{Results: rs[:n]}); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			rs = rs[n:]
		}
		return nil
	}
	fullSync := func() error {
		// Clearing first means a transition racing with the snapshot is
		// sent twice at worst, never lost.
		ob.clear()
		rs := m.Results()
		glog.V(1).Infof("healthcheck: resync: sending %d results", len(rs))
		return send(rs)
	}
	for {
		select {
		case <-ctx.Done():
			return established, ctx.Err()
		case err := <-errc:
			return established, fmt.Errorf("receive: %w", err)
		case cs := <-sets:
			m.Apply(cs)
			checks, probes := m.Len()
			glog.Infof("healthcheck: check set from engine (full=%v, %d upserts, %d removals): running %d checks as %d probes",
				cs.Full, len(cs.Upsert), len(cs.Remove), checks, probes)
			if !established {
				established = true
				comp.SetFacility("engine", true, "HealthcheckSession open to "+cfg.EngineSocket)
				glog.Infof("healthcheck: engine session established")
				if err := fullSync(); err != nil {
					return established, err
				}
			}
		case <-ob.wake:
			if !established {
				continue // the resync after the first check set sends these
			}
			if ob.len() >= cfg.BatchSize {
				if err := send(ob.take(ob.len())); err != nil {
					return established, err
				}
			} else if !flushArmed {
				flush.Reset(cfg.BatchDelay)
				flushArmed = true
			}
		case <-flush.C:
			flushArmed = false
			if err := send(ob.take(ob.len())); err != nil {
				return established, err
			}
		case <-resync.C:
			if established {
				if err := fullSync(); err != nil {
					return established, err
				}
			}
		}
	}
}

// outbox holds transitions not yet sent, the latest per check: while the
// engine is away it is the buffer, bounded by the number of checks.
type outbox struct {
	mu      sync.Mutex
	pending map[uint64]*hcpb.Result
	order   []uint64 // ids in pending, oldest first
	wake    chan struct{}
}

func newOutbox() *outbox {
	return &outbox{pending: map[uint64]*hcpb.Result{}, wake: make(chan struct{}, 1)}
}

func (o *outbox) push(r *hcpb.Result) {
	o.mu.Lock()
	if _, ok := o.pending[r.Id]; !ok {
		o.order = append(o.order, r.Id)
	}
	o.pending[r.Id] = r
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending)
}

// take removes and returns up to n results, oldest first.
func (o *outbox) take(n int) []*hcpb.Result {
	o.mu.Lock()
	defer o.mu.Unlock()
	n = min(n, len(o.order))
	out := make([]*hcpb.Result, 0, n)
	for _, id := range o.order[:n] {
		out = append(out, o.pending[id])
		delete(o.pending, id)
	}
	o.order = append(o.order[:0], o.order[n:]...)
	return out
}

func (o *outbox) clear() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.pending)
	o.order = o.order[:0]
}
