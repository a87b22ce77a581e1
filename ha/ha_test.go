package ha

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

func TestMain(m *testing.M) {
	flag.Set("logtostderr", "true")
	os.Exit(m.Run())
}

// fakeEngine serves HASession: it sends a Config, forwards every report to
// reports and sends whatever is put on commands.
type fakeEngine struct {
	enginepb.UnimplementedEngineServer
	reports  chan *hapb.Report
	commands chan *hapb.Command
}

func (f *fakeEngine) HASession(s grpc.BidiStreamingServer[hapb.Report, hapb.Command]) error {
	if err := s.Send(&hapb.Command{Command: &hapb.Command_Config{Config: &hapb.Config{Enabled: true, Vrid: 60, Priority: 255, Interface: "eth1"}}}); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				errc <- err
				return
			}
			f.reports <- r
		}
	}()
	for {
		select {
		case err := <-errc:
			return err
		case <-s.Context().Done():
			return s.Context().Err()
		case c := <-f.commands:
			if err := s.Send(c); err != nil {
				return err
			}
		}
	}
}

// startEngine serves a fake engine on sock until the returned stop is called.
func startEngine(t *testing.T, sock string, f *fakeEngine) (stop func()) {
	t.Helper()
	s, err := ipc.NewServer(ipc.ServerOptions{Path: sock, Policy: ipc.Policy{Read: ipc.Rule{Anyone: true}, Internal: ipc.Rule{Anyone: true}}})
	if err != nil {
		t.Fatal(err)
	}
	enginepb.RegisterEngineServer(s, f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, 100*time.Millisecond) }()
	return func() { cancel(); <-done }
}

func TestSessionReconnectsToRestartedEngine(t *testing.T) {
	dir := t.TempDir()
	esock := filepath.Join(dir, "engine", "engine.sock")
	hsock := filepath.Join(dir, "ha", "ha.sock")
	f := &fakeEngine{reports: make(chan *hapb.Report, 100), commands: make(chan *hapb.Command)}
	stopEngine := startEngine(t, esock, f)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Socket: hsock, EngineSocket: esock, StatusInterval: 50 * time.Millisecond,
			RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()

	// The engine hears the current state and the start-up transition.
	var sawStatus, sawTransition bool
	for !sawStatus || !sawTransition {
		select {
		case r := <-f.reports:
			if st := r.GetStatus(); st != nil {
				if st.State != seesawpb.HAState_HA_STATE_DISABLED {
					t.Errorf("reported state %v, want DISABLED", st.State)
				}
				sawStatus = true
			}
			if tr := r.GetTransition(); tr != nil {
				if tr.From != seesawpb.HAState_HA_STATE_UNKNOWN || tr.To != seesawpb.HAState_HA_STATE_DISABLED || !strings.Contains(tr.Reason, "not in this build") {
					t.Errorf("transition %v", tr)
				}
				sawTransition = true
			}
		case <-deadline.Done():
			t.Fatalf("no status and transition from HA (status %v, transition %v)", sawStatus, sawTransition)
		}
	}

	cc, err := ipc.Dial(hsock, ipc.DialOptions{MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	comp := seesawpb.NewComponentClient(cc)
	waitFor := func(what string, ok func(*seesawpb.ComponentStatus) bool) *seesawpb.ComponentStatus {
		t.Helper()
		for {
			st, err := comp.Status(deadline, &seesawpb.StatusRequest{}, grpc.WaitForReady(true))
			if err == nil && ok(st) {
				return st
			}
			if deadline.Err() != nil {
				t.Fatalf("%s: never happened; last status %v, err %v", what, st, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	st := waitFor("engine session up and config received", func(st *seesawpb.ComponentStatus) bool {
		return facility(st, "engine").GetAvailable() && strings.Contains(st.Details["config"], "vrid=60")
	})
	if st.Healthy || facility(st, "vrrp").GetDetail() != "VRRP speaker not in this build" {
		t.Errorf("status does not say the speaker is missing: %v", st)
	}
	if facility(st, "raw-socket") == nil {
		t.Errorf("no raw-socket facility: %v", st)
	}
	hs, err := hapb.NewHAClient(cc).GetStatus(deadline, &hapb.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if hs.State != seesawpb.HAState_HA_STATE_DISABLED || hs.Transitions != 1 || len(hs.Facilities) == 0 {
		t.Errorf("GetStatus = %v", hs)
	}

	// A relinquish request is received and recorded.
	f.commands <- &hapb.Command{Command: &hapb.Command_Relinquish{Relinquish: &hapb.Relinquish{Reason: "test failover"}}}
	waitFor("relinquish recorded", func(st *seesawpb.ComponentStatus) bool {
		return strings.Contains(st.Details["last_relinquish"], "test failover")
	})

	// The engine goes away: HA says so and keeps serving its own socket.
	stopEngine()
	waitFor("engine loss reported", func(st *seesawpb.ComponentStatus) bool {
		return !facility(st, "engine").GetAvailable() && strings.Contains(facility(st, "engine").GetDetail(), "reconnecting")
	})
	// Drain what the old session sent.
	for len(f.reports) > 0 {
		<-f.reports
	}

	// A new engine on the same socket gets a new session with a status report.
	stopEngine = startEngine(t, esock, f)
	defer stopEngine()
	for {
		select {
		case r := <-f.reports:
			if r.GetStatus() != nil {
				waitFor("engine session back", func(st *seesawpb.ComponentStatus) bool { return facility(st, "engine").GetAvailable() })
				return
			}
		case <-deadline.Done():
			t.Fatal("HA never reconnected to the restarted engine")
		}
	}
}

func facility(st *seesawpb.ComponentStatus, name string) *seesawpb.Facility {
	for _, f := range st.GetFacilities() {
		if f.Name == name {
			return f
		}
	}
	return nil
}
