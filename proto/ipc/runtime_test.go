package ipc

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// TestRuntimeSamplesKnown: every runtime/metrics name the daemons report
// exists in this Go, as a scalar, so that a rename in a future release
// fails here rather than leaving a series at zero on a dashboard.
func TestRuntimeSamplesKnown(t *testing.T) {
	known := map[string]metrics.ValueKind{}
	for _, d := range metrics.All() {
		known[d.Name] = d.Kind
	}
	for _, n := range RuntimeSamples {
		k, ok := known[n]
		if !ok {
			t.Errorf("runtime/metrics has no %s", n)
			continue
		}
		if k != metrics.KindUint64 && k != metrics.KindFloat64 {
			t.Errorf("%s is not a scalar (kind %v)", n, k)
		}
	}
}

// TestRuntimeOverSocket: a daemon's Component answers Runtime over its
// socket with figures of the serving process: its goroutines (more while
// more are parked), its heap, its GC pauses and its open descriptors.
func TestRuntimeOverSocket(t *testing.T) {
	c := NewComponent("engine")
	sock := filepath.Join(t.TempDir(), "engine.sock")
	cc := serveComponent(t, sock, Policy{Read: Rule{Anyone: true}}, c)
	client := seesawpb.NewComponentClient(cc)
	call := func() *seesawpb.RuntimeStats {
		t.Helper()
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		st, err := client.Runtime(cctx, &seesawpb.RuntimeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	runtime.GC() // at least one pause on record
	before := call()
	const goroutines = "/sched/goroutines:goroutines"
	park := make(chan struct{})
	for range 50 {
		go func() { <-park }()
	}
	after := call()
	close(park)

	if before.GoVersion != runtime.Version() {
		t.Errorf("go version %q, want %q", before.GoVersion, runtime.Version())
	}
	if g0, g1 := before.UintSamples[goroutines], after.UintSamples[goroutines]; g0 == 0 || g1 < g0+50 {
		t.Errorf("goroutines %d then %d with 50 more parked", g0, g1)
	}
	for _, n := range RuntimeSamples {
		if _, ok := after.UintSamples[n]; !ok {
			if _, ok := after.FloatSamples[n]; !ok {
				t.Errorf("no sample %s", n)
			}
		}
	}
	if after.UintSamples["/memory/classes/heap/objects:bytes"] == 0 || after.UintSamples["/memory/classes/total:bytes"] == 0 {
		t.Errorf("no heap: %v", after.UintSamples)
	}
	if after.Threads == 0 {
		t.Error("no OS threads")
	}
	if after.GcCount == 0 || len(after.GcPauseQuantiles) != 5 || after.LastGcSeconds == 0 {
		t.Errorf("GC after runtime.GC(): count %d quantiles %v last %v", after.GcCount, after.GcPauseQuantiles, after.LastGcSeconds)
	}
	p := after.Process
	if p == nil {
		t.Fatal("no process figures")
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	if p.OpenFds == nil || *p.OpenFds == 0 || p.MaxFds == nil || *p.MaxFds < *p.OpenFds {
		t.Errorf("fds: open %v max %v (the test sees %d)", p.OpenFds, p.MaxFds, len(fds))
	}
	if p.ResidentMemoryBytes == 0 || p.StartTimeSeconds < 1e9 || p.CpuSeconds < 0 {
		t.Errorf("process: %v", p)
	}
}

// BenchmarkReadRuntime: what one Runtime call costs the daemon asked.
func BenchmarkReadRuntime(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ReadRuntime()
	}
}
