package engine

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/engine/config"
	gen "github.com/seesawlb/seesaw/engine/config/configtest"
	"github.com/seesawlb/seesaw/ncc"
	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/ipvs/ipvslab"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// The engine's benchmark of issue 11 runs in the kernel lab and prints
// one line per figure, starting "bench:", each against a peer measured in
// the same boot (make bench):
//
//   - health-to-kernel: one check flipping (healthy, unhealthy, healthy
//     again; a random check each time, the seed printed), from the result
//     reaching the engine to the Apply that made the IPVS write
//     returning, at 1,000 and 10,000 destinations; against `ipvsadm -e`
//     of the same destination, the floor of an operator's script.
//   - cold-start: an engine starting on 1,000 vservers of 10 backends,
//     every check reporting healthy at once, until every service is in
//     IPVS; against ipvsadm-restore of the same rules (and, beside it,
//     ipvsadm-restore plus `ip -batch` of the VIPs and policy rules the
//     engine also places).
//   - reload-one-of-1000: a reload that changes one vserver (its backends'
//     weights), in process CPU and kernel writes, as a fraction of the
//     cold start of the same config.
//
// Run it with
//
//	go test -exec "$(pwd)/bin/seesaw-lab exec" -run '^TestLabBenchEngine$' -v ./engine -args -engine.bench
//
// It is a test rather than a Go benchmark because each figure is a run of
// its own, not an average over b.N repetitions. Unasked (make vmtest) it
// runs small, where the times mean little but what it asserts holds at
// every size: a flip is one kernel write, the cold start leaves the
// kernel with exactly what ipvsadm-restore of the same rules does, and a
// reload writes only the changed destinations.
var (
	engineBench = flag.Bool("engine.bench", false, "TestLabBenchEngine at full size: 1,000 and 10,000 destinations, 1,000 vservers")
	engineFlips = flag.Int("engine.flips", 0, "TestLabBenchEngine: single flips per size (0: 200 with -engine.bench, else 10)")
	engineSeed  = flag.Uint64("engine.seed", 0, "TestLabBenchEngine: the seed choosing the checks to flip (0: a random one, printed)")
)

// cpuTime is the process's CPU time so far, user and system. The kernel's
// IPVS and rtnetlink work for the NCC's requests runs in its system calls,
// so it is counted too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestLabBenchEngine(t *testing.T) {
	labtest.RequireLab(t)
	healthSizes, coldSize, flips := []int{5}, 10, 10
	if *engineBench {
		healthSizes, coldSize, flips = []int{50, 500}, 1000, 200
	}
	if *engineFlips > 0 {
		flips = *engineFlips
	}
	seed := *engineSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (-engine.seed=%d replays the same flips)", seed, seed)
	quietGlog(t)
	for _, n := range healthSizes {
		t.Run(fmt.Sprintf("health-%d", 20*n), func(t *testing.T) { benchHealth(t, n, flips, seed) })
	}
	t.Run(fmt.Sprintf("cold-start-and-reload-%d", coldSize), func(t *testing.T) { benchColdAndReload(t, coldSize) })
}

