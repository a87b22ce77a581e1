package hcbench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/seesawlb/seesaw/healthcheck"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

const roleEnv = "SEESAW_HCBENCH_ROLE"

// Options size a run.
type Options struct {
	Checks    int // of each kind, TCP and HTTP
	Interval  time.Duration
	Timeout   time.Duration
	Measure   time.Duration
	Blackhole int // percent of backends black-holed in the second run
	HAProxy   bool
	Kinds     []int // kindTCP, kindHTTP
	// Verbose prints our checker's counters every second of its runs.
	Verbose bool
	// CPUProfile, when set, is written with a CPU profile of our checker
	// during its measurement windows.
	CPUProfile string
}

// Server ports: each kind has one listener per port on 0.0.0.0, and the
// endpoints are those ports on many 127.x addresses, so 20,000 distinct
// backends need 200 sockets.
const (
	portsPerAddr = 100
	tcpBase      = 10000
	httpBase     = 20000
)

type kind int

const (
	kindTCP kind = iota
	kindHTTP
)

func (k kind) String() string { return [...]string{"TCP", "HTTP"}[k] }

// endpoint i of kind k: 127.(1+k).a.b : base+i%100.
func endpoint(k kind, i int) netip.AddrPort {
	a := i / portsPerAddr
	ip := netip.AddrFrom4([4]byte{127, byte(1 + k), byte(a / 250), byte(a%250 + 1)})
	base := tcpBase
	if k == kindHTTP {
		base = httpBase
	}
	return netip.AddrPortFrom(ip, uint16(base+i%portsPerAddr))
}

// blackholed: whole addresses, one in 100/pct.
func blackholed(i, pct int) bool {
	if pct <= 0 {
		return false
	}
	return (i/portsPerAddr)%(100/pct) == 100/pct-1
}

// goesDown: one port of each address (1%), among those not black-holed.
func goesDown(i, pct int) bool { return i%portsPerAddr == 3 && !blackholed(i, pct) }

// Main runs the benchmark and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	switch os.Getenv(roleEnv) {
	case "serve":
		if err := serve(os.Stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "hcbench: serve: %v\n", err)
			return 1
		}
		return 0
	}
	fs := flag.NewFlagSet("hcbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.IntVar(&o.Checks, "checks", 10000, "checks of each kind (TCP and HTTP)")
	fs.DurationVar(&o.Interval, "interval", time.Second, "check interval")
	fs.DurationVar(&o.Timeout, "timeout", 500*time.Millisecond, "check timeout")
	fs.DurationVar(&o.Measure, "measure", 10*time.Second, "measurement window of each run")
	fs.IntVar(&o.Blackhole, "blackhole", 20, "percent of backends black-holed in the second run (0 skips it)")
	fs.BoolVar(&o.HAProxy, "haproxy", true, "measure HAProxy as the peer")
	fs.BoolVar(&o.Verbose, "v", false, "print our checker's counters every second")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of our checker's measurement windows to this file")
	kinds := fs.String("kinds", "tcp,http", "which checks to run: tcp, http or both")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, k := range strings.Split(*kinds, ",") {
		switch k {
		case "tcp":
			o.Kinds = append(o.Kinds, int(kindTCP))
		case "http":
			o.Kinds = append(o.Kinds, int(kindHTTP))
		default:
			fmt.Fprintf(stderr, "hcbench: -kinds: %q is not tcp or http\n", k)
			return 2
		}
	}
	if o.Checks < portsPerAddr || o.Checks > 250*250*portsPerAddr || o.Checks%portsPerAddr != 0 {
		fmt.Fprintf(stderr, "hcbench: -checks must be a multiple of %d\n", portsPerAddr)
		return 2
	}
	if o.Blackhole < 0 || o.Blackhole > 50 || (o.Blackhole > 0 && 100%o.Blackhole != 0) {
		fmt.Fprintf(stderr, "hcbench: -blackhole must divide 100 and be at most 50\n")
		return 2
	}
	if os.Getenv(roleEnv) != "coord" {
		return launch(args, stdout, stderr)
	}
	if err := coordinate(o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "hcbench: %v\n", err)
		return 1
	}
	return 0
}

