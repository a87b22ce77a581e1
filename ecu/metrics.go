package ecu

import (
	"cmp"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/procfs"

	"github.com/seesawlb/seesaw/engine/view"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
	wdpb "github.com/seesawlb/seesaw/proto/watchdog"
)

// The metrics are built at scrape time from one snapshot: a vserver
// deleted from the config has no series at the next scrape, and every
// series of a scrape is of the same moment.
//
// Names follow Prometheus' conventions: base units, _total on counters
// only, an enum as a `state` label with one series per value (1 for the
// current one), never a label that changes on a counter. Where the
// node_exporter IPVS collector measures the same thing the label names are
// its own (local_address, local_port, local_mark, remote_address,
// remote_port, proto), so that dashboards built on it carry over.
//
// The snapshot's series are written straight in the text exposition format
// rather than as client_golang const metrics: at 1,000 vservers × 10
// backends (20,000 destinations, about 300,000 series) the const-metric
// collector took 6.2 s of CPU and 62 MB per scrape, most of it allocating,
// sorting and checking label pairs that are already unique and in order
// here. The Go and process metrics of every daemon, the ECU's own
// included, carry a daemon label (goruntime.go), and the tests check the
// whole exposition with client_golang's promlint and with promtool.

// metricDef is one metric family: its name, type and help.
type metricDef struct {
	name, typ, help string
}

func def(name, typ, help string) *metricDef { return &metricDef{name: name, typ: typ, help: help} }

const (
	gauge   = "gauge"
	counter = "counter"
)

