package ha

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/seesawlb/seesaw/ha/vrrp"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// TestNetnsRestartKeepsMastership: two real HA processes in a pair of
// namespaces. A is seesaw_ha under an engine (a fake that resumes a
// restarted master as engine/hastate.go does), B seesaw_ha --standalone
// at a lower priority. SIGUSR2 to A's master, as the watchdog's reload
// sends it, and a new A process: B sees A's adverts keep coming, never a
// priority 0, and makes no transition. Then the engine restarts (it says
// EngineRestarting and goes for longer than B's master down interval): B
// makes no transition either. SIGTERM to A (a stop): B takes over at once,
// on A's priority-0 advert.
func TestNetnsRestartKeepsMastership(t *testing.T) {
	tp := newTopo(t)
	const interval = 500 * time.Millisecond // the engine's (Seesaw v2's) advert interval
	esock := filepath.Join(tp.dir, "engine.sock")
	f := &fakeEngine{
		config: &hapb.Config{
			Enabled: true, Interface: tp.iface, Vrid: 51, Priority: 200,
			LocalAddress: tp.addr(0, false).String(), Peers: []string{tp.addr(1, false).String()},
			AdvertInterval: durationpb.New(interval), Addresses: []string{vipFor(false).String()},
		},
		reports: make(chan *hapb.Report, 1000), commands: make(chan *hapb.Command), resumes: true,
	}
	stopEngine := startEngine(t, esock, f)
	defer func() { stopEngine() }()
	deadline, dcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer dcancel()
	v := &engineView{t: t, f: f}

	var out syncBuffer
	startA := func(n int) *exec.Cmd {
		cmd := exec.Command("ip", "netns", "exec", tp.ns(0), seesawHA(t),
			"--socket", filepath.Join(tp.dir, fmt.Sprintf("ha-a-%d.sock", n)), "--engine_socket", esock,
			"--status_interval", "100ms", "--logtostderr")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	a1 := startA(1)
	v.waitState(deadline, seesawpb.HAState_HA_STATE_LEADER, "no advert within the master down interval")
	b := tp.startOurs(1, oursOpts{prio: 100, interval: interval})
	waitState(t, b, "BACKUP", settle)
	holdState(t, b, "BACKUP", 2*interval)
	obs := tp.observe(1, false)
	obs.drain()

	// The reload's restart.
	restarted := time.Now()
	if err := a1.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if err := a1.Wait(); err != nil {
		t.Fatalf("A after SIGUSR2: %v\n%s", err, out.String())
	}
	a2 := startA(2)
	v.waitState(deadline, seesawpb.HAState_HA_STATE_LEADER, "resumed mastership")
	// Adverts from A across the restart: none at priority 0, and no gap
	// that B's master down timer could have run out in.
	mdi := vrrp.MasterDownInterval(interval, 100)
	var prev time.Time
	var maxGap time.Duration
	for {
		ob, err := obs.next(deadline, tp.addr(0, false), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ob.adv.Priority == 0 {
			t.Fatalf("A sent a priority-0 advert on a restart for a reload")
		}
		if !prev.IsZero() {
			maxGap = max(maxGap, ob.at.Sub(prev))
		}
		prev = ob.at
		if ob.at.Sub(restarted) > 4*interval {
			break
		}
	}
	holdState(t, b, "BACKUP", 2*interval)
	if evs := b.events(); len(evs) != 1 {
		t.Fatalf("B made transitions during A's restart: %v", evs)
	}
	if maxGap >= mdi {
		t.Errorf("longest gap between A's adverts across the restart %v, B's master down interval %v", maxGap, mdi)
	}
	t.Logf("restart for a reload: longest gap between the master's adverts %v (interval %v, the backup's master down interval %v); the backup made no transition",
		maxGap.Round(time.Millisecond), interval, mdi)

	// The reload's restart of the engine: told EngineRestarting, A speaks
	// on while the engine is away, longer than B's master down interval,
	// and B makes no transition.
	f.commands <- &hapb.Command{Command: &hapb.Command_EngineRestarting{EngineRestarting: &hapb.EngineRestarting{
		Within: durationpb.New(10 * time.Second), Reason: "test"}}}
	v.waitStatus(deadline, "a status after the notice", func(*hapb.Status) bool { return true })
	stopEngine()
	holdState(t, b, "BACKUP", 2*mdi)
	stopEngine = startEngine(t, esock, f)
	v.waitStatus(deadline, "A master under the new engine", func(s *hapb.Status) bool { return s.State == seesawpb.HAState_HA_STATE_LEADER })
	if evs := b.events(); len(evs) != 1 {
		t.Fatalf("B made transitions during the engine's restart: %v", evs)
	}
	t.Logf("engine restart: A spoke on for %v without its engine; the backup made no transition", 2*mdi)

	// A stop: priority 0, B master within its skew time (plus slack for
	// a loaded host), not after the master down interval.
	stopped := time.Now()
	if err := a2.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ev := waitState(t, b, "MASTER", settle)
	if took := ev.at.Sub(stopped); took >= mdi {
		t.Errorf("B took over %v after A's stop, want well within the master down interval %v (priority 0)", took, mdi)
	} else {
		t.Logf("stop: B master %v after SIGTERM (%s)", took.Round(time.Millisecond), ev.reason)
	}
	if err := a2.Wait(); err != nil {
		t.Errorf("A after SIGTERM: %v", err)
	}
}
