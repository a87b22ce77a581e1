package ha

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/seesawlb/seesaw/ha/vrrp"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// TestRestartKeepsMastership runs HA against a fake engine that resumes a
// restarted master as the real one does, with a lower-priority peer as
// backup: a restart for a reload (Config.Restart) sends no priority 0, no
// SHUTDOWN but Restarting, and the next HA is master again at once while
// the peer never moves; a plain stop then hands over with priority 0.
func TestRestartKeepsMastership(t *testing.T) {
	dir := t.TempDir()
	esock := filepath.Join(dir, "engine", "engine.sock")
	interval := 200 * time.Millisecond // a master down interval of 720ms: room for a loaded host
	f := &fakeEngine{
		config: &hapb.Config{
			Enabled: true, Interface: "fake0", Vrid: 60, Priority: 200,
			LocalAddress: addrA.String(), Peers: []string{addrB.String()},
			AdvertInterval: durationpb.New(interval), Addresses: []string{vipT.String()},
		},
		reports: make(chan *hapb.Report, 1000), commands: make(chan *hapb.Command), resumes: true,
	}
	defer startEngine(t, esock, f)()
	h := newHub()
	deadline, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()
	v := &engineView{t: t, f: f}

	type run struct {
		restart chan struct{}
		cancel  context.CancelFunc
		done    chan error
	}
	start := func(i int) *run {
		r := &run{restart: make(chan struct{}), done: make(chan error, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		go func() {
			r.done <- Run(ctx, Config{Socket: filepath.Join(dir, "ha", "ha.sock"), EngineSocket: esock, StatusInterval: 20 * time.Millisecond,
				RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, OpenConn: h.open, Restart: r.restart})
		}()
		return r
	}

	r1 := start(1)
	v.waitState(deadline, seesawpb.HAState_HA_STATE_LEADER, "no advert within the master down interval")
	peer := startSpeaker(t, h, addrB, 100, interval)
	defer peer.stop()
	waitFor(t, deadline, "peer backup", func() bool { return peer.State() == vrrp.Backup })
	time.Sleep(3 * interval)

	// The restart: HA 1 says Restarting and exits without priority 0.
	close(r1.restart)
	select {
	case err := <-r1.done:
		if err != nil {
			t.Fatalf("Run after a restart: %v", err)
		}
	case <-deadline.Done():
		t.Fatal("Run did not return after the restart")
	}
	var restarting *hapb.Restarting
	for restarting == nil {
		select {
		case r := <-f.reports:
			if tr := r.GetTransition(); tr != nil {
				t.Fatalf("HA reported a transition while restarting: %v", tr)
			}
			restarting = r.GetRestarting()
		case <-deadline.Done():
			t.Fatal("no Restarting report")
		}
	}
	if restarting.State != seesawpb.HAState_HA_STATE_LEADER || restarting.LastAdvert == nil {
		t.Fatalf("Restarting %v, want LEADER with the last advert", restarting)
	}
	for _, s := range h.sentBy(addrA) {
		if s.adv.Priority == 0 {
			t.Fatalf("HA sent priority 0 on a restart")
		}
	}

	// HA 2 resumes at once.
	r2 := start(2)
	tr := v.waitState(deadline, seesawpb.HAState_HA_STATE_LEADER, "resumed mastership")
	if tr.From != seesawpb.HAState_HA_STATE_UNKNOWN {
		t.Errorf("resumed from %v, want straight from UNKNOWN (never BACKUP)", tr.From)
	}
	time.Sleep(5 * interval)
	peer.mu.Lock()
	for _, tr := range peer.transitions[1:] {
		t.Errorf("peer transitioned during the restart: %v", tr)
	}
	peer.mu.Unlock()
	if peer.State() != vrrp.Backup {
		t.Fatalf("peer %v, want backup", peer.State())
	}

	// A stop steps down with priority 0; the peer takes over at once.
	r2.cancel()
	if err := <-r2.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := lastSent(h, addrA); got.adv.Priority != 0 {
		t.Errorf("last advert on a stop %+v, want priority 0", got)
	}
	waitFor(t, deadline, "peer master", func() bool { return peer.State() == vrrp.Master })
	if last := peer.last(); !strings.Contains(last.Reason, "priority 0") {
		t.Errorf("peer took over by %q, want the priority-0 advert", last.Reason)
	}
}

// TestEngineRestartKeepsMastership: an engine that says it is restarting
// (EngineRestarting) and goes away leaves HA speaking as master, the peer
// untouched, until it is back; one that is not back within its grace gets
// the usual step-down (priority 0, the peer takes over).
func TestEngineRestartKeepsMastership(t *testing.T) {
	dir := t.TempDir()
	esock := filepath.Join(dir, "engine", "engine.sock")
	interval := 200 * time.Millisecond // a master down interval of 720ms: room for a loaded host
	f := &fakeEngine{
		config: &hapb.Config{
			Enabled: true, Interface: "fake0", Vrid: 60, Priority: 200,
			LocalAddress: addrA.String(), Peers: []string{addrB.String()},
			AdvertInterval: durationpb.New(interval), Addresses: []string{vipT.String()},
		},
		reports: make(chan *hapb.Report, 1000), commands: make(chan *hapb.Command),
	}
	stopEngine := startEngine(t, esock, f)
	defer func() { stopEngine() }()
	h := newHub()
	deadline, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()
	v := &engineView{t: t, f: f}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Socket: filepath.Join(dir, "ha", "ha.sock"), EngineSocket: esock, StatusInterval: 20 * time.Millisecond,
			RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, OpenConn: h.open})
	}()
	defer func() { cancel(); <-done }()

	v.waitState(deadline, seesawpb.HAState_HA_STATE_LEADER, "no advert within the master down interval")
	peer := startSpeaker(t, h, addrB, 100, interval)
	defer peer.stop()
	waitFor(t, deadline, "peer backup", func() bool { return peer.State() == vrrp.Backup })

	restarting := func(within time.Duration) {
		f.commands <- &hapb.Command{Command: &hapb.Command_EngineRestarting{EngineRestarting: &hapb.EngineRestarting{
			Within: durationpb.New(within), Reason: "test"}}}
	}
	// The engine restarts within its grace: nothing happens.
	restarting(5 * time.Second)
	v.waitStatus(deadline, "a status after the notice", func(*hapb.Status) bool { return true })
	stopEngine()
	sentBefore := len(h.sentBy(addrA))
	waitFor(t, deadline, "HA advertising on without its engine", func() bool { return len(h.sentBy(addrA)) > sentBefore+5 })
	stopEngine = startEngine(t, esock, f)
	before := len(v.transitions)
	v.waitStatus(deadline, "HA back with the new engine, master", func(s *hapb.Status) bool {
		return s.State == seesawpb.HAState_HA_STATE_LEADER
	})
	for _, tr := range v.transitions[before:] {
		t.Errorf("HA transitioned across the engine's restart: %v", tr)
	}
	for _, s := range h.sentBy(addrA) {
		if s.adv.Priority == 0 {
			t.Fatalf("HA sent priority 0 across the engine's restart")
		}
	}
	peer.mu.Lock()
	for _, tr := range peer.transitions[1:] {
		t.Errorf("peer transitioned across the engine's restart: %v", tr)
	}
	peer.mu.Unlock()

	// The engine says so but is not back in time: HA steps down.
	restarting(200 * time.Millisecond)
	v.waitStatus(deadline, "a status after the notice", func(*hapb.Status) bool { return true })
	stopEngine()
	waitFor(t, deadline, "peer master after the grace ran out", func() bool { return peer.State() == vrrp.Master })
	if got := lastSent(h, addrA); got.adv.Priority != 0 {
		t.Errorf("last advert %+v, want priority 0 once the grace ran out", got)
	}
}
