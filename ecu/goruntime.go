package ecu

import (
	"context"

	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Every daemon's Go runtime and process figures, the ECU's own included,
// are written under the names client_golang's Go and process collectors
// give them, with a `daemon` label: a Go dashboard works with a daemon
// selector, and one scrape of the ECU covers the whole node. The figures
// come from each daemon's seesaw.Component/Runtime, asked during the
// snapshot; a daemon that does not answer has no such series. The memory
// series are computed from runtime/metrics as client_golang computes them
// on Go 1.17 and later, so they mean what dashboards expect.

const summary = "summary"

// rtMetric is one runtime family and how to read it from a daemon's stats
// (ok false: this daemon has no value for it).
type rtMetric struct {
	m     *metricDef
	value func(*seesawpb.RuntimeStats) (v float64, ok bool)
}

// rs reads a runtime/metrics sample by name.
func rs(name string) func(*seesawpb.RuntimeStats) (float64, bool) {
	return func(st *seesawpb.RuntimeStats) (float64, bool) {
		if v, ok := st.UintSamples[name]; ok {
			return float64(v), true
		}
		v, ok := st.FloatSamples[name]
		return v, ok
	}
}

// rsSum adds runtime/metrics samples; every one must be present.
func rsSum(names ...string) func(*seesawpb.RuntimeStats) (float64, bool) {
	return func(st *seesawpb.RuntimeStats) (float64, bool) {
		var sum float64
		for _, n := range names {
			v, ok := rs(n)(st)
			if !ok {
				return 0, false
			}
			sum += v
		}
		return sum, true
	}
}

// proc reads a process figure; nil when the daemon could not read /proc.
func proc(f func(*seesawpb.ProcessStats) (float64, bool)) func(*seesawpb.RuntimeStats) (float64, bool) {
	return func(st *seesawpb.RuntimeStats) (float64, bool) {
		if st.Process == nil {
			return 0, false
		}
		return f(st.Process)
	}
}

func optU(p *uint64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return float64(*p), true
}

const (
	rmHeapObjects   = "/memory/classes/heap/objects:bytes"
	rmHeapUnused    = "/memory/classes/heap/unused:bytes"
	rmHeapReleased  = "/memory/classes/heap/released:bytes"
	rmHeapFree      = "/memory/classes/heap/free:bytes"
	rmTinyAllocs    = "/gc/heap/tiny/allocs:objects"
	rmStacks        = "/memory/classes/heap/stacks:bytes"
	rmMSpanInuse    = "/memory/classes/metadata/mspan/inuse:bytes"
	rmMCacheInuse   = "/memory/classes/metadata/mcache/inuse:bytes"
	goGCDurationsID = "go_gc_duration_seconds"
)

var (
	mGoGC = def(goGCDurationsID, summary, "Stop-the-world pauses of the daemon's garbage collector: quantiles of the recent ones, count and total of all.")

	// rtMetrics are the families after go_gc_duration_seconds and go_info.
	rtMetrics = []rtMetric{
		{def("go_gc_gogc_percent", gauge, "The daemon's GOGC: heap growth, in percent, that triggers a collection."), rs("/gc/gogc:percent")},
		{def("go_gc_gomemlimit_bytes", gauge, "The daemon's GOMEMLIMIT, the Go runtime's soft memory limit."), rs("/gc/gomemlimit:bytes")},
		{def("go_goroutines", gauge, "Goroutines that exist in the daemon."), rs("/sched/goroutines:goroutines")},
		{def("go_memstats_alloc_bytes", gauge, "Bytes of heap objects the daemon holds (reachable or not yet swept)."), rs(rmHeapObjects)},
		{def("go_memstats_alloc_bytes_total", counter, "Bytes the daemon has allocated on the heap since it started."), rs("/gc/heap/allocs:bytes")},
		{def("go_memstats_buck_hash_sys_bytes", gauge, "Bytes of the daemon's profiling bucket hash table."), rs("/memory/classes/profiling/buckets:bytes")},
		{def("go_memstats_frees_total", counter, "Heap objects the daemon has freed since it started, tiny ones included."), rsSum("/gc/heap/frees:objects", rmTinyAllocs)},
		{def("go_memstats_gc_sys_bytes", gauge, "Bytes of the daemon's garbage-collector metadata."), rs("/memory/classes/metadata/other:bytes")},
		{def("go_memstats_heap_alloc_bytes", gauge, "Bytes of heap objects the daemon holds; the same as go_memstats_alloc_bytes."), rs(rmHeapObjects)},
		{def("go_memstats_heap_idle_bytes", gauge, "Heap bytes of the daemon that hold no object, released to the OS or not."), rsSum(rmHeapReleased, rmHeapFree)},
		{def("go_memstats_heap_inuse_bytes", gauge, "Bytes of the daemon's heap spans that hold at least one object."), rsSum(rmHeapObjects, rmHeapUnused)},
		{def("go_memstats_heap_objects", gauge, "Heap objects the daemon holds."), rs("/gc/heap/objects:objects")},
		{def("go_memstats_heap_released_bytes", gauge, "Heap bytes the daemon has returned to the OS."), rs(rmHeapReleased)},
		{def("go_memstats_heap_sys_bytes", gauge, "Heap bytes the daemon has obtained from the OS."), rsSum(rmHeapObjects, rmHeapUnused, rmHeapReleased, rmHeapFree)},
		{def("go_memstats_last_gc_time_seconds", gauge, "When the daemon's last garbage collection ended, in seconds since the epoch (0: none yet)."),
			func(st *seesawpb.RuntimeStats) (float64, bool) { return st.LastGcSeconds, true }},
		{def("go_memstats_mallocs_total", counter, "Heap objects the daemon has allocated since it started, tiny ones included."), rsSum("/gc/heap/allocs:objects", rmTinyAllocs)},
		{def("go_memstats_mcache_inuse_bytes", gauge, "Bytes of the daemon's mcache structures in use."), rs(rmMCacheInuse)},
		{def("go_memstats_mcache_sys_bytes", gauge, "Bytes of the daemon's mcache structures obtained from the OS."), rsSum(rmMCacheInuse, "/memory/classes/metadata/mcache/free:bytes")},
		{def("go_memstats_mspan_inuse_bytes", gauge, "Bytes of the daemon's mspan structures in use."), rs(rmMSpanInuse)},
		{def("go_memstats_mspan_sys_bytes", gauge, "Bytes of the daemon's mspan structures obtained from the OS."), rsSum(rmMSpanInuse, "/memory/classes/metadata/mspan/free:bytes")},
		{def("go_memstats_next_gc_bytes", gauge, "The daemon's heap goal: the heap size at which the next collection ends."), rs("/gc/heap/goal:bytes")},
		{def("go_memstats_other_sys_bytes", gauge, "Other bytes of the daemon's runtime obtained from the OS."), rs("/memory/classes/other:bytes")},
		{def("go_memstats_stack_inuse_bytes", gauge, "Bytes of the daemon's goroutine stacks in use."), rs(rmStacks)},
		{def("go_memstats_stack_sys_bytes", gauge, "Bytes of stack memory the daemon has obtained from the OS, OS threads' included."), rsSum(rmStacks, "/memory/classes/os-stacks:bytes")},
		{def("go_memstats_sys_bytes", gauge, "All bytes the daemon's Go runtime has obtained from the OS."), rs("/memory/classes/total:bytes")},
		{def("go_sched_gomaxprocs_threads", gauge, "The daemon's GOMAXPROCS."), rs("/sched/gomaxprocs:threads")},
		{def("go_threads", gauge, "OS threads the daemon's Go runtime has created."),
			func(st *seesawpb.RuntimeStats) (float64, bool) { return float64(st.Threads), st.Threads > 0 }},
		{def("process_cpu_seconds_total", counter, "CPU time of the daemon, user and system, in seconds."),
			proc(func(p *seesawpb.ProcessStats) (float64, bool) { return p.CpuSeconds, true })},
		{def("process_max_fds", gauge, "The daemon's limit on open file descriptors (soft RLIMIT_NOFILE)."),
			proc(func(p *seesawpb.ProcessStats) (float64, bool) { return optU(p.MaxFds) })},
		{def("process_open_fds", gauge, "File descriptors the daemon has open."),
			proc(func(p *seesawpb.ProcessStats) (float64, bool) { return optU(p.OpenFds) })},
		{def("process_resident_memory_bytes", gauge, "Resident memory of the daemon."),
			proc(func(p *seesawpb.ProcessStats) (float64, bool) { return float64(p.ResidentMemoryBytes), true })},
		{def("process_start_time_seconds", gauge, "When the daemon started, in seconds since the epoch."),
			proc(func(p *seesawpb.ProcessStats) (float64, bool) { return p.StartTimeSeconds, p.StartTimeSeconds > 0 })},
		{def("process_virtual_memory_bytes", gauge, "Virtual memory of the daemon."),
			proc(func(p *seesawpb.ProcessStats) (float64, bool) { return float64(p.VirtualMemoryBytes), true })},
		{def("process_virtual_memory_max_bytes", gauge, "The daemon's limit on virtual memory (RLIMIT_AS)."),
			proc(func(p *seesawpb.ProcessStats) (float64, bool) { return optU(p.VirtualMemoryMaxBytes) })},
	}
	mGoInfo = def("go_info", gauge, "The Go version the daemon was built with, as a label; always 1.")

	gcSum, gcCount = &metricDef{name: goGCDurationsID + "_sum"}, &metricDef{name: goGCDurationsID + "_count"}
	gcQuantiles    = []string{"0", "0.25", "0.5", "0.75", "1"}
)

// writeRuntime appends the Go runtime and process series of every daemon
// in the snapshot that answered Runtime.
func writeRuntime(b []byte, s *snapshot) []byte {
	if s == nil || len(s.Runtime) == 0 {
		return b
	}
	names := sortedKeys(s.Runtime)
	labels := make([]string, len(names))
	for i, n := range names {
		labels[i] = lv("daemon", n)
	}
	w := &expo{b: b, seen: map[*metricDef]bool{}}

	w.family(mGoGC)
	for i, n := range names {
		st := s.Runtime[n]
		if len(st.GcPauseQuantiles) == len(gcQuantiles) {
			for j, q := range gcQuantiles {
				w.f(mGoGC, labels[i]+`,quantile="`+q+`"`, st.GcPauseQuantiles[j])
			}
		}
		w.f(gcSum, labels[i], st.GcPauseSecondsTotal)
		w.u(gcCount, labels[i], st.GcCount)
	}
	w.family(mGoInfo)
	for i, n := range names {
		w.u(mGoInfo, labels[i]+","+lv("version", s.Runtime[n].GoVersion), 1)
	}
	for _, r := range rtMetrics {
		started := false
		for i, n := range names {
			v, ok := r.value(s.Runtime[n])
			if !ok {
				continue
			}
			if !started {
				w.family(r.m)
				started = true
			}
			w.f(r.m, labels[i], v)
		}
	}
	return w.b
}

// fetchRuntime asks a daemon for its runtime figures; nil when it does
// not answer (its status says why) or predates the call.
func (e *ecu) fetchRuntime(ctx context.Context, name string) *seesawpb.RuntimeStats {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	st, err := seesawpb.NewComponentClient(e.conns[name]).Runtime(ctx, &seesawpb.RuntimeRequest{})
	if err != nil {
		return nil
	}
	return st
}