var (
	mEngineUp   = def("seesaw_engine_up", gauge, "1 when the engine answered the ECU's last read; 0 when the other series are the last known, stale.")
	mSnapshotTS = def("seesaw_snapshot_timestamp_seconds", gauge, "When the engine's state in this scrape was read, in seconds since the epoch.")
	mBuildInfo  = def("seesaw_build_info", gauge, "The engine's version and the cluster's name, as labels; always 1.")

	mHAState       = def("seesaw_ha_state", gauge, "HA state of this node: 1 for the current state, 0 for the others.")
	mHASince       = def("seesaw_ha_state_since_timestamp_seconds", gauge, "When this node entered its HA state, in seconds since the epoch.")
	mHATransitions = def("seesaw_ha_transitions_total", counter, "HA state transitions of this node's VRRP speaker.")
	mHASent        = def("seesaw_ha_adverts_sent_total", counter, "VRRP adverts sent.")
	mHAReceived    = def("seesaw_ha_adverts_received_total", counter, "VRRP adverts received.")
	mHADropped     = def("seesaw_ha_adverts_dropped_total", counter, "VRRP adverts dropped, by reason.")
	mHADualMaster  = def("seesaw_ha_dual_master_total", counter, "Adverts heard from another master while this node was master.")
	mHAPriority    = def("seesaw_ha_priority", gauge, "This node's VRRP priority.")

	mConfigOK       = def("seesaw_config_last_reload_successful", gauge, "1 when the last config read was accepted, 0 when it was rejected (the previous config keeps serving).")
	mConfigLoaded   = def("seesaw_config_last_reload_success_timestamp_seconds", gauge, "When the running config was loaded, in seconds since the epoch.")
	mConfigRejected = def("seesaw_config_last_reload_failure_timestamp_seconds", gauge, "When a config was last rejected, in seconds since the epoch.")
	mConfigWarnings = def("seesaw_config_warnings", gauge, "Warnings about the running config.")

	mVserverEnabled  = def("seesaw_vserver_enabled", gauge, "1 when the vserver is enabled (by its config and any override).")
	mVserverOverride = def("seesaw_vserver_override", gauge, "The operator's override of the vserver: 1 for the current one.")

	mServiceUp      = def("seesaw_service_up", gauge, "1 when the IPVS service is active: enough destinations are healthy.")
	mServiceHealthy = def("seesaw_service_healthy_destinations", gauge, "Healthy destinations of the service.")
	mServiceDests   = def("seesaw_service_destinations", gauge, "Destinations of the service counted by its watermarks (enabled ones).")
	mServiceConns   = def("seesaw_service_connections_total", counter, "Connections the IPVS service has taken, as IPVS counts them.")
	mServicePktIn   = def("seesaw_service_incoming_packets_total", counter, "Packets in, as IPVS counts them.")
	mServicePktOut  = def("seesaw_service_outgoing_packets_total", counter, "Packets out, as IPVS counts them.")
	mServiceBytIn   = def("seesaw_service_incoming_bytes_total", counter, "Bytes in, as IPVS counts them.")
	mServiceBytOut  = def("seesaw_service_outgoing_bytes_total", counter, "Bytes out, as IPVS counts them.")

	mDestState    = def("seesaw_destination_state", gauge, "State of the destination: 1 for the current state, 0 for the others.")
	mDestWeight   = def("seesaw_destination_weight", gauge, "Weight of the destination in its config.")
	mDestActive   = def("seesaw_destination_connections_active", gauge, "Active connections to the destination, from IPVS.")
	mDestInactive = def("seesaw_destination_connections_inactive", gauge, "Inactive connections to the destination, from IPVS.")
	mDestConns    = def("seesaw_destination_connections_total", counter, "Connections the destination has taken, as IPVS counts them.")
	mDestPktIn    = def("seesaw_destination_incoming_packets_total", counter, "Packets in, as IPVS counts them.")
	mDestPktOut   = def("seesaw_destination_outgoing_packets_total", counter, "Packets out, as IPVS counts them.")
	mDestBytIn    = def("seesaw_destination_incoming_bytes_total", counter, "Bytes in, as IPVS counts them.")
	mDestBytOut   = def("seesaw_destination_outgoing_bytes_total", counter, "Bytes out, as IPVS counts them.")

	mCheckState    = def("seesaw_healthcheck_state", gauge, "State of the health check: 1 for the current state, 0 for the others.")
	mCheckDuration = def("seesaw_healthcheck_duration_seconds", gauge, "How long the check's last run took.")
	mCheckRuns     = def("seesaw_healthcheck_runs_total", counter, "Runs of the check since the healthcheck process started.")
	mCheckFailures = def("seesaw_healthcheck_failures_total", counter, "Runs of the check that failed since the healthcheck process started.")
	mCheckLast     = def("seesaw_healthcheck_last_run_timestamp_seconds", gauge, "When the check last ran, in seconds since the epoch.")

	mNCCApplies     = def("seesaw_ncc_applies_total", counter, "Desired states the engine sent the NCC and the NCC applied (each a handful of kernel writes, or none).")
	mNCCWrites      = def("seesaw_ncc_kernel_writes_total", counter, "Kernel writes (netlink and nftables messages) the NCC's applies made.")
	mNCCApplyErrors = def("seesaw_ncc_apply_errors_total", counter, "Changes the NCC could not make (the rest of each apply was made).")

	mDaemonCPU   = def("seesaw_daemon_cpu_seconds_total", counter, "CPU time of each Seesaw daemon, user and system, from /proc.")
	mDaemonRSS   = def("seesaw_daemon_resident_memory_bytes", gauge, "Resident memory of each Seesaw daemon, from /proc.")
	mDaemonStart = def("seesaw_daemon_start_time_seconds", gauge, "When each Seesaw daemon started, in seconds since the epoch.")

	mComponentUp      = def("seesaw_component_up", gauge, "1 when the daemon answered its status call.")
	mComponentHealthy = def("seesaw_component_healthy", gauge, "1 when the daemon reports that it does all it is meant to.")
	mWatchdogState    = def("seesaw_watchdog_service_state", gauge, "State of a daemon under the watchdog: 1 for the current state, 0 for the others.")
	mWatchdogRestarts = def("seesaw_watchdog_service_restarts_total", counter, "Times the watchdog restarted the daemon.")
)

// haStates are the HA states, one series each, in the view's words.
var haStates = []seesawpb.HAState{
	seesawpb.HAState_HA_STATE_UNKNOWN, seesawpb.HAState_HA_STATE_BACKUP, seesawpb.HAState_HA_STATE_DISABLED,
	seesawpb.HAState_HA_STATE_ERROR, seesawpb.HAState_HA_STATE_LEADER, seesawpb.HAState_HA_STATE_SHUTDOWN,
}