// launch re-executes the benchmark in a new network namespace.
func launch(args []string, stdout, stderr io.Writer) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "hcbench: needs root (its own network namespace, nftables)")
		return 1
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(stderr, "hcbench: needs %s (apt-get install iproute2 nftables)\n", tool)
			return 1
		}
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "hcbench: %v\n", err)
		return 1
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), roleEnv+"=coord")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(stderr, "hcbench: %v\n", err)
		return 1
	}
	return 0
}

func sh(cmdline string) error {
	f := strings.Fields(cmdline)
	out, err := exec.Command(f[0], f[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", cmdline, err, out)
	}
	return nil
}

func nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, out)
	}
	return nil
}

var counterRE = regexp.MustCompile(`packets (\d+) bytes`)

// syns is the count of connection attempts to the backends so far.
func syns() (uint64, error) {
	out, err := exec.Command("nft", "list", "counter", "inet", "hcbench", "syn").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("nft list counter: %w: %s", err, out)
	}
	m := counterRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no counter in %q", out)
	}
	return strconv.ParseUint(string(m[1]), 10, 64)
}

// result is one checker's figures in one run.
type result struct {
	name        string
	attempts    float64       // connection attempts per second (SYNs)
	runs        float64       // completed runs per second (ours only)
	cpu         time.Duration // over the window
	memPerChk   float64       // heap+stacks per check (ours only)
	rssPerChk   float64
	lateP99     time.Duration // ours only
	detectP99   time.Duration
	detectP50   time.Duration
	detected    int
	toDetect    int
	firstRound  time.Duration // until every check had a result (ours only)
	serverCPU   time.Duration // of the backends' server process, over the window
	alreadyDown int           // backends to take down that were down already (ours only)
}

func coordinate(o Options, stdout, stderr io.Writer) error {
	if err := sh("ip link set lo up"); err != nil {
		return err
	}
	if err := nft(`
table inet hcbench {
	set blackhole { type ipv4_addr; }
	set down { type ipv4_addr . inet_service; }
	counter syn {}
	chain in {
		type filter hook input priority 0; policy accept;
		ip daddr @blackhole drop
		ip daddr . tcp dport @down reject with tcp reset
	}
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr 127.1.0.0-127.2.255.255 tcp flags & (syn | ack) == syn counter name syn
	}
}`); err != nil {
		return err
	}
	defer exec.Command("nft", "delete", "table", "inet", "hcbench").Run()

	srv, err := startServers()
	if err != nil {
		return err
	}
	defer srv.stop()

	var names []string
	for _, k := range o.Kinds {
		names = append(names, fmt.Sprintf("%d %v", o.Checks, kind(k)))
	}
	fmt.Fprintf(stdout, "bench: healthcheck: %s checks, interval %v, timeout %v, window %v, GOMAXPROCS %d, %s\n",
		strings.Join(names, " + "), o.Interval, o.Timeout, o.Measure, runtime.GOMAXPROCS(0), haproxyVersion())
	runs := []int{0}
	if o.Blackhole > 0 {
		runs = append(runs, o.Blackhole)
	}
	for _, pct := range runs {
		if err := setBlackhole(o, pct); err != nil {
			return err
		}
		label := "all up"
		if pct > 0 {
			label = fmt.Sprintf("%d%% black-holed", pct)
		}
		ours, err := runOurs(o, pct, srv.cmd.Process.Pid)
		if err != nil {
			return fmt.Errorf("ours (%s): %w", label, err)
		}
		var peer *result
		if o.HAProxy {
			peer, err = runHAProxy(o, pct, srv.cmd.Process.Pid)
			if err != nil {
				fmt.Fprintf(stderr, "hcbench: HAProxy (%s): %v\n", label, err)
			}
		}
		report(stdout, o, label, pct == runs[0], ours, peer)
	}
	return nil
}

func setBlackhole(o Options, pct int) error {
	var addrs []string
	if pct > 0 {
		for _, k := range o.Kinds {
			for i := 0; i < o.Checks; i += portsPerAddr {
				if blackholed(i, pct) {
					addrs = append(addrs, endpoint(kind(k), i).Addr().String())
				}
			}
		}
	}
	script := "flush set inet hcbench blackhole\n"
	if len(addrs) > 0 {
		script += "add element inet hcbench blackhole { " + strings.Join(addrs, ", ") + " }\n"
	}
	return nft(script)
}

