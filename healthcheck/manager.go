package healthcheck

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// DefaultHistory is how many recent results each check keeps.
const DefaultHistory = 10

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	// Env is shared by the checkers (required unless NewChecker ignores it).
	Env *Env
	// History is how many recent results each check keeps (default
	// DefaultHistory).
	History int
	// Notify receives every transition: a check's first result, and each
	// change between healthy and unhealthy. It is called with the manager's
	// lock held, in order per check, so it must not block or call back
	// into the Manager.
	Notify func(*hcpb.Result)
	// NewChecker builds checkers (default NewChecker); tests replace it.
	NewChecker func(*hcpb.Check, *Env) (Checker, error)
	// DryRun reports every check healthy without sending a packet (Seesaw
	// v2's -dry_run), for running the appliance where its backends must
	// not be probed.
	DryRun bool
	// Quantum is the resolution of the scheduler goroutine (default 1ms):
	// runs due within one quantum start together, which saves a wakeup per
	// run. (The I/O loops, which schedule instead where there are any, wait
	// in whole milliseconds.)
	Quantum time.Duration
}

// Manager runs a set of checks. Each distinct probe runs once per interval
// however many checks share it (checks that differ only in retries or rise
// share one), at a fixed phase within the interval derived from the probe,
// so that checks are spread over the interval and a probe keeps its phase
// across restarts. A run still in progress at its next slot skips that
// slot. Each check turns the probe's outcomes into a state with its own
// retries (fall) and rise, and keeps its recent history.
//
// Probes are scheduled from a heap of due times, by the Env's I/O loop
// (on Linux; the same goroutine that waits for the checks' sockets, so that
// a quiet moment costs one wakeup) or else by a goroutine of the Manager's.
// Runs of plain TCP and HTTP checks start on the loop without blocking; the
// other checkers run on a goroutine each.
type Manager struct {
	opts    ManagerOptions
	ctx     context.Context
	stop    context.CancelFunc
	stats   Stats
	shards  []*shard      // probes by the loop that runs them
	wake    chan struct{} // pokes the scheduler goroutine
	stopped chan struct{} // the scheduler goroutine has returned

	mu      sync.Mutex
	checks  map[uint64]*checkState
	probes  map[string]*probe
	running sync.WaitGroup // runs on goroutines
	closed  bool
}

// probe is one distinct probe and the checks that share it.
type probe struct {
	key      string
	checker  Checker
	invalid  string // why the check cannot run; it then fails with this message
	interval time.Duration
	timeout  time.Duration
	offset   time.Duration
	ctx      context.Context
	cancel   context.CancelFunc

	sh *shard

	// Under Manager.mu:
	subs    []*checkState
	due     time.Time // of the next run
	idx     int       // in sh.due, or -1
	busy    bool      // a run is in progress
	last    *outcome
	stopped bool
}

// outcome is one run of a probe, shared by the checks of that probe.
type outcome struct {
	at  time.Time
	dur time.Duration
	ok  bool
	msg string
}

type histEntry struct {
	o                    *outcome
	healthy              bool
	consecOK, consecFail int // after this outcome
}

// checkState is one check's state. Under Manager.mu.
type checkState struct {
	check      *hcpb.Check
	probe      *probe
	rise, fall int
	known      bool
	healthy    bool
	consecOK   int
	consecFail int
	successes  uint64
	failures   uint64
	hist       []histEntry // ring
	histNext   int
	histLen    int
}

// NewManager returns a manager running no checks.
func NewManager(opts ManagerOptions) *Manager {
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.NewChecker == nil {
		opts.NewChecker = NewChecker
	}
	if opts.Notify == nil {
		opts.Notify = func(*hcpb.Result) {}
	}
	if opts.Quantum <= 0 {
		opts.Quantum = time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		opts:    opts,
		ctx:     ctx,
		stop:    cancel,
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
		checks:  map[uint64]*checkState{},
		probes:  map[string]*probe{},
	}
	var loops []*ioLoop
	if opts.Env != nil {
		loops = opts.Env.getLoops()
	}
	if len(loops) == 0 {
		m.shards = []*shard{{m: m}}
		go m.schedule()
		return m
	}
	close(m.stopped)
	for _, l := range loops {
		s := &shard{m: m, loop: l}
		m.shards = append(m.shards, s)
		l.addTicker(s)
	}
	return m
}