var overrideStates = []enginepb.OverrideState{
	enginepb.OverrideState_OVERRIDE_DEFAULT, enginepb.OverrideState_OVERRIDE_DISABLED,
	enginepb.OverrideState_OVERRIDE_ENABLED, enginepb.OverrideState_OVERRIDE_DRAIN,
}

// overrideWord is the view's word, "none" for no override.
func overrideWord(s enginepb.OverrideState) string {
	if w := view.OverrideWord(s); w != "" {
		return w
	}
	return "none"
}

// labelWord is a view state word as a label value: "weight 0" is
// "weight_0", easier to write in PromQL.
func labelWord(w string) string { return strings.ReplaceAll(w, " ", "_") }

var checkStates = []string{view.StateHealthy, view.StateUnhealthy, view.StateUnknown}

// checkStateLabels are checkStates as labels that follow others.
var checkStateLabels = func() []string {
	out := make([]string, len(checkStates))
	for i, st := range checkStates {
		out[i] = "," + lv("state", st)
	}
	return out
}()

var watchdogStates = func() []wdpb.ServiceState {
	var out []wdpb.ServiceState
	for i := range len(wdpb.ServiceState_name) {
		out = append(out, wdpb.ServiceState(i))
	}
	return out
}()

func watchdogWord(s wdpb.ServiceState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SERVICE_STATE_"))
}

// expo writes the text exposition format. Labels are written as given:
// callers pass them escaped (lv) and joined.
type expo struct {
	b    []byte
	seen map[*metricDef]bool
}

// family starts the samples of m; each family is written once, whole.
func (w *expo) family(m *metricDef) {
	if w.seen[m] {
		panic("ecu: metric family " + m.name + " written twice")
	}
	w.seen[m] = true
	w.b = append(w.b, "# HELP "...)
	w.b = append(w.b, m.name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, m.help...)
	w.b = append(w.b, "\n# TYPE "...)
	w.b = append(w.b, m.name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, m.typ...)
	w.b = append(w.b, '\n')
}

func (w *expo) start(m *metricDef, labels string) {
	w.b = append(w.b, m.name...)
	if labels != "" {
		w.b = append(w.b, '{')
		w.b = append(w.b, labels...)
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, ' ')
}

// f writes a sample with a float value.
func (w *expo) f(m *metricDef, labels string, v float64) {
	w.start(m, labels)
	w.b = strconv.AppendFloat(w.b, v, 'g', -1, 64)
	w.b = append(w.b, '\n')
}

// dest writes a destination's sample: its service's labels, its address
// and port (an IP literal and a number: nothing to escape), mid (",", or
// a state label between commas) and the vserver's label.
func (w *expo) dest(m *metricDef, base string, d *enginepb.DestinationStatus, mid, vl string, v uint64) {
	w.b = append(w.b, m.name...)
	w.b = append(w.b, '{')
	w.b = append(w.b, base...)
	w.b = append(w.b, `,remote_address="`...)
	w.b = append(w.b, d.Address...)
	w.b = append(w.b, `",remote_port="`...)
	w.b = strconv.AppendUint(w.b, uint64(d.Port), 10)
	w.b = append(w.b, '"')
	w.b = append(w.b, mid...)
	w.b = append(w.b, vl...)
	w.b = append(w.b, "} "...)
	w.b = strconv.AppendUint(w.b, v, 10)
	w.b = append(w.b, '\n')
}

// u2 writes a sample whose labels are in two parts, without joining
// them first.
func (w *expo) u2(m *metricDef, a, b string, v uint64) {
	w.b = append(w.b, m.name...)
	w.b = append(w.b, '{')
	w.b = append(w.b, a...)
	w.b = append(w.b, b...)
	w.b = append(w.b, "} "...)
	w.b = strconv.AppendUint(w.b, v, 10)
	w.b = append(w.b, '\n')
}

// u writes a sample with an integer value, exactly.
func (w *expo) u(m *metricDef, labels string, v uint64) {
	w.start(m, labels)
	w.b = strconv.AppendUint(w.b, v, 10)
	w.b = append(w.b, '\n')
}

// one writes a whole family of one unlabelled sample.
func (w *expo) one(m *metricDef, v float64) {
	w.family(m)
	w.f(m, "", v)
}

