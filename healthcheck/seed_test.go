package healthcheck

import (
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/proto"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// TestSeededCheckContinues: a check new to the manager that comes with the
// engine's last known state (a restarted checker) continues from it: a
// healthy one needs retries+1 consecutive failures in all to go down, not
// one, and an unhealthy one rise successes; the seed itself is not
// reported. Without a seed the first result decides (TestFirstResultDecides).
func TestSeededCheckContinues(t *testing.T) {
	for _, c := range []struct {
		name       string
		known      *hcpb.KnownState
		retries    int32
		rise       int32
		ok         bool // every run's outcome
		runsToFlip int  // runs until the state changes (and is reported)
	}{
		{"healthy, no failures yet", &hcpb.KnownState{Healthy: true, ConsecutiveSuccesses: 7}, 2, 0, false, 3},
		{"healthy, one failure already", &hcpb.KnownState{Healthy: true, ConsecutiveFailures: 1}, 2, 0, false, 2},
		{"healthy, retries 0", &hcpb.KnownState{Healthy: true}, 0, 0, false, 1},
		{"unhealthy, rise 3, one success already", &hcpb.KnownState{Healthy: false, ConsecutiveSuccesses: 1}, 0, 3, true, 2},
		{"no seed: the first result decides", nil, 2, 0, false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{ok: func(int) bool { return c.ok }}
				f := newFixture(map[string]*script{"10.0.0.1": s})
				defer f.m.Stop()
				chk := mcheck(1, "10.0.0.1", time.Second)
				chk.Retries, chk.Rise = c.retries, c.rise
				cs := &hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{chk}}
				if c.known != nil {
					k := proto.Clone(c.known).(*hcpb.KnownState)
					k.Id = 1
					cs.Known = []*hcpb.KnownState{k, {Id: 99, Healthy: true}} // 99: not in the set, ignored
				}
				f.m.Apply(cs)
				if c.known != nil {
					if st := status(t, f.m, 1); st.Healthy != c.known.Healthy {
						t.Fatalf("before any run: healthy=%v, want the seed's %v", st.Healthy, c.known.Healthy)
					}
				}
				if n, _ := f.m.Len(); n != 1 {
					t.Fatalf("%d checks, want 1", n)
				}
				for run := 1; ; run++ {
					for n := len(s.times()); len(s.times()) == n; {
						time.Sleep(time.Second)
						synctest.Wait()
					}
					notes := f.notifications()
					if run < c.runsToFlip {
						if len(notes) != 0 {
							t.Fatalf("after %d runs: reported %v, want nothing before run %d", run, notes, c.runsToFlip)
						}
						continue
					}
					if len(notes) != 1 || notes[0].Healthy != c.ok {
						t.Fatalf("after %d runs: reported %v, want one result with healthy=%v", run, notes, c.ok)
					}
					if c.ok && notes[0].ConsecutiveSuccesses == 0 || !c.ok && notes[0].ConsecutiveFailures == 0 {
						t.Errorf("result %v does not carry the consecutive count (%d runs)", notes[0], run)
					}
					return
				}
			})
		})
	}
}

// TestSeedIgnoredForARunningCheck: the engine's known state is for a
// checker that does not know the check; one that runs it keeps its own.
func TestSeedIgnoredForARunningCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(map[string]*script{"10.0.0.1": {}})
		defer f.m.Stop()
		chk := mcheck(1, "10.0.0.1", time.Second)
		f.m.Apply(&hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{chk}})
		time.Sleep(time.Second)
		synctest.Wait()
		if st := status(t, f.m, 1); !st.Healthy {
			t.Fatalf("not healthy after a success: %v", st)
		}
		f.m.Apply(&hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{chk}, Known: []*hcpb.KnownState{{Id: 1, Healthy: false}}})
		if st := status(t, f.m, 1); !st.Healthy || st.ConsecutiveSuccesses != 1 {
			t.Fatalf("a running check took the seed: %v", st)
		}
	})
}
