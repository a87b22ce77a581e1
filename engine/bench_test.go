package engine

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/config"
	gen "github.com/seesawlb/seesaw/engine/config/configtest"
	"github.com/seesawlb/seesaw/engine/dataplane"
	"github.com/seesawlb/seesaw/ncc"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// The engine's speed figures (issue 11). TestLabBenchEngine
// (bench_lab_linux_test.go) measures them against the kernel's IPVS in the
// lab, each against ipvsadm in the same boot; the Go benchmarks here
// measure the engine's own parts over the NCC's fake kernels, anywhere:
//
//	go test -run '^$' -bench 'Derive1000|Evaluate1000|HealthFlip' ./engine
//
// The generated clusters are gen's Plain ones: each vserver has two
// entries (TCP 80 with an HTTP check, TCP 443 without), so n vservers of
// 10 backends are 2n services and 20n destinations, and each check decides
// one destination.

// quietGlog sends the engine's and the NCC's logs to files for the rest
// of the test, as the daemons' go to /var/log/seesaw, rather than to the
// test's output (TestMain logs to stderr) or the lab's console.
func quietGlog(tb testing.TB) {
	flag.Set("log_dir", tb.TempDir())
	flag.Set("logtostderr", "false")
	tb.Cleanup(func() { flag.Set("logtostderr", "true") })
}

// benchNCC is an NCC server in process, called directly (no socket), that
// records every Apply: when it began and returned, the process's CPU time
// then (when cpu is set), and what it was asked and answered.
type benchNCC struct {
	srv *ncc.Server
	cpu func() time.Duration

	mu      sync.Mutex
	applies []benchApply
	notify  chan struct{}
}

// benchApply is one recorded Apply.
type benchApply struct {
	start, end       time.Time
	cpuStart, cpuEnd time.Duration
	req              *nccpb.ApplyRequest
	resp             *nccpb.ApplyResponse
	err              error
}

func newBenchNCC(tb testing.TB, cfg ncc.Config, cpu func() time.Duration) *benchNCC {
	srv := ncc.NewServer(cfg)
	tb.Cleanup(srv.Close)
	return &benchNCC{srv: srv, cpu: cpu, notify: make(chan struct{}, 1)}
}

// fakeNCCConfig is an NCC over the fake kernels.
func fakeNCCConfig(k *fakeKernel) ncc.Config {
	return ncc.Config{
		IPVS:   func() (reconcile.IPVS, error) { return k.ipvs.Client() },
		Net:    func() (netconf.Kernel, error) { return k.net, nil },
		NFT:    k.openNFT,
		Sender: func() (ncc.FrameSender, error) { return discard{}, nil },
	}
}

func (c *benchNCC) Apply(ctx context.Context, in *nccpb.ApplyRequest, _ ...grpc.CallOption) (*nccpb.ApplyResponse, error) {
	a := benchApply{req: in}
	if c.cpu != nil {
		a.cpuStart = c.cpu()
	}
	a.start = time.Now()
	a.resp, a.err = c.srv.Apply(ctx, in)
	a.end = time.Now()
	if c.cpu != nil {
		a.cpuEnd = c.cpu()
	}
	c.mu.Lock()
	c.applies = append(c.applies, a)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return a.resp, a.err
}

func (c *benchNCC) GetState(ctx context.Context, in *nccpb.GetStateRequest, _ ...grpc.CallOption) (*nccpb.GetStateResponse, error) {
	return c.srv.GetState(ctx, in)
}

func (c *benchNCC) Announce(ctx context.Context, in *nccpb.AnnounceRequest, _ ...grpc.CallOption) (*nccpb.AnnounceResponse, error) {
	return c.srv.Announce(ctx, in)
}

// count is how many applies have been recorded.
func (c *benchNCC) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.applies)
}

// since returns the applies recorded from index from on.
func (c *benchNCC) since(from int) []benchApply {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.applies[from:])
}

