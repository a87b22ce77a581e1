package vrrp

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestResume is the restarted router's decision: master at once if the
// previous incarnation's last advert was less than three intervals ago,
// backup as after Start otherwise.
func TestResume(t *testing.T) {
	for _, c := range []struct {
		since time.Duration // now - last advert; <0: no last advert
		want  State
	}{
		{-1, Backup},
		{0, Master},
		{ival, Master},
		{3*ival - ms, Master},
		{3 * ival, Backup}, // a backup of priority 255 may time out now
		{10 * ival, Backup},
	} {
		t.Run(fmt.Sprint(c.since), func(t *testing.T) {
			m := newM(t, cfg(ipA, 100))
			var last time.Time
			if c.since >= 0 {
				last = t0.Add(-c.since)
			}
			st := m.Resume(t0, last, "reload")
			mustTransition(t, st, Initialize, c.want)
			if m.State() != c.want {
				t.Fatalf("state %v, want %v", m.State(), c.want)
			}
			if c.want == Master {
				if p := sentPriority(t, st); p != 100 {
					t.Errorf("resumed master sent priority %d at once, want an advert at 100", p)
				}
				if !strings.Contains(st.Transition.Reason, "resumed mastership") {
					t.Errorf("reason %q", st.Transition.Reason)
				}
				if !m.LastAdvert().Equal(t0) {
					t.Errorf("LastAdvert %v, want %v", m.LastAdvert(), t0)
				}
			} else if len(st.Send) != 0 {
				t.Errorf("backup sent %d adverts", len(st.Send))
			}
			if c.since >= 3*ival && st.Notice == "" {
				t.Errorf("no notice saying why mastership was not resumed")
			}
			// Once started, Resume does nothing.
			if st := m.Resume(t0.Add(ms), t0, "again"); st.Transition != nil || len(st.Send) != 0 {
				t.Errorf("second Resume: %+v", st)
			}
		})
	}
}

// TestHandoffSendsNoPriorityZero: a master stopping for a restart sends
// one last advert at its own priority, where Shutdown sends priority 0.
func TestHandoffSendsNoPriorityZero(t *testing.T) {
	m := newM(t, cfg(ipA, 100))
	at := becomeMaster(t, m)
	if !m.LastAdvert().Equal(at) {
		t.Fatalf("LastAdvert %v, want %v", m.LastAdvert(), at)
	}
	next := m.Deadline()
	m.Tick(next)
	if !m.LastAdvert().Equal(next) {
		t.Fatalf("LastAdvert %v after the advert timer, want %v", m.LastAdvert(), next)
	}
	st := m.Handoff(next.Add(ms), "reload")
	mustTransition(t, st, Master, Initialize)
	if len(st.Send) != 1 || sentPriority(t, st) != 100 {
		t.Fatalf("Handoff sent %d adverts (priority %d), want one at 100", len(st.Send), sentPriority(t, st))
	}
	if !m.LastAdvert().Equal(next.Add(ms)) {
		t.Fatalf("LastAdvert %v after Handoff, want %v", m.LastAdvert(), next.Add(ms))
	}
	if !m.Deadline().IsZero() {
		t.Fatalf("timer still set after Handoff")
	}
	if st := m.Receive(next.Add(2*ms), advert(t, ipB, 60, 200, ival)); st.Transition != nil {
		t.Fatalf("handed-off machine reacted to an advert: %+v", st)
	}
	if st := m.Handoff(next.Add(3*ms), "again"); st.Transition != nil {
		t.Fatalf("second Handoff: %+v", st)
	}
}

// TestRestartKeepsMastershipInVirtualTime: a master (A, priority 200 or
// 100) restarted for a reload (Handoff, then a new machine's Resume after
// the restart took gap) stays master and the backup B never transitions,
// as long as the restart takes less than the resume window from Handoff
// (which advertises one last time); a Shutdown hands over at once.
func TestRestartKeepsMastershipInVirtualTime(t *testing.T) {
	for _, c := range []struct {
		prioA    uint8
		gap      time.Duration
		shutdown bool
		bMaster  bool // B takes over
	}{
		{200, 0, false, false},
		{200, ival, false, false},
		{200, 2 * ival, false, false},
		{100, 2*ival - ival/2, false, false},
		{100, 3*ival - ms, false, false}, // Handoff's last advert starts the window

		{200, 5 * ival, false, true}, // too slow: B takes over, A' stays backup
		{200, ival, true, true},      // a stop: B takes over after its skew time
	} {
		t.Run(fmt.Sprintf("prio%d-gap%v-shutdown%v", c.prioA, c.gap, c.shutdown), func(t *testing.T) {
			l := newLAN(t, cfg(ipA, c.prioA), cfg(ipB, 50))
			l.run(t0.Add(time.Second))
			if m := l.masters(); len(m) != 1 || m[0] != 0 {
				t.Fatalf("masters %v, want A", m)
			}
			// Stop just before A's next advert: the worst case.
			l.run(l.ms[0].Deadline().Add(-ms))
			bBefore := len(l.states[1])
			stopAt := l.now
			if c.shutdown {
				l.apply(0, l.ms[0].Shutdown(l.now, "stop"))
			} else {
				l.apply(0, l.ms[0].Handoff(l.now, "reload"))
			}
			// A stop is no restart: the engine gives the next HA nothing
			// to resume from.
			var last time.Time
			if !c.shutdown {
				last = l.ms[0].LastAdvert()
			}
			l.run(stopAt.Add(c.gap))
			a2 := newM(t, cfg(ipA, c.prioA))
			l.ms[0] = a2
			l.apply(0, a2.Resume(l.now, last, "reload"))
			l.run(l.now.Add(2 * time.Second))
			bTransitions := l.states[1][bBefore:]
			if c.bMaster {
				if l.ms[1].State() != Master || len(bTransitions) == 0 {
					t.Fatalf("B is %v (transitions %v), want master", l.ms[1].State(), bTransitions)
				}
				if c.shutdown {
					if took := bTransitions[0].At.Sub(stopAt); took > SkewTime(ival, 50) {
						t.Errorf("B took over %v after the stop, want within its skew time %v", took, SkewTime(ival, 50))
					}
				}
				return
			}
			if len(bTransitions) != 0 {
				t.Fatalf("B transitioned during A's restart: %v", bTransitions)
			}
			if m := l.masters(); len(m) != 1 || m[0] != 0 {
				t.Fatalf("masters %v, want A", m)
			}
		})
	}
}
