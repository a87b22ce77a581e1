package watchdog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options tune a Supervisor. Zero fields take the documented defaults.
type Options struct {
	// LogDir receives each service's stdout and stderr as
	// seesaw_<name>.log.<YYYYMMDD-HHMMSS>, with the symlink seesaw_<name>.log
	// pointing at the newest file. Required.
	LogDir string
	// BackoffBase, BackoffMax and StableRun set the restart policy; see
	// Backoff. Defaults: DefaultBackoffBase, DefaultBackoffMax,
	// DefaultStableRun.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	StableRun   time.Duration
	// Clock defaults to the wall clock.
	Clock Clock
	// Logf receives one line per start, exit and signal. Defaults to
	// discarding them.
	Logf func(format string, args ...any)
	// ReloadFirst names the services a Reload restarts first, in this
	// order; the others follow, each after its dependencies. Names of no
	// service are ignored.
	ReloadFirst []string
	// ReloadSettle is how long a Reload waits after one service runs
	// again before it restarts the next, so that the restarted one can
	// reconnect to the others first. Zero: no wait.
	ReloadSettle time.Duration
	// ReloadSignal maps a service name to the signal a Reload stops it
	// with instead of SIGTERM, for a service that can tell a restart from
	// a stop: seesaw_ha takes SIGUSR2 as "restart keeping this node's
	// mastership" (no priority-0 advert, no step-down). A shutdown always
	// sends SIGTERM. SIGKILL still follows after the term_timeout.
	ReloadSignal map[string]syscall.Signal
}

// Supervisor runs the services of one Config. Create it with New, run it with
// Run, and read its state with Status at any time.
type Supervisor struct {
	opts  Options
	clock Clock
	logf  func(format string, args ...any)
	env   []string
	svcs  []*service // config file order
	ready chan struct{}

	reloadMu sync.Mutex // one Reload at a time

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced whenever a service's state changes
	started   time.Time
	running   bool
	readyLeft int // services not yet started once
}

// service is one supervised service. The fields after the mark are guarded
// by Supervisor.mu.
type service struct {
	cfg        *ServiceConfig
	argv0      string
	deps       []*service
	dependents []*service
	cred       *syscall.Credential
	// restart asks the service's goroutine to restart the service now,
	// without a backoff; the goroutine answers on the given channel (of
	// capacity 1) once the new process has started, or could not start.
	restart chan chan error

	state       State
	pid         int
	started     time.Time
	attempts    int
	restarts    int
	failures    int
	lastExit    *ExitInfo
	nextBackoff time.Duration
	logFile     string
	hasRun      bool // started successfully at least once
}

// process is one run of a service.
type process struct {
	pid  int
	done chan struct{} // closed once exit is set
	exit ExitInfo
}

// headerTime is the time format of the lines the watchdog writes into a
// service's log file.
const headerTime = "2006-01-02 15:04:05.000000 -0700"

// environment variables through which systemd talks to the watchdog itself;
// the services must not inherit them or they would notify (or claim sockets)
// on the watchdog's behalf.
var systemdEnv = []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}