// shard is the probes one I/O loop schedules and runs (all of them when
// there is no loop, and the Manager's goroutine schedules). Spreading the
// probes over a loop per processor lets checks use every core.
type shard struct {
	m     *Manager
	loop  *ioLoop
	due   probeHeap // under Manager.mu
	batch []run     // tick's scratch: tick never runs concurrently with itself
}

// Apply applies one CheckSet from the engine. A full set replaces the set
// held, but a check whose id is in both keeps running, with its state and
// history: ids name a check's whole definition, so the same id is the same
// check. Otherwise upserts add or change checks and removals stop them.
func (m *Manager) Apply(cs *hcpb.CheckSet) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	defer m.poke()
	if cs.GetFull() {
		keep := make(map[uint64]bool, len(cs.GetUpsert()))
		for _, c := range cs.GetUpsert() {
			keep[c.GetId()] = true
		}
		for id := range m.checks {
			if !keep[id] {
				m.removeLocked(id)
			}
		}
	}
	now := time.Now()
	var known map[uint64]*hcpb.KnownState
	if len(cs.GetKnown()) > 0 {
		known = make(map[uint64]*hcpb.KnownState, len(cs.GetKnown()))
		for _, k := range cs.GetKnown() {
			known[k.GetId()] = k
		}
	}
	for _, c := range cs.GetUpsert() {
		m.upsertLocked(c, now, known[c.GetId()])
	}
	for _, id := range cs.GetRemove() {
		m.removeLocked(id)
	}
}

// Len is the number of checks and of distinct probes running.
func (m *Manager) Len() (checks, probes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.checks), len(m.probes)
}

// Stop stops every check and waits for runs in progress on goroutines to
// end. Runs on the Env's I/O loop end by their deadline (or when the Env
// closes), and their results are dropped.
func (m *Manager) Stop() {
	m.mu.Lock()
	m.closed = true
	for id := range m.checks {
		m.removeLocked(id)
	}
	m.mu.Unlock()
	for _, s := range m.shards {
		if s.loop != nil {
			s.loop.removeTicker(s)
		}
	}
	m.stop()
	<-m.stopped
	m.running.Wait()
}

