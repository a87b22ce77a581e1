package ecu

import (
	"bytes"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/seesawlb/seesaw/engine/view"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"

	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/seesawlb/seesaw/ncc/ipvs"
)

var activeRE = regexp.MustCompile(`seesaw_destination_state\{[^}]*state="active"[^}]*\} 1`)

// TestMetricsFromARealEngine: /metrics of an ECU fed by a real engine
// whose checks probe real servers has the series, passes promlint, shows
// IPVS counters, follows a backend going down and up, and keeps the last
// series (marked stale) when the engine goes away.
func TestMetricsFromARealEngine(t *testing.T) {
	r := newECURig(t)
	var dbg string
	defer func() {
		if t.Failed() {
			t.Log(dbg)
		}
	}()
	r.waitFor("every destination healthy in /metrics", func() bool {
		_, body := r.get("/metrics")
		if len(activeRE.FindAllString(body, -1)) == 6 {
			return true
		}
		dbg = body
		return false
	})
	_, body := r.get("/metrics")
	for _, want := range []string{
		"seesaw_engine_up 1",
		`seesaw_build_info{cluster="ecutest"`,
		`seesaw_ha_state{state="unknown"} 0`,
		`seesaw_ha_state{state="master"} 1`,
		`seesaw_config_last_reload_successful 1`,
		`seesaw_vserver_enabled{vserver="web"} 1`,
		`seesaw_vserver_override{state="none",vserver="web"} 1`,
		`seesaw_service_up{local_address="10.1.0.3",local_mark="",local_port="80",proto="TCP",vserver="web"} 1`,
		`seesaw_service_healthy_destinations{local_address="10.1.0.3",local_mark="",local_port="80",proto="TCP",vserver="web"} 2`,
		`seesaw_destination_state{local_address="10.1.0.3",local_mark="",local_port="80",proto="TCP",remote_address="127.0.3.1",remote_port="80",state="active",vserver="web"} 1`,
		`seesaw_destination_state{local_address="10.1.0.3",local_mark="",local_port="80",proto="TCP",remote_address="127.0.3.1",remote_port="80",state="unhealthy",vserver="web"} 0`,
		`seesaw_destination_weight{local_address="10.1.0.3",local_mark="",local_port="80",proto="TCP",remote_address="127.0.3.1",remote_port="80",vserver="web"} 1`,
		`seesaw_healthcheck_state{address="127.0.3.1",backend="web-a.",check="TCP/`,
		`seesaw_healthcheck_duration_seconds{`,
		`seesaw_healthcheck_runs_total{address="127.0.3.1",backend="web-a.",check="TCP/`,
		`seesaw_healthcheck_failures_total{address="127.0.3.1",backend="web-a.",check="TCP/`,
		`seesaw_component_up{component="healthcheck"} 1`,
		`seesaw_component_up{component="ecu"} 1`,
		"seesaw_ncc_applies_total ",
		`seesaw_daemon_cpu_seconds_total{daemon="engine"} `,
		`seesaw_daemon_resident_memory_bytes{daemon="healthcheck"} `,
		"seesaw_ncc_kernel_writes_total ",
		"seesaw_ncc_apply_errors_total 0",
		`go_goroutines{daemon="ecu"} `,
		`go_goroutines{daemon="engine"} `,
		`go_goroutines{daemon="healthcheck"} `,
		`process_cpu_seconds_total{daemon="ecu"} `,
		`process_open_fds{daemon="engine"} `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	// Counters come from IPVS as the kernel counts them.
	r.ipvs.SetStats(ipvs.ServiceKey{Family: ipvs.IPv4, Protocol: ipvs.TCP, Addr: netip.MustParseAddr("10.1.0.3"), Port: 80},
		ipvs.Stats{Connections: 1234, PacketsIn: 10, BytesIn: 999})
	r.waitFor("the service's connection counter", func() bool {
		_, body := r.get("/metrics")
		return strings.Contains(body, `seesaw_service_connections_total{local_address="10.1.0.3",local_mark="",local_port="80",proto="TCP",vserver="web"} 1234`)
	})

	// A backend's server stops: its destination's state moves, and back.
	r.backends["web-a"].stop()
	web := `local_address="10.1.0.3",local_mark="",local_port="80",proto="TCP",remote_address="127.0.3.1",remote_port="80",`
	r.waitFor("web-a unhealthy in /metrics", func() bool {
		_, body := r.get("/metrics")
		return strings.Contains(body, `seesaw_destination_state{`+web+`state="unhealthy",vserver="web"} 1`) &&
			regexp.MustCompile(`seesaw_healthcheck_failures_total\{address="127\.0\.3\.1",[^}]*\} [1-9]`).MatchString(body)
	})
	r.backends["web-a"].start(t)
	r.waitFor("web-a active again in /metrics", func() bool {
		_, body := r.get("/metrics")
		return strings.Contains(body, `seesaw_destination_state{`+web+`state="active",vserver="web"} 1`)
	})

	// The JSON API reads the same engine: the vserver and the event of
	// web-a's fall and return.
	if code, body := r.get("/api/v1/vservers/web"); code != 200 || !strings.Contains(body, `"address":"127.0.3.1"`) {
		t.Errorf("/api/v1/vservers/web: %d %s", code, body)
	}
	if _, body := r.get("/api/v1/events"); !strings.Contains(body, `"object":"web/127.0.3.1:80/TCP","message":"out of service: TCP/`) {
		t.Errorf("/api/v1/events lacks web-a going out of service: %s", body)
	}

	// The engine goes away: the last series stay, marked stale.
	r.stopEng()
	r.waitFor("seesaw_engine_up 0", func() bool {
		_, body := r.get("/metrics")
		return strings.Contains(body, "seesaw_engine_up 0") && strings.Contains(body, `seesaw_vserver_enabled{vserver="web"} 1`)
	})
}

// TestMetricsPassPromtool: Prometheus' own checker finds nothing to say
// about the ECU's exposition.
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian's prometheus package; deploy/deps.sh installs it)")
	}
	r := newECURig(t)
	r.waitFor("every destination healthy in /metrics", func() bool {
		_, body := r.get("/metrics")
		return len(activeRE.FindAllString(body, -1)) == 6
	})
	_, body := r.get("/metrics")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	t.Logf("promtool check metrics on %d bytes: %v %q", len(body), err, out)
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestExpositionParses: the hand-written exposition of a snapshot with
// awkward names parses with Prometheus' own parser, each family once, with
// the values and escapes intact, and duplicate series are left out.
func TestExpositionParses(t *testing.T) {
	vs := fixedVservers()
	vs[0].Name = "a \"quoted\" \\ name\nwith a newline"
	vs = append(vs, vs[1]) // the same vserver twice: its series once
	s := &snapshot{Cluster: &enginepb.ClusterStatusResponse{Site: "x", Version: "v"}, Vservers: vs,
		Components: map[string]*seesawpb.ComponentStatus{"engine": {Healthy: true}}, ComponentErrs: map[string]string{"ncc": "down"}}
	b := writeSnapshot(nil, s)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	up := mfs["seesaw_service_up"]
	if up == nil || len(up.Metric) != 2 {
		t.Fatalf("seesaw_service_up: %v", up)
	}
	var names []string
	for _, l := range up.Metric[0].Label {
		names = append(names, l.GetName()+"="+l.GetValue())
	}
	if got := strings.Join(names, " "); got != "local_address=192.0.2.10 local_mark= local_port=443 proto=TCP vserver="+vs[0].Name {
		t.Errorf("labels: %q", got)
	}
	if n := len(mfs["seesaw_destination_state"].Metric); n != 4*len(view.DestinationStates) {
		t.Errorf("%d destination state series, want %d", n, 4*len(view.DestinationStates))
	}
	if c := mfs["seesaw_service_connections_total"].Metric[0].GetCounter().GetValue(); c != 1000 {
		t.Errorf("connections: %v", c)
	}
}