// New checks cfg (users and groups must exist) and returns a Supervisor that
// has not started anything yet.
func New(cfg *Config, opts Options) (*Supervisor, error) {
	if opts.LogDir == "" {
		return nil, errors.New("watchdog: new: no log directory")
	}
	if len(cfg.Services) == 0 {
		return nil, errors.New("watchdog: new: no services")
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = DefaultBackoffBase
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	opts.BackoffMax = max(opts.BackoffMax, opts.BackoffBase)
	if opts.StableRun <= 0 {
		opts.StableRun = DefaultStableRun
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	s := &Supervisor{
		opts:      opts,
		clock:     opts.Clock,
		logf:      opts.Logf,
		ready:     make(chan struct{}),
		changed:   make(chan struct{}),
		readyLeft: len(cfg.Services),
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(systemdEnv, name) {
			s.env = append(s.env, kv)
		}
	}
	byName := map[string]*service{}
	for _, c := range cfg.Services {
		if byName[c.Name] != nil {
			return nil, fmt.Errorf("watchdog: new: service %q defined twice", c.Name)
		}
		cred, err := credential(c.User, c.Group)
		if err != nil {
			return nil, fmt.Errorf("watchdog: new: service %s (%s): %w", c.Name, c.Source, err)
		}
		svc := &service{cfg: c, argv0: "seesaw_" + c.Name, cred: cred, restart: make(chan chan error, 1)}
		byName[c.Name] = svc
		s.svcs = append(s.svcs, svc)
	}
	for _, svc := range s.svcs {
		for _, d := range svc.cfg.Dependencies {
			dep := byName[d]
			if dep == nil {
				return nil, fmt.Errorf("watchdog: new: service %s depends on unknown service %q", svc.cfg.Name, d)
			}
			svc.deps = append(svc.deps, dep)
			dep.dependents = append(dep.dependents, svc)
		}
	}
	if cycle := findCycle(cfg); cycle != nil {
		return nil, fmt.Errorf("watchdog: new: dependency cycle %s", strings.Join(cycle, " -> "))
	}
	return s, nil
}

// Ready is closed once every service has been started at least once; the
// moment to tell systemd READY=1.
func (s *Supervisor) Ready() <-chan struct{} { return s.ready }

// Run starts every service once its dependencies are running and keeps them
// running until ctx is cancelled. Then it stops them, each only after all of
// its dependents have stopped, and returns when all have stopped. A
// Supervisor runs once.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("watchdog: run: already run")
	}
	s.running = true
	s.started = s.clock.Now()
	s.mu.Unlock()
	if err := os.MkdirAll(s.opts.LogDir, 0o755); err != nil {
		return fmt.Errorf("watchdog: run: log directory: %w", err)
	}
	var wg sync.WaitGroup
	for _, svc := range s.svcs {
		wg.Go(func() { s.supervise(ctx, svc) })
	}
	wg.Wait()
	return nil
}

// supervise is one service's life: wait for dependencies, start, wait for
// the exit, back off, and again, until ctx ends.
func (s *Supervisor) supervise(ctx context.Context, svc *service) {
	defer s.update(svc, func() {
		svc.state = StateStopped
		svc.pid = 0
		svc.started = time.Time{}
		svc.nextBackoff = 0
	})
	for {
		if !s.waitToStart(ctx, svc) {
			return
		}
		proc, err := s.start(svc)
		// A restart asked for while the service was waiting or backing off
		// is done by this start.
		select {
		case reply := <-svc.restart:
			reply <- err
		default:
		}
		var exit ExitInfo
		if err != nil {
			s.logf("%s: start failed: %v", svc.argv0, err)
			exit = ExitInfo{Time: s.clock.Now(), Code: -1, Err: err.Error()}
		} else {
			select {
			case <-proc.done:
				exit = proc.exit
			case <-ctx.Done():
				s.stop(svc, proc)
				return
			case reply := <-svc.restart:
				// A reload: this service alone goes and comes back at
				// once on the binary now on disk; its dependents keep
				// running, and it is no failure.
				s.logf("%s: restarting pid %d for a reload", svc.argv0, proc.pid)
				s.update(svc, func() { svc.state = StateStopping })
				sig, ok := s.opts.ReloadSignal[svc.cfg.Name]
				if !ok {
					sig = syscall.SIGTERM
				}
				s.terminateWith(svc, proc, sig)
				svc.restart <- reply // answered by the start above
				continue
			}
		}
		delay := s.exited(svc, exit)
		select {
		case <-s.clock.After(delay):
		case reply := <-svc.restart:
			svc.restart <- reply // start now, and answer then
		case <-ctx.Done():
			return
		}
	}
}