// poke wakes the scheduler to look at the heap again.
func (m *Manager) poke() {
	if m.shards[0].loop != nil {
		for _, s := range m.shards {
			s.loop.wakeup()
		}
		return
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// probeKey is the check's hcpb.ProbeKey with the interval and timeout it
// runs with (a check that gives none gets the defaults): checks with equal
// keys share one probe.
func probeKey(c *hcpb.Check) string {
	if c.GetInterval().AsDuration() <= 0 || c.GetTimeout().AsDuration() <= 0 {
		n := proto.Clone(c).(*hcpb.Check)
		n.Interval, n.Timeout = durationpb.New(intervalOf(c)), durationpb.New(timeoutOf(c))
		c = n
	}
	return hcpb.ProbeKey(c)
}

// probeOffset is a probe's phase within its interval: a hash of its key,
// so that probes spread evenly, deterministically.
func probeOffset(key string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(interval))
}

// nextSlot is the first time after now at the probe's phase.
func nextSlot(now time.Time, interval, offset time.Duration) time.Time {
	t := now.Truncate(interval).Add(offset)
	for !t.After(now) {
		t = t.Add(interval)
	}
	return t
}

func thresholds(c *hcpb.Check) (rise, fall int) {
	rise, fall = int(c.GetRise()), int(c.GetFall())
	if rise < 1 {
		rise = 1
	}
	if fall < 1 {
		fall = max(int(c.GetRetries()), 0) + 1
	}
	return rise, fall
}

// upsertLocked adds or changes check c. A check new to this manager
// continues from known, the engine's last word on it, when given (a
// restarted checker: see seed).
func (m *Manager) upsertLocked(c *hcpb.Check, now time.Time, known *hcpb.KnownState) {
	key := probeKey(c)
	cs := m.checks[c.GetId()]
	if cs != nil {
		if proto.Equal(cs.check, c) {
			return
		}
		// The same check, changed: it keeps its state and history.
		cs.check = c
		cs.rise, cs.fall = thresholds(c)
		if cs.probe.key == key {
			return
		}
		m.detachLocked(cs)
	} else {
		cs = &checkState{check: c, hist: make([]histEntry, m.opts.History)}
		cs.rise, cs.fall = thresholds(c)
		cs.seed(known)
		m.checks[c.GetId()] = cs
	}
	p := m.probes[key]
	if p == nil {
		p = m.newProbeLocked(c, key, now)
	}
	p.subs = append(p.subs, cs)
	cs.probe = p
	// A check that joins a running probe takes its latest outcome now
	// rather than an interval later.
	if p.last != nil && !cs.known {
		if cs.record(p.last) {
			m.opts.Notify(cs.result(p.last))
		}
	}
}

func (m *Manager) newProbeLocked(c *hcpb.Check, key string, now time.Time) *probe {
	p := &probe{key: key, interval: intervalOf(c), timeout: timeoutOf(c)}
	p.offset = probeOffset(key, p.interval)
	p.ctx, p.cancel = context.WithCancel(m.ctx)
	switch {
	case m.opts.DryRun:
		p.checker = dryRun{}
	default:
		k, err := m.opts.NewChecker(c, m.opts.Env)
		if err != nil {
			p.invalid = "invalid check, not run: " + strings.TrimPrefix(err.Error(), "healthcheck: ")
		}
		p.checker = k
	}
	m.probes[key] = p
	p.due = nextSlot(now, p.interval, p.offset)
	h := fnv.New32a()
	h.Write([]byte(key))
	p.sh = m.shards[int(h.Sum32()%uint32(len(m.shards)))]
	heap.Push(&p.sh.due, p)
	return p
}

func (m *Manager) removeLocked(id uint64) {
	cs := m.checks[id]
	if cs == nil {
		return
	}
	delete(m.checks, id)
	m.detachLocked(cs)
}

// detachLocked takes cs off its probe, stopping the probe if it was the last.
func (m *Manager) detachLocked(cs *checkState) {
	p := cs.probe
	cs.probe = nil
	if i := slices.Index(p.subs, cs); i >= 0 {
		p.subs = slices.Delete(p.subs, i, i+1)
	}
	if len(p.subs) > 0 {
		return
	}
	p.stopped = true
	if p.idx >= 0 {
		heap.Remove(&p.sh.due, p.idx)
	}
	p.cancel()
	delete(m.probes, p.key)
}

// schedule starts the runs that fall due until the Manager stops. It wakes
// on the quantum's grid, so that runs due close together start together.
func (m *Manager) schedule() {
	defer close(m.stopped)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := m.shards[0].tick(time.Now())
		wait := time.Hour
		if !next.IsZero() {
			at := next.Truncate(m.opts.Quantum)
			if at.Before(next) {
				at = at.Add(m.opts.Quantum)
			}
			wait = at.Sub(time.Now())
		}
		timer.Reset(wait)
		select {
		case <-m.ctx.Done():
			return
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// tick starts the shard's runs due by now and returns when the next is
// due (zero if none is).
func (s *shard) tick(now time.Time) time.Time {
	m := s.m
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return time.Time{}
	}
	batch := s.batch[:0]
	for len(s.due) > 0 && !s.due[0].due.After(now) {
		p := s.due[0]
		if p.busy {
			// Still running from its last slot: skip this one.
			m.stats.skipped.Add(1)
		} else {
			p.busy = true
			batch = append(batch, run{p, p.due})
		}
		p.due = p.due.Add(p.interval)
		for !p.due.After(now) {
			// Fallen behind (a stopped clock, an overloaded host):
			// resume at the next slot rather than catch up.
			p.due = p.due.Add(p.interval)
			m.stats.skipped.Add(1)
		}
		heap.Fix(&s.due, 0)
	}
	var next time.Time
	if len(s.due) > 0 {
		next = s.due[0].due
	}
	m.mu.Unlock()
	for i, r := range batch {
		m.start(r.p, r.due)
		batch[i] = run{}
	}
	s.batch = batch[:0]
	return next
}

type run struct {
	p   *probe
	due time.Time
}

// start starts the run of p due at due: on the Env's I/O loop when its
// checker can run there, else on a goroutine.
func (m *Manager) start(p *probe, due time.Time) {
	start := time.Now()
	m.stats.lateness.observe(start.Sub(due))
	m.stats.inFlight.Add(1)
	if p.invalid != "" {
		m.finish(p, start, Outcome{Message: p.invalid})
		return
	}
	deadline := start.Add(p.timeout)
	if ac, ok := p.checker.(asyncChecker); ok && p.sh.loop != nil {
		if ac.start(p.sh.loop, deadline, func(o Outcome) { m.finish(p, start, o) }) {
			return
		}
	}
	m.running.Add(1)
	go func() {
		defer m.running.Done()
		m.finish(p, start, p.checker.Check(deadlineCtx{p.ctx, deadline}))
	}()
}

// finish records the outcome of the run of p that started at start.
func (m *Manager) finish(p *probe, start time.Time, o Outcome) {
	end := time.Now()
	m.stats.inFlight.Add(-1)
	m.stats.runs.Add(1)
	if !o.OK {
		m.stats.failures.Add(1)
	}
	out := &outcome{at: start, dur: end.Sub(start), ok: o.OK, msg: o.Message}

	m.mu.Lock()
	defer m.mu.Unlock()
	p.busy = false
	if p.stopped {
		return
	}
	p.last = out
	for _, cs := range p.subs {
		if cs.record(out) {
			m.opts.Notify(cs.result(out))
		}
	}
}

// probeHeap orders probes by when they are next due.
type probeHeap []*probe

func (h probeHeap) Len() int           { return len(h) }
func (h probeHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h probeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *probeHeap) Push(x any) {
	p := x.(*probe)
	p.idx = len(*h)
	*h = append(*h, p)
}
func (h *probeHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	p.idx = -1
	return p
}

// seed starts a new check from the engine's last known state of it (k,
// nil for none): the state, and the consecutive runs behind it, as a
// checker that had run it all along would have them. A healthy check then
// still needs fall (retries+1) failures in all to go down, where a check
// that knows nothing lets its first result decide (record). Nothing is
// reported for the seed: it is what the engine already holds.
func (cs *checkState) seed(k *hcpb.KnownState) {
	if k == nil {
		return
	}
	cs.known, cs.healthy = true, k.GetHealthy()
	cs.consecOK, cs.consecFail = int(k.GetConsecutiveSuccesses()), int(k.GetConsecutiveFailures())
	if cs.consecOK > 0 && cs.consecFail > 0 { // cannot both be: trust neither
		cs.consecOK, cs.consecFail = 0, 0
	}
}

// record adds o to the check's history and state. It reports a transition:
// the first result, or a change of state. A healthy check turns unhealthy
// after fall consecutive failures (retries+1); an unhealthy one turns
// healthy after rise consecutive successes. The first result decides the
// state of a new check either way, as in Seesaw v2.
func (cs *checkState) record(o *outcome) bool {
	if o.ok {
		cs.successes++
		cs.consecOK++
		cs.consecFail = 0
	} else {
		cs.failures++
		cs.consecFail++
		cs.consecOK = 0
	}
	changed := false
	switch {
	case !cs.known:
		cs.known, cs.healthy, changed = true, o.ok, true
	case cs.healthy && cs.consecFail >= cs.fall:
		cs.healthy, changed = false, true
	case !cs.healthy && cs.consecOK >= cs.rise:
		cs.healthy, changed = true, true
	}
	cs.hist[cs.histNext] = histEntry{o: o, healthy: cs.healthy, consecOK: cs.consecOK, consecFail: cs.consecFail}
	cs.histNext = (cs.histNext + 1) % len(cs.hist)
	cs.histLen = min(cs.histLen+1, len(cs.hist))
	return changed
}

func (cs *checkState) result(o *outcome) *hcpb.Result {
	return cs.resultOf(histEntry{o: o, healthy: cs.healthy, consecOK: cs.consecOK, consecFail: cs.consecFail})
}

func (cs *checkState) resultOf(h histEntry) *hcpb.Result {
	return &hcpb.Result{
		Id:       cs.check.GetId(),
		Healthy:  h.healthy,
		Success:  h.o.ok,
		Message:  h.o.msg,
		Time:     timestamppb.New(h.o.at),
		Duration: durationpb.New(h.o.dur),

		ConsecutiveSuccesses: uint32(h.consecOK),
		ConsecutiveFailures:  uint32(h.consecFail),
	}
}

// last is the newest history entry.
func (cs *checkState) last() (histEntry, bool) {
	if cs.histLen == 0 {
		return histEntry{}, false
	}
	return cs.hist[(cs.histNext-1+len(cs.hist))%len(cs.hist)], true
}

// Results returns the latest result of every check that has one, ordered by
// id: the full resync sent to the engine.
func (m *Manager) Results() []*hcpb.Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*hcpb.Result, 0, len(m.checks))
	for _, cs := range m.checks {
		if h, ok := cs.last(); ok {
			out = append(out, cs.resultOf(h))
		}
	}
	slices.SortFunc(out, func(a, b *hcpb.Result) int { return cmp.Compare(a.Id, b.Id) })
	return out
}

