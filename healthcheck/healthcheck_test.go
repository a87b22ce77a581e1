package healthcheck

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

func TestMain(m *testing.M) {
	flag.Set("logtostderr", "true")
	os.Exit(m.Run())
}

func check(id uint64) *hcpb.Check {
	return &hcpb.Check{Id: id, Name: "check", Type: hcpb.CheckType_TCP, Port: uint32(id)}
}

func ids(cs []*hcpb.Check) []uint64 {
	var out []uint64
	for _, c := range cs {
		out = append(out, c.Id)
	}
	return out
}

func TestSetApply(t *testing.T) {
	s := NewSet()
	s.Apply(&hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{check(3), check(1), check(2)}})
	if got := ids(s.List()); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("after full set: %v", got)
	}
	s.Apply(&hcpb.CheckSet{Upsert: []*hcpb.Check{check(4), {Id: 1, Port: 99}}, Remove: []uint64{2, 42}})
	got := s.List()
	if !slices.Equal(ids(got), []uint64{1, 3, 4}) || got[0].Port != 99 {
		t.Fatalf("after delta: %v", got)
	}
	if n := s.Apply(&hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{check(7)}}); n != 1 {
		t.Fatalf("a full set did not replace: %d held", n)
	}
	if n := s.Apply(&hcpb.CheckSet{Full: true}); n != 0 || len(s.List()) != 0 {
		t.Fatalf("an empty full set left %d checks", n)
	}
}

// fakeEngine sends sets[0] (and then each later element) on every session.
type fakeEngine struct {
	enginepb.UnimplementedEngineServer
	sets     []*hcpb.CheckSet
	sessions chan struct{}
}

func (f *fakeEngine) HealthcheckSession(s grpc.BidiStreamingServer[hcpb.Results, hcpb.CheckSet]) error {
	if _, err := s.Recv(); err != nil {
		return err
	}
	for _, cs := range f.sets {
		if err := s.Send(cs); err != nil {
			return err
		}
	}
	f.sessions <- struct{}{}
	<-s.Context().Done()
	return nil
}

func startEngine(t *testing.T, sock string, f *fakeEngine) (stop func()) {
	t.Helper()
	s, err := ipc.NewServer(ipc.ServerOptions{Path: sock, Policy: ipc.Policy{Internal: ipc.Rule{Anyone: true}}})
	if err != nil {
		t.Fatal(err)
	}
	enginepb.RegisterEngineServer(s, f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, 100*time.Millisecond) }()
	return func() { cancel(); <-done }
}

func TestSessionHoldsChecksAcrossEngineRestart(t *testing.T) {
	dir := t.TempDir()
	esock := filepath.Join(dir, "engine.sock")
	hsock := filepath.Join(dir, "hc", "healthcheck.sock")
	f := &fakeEngine{sessions: make(chan struct{}, 4), sets: []*hcpb.CheckSet{
		{Full: true, Upsert: []*hcpb.Check{check(1), check(2)}},
		{Upsert: []*hcpb.Check{check(3)}, Remove: []uint64{1}},
	}}
	stop := startEngine(t, esock, f)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Socket: hsock, EngineSocket: esock, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()

	cc, err := ipc.Dial(hsock, ipc.DialOptions{MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	list := func(want []uint64) {
		t.Helper()
		for {
			resp, err := hcpb.NewHealthcheckClient(cc).ListChecks(deadline, &hcpb.ListChecksRequest{}, grpc.WaitForReady(true))
			var got []uint64
			if err == nil {
				for _, c := range resp.Checks {
					if c.Healthy || c.Last != nil {
						t.Fatalf("a check nobody ran claims a result: %v", c)
					}
					got = append(got, c.Check.Id)
				}
				if slices.Equal(got, want) {
					return
				}
			}
			if deadline.Err() != nil {
				t.Fatalf("ListChecks = %v (err %v), want ids %v", got, err, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	list([]uint64{2, 3})
	st, err := seesawpb.NewComponentClient(cc).Status(deadline, &seesawpb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Healthy || st.Details["checks"] != "2" {
		t.Errorf("status %v: want unhealthy (no checker) holding 2 checks", st)
	}
	for _, fc := range st.Facilities {
		if fc.Name == "checker" && (fc.Available || fc.Detail != noChecker) {
			t.Errorf("checker facility %v", fc)
		}
	}

	// The engine restarts with a different config: its full set replaces ours.
	<-f.sessions
	stop()
	f.sets = []*hcpb.CheckSet{{Full: true, Upsert: []*hcpb.Check{check(9)}}}
	stop = startEngine(t, esock, f)
	defer stop()
	list([]uint64{9})
}