// Reload restarts every service, one at a time, on the binary now on disk
// (a package upgrade replaced it): the services named in ReloadFirst in
// that order, then the others each after its dependencies. Each is stopped
// as at shutdown (SIGTERM, SIGKILL after its term_timeout) but without its
// dependents, and started again at once, without a backoff; the next one
// goes only once it runs and ReloadSettle has passed. A service that
// cannot start ends the reload with an error and leaves the services after
// it on their old binaries. Reloads run one at a time; Reload returns when
// ctx ends or Run's context does.
func (s *Supervisor) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if !running {
		return errors.New("watchdog: reload: not running")
	}
	order := s.reloadOrder()
	for i, svc := range order {
		if i > 0 && s.opts.ReloadSettle > 0 {
			select {
			case <-s.clock.After(s.opts.ReloadSettle):
			case <-ctx.Done():
				return fmt.Errorf("watchdog: reload: %w", ctx.Err())
			}
		}
		reply := make(chan error, 1)
		select {
		case svc.restart <- reply:
		case <-ctx.Done():
			return fmt.Errorf("watchdog: reload: %w", ctx.Err())
		}
		select {
		case err := <-reply:
			if err != nil {
				return fmt.Errorf("watchdog: reload: %s did not start again: %w", svc.cfg.Name, err)
			}
			s.logf("%s: reloaded", svc.argv0)
		case <-ctx.Done():
			return fmt.Errorf("watchdog: reload: waiting for %s: %w", svc.cfg.Name, ctx.Err())
		}
	}
	return nil
}

// reloadOrder is the order in which Reload restarts the services.
func (s *Supervisor) reloadOrder() []*service {
	var order []*service
	placed := map[*service]bool{}
	for _, name := range s.opts.ReloadFirst {
		for _, svc := range s.svcs {
			if svc.cfg.Name == name && !placed[svc] {
				order = append(order, svc)
				placed[svc] = true
			}
		}
	}
	for len(order) < len(s.svcs) {
		for _, svc := range s.svcs {
			if placed[svc] {
				continue
			}
			ready := true
			for _, d := range svc.deps {
				ready = ready && placed[d]
			}
			if ready {
				order = append(order, svc)
				placed[svc] = true
				break
			}
		}
	}
	return order
}