// wait returns the first apply from index from on for which ok holds.
func (c *benchNCC) wait(tb testing.TB, what string, from int, timeout time.Duration, ok func(benchApply) bool) benchApply {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for ; from < len(c.applies); from++ {
			if a := c.applies[from]; ok(a) {
				c.mu.Unlock()
				return a
			}
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-deadline.C:
			tb.Fatalf("%s: no such apply in %v (%d applies)", what, timeout, c.count())
		}
	}
}

// writes is the kernel writes of applies.
func writes(as []benchApply) (n uint64) {
	for _, a := range as {
		if a.resp != nil {
			n += a.resp.KernelWrites
		}
	}
	return n
}

// benchEngine is an engine with its loop running against a benchNCC, this
// node the master (a status from HA every 3 s, as HA sends them).
type benchEngine struct {
	tb   testing.TB
	e    *Engine
	ncc  *benchNCC
	stop func()
}

func startBenchEngine(tb testing.TB, cfgPath, clPath string, n *benchNCC) *benchEngine {
	tb.Helper()
	e := New(Config{EngineConf: cfgPath, ClusterConf: clPath, WatchInterval: -1, NCCTimeout: 10 * time.Minute,
		RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	e.SetNCC(n)
	haStatus := func() {
		e.recordHA(&hapb.Report{Report: &hapb.Report_Status{Status: &hapb.Status{State: seesawpb.HAState_HA_STATE_LEADER}}})
	}
	haStatus()
	if err := e.Reload(); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { e.Loop(ctx) })
	wg.Go(func() {
		t := time.NewTicker(3 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				haStatus()
			}
		}
	})
	be := &benchEngine{tb: tb, e: e, ncc: n}
	var once sync.Once
	be.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
	tb.Cleanup(be.stop)
	return be
}

// checks waits for the engine's check set and returns it.
func (be *benchEngine) checks() *hcpb.CheckSet {
	be.tb.Helper()
	end := time.Now().Add(time.Minute)
	for {
		be.e.mu.Lock()
		cs := be.e.checks
		be.e.mu.Unlock()
		if cs != nil {
			return cs
		}
		if time.Now().After(end) {
			be.tb.Fatal("the engine made no check set")
		}
		time.Sleep(time.Millisecond)
	}
}

// reportAll reports every check healthy at once, as a healthcheck process
// that has just checked them all would.
func (be *benchEngine) reportAll() int {
	cs := be.checks()
	rs := make([]*hcpb.Result, 0, len(cs.Upsert))
	for _, c := range cs.Upsert {
		rs = append(rs, &hcpb.Result{Id: c.Id, Healthy: true, Success: true, Message: "ok"})
	}
	be.e.recordResults(&hcpb.Results{Results: rs})
	return len(rs)
}

// served waits for the apply that puts every service of the model, with
// every destination, in the kernel, counting from apply index from, and
// returns it.
func (be *benchEngine) served(from int) benchApply {
	be.tb.Helper()
	be.checks()
	be.e.mu.Lock()
	var svcs, dests int
	for _, v := range be.e.model.Vservers {
		for _, s := range v.Services {
			svcs++
			dests += len(s.Destinations)
		}
	}
	be.e.mu.Unlock()
	return be.ncc.wait(be.tb, fmt.Sprintf("every one of %d services with %d destinations applied", svcs, dests), from, 10*time.Minute,
		func(a benchApply) bool {
			if a.err != nil || a.resp == nil || len(a.resp.Errors) > 0 {
				return false
			}
			n := 0
			for _, s := range a.req.Desired.Services {
				n += len(s.Destinations)
			}
			return len(a.req.Desired.Services) >= svcs && n >= dests
		})
}

