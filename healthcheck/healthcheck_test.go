package healthcheck

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// engineDouble plays the engine's side of HealthcheckSession over a real
// socket: it sends what the test puts on sets, and records every result.
type engineDouble struct {
	enginepb.UnimplementedEngineServer
	sets     chan *hcpb.CheckSet
	sessions chan struct{}

	mu      sync.Mutex
	batches int
	results []*hcpb.Result
}

func newEngineDouble() *engineDouble {
	return &engineDouble{sets: make(chan *hcpb.CheckSet, 16), sessions: make(chan struct{}, 4)}
}

func (e *engineDouble) HealthcheckSession(s grpc.BidiStreamingServer[hcpb.Results, hcpb.CheckSet]) error {
	if _, err := s.Recv(); err != nil {
		return err
	}
	e.sessions <- struct{}{}
	errc := make(chan error, 1)
	go func() {
		for {
			b, err := s.Recv()
			if err != nil {
				errc <- err
				return
			}
			if len(b.Results) > 0 {
				e.mu.Lock()
				e.batches++
				e.results = append(e.results, b.Results...)
				e.mu.Unlock()
			}
		}
	}()
	for {
		select {
		case cs := <-e.sets:
			if err := s.Send(cs); err != nil {
				return err
			}
		case <-s.Context().Done():
			return nil
		case err := <-errc:
			return err
		}
	}
}

// got returns the results recorded so far and forgets them.
func (e *engineDouble) take() (results []*hcpb.Result, batches int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	results, batches = e.results, e.batches
	e.results, e.batches = nil, 0
	return results, batches
}

func startEngine(t *testing.T, sock string, e *engineDouble) (stop func()) {
	t.Helper()
	s, err := ipc.NewServer(ipc.ServerOptions{Path: sock, Policy: ipc.Policy{Internal: ipc.Rule{Anyone: true}}})
	if err != nil {
		t.Fatal(err)
	}
	enginepb.RegisterEngineServer(s, e)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, 100*time.Millisecond) }()
	return func() { cancel(); <-done }
}

// switchboard is a fake checker per address whose verdict the test flips.
type switchboard struct{ up sync.Map } // address -> *atomic.Bool

type switchChecker struct{ up *atomic.Bool }

func (k switchChecker) Check(context.Context) Outcome {
	if k.up.Load() {
		return Outcome{OK: true, Message: "up"}
	}
	return Outcome{Message: "down"}
}

func (b *switchboard) set(addr string, up bool) {
	v, _ := b.up.LoadOrStore(addr, new(atomic.Bool))
	v.(*atomic.Bool).Store(up)
}

func (b *switchboard) newChecker(c *hcpb.Check, _ *Env) (Checker, error) {
	v, _ := b.up.LoadOrStore(c.Address, new(atomic.Bool))
	return switchChecker{v.(*atomic.Bool)}, nil
}

func fastCheck(id uint64, addr string) *hcpb.Check {
	return &hcpb.Check{Id: id, Type: hcpb.CheckType_TCP, Address: addr, Port: 80,
		Interval: durationpb.New(20 * time.Millisecond), Timeout: durationpb.New(10 * time.Millisecond)}
}

