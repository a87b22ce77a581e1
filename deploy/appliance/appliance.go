package appliance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/seesawlb/seesaw/deploy/labtest"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
	watchdogpb "github.com/seesawlb/seesaw/proto/watchdog"
)

// Daemons are the services the watchdog runs, in start order.
var Daemons = []string{"ncc", "engine", "ha", "healthcheck", "ecu"}

// Binaries are what SEESAW_BIN must hold: the watchdog, the five daemons
// and the CLI.
var Binaries = []string{"seesaw_watchdog", "seesaw_engine", "seesaw_ncc", "seesaw_ha", "seesaw_healthcheck", "seesaw_ecu", "seesaw_cli"}

// BinDir returns $SEESAW_BIN after checking that it holds every binary.
func BinDir() (string, error) {
	const how = "build them on the host (the lab's guest is too slow to compile) and name their directory: " +
		"make build && SEESAW_BIN=$PWD/bin go test ... (make build writes the multi-call binary and hard-links the seven names to it; " +
		"deploy/lab/vmtest.sh does the same in a directory of its own)"
	dir := os.Getenv("SEESAW_BIN")
	if dir == "" {
		return "", errors.New("appliance: SEESAW_BIN is not set; " + how)
	}
	for _, b := range Binaries {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil {
			return "", fmt.Errorf("appliance: SEESAW_BIN=%s lacks %s (%v); %s", dir, b, err, how)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("appliance: SEESAW_BIN=%s: %s is not an executable file; %s", dir, b, how)
		}
	}
	return dir, nil
}

// Options are what one appliance runs with.
type Options struct {
	// SeesawCfg and ClusterPB are the contents of seesaw.cfg and cluster.pb.
	SeesawCfg, ClusterPB string
	// Bin is where the binaries are; empty: BinDir.
	Bin string
	// ECUAddr is the ECU's HTTP listener in the node's namespace (default
	// 127.0.0.1:10257).
	ECUAddr string
	// SSLDir is the engine's -ssl_dir (the cluster CA and the node's
	// certificate, for peer sync); empty: the engine's default.
	SSLDir string
}

// Appliance is seesaw_watchdog and its daemons running in a node's
// namespace, with clients of their sockets.
type Appliance struct {
	Node *labtest.Node
	// Dir holds etc/ (the configs), run/<daemon>/ (sockets and state
	// files) and log/.
	Dir string
	Bin string

	Watchdog    watchdogpb.WatchdogClient
	Engine      enginepb.EngineClient
	NCC         nccpb.NCCClient
	HA          hapb.HAClient
	Healthcheck hcpb.HealthcheckClient

	t      testing.TB
	wd     *exec.Cmd
	out    *lockedBuffer
	exited chan struct{} // closed when the watchdog has exited; waitErr then says how
	wdErr  error
	conns  map[string]*grpc.ClientConn

	mu       sync.Mutex
	stopped  bool
	lastPIDs map[string]int32
}

// Start writes the configs and a watchdog.cfg for them, starts
// seesaw_watchdog in n's namespace, and returns once its socket is dialed
// (not once the daemons are up: see WaitRunning and WaitMaster). The
// appliance is stopped when the test ends (before a topology made earlier
// is removed: cleanups run last first), and on failure every log is
// printed.
func Start(t testing.TB, n *labtest.Node, o Options) *Appliance {
	t.Helper()
	bin := o.Bin
	if bin == "" {
		var err error
		if bin, err = BinDir(); err != nil {
			t.Fatal(err)
		}
	}
	if o.ECUAddr == "" {
		o.ECUAddr = "127.0.0.1:10257"
	}
	// A short directory: a Unix socket's path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "seesaw-app-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &Appliance{Node: n, Dir: dir, Bin: bin, t: t, out: &lockedBuffer{}, exited: make(chan struct{}), conns: map[string]*grpc.ClientConn{}}
	for _, d := range append([]string{"etc", "log", "run/watchdog"}, prefixed("run/", Daemons)...) {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"seesaw.cfg": o.SeesawCfg, "cluster.pb": o.ClusterPB, "watchdog.cfg": a.watchdogCfg(o.ECUAddr, o.SSLDir)}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, "etc", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a.wd = exec.Command(filepath.Join(bin, "seesaw_watchdog"),
		"-config="+filepath.Join(dir, "etc", "watchdog.cfg"),
		"-socket="+a.Sock("watchdog"),
		"-service_log_dir="+a.LogDir(),
		"-log_dir="+a.LogDir(),
		"-read_group=")
	a.wd.Stdout, a.wd.Stderr = a.out, a.out
	if err := n.Start(a.wd); err != nil {
		t.Fatal(err)
	}
	go func() { a.wdErr = a.wd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		if err := a.Stop(); err != nil {
			t.Errorf("appliance: stop: %v", err)
		}
		if t.Failed() {
			a.dumpLogs()
		}
	})
	for _, name := range append([]string{"watchdog"}, Daemons...) {
		cc, err := ipc.Dial(a.Sock(name), ipc.DialOptions{MaxBackoff: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		a.conns[name] = cc
	}
	a.Watchdog = watchdogpb.NewWatchdogClient(a.conns["watchdog"])
	a.Engine = enginepb.NewEngineClient(a.conns["engine"])
	a.NCC = nccpb.NewNCCClient(a.conns["ncc"])
	a.HA = hapb.NewHAClient(a.conns["ha"])
	a.Healthcheck = hcpb.NewHealthcheckClient(a.conns["healthcheck"])
	return a
}

func prefixed(p string, names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, p+n)
	}
	return out
}

