package ecu

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// The test binary doubles as a daemon in a process of its own (see
// TestMain): it serves an ipc.Component as "ncc" on the socket named by
// childDaemonEnv, with childGoroutines goroutines parked, until its stdin
// closes.
const (
	childDaemonEnv  = "SEESAW_ECU_TEST_DAEMON"
	childGoroutines = 1000
)

func runChildDaemon(sock string) int {
	s, err := ipc.NewServer(ipc.ServerOptions{Path: sock, Policy: ipc.Policy{Read: ipc.Rule{Anyone: true}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	seesawpb.RegisterComponentServer(s, ipc.NewComponent("ncc"))
	park := make(chan struct{})
	for range childGoroutines {
		go func() { <-park }()
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	if err := s.Serve(ctx, time.Second); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	close(park)
	return 0
}

// startChildDaemon runs runChildDaemon in a new process serving sock; it
// stops when the test ends.
func startChildDaemon(t *testing.T, sock string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDaemonEnv+"="+sock)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
}

// noRuntime is a daemon from before seesaw.Component/Runtime: it answers
// its status only.
type noRuntime struct {
	seesawpb.UnimplementedComponentServer
}

func (noRuntime) Status(context.Context, *seesawpb.StatusRequest) (*seesawpb.ComponentStatus, error) {
	return &seesawpb.ComponentStatus{Component: "watchdog", Healthy: true}, nil
}

// goRuntimeFamilies are families every daemon that answers must have.
var goRuntimeFamilies = []string{
	"go_goroutines", "go_threads", "go_info", "go_gc_duration_seconds",
	"go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_sys_bytes",
	"go_memstats_alloc_bytes_total", "go_memstats_mallocs_total", "go_memstats_next_gc_bytes",
	"go_sched_gomaxprocs_threads", "process_open_fds", "process_max_fds",
	"process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds",
}

// TestMetricsGoRuntimePerDaemon: /metrics carries the Go runtime and
// process series of each daemon that answers, with a daemon label, under
// client_golang's names: the ECU's own, the engine's and the healthcheck
// process's (in this test's process) and an NCC's in a process of its own,
// whose 1,000 parked goroutines show that its figures are its own. A
// daemon whose socket nobody serves (ha) and one that answers its status
// but not Runtime (an older watchdog) have none, and the scrape still
// comes. The exposition passes promlint and promtool.
func TestMetricsGoRuntimePerDaemon(t *testing.T) {
	dir := t.TempDir()
	nccSock := filepath.Join(dir, "ncc.sock")
	startChildDaemon(t, nccSock)
	wdSock := filepath.Join(dir, "watchdog.sock")
	wd, err := ipc.NewServer(ipc.ServerOptions{Path: wdSock, Policy: ipc.Policy{Read: ipc.Rule{Anyone: true}}})
	if err != nil {
		t.Fatal(err)
	}
	seesawpb.RegisterComponentServer(wd, noRuntime{})
	wdCtx, wdStop := context.WithCancel(context.Background())
	wdDone := make(chan error, 1)
	go func() { wdDone <- wd.Serve(wdCtx, 100*time.Millisecond) }()
	t.Cleanup(func() { wdStop(); <-wdDone })

	r := startRig(t, rigSeesawCfg, rigCluster(map[string]int{"api": 81, "dns": 82, "web": 83}), hcDryRun, 50*time.Millisecond,
		func(c *Config) {
			c.Components["ncc"] = nccSock
			c.Components["ha"] = filepath.Join(dir, "ha.sock") // nothing serves it
			c.Components["watchdog"] = wdSock
			c.CallTimeout = 2 * time.Second // ha's calls fail fast enough
		})

	var body string
	r.waitFor(`go_goroutines{daemon="ncc"} in /metrics`, func() bool {
		_, body = r.get("/metrics")
		return strings.Contains(body, `go_goroutines{daemon="ncc"} `) && strings.Contains(body, `go_goroutines{daemon="healthcheck"} `)
	})
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	daemons := func(mf *dto.MetricFamily) map[string][]*dto.Metric {
		out := map[string][]*dto.Metric{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "daemon" {
					out[l.GetValue()] = append(out[l.GetValue()], m)
				}
			}
		}
		return out
	}
	want := []string{"ecu", "engine", "healthcheck", "ncc"}
	for _, name := range goRuntimeFamilies {
		mf := mfs[name]
		if mf == nil {
			t.Errorf("/metrics has no %s", name)
			continue
		}
		got := daemons(mf)
		for _, d := range want {
			if len(got[d]) == 0 {
				t.Errorf("%s has no series for daemon %q", name, d)
			}
		}
		for _, d := range []string{"ha", "watchdog"} {
			if len(got[d]) != 0 {
				t.Errorf("%s has a series for %s, which does not answer Runtime", name, d)
			}
		}
		if len(mf.GetMetric()) != len(got[want[0]])*len(want) {
			t.Errorf("%s: %d series, not one set per daemon", name, len(mf.GetMetric()))
		}
	}
	if mf := mfs["go_gc_duration_seconds"]; mf != nil {
		if mf.GetType() != dto.MetricType_SUMMARY || len(daemons(mf)["ncc"][0].GetSummary().GetQuantile()) != 5 {
			t.Errorf("go_gc_duration_seconds is not a summary of five quantiles: %v", daemons(mf)["ncc"])
		}
	}
	value := func(family, daemon string) float64 {
		for _, m := range daemons(mfs[family])[daemon] {
			return m.GetGauge().GetValue()
		}
		return -1
	}
	if n := value("go_goroutines", "ncc"); n < childGoroutines {
		t.Errorf(`go_goroutines{daemon="ncc"} = %v, want at least the %d the NCC's process parked`, n, childGoroutines)
	}
	if n := value("go_goroutines", "ecu"); n <= 0 || n >= childGoroutines {
		t.Errorf(`go_goroutines{daemon="ecu"} = %v: not the ECU's own`, n)
	}
	if !strings.Contains(body, `go_info{daemon="ncc",version="`+runtime.Version()+`"} 1`) {
		t.Errorf("no go_info for the NCC with version %s", runtime.Version())
	}
	for _, c := range []string{`seesaw_component_up{component="ha"} 0`, `seesaw_component_up{component="watchdog"} 1`, `seesaw_component_up{component="ncc"} 1`} {
		if !strings.Contains(body, c) {
			t.Errorf("/metrics lacks %s", c)
		}
	}

	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) != 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed: only promlint checked the exposition")
	}
}

