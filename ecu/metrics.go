package ecu

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seesawlb/seesaw/engine/view"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
	wdpb "github.com/seesawlb/seesaw/proto/watchdog"
)

// The metrics are built at scrape time from one snapshot (the const-metric
// collector pattern): a vserver deleted from the config has no series at
// the next scrape, and every series of a scrape is of the same moment.
//
// Names follow Prometheus' conventions: base units, _total on counters
// only, an enum as a `state` label with one series per value (1 for the
// current one), never a label that changes on a counter. Where the
// node_exporter IPVS collector measures the same thing the label names are
// its own (local_address, local_port, local_mark, remote_address,
// remote_port, proto), so that dashboards built on it carry over.

var (
	svcLabels  = []string{"vserver", "local_address", "local_port", "local_mark", "proto"}
	destLabels = []string{"vserver", "local_address", "local_port", "local_mark", "proto", "remote_address", "remote_port"}
	checkLabel = []string{"backend", "check", "address"}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func withState(labels []string) []string { return append(append([]string{}, labels...), "state") }

var (
	mEngineUp   = desc("seesaw_engine_up", "1 when the engine answered the ECU's last read; 0 when the other series are the last known, stale.")
	mSnapshotTS = desc("seesaw_snapshot_timestamp_seconds", "When the engine's state in this scrape was read, in seconds since the epoch.")
	mBuildInfo  = desc("seesaw_build_info", "The engine's version, as a label; always 1.", "version", "cluster")

	mHAState       = desc("seesaw_ha_state", "HA state of this node: 1 for the current state, 0 for the others.", "state")
	mHASince       = desc("seesaw_ha_state_since_timestamp_seconds", "When this node entered its HA state, in seconds since the epoch.")
	mHATransitions = desc("seesaw_ha_transitions_total", "HA state transitions of this node's VRRP speaker.")
	mHASent        = desc("seesaw_ha_adverts_sent_total", "VRRP adverts sent.")
	mHAReceived    = desc("seesaw_ha_adverts_received_total", "VRRP adverts received.")
	mHADropped     = desc("seesaw_ha_adverts_dropped_total", "VRRP adverts dropped, by reason.", "reason")
	mHADualMaster  = desc("seesaw_ha_dual_master_total", "Adverts heard from another master while this node was master.")
	mHAPriority    = desc("seesaw_ha_priority", "This node's VRRP priority.")

	mConfigOK       = desc("seesaw_config_last_reload_successful", "1 when the last config read was accepted, 0 when it was rejected (the previous config keeps serving).")
	mConfigLoaded   = desc("seesaw_config_last_reload_success_timestamp_seconds", "When the running config was loaded, in seconds since the epoch.")
	mConfigRejected = desc("seesaw_config_last_reload_failure_timestamp_seconds", "When a config was last rejected, in seconds since the epoch.")
	mConfigWarnings = desc("seesaw_config_warnings", "Warnings about the running config.")

	mVserverEnabled  = desc("seesaw_vserver_enabled", "1 when the vserver is enabled (by its config and any override).", "vserver")
	mVserverOverride = desc("seesaw_vserver_override", "The operator's override of the vserver: 1 for the current one.", "vserver", "state")

	mServiceUp      = desc("seesaw_service_up", "1 when the IPVS service is active: enough destinations are healthy.", svcLabels...)
	mServiceHealthy = desc("seesaw_service_healthy_destinations", "Healthy destinations of the service.", svcLabels...)
	mServiceDests   = desc("seesaw_service_destinations", "Destinations of the service counted by its watermarks (enabled ones).", svcLabels...)
	mServiceConns   = desc("seesaw_service_connections_total", "Connections the IPVS service has taken, as IPVS counts them.", svcLabels...)
	mServicePktIn   = desc("seesaw_service_incoming_packets_total", "Packets in, as IPVS counts them.", svcLabels...)
	mServicePktOut  = desc("seesaw_service_outgoing_packets_total", "Packets out, as IPVS counts them.", svcLabels...)
	mServiceBytIn   = desc("seesaw_service_incoming_bytes_total", "Bytes in, as IPVS counts them.", svcLabels...)
	mServiceBytOut  = desc("seesaw_service_outgoing_bytes_total", "Bytes out, as IPVS counts them.", svcLabels...)

	mDestState    = desc("seesaw_destination_state", "State of the destination: 1 for the current state, 0 for the others.", withState(destLabels)...)
	mDestWeight   = desc("seesaw_destination_weight", "Weight of the destination in its config.", destLabels...)
	mDestActive   = desc("seesaw_destination_connections_active", "Active connections to the destination, from IPVS.", destLabels...)
	mDestInactive = desc("seesaw_destination_connections_inactive", "Inactive connections to the destination, from IPVS.", destLabels...)
	mDestConns    = desc("seesaw_destination_connections_total", "Connections the destination has taken, as IPVS counts them.", destLabels...)
	mDestPktIn    = desc("seesaw_destination_incoming_packets_total", "Packets in, as IPVS counts them.", destLabels...)
	mDestPktOut   = desc("seesaw_destination_outgoing_packets_total", "Packets out, as IPVS counts them.", destLabels...)
	mDestBytIn    = desc("seesaw_destination_incoming_bytes_total", "Bytes in, as IPVS counts them.", destLabels...)
	mDestBytOut   = desc("seesaw_destination_outgoing_bytes_total", "Bytes out, as IPVS counts them.", destLabels...)

	mCheckState    = desc("seesaw_healthcheck_state", "State of the health check: 1 for the current state, 0 for the others.", withState(checkLabel)...)
	mCheckDuration = desc("seesaw_healthcheck_duration_seconds", "How long the check's last run took.", checkLabel...)
	mCheckLast     = desc("seesaw_healthcheck_last_run_timestamp_seconds", "When the check last ran, in seconds since the epoch.", checkLabel...)

	mComponentUp      = desc("seesaw_component_up", "1 when the daemon answered its status call.", "component")
	mComponentHealthy = desc("seesaw_component_healthy", "1 when the daemon reports that it does all it is meant to.", "component")
	mWatchdogState    = desc("seesaw_watchdog_service_state", "State of a daemon under the watchdog: 1 for the current state, 0 for the others.", "service", "state")
	mWatchdogRestarts = desc("seesaw_watchdog_service_restarts_total", "Times the watchdog restarted the daemon.", "service")
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

// collector builds the metrics of one snapshot at each scrape.
type collector struct{ e *ecu }

// Describe sends nothing: the collector is unchecked, as the series it
// makes depend on the config.
func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.e.cfg.CallTimeout+time.Second)
	defer cancel()
	collectSnapshot(c.e.snaps.get(ctx), ch)
}