// TestDestinationCounters: each destination's IPVS counters (connections,
// packets and bytes, in and out) are counters with the destination's
// labels, as IPVS gives them; a destination without stats has none.
func TestDestinationCounters(t *testing.T) {
	s := &snapshot{Cluster: &enginepb.ClusterStatusResponse{Site: "x"}, Vservers: []*enginepb.VserverStatus{{
		Name: "web", Enabled: true,
		Services: []*enginepb.ServiceStatus{{Vip: "192.0.2.1", Port: 80, Protocol: nccpb.Protocol_TCP,
			Destinations: []*enginepb.DestinationStatus{
				{Address: "198.51.100.1", Port: 8080, Weight: 1, Stats: &nccpb.Stats{Connections: 3, PacketsIn: 11, PacketsOut: 12, BytesIn: 1300, BytesOut: 1400}},
				{Address: "198.51.100.2", Port: 8080, Weight: 1},
			}}},
	}}}
	body := string(writeSnapshot(nil, s))
	d := `{local_address="192.0.2.1",local_mark="",local_port="80",proto="TCP",remote_address="198.51.100.1",remote_port="8080",vserver="web"} `
	for _, want := range []string{
		"# TYPE seesaw_destination_incoming_packets_total counter\n",
		"seesaw_destination_connections_total" + d + "3\n",
		"seesaw_destination_incoming_packets_total" + d + "11\n",
		"seesaw_destination_outgoing_packets_total" + d + "12\n",
		"seesaw_destination_incoming_bytes_total" + d + "1300\n",
		"seesaw_destination_outgoing_bytes_total" + d + "1400\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %q in:\n%s", want, body)
		}
	}
	if regexp.MustCompile(`_packets_total\{[^}]*remote_address="198\.51\.100\.2"`).MatchString(body) {
		t.Errorf("a destination without stats has packet counters:\n%s", body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := p.TextToMetricFamilies(strings.NewReader(body)); err != nil {
		t.Errorf("does not parse: %v", err)
	}
}
