package healthcheck

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// script is a fake checker: run n succeeds when ok(n), after delay.
type script struct {
	ok    func(n int) bool
	delay time.Duration

	mu   sync.Mutex
	runs []time.Time
}

func (s *script) Check(ctx context.Context) Outcome {
	s.mu.Lock()
	n := len(s.runs)
	s.runs = append(s.runs, time.Now())
	s.mu.Unlock()
	if s.delay > 0 {
		// As real checkers do, enforce the deadline rather than wait for
		// ctx.Done.
		dl, _ := ctx.Deadline()
		select {
		case <-time.After(s.delay):
		case <-time.After(time.Until(dl)):
			return Outcome{Message: fmt.Sprintf("run %d: timed out", n)}
		}
	}
	ok := s.ok == nil || s.ok(n)
	return Outcome{OK: ok, Message: fmt.Sprintf("run %d ok=%v", n, ok)}
}

func (s *script) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.runs)
}

// fixture is a Manager whose checkers are scripts chosen by the check's
// address, with every notification recorded.
type fixture struct {
	m       *Manager
	mu      sync.Mutex
	scripts map[string]*script
	built   int
	notes   []*hcpb.Result
}

func newFixture(scripts map[string]*script) *fixture {
	f := &fixture{scripts: scripts}
	f.m = NewManager(ManagerOptions{
		History: 4,
		Notify: func(r *hcpb.Result) {
			f.mu.Lock()
			f.notes = append(f.notes, r)
			f.mu.Unlock()
		},
		NewChecker: func(c *hcpb.Check, _ *Env) (Checker, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.built++
			s := f.scripts[fmt.Sprintf("%s:%d", c.GetAddress(), c.GetPort())]
			if s == nil {
				s = f.scripts[c.GetAddress()]
			}
			if s == nil {
				// Validate as the real thing would, but never probe.
				if _, err := NewChecker(c, nil); err != nil {
					return nil, err
				}
				s = &script{}
			}
			return s, nil
		},
	})
	return f
}

func (f *fixture) notifications() []*hcpb.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.notes)
}

func mcheck(id uint64, addr string, interval time.Duration) *hcpb.Check {
	return &hcpb.Check{
		Id: id, Type: hcpb.CheckType_TCP, Address: addr, Port: 80,
		Interval: durationpb.New(interval), Timeout: durationpb.New(interval / 2),
	}
}

func status(t *testing.T, m *Manager, id uint64) *hcpb.CheckStatus {
	t.Helper()
	l := m.List(&hcpb.ListChecksRequest{Ids: []uint64{id}})
	if len(l.Checks) != 1 {
		t.Fatalf("check %d not listed", id)
	}
	return l.Checks[0]
}

// TestStagger: each probe first runs at its own phase of the interval,
// derived from the probe, and then every interval at that phase; the
// phases spread over the interval.
func TestStagger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, interval = 200, 10 * time.Second
		scripts := map[string]*script{}
		var set hcpb.CheckSet
		for i := range n {
			addr := fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
			scripts[addr] = &script{}
			set.Upsert = append(set.Upsert, mcheck(uint64(i+1), addr, interval))
		}
		f := newFixture(scripts)
		defer f.m.Stop()
		start := time.Now()
		f.m.Apply(&set)
		time.Sleep(3*interval + 10*time.Millisecond)
		synctest.Wait()
		perSecond := map[int]int{}
		for _, c := range set.Upsert {
			runs := scripts[c.Address].times()
			first := nextSlot(start, interval, probeOffset(probeKey(c), interval))
			// Each run starts on the scheduler's next tick (1ms) after its slot.
			slots := []time.Time{first, first.Add(interval), first.Add(2 * interval)}
			if len(runs) < 3 {
				t.Fatalf("check %d ran at %v, want after each of %v", c.Id, runs, slots)
			}
			for i, r := range runs[:3] {
				if d := r.Sub(slots[i]); d < 0 || d >= time.Millisecond {
					t.Fatalf("check %d: run %d at %v, %v after its slot %v", c.Id, i, r, d, slots[i])
				}
			}
			perSecond[int(first.Sub(start)/time.Second)]++
		}
		// 200 phases over 10 one-second buckets: every bucket is used and
		// none holds more than twice its share.
		for s := range 10 {
			if c := perSecond[s]; c == 0 || c > 2*n/10 {
				t.Errorf("second %d of the interval holds %d first runs: %v", s, c, perSecond)
			}
		}
		if st := f.m.Stats(); st.Lateness.Quantile(1) >= 2*time.Millisecond || st.Skipped != 0 {
			t.Errorf("with fake time no run is late past its tick, or skipped: %v", st)
		}
	})
}