// List returns the status of the checks req asks for, ordered by id.
func (m *Manager) List(req *hcpb.ListChecksRequest) *hcpb.ListChecksResponse {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []uint64
	if len(req.GetIds()) > 0 {
		ids = slices.Clone(req.GetIds())
	} else {
		ids = make([]uint64, 0, len(m.checks))
		for id := range m.checks {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	resp := &hcpb.ListChecksResponse{}
	for _, id := range ids {
		if id <= req.GetAfterId() {
			continue
		}
		cs := m.checks[id]
		if cs == nil {
			continue
		}
		if lim := req.GetLimit(); lim > 0 && uint32(len(resp.Checks)) >= lim {
			resp.More = true
			break
		}
		if req.GetCountsOnly() {
			resp.Checks = append(resp.Checks, &hcpb.CheckStatus{Check: &hcpb.Check{Id: id}, Successes: cs.successes, Failures: cs.failures})
			continue
		}
		st := &hcpb.CheckStatus{
			Check:                cs.check,
			Healthy:              cs.healthy,
			Successes:            cs.successes,
			Failures:             cs.failures,
			ConsecutiveSuccesses: uint32(cs.consecOK),
			ConsecutiveFailures:  uint32(cs.consecFail),
			Shared:               uint32(len(cs.probe.subs)),
		}
		if h, ok := cs.last(); ok {
			st.Last = cs.resultOf(h)
		}
		if !req.GetOmitHistory() {
			for i := cs.histLen; i > 0; i-- {
				h := cs.hist[(cs.histNext-i+len(cs.hist))%len(cs.hist)]
				st.History = append(st.History, cs.resultOf(h))
			}
		}
		resp.Checks = append(resp.Checks, st)
	}
	return resp
}

// deadlineCtx is a context with a deadline but no timer: checkers bound
// their waits by the deadline themselves (socket deadlines), so the timer
// and allocations of context.WithDeadline, on every run of every check,
// buy nothing. Done closes only when the probe is stopped.
type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c deadlineCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// dryRun is the checker of every check under DryRun.
type dryRun struct{}

func (dryRun) Check(context.Context) Outcome {
	return Outcome{OK: true, Message: "dry run: not checked, reported healthy"}
}

// Stats are counters of a Manager's runs.
type Stats struct {
	runs     atomic.Uint64
	failures atomic.Uint64
	skipped  atomic.Uint64
	inFlight atomic.Int64
	lateness Histogram
}

// StatsSnapshot is Stats at one moment.
type StatsSnapshot struct {
	Runs, Failures, Skipped uint64
	InFlight                int64
	// Lateness is how late runs started after their slot.
	Lateness HistogramSnapshot
}

// Stats returns the run counters so far.
func (m *Manager) Stats() StatsSnapshot {
	return StatsSnapshot{
		Runs:     m.stats.runs.Load(),
		Failures: m.stats.failures.Load(),
		Skipped:  m.stats.skipped.Load(),
		InFlight: m.stats.inFlight.Load(),
		Lateness: m.stats.lateness.Snapshot(),
	}
}

func (s StatsSnapshot) String() string {
	return fmt.Sprintf("%d runs (%d failed, %d slots skipped), %d in flight, lateness p50 %v p99 %v",
		s.Runs, s.Failures, s.Skipped, s.InFlight, s.Lateness.Quantile(0.5), s.Lateness.Quantile(0.99))
}