// settle waits until the loop has applied what it computed last and has
// nothing more to do. The plans are compared outside the engine's lock, so
// that waiting does not hold the loop up.
func (be *benchEngine) settle() {
	be.tb.Helper()
	end := time.Now().Add(10 * time.Minute)
	for {
		be.e.mu.Lock()
		p, applied := be.e.plan, be.e.apply.applied
		ok := p != nil && applied != nil && len(be.e.kick) == 0 && be.e.apply.failures == 0 &&
			be.e.cur != nil && p.Model.Cluster == be.e.cur.res.Cluster
		be.e.mu.Unlock()
		if ok && (p.Desired == applied || proto.Equal(p.Desired, applied)) {
			return
		}
		if time.Now().After(end) {
			be.tb.Fatal("the engine never settled")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// benchCheck is a check and the one destination it decides, as IPVS
// names it ("10.2.0.1:80").
type benchCheck struct {
	id   uint64
	dest string
}

// oneDestChecks are the checks of the running model that decide one
// destination each.
func (be *benchEngine) oneDestChecks() []benchCheck {
	be.tb.Helper()
	be.checks()
	be.e.mu.Lock()
	defer be.e.mu.Unlock()
	var out []benchCheck
	for _, c := range be.e.model.Checks.Upsert {
		info := be.e.model.CheckInfo[c.Id]
		if len(info.Destinations) != 1 {
			continue
		}
		parts := strings.Split(info.Destinations[0], "/") // vserver/ip:port/proto
		out = append(out, benchCheck{id: c.Id, dest: parts[1]})
	}
	if len(out) == 0 {
		be.tb.Fatal("no check decides exactly one destination")
	}
	return out
}

// flip reports one check's new state and waits for the Apply that makes
// its destination's change in the kernel. It returns the time from the
// result reaching the engine to that Apply's return, and the kernel writes
// of every apply the change caused (once the engine is idle again).
func (be *benchEngine) flip(c benchCheck, healthy bool) (time.Duration, uint64) {
	be.tb.Helper()
	msg := "ok"
	if !healthy {
		msg = "connection refused"
	}
	from := be.ncc.count()
	r := &hcpb.Results{Results: []*hcpb.Result{{Id: c.id, Healthy: healthy, Success: healthy, Message: msg}}}
	start := time.Now()
	be.e.recordResults(r)
	a := be.ncc.wait(be.tb, "destination "+c.dest+" changed", from, 5*time.Minute, func(a benchApply) bool {
		return destChanged(a, c.dest)
	})
	lat := a.end.Sub(start)
	be.settle()
	return lat, writes(be.ncc.since(from))
}

// destChanged says whether an apply changed an IPVS destination at dest
// ("ip:port") without error.
func destChanged(a benchApply, dest string) bool {
	if a.err != nil || a.resp == nil || len(a.resp.Errors) > 0 {
		return false
	}
	for _, ch := range a.resp.Changes {
		if ch.Kind == reconcile.KindDestination && strings.HasSuffix(ch.Object, " -> "+dest) {
			return true
		}
	}
	return false
}

// percentile is the p-th percentile (0 < p <= 100) of ds, by the nearest
// rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// benchInput is the derive input of a generated Plain cluster of n
// vservers of 10 backends.
func benchInput(tb testing.TB, n int) dataplane.Input {
	tb.Helper()
	cfg, cl := fixture(tb, gen.SeesawCfg("eth0", "eth1"), gen.Cluster(n, 10, gen.Options{Plain: true}))
	res := config.Check(cfg, cl)
	if err := res.Err(); err != nil {
		tb.Fatal(err)
	}
	return dataplane.Input{Engine: res.Engine, Cluster: res.Cluster, Node: res.ThisNode}
}

// BenchmarkDerive1000 is what a reload costs the engine past parsing: the
// model of 1,000 vservers (2,000 services, 20,000 destinations).
func BenchmarkDerive1000(b *testing.B) {
	in := benchInput(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		dataplane.Derive(in)
	}
}

// BenchmarkEvaluate1000 is what any change (a check result, an HA report)
// costs the engine before it calls the NCC: the whole evaluation of 1,000
// vservers, every check healthy.
func BenchmarkEvaluate1000(b *testing.B) {
	m := dataplane.Derive(benchInput(b, 1000))
	health := dataplane.Health{}
	for _, c := range m.Checks.Upsert {
		health[c.Id] = &hcpb.Result{Id: c.Id, Healthy: true, Message: "ok"}
	}
	prev := m.Evaluate(seesawpb.HAState_HA_STATE_LEADER, health, nil)
	b.ReportAllocs()
	for b.Loop() {
		prev = m.Evaluate(seesawpb.HAState_HA_STATE_LEADER, health, prev)
	}
}

// BenchmarkHealthFlip is one check result that flips a destination, from
// the result reaching the engine to the NCC's Apply returning with the
// change made in the fake kernel, at 1,000 and 10,000 destinations. It
// reports the kernel writes per flip: one, the destination the check
// decides.
func BenchmarkHealthFlip(b *testing.B) {
	quietGlog(b)
	for _, n := range []int{50, 500} {
		b.Run(fmt.Sprintf("dests=%d", 20*n), func(b *testing.B) {
			cfg, cl := fixture(b, gen.SeesawCfg("eth0", "eth1"), gen.Cluster(n, 10, gen.Options{Plain: true}))
			k := newFakeKernel("eth0", "eth1")
			k.nodeAddrs(b, cfg, cl)
			be := startBenchEngine(b, cfg, cl, newBenchNCC(b, fakeNCCConfig(k), nil))
			be.reportAll()
			be.served(0)
			be.settle()
			checks := be.oneDestChecks()
			rng := rand.New(rand.NewPCG(1, 2))
			var w uint64
			var lat time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := checks[rng.IntN(len(checks))]
				l, w1 := be.flip(c, false)
				l2, w2 := be.flip(c, true)
				lat += l + l2
				w += w1 + w2
			}
			b.StopTimer()
			b.ReportMetric(float64(lat.Nanoseconds())/float64(2*b.N), "ns/flip")
			b.ReportMetric(float64(w)/float64(2*b.N), "writes/flip")
		})
	}
}

// BenchmarkReloadOne1000 is a reload of 1,000 vservers that changes one
// (its 10 backends' weights, so 20 destinations), from the reload to the
// NCC's Apply returning with the change made in the fake kernel; the
// config alternates between the two versions.
func BenchmarkReloadOne1000(b *testing.B) {
	quietGlog(b)
	const n = 1000
	text := gen.Cluster(n, 10, gen.Options{Plain: true})
	changed := reweigh(b, text, n/2)
	cfg, cl := fixture(b, gen.SeesawCfg("eth0", "eth1"), text)
	k := newFakeKernel("eth0", "eth1")
	k.nodeAddrs(b, cfg, cl)
	nc := newBenchNCC(b, fakeNCCConfig(k), nil)
	be := startBenchEngine(b, cfg, cl, nc)
	be.reportAll()
	be.served(0)
	be.settle()
	var w uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		next := changed
		if i%2 == 1 {
			next = text
		}
		if err := os.WriteFile(cl, []byte(next), 0o644); err != nil {
			b.Fatal(err)
		}
		from := nc.count()
		b.StartTimer()
		if err := be.e.Reload(); err != nil {
			b.Fatal(err)
		}
		nc.wait(b, "the reload applied", from, time.Minute, func(a benchApply) bool {
			return a.err == nil && a.resp != nil && len(a.resp.Errors) == 0 && a.resp.KernelWrites > 0
		})
		b.StopTimer()
		be.settle()
		w += writes(nc.since(from))
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(w)/float64(b.N), "writes/op")
}

// reweigh is a generated cluster.pb with the weights of vserver i's 10
// backends raised by 3 (to 4, 5 or 6, which no other backend has).
func reweigh(tb testing.TB, text string, i int) string {
	tb.Helper()
	prefix := fmt.Sprintf(`fqdn: "be%04d`, i) // be<i><0-9>: vserver i's backends
	lines := strings.Split(text, "\n")
	changed := 0
	for j, l := range lines {
		if !strings.Contains(l, prefix) {
			continue
		}
		for w := 3; w >= 1; w-- {
			if r := strings.Replace(l, fmt.Sprintf("weight: %d }", w), fmt.Sprintf("weight: %d }", w+3), 1); r != l {
				lines[j] = r
				changed++
				break
			}
		}
	}
	if changed != 10 {
		tb.Fatalf("changed %d backends of vserver %d, want 10", changed, i)
	}
	return strings.Join(lines, "\n")
}