// Sock is the socket of a daemon ("engine", ...) or of the watchdog.
func (a *Appliance) Sock(name string) string {
	return filepath.Join(a.Dir, "run", name, name+".sock")
}

// LogDir holds the watchdog's log and each daemon's (seesaw_<name>.log
// links to the current run's file; a restart starts a new file).
func (a *Appliance) LogDir() string { return filepath.Join(a.Dir, "log") }

// Etc is the path of a config file: seesaw.cfg, cluster.pb, watchdog.cfg.
func (a *Appliance) Etc(name string) string { return filepath.Join(a.Dir, "etc", name) }

// watchdogCfg is the shipped deploy/watchdog.cfg's services, dependencies,
// priorities and timeouts, with this run's paths. Nobody here is in a
// seesaw group: the daemons run as root and answer root.
func (a *Appliance) watchdogCfg(ecuAddr, sslDir string) string {
	logDir := "-log_dir=" + a.LogDir()
	run := func(name, file string) string { return filepath.Join(a.Dir, "run", name, file) }
	var b strings.Builder
	svc := func(name, deps, keys string, args ...string) {
		fmt.Fprintf(&b, "[%s]\nbinary = %s\nargs = %s %s\n", name, filepath.Join(a.Bin, "seesaw_"+name), logDir, strings.Join(args, " "))
		if deps != "" {
			fmt.Fprintf(&b, "dependency = %s\n", deps)
		}
		b.WriteString(keys + "\n")
	}
	b.WriteString("# watchdog.cfg written by deploy/appliance for one test run.\n\n")
	svc("ncc", "", "priority = -10\n", "-socket="+a.Sock("ncc"), "-engine_user=", "-state_file="+run("ncc", "desired.pb"))
	svc("engine", "ncc", "priority = -10\nterm_timeout = 10s\n",
		"-socket="+a.Sock("engine"), "-ncc_socket="+a.Sock("ncc"), "-healthcheck_socket="+a.Sock("healthcheck"),
		"-state_file="+run("engine", "state.pb"), "-conf="+a.Etc("seesaw.cfg"), "-cluster="+a.Etc("cluster.pb"),
		"-reader_group=", "-daemon_user=root", sslFlag(sslDir))
	svc("ha", "engine", "priority = -15\n", "-socket="+a.Sock("ha"), "-engine_socket="+a.Sock("engine"))
	svc("healthcheck", "engine", "", "-socket="+a.Sock("healthcheck"), "-engine_socket="+a.Sock("engine"))
	svc("ecu", "engine", "",
		"-socket="+a.Sock("ecu"), "-engine_socket="+a.Sock("engine"), "-ncc_socket="+a.Sock("ncc"),
		"-ha_socket="+a.Sock("ha"), "-healthcheck_socket="+a.Sock("healthcheck"), "-watchdog_socket="+a.Sock("watchdog"),
		"-http_addr="+ecuAddr)
	return b.String()
}