// TestWriteRuntime: the memory series are the sums client_golang makes of
// runtime/metrics' classes, a daemon without /proc figures has go_* series
// but no process_* ones, a missing fd count leaves only that series out,
// and the exposition parses with each family once.
func TestWriteRuntime(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	full := &seesawpb.RuntimeStats{GoVersion: "go1.99", Threads: 9, GcCount: 4, GcPauseSecondsTotal: 0.004,
		GcPauseQuantiles: []float64{0.0001, 0.0002, 0.0003, 0.0004, 0.002}, LastGcSeconds: 1.7e9,
		UintSamples: map[string]uint64{
			"/sched/goroutines:goroutines":        42,
			"/memory/classes/heap/objects:bytes":  1000,
			"/memory/classes/heap/unused:bytes":   24,
			"/memory/classes/heap/released:bytes": 300,
			"/memory/classes/heap/free:bytes":     5,
			"/gc/heap/allocs:objects":             70,
			"/gc/heap/tiny/allocs:objects":        7,
		},
		Process: &seesawpb.ProcessStats{CpuSeconds: 1.5, ResidentMemoryBytes: 4096, StartTimeSeconds: 1.6e9, OpenFds: u(12), MaxFds: u(1024)}}
	noProc := &seesawpb.RuntimeStats{GoVersion: "go1.99", Threads: 3, UintSamples: map[string]uint64{"/sched/goroutines:goroutines": 5}}
	noFds := &seesawpb.RuntimeStats{GoVersion: "go1.98", UintSamples: map[string]uint64{}, Process: &seesawpb.ProcessStats{CpuSeconds: 2}}
	body := string(writeRuntime(nil, &snapshot{Runtime: map[string]*seesawpb.RuntimeStats{"engine": full, "ha": noProc, "ncc": noFds}}))
	for _, want := range []string{
		"# TYPE go_gc_duration_seconds summary\n",
		`go_gc_duration_seconds{daemon="engine",quantile="0.5"} 0.0003` + "\n",
		`go_gc_duration_seconds{daemon="engine",quantile="1"} 0.002` + "\n",
		`go_gc_duration_seconds_sum{daemon="engine"} 0.004` + "\n",
		`go_gc_duration_seconds_count{daemon="engine"} 4` + "\n",
		`go_info{daemon="ncc",version="go1.98"} 1` + "\n",
		`go_goroutines{daemon="engine"} 42` + "\n",
		`go_goroutines{daemon="ha"} 5` + "\n",
		`go_threads{daemon="engine"} 9` + "\n",
		`go_memstats_heap_alloc_bytes{daemon="engine"} 1000` + "\n",
		`go_memstats_heap_inuse_bytes{daemon="engine"} 1024` + "\n",
		`go_memstats_heap_idle_bytes{daemon="engine"} 305` + "\n",
		`go_memstats_heap_sys_bytes{daemon="engine"} 1329` + "\n",
		`go_memstats_mallocs_total{daemon="engine"} 77` + "\n",
		"# TYPE go_memstats_mallocs_total counter\n",
		`process_open_fds{daemon="engine"} 12` + "\n",
		`process_max_fds{daemon="engine"} 1024` + "\n",
		`process_cpu_seconds_total{daemon="ncc"} 2` + "\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %q in:\n%s", want, body)
		}
	}
	for _, not := range []string{`process_cpu_seconds_total{daemon="ha"}`, `process_open_fds{daemon="ncc"}`, `go_memstats_heap_sys_bytes{daemon="ha"}`, `go_threads{daemon="ncc"}`} {
		if strings.Contains(body, not) {
			t.Errorf("has %s:\n%s", not, body)
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := parser.TextToMetricFamilies(strings.NewReader(body)); err != nil {
		t.Errorf("does not parse: %v\n%s", err, body)
	}
	if b := writeRuntime(nil, &snapshot{}); len(b) != 0 {
		t.Errorf("no daemon, yet:\n%s", b)
	}
}