// takeDown refuses connections to the endpoints that go down, from now;
// bringUp lets them answer again.
func takeDown(o Options, pct int) error {
	var elems []string
	for _, k := range o.Kinds {
		for i := 0; i < o.Checks; i++ {
			if goesDown(i, pct) {
				ep := endpoint(kind(k), i)
				elems = append(elems, fmt.Sprintf("%s . %d", ep.Addr(), ep.Port()))
			}
		}
	}
	return nft("add element inet hcbench down { " + strings.Join(elems, ", ") + " }\n")
}

func bringUp() error { return nft("flush set inet hcbench down\n") }

func checks(o Options) []*hcpb.Check {
	var out []*hcpb.Check
	for _, k := range o.Kinds {
		for i := 0; i < o.Checks; i++ {
			ep := endpoint(kind(k), i)
			c := &hcpb.Check{
				Id:       uint64(k*o.Checks + i + 1), // the kind's offset keeps ids unique
				Type:     hcpb.CheckType_TCP,
				Address:  ep.Addr().String(),
				Port:     uint32(ep.Port()),
				Interval: durationpb.New(o.Interval),
				Timeout:  durationpb.New(o.Timeout),
				Rise:     1,
				Fall:     1,
			}
			if kind(k) == kindHTTP {
				c.Type = hcpb.CheckType_HTTP
				c.Send = "/"
			}
			out = append(out, c)
		}
	}
	return out
}

// detector timestamps transitions to down of the endpoints taken down.
type detector struct {
	mu     sync.Mutex
	start  time.Time
	armed  bool
	down   map[uint64]time.Duration
	firsts int
	all    chan struct{}
	n      int

	verbose bool
	shown   int
}

func (d *detector) notify(r *hcpb.Result) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !r.Healthy && d.verbose && d.shown < 5 {
		d.shown++
		fmt.Fprintf(os.Stderr, "hcbench: down: %s\n", r.Message)
	}
	if d.firsts < d.n {
		d.firsts++
		if d.firsts == d.n {
			close(d.all)
		}
	}
	if d.armed && !r.Healthy {
		if _, ok := d.down[r.Id]; !ok {
			d.down[r.Id] = now.Sub(d.start)
		}
	}
}

