package ecu

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/seesawlb/seesaw/deploy/appliance"
	"github.com/seesawlb/seesaw/deploy/labtest"
)

// The lab's cluster for the ECU: lb1 alone (it becomes master), one full
// NAT vserver over the topology's two backends.
const labECUSeesawCfg = `[cluster]
name = lab
anycast_enabled = false
node_ipv4 = 192.0.2.2
node_ipv6 = 2001:db8:0:1::2
peer_ipv4 = 192.0.2.3
peer_ipv6 = 2001:db8:0:1::3
vip_ipv4 = 192.0.2.4
vip_ipv6 = 2001:db8:0:1::4
vrid = 60

[interface]
node = eth0
lb = eth2
`

var labECUVIP = netip.MustParseAddr("192.0.2.100")

func labECUClusterPB(backends []*labtest.Node) string {
	s := `seesaw_vip { fqdn: "seesaw-vip.lab." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1.lab." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: PRODUCTION }
node { fqdn: "lb2.lab." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
vserver {
  name: "web@lab"
  entry_address { fqdn: "web.lab." ipv4: "192.0.2.100/32" status: PRODUCTION }
  rp: "lab@example.com"
  vserver_entry { protocol: TCP port: 80 scheduler: RR mode: NAT }
  healthcheck { type: HTTP port: 8080 send: "/healthz" interval: 1 timeout: 1 retries: 1 }
`
	for _, b := range backends {
		s += fmt.Sprintf("  backend { host { fqdn: \"%s.lab.\" ipv4: %q status: PRODUCTION } weight: 1 }\n",
			b.Role, netip.PrefixFrom(b.IPv4(), labtest.BackendNet4.Bits()))
	}
	return s + "}\n"
}

// TestLabMetricsDuringTraffic: the whole appliance in the kernel lab, with
// the real kernel's IPVS. /metrics (scraped from inside lb1's namespace)
// shows the service up and both destinations active and every daemon's
// go_goroutines and process_open_fds, and its IPVS
// connection counter moves by the connections a client makes through the
// VIP; promtool-level validity is checked on the host (TestMetricsPass...).
func TestLabMetricsDuringTraffic(t *testing.T) {
	labtest.RequireLab(t)
	bin, err := appliance.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	topo := labtest.New(t, labtest.Config{LBs: 1, Backends: 2, LBNIC: "eth2", RoutedBackends: true})
	lb, client := topo.LBs[0], topo.Client
	for _, b := range topo.Backends {
		appliance.Serve(t, b, appliance.ServeOptions{TCP: []string{":80"}, Health: []string{":8080"}})
	}
	a := appliance.Start(t, lb, appliance.Options{Bin: bin, SeesawCfg: labECUSeesawCfg, ClusterPB: labECUClusterPB(topo.Backends)})
	a.WaitRunning(t, 2*time.Minute)
	a.WaitMaster(t, 2*time.Minute)

	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: lb.Dial}}
	scrape := func() (map[string]float64, error) {
		resp, err := hc.Get("http://127.0.0.1:10257/metrics")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("/metrics does not parse: %w", err)
		}
		out := map[string]float64{}
		for name, mf := range mfs {
			for _, m := range mf.Metric {
				key := name
				for _, l := range m.Label {
					key += " " + l.GetName() + "=" + l.GetValue()
				}
				switch {
				case m.Counter != nil:
					out[key] = m.Counter.GetValue()
				case m.Gauge != nil:
					out[key] = m.Gauge.GetValue()
				}
			}
		}
		return out, nil
	}
	svc := "local_address=192.0.2.100 local_mark= local_port=80 proto=TCP vserver=web@lab"
	var before float64
	a.Wait(t, 2*time.Minute, "the service up with both destinations active in /metrics", func() error {
		m, err := scrape()
		if err != nil {
			return err
		}
		if m["seesaw_service_up "+svc] != 1 || m["seesaw_service_healthy_destinations "+svc] != 2 || m["seesaw_ha_state state=master"] != 1 {
			return fmt.Errorf("not yet: service_up %v, healthy %v, master %v", m["seesaw_service_up "+svc], m["seesaw_service_healthy_destinations "+svc], m["seesaw_ha_state state=master"])
		}
		for _, b := range topo.Backends {
			k := fmt.Sprintf("seesaw_destination_state local_address=192.0.2.100 local_mark= local_port=80 proto=TCP remote_address=%s remote_port=80 state=active vserver=web@lab", b.IPv4())
			if m[k] != 1 {
				return fmt.Errorf("%s not active yet", b.Role)
			}
		}
		// Every daemon's own Go runtime and process figures, through the
		// ECU (all run as root here, so each answers it).
		for _, d := range []string{"ecu", "engine", "ha", "healthcheck", "ncc", "watchdog"} {
			if m["go_goroutines daemon="+d] <= 0 || m["process_open_fds daemon="+d] <= 0 || m["go_memstats_heap_inuse_bytes daemon="+d] <= 0 {
				return fmt.Errorf("no Go runtime series of %s yet: go_goroutines %v, process_open_fds %v", d,
					m["go_goroutines daemon="+d], m["process_open_fds daemon="+d])
			}
		}
		var daemons []string
		for k, v := range m {
			if d, ok := strings.CutPrefix(k, "go_goroutines daemon="); ok {
				daemons = append(daemons, fmt.Sprintf("%s=%v", d, v))
			}
		}
		sort.Strings(daemons)
		t.Logf("go_goroutines by daemon: %v", daemons)
		before = m["seesaw_service_connections_total "+svc]
		return nil
	})

	const n = 10
	for i := range n {
		if _, err := appliance.Ask(client, "tcp", netip.AddrPortFrom(labECUVIP, 80), 10*time.Second); err != nil {
			t.Fatalf("request %d through the VIP: %v", i, err)
		}
	}
	a.Wait(t, time.Minute, fmt.Sprintf("seesaw_service_connections_total up by %d", n), func() error {
		m, err := scrape()
		if err != nil {
			return err
		}
		got := m["seesaw_service_connections_total "+svc]
		if got < before+n {
			return fmt.Errorf("connections_total %v, was %v before %d connections", got, before, n)
		}
		var dests, pkts float64
		for _, b := range topo.Backends {
			d := fmt.Sprintf("local_address=192.0.2.100 local_mark= local_port=80 proto=TCP remote_address=%s remote_port=80 vserver=web@lab", b.IPv4())
			dests += m["seesaw_destination_connections_total "+d]
			pkts += m["seesaw_destination_incoming_packets_total "+d]
		}
		if dests < n || m["seesaw_service_incoming_bytes_total "+svc] == 0 {
			return fmt.Errorf("destinations' connections %v, bytes in %v", dests, m["seesaw_service_incoming_bytes_total "+svc])
		}
		// Each connection is at least a SYN, an ACK and a FIN in.
		if pkts < 3*n {
			return fmt.Errorf("destinations' packets in %v after %d connections", pkts, n)
		}
		t.Logf("connections_total %v -> %v after %d connections; destinations' %v", before, got, n, dests)
		return nil
	})
}