// poll calls f until it returns true or the deadline passes.
func poll(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type running struct {
	t      *testing.T
	esock  string
	hsock  string
	cancel context.CancelFunc
	done   chan error
	cc     *grpc.ClientConn
}

func runDaemon(t *testing.T, b *switchboard, resync time.Duration) *running {
	dir := t.TempDir()
	r := &running{t: t, esock: filepath.Join(dir, "engine.sock"), hsock: filepath.Join(dir, "hc", "healthcheck.sock"), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- Run(ctx, Config{
			Socket: r.hsock, EngineSocket: r.esock,
			RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
			BatchDelay: 20 * time.Millisecond, ResyncInterval: resync,
			NewChecker: b.newChecker, Env: &Env{},
		})
	}()
	cc, err := ipc.Dial(r.hsock, ipc.DialOptions{MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.cc = cc
	t.Cleanup(func() {
		cc.Close()
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// latest is the last result per id among rs.
func latest(rs []*hcpb.Result) map[uint64]*hcpb.Result {
	m := map[uint64]*hcpb.Result{}
	for _, r := range rs {
		m[r.Id] = r
	}
	return m
}

func TestDaemonStreamsTransitionsAndResyncs(t *testing.T) {
	var b switchboard
	b.set("10.0.0.1", true)
	b.set("10.0.0.2", false)
	r := runDaemon(t, &b, time.Hour)
	e := newEngineDouble()
	stop := startEngine(t, r.esock, e)
	<-e.sessions
	e.sets <- &hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{fastCheck(1, "10.0.0.1"), fastCheck(2, "10.0.0.2")}}

	var seen []*hcpb.Result
	waitFor := func(what string, f func(map[uint64]*hcpb.Result) bool) {
		t.Helper()
		poll(t, what, func() bool {
			rs, _ := e.take()
			seen = append(seen, rs...)
			return f(latest(seen))
		})
	}
	waitFor("first results", func(l map[uint64]*hcpb.Result) bool {
		return l[1] != nil && l[1].Healthy && l[2] != nil && !l[2].Healthy
	})
	// A transition reaches the engine.
	seen = nil
	b.set("10.0.0.1", false)
	waitFor("check 1 going down", func(l map[uint64]*hcpb.Result) bool { return l[1] != nil && !l[1].Healthy })
	if l := latest(seen); l[1].Message != "down" || l[1].Success || l[1].Time == nil {
		t.Errorf("transition %v", l[1])
	}

	// The engine goes away; a transition happens meanwhile; when the engine
	// returns (with the same set), the resync brings it the current state.
	stop()
	b.set("10.0.0.2", true)
	poll(t, "check 2 up while the engine is away", func() bool {
		l := r.list(&hcpb.ListChecksRequest{Ids: []uint64{2}})
		return len(l) == 1 && l[0].Healthy
	})
	st := r.status()
	if st.Details["results_pending"] == "0" {
		t.Errorf("the transition made while the engine was away is not pending: %v", st.Details)
	}
	e.take()
	seen = nil
	stop = startEngine(t, r.esock, e)
	defer func() { stop() }()
	<-e.sessions
	e.sets <- &hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{fastCheck(1, "10.0.0.1"), fastCheck(2, "10.0.0.2")}}
	waitFor("the resync", func(l map[uint64]*hcpb.Result) bool {
		return l[1] != nil && !l[1].Healthy && l[2] != nil && l[2].Healthy
	})

	// Changes: one added, one removed.
	e.sets <- &hcpb.CheckSet{Upsert: []*hcpb.Check{fastCheck(3, "10.0.0.3")}}
	e.sets <- &hcpb.CheckSet{Remove: []uint64{1}}
	poll(t, "the changes applied", func() bool {
		var ids []uint64
		for _, c := range r.list(&hcpb.ListChecksRequest{}) {
			ids = append(ids, c.Check.Id)
		}
		return slices.Equal(ids, []uint64{2, 3})
	})
	l := r.list(&hcpb.ListChecksRequest{Ids: []uint64{2}})
	if len(l[0].History) == 0 || l[0].History[len(l[0].History)-1].Message != "up" {
		t.Errorf("history of check 2: %v", l[0].History)
	}
	st = r.status()
	if !st.Healthy || st.Details["checks"] != "2" {
		t.Errorf("status %v", st)
	}
}

// TestDaemonBatches: many simultaneous transitions travel in few messages.
func TestDaemonBatches(t *testing.T) {
	var b switchboard
	var set hcpb.CheckSet
	for i := range 300 {
		addr := "10.1." + string(rune('0'+i/100)) + "." + itoa(i%100)
		b.set(addr, true)
		set.Upsert = append(set.Upsert, fastCheck(uint64(i+1), addr))
	}
	r := runDaemon(t, &b, time.Hour)
	e := newEngineDouble()
	defer startEngine(t, r.esock, e)()
	<-e.sessions
	set.Full = true
	e.sets <- &set
	poll(t, "every check's first result", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(latest(e.results)) == 300
	})
	rs, batches := e.take()
	if batches >= len(rs) {
		t.Errorf("%d results in %d messages: not batched", len(rs), batches)
	}
	t.Logf("%d results in %d messages", len(rs), batches)
}

// TestDaemonPeriodicResync: with no transitions, every check's latest
// result is still sent every ResyncInterval.
func TestDaemonPeriodicResync(t *testing.T) {
	var b switchboard
	b.set("10.0.0.1", true)
	r := runDaemon(t, &b, 100*time.Millisecond)
	e := newEngineDouble()
	defer startEngine(t, r.esock, e)()
	<-e.sessions
	e.sets <- &hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{fastCheck(1, "10.0.0.1")}}
	poll(t, "three results without a transition", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.results) >= 3
	})
	rs, _ := e.take()
	for _, r := range rs {
		if r.Id != 1 || !r.Healthy {
			t.Errorf("result %v", r)
		}
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

func (r *running) list(req *hcpb.ListChecksRequest) []*hcpb.CheckStatus {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := hcpb.NewHealthcheckClient(r.cc).ListChecks(ctx, req, grpc.WaitForReady(true))
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.Checks
}

func (r *running) status() *seesawpb.ComponentStatus {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := seesawpb.NewComponentClient(r.cc).Status(ctx, &seesawpb.StatusRequest{}, grpc.WaitForReady(true))
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}