// benchLabNode is a node namespace with the interfaces seesaw.cfg names
// (eth0 a dummy with this node's addresses, eth1 a veth pair to a LAN
// namespace) and an NCC config whose openers work inside it. ipvsWrites
// counts the writes of the IPVS clients the NCC opened.
func benchLabNode(t *testing.T, role, cfgPath, clPath string) (n *labtest.Node, cfg ncc.Config, ipvsWrites func() uint64) {
	t.Helper()
	n = labtest.NewTestNode(t, role)
	lan := labtest.NewTestNode(t, role+"-lan")
	if err := labtest.Veth(n, "eth1", lan, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := n.AddLink(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}}); err != nil {
		t.Fatal(err)
	}
	res := config.Check(cfgPath, clPath)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{res.ThisNode.IPv4, res.ThisNode.IPv6} {
		if p.IsValid() {
			if err := n.AddAddr("eth0", p); err != nil {
				t.Fatal(err)
			}
		}
	}
	do := nsThread(t, n)
	var mu sync.Mutex
	var clients []*ipvs.Client
	var handles []*netlink.Handle
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, h := range handles {
			h.Close()
		}
	})
	cfg = ncc.Config{
		IPVS: func() (reconcile.IPVS, error) {
			var c *ipvs.Client
			if err := n.Do(func() (err error) { c, err = ipvs.New(); return err }); err != nil {
				return nil, err
			}
			mu.Lock()
			clients = append(clients, c)
			mu.Unlock()
			return c, nil
		},
		Net: func() (netconf.Kernel, error) {
			var h *netlink.Handle
			if err := n.Do(func() (err error) { h, err = netlink.NewHandle(unix.NETLINK_ROUTE); return err }); err != nil {
				return nil, err
			}
			mu.Lock()
			handles = append(handles, h)
			mu.Unlock()
			return netconf.NewLinux(h, do), nil
		},
		NFT: func() (*nft.Reconciler, error) {
			f, err := os.Open(filepath.Join("/run/netns", n.NS))
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return nft.Open(int(f.Fd()), nil)
		},
		Sender: func() (ncc.FrameSender, error) { return discard{}, nil },
	}
	ipvsWrites = func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		var w uint64
		for _, c := range clients {
			w += c.Writes()
		}
		return w
	}
	return n, cfg, ipvsWrites
}

// nsThread returns a function that runs functions on one OS thread kept
// inside the node's namespace, for the NCC's /proc/sys reads and writes:
// in production the NCC's threads are in the namespace they manage, and a
// sysctl costs a file read, not the switch of a thread into the namespace
// and back that labtest.Node.Do makes each time.
func nsThread(t *testing.T, n *labtest.Node) func(func() error) error {
	t.Helper()
	ns, err := netns.GetFromName(n.NS)
	if err != nil {
		t.Fatal(err)
	}
	fns := make(chan func())
	ready := make(chan error)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ready <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			ready <- err
			return // the thread stays locked: the runtime retires it
		}
		ready <- nil
		for f := range fns {
			f()
		}
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	if err := <-ready; err != nil {
		ns.Close()
		t.Fatalf("a thread in namespace %s: %v", n.NS, err)
	}
	t.Cleanup(func() {
		close(fns)
		ns.Close()
	})
	return func(f func() error) error {
		errc := make(chan error, 1)
		fns <- func() { errc <- f() }
		return <-errc
	}
}

// timeCmd runs a command in the node's namespace, with stdin, and returns
// how long it took from start to exit.
func timeCmd(t *testing.T, n *labtest.Node, stdin string, name string, args ...string) time.Duration {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := n.Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return time.Since(start)
}

func benchConfig(t *testing.T, vservers int) (string, string) {
	return fixture(t, gen.SeesawCfg("eth0", "eth1"), gen.Cluster(vservers, 10, gen.Options{Plain: true}))
}