// sslFlag is the engine's -ssl_dir flag, or nothing for the default.
func sslFlag(dir string) string {
	if dir == "" {
		return ""
	}
	return "-ssl_dir=" + dir
}

// Stop sends the watchdog SIGTERM and waits for it, which stops every
// daemon in reverse dependency order. Whatever still runs after a minute
// is killed. It may be called more than once.
func (a *Appliance) Stop() error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	pids := a.lastPIDs
	a.mu.Unlock()
	var err error
	select {
	case <-a.exited:
		err = fmt.Errorf("the watchdog had exited already: %v", a.wdErr)
	default:
		a.wd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
			if a.wdErr != nil {
				err = fmt.Errorf("watchdog: %v", a.wdErr)
			}
		case <-time.After(time.Minute):
			a.wd.Process.Kill()
			<-a.exited
			err = errors.New("the watchdog did not stop within a minute of SIGTERM")
		}
	}
	// A daemon outlives a watchdog that was killed: its process group is
	// its own.
	for _, pid := range pids {
		if syscall.Kill(int(pid), 0) == nil {
			syscall.Kill(-int(pid), syscall.SIGKILL)
		}
	}
	return err
}

// Crash is a node failing: the watchdog and every daemon SIGKILLed at
// once, with nothing stopped in order and nothing cleaned up (the kernel
// keeps its VIPs, IPVS and sync threads: take the node's links down too
// for a dead node). The appliance counts as stopped afterwards.
func (a *Appliance) Crash(t testing.TB) {
	t.Helper()
	svcs, err := a.Services()
	if err != nil {
		t.Fatalf("crash: the watchdog's services: %v", err)
	}
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.wd.Process.Kill()
	for _, s := range svcs {
		if s.GetPid() > 0 {
			syscall.Kill(-int(s.GetPid()), syscall.SIGKILL)
			syscall.Kill(int(s.GetPid()), syscall.SIGKILL)
		}
	}
	<-a.exited
}

// Exited is closed once the watchdog has exited.
func (a *Appliance) Exited() <-chan struct{} { return a.exited }

// rpcCtx bounds one RPC.
func rpcCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// Services is the watchdog's Services RPC by service name.
func (a *Appliance) Services() (map[string]*watchdogpb.Service, error) {
	ctx, cancel := rpcCtx()
	defer cancel()
	resp, err := a.Watchdog.Services(ctx, &watchdogpb.ServicesRequest{})
	if err != nil {
		return nil, fmt.Errorf("watchdog Services: %w", err)
	}
	m := map[string]*watchdogpb.Service{}
	pids := map[string]int32{}
	for _, s := range resp.Services {
		m[s.Name] = s
		if s.Pid > 0 {
			pids[s.Name] = s.Pid
		}
	}
	a.mu.Lock()
	a.lastPIDs = pids
	a.mu.Unlock()
	return m, nil
}

// Status is a daemon's Component.Status.
func (a *Appliance) Status(name string) (*seesawpb.ComponentStatus, error) {
	cc := a.conns[name]
	if cc == nil {
		return nil, fmt.Errorf("no daemon %q", name)
	}
	ctx, cancel := rpcCtx()
	defer cancel()
	st, err := seesawpb.NewComponentClient(cc).Status(ctx, &seesawpb.StatusRequest{})
	if err != nil {
		return nil, fmt.Errorf("%s Component.Status: %w", name, err)
	}
	return st, nil
}

