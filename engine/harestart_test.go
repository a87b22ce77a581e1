package engine

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/seesawlb/seesaw/deploy/testenv"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// TestHATrackerResume: a master's HA restarting for a reload leaves its
// last advert for the next HA, once, and only while the node is master.
func TestHATrackerResume(t *testing.T) {
	t0 := time.Unix(1000, 0)
	last := t0.Add(-300 * time.Millisecond)
	for _, c := range []struct {
		name    string
		before  seesawpb.HAState // reported before the restart
		leaving seesawpb.HAState // the Restarting report's state
		last    time.Time
		then    func(tr *haTracker) // between the restart and the new session
		want    bool
	}{
		{"master restarting", leader, leader, last, nil, true},
		{"backup restarting", backup, backup, time.Time{}, nil, false},
		{"master without a last advert", leader, leader, time.Time{}, nil, false},
		{"demoted before the new session", leader, leader, last, func(tr *haTracker) { tr.report(t0.Add(time.Millisecond), backup, true, 0) }, false},
		{"stepped down (SHUTDOWN) before the new session", leader, leader, last, func(tr *haTracker) {
			tr.report(t0.Add(time.Millisecond), seesawpb.HAState_HA_STATE_SHUTDOWN, false, 0)
		}, false},
		{"new HA's start-up status does not cancel it", leader, leader, last, func(tr *haTracker) { tr.report(t0.Add(time.Millisecond), unknown, false, 0) }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := newHATracker(30 * time.Second)
			tr.report(t0.Add(-time.Second), c.before, false, 0)
			tr.restarting(t0, c.leaving, c.last)
			if got := tr.state(t0); got != c.before {
				t.Fatalf("state after Restarting %v, want %v (unchanged)", got, c.before)
			}
			if c.then != nil {
				c.then(tr)
			}
			got, ok := tr.takeResume(t0.Add(10 * time.Millisecond))
			if ok != c.want || (ok && !got.Equal(c.last)) {
				t.Fatalf("takeResume = %v, %v; want %v", got, ok, c.want)
			}
			if _, ok := tr.takeResume(t0.Add(20 * time.Millisecond)); ok {
				t.Fatal("takeResume gave the resume twice")
			}
		})
	}
}

// TestHASessionResumesARestartedMaster: over the real HASession, a master
// HA that says Restarting gets, in its next session, Resume with its last
// advert before the config; one that stops (SHUTDOWN) does not.
func TestHASessionResumesARestartedMaster(t *testing.T) {
	for _, restart := range []bool{true, false} {
		name := "stop"
		if restart {
			name = "restart"
		}
		t.Run(name, func(t *testing.T) {
			cfgPath, clPath := copyGKE(t)
			e := New(Config{EngineConf: cfgPath, ClusterConf: clPath})
			if err := e.Reload(); err != nil {
				t.Fatal(err)
			}
			eng := enginepb.NewEngineClient(serveEngine(t, e))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			s1, err := eng.HASession(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if cmd, err := s1.Recv(); err != nil || cmd.GetConfig() == nil {
				t.Fatalf("first command %v, %v; want the config", cmd, err)
			}
			s1.Send(&hapb.Report{Report: &hapb.Report_Transition{Transition: &hapb.Transition{
				From: seesawpb.HAState_HA_STATE_BACKUP, To: seesawpb.HAState_HA_STATE_LEADER, Reason: "test"}}})
			last := time.Now().Add(-50 * time.Millisecond).Truncate(time.Microsecond)
			if restart {
				s1.Send(&hapb.Report{Report: &hapb.Report_Restarting{Restarting: &hapb.Restarting{
					State: seesawpb.HAState_HA_STATE_LEADER, LastAdvert: timestamppb.New(last), Reason: "test"}}})
			} else {
				s1.Send(&hapb.Report{Report: &hapb.Report_Transition{Transition: &hapb.Transition{
					From: seesawpb.HAState_HA_STATE_LEADER, To: seesawpb.HAState_HA_STATE_SHUTDOWN, Reason: "HA stopping"}}})
			}
			s1.CloseSend()
			// The engine ends the session only after taking every report.
			for {
				if _, err := s1.Recv(); err != nil {
					break
				}
			}
			if got := e.haStateNow(); got != seesawpb.HAState_HA_STATE_LEADER && restart {
				t.Fatalf("state after the restart report %v, want LEADER kept", got)
			}

			s2, err := eng.HASession(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cmd, err := s2.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if !restart {
				if cmd.GetConfig() == nil {
					t.Fatalf("after a stop the new HA got %v first, want the config (no resume)", cmd)
				}
				return
			}
			r := cmd.GetResume()
			if r == nil || !r.GetLastAdvert().AsTime().Equal(last) {
				t.Fatalf("after a restart the new HA got %v first, want Resume with last advert %v", cmd, last)
			}
			if cmd, err := s2.Recv(); err != nil || cmd.GetConfig() == nil {
				t.Fatalf("after the resume: %v, %v; want the config", cmd, err)
			}
			// A third session (HA restarting again without saying so)
			// gets no resume.
			s3, err := eng.HASession(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if cmd, err := s3.Recv(); err != nil || cmd.GetConfig() == nil {
				t.Fatalf("third session got %v, %v; want the config only", cmd, err)
			}
		})
	}
}

// TestRunTellsHAItRestarts: the reload's signal (Config.Restart) makes Run
// tell the open HA session that the engine is restarting, with the grace
// HA is to wait, and then stop as on SIGTERM.
func TestRunTellsHAItRestarts(t *testing.T) {
	testenv.RequireRoot(t) // the engine's default policy answers root only
	cfgPath, clPath := copyGKE(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "engine", "engine.sock")
	restart := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Config{Socket: sock, NCCSocket: filepath.Join(dir, "ncc", "ncc.sock"), EngineConf: cfgPath, ClusterConf: clPath,
			ReaderGroup: "", DaemonUsers: "root", Restart: restart, NCCPollInterval: 20 * time.Millisecond})
	}()
	cc, err := ipc.Dial(sock, ipc.DialOptions{MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := enginepb.NewEngineClient(cc).HASession(ctx, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if cmd, err := stream.Recv(); err != nil || cmd.GetConfig() == nil {
		t.Fatalf("first command %v, %v; want the config", cmd, err)
	}
	restart <- syscall.SIGUSR2
	cmd, err := stream.Recv()
	if err != nil {
		t.Fatalf("HA heard nothing before the engine went: %v", err)
	}
	if r := cmd.GetEngineRestarting(); r == nil || r.GetWithin().AsDuration() != engineRestartGrace {
		t.Fatalf("command %v, want EngineRestarting within %v", cmd, engineRestartGrace)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after the restart signal")
	}
}