// lv is `name="value"` with the value escaped as the format wants.
func lv(name, value string) string {
	if strings.ContainsAny(value, "\\\"\n") {
		value = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(value)
	}
	return name + `="` + value + `"`
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// writeSnapshot appends the snapshot's series to b.
func writeSnapshot(b []byte, s *snapshot) []byte { return writeSnapshotCached(b, s, &labelCache{}) }

// writeSnapshotCached appends the snapshot's series to b, with the labels
// of the last snapshot written with lc where they are the same.
func writeSnapshotCached(b []byte, s *snapshot, lc *labelCache) []byte {
	w := &expo{b: b, seen: map[*metricDef]bool{}}
	if s == nil {
		w.one(mEngineUp, 0)
		return w.b
	}
	w.one(mEngineUp, b2f(!s.Stale))

	comps := sortedKeys(s.Components)
	errs := sortedKeys(s.ComponentErrs)
	w.family(mComponentUp)
	for _, name := range comps {
		w.u(mComponentUp, lv("component", name), 1)
	}
	for _, name := range errs {
		w.u(mComponentUp, lv("component", name), 0)
	}
	w.family(mComponentHealthy)
	for _, name := range comps {
		w.u(mComponentHealthy, lv("component", name), b2u(s.Components[name].Healthy))
	}
	if svcs := s.Watchdog.GetServices(); len(svcs) > 0 {
		w.family(mWatchdogState)
		for _, svc := range svcs {
			for _, st := range watchdogStates {
				w.u(mWatchdogState, lv("service", svc.Name)+","+lv("state", watchdogWord(st)), b2u(svc.State == st))
			}
		}
		w.family(mWatchdogRestarts)
		for _, svc := range svcs {
			w.u(mWatchdogRestarts, lv("service", svc.Name), uint64(max(svc.Restarts, 0)))
		}
	}
	if eng := s.Components["engine"]; eng != nil {
		for _, c := range []struct {
			m   *metricDef
			key string
		}{{mNCCApplies, "ncc_applies"}, {mNCCWrites, "ncc_kernel_writes"}, {mNCCApplyErrors, "ncc_apply_errors"}} {
			if n, err := strconv.ParseUint(eng.Details[c.key], 10, 64); err == nil {
				w.family(c.m)
				w.u(c.m, "", n)
			}
		}
	}
	if !s.hasEngine() {
		return w.b
	}
	w.one(mSnapshotTS, unix(s.Taken))
	w.family(mBuildInfo)
	w.u(mBuildInfo, lv("cluster", s.Cluster.Site)+","+lv("version", s.Cluster.Version), 1)

	ha := s.Cluster.HaState
	if s.HA != nil {
		ha = s.HA.State
	}
	w.family(mHAState)
	for _, st := range haStates {
		w.u(mHAState, lv("state", view.HAWord(st)), b2u(ha == st))
	}
	if h := s.HA; h != nil {
		if h.Since != nil {
			w.one(mHASince, unix(h.Since.AsTime()))
		}
		for _, c := range []struct {
			m *metricDef
			v uint64
		}{{mHATransitions, h.Transitions}, {mHASent, h.AdvertsSent}, {mHAReceived, h.AdvertsReceived}, {mHADualMaster, h.DualMaster}} {
			w.family(c.m)
			w.u(c.m, "", c.v)
		}
		if len(h.Dropped) > 0 {
			w.family(mHADropped)
			for _, reason := range sortedKeys(h.Dropped) {
				w.u(mHADropped, lv("reason", reason), h.Dropped[reason])
			}
		}
		if h.Priority != 0 {
			w.one(mHAPriority, float64(h.Priority))
		}
	}

	if c := s.Config; c != nil {
		// The engine clears last_error when a config loads; a rejection
		// after the running config was loaded is the last word.
		failed := c.LastError != "" && (c.Loaded == nil || !c.LastErrorTime.AsTime().Before(c.Loaded.AsTime()))
		w.one(mConfigOK, b2f(!failed))
		if c.Loaded != nil {
			w.one(mConfigLoaded, unix(c.Loaded.AsTime()))
		}
		if c.LastErrorTime != nil && c.LastError != "" {
			w.one(mConfigRejected, unix(c.LastErrorTime.AsTime()))
		}
		w.one(mConfigWarnings, float64(len(c.Warnings)))
	}

	writeVserverSeries(w, lc, s.Vservers)
	writeCheckSeries(w, s.Checks, s.CheckRuns)
	return w.b
}

// labelCache keeps the label text of every service and destination
// from one exposition to the next. The labels come from the config alone
// (vserver names, VIPs, ports, destination addresses), which changes
// rarely while the numbers change at every scrape: when the snapshot's
// vservers, services and destinations are those of the last write, in the
// same order, a scrape only appends numbers to the text made before. At
// 1,000 vservers × 10 backends (20,000 destinations, 15 series each)
// making the labels was most of writing the exposition and of its garbage.
type labelCache struct {
	vservers []cachedVserver
	// rows are the services and destinations to write, duplicates left
	// out (the format forbids them), in order; remade at every write.
	svcRows  []svcRow
	destRows []destRow
}

type cachedVserver struct {
	name string
	vl   string // `vserver="name"`
	svcs []cachedService
}

// cachedService is a service's label inputs and its labels.
type cachedService struct {
	protocol   nccpb.Protocol
	vip        string
	port, mark uint32
	labels     string // its IPVS labels and the vserver's, for its own series
	base       string // its IPVS labels, which its destinations' begin with
	dup        bool   // the same labels as an earlier service's
	dests      []cachedDest
}

// cachedDest is a destination's labels as the text around a state label:
// pre is `{` and the service's and its own IPVS labels, post the vserver's
// label and `} `; all is pre and post joined.
type cachedDest struct {
	addr           string
	port           uint32
	dup            bool
	pre, post, all string
}

type svcRow struct {
	c *cachedService
	s *enginepb.ServiceStatus
}

type destRow struct {
	c *cachedDest
	d *enginepb.DestinationStatus
}

// matches reports whether vs has the labels of the last write.
func (lc *labelCache) matches(vs []*enginepb.VserverStatus) bool {
	if len(vs) != len(lc.vservers) {
		return false
	}
	for i, v := range vs {
		cv := &lc.vservers[i]
		if v.Name != cv.name || len(v.Services) != len(cv.svcs) {
			return false
		}
		for j, svc := range v.Services {
			cs := &cv.svcs[j]
			if svc.Protocol != cs.protocol || svc.Vip != cs.vip || svc.Port != cs.port || svc.Fwmark != cs.mark ||
				len(svc.Destinations) != len(cs.dests) {
				return false
			}
			for k, d := range svc.Destinations {
				if cd := &cs.dests[k]; d.Address != cd.addr || d.Port != cd.port {
					return false
				}
			}
		}
	}
	return true
}

// remake makes the labels of vs, marking duplicates.
func (lc *labelCache) remake(vs []*enginepb.VserverStatus) {
	type destKey struct {
		labels, addr string
		port         uint32
	}
	seenSvc, seenDest := map[string]bool{}, map[destKey]bool{}
	lc.vservers = make([]cachedVserver, len(vs))
	for i, v := range vs {
		cv := &lc.vservers[i]
		cv.name, cv.vl = v.Name, lv("vserver", v.Name)
		cv.svcs = make([]cachedService, len(v.Services))
		for j, svc := range v.Services {
			cs := &cv.svcs[j]
			cs.protocol, cs.vip, cs.port, cs.mark = svc.Protocol, svc.Vip, svc.Port, svc.Fwmark
			cs.base = serviceLabels(svc)
			cs.labels = cs.base + "," + cv.vl
			cs.dup = seenSvc[cs.labels]
			seenSvc[cs.labels] = true
			cs.dests = make([]cachedDest, len(svc.Destinations))
			for k, d := range svc.Destinations {
				cd := &cs.dests[k]
				cd.addr, cd.port = d.Address, d.Port
				key := destKey{cs.labels, d.Address, d.Port}
				cd.dup = cs.dup || seenDest[key]
				seenDest[key] = true
				// An IP literal and a number: nothing to escape.
				cd.pre = "{" + cs.base + `,remote_address="` + d.Address + `",remote_port="` + strconv.FormatUint(uint64(d.Port), 10) + `"`
				cd.post = "," + cv.vl + "} "
				cd.all = cd.pre + cd.post
			}
		}
	}
}

// rows fills svcRows and destRows from vs, whose labels are cached.
func (lc *labelCache) rows(vs []*enginepb.VserverStatus) {
	lc.svcRows, lc.destRows = lc.svcRows[:0], lc.destRows[:0]
	for i, v := range vs {
		for j, svc := range v.Services {
			cs := &lc.vservers[i].svcs[j]
			if cs.dup {
				continue
			}
			lc.svcRows = append(lc.svcRows, svcRow{cs, svc})
			for k, d := range svc.Destinations {
				if cd := &cs.dests[k]; !cd.dup {
					lc.destRows = append(lc.destRows, destRow{cd, d})
				}
			}
		}
	}
}

// ul writes a sample of m with its labels given as text from "{" to "} ".
func (w *expo) ul(m *metricDef, labels string, v uint64) {
	w.b = append(w.b, m.name...)
	w.b = append(w.b, labels...)
	w.b = strconv.AppendUint(w.b, v, 10)
	w.b = append(w.b, '\n')
}

func writeVserverSeries(w *expo, lc *labelCache, vs []*enginepb.VserverStatus) {
	if len(vs) == 0 {
		return
	}
	if !lc.matches(vs) {
		lc.remake(vs)
	}
	lc.rows(vs)
	svcs, dests := lc.svcRows, lc.destRows

	w.family(mVserverEnabled)
	for i, v := range vs {
		w.u(mVserverEnabled, lc.vservers[i].vl, b2u(v.Enabled))
	}
	w.family(mVserverOverride)
	for i, v := range vs {
		for _, o := range overrideStates {
			w.u2(mVserverOverride, overrideLabels[o], lc.vservers[i].vl, b2u(v.Override == o))
		}
	}

	w.family(mServiceUp)
	for _, r := range svcs {
		w.u(mServiceUp, r.c.labels, b2u(r.s.Active))
	}
	w.family(mServiceHealthy)
	for _, r := range svcs {
		w.u(mServiceHealthy, r.c.labels, uint64(r.s.HealthyDestinations))
	}
	w.family(mServiceDests)
	for _, r := range svcs {
		w.u(mServiceDests, r.c.labels, uint64(r.s.InServiceDestinations))
	}
	for _, c := range statsCounters {
		started := false
		for _, r := range svcs {
			if r.s.Stats == nil {
				continue
			}
			if !started {
				w.family(c.svc)
				started = true
			}
			w.u(c.svc, r.c.labels, c.f(r.s.Stats))
		}
	}

	if len(dests) == 0 {
		return
	}
	w.family(mDestState)
	for _, r := range dests {
		word, _ := view.DestinationState(r.d)
		for j, st := range view.DestinationStates {
			w.b = append(w.b, mDestState.name...)
			w.b = append(w.b, r.c.pre...)
			w.b = append(w.b, destStateLabels[j]...)
			w.b = append(w.b, r.c.post...)
			if word == st {
				w.b = append(w.b, "1\n"...)
			} else {
				w.b = append(w.b, "0\n"...)
			}
		}
	}
	w.family(mDestWeight)
	for _, r := range dests {
		w.ul(mDestWeight, r.c.all, uint64(max(r.d.Weight, 0)))
	}
	w.family(mDestActive)
	for _, r := range dests {
		w.ul(mDestActive, r.c.all, uint64(r.d.ActiveConnections))
	}
	w.family(mDestInactive)
	for _, r := range dests {
		w.ul(mDestInactive, r.c.all, uint64(r.d.InactiveConnections))
	}
	for _, c := range statsCounters {
		started := false
		for _, r := range dests {
			if r.d.Stats == nil {
				continue
			}
			if !started {
				w.family(c.dest)
				started = true
			}
			w.ul(c.dest, r.c.all, c.f(r.d.Stats))
		}
	}
}

// statsCounters are the IPVS counters of services and destinations.
var statsCounters = []struct {
	svc, dest *metricDef
	f         func(*nccpb.Stats) uint64
}{
	{mServiceConns, mDestConns, (*nccpb.Stats).GetConnections},
	{mServicePktIn, mDestPktIn, (*nccpb.Stats).GetPacketsIn},
	{mServicePktOut, mDestPktOut, (*nccpb.Stats).GetPacketsOut},
	{mServiceBytIn, mDestBytIn, (*nccpb.Stats).GetBytesIn},
	{mServiceBytOut, mDestBytOut, (*nccpb.Stats).GetBytesOut},
}

// destStateLabels are the destination states as labels between a
// destination's others.
var destStateLabels = func() []string {
	out := make([]string, len(view.DestinationStates))
	for i, st := range view.DestinationStates {
		out[i] = "," + lv("state", labelWord(st))
	}
	return out
}()

// overrideLabels are the override states as labels before the vserver's.
var overrideLabels = func() map[enginepb.OverrideState]string {
	out := map[enginepb.OverrideState]string{}
	for _, o := range overrideStates {
		out[o] = lv("state", overrideWord(o)) + ","
	}
	return out
}()

func writeCheckSeries(w *expo, checks []*enginepb.CheckView, runs map[uint64]checkRuns) {
	if len(checks) == 0 {
		return
	}
	type row struct {
		labels string
		c      *enginepb.CheckView
	}
	var rows []row
	seen := map[string]bool{}
	for _, c := range checks {
		addr := c.Check.GetAddress()
		if c.Check.GetTarget() != "" {
			addr = c.Check.GetTarget()
		}
		l := lv("address", addr) + "," + lv("backend", c.Backend) + "," + lv("check", c.Name)
		if seen[l] {
			continue
		}
		seen[l] = true
		rows = append(rows, row{l, c})
	}
	w.family(mCheckState)
	for _, r := range rows {
		word := view.StateUnknown
		if r.c.Known {
			word = view.StateUnhealthy
			if r.c.Healthy {
				word = view.StateHealthy
			}
		}
		for i, st := range checkStates {
			w.u2(mCheckState, r.labels, checkStateLabels[i], b2u(word == st))
		}
	}
	started := false
	for _, r := range rows {
		if d := r.c.GetLast().GetDuration(); d != nil {
			if !started {
				w.family(mCheckDuration)
				started = true
			}
			w.f(mCheckDuration, r.labels, d.AsDuration().Seconds())
		}
	}
	if runs != nil {
		for _, c := range []struct {
			m *metricDef
			f func(checkRuns) uint64
		}{
			{mCheckRuns, func(r checkRuns) uint64 { return r.successes + r.failures }},
			{mCheckFailures, func(r checkRuns) uint64 { return r.failures }},
		} {
			started := false
			for _, r := range rows {
				n, ok := runs[r.c.GetCheck().GetId()]
				if !ok {
					continue
				}
				if !started {
					w.family(c.m)
					started = true
				}
				w.u(c.m, r.labels, c.f(n))
			}
		}
	}
	started = false
	for _, r := range rows {
		if t := r.c.GetLast().GetTime(); t != nil {
			if !started {
				w.family(mCheckLast)
				started = true
			}
			w.f(mCheckLast, r.labels, unix(t.AsTime()))
		}
	}
}

// serviceLabels are a service's IPVS labels, as node_exporter's IPVS
// collector has them: a firewall-mark service has no address or port but
// a mark.
func serviceLabels(s *enginepb.ServiceStatus) string {
	proto := strings.TrimPrefix(s.Protocol.String(), "PROTOCOL_")
	if s.Protocol == nccpb.Protocol_PROTOCOL_UNSPECIFIED {
		proto = ""
	}
	addr, port, mark := s.Vip, strconv.Itoa(int(s.Port)), ""
	if s.Fwmark != 0 {
		addr, port, mark = "", "0", strconv.Itoa(int(s.Fwmark))
	}
	return lv("local_address", addr) + "," + lv("local_mark", mark) + "," + lv("local_port", port) + "," + lv("proto", proto)
}

// metricsHandler serves /metrics: the snapshot's series and every
// daemon's Go and process metrics, the ECU's own included. At most four
// scrapes are served at once. The snapshot's exposition is written once
// per snapshot: scrapes that share a snapshot (several Prometheus
// servers, a person's curl) share its bytes, which are never changed once
// made.
func (e *ecu) metricsHandler() http.Handler {
	sem := make(chan struct{}, 4)
	var exp expositions
	exposition := func(snap *snapshot) *expoBuf { return exp.get(snap, &e.lastMetricsSize) }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		case <-r.Context().Done():
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), cmp.Or(e.cfg.SnapshotTimeout, e.cfg.CallTimeout)+time.Second)
		defer cancel()
		snap := e.snaps.getPartial(ctx)
		x := exposition(snap)
		defer exp.release(x)
		b := x.b
		daemons := writeDaemons(nil, snap)
		own := writeRuntime(nil, snap)
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		w.Header().Set("Content-Length", strconv.Itoa(len(own)+len(b)+len(daemons)))
		w.Write(own)
		w.Write(b)
		w.Write(daemons)
	})
}

