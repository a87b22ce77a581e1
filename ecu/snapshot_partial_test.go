package ecu

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// TestSnapshotsPartial: /metrics' reads leave out the page's parts; a
// page after them reads the whole; /metrics shares a whole snapshot
// within maxAge, and the page never gets a partial one while the engine
// answers, even when it asks during /metrics' read.
func TestSnapshotsPartial(t *testing.T) {
	var full, partial atomic.Int64
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func() { mu.Lock(); now = now.Add(2 * time.Second); mu.Unlock() }
	gate := make(chan struct{}, 1)
	gate <- struct{}{}
	s := &snapshots{maxAge: time.Second, now: clock,
		fetch: func(context.Context, *snapshot) *snapshot {
			full.Add(1)
			return &snapshot{Tried: clock()}
		},
		fetchPartial: func(context.Context, *snapshot) *snapshot {
			<-gate
			partial.Add(1)
			return &snapshot{Tried: clock(), Partial: true}
		}}
	reads := func(wantFull, wantPartial int64, what string) {
		t.Helper()
		if f, p := full.Load(), partial.Load(); f != wantFull || p != wantPartial {
			t.Errorf("%s: %d whole and %d partial reads, want %d and %d", what, f, p, wantFull, wantPartial)
		}
	}
	if g := s.getPartial(context.Background()); g == nil || !g.Partial {
		t.Fatalf("/metrics got %+v", g)
	}
	reads(0, 1, "a scrape")
	s.getPartial(context.Background())
	reads(0, 1, "a scrape within maxAge")
	if g := s.get(context.Background()); g.Partial {
		t.Error("the page got a partial snapshot")
	}
	reads(1, 1, "a page after a scrape")
	if g := s.getPartial(context.Background()); g.Partial {
		t.Error("a scrape within maxAge of a whole snapshot did not share it")
	}
	reads(1, 1, "a scrape after the page")

	// The page asks while a scrape's read is under way.
	advance()
	done := make(chan *snapshot)
	go func() { done <- s.getPartial(context.Background()) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		started := s.inflight != nil
		s.mu.Unlock()
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scrape's read never started")
		}
	}
	page := make(chan *snapshot)
	go func() { page <- s.get(context.Background()) }()
	gate <- struct{}{}
	if g := <-done; g == nil || !g.Partial {
		t.Errorf("the scrape got %+v", g)
	}
	if g := <-page; g == nil || g.Partial {
		t.Errorf("the page asking during a scrape's read got %+v", g)
	}
	reads(2, 2, "a page during a scrape's read")
}

// countingEngine is the fixed engine, counting the calls /metrics has no
// use for.
type countingEngine struct {
	fixedEngine
	backends, events *atomic.Int64
}

func (c countingEngine) Backends(ctx context.Context, r *enginepb.BackendsRequest) (*enginepb.BackendsResponse, error) {
	c.backends.Add(1)
	return c.fixedEngine.Backends(ctx, r)
}

func (c countingEngine) Events(ctx context.Context, r *enginepb.EventsRequest) (*enginepb.EventsResponse, error) {
	c.events.Add(1)
	return c.fixedEngine.Events(ctx, r)
}

// TestMetricsReadLess: a scrape of /metrics reads the engine without
// its backends and events, which the page and the API still get.
func TestMetricsReadLess(t *testing.T) {
	dir := t.TempDir()
	esock := filepath.Join(dir, "engine.sock")
	srv, err := ipc.NewServer(ipc.ServerOptions{Path: esock, Policy: ipc.Policy{Read: ipc.Rule{Anyone: true}}})
	if err != nil {
		t.Fatal(err)
	}
	var backends, events atomic.Int64
	seesawpb.RegisterComponentServer(srv, ipc.NewComponent("engine"))
	enginepb.RegisterEngineServer(srv, countingEngine{backends: &backends, events: &events})
	ctx, cancel := context.WithCancel(context.Background())
	sdone, done := make(chan error, 1), make(chan error, 1)
	go func() { sdone <- srv.Serve(ctx, 100*time.Millisecond) }()
	addrc := make(chan net.Addr, 1)
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	go func() {
		done <- Run(ctx, Config{Socket: filepath.Join(dir, "ecu", "ecu.sock"), EngineSocket: esock, HTTPAddr: "127.0.0.1:0",
			Ready: func(a net.Addr) { addrc <- a }, ControlAddr: "-",
			Now: func() time.Time { return time.Unix(0, clock.Add(int64(time.Hour))) }, // every request a new read
		})
	}()
	t.Cleanup(func() { cancel(); <-done; <-sdone })
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case <-time.After(30 * time.Second):
		t.Fatal("the ECU never listened")
	}
	get := func(path string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
	}
	for range 3 {
		get("/metrics")
	}
	if b, e := backends.Load(), events.Load(); b != 0 || e != 0 {
		t.Errorf("three scrapes read the engine's backends %d times and events %d times, want none", b, e)
	}
	get("/api/v1/backends")
	get("/")
	if b, e := backends.Load(), events.Load(); b != 2 || e != 2 {
		t.Errorf("the API and the page read the backends %d times and events %d times, want 2 and 2", b, e)
	}
}