func runOurs(o Options, pct int, srvPid int) (*result, error) {
	res := &result{name: "ours"}
	cs := checks(o)
	runtime.GC()
	mem0, rss0 := memUse(), rss(os.Getpid())
	env := healthcheck.NewEnv()
	defer env.Close()
	d := &detector{down: map[uint64]time.Duration{}, all: make(chan struct{}), n: len(cs), verbose: o.Verbose}
	m := healthcheck.NewManager(healthcheck.ManagerOptions{Env: env, Notify: d.notify})
	if o.Verbose {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			prev := m.Stats()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				s := m.Stats()
				fmt.Fprintf(os.Stderr, "hcbench: %d runs/s, %d failed, %d skipped, %d in flight, lateness p50 %v p99 %v\n",
					s.Runs-prev.Runs, s.Failures-prev.Failures, s.Skipped-prev.Skipped, s.InFlight,
					s.Lateness.Sub(prev.Lateness).Quantile(0.5), s.Lateness.Sub(prev.Lateness).Quantile(0.99))
				prev = s
			}
		}()
	}
	start := time.Now()
	m.Apply(&hcpb.CheckSet{Full: true, Upsert: cs})
	select {
	case <-d.all:
		res.firstRound = time.Since(start)
	case <-time.After(3*o.Interval + 5*time.Second):
		m.Stop()
		return nil, fmt.Errorf("not every check had a result after %v", 3*o.Interval+5*time.Second)
	}
	time.Sleep(2 * o.Interval)
	runtime.GC()
	res.memPerChk = float64(memUse()-mem0) / float64(len(cs))
	res.rssPerChk = float64(rss(os.Getpid())-rss0) / float64(len(cs))

	s0, cpu0 := m.Stats(), cpuSelf()
	syn0, err := syns()
	if err != nil {
		m.Stop()
		return nil, err
	}
	if o.CPUProfile != "" && pct == 0 {
		f, err := os.Create(o.CPUProfile)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	srv0, _ := cpuOf(srvPid)
	t0 := time.Now()
	time.Sleep(o.Measure)
	s1, cpu1 := m.Stats(), cpuSelf()
	srv1, _ := cpuOf(srvPid)
	res.serverCPU = srv1 - srv0
	syn1, err := syns()
	if err != nil {
		m.Stop()
		return nil, err
	}
	win := time.Since(t0).Seconds()
	res.cpu = cpu1 - cpu0
	res.runs = float64(s1.Runs-s0.Runs) / win
	res.attempts = float64(syn1-syn0) / win
	res.lateP99 = s1.Lateness.Sub(s0.Lateness).Quantile(0.99)

	ids := map[uint64]bool{}
	for _, c := range cs {
		i := int(c.Id-1) % o.Checks
		if goesDown(i, pct) {
			ids[c.Id] = true
		}
	}
	// A check already down (an overloaded backend timing out) cannot be
	// seen going down: leave it out, and say how many were.
	var list []uint64
	for id := range ids {
		list = append(list, id)
	}
	d.mu.Lock()
	d.start, d.armed = time.Now(), true
	d.mu.Unlock()
	for _, st := range m.List(&hcpb.ListChecksRequest{Ids: list, OmitHistory: true}).Checks {
		if !st.Healthy {
			delete(ids, st.Check.Id)
			res.alreadyDown++
		}
	}
	if err := takeDown(o, pct); err != nil {
		m.Stop()
		return nil, err
	}
	time.Sleep(detectWait(o))
	m.Stop()
	if err := bringUp(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	var times []time.Duration
	for id, t := range d.down {
		if ids[id] {
			times = append(times, t)
		}
	}
	d.mu.Unlock()
	res.toDetect, res.detected = len(ids), len(times)
	res.detectP50, res.detectP99 = quantile(times, 0.5), quantile(times, 0.99)
	return res, nil
}

// detectWait is how long a run waits for checkers to see backends go down:
// an interval until each is checked, the check itself, and room for an
// overloaded host.
func detectWait(o Options) time.Duration { return 3*o.Interval + o.Timeout + time.Second }

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func memUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// rss is a process's resident set in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func cpuSelf() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuOf is a process's user+system CPU time from /proc/pid/stat.
func cpuOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

func haproxyVersion() string {
	out, err := exec.Command("haproxy", "-v").Output()
	if err != nil {
		return "HAProxy not installed"
	}
	l, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(strings.SplitN(l, " - ", 2)[0])
}

var haDownRE = regexp.MustCompile(`Server (tcp|http)/([th])(\d+) is DOWN`)

// haproxy is one HAProxy process checking one kind of backend. (One
// process for all 20,000 would need more descriptors than the hard limit
// here allows.)
type haproxy struct {
	cmd    *exec.Cmd
	exited chan struct{}

	mu    sync.Mutex
	lines []string // what it said, but for the DOWN lines
	armed bool
	start time.Time
	downs map[string]time.Duration
}

func startHAProxy(o Options, dir string, k kind) (*haproxy, error) {
	name := strings.ToLower(k.String())
	var cfg strings.Builder
	// One thread per process, two processes: as many threads as our
	// checker runs loops (GOMAXPROCS, 2 here), so that on a shared host
	// neither gets a larger share of the CPU by having more threads.
	fmt.Fprintf(&cfg, `global
	maxconn 256
	nbthread %[4]d
	spread-checks 5
defaults
	timeout connect %[1]dms
	timeout check %[1]dms
	timeout client 5s
	timeout server 5s
frontend keepalive
	mode %[2]s
	bind 127.0.0.1:%[3]d
	default_backend %[2]s
backend %[2]s
	mode %[2]s
`, o.Timeout.Milliseconds(), name, 9+int(k), max(1, runtime.GOMAXPROCS(0)/len(o.Kinds)))
	if k == kindHTTP {
		cfg.WriteString("\toption httpchk GET /\n\thttp-check expect status 200\n")
	}
	fmt.Fprintf(&cfg, "\tdefault-server check inter %dms fall 1 rise 1\n", o.Interval.Milliseconds())
	for i := 0; i < o.Checks; i++ {
		fmt.Fprintf(&cfg, "\tserver %c%d %s\n", name[0], i, endpoint(k, i))
	}
	path := dir + "/" + name + ".cfg"
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		return nil, err
	}
	h := &haproxy{cmd: exec.Command("haproxy", "-db", "-f", path), exited: make(chan struct{}), downs: map[string]time.Duration{}}
	stderr, err := h.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	h.cmd.Stdout = io.Discard
	if err := h.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			now := time.Now()
			m := haDownRE.FindStringSubmatch(sc.Text())
			h.mu.Lock()
			switch {
			case m == nil && len(h.lines) < 10:
				h.lines = append(h.lines, sc.Text())
			case m != nil && h.armed:
				if _, ok := h.downs[m[2]+m[3]]; !ok {
					h.downs[m[2]+m[3]] = now.Sub(h.start)
				}
			}
			h.mu.Unlock()
		}
		h.cmd.Wait()
		close(h.exited)
	}()
	return h, nil
}