// expositions holds the exposition of the last snapshot, written once
// and shared by the scrapes of that snapshot (several Prometheus servers,
// a person's curl), and recycles the buffers of those before it: the
// exposition of a big config is tens of megabytes, and a new buffer for
// every scrape was a tenth of a scrape's CPU in zeroing it and collecting
// it (and more in growing it when a scrape outgrew the last one's size).
type expositions struct {
	mu     sync.Mutex
	cached *snapshot
	cur    *expoBuf
	spare  []byte // a buffer no scrape reads any more
	labels labelCache
}

// expoBuf is one snapshot's exposition and the number of scrapes writing
// it out; it is never changed while any does.
type expoBuf struct {
	b     []byte
	users int
}

// get returns snap's exposition, writing it if it is not the last one
// written; the caller releases it once written out.
func (x *expositions) get(snap *snapshot, lastSize *atomic.Int64) *expoBuf {
	x.mu.Lock()
	defer x.mu.Unlock()
	if snap != nil && snap == x.cached && x.cur != nil {
		x.cur.users++
		return x.cur
	}
	// Room for the last exposition's size and some: a scrape that grows
	// past its buffer copies the whole of it.
	need := int(lastSize.Load())
	need += need/8 + 4096
	b := x.spare
	x.spare = nil
	if x.cur != nil && x.cur.users == 0 && cap(x.cur.b) > cap(b) {
		b, x.spare = x.cur.b, b // the last one, which no scrape holds
	}
	if cap(b) < need {
		b = make([]byte, 0, need)
	}
	b = writeSnapshotCached(b[:0], snap, &x.labels)
	lastSize.Store(int64(len(b)))
	x.cached, x.cur = snap, &expoBuf{b: b, users: 1}
	return x.cur
}

