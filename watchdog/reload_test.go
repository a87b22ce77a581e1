package watchdog

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReload: a reload restarts every service once, one at a time, the
// services of ReloadFirst first and the others after their dependencies; a
// restarted dependency does not take its dependents down with it, and a
// reload is neither a failure nor subject to the backoff.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	ev := filepath.Join(dir, "events")
	cfg := parse(t, `
[ecu]
binary = {bin}
args = forever {dir}/events
dependency = engine
[engine]
binary = {bin}
args = forever {dir}/events
dependency = ncc
[ha]
binary = {bin}
args = forever {dir}/events
dependency = engine
[ncc]
binary = {bin}
args = forever {dir}/events
`, dir)
	// A backoff the test would notice: an hour.
	sup, err := New(cfg, Options{LogDir: dir, BackoffBase: time.Hour, BackoffMax: time.Hour, ReloadFirst: []string{"ncc", "ha", "nosuch"}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, sup)
	<-sup.Ready()
	waitFor(t, "every service to start", func() bool { return len(events(t, ev)) == 4 })
	before := map[string]int{}
	for _, st := range sup.Status().Services {
		before[st.Name] = st.PID
	}
	if err := sup.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, st := range sup.Status().Services {
		if st.State != StateRunning || st.PID == before[st.Name] || st.Restarts != 1 || st.ConsecutiveFailures != 0 ||
			st.LastExit == nil || !st.LastExit.Clean() {
			t.Errorf("%s after reload: %+v, last exit %+v (pid before %d)", st.Name, st, st.LastExit, before[st.Name])
		}
		if alive(before[st.Name]) {
			t.Errorf("%s: old pid %d still alive", st.Name, before[st.Name])
		}
	}
	// Each stopped once, in the reload order, each stop after the
	// previous service's new process had started.
	waitFor(t, "every new process to start", func() bool { return len(events(t, ev)) == 12 })
	var stops []string
	for _, e := range events(t, ev)[4:] {
		if name, ok := strings.CutPrefix(e, "stop_seesaw_"); ok {
			stops = append(stops, name)
		}
	}
	if want := []string{"ncc", "ha", "engine", "ecu"}; !slices.Equal(stops, want) {
		t.Errorf("reload stopped %v, want %v once each", stops, want)
	}
}

// TestReloadStopsAtABrokenBinary: a service whose binary no longer starts
// ends the reload with an error naming it; the services after it keep
// their processes, and it is retried with the backoff as after any failed
// start.
func TestReloadStopsAtABrokenBinary(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "a")
	if err := os.Symlink(testBinary(t), link); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, `
[a]
binary = {dir}/a
args = forever
[b]
binary = {bin}
args = forever
dependency = a
`, dir)
	sup, err := New(cfg, Options{LogDir: dir, BackoffBase: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start(t, sup)
	<-sup.Ready()
	b := running(t, sup, "b", 0)
	os.Remove(link)
	err = sup.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "a did not start again") {
		t.Fatalf("reload = %v, want a's failure", err)
	}
	if st := status(t, sup, "b"); st.PID != b.PID || st.Restarts != 0 {
		t.Errorf("b after the failed reload: %+v, want pid %d untouched", st, b.PID)
	}
	waitFor(t, "a to fail again", func() bool { return status(t, sup, "a").ConsecutiveFailures >= 2 })
	if err := os.Symlink(testBinary(t), link); err != nil {
		t.Fatal(err)
	}
	running(t, sup, "a", 0)
	// A reload under a cancelled context gives up.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sup.Reload(ctx); err == nil {
		t.Error("reload under a cancelled context succeeded")
	}
}

func TestReloadBeforeRun(t *testing.T) {
	sup, err := New(parse(t, "[a]\nbinary = {bin}\n", t.TempDir()), Options{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Reload(context.Background()); err == nil {
		t.Error("reload before Run succeeded")
	}
}

// TestReloadSignal: a reload stops a service named in ReloadSignal with its
// signal (HA's restart that keeps mastership), the others with SIGTERM;
// a shutdown sends SIGTERM to every one.
func TestReloadSignal(t *testing.T) {
	dir := t.TempDir()
	ev := filepath.Join(dir, "events")
	cfg := parse(t, `
[ha]
binary = {bin}
args = usr2 {dir}/events
[engine]
binary = {bin}
args = usr2 {dir}/events
`, dir)
	sigs, err := ParseReloadSignals("ha=USR2")
	if err != nil {
		t.Fatal(err)
	}
	sup, err := New(cfg, Options{LogDir: dir, ReloadSignal: sigs})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sup)
	<-sup.Ready()
	ready := func(n int) func() bool {
		return func() bool {
			c := 0
			for _, e := range events(t, ev) {
				if strings.HasPrefix(e, "ready_") {
					c++
				}
			}
			return c == n
		}
	}
	waitFor(t, "both services to be ready", ready(2))
	if err := sup.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both services to be ready again", ready(4))
	stop()
	var got []string
	for _, e := range events(t, ev) {
		if strings.HasPrefix(e, "restart_") || strings.HasPrefix(e, "stop_") {
			got = append(got, e)
		}
	}
	slices.Sort(got[:2])
	slices.Sort(got[2:])
	if want := []string{"restart_seesaw_ha", "stop_seesaw_engine", "stop_seesaw_engine", "stop_seesaw_ha"}; !slices.Equal(got, want) {
		t.Errorf("signals seen %v, want %v (the reload's USR2 for ha only; SIGTERM at shutdown)", got, want)
	}
}

func TestParseReloadSignals(t *testing.T) {
	for in, want := range map[string]map[string]syscall.Signal{
		"":                       {},
		"ha=USR2":                {"ha": syscall.SIGUSR2},
		" ha = sigusr2 , x=TERM": {"ha": syscall.SIGUSR2, "x": syscall.SIGTERM},
	} {
		got, err := ParseReloadSignals(in)
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("ParseReloadSignals(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"ha", "ha=KILLME", "=USR2", "ha=9"} {
		if _, err := ParseReloadSignals(bad); err == nil || !strings.Contains(err.Error(), "service=SIGNAL") {
			t.Errorf("ParseReloadSignals(%q) = %v, want an error naming the form", bad, err)
		}
	}
}