// benchHealth flips random checks of a cluster of n vservers (20n
// destinations) and times each from result to kernel, then times
// `ipvsadm -e` of the same destinations in the same kernel.
func benchHealth(t *testing.T, n, flips int, seed uint64) {
	cfg, cl := benchConfig(t, n)
	node, nccCfg, _ := benchLabNode(t, "health", cfg, cl)
	be := startBenchEngine(t, cfg, cl, newBenchNCC(t, nccCfg, nil))
	be.reportAll()
	be.served(0)
	be.settle()
	checks := be.oneDestChecks()
	svcOf := be.serviceOfDest()

	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	var lats []time.Duration
	var w uint64
	var flipped []benchCheck
	for len(lats) < flips {
		c := checks[rng.IntN(len(checks))]
		flipped = append(flipped, c)
		for _, healthy := range []bool{false, true} {
			l, w1 := be.flip(c, healthy)
			lats = append(lats, l)
			w += w1
			if w1 != 1 {
				t.Errorf("check %d (destination %s) healthy=%v: %d kernel writes, want 1", c.id, c.dest, healthy, w1)
			}
		}
	}
	be.stop()
	if got := strings.Count(ipvs.CanonicalSave(node.Run(t, "ipvsadm", "-Sn")), "-a "); got != 20*n {
		t.Errorf("after the flips the kernel holds %d destinations, want all %d", got, 20*n)
	}

	// The peer: ipvsadm -e of the same destinations, weight 0 and back,
	// in the same table.
	var peer []time.Duration
	for _, c := range flipped {
		svc := svcOf[c.dest]
		for _, w := range []string{"0", fmt.Sprint(svc.weight)} {
			peer = append(peer, timeCmd(t, node, "", "ipvsadm", "-e", "-t", svc.vip, "-r", c.dest, "-g", "-w", w))
		}
		if len(peer) >= len(lats) {
			break
		}
	}
	p50, p99 := percentile(lats, 50), percentile(lats, 99)
	q50, q99 := percentile(peer, 50), percentile(peer, 99)
	fmt.Printf("bench: health-to-kernel dests=%d p50=%v p99=%v writes/change=%.2f ours/ipvsadm-e=%.2f (ipvsadm -e p50=%v p99=%v; %d flips, seed %d)\n",
		20*n, rd(p50), rd(p99), float64(w)/float64(len(lats)), float64(p50)/float64(q50), rd(q50), rd(q99), len(lats), seed)
}

// rd rounds a duration for printing.
func rd(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	default:
		return d.Round(10 * time.Microsecond)
	}
}

// benchDest is a destination's service and configured weight.
type benchDest struct {
	vip    string // "10.1.0.1:80"
	weight int32
}

// serviceOfDest maps each destination ("ip:port") to its service.
func (be *benchEngine) serviceOfDest() map[string]benchDest {
	be.e.mu.Lock()
	defer be.e.mu.Unlock()
	out := map[string]benchDest{}
	for _, v := range be.e.model.Vservers {
		for _, s := range v.Services {
			for _, d := range s.Destinations {
				out[netip.AddrPortFrom(d.Addr, d.Port).String()] = benchDest{
					vip: netip.AddrPortFrom(s.VIP, uint16(s.Spec.Port)).String(), weight: d.Spec.Weight}
			}
		}
	}
	return out
}

