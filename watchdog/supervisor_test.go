package watchdog

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/testenv"
)

// TestStartOrder proves that a service starts only once its dependencies
// are running: with a's binary missing, b and c never start however often a
// is retried; once a can start, a, b and c come up in that order.
func TestStartOrder(t *testing.T) {
	dir := t.TempDir()
	ev := filepath.Join(dir, "events")
	// File order is the reverse of dependency order on purpose.
	cfg := parse(t, `
[c]
binary = {bin}
args = forever {dir}/events
dependency = b
[b]
binary = {bin}
args = forever {dir}/events
dependency = a
[a]
binary = {dir}/a
args = forever {dir}/events
`, dir)
	logs := &logRecorder{t: t}
	sup, err := New(cfg, Options{LogDir: filepath.Join(dir, "log"), BackoffBase: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	start(t, sup)

	waitFor(t, "a to fail to start three times", func() bool { return status(t, sup, "a").ConsecutiveFailures >= 3 })
	a := status(t, sup, "a")
	if a.LastExit == nil || !strings.Contains(a.LastExit.Err, "no such file") || a.Restarts < 2 {
		t.Errorf("a after failed starts: %+v, last exit %+v", a, a.LastExit)
	}
	for _, name := range []string{"b", "c"} {
		if st := status(t, sup, name); st.State != StateWaiting || st.PID != 0 || st.LogFile != "" || st.Restarts != 0 {
			t.Errorf("%s started although a is not running: %+v", name, st)
		}
	}
	select {
	case <-sup.Ready():
		t.Fatal("Ready before every service started")
	default:
	}
	if got := events(t, ev); len(got) != 0 {
		t.Fatalf("services ran: %v", got)
	}

	if err := os.Symlink(testBinary(t), filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sup.Ready():
	case <-time.After(15 * time.Second):
		t.Fatal("never ready")
	}
	for _, name := range []string{"a", "b", "c"} {
		running(t, sup, name, 0)
	}
	var started []string
	for _, l := range logs.get() {
		if strings.Contains(l, ": started pid") {
			started = append(started, strings.Fields(l)[0])
		}
	}
	if want := []string{"seesaw_a:", "seesaw_b:", "seesaw_c:"}; !slices.Equal(started, want) {
		t.Errorf("start order %v, want %v", started, want)
	}
	// Each child saw argv[0] seesaw_<name>.
	waitFor(t, "children to report", func() bool { return len(events(t, ev)) == 3 })
	got := events(t, ev)
	slices.Sort(got)
	if want := []string{"start_seesaw_a", "start_seesaw_b", "start_seesaw_c"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// TestRestartAfterKill kills a service with SIGKILL and expects a new
// process, one restart and the kill in the last exit.
func TestRestartAfterKill(t *testing.T) {
	dir := t.TempDir()
	cfg := parse(t, "[svc]\nbinary={bin}\nargs=forever\n", dir)
	sup, err := New(cfg, Options{LogDir: dir, BackoffBase: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start(t, sup)
	first := running(t, sup, "svc", 0)
	if first.Restarts != 0 || first.LastExit != nil || first.Uptime < 0 || first.Started.IsZero() {
		t.Errorf("first run: %+v", first)
	}
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := running(t, sup, "svc", first.PID)
	if second.Restarts != 1 || second.ConsecutiveFailures != 1 {
		t.Errorf("after kill: restarts %d, failures %d; want 1, 1", second.Restarts, second.ConsecutiveFailures)
	}
	e := second.LastExit
	if e == nil || e.Signal != "killed" || e.Code != -1 || e.Err != "" || e.Clean() || e.Time.IsZero() {
		t.Errorf("last exit %+v, want killed", e)
	}
}

// TestRestartBackoff drives the restart delays with a fake clock: they double on
// each consecutive failure up to the cap, start over after a stable run,
// and reset after a clean exit.
func TestRestartBackoff(t *testing.T) {
	dir := t.TempDir()
	mode := filepath.Join(dir, "mode")
	if err := os.WriteFile(mode, []byte("crash"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, "[svc]\nbinary={bin}\nargs=file {dir}/mode\n", dir)
	clk := newFakeClock()
	const base, maxDelay, stable = 50 * time.Millisecond, 400 * time.Millisecond, time.Hour
	sup, err := New(cfg, Options{LogDir: dir, BackoffBase: base, BackoffMax: maxDelay, StableRun: stable, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	start(t, sup)

	var delays []time.Duration
	var tm fakeTimer
	for i := 1; i <= 6; i++ {
		tm = clk.next(t)
		delays = append(delays, tm.d)
		st := status(t, sup, "svc")
		if st.State != StateBackoff || st.NextBackoff != tm.d || st.ConsecutiveFailures != i || st.Restarts != i-1 || st.PID != 0 {
			t.Errorf("failure %d: %+v", i, st)
		}
		if e := st.LastExit; e == nil || e.Code != 1 || e.Signal != "" {
			t.Errorf("failure %d: last exit %+v", i, e)
		}
		if i < 6 {
			tm.fire()
		}
	}
	want := []time.Duration{50, 100, 200, 400, 400, 400}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(delays, want) {
		t.Errorf("delays %v, want %v", delays, want)
	}

	// A run that outlasts StableRun and then fails counts as a first failure.
	if err := os.WriteFile(mode, []byte("forever"), 0o644); err != nil {
		t.Fatal(err)
	}
	tm.fire()
	st := running(t, sup, "svc", 0)
	if st.ConsecutiveFailures != 6 || st.NextBackoff != 0 {
		t.Errorf("running again: %+v", st)
	}
	clk.advance(stable)
	if st := status(t, sup, "svc"); st.Uptime != stable {
		t.Errorf("uptime %v, want %v", st.Uptime, stable)
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	tm = clk.next(t)
	st = status(t, sup, "svc")
	if tm.d != base || st.ConsecutiveFailures != 1 || st.LastExit == nil || st.LastExit.Ran != stable {
		t.Errorf("after a stable run: delay %v, %+v, last exit %+v", tm.d, st, st.LastExit)
	}

	// A quick failure after that doubles again.
	if err := os.WriteFile(mode, []byte("crash"), 0o644); err != nil {
		t.Fatal(err)
	}
	tm.fire()
	if tm = clk.next(t); tm.d != 2*base {
		t.Errorf("second failure after stable run: delay %v, want %v", tm.d, 2*base)
	}

	// A clean exit resets the count.
	if err := os.WriteFile(mode, []byte("exit0"), 0o644); err != nil {
		t.Fatal(err)
	}
	tm.fire()
	tm = clk.next(t)
	st = status(t, sup, "svc")
	if tm.d != base || st.ConsecutiveFailures != 0 || st.LastExit == nil || !st.LastExit.Clean() {
		t.Errorf("after clean exit: delay %v, %+v, last exit %+v", tm.d, st, st.LastExit)
	}
	if st.Restarts != 8 {
		t.Errorf("restarts %d, want 8", st.Restarts)
	}
}

// TestStopOrder stops a diamond (d needs b and c, which need a) and checks
// from the children's own records that each got SIGTERM only after its
// dependents had exited.
func TestStopOrder(t *testing.T) {
	dir := t.TempDir()
	ev := filepath.Join(dir, "events")
	cfg := parse(t, `
[a]
binary = {bin}
args = forever {dir}/events
[b]
binary = {bin}
args = forever {dir}/events
dependency = a
[c]
binary = {bin}
args = forever {dir}/events
dependency = a
[d]
binary = {bin}
args = forever {dir}/events
dependency = b c
`, dir)
	sup, err := New(cfg, Options{LogDir: dir, BackoffBase: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sup)
	<-sup.Ready()
	pids := map[string]int{}
	for _, n := range []string{"a", "b", "c", "d"} {
		pids[n] = running(t, sup, n, 0).PID
	}
	// Their SIGTERM handlers must be installed before we stop them.
	waitFor(t, "children to start", func() bool { return len(events(t, ev)) == 4 })
	stop()

	var stops []string
	for _, e := range events(t, ev) {
		if name, ok := strings.CutPrefix(e, "stop_seesaw_"); ok {
			stops = append(stops, name)
		}
	}
	if len(stops) != 4 {
		t.Fatalf("stop events %v", stops)
	}
	pos := func(n string) int { return slices.Index(stops, n) }
	if !(pos("d") < pos("b") && pos("d") < pos("c") && pos("b") < pos("a") && pos("c") < pos("a")) {
		t.Errorf("stop order %v violates dependencies", stops)
	}
	for _, st := range sup.Status().Services {
		if st.State != StateStopped || st.PID != 0 || st.LastExit == nil || !st.LastExit.Clean() {
			t.Errorf("%s after stop: %+v, last exit %+v", st.Name, st, st.LastExit)
		}
		if alive(pids[st.Name]) {
			t.Errorf("%s: pid %d still alive", st.Name, pids[st.Name])
		}
	}
}

// TestTermTimeout stops a service that ignores SIGTERM: it must be killed
// with SIGKILL once its term_timeout has passed.
func TestTermTimeout(t *testing.T) {
	dir := t.TempDir()
	ev := filepath.Join(dir, "events")
	cfg := parse(t, "[stubborn]\nbinary={bin}\nargs=ignoreterm {dir}/events\nterm_timeout=200ms\n", dir)
	sup, err := New(cfg, Options{LogDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sup)
	pid := running(t, sup, "stubborn", 0).PID
	// Its SIGTERM handler must be installed before we stop it.
	waitFor(t, "child to start", func() bool { return len(events(t, ev)) > 0 })
	stop()
	st := status(t, sup, "stubborn")
	if st.State != StateStopped || st.LastExit == nil || st.LastExit.Signal != "killed" {
		t.Errorf("after stop: %+v, last exit %+v", st, st.LastExit)
	}
	if !slices.Contains(events(t, ev), "ignored_seesaw_stubborn") {
		t.Errorf("child never got SIGTERM: %v", events(t, ev))
	}
	if alive(pid) {
		t.Errorf("pid %d still alive", pid)
	}
}

// TestProcessGroupCleanup kills a service's main process and expects what
// it forked, in its process group, to be killed with it.
func TestProcessGroupCleanup(t *testing.T) {
	dir := t.TempDir()
	cfg := parse(t, "[sh]\nbinary=/bin/sh\nargs=-c \"sleep 1000 & echo $! > {dir}/child; wait\"\n", dir)
	sup, err := New(cfg, Options{LogDir: dir, BackoffBase: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	start(t, sup)
	sh := running(t, sup, "sh", 0)
	var child int
	waitFor(t, "grandchild pid", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "child"))
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return child > 0
	})
	if !alive(child) {
		t.Fatal("grandchild not running")
	}
	if pgid, err := syscall.Getpgid(child); err != nil || pgid != sh.PID {
		t.Errorf("grandchild in group %d (%v), want %d", pgid, err, sh.PID)
	}
	if err := syscall.Kill(sh.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "grandchild to die", func() bool { return !alive(child) })
}

// TestLogFiles checks that stdout and stderr land in the run's log file
// after a header, that stdin is /dev/null, that systemd's variables are
// not passed on, and that the symlink follows each new run.
func TestLogFiles(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	dir := t.TempDir()
	cfg := parse(t, "[p]\nbinary={bin}\nargs=print\n", dir)
	clk := newFakeClock()
	sup, err := New(cfg, Options{LogDir: dir, BackoffBase: time.Millisecond, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	start(t, sup)
	link := filepath.Join(dir, "seesaw_p.log")
	nameRE := regexp.MustCompile(`^seesaw_p\.log\.\d{8}-\d{6}$`)

	check := func(run int) (pid int, file string) {
		st := running(t, sup, "p", 0)
		file = filepath.Base(st.LogFile)
		if !nameRE.MatchString(file) || filepath.Dir(st.LogFile) != dir {
			t.Errorf("run %d: log file %s", run, st.LogFile)
		}
		if want := "seesaw_p.log." + clk.Now().Format("20060102-150405"); file != want {
			t.Errorf("run %d: log file %s, want %s", run, file, want)
		}
		if target, err := os.Readlink(link); err != nil || target != file {
			t.Errorf("run %d: symlink -> %q (%v), want %q", run, target, err, file)
		}
		var text string
		waitFor(t, "output in the log", func() bool {
			b, _ := os.ReadFile(link)
			text = string(b)
			return strings.Contains(text, "NOTIFY_SOCKET=")
		})
		lines := strings.Split(strings.TrimSpace(text), "\n")
		if len(lines) != 4 || !strings.Contains(lines[0], "seesaw_watchdog: starting seesaw_p: "+testBinary(t)+" print") {
			t.Errorf("run %d: log:\n%s", run, text)
		}
		for _, want := range []string{"hello stdout", "hello stderr", `NOTIFY_SOCKET=""`} {
			if !strings.Contains(text, want+"\n") {
				t.Errorf("run %d: log lacks %q:\n%s", run, want, text)
			}
		}
		for fd, want := range map[int]string{0: "/dev/null", 1: st.LogFile, 2: st.LogFile} {
			if got, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", st.PID, fd)); got != want {
				t.Errorf("run %d: fd %d is %q (%v), want %q", run, fd, got, err, want)
			}
		}
		return st.PID, file
	}
	pid, first := check(1)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	tm := clk.next(t)
	clk.advance(time.Hour)
	tm.fire()
	_, second := check(2)
	if first == second {
		t.Fatalf("both runs logged to %s", first)
	}
	if b, err := os.ReadFile(filepath.Join(dir, first)); err != nil || !strings.Contains(string(b), "hello stdout") {
		t.Errorf("first run's log lost: %q, %v", b, err)
	}
}

// TestPriorityAndCredentials checks nice values on every thread of a
// service, the watchdog's own threads afterwards, and user/group switching.
func TestPriorityAndCredentials(t *testing.T) {
	testenv.RequireRoot(t) // to lower nice values and change credentials
	dir := t.TempDir()
	cfg := parse(t, `
[low]
binary = {bin}
args = forever
priority = 7
[high]
binary = /bin/sleep
args = 1000
priority = -5
user = nobody
group = daemon
`, dir)
	sup, err := New(cfg, Options{LogDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	start(t, sup)
	low := running(t, sup, "low", 0)
	high := running(t, sup, "high", 0)

	// A Go child has several threads by now; all must carry the nice value.
	waitFor(t, "low's runtime threads", func() bool { return len(threadNice(t, low.PID)) > 1 })
	for tid, n := range threadNice(t, low.PID) {
		if n != 7 {
			t.Errorf("low: thread %d nice %d, want 7", tid, n)
		}
	}
	for tid, n := range threadNice(t, high.PID) {
		if n != -5 {
			t.Errorf("high: thread %d nice %d, want -5", tid, n)
		}
	}
	for tid, n := range threadNice(t, os.Getpid()) {
		if n != 0 {
			t.Errorf("watchdog thread %d left at nice %d", tid, n)
		}
	}

	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", high.PID))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Uid:\t65534\t65534\t65534\t65534", "Gid:\t1\t1\t1\t1", "Groups:\t65534"} {
		if !strings.Contains(string(b), want+"\n") && !strings.Contains(string(b), want+" \n") {
			t.Errorf("high: /proc status lacks %q:\n%s", want, b)
		}
	}
}

// threadNice returns the nice value of each thread of pid.
func threadNice(t *testing.T, pid int) map[int]int {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread has just exited
		}
		s := string(b)
		// Field 19 (nice) counts from the state, field 3, after the ')'.
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		n, err := strconv.Atoi(f[19-3])
		if err != nil {
			t.Fatal(err)
		}
		tid, _ := strconv.Atoi(task.Name())
		out[tid] = n
	}
	return out
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(parse(t, "[a]\nbinary=/a\nuser=no-such-user-here\n", dir), Options{LogDir: dir}); err == nil ||
		!strings.Contains(err.Error(), "service a (test.cfg:1): user") {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := New(parse(t, "[a]\nbinary=/a\ngroup=no-such-group-here\n", dir), Options{LogDir: dir}); err == nil ||
		!strings.Contains(err.Error(), "group") {
		t.Errorf("unknown group: %v", err)
	}
	if _, err := New(parse(t, "[a]\nbinary=/a\n", dir), Options{}); err == nil {
		t.Error("no log dir accepted")
	}
}

func TestCredential(t *testing.T) {
	if c, err := credential("", ""); c != nil || err != nil {
		t.Errorf("no user: %+v, %v", c, err)
	}
	c, err := credential("65534", "")
	if err != nil || c.Uid != 65534 || c.Gid != 65534 || !slices.Equal(c.Groups, []uint32{65534}) {
		t.Errorf("numeric uid: %+v, %v", c, err)
	}
	c, err = credential("", "1")
	if err != nil || c.Uid != uint32(os.Geteuid()) || c.Gid != 1 || len(c.Groups) != 0 {
		t.Errorf("group only: %+v, %v", c, err)
	}
}
