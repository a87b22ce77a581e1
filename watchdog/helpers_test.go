package watchdog

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as the services the tests supervise: the supervisor runs
// a service as argv[0] "seesaw_<name>", so when the test binary finds itself
// started under such a name it plays the behaviour named by its first
// argument instead of running tests.
func TestMain(m *testing.M) {
	if strings.HasPrefix(filepath.Base(os.Args[0]), "seesaw_") {
		os.Exit(child(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// child behaviours. Arguments: behaviour, then an events file that the
// child appends "<what> <argv0>" lines to. "file" reads the behaviour from
// the file named by the next argument, so a test can change what the next
// start does.
func child(args []string) int {
	if len(args) == 0 {
		return 2
	}
	behaviour, args := args[0], args[1:]
	if behaviour == "file" {
		b, err := os.ReadFile(args[0])
		if err != nil {
			return 3
		}
		behaviour, args = strings.TrimSpace(string(b)), args[1:]
	}
	name := filepath.Base(os.Args[0])
	event := func(what string) {
		if len(args) == 0 {
			return
		}
		f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return
		}
		fmt.Fprintf(f, "%s %s\n", what, name)
		f.Close()
	}
	// Catch SIGTERM before announcing the start, so that a test that waits
	// for the start event knows the handler is in place.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	event("start")
	switch behaviour {
	case "crash":
		return 1
	case "exit0":
		return 0
	case "print":
		fmt.Println("hello stdout")
		fmt.Fprintln(os.Stderr, "hello stderr")
		fmt.Printf("NOTIFY_SOCKET=%q\n", os.Getenv("NOTIFY_SOCKET"))
		fallthrough
	case "forever":
		<-term
		event("stop")
		// Linger so that a supervisor that did not wait for this exit
		// would signal the next service before we are gone.
		time.Sleep(50 * time.Millisecond)
		return 0
	case "usr2":
		// Tells a reload's signal (SIGUSR2) from a stop's (SIGTERM).
		usr2 := make(chan os.Signal, 1)
		signal.Notify(usr2, syscall.SIGUSR2)
		event("ready")
		select {
		case <-term:
			event("stop")
		case <-usr2:
			event("restart")
		}
		return 0
	case "ignoreterm":
		for range term {
			event("ignored")
		}
	}
	return 4
}

// testBinary is the absolute path of the test binary, which the configs run.
func testBinary(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// parse parses config text after replacing {bin} with the test binary and
// {dir} with dir.
func parse(t *testing.T, text, dir string) *Config {
	t.Helper()
	text = strings.NewReplacer("{bin}", testBinary(t), "{dir}", dir).Replace(text)
	cfg, err := ParseConfig(strings.NewReader(text), "test.cfg")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// logRecorder collects the supervisor's log lines.
type logRecorder struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	l.t.Log(s)
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

func (l *logRecorder) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// start runs sup in the background and returns a function that cancels it
// and waits for Run to return; the test's cleanup calls it too.
func start(t *testing.T, sup *Supervisor) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline; nothing is asserted about how long it took.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// status returns the named service's status.
func status(t *testing.T, sup *Supervisor, name string) ServiceStatus {
	t.Helper()
	for _, s := range sup.Status().Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %q", name)
	return ServiceStatus{}
}

// running waits until the named service runs a process other than notPID.
func running(t *testing.T, sup *Supervisor, name string, notPID int) ServiceStatus {
	t.Helper()
	var st ServiceStatus
	waitFor(t, name+" running", func() bool {
		st = status(t, sup, name)
		return st.State == StateRunning && st.PID != 0 && st.PID != notPID
	})
	return st
}

// events reads an events file's lines.
func events(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

// fakeClock hands every timer to the test, which fires it by hand.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers chan fakeTimer
}

type fakeTimer struct {
	d time.Duration
	c chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.Local), timers: make(chan fakeTimer, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.timers <- fakeTimer{d: d, c: ch}
	return ch
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// next returns the next timer the supervisor starts.
func (c *fakeClock) next(t *testing.T) fakeTimer {
	t.Helper()
	select {
	case tm := <-c.timers:
		return tm
	case <-time.After(15 * time.Second):
		t.Fatal("timed out waiting for a timer")
		return fakeTimer{}
	}
}

func (tm fakeTimer) fire() { tm.c <- time.Time{} }

// alive reports whether pid exists (and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}