func (h *haproxy) stop() {
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(5 * time.Second):
		h.cmd.Process.Kill()
		<-h.exited
	}
}

func (h *haproxy) arm(t time.Time) {
	h.mu.Lock()
	h.start, h.armed = t, true
	h.mu.Unlock()
}

func runHAProxy(o Options, pct int, srvPid int) (*result, error) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return nil, errors.New("haproxy not found (apt-get install haproxy)")
	}
	res := &result{name: "haproxy"}
	dir, err := os.MkdirTemp("", "hcbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var hs []*haproxy
	defer func() {
		for _, h := range hs {
			h.stop()
		}
	}()
	for _, k := range o.Kinds {
		h, err := startHAProxy(o, dir, kind(k))
		if err != nil {
			return nil, err
		}
		hs = append(hs, h)
	}
	// Checks start within an interval (spread); black-holed backends go
	// down within interval+timeout.
	time.Sleep(3*o.Interval + o.Timeout)
	cpu := func() (time.Duration, error) {
		var sum time.Duration
		for _, h := range hs {
			select {
			case <-h.exited:
				h.mu.Lock()
				defer h.mu.Unlock()
				return 0, fmt.Errorf("haproxy exited: %s", strings.Join(h.lines, "; "))
			default:
			}
			c, err := cpuOf(h.cmd.Process.Pid)
			if err != nil {
				return 0, err
			}
			sum += c
		}
		return sum, nil
	}
	cpu0, err := cpu()
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		res.rssPerChk += float64(rss(h.cmd.Process.Pid))
	}
	res.rssPerChk /= float64(len(o.Kinds) * o.Checks)
	syn0, err := syns()
	if err != nil {
		return nil, err
	}
	srv0, _ := cpuOf(srvPid)
	t0 := time.Now()
	time.Sleep(o.Measure)
	srv1, _ := cpuOf(srvPid)
	res.serverCPU = srv1 - srv0
	cpu1, err := cpu()
	if err != nil {
		return nil, err
	}
	syn1, err := syns()
	if err != nil {
		return nil, err
	}
	win := time.Since(t0).Seconds()
	res.cpu = cpu1 - cpu0
	res.attempts = float64(syn1-syn0) / win

	names := map[string]bool{}
	for _, k := range o.Kinds {
		for i := 0; i < o.Checks; i++ {
			if goesDown(i, pct) {
				names[fmt.Sprintf("%c%d", "th"[k], i)] = true
			}
		}
	}
	now := time.Now()
	for _, h := range hs {
		h.arm(now)
	}
	if err := takeDown(o, pct); err != nil {
		return nil, err
	}
	time.Sleep(detectWait(o))
	if err := bringUp(); err != nil {
		return nil, err
	}
	var times []time.Duration
	for _, h := range hs {
		h.mu.Lock()
		for n, t := range h.downs {
			if names[n] {
				times = append(times, t)
			}
		}
		h.mu.Unlock()
	}
	res.toDetect, res.detected = len(names), len(times)
	res.detectP50, res.detectP99 = quantile(times, 0.5), quantile(times, 0.99)
	return res, nil
}

