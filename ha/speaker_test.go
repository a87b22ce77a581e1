package ha

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seesawlb/seesaw/ha/vrrp"
)

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
	vipT  = netip.MustParseAddr("192.0.2.100")
)

// testSpeaker is a speaker on a hub with its transitions recorded.
type testSpeaker struct {
	*Speaker
	port   *port
	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex
	transitions []vrrp.Transition
}

func startSpeaker(t *testing.T, h *hub, local netip.Addr, prio uint8, interval time.Duration, mod ...func(*vrrp.Config)) *testSpeaker {
	t.Helper()
	c := vrrp.Config{VRID: 60, Priority: prio, Interval: interval, Local: local, Addresses: []netip.Addr{vipT}}
	for _, f := range mod {
		f(&c)
	}
	conn, err := h.open(ConnConfig{Interface: "fake0", Local: local, Multicast: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testSpeaker{port: conn.(*port), done: make(chan struct{})}
	ts.Speaker, err = NewSpeaker("fake0", c, conn, SpeakerOptions{
		Logf: t.Logf,
		OnTransition: func(tr vrrp.Transition) {
			ts.mu.Lock()
			defer ts.mu.Unlock()
			ts.transitions = append(ts.transitions, tr)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	go func() {
		defer close(ts.done)
		ts.Run(ctx)
	}()
	return ts
}

func (ts *testSpeaker) stop() {
	ts.cancel()
	<-ts.done
}

func (ts *testSpeaker) last() vrrp.Transition {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.transitions[len(ts.transitions)-1]
}

// In a synctest bubble the clock only moves when every goroutine is
// blocked, so these timings are exact, not measured.

func TestSpeakerCrashFailoverIsExactlyTheMasterDownInterval(t *testing.T) {
	for _, interval := range []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, time.Second} {
		synctest.Test(t, func(t *testing.T) {
			h := newHub()
			a := startSpeaker(t, h, addrA, 200, interval)
			time.Sleep(interval / 2)
			b := startSpeaker(t, h, addrB, 100, interval)
			defer b.stop()
			time.Sleep(10 * interval)
			synctest.Wait()
			if a.State() != vrrp.Master || b.State() != vrrp.Backup {
				t.Fatalf("A %v, B %v; want A master", a.State(), b.State())
			}
			// A crashes: it keeps running but nothing it sends arrives.
			a.port.setDead(true)
			adverts := h.sentBy(addrA)
			lastAdvert := adverts[len(adverts)-1].at
			time.Sleep(5 * interval)
			synctest.Wait()
			tr := b.last()
			if tr.To != vrrp.Master {
				t.Fatalf("B did not take over: %+v", tr)
			}
			if got, want := tr.At.Sub(lastAdvert), vrrp.MasterDownInterval(interval, 100); got != want {
				t.Errorf("interval %v: takeover %v after the last advert, want exactly %v", interval, got, want)
			}
			if first := h.sentBy(addrB); len(first) == 0 || !first[0].at.Equal(tr.At) || first[0].adv.Priority != 100 {
				t.Errorf("B's first advert %+v, want at the takeover", first)
			}
			a.stop()
		})
	}
}

func TestSpeakerGracefulStopHandsOverAfterSkew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		interval := 100 * time.Millisecond
		h := newHub()
		a := startSpeaker(t, h, addrA, 200, interval)
		time.Sleep(interval)
		b := startSpeaker(t, h, addrB, 100, interval)
		defer b.stop()
		time.Sleep(time.Second)
		synctest.Wait()
		stopAt := time.Now()
		a.stop()
		adverts := h.sentBy(addrA)
		if last := adverts[len(adverts)-1]; last.adv.Priority != 0 || !last.at.Equal(stopAt) {
			t.Fatalf("A's last advert %+v, want priority 0 at the stop", last)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		tr := b.last()
		if tr.To != vrrp.Master || tr.At.Sub(stopAt) != vrrp.SkewTime(interval, 100) {
			t.Fatalf("B's takeover %+v %v after the stop, want master after %v", tr, tr.At.Sub(stopAt), vrrp.SkewTime(interval, 100))
		}
	})
}

func TestSpeakerRelinquish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		interval := 50 * time.Millisecond
		h := newHub()
		preempt := func(c *vrrp.Config) { c.Preempt = true }
		a := startSpeaker(t, h, addrA, 200, interval, preempt)
		defer a.stop()
		time.Sleep(interval)
		b := startSpeaker(t, h, addrB, 100, interval, preempt)
		defer b.stop()
		time.Sleep(time.Second)
		synctest.Wait()
		if a.State() != vrrp.Master {
			t.Fatalf("A %v", a.State())
		}
		a.Relinquish("manual failover")
		synctest.Wait()
		if a.State() != vrrp.Backup {
			t.Fatalf("A did not step down: %v", a.State())
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if a.State() != vrrp.Backup || b.State() != vrrp.Master {
			t.Fatalf("after relinquish: A %v, B %v; want B master and A not preempting", a.State(), b.State())
		}
	})
}

func TestSpeakerSurvivesSocketErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		interval := 50 * time.Millisecond
		h := newHub()
		a := startSpeaker(t, h, addrA, 200, interval)
		defer a.stop()
		a.port.fail(5, 5)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		s := a.Stats()
		if s.SendErrors != 5 || s.ReceiveErrors != 5 || s.LastError == "" {
			t.Errorf("errors not counted: %+v", s)
		}
		if s.State != vrrp.Master || s.AdvertsSent == 0 {
			t.Errorf("speaker stopped working after errors: %+v", s)
		}
	})
}