// TestBriefChecks: the engine's brief Checks and the healthcheck
// process's counts-only ListChecks, which /metrics reads, carry what it
// shows, as the whole answers have it, and little else.
func TestBriefChecks(t *testing.T) {
	r := newECURig(t)
	r.waitFor("every destination healthy in /metrics", func() bool {
		_, body := r.get("/metrics")
		return len(activeRE.FindAllString(body, -1)) == 6
	})
	cc, err := ipc.Dial(r.esock, ipc.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := context.Background()
	eng := enginepb.NewEngineClient(cc)
	whole, err := eng.Checks(ctx, &enginepb.ChecksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	brief, err := eng.Checks(ctx, &enginepb.ChecksRequest{Brief: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.Checks) != 6 || len(brief.Checks) != len(whole.Checks) {
		t.Fatalf("%d checks, %d brief", len(whole.Checks), len(brief.Checks))
	}
	for i, w := range whole.Checks {
		b := brief.Checks[i]
		want := &enginepb.CheckView{Name: w.Name, Backend: w.Backend, Known: w.Known, Healthy: w.Healthy,
			Check: &hcpb.Check{Id: w.Check.Id, Address: w.Check.Address, Target: w.Check.Target},
			Last:  &hcpb.Result{Time: w.Last.GetTime(), Duration: w.Last.GetDuration()}}
		// The result may have moved on between the two calls.
		if b.Last.GetTime().AsTime().After(w.Last.GetTime().AsTime()) {
			want.Last = &hcpb.Result{Time: b.Last.Time, Duration: b.Last.Duration}
		}
		if !proto.Equal(b, want) {
			t.Errorf("brief check %d:\n%v\nwant\n%v", i, b, want)
		}
		if len(w.Destinations) == 0 || w.Check.Port == 0 {
			t.Errorf("the whole answer lacks the check's destinations or config: %v", w)
		}
	}
	if b, w := proto.Size(brief), proto.Size(whole); b >= w/2 {
		t.Errorf("the brief answer is %d bytes, the whole one %d", b, w)
	}

	hc, err := ipc.Dial(filepath.Join(r.dir, "healthcheck.sock"), ipc.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	full, err := hcpb.NewHealthcheckClient(hc).ListChecks(ctx, &hcpb.ListChecksRequest{OmitHistory: true})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := hcpb.NewHealthcheckClient(hc).ListChecks(ctx, &hcpb.ListChecksRequest{OmitHistory: true, CountsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Checks) != 6 || len(counts.Checks) != len(full.Checks) {
		t.Fatalf("%d checks listed, %d counted", len(full.Checks), len(counts.Checks))
	}
	for i, f := range full.Checks {
		c := counts.Checks[i]
		if c.Check.GetId() != f.Check.GetId() || c.Successes < f.Successes || c.Failures < f.Failures || c.Successes+c.Failures == 0 {
			t.Errorf("counted %v, listed %v", c, f)
		}
		if !proto.Equal(c, &hcpb.CheckStatus{Check: &hcpb.Check{Id: c.Check.GetId()}, Successes: c.Successes, Failures: c.Failures}) {
			t.Errorf("counts only has more: %v", c)
		}
	}
}