func report(w io.Writer, o Options, label string, first bool, ours, peer *result) {
	target := float64(len(o.Kinds)*o.Checks) / o.Interval.Seconds()
	perK := func(r *result) float64 {
		// CPU seconds per 1,000 checks attempted.
		if r.attempts == 0 {
			return 0
		}
		return r.cpu.Seconds() / (r.attempts * o.Measure.Seconds() / 1000)
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	fmt.Fprintf(w, "bench: [%s] checks/s: ours %.0f attempted, %.0f completed (%.1f%% of target %.0f)", label, ours.attempts, ours.runs, 100*ours.runs/target, target)
	if peer != nil {
		fmt.Fprintf(w, "; haproxy %.0f attempted (%.1f%%); ratio ours/haproxy %s", peer.attempts, 100*peer.attempts/target, ratio(ours.attempts, peer.attempts))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "bench: [%s] CPU s per 1000 checks: ours %.4f (%.2f cores; servers %.2f)", label, perK(ours), ours.cpu.Seconds()/o.Measure.Seconds(), ours.serverCPU.Seconds()/o.Measure.Seconds())
	if peer != nil {
		fmt.Fprintf(w, "; haproxy %.4f (%.2f cores; servers %.2f); ratio ours/haproxy %s", perK(peer), peer.cpu.Seconds()/o.Measure.Seconds(), peer.serverCPU.Seconds()/o.Measure.Seconds(), ratio(perK(ours), perK(peer)))
	}
	fmt.Fprintln(w)
	rss := "n/a (memory reused from the previous run)"
	if first {
		rss = fmt.Sprintf("%.0f B", ours.rssPerChk)
	}
	fmt.Fprintf(w, "bench: [%s] memory per check: ours %.0f B heap+stacks, RSS growth %s", label, ours.memPerChk, rss)
	if peer != nil {
		fmt.Fprintf(w, "; haproxy %.0f B RSS (whole processes / checks)", peer.rssPerChk)
		if first {
			fmt.Fprintf(w, "; ratio ours/haproxy (RSS) %s", ratio(ours.rssPerChk, peer.rssPerChk))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "bench: [%s] scheduling lateness p99: ours %v; first result of every check after %v\n", label, ours.lateP99.Round(time.Microsecond), ours.firstRound.Round(time.Millisecond))
	// A backend not seen down within the wait counts as never: then the
	// percentile is only bounded below.
	pct := func(r *result, q float64, v time.Duration) (string, float64) {
		if float64(r.detected) < q*float64(r.toDetect) {
			return "> " + detectWait(o).String(), 0
		}
		return v.Round(time.Millisecond).String(), v.Seconds()
	}
	o50, _ := pct(ours, 0.5, ours.detectP50)
	o99, o99s := pct(ours, 0.99, ours.detectP99)
	fmt.Fprintf(w, "bench: [%s] time to detect a backend down (refused), p50/p99: ours %s/%s (%d of %d seen", label, o50, o99, ours.detected, ours.toDetect)
	if ours.alreadyDown > 0 {
		fmt.Fprintf(w, "; %d more were down already", ours.alreadyDown)
	}
	fmt.Fprint(w, ")")
	if peer != nil {
		p50, _ := pct(peer, 0.5, peer.detectP50)
		p99, p99s := pct(peer, 0.99, peer.detectP99)
		r := "n/a"
		if o99s > 0 && p99s > 0 {
			r = fmt.Sprintf("%.2f", o99s/p99s)
		}
		fmt.Fprintf(w, "; haproxy %s/%s (%d of %d seen); ratio p99 ours/haproxy %s", p50, p99, peer.detected, peer.toDetect, r)
	}
	fmt.Fprintln(w)
}

// servers is the child process serving the backends.
type servers struct {
	cmd *exec.Cmd
	in  io.WriteCloser
}

func startServers() (*servers, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), roleEnv+"=serve")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("servers did not start: %q %v", line, err)
	}
	return &servers{cmd: cmd, in: in}, nil
}

func (s *servers) stop() {
	s.in.Close()
	s.cmd.Wait()
}

// serve listens on every backend port (TCP: accept and close; HTTP: answer
// 200) until stdin closes.
func serve(stdin io.Reader, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ls []net.Listener
	for k, base := range []int{tcpBase, httpBase} {
		for p := base; p < base+portsPerAddr; p++ {
			l, err := net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(p))
			if err != nil {
				return err
			}
			ls = append(ls, l)
			go accept(ctx, l, kind(k))
		}
	}
	fmt.Fprintln(stdout, "ready")
	io.Copy(io.Discard, stdin)
	for _, l := range ls {
		l.Close()
	}
	return nil
}

var httpOK = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")

func accept(ctx context.Context, l net.Listener, k kind) {
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if k == kindTCP {
			c.Close()
			continue
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 2048)
			var got []byte
			for !strings.Contains(string(got), "\r\n\r\n") {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				got = append(got, buf[:n]...)
			}
			c.Write(httpOK)
		}()
	}
}