// emitter sends const metrics, dropping a series whose labels repeat
// another's of the same name (two checks of one name on one backend, say)
// instead of failing the whole scrape.
type emitter struct {
	ch   chan<- prometheus.Metric
	seen map[*prometheus.Desc]map[string]bool
}

func (m *emitter) emit(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	k := strings.Join(labels, "\x00")
	s := m.seen[d]
	if s == nil {
		s = map[string]bool{}
		m.seen[d] = s
	}
	if s[k] {
		return
	}
	s[k] = true
	m.ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
}

func (m *emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	m.emit(d, prometheus.GaugeValue, v, labels...)
}

func (m *emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	m.emit(d, prometheus.CounterValue, float64(v), labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func collectSnapshot(s *snapshot, ch chan<- prometheus.Metric) {
	m := &emitter{ch: ch, seen: map[*prometheus.Desc]map[string]bool{}}
	if s == nil {
		m.gauge(mEngineUp, 0)
		return
	}
	m.gauge(mEngineUp, b2f(!s.Stale))
	for _, name := range sortedKeys(s.Components) {
		st := s.Components[name]
		m.gauge(mComponentUp, 1, name)
		m.gauge(mComponentHealthy, b2f(st.Healthy), name)
	}
	for _, name := range sortedKeys(s.ComponentErrs) {
		m.gauge(mComponentUp, 0, name)
	}
	for _, svc := range s.Watchdog.GetServices() {
		for _, st := range watchdogStates {
			m.gauge(mWatchdogState, b2f(svc.State == st), svc.Name, watchdogWord(st))
		}
		m.counter(mWatchdogRestarts, uint64(max(svc.Restarts, 0)), svc.Name)
	}
	if !s.hasEngine() {
		return
	}
	m.gauge(mSnapshotTS, unix(s.Taken))
	m.gauge(mBuildInfo, 1, s.Cluster.Version, s.Cluster.Site)

	ha := s.Cluster.HaState
	if s.HA != nil {
		ha = s.HA.State
	}
	for _, st := range haStates {
		m.gauge(mHAState, b2f(ha == st), view.HAWord(st))
	}
	if h := s.HA; h != nil {
		if h.Since != nil {
			m.gauge(mHASince, unix(h.Since.AsTime()))
		}
		m.counter(mHATransitions, h.Transitions)
		m.counter(mHASent, h.AdvertsSent)
		m.counter(mHAReceived, h.AdvertsReceived)
		m.counter(mHADualMaster, h.DualMaster)
		for _, reason := range sortedKeys(h.Dropped) {
			m.counter(mHADropped, h.Dropped[reason], reason)
		}
		if h.Priority != 0 {
			m.gauge(mHAPriority, float64(h.Priority))
		}
	}

	if c := s.Config; c != nil {
		// The engine clears last_error when a config loads; a rejection
		// after the running config was loaded is the last word.
		failed := c.LastError != "" && (c.Loaded == nil || !c.LastErrorTime.AsTime().Before(c.Loaded.AsTime()))
		m.gauge(mConfigOK, b2f(!failed))
		if c.Loaded != nil {
			m.gauge(mConfigLoaded, unix(c.Loaded.AsTime()))
		}
		if c.LastErrorTime != nil && c.LastError != "" {
			m.gauge(mConfigRejected, unix(c.LastErrorTime.AsTime()))
		}
		m.gauge(mConfigWarnings, float64(len(c.Warnings)))
	}

	for _, v := range s.Vservers {
		m.gauge(mVserverEnabled, b2f(v.Enabled), v.Name)
		for _, o := range overrideStates {
			m.gauge(mVserverOverride, b2f(v.Override == o), v.Name, overrideWord(o))
		}
		for _, svc := range v.Services {
			sl := serviceLabels(v.Name, svc)
			m.gauge(mServiceUp, b2f(svc.Active), sl...)
			m.gauge(mServiceHealthy, float64(svc.HealthyDestinations), sl...)
			m.gauge(mServiceDests, float64(svc.InServiceDestinations), sl...)
			if st := svc.Stats; st != nil {
				m.counter(mServiceConns, st.Connections, sl...)
				m.counter(mServicePktIn, st.PacketsIn, sl...)
				m.counter(mServicePktOut, st.PacketsOut, sl...)
				m.counter(mServiceBytIn, st.BytesIn, sl...)
				m.counter(mServiceBytOut, st.BytesOut, sl...)
			}
			for _, d := range svc.Destinations {
				dl := append(append(make([]string, 0, len(destLabels)+1), sl...), d.Address, strconv.Itoa(int(d.Port)))
				word, _ := view.DestinationState(d)
				for _, st := range view.DestinationStates {
					m.gauge(mDestState, b2f(word == st), append(dl, labelWord(st))...)
				}
				m.gauge(mDestWeight, float64(d.Weight), dl...)
				m.gauge(mDestActive, float64(d.ActiveConnections), dl...)
				m.gauge(mDestInactive, float64(d.InactiveConnections), dl...)
				if st := d.Stats; st != nil {
					m.counter(mDestConns, st.Connections, dl...)
					m.counter(mDestPktIn, st.PacketsIn, dl...)
					m.counter(mDestPktOut, st.PacketsOut, dl...)
					m.counter(mDestBytIn, st.BytesIn, dl...)
					m.counter(mDestBytOut, st.BytesOut, dl...)
				}
			}
		}
	}

	for _, c := range s.Checks {
		addr := c.Check.GetAddress()
		if c.Check.GetTarget() != "" {
			addr = c.Check.GetTarget()
		}
		cl := []string{c.Backend, c.Name, addr}
		word := view.StateUnknown
		if c.Known {
			word = view.StateUnhealthy
			if c.Healthy {
				word = view.StateHealthy
			}
		}
		for _, st := range checkStates {
			m.gauge(mCheckState, b2f(word == st), append(cl, st)...)
		}
		if r := c.Last; r != nil {
			if r.Duration != nil {
				m.gauge(mCheckDuration, r.Duration.AsDuration().Seconds(), cl...)
			}
			if r.Time != nil {
				m.gauge(mCheckLast, unix(r.Time.AsTime()), cl...)
			}
		}
	}
}

// serviceLabels are a service's labels, as node_exporter's IPVS collector
// has them: a firewall-mark service has no address or port but a mark.
func serviceLabels(vserver string, s *enginepb.ServiceStatus) []string {
	proto := strings.TrimPrefix(s.Protocol.String(), "PROTOCOL_")
	if s.Protocol == nccpb.Protocol_PROTOCOL_UNSPECIFIED {
		proto = ""
	}
	if s.Fwmark != 0 {
		return []string{vserver, "", "0", strconv.Itoa(int(s.Fwmark)), proto}
	}
	return []string{vserver, s.Vip, strconv.Itoa(int(s.Port)), "", proto}
}

// metricsHandler serves /metrics: the snapshot's series and the ECU's
// own Go and process metrics.
func (e *ecu) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{e}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             e.cfg.CallTimeout + 5*time.Second,
	})
}