// waitToStart waits until every dependency of svc is running and marks svc
// starting, in one step under the lock so that a dependency being stopped
// sees svc as a dependent to wait for. It returns false when ctx ends first.
func (s *Supervisor) waitToStart(ctx context.Context, svc *service) bool {
	s.update(svc, func() { svc.state = StateWaiting })
	for {
		s.mu.Lock()
		if ctx.Err() != nil {
			s.mu.Unlock()
			return false
		}
		ok := true
		for _, d := range svc.deps {
			ok = ok && d.state == StateRunning
		}
		if ok {
			svc.state = StateStarting
			svc.attempts++
			if svc.attempts > 1 {
				svc.restarts++
			}
			s.notifyLocked()
			s.mu.Unlock()
			return true
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// start launches one run of svc with a fresh log file.
func (s *Supervisor) start(svc *service) (*process, error) {
	now := s.clock.Now()
	logPath, f, err := s.openLog(svc, now)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s.update(svc, func() { svc.logFile = logPath })
	args := append([]string{svc.argv0}, svc.cfg.Args...)
	fmt.Fprintf(f, "%s seesaw_watchdog: starting %s: %s\n",
		now.Format(headerTime), svc.argv0, commandLine(svc.cfg.Binary, svc.cfg.Args))
	cmd := &exec.Cmd{
		Path:   svc.cfg.Binary,
		Args:   args,
		Env:    s.env,
		Stdout: f,
		Stderr: f,
		// A process group of its own lets the stop signals reach anything
		// the service forked, and keeps terminal signals aimed at the
		// watchdog away from it.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Credential: svc.cred},
	}
	if err := startProcess(cmd, svc.cfg.Priority); err != nil {
		fmt.Fprintf(f, "%s seesaw_watchdog: start failed: %v\n", s.clock.Now().Format(headerTime), err)
		return nil, err
	}
	p := &process{pid: cmd.Process.Pid, done: make(chan struct{})}
	s.logf("%s: started pid %d", svc.argv0, p.pid)
	s.update(svc, func() {
		svc.state = StateRunning
		svc.pid = p.pid
		svc.started = now
		svc.nextBackoff = 0
		if !svc.hasRun {
			svc.hasRun = true
			s.readyLeft--
			if s.readyLeft == 0 {
				close(s.ready)
			}
		}
	})
	go func() {
		err := cmd.Wait()
		p.exit = exitInfo(cmd.ProcessState, err, now, s.clock.Now())
		// Whatever the service left behind in its process group dies with
		// it, so that a restart does not run beside stale children. The
		// group's id cannot be reused while any member is alive.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		close(p.done)
	}()
	return p, nil
}

// stop shuts down a running process at the end of supervision: it waits for
// every dependent to stop, sends SIGTERM to the process group, and SIGKILL
// after the service's term_timeout.
func (s *Supervisor) stop(svc *service, p *process) {
	s.update(svc, func() { svc.state = StateStopping })
wait:
	for {
		s.mu.Lock()
		waiting := 0
		for _, d := range svc.dependents {
			if d.state != StateStopped {
				waiting++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if waiting == 0 {
			break
		}
		select {
		case <-ch:
		case <-p.done:
			break wait
		}
	}
	s.terminate(svc, p)
}

// terminate sends SIGTERM to p's process group, SIGKILL after the service's
// term_timeout, waits for p to exit and records the exit.
func (s *Supervisor) terminate(svc *service, p *process) {
	s.terminateWith(svc, p, syscall.SIGTERM)
}

// terminateWith is terminate with sig in place of SIGTERM. sig goes to the
// service's main process alone, SIGTERM to its whole group: a reload's
// signal means something to the service, not to what it forked.
func (s *Supervisor) terminateWith(svc *service, p *process, sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		s.logf("%s: stopping pid %d with %s", svc.argv0, p.pid, signalName(sig))
		if sig == syscall.SIGTERM {
			_ = syscall.Kill(-p.pid, sig)
		} else {
			_ = syscall.Kill(p.pid, sig)
		}
		select {
		case <-p.done:
		case <-s.clock.After(svc.cfg.TermTimeout):
			s.logf("%s: pid %d still running after %v; sending SIGKILL", svc.argv0, p.pid, svc.cfg.TermTimeout)
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			<-p.done
		}
	}
	s.logf("%s: stopped: %v", svc.argv0, p.exit)
	s.update(svc, func() { svc.lastExit = &p.exit })
}

// exited records the end of a run that supervision did not ask for and
// returns how long to wait before the next start.
func (s *Supervisor) exited(svc *service, exit ExitInfo) time.Duration {
	var d time.Duration
	s.update(svc, func() {
		svc.failures = nextFailures(svc.failures, exit, s.opts.StableRun)
		d = Backoff(svc.failures, s.opts.BackoffBase, s.opts.BackoffMax)
		svc.lastExit = &exit
		svc.state = StateBackoff
		svc.pid = 0
		svc.started = time.Time{}
		svc.nextBackoff = d
	})
	s.logf("%s: %v; restarting in %v", svc.argv0, exit, d)
	return d
}

// update changes svc under the lock and wakes everyone waiting on a change.
func (s *Supervisor) update(svc *service, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	s.notifyLocked()
}

func (s *Supervisor) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// openLog creates this run's log file (appending, should a restart land in
// the same second) and points the seesaw_<name>.log symlink at it.
func (s *Supervisor) openLog(svc *service, now time.Time) (string, *os.File, error) {
	link := filepath.Join(s.opts.LogDir, svc.argv0+".log")
	name := svc.argv0 + ".log." + now.Format("20060102-150405")
	path := filepath.Join(s.opts.LogDir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return "", nil, fmt.Errorf("log file: %w", err)
	}
	// Replace the link atomically so readers never find it missing.
	tmp := link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(name, tmp); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("log symlink: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("log symlink: %w", err)
	}
	return path, f, nil
}

// Status returns a snapshot of every service.
func (s *Supervisor) Status() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	snap := Snapshot{Started: s.started}
	for _, svc := range s.svcs {
		st := ServiceStatus{
			Name:                svc.cfg.Name,
			Binary:              svc.cfg.Binary,
			Args:                append([]string(nil), svc.cfg.Args...),
			Dependencies:        append([]string(nil), svc.cfg.Dependencies...),
			State:               svc.state,
			PID:                 svc.pid,
			Started:             svc.started,
			Restarts:            svc.restarts,
			ConsecutiveFailures: svc.failures,
			NextBackoff:         svc.nextBackoff,
			LogFile:             svc.logFile,
		}
		if !svc.started.IsZero() {
			st.Uptime = now.Sub(svc.started)
		}
		if svc.lastExit != nil {
			e := *svc.lastExit
			st.LastExit = &e
		}
		snap.Services = append(snap.Services, st)
	}
	return snap
}

// commandLine renders a command for the log header, quoting the arguments
// that would otherwise read ambiguously, in the syntax args accepts.
func commandLine(binary string, args []string) string {
	var b strings.Builder
	b.WriteString(binary)
	for _, a := range args {
		b.WriteByte(' ')
		if a != "" && !strings.ContainsAny(a, " \t\"") {
			b.WriteString(a)
			continue
		}
		b.WriteByte('"')
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a))
		b.WriteByte('"')
	}
	return b.String()
}

// exitInfo describes a finished run from what Wait returned.
func exitInfo(ps *os.ProcessState, err error, started, now time.Time) ExitInfo {
	e := ExitInfo{Time: now, Ran: now.Sub(started)}
	if ps == nil {
		e.Code = -1
		e.Err = fmt.Sprintf("wait: %v", err)
		return e
	}
	e.Code = ps.ExitCode()
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Code = -1
		e.Signal = ws.Signal().String()
	}
	return e
}