// TestRiseAndFall: retries failures are tolerated; the next one makes the
// check unhealthy; rise consecutive successes make it healthy again.
func TestRiseAndFall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		//          0  1  2  3  4  5  6  7  8
		pattern := []bool{true, false, false, false, true, false, true, true, true}
		s := &script{ok: func(n int) bool { return n >= len(pattern) || pattern[n] }}
		f := newFixture(map[string]*script{"10.0.0.1": s})
		defer f.m.Stop()
		c := mcheck(1, "10.0.0.1", time.Second)
		c.Retries, c.Rise = 2, 2
		f.m.Apply(&hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{c}})
		var healthy []bool
		for range pattern {
			for n := len(s.times()); len(s.times()) == n; {
				time.Sleep(time.Second)
				synctest.Wait()
			}
			healthy = append(healthy, status(t, f.m, 1).Healthy)
		}
		wantHealthy := []bool{true, true, true, false, false, false, false, true, true}
		if !slices.Equal(healthy, wantHealthy) {
			t.Errorf("healthy after each run: %v, want %v", healthy, wantHealthy)
		}
		var trans []string
		for _, r := range f.notifications() {
			trans = append(trans, fmt.Sprintf("%s healthy=%v", r.Message, r.Healthy))
		}
		wantTrans := []string{"run 0 ok=true healthy=true", "run 3 ok=false healthy=false", "run 7 ok=true healthy=true"}
		if !slices.Equal(trans, wantTrans) {
			t.Errorf("transitions %q, want %q", trans, wantTrans)
		}
		st := status(t, f.m, 1)
		if st.Successes != 5 || st.Failures != 4 || st.ConsecutiveSuccesses != 3 || st.ConsecutiveFailures != 0 {
			t.Errorf("counts %v", st)
		}
		// The history keeps the last 4, oldest first, each with the state
		// it left.
		var hist []string
		for _, r := range st.History {
			hist = append(hist, fmt.Sprintf("%s/%v", r.Message, r.Healthy))
			if r.Id != 1 || r.Time == nil || r.Duration == nil {
				t.Errorf("history entry %v", r)
			}
		}
		wantHist := []string{"run 5 ok=false/false", "run 6 ok=true/false", "run 7 ok=true/true", "run 8 ok=true/true"}
		if !slices.Equal(hist, wantHist) {
			t.Errorf("history %q, want %q", hist, wantHist)
		}
		if st.Last.Message != "run 8 ok=true" {
			t.Errorf("last %v", st.Last)
		}
	})
}

// TestFirstResultDecides: a new check takes the state of its first result,
// whatever its retries or rise.
func TestFirstResultDecides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(map[string]*script{"10.0.0.1": {ok: func(int) bool { return false }}})
		defer f.m.Stop()
		c := mcheck(1, "10.0.0.1", time.Second)
		c.Retries = 5
		f.m.Apply(&hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{c}})
		if st := status(t, f.m, 1); st.Last != nil || st.Healthy {
			t.Fatalf("before any run: %v", st)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := f.notifications(); len(n) != 1 || n[0].Healthy || n[0].Success {
			t.Fatalf("notifications %v: want one, unhealthy", n)
		}
	})
}

// TestSharedProbe: checks that differ only in retries share one probe,
// which runs once per interval for both; each applies its own retries.
func TestSharedProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{ok: func(n int) bool { return n == 0 }}
		f := newFixture(map[string]*script{"10.0.0.1": s})
		defer f.m.Stop()
		a, b := mcheck(1, "10.0.0.1", time.Second), mcheck(2, "10.0.0.1", time.Second)
		b.Retries = 1
		other := mcheck(3, "10.0.0.1", time.Second)
		other.Port = 81
		f.scripts["10.0.0.1:81"] = &script{}
		f.m.Apply(&hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{a, b, other}})
		if c, p := f.m.Len(); c != 3 || p != 2 {
			t.Fatalf("%d checks as %d probes, want 3 as 2", c, p)
		}
		if st := status(t, f.m, 1); st.Shared != 2 {
			t.Errorf("shared %d", st.Shared)
		}
		var runsA []int
		for range 3 {
			time.Sleep(time.Second)
			synctest.Wait()
			runsA = append(runsA, len(s.times()))
		}
		if !slices.Equal(runsA, []int{1, 2, 3}) {
			t.Errorf("runs after each interval %v: the shared probe must run once per interval", runsA)
		}
		var got []string
		for _, r := range f.notifications() {
			if r.Id != 3 {
				got = append(got, fmt.Sprintf("%d:%s:%v", r.Id, r.Message, r.Healthy))
			}
		}
		want := []string{"1:run 0 ok=true:true", "2:run 0 ok=true:true", "1:run 1 ok=false:false", "2:run 2 ok=false:false"}
		if !slices.Equal(got, want) {
			t.Errorf("transitions %v, want %v", got, want)
		}
		// A check joining a running probe gets its latest result at once.
		c := mcheck(4, "10.0.0.1", time.Second)
		f.m.Apply(&hcpb.CheckSet{Upsert: []*hcpb.Check{c}})
		if st := status(t, f.m, 4); st.Last == nil || st.Last.Message != "run 2 ok=false" {
			t.Errorf("joined check: %v", st)
		}
		// Removing all but one keeps the probe; removing that stops it.
		f.m.Apply(&hcpb.CheckSet{Remove: []uint64{1, 2}})
		time.Sleep(time.Second)
		synctest.Wait()
		n := len(s.times())
		f.m.Apply(&hcpb.CheckSet{Remove: []uint64{4}})
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if len(s.times()) != n || n != 4 {
			t.Errorf("runs: %d before the last removal, %d after", n, len(s.times()))
		}
		if f.built != 2 {
			t.Errorf("%d checkers built, want 2 (one per probe)", f.built)
		}
	})
}