// benchColdAndReload starts an engine on n vservers, times it until every
// service is in IPVS against ipvsadm-restore of the same rules, then
// reloads a config that changes one vserver.
func benchColdAndReload(t *testing.T, n int) {
	cfg, cl := benchConfig(t, n)
	node, nccCfg, ipvsWrites := benchLabNode(t, "cold", cfg, cl)

	cpu0, start := cpuTime(), time.Now()
	nc := newBenchNCC(t, nccCfg, cpuTime)
	be := startBenchEngine(t, cfg, cl, nc)
	be.reportAll()
	last := be.served(0)
	wall, cpu := last.end.Sub(start), last.cpuEnd-cpu0
	be.settle()
	var applies []benchApply
	var applyWall, nccCPU time.Duration
	for _, a := range nc.since(0) {
		applies = append(applies, a)
		applyWall += a.end.Sub(a.start)
		nccCPU += a.cpuEnd - a.cpuStart
		if a.end == last.end {
			break
		}
	}
	coldWrites, coldIPVS := writes(applies), ipvsWrites()

	// The peer: the same rules, read back from the kernel, restored into
	// a namespace of its own.
	ours := node.Run(t, "ipvsadm", "-Sn")
	rules := ipvs.CanonicalSave(ours)
	pn, _ := ipvslab.Node(t, "cold-peer")
	peer := timeCmd(t, pn, rules, "ipvsadm", "-R")
	if got := ipvs.CanonicalSave(pn.Run(t, "ipvsadm", "-Sn")); got != rules {
		t.Errorf("ipvsadm-restore of the engine's rules holds something else")
	}
	if svcs, dests := strings.Count(rules, "-A "), strings.Count(rules, "-a "); svcs != 2*n || dests != 20*n {
		t.Errorf("the kernel holds %d services and %d destinations, want %d and %d", svcs, dests, 2*n, 20*n)
	}
	// Beside it: ipvsadm-restore plus the VIPs and policy rules the
	// engine places too, by `ip -batch`, in another namespace.
	ipBatch := ipBatchOf(last.req.Desired, "eth1")
	pn2, _ := ipvslab.Node(t, "cold-peer2")
	if err := pn2.AddLink(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}}); err != nil {
		t.Fatal(err)
	}
	peer2 := timeCmd(t, pn2, rules, "ipvsadm", "-R") + timeCmd(t, pn2, ipBatch, "ip", "-batch", "-")

	fmt.Printf("bench: cold-start vservers=%d dests=%d engine=%v ipvsadm-restore=%v ratio=%.2f (aim <= 1.5)\n",
		n, 20*n, rd(wall), rd(peer), float64(wall)/float64(peer))
	fmt.Printf("bench: cold-start detail: %d applies, %v of it in the NCC's Apply; %d kernel writes (%d IPVS, %d network: VIPs, policy rules, links, sysctls); "+
		"cpu %v (engine %v, NCC in process %v); ipvsadm-restore + ip -batch of the same VIPs and rules %v, ratio %.2f\n",
		len(applies), rd(applyWall), coldWrites, coldIPVS, coldWrites-coldIPVS, rd(cpu), rd(cpu-nccCPU), rd(nccCPU), rd(peer2), float64(wall)/float64(peer2))

	// The reload: the backends of one vserver (the middle one) get new
	// weights; every other vserver is the same.
	b, err := os.ReadFile(cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cl, []byte(reweigh(t, string(b), n/2)), 0o644); err != nil {
		t.Fatal(err)
	}
	from := nc.count()
	rcpu0 := cpuTime()
	if err := be.e.Reload(); err != nil {
		t.Fatal(err)
	}
	rcpu1 := cpuTime()
	a := nc.wait(t, "the reload applied", from, 10*time.Minute, func(a benchApply) bool {
		return a.err == nil && a.resp != nil && len(a.resp.Errors) == 0 && a.resp.KernelWrites > 0
	})
	be.settle()
	rw := writes(nc.since(from))
	rcpu := a.cpuEnd - rcpu0
	if rw != 20 {
		t.Errorf("a reload that changes the weights of one vserver's 10 backends (2 entries): %d kernel writes, want 20", rw)
	}
	if got := node.Run(t, "ipvsadm", "-Sn"); strings.Count(got, " -w 4")+strings.Count(got, " -w 5")+strings.Count(got, " -w 6") != 20 {
		t.Errorf("the kernel does not hold the 20 new weights:\n%s", got)
	}
	fmt.Printf("bench: reload-one-of-%d cpu=%v writes=%d fraction-of-cold-start=%.4f (cpu; writes %.5f) "+
		"(config load %v, derive+evaluate %v, NCC apply %v; cold start cpu %v, %d writes)\n",
		n, rd(rcpu), rw, float64(rcpu)/float64(cpu), float64(rw)/float64(coldWrites),
		rd(rcpu1-rcpu0), rd(a.cpuStart-rcpu1), rd(a.cpuEnd-a.cpuStart), rd(cpu), coldWrites)
}

// ipBatchOf is `ip -batch` input for the VIPs on link and the IPv4 policy
// rules of a desired state.
func ipBatchOf(ds *nccpb.DesiredState, link string) string {
	var b strings.Builder
	for _, v := range ds.Vips {
		if v.Interface == link && !strings.Contains(v.Address, ":") {
			fmt.Fprintf(&b, "address add %s dev %s\n", v.Address, link)
		}
	}
	for _, r := range ds.Rules {
		if r.Family == nccpb.Family_INET6 {
			continue
		}
		line := "rule add"
		if r.From != "" {
			line += " from " + r.From
		}
		if r.To != "" {
			line += " to " + r.To
		}
		fmt.Fprintf(&b, "%s lookup %d\n", line, r.Table)
	}
	return b.String()
}
