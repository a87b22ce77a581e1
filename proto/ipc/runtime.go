package ipc

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// RuntimeSamples are the runtime/metrics names a daemon reports in
// seesaw.Component/Runtime: the ones client_golang's Go collector turns
// into go_goroutines, go_memstats_* and go_gc_* (the ECU does the same
// arithmetic, so its series mean what every Go dashboard expects).
var RuntimeSamples = []string{
	"/sched/goroutines:goroutines",
	"/sched/gomaxprocs:threads",
	"/gc/gogc:percent",
	"/gc/gomemlimit:bytes",
	"/gc/heap/tiny/allocs:objects",
	"/gc/heap/allocs:objects",
	"/gc/heap/frees:objects",
	"/gc/heap/allocs:bytes",
	"/gc/heap/objects:objects",
	"/gc/heap/goal:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/os-stacks:bytes",
	"/memory/classes/metadata/mspan/inuse:bytes",
	"/memory/classes/metadata/mspan/free:bytes",
	"/memory/classes/metadata/mcache/inuse:bytes",
	"/memory/classes/metadata/mcache/free:bytes",
	"/memory/classes/profiling/buckets:bytes",
	"/memory/classes/metadata/other:bytes",
	"/memory/classes/other:bytes",
}

// runtimeSampleBuf is reused by every read: one read at a time, since the
// ECU asks at most once per snapshot.
var runtimeSampleBuf = struct {
	sync.Mutex
	s []metrics.Sample
}{}

// ReadRuntime reads this process's Go runtime and process figures. Nothing
// in it stops the world: runtime/metrics is read lock-free, the GC pause
// record under the heap lock, the thread count from the list of Ms, and the
// process figures from /proc.
func ReadRuntime() *seesawpb.RuntimeStats {
	st := &seesawpb.RuntimeStats{
		GoVersion:    runtime.Version(),
		UintSamples:  make(map[string]uint64, len(RuntimeSamples)),
		FloatSamples: map[string]float64{},
	}
	runtimeSampleBuf.Lock()
	if runtimeSampleBuf.s == nil {
		for _, n := range RuntimeSamples {
			runtimeSampleBuf.s = append(runtimeSampleBuf.s, metrics.Sample{Name: n})
		}
	}
	metrics.Read(runtimeSampleBuf.s)
	for _, s := range runtimeSampleBuf.s {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			st.UintSamples[s.Name] = s.Value.Uint64()
		case metrics.KindFloat64:
			st.FloatSamples[s.Name] = s.Value.Float64()
		}
	}
	runtimeSampleBuf.Unlock()

	n, _ := runtime.ThreadCreateProfile(nil)
	st.Threads = uint64(n)

	gc := debug.GCStats{PauseQuantiles: make([]time.Duration, 5)}
	debug.ReadGCStats(&gc)
	st.GcCount = uint64(gc.NumGC)
	st.GcPauseSecondsTotal = gc.PauseTotal.Seconds()
	for _, q := range gc.PauseQuantiles {
		st.GcPauseQuantiles = append(st.GcPauseQuantiles, q.Seconds())
	}
	if !gc.LastGC.IsZero() {
		st.LastGcSeconds = float64(gc.LastGC.UnixNano()) / 1e9
	}
	st.Process = readProcess()
	return st
}

// Runtime implements seesaw.Component: every daemon that serves its status
// serves its runtime figures with it.
func (c *Component) Runtime(context.Context, *seesawpb.RuntimeRequest) (*seesawpb.RuntimeStats, error) {
	return ReadRuntime(), nil
}