// release ends a scrape's use of b.
func (x *expositions) release(b *expoBuf) {
	x.mu.Lock()
	defer x.mu.Unlock()
	b.users--
	if b.users == 0 && b != x.cur && cap(b.b) > cap(x.spare) {
		x.spare = b.b
	}
}

// writeDaemons appends the process metrics of each daemon that answered
// (by the pid it gave), read from /proc now: every daemon's CPU and
// memory in one place, with a daemon label, where each would otherwise
// need its own endpoint. A process that is gone is left out.
func writeDaemons(b []byte, s *snapshot) []byte {
	if s == nil {
		return b
	}
	type row struct {
		label string
		st    procfs.ProcStat
		start float64
	}
	var rows []row
	for _, name := range sortedKeys(s.Components) {
		pid := int(s.Components[name].Pid)
		if pid <= 0 {
			continue
		}
		p, err := procfs.NewProc(pid)
		if err != nil {
			continue
		}
		st, err := p.Stat()
		if err != nil {
			continue
		}
		start, _ := st.StartTime()
		rows = append(rows, row{lv("daemon", name), st, start})
	}
	if len(rows) == 0 {
		return b
	}
	w := &expo{b: b, seen: map[*metricDef]bool{}}
	w.family(mDaemonCPU)
	for _, r := range rows {
		w.f(mDaemonCPU, r.label, r.st.CPUTime())
	}
	w.family(mDaemonRSS)
	for _, r := range rows {
		w.u(mDaemonRSS, r.label, uint64(r.st.ResidentMemory()))
	}
	w.family(mDaemonStart)
	for _, r := range rows {
		w.f(mDaemonStart, r.label, r.start)
	}
	return w.b
}