// credential resolves a service's user and group to the credential its
// process runs with: the user's uid, primary gid and supplementary groups,
// with group (if set) replacing the primary gid. Names and numeric ids are
// both accepted. With neither set the service keeps the watchdog's identity.
func credential(userName, groupName string) (*syscall.Credential, error) {
	if userName == "" && groupName == "" {
		return nil, nil
	}
	cred := &syscall.Credential{Uid: uint32(os.Geteuid()), Gid: uint32(os.Getegid()), Groups: []uint32{}}
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			var uerr error
			if u, uerr = user.LookupId(userName); uerr != nil {
				return nil, fmt.Errorf("user: %w", err)
			}
		}
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("user %s: uid %q: %w", userName, u.Uid, err)
		}
		gid, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("user %s: gid %q: %w", userName, u.Gid, err)
		}
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
		ids, err := u.GroupIds()
		if err != nil {
			return nil, fmt.Errorf("user %s: groups: %w", userName, err)
		}
		for _, id := range ids {
			g, err := strconv.ParseUint(id, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("user %s: group id %q: %w", userName, id, err)
			}
			cred.Groups = append(cred.Groups, uint32(g))
		}
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			var gerr error
			if g, gerr = user.LookupGroupId(groupName); gerr != nil {
				return nil, fmt.Errorf("group: %w", err)
			}
		}
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("group %s: gid %q: %w", groupName, g.Gid, err)
		}
		cred.Gid = uint32(gid)
	}
	return cred, nil
}

// signalName is sig as in "SIGTERM".
func signalName(sig syscall.Signal) string {
	for name, v := range signalNames {
		if v == sig {
			return "SIG" + name
		}
	}
	return sig.String()
}

// signalNames are the signals a reload may send, by name without "SIG".
var signalNames = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "HUP": syscall.SIGHUP,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "QUIT": syscall.SIGQUIT,
}

// ParseReloadSignals parses "ha=USR2,other=SIGHUP" into
// Options.ReloadSignal.
func ParseReloadSignals(s string) (map[string]syscall.Signal, error) {
	out := map[string]syscall.Signal{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, sigName, ok := strings.Cut(item, "=")
		name, sigName = strings.TrimSpace(name), strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(sigName)), "SIG")
		sig, known := signalNames[sigName]
		if !ok || name == "" || !known {
			return nil, fmt.Errorf("watchdog: reload signals %q: %q is not service=SIGNAL with SIGNAL one of TERM, INT, HUP, USR1, USR2, QUIT", s, item)
		}
		out[name] = sig
	}
	return out, nil
}