// TestApplyFullKeepsState: a full set keeps the checks it still holds, with
// their history, and drops the others.
func TestApplyFullKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sa, sb, sc := &script{}, &script{}, &script{}
		f := newFixture(map[string]*script{"10.0.0.1": sa, "10.0.0.2": sb, "10.0.0.3": sc})
		defer f.m.Stop()
		a, b, c := mcheck(1, "10.0.0.1", time.Second), mcheck(2, "10.0.0.2", time.Second), mcheck(3, "10.0.0.3", time.Second)
		f.m.Apply(&hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{a, b}})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		before := status(t, f.m, 1)
		f.m.Apply(&hcpb.CheckSet{Full: true, Upsert: []*hcpb.Check{a, c}})
		after := status(t, f.m, 1)
		if after.Successes != before.Successes || len(after.History) != len(before.History) || before.Successes == 0 {
			t.Errorf("check 1 lost its state: %v then %v", before, after)
		}
		nb := len(sb.times())
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if len(sb.times()) != nb {
			t.Errorf("a check dropped by the full set still runs")
		}
		if len(sc.times()) == 0 {
			t.Errorf("a check added by the full set does not run")
		}
		var ids []uint64
		for _, s := range f.m.List(&hcpb.ListChecksRequest{OmitHistory: true}).Checks {
			ids = append(ids, s.Check.Id)
			if len(s.History) != 0 {
				t.Errorf("history listed although omitted")
			}
		}
		if !slices.Equal(ids, []uint64{1, 3}) {
			t.Errorf("listed %v", ids)
		}
		// Paging.
		l := f.m.List(&hcpb.ListChecksRequest{Limit: 1})
		if len(l.Checks) != 1 || !l.More || l.Checks[0].Check.Id != 1 {
			t.Errorf("page 1: %v", l)
		}
		l = f.m.List(&hcpb.ListChecksRequest{Limit: 1, AfterId: 1})
		if len(l.Checks) != 1 || l.More || l.Checks[0].Check.Id != 3 {
			t.Errorf("page 2: %v", l)
		}
		// An empty full set removes everything.
		f.m.Apply(&hcpb.CheckSet{Full: true})
		if n, p := f.m.Len(); n != 0 || p != 0 {
			t.Errorf("after an empty full set: %d checks, %d probes", n, p)
		}
	})
}

// TestSlowRunSkipsSlots: a run that outlasts its interval is never
// overlapped; the slots it covered are skipped and counted.
func TestSlowRunSkipsSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{delay: 2500 * time.Millisecond}
		f := newFixture(map[string]*script{"10.0.0.1": s})
		defer f.m.Stop()
		c := mcheck(1, "10.0.0.1", time.Second)
		c.Timeout = durationpb.New(10 * time.Second)
		f.m.Apply(&hcpb.CheckSet{Upsert: []*hcpb.Check{c}})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		runs := s.times()
		for i := 1; i < len(runs); i++ {
			if d := runs[i].Sub(runs[i-1]); d != 3*time.Second {
				t.Errorf("runs %v apart, want 3s (every third slot)", d)
			}
		}
		if st := f.m.Stats(); st.Skipped < 4 {
			t.Errorf("skipped %d slots", st.Skipped)
		}
	})
}

// TestTimeout: a run is given the check's timeout as its deadline.
func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{delay: time.Hour}
		f := newFixture(map[string]*script{"10.0.0.1": s})
		defer f.m.Stop()
		c := mcheck(1, "10.0.0.1", 10*time.Second) // timeout 5s
		f.m.Apply(&hcpb.CheckSet{Upsert: []*hcpb.Check{c}})
		time.Sleep(16 * time.Second)
		synctest.Wait()
		st := status(t, f.m, 1)
		if st.Last == nil || st.Last.Message != "run 0: timed out" || st.Last.Duration.AsDuration() != 5*time.Second {
			t.Errorf("last %v: want a 5s timeout", st.Last)
		}
	})
}