// Facility is the named facility of a status, or nil.
func Facility(st *seesawpb.ComponentStatus, name string) *seesawpb.Facility {
	for _, f := range st.GetFacilities() {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// Wait is the package's Wait that also gives up at once when the watchdog
// exits.
func (a *Appliance) Wait(t testing.TB, timeout time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	return Wait(t, timeout, what, func() error {
		select {
		case <-a.exited:
			return Permanent(fmt.Errorf("the watchdog exited (%v); its output:\n%s", a.wdErr, a.out.String()))
		default:
		}
		return f()
	})
}

// running checks that every daemon runs under the watchdog and answers on
// its socket as the process the watchdog started.
func (a *Appliance) running() (map[string]*watchdogpb.Service, error) {
	svcs, err := a.Services()
	if err != nil {
		return nil, err
	}
	for _, name := range Daemons {
		s := svcs[name]
		if s.GetState() != watchdogpb.ServiceState_SERVICE_STATE_RUNNING || s.GetPid() <= 0 {
			return nil, fmt.Errorf("the watchdog reports %s as %v", name, s.GetState())
		}
		st, err := a.Status(name)
		if err != nil {
			return nil, err
		}
		if st.Pid != s.Pid {
			return nil, fmt.Errorf("%s answers as pid %d; the watchdog runs pid %d", name, st.Pid, s.Pid)
		}
	}
	return svcs, nil
}

// WaitRunning waits until every daemon runs and answers on its socket as
// the process the watchdog started, and returns the watchdog's services.
func (a *Appliance) WaitRunning(t testing.TB, timeout time.Duration) map[string]*watchdogpb.Service {
	t.Helper()
	var svcs map[string]*watchdogpb.Service
	a.Wait(t, timeout, "every daemon running and answering", func() (err error) {
		svcs, err = a.running()
		return err
	})
	return svcs
}

// master checks that this node is master with the data plane applied: HA
// itself is LEADER with its engine session open, the engine has that
// session and follows it (not merely holding on to the kernel's state
// after a restart), and the engine's dataplane facility says the NCC
// applied the state with the LB interface up.
func (a *Appliance) master() error {
	ctx, cancel := rpcCtx()
	defer cancel()
	own, err := a.HA.GetStatus(ctx, &hapb.GetStatusRequest{})
	if err != nil {
		return fmt.Errorf("HA GetStatus: %w", err)
	}
	st, err := a.Status("ha")
	if err != nil {
		return err
	}
	if own.State != seesawpb.HAState_HA_STATE_LEADER || !Facility(st, "engine").GetAvailable() {
		return fmt.Errorf("HA says %v; its engine session: %s", own.State, Facility(st, "engine").GetDetail())
	}
	hs, err := a.Engine.HAStatus(ctx, &enginepb.HAStatusRequest{})
	if err != nil {
		return fmt.Errorf("engine HAStatus: %w", err)
	}
	if hs.State != seesawpb.HAState_HA_STATE_LEADER {
		return fmt.Errorf("engine HAStatus: %v", hs.State)
	}
	for _, f := range hs.Facilities {
		if f.Name == "ha-session" && !f.Available {
			return fmt.Errorf("engine HAStatus: %s", f.Detail)
		}
	}
	cs, err := a.Engine.ClusterStatus(ctx, &enginepb.ClusterStatusRequest{})
	if err != nil {
		return fmt.Errorf("engine ClusterStatus: %w", err)
	}
	if cs.HaState != seesawpb.HAState_HA_STATE_LEADER {
		return fmt.Errorf("engine ClusterStatus: HA state %v", cs.HaState)
	}
	if st, err = a.Status("engine"); err != nil {
		return err
	}
	f := Facility(st, "dataplane")
	if !f.GetAvailable() || !strings.Contains(f.GetDetail(), "LB interface up") {
		return fmt.Errorf("engine's dataplane facility: available=%v: %s", f.GetAvailable(), f.GetDetail())
	}
	return nil
}

// WaitMaster waits until HA has made this node master and the engine has
// had the NCC apply the master's data plane (LB interface up, VIPs
// placed). It returns how long that took.
func (a *Appliance) WaitMaster(t testing.TB, timeout time.Duration) time.Duration {
	t.Helper()
	return a.Wait(t, timeout, "HA master and the data plane applied", a.master)
}

// Kill sends SIGKILL to the daemon's process, as the watchdog reports it,
// and waits until the watchdog has started it again and the new process
// answers on its socket. It returns the pids and how long the daemon was
// away.
func (a *Appliance) Kill(t testing.TB, name string, timeout time.Duration) (oldPID, newPID int32, away time.Duration) {
	t.Helper()
	svcs, err := a.Services()
	if err != nil {
		t.Fatal(err)
	}
	s := svcs[name]
	if s.GetState() != watchdogpb.ServiceState_SERVICE_STATE_RUNNING || s.GetPid() <= 0 {
		t.Fatalf("%s is not running: %v", name, s)
	}
	oldPID = s.Pid
	start := time.Now()
	if err := syscall.Kill(int(oldPID), syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s (pid %d): %v", name, oldPID, err)
	}
	a.Wait(t, timeout, name+" restarted by the watchdog", func() error {
		svcs, err := a.Services()
		if err != nil {
			return err
		}
		s := svcs[name]
		if s.GetPid() == oldPID || s.GetPid() <= 0 || s.GetState() != watchdogpb.ServiceState_SERVICE_STATE_RUNNING {
			return fmt.Errorf("the watchdog reports %s as %v pid %d", name, s.GetState(), s.GetPid())
		}
		if s.GetLastExit().GetSignal() == "" {
			return Permanent(fmt.Errorf("%s's last exit is %v, not the SIGKILL", name, s.GetLastExit()))
		}
		st, err := a.Status(name)
		if err != nil {
			return err
		}
		if st.Pid != s.Pid {
			return fmt.Errorf("%s answers as pid %d; the watchdog runs pid %d", name, st.Pid, s.Pid)
		}
		newPID = s.Pid
		return nil
	})
	return oldPID, newPID, time.Since(start)
}

// HATransitions is how many state transitions HA's speaker has made:
// a count that moves when mastership was lost and won back.
func (a *Appliance) HATransitions() (uint64, error) {
	ctx, cancel := rpcCtx()
	defer cancel()
	st, err := a.HA.GetStatus(ctx, &hapb.GetStatusRequest{})
	if err != nil {
		return 0, fmt.Errorf("HA GetStatus: %w", err)
	}
	return st.Transitions, nil
}

// Memory is the memory of the watchdog and of each daemon, by name
// ("watchdog", "engine", ...), from /proc/PID/smaps_rollup.
func (a *Appliance) Memory() (map[string]Mem, error) {
	svcs, err := a.running()
	if err != nil {
		return nil, err
	}
	out := map[string]Mem{}
	pids := map[string]int{"watchdog": a.wd.Process.Pid}
	for _, name := range Daemons {
		pids[name] = int(svcs[name].Pid)
	}
	for name, pid := range pids {
		m, err := ProcMem(pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = m
	}
	return out, nil
}

// Mem is a process's memory in bytes. RSS counts every page the process
// maps in full, so a page that six processes share counts six times in
// their sum; PSS divides each shared page among the processes that map it,
// so the PSS of a group of processes sums to the physical memory they take.
type Mem struct {
	RSS, PSS int64
	// The PSS of anonymous memory (heap, stacks, written data), of
	// file-backed pages (mapped code and read-only data) and of shared
	// memory (tmpfs files among them).
	PSSAnon, PSSFile, PSSShmem int64
}

// Add is the sum of two Mems.
func (m Mem) Add(o Mem) Mem {
	return Mem{RSS: m.RSS + o.RSS, PSS: m.PSS + o.PSS, PSSAnon: m.PSSAnon + o.PSSAnon, PSSFile: m.PSSFile + o.PSSFile, PSSShmem: m.PSSShmem + o.PSSShmem}
}

// ProcMem is a process's memory from /proc/PID/smaps_rollup (Linux 4.14;
// the Pss_ split 5.10).
func ProcMem(pid int) (Mem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return Mem{}, err
	}
	var m Mem
	fields := map[string]*int64{"Rss:": &m.RSS, "Pss:": &m.PSS, "Pss_Anon:": &m.PSSAnon, "Pss_File:": &m.PSSFile, "Pss_Shmem:": &m.PSSShmem}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// Pss:	   12345 kB
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[2] != "kB" || fields[f[0]] == nil {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return Mem{}, fmt.Errorf("pid %d: %s %q: %w", pid, f[0], f[1], err)
		}
		*fields[f[0]] = kb << 10
		seen++
	}
	if seen < len(fields) {
		return Mem{}, fmt.Errorf("pid %d: /proc/%d/smaps_rollup lacks some of Rss, Pss, Pss_Anon, Pss_File, Pss_Shmem:\n%s", pid, pid, b)
	}
	return m, nil
}

// dumpLogs logs the watchdog's output and the end of every log file.
func (a *Appliance) dumpLogs() {
	a.t.Logf("== seesaw_watchdog output ==\n%s", tail(a.out.String(), 4000))
	entries, _ := os.ReadDir(a.LogDir())
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(a.LogDir(), name))
		if err == nil {
			a.t.Logf("== %s (%s) ==\n%s", name, a.Node.Role, tail(string(b), 6000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// lockedBuffer is a bytes.Buffer that a process and the test may use at
// once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