// TestInvalidCheck: a check that cannot be built fails every run with the
// reason, and is never probed.
func TestInvalidCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(nil)
		defer f.m.Stop()
		c := &hcpb.Check{Id: 9, Type: hcpb.CheckType_UDP, Address: "127.0.0.1", Interval: durationpb.New(time.Second)}
		f.m.Apply(&hcpb.CheckSet{Upsert: []*hcpb.Check{c}})
		time.Sleep(time.Second)
		synctest.Wait()
		n := f.notifications()
		if len(n) != 1 || n[0].Healthy || n[0].Message != "invalid check, not run: a UDP check needs a port" {
			t.Errorf("notifications %v", n)
		}
	})
}

// TestDryRun: under DryRun every check is healthy and nothing is sent.
func TestDryRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(nil)
		f.m.opts.DryRun = true
		defer f.m.Stop()
		f.m.Apply(&hcpb.CheckSet{Upsert: []*hcpb.Check{mcheck(1, "192.0.2.1", time.Second)}})
		time.Sleep(time.Second)
		synctest.Wait()
		if n := f.notifications(); len(n) != 1 || !n[0].Healthy || f.built != 0 {
			t.Errorf("notifications %v, %d checkers built", n, f.built)
		}
	})
}

// TestUpdateKeepsState: the same id with a changed probe moves to the new
// probe and keeps its state.
func TestUpdateKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s1, s2 := &script{}, &script{ok: func(int) bool { return false }}
		f := newFixture(map[string]*script{"10.0.0.1": s1, "10.0.0.2": s2})
		defer f.m.Stop()
		c := mcheck(1, "10.0.0.1", time.Second)
		f.m.Apply(&hcpb.CheckSet{Upsert: []*hcpb.Check{c}})
		time.Sleep(time.Second)
		synctest.Wait()
		c2 := mcheck(1, "10.0.0.2", time.Second)
		c2.Retries = 1
		f.m.Apply(&hcpb.CheckSet{Upsert: []*hcpb.Check{c2}})
		if n, p := f.m.Len(); n != 1 || p != 1 {
			t.Fatalf("%d checks, %d probes", n, p)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		st := status(t, f.m, 1)
		if !st.Healthy || st.Successes != 1 || st.Failures != 1 {
			t.Errorf("after one failure with retries 1: %v", st)
		}
		n1 := len(s1.times())
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if len(s1.times()) != n1 {
			t.Errorf("the old probe still runs")
		}
	})
}

// TestManagerRealChecks runs real checks against loopback servers through
// a Manager with an Env: on Linux the I/O loops schedule them and run the
// TCP and HTTP ones. Every check gets the state its backend deserves.
func TestManagerRealChecks(t *testing.T) {
	t.Parallel()
	up := tcpServer(t, "tcp4", silent)
	down := closedPort(t, "tcp4")
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer hs.Close()
	web := addrOf(hs.Listener.Addr())
	echo := udpServer(t, "udp4", func(b []byte) []byte { return b })

	env := NewEnv()
	defer env.Close()
	var mu sync.Mutex
	got := map[uint64]bool{}
	m := NewManager(ManagerOptions{Env: env, Notify: func(r *hcpb.Result) {
		mu.Lock()
		got[r.Id] = r.Healthy
		mu.Unlock()
	}})
	defer m.Stop()
	mk := func(id uint64, typ hcpb.CheckType, ap netip.AddrPort, send string) *hcpb.Check {
		c := spec(typ, ap)
		c.Id, c.Send, c.Interval = id, send, durationpb.New(50*time.Millisecond)
		return c
	}
	checks := []*hcpb.Check{
		mk(1, hcpb.CheckType_TCP, up, ""),
		mk(2, hcpb.CheckType_TCP, down, ""),
		mk(3, hcpb.CheckType_HTTP, web, "/"),
		mk(4, hcpb.CheckType_HTTP, web, "/bad"),
		mk(5, hcpb.CheckType_UDP, echo, "hi"), // on a goroutine
	}
	want := map[uint64]bool{1: true, 2: false, 3: true, 4: false, 5: true}
	m.Apply(&hcpb.CheckSet{Full: true, Upsert: checks})
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		done := len(got) == len(want)
		mu.Unlock()
		if done && m.Stats().Runs >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("results %v after %v", got, m.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, w := range want {
		if got[id] != w {
			st := status(t, m, id)
			t.Errorf("check %d healthy=%v, want %v: %v", id, got[id], w, st.Last)
		}
	}
}
