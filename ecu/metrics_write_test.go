package ecu

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// goldenSnapshot is a snapshot with every kind of series the engine's
// parts give: the fixed engine's vservers plus a firewall-mark service, an
// IPv6 one, a duplicate vserver (its series once), destinations in each
// state, and checks with and without runs, results and targets.
func goldenSnapshot() *snapshot {
	var fe fixedEngine
	cl, _ := fe.ClusterStatus(nil, nil)
	ha, _ := fe.HAStatus(nil, nil)
	cf, _ := fe.ConfigStatus(nil, nil)
	ch, _ := fe.Checks(nil, nil)
	vs := fixedVservers()
	vs = append(vs,
		&enginepb.VserverStatus{Name: "fwm", Enabled: true, Override: enginepb.OverrideState_OVERRIDE_DRAIN, Services: []*enginepb.ServiceStatus{
			{Family: nccpb.Family_INET, Protocol: nccpb.Protocol_PROTOCOL_UNSPECIFIED, Fwmark: 7, Active: true, HealthyDestinations: 1, InServiceDestinations: 3,
				Stats: &nccpb.Stats{Connections: 1, PacketsIn: 2, PacketsOut: 3, BytesIn: 4, BytesOut: 5},
				Destinations: []*enginepb.DestinationStatus{
					{Address: "198.51.100.7", Weight: 0, Enabled: true, Healthy: true, InIpvs: true},
					{Address: "198.51.100.8", Weight: 3, Enabled: true, Quiesced: true, InIpvs: true, ActiveConnections: 4294967295},
					{Address: "198.51.100.9", Weight: -1, Enabled: false},
					{Address: "198.51.100.10", Weight: 2, Enabled: true, Healthy: true, Override: enginepb.OverrideState_OVERRIDE_DRAIN,
						Stats: &nccpb.Stats{Connections: 18446744073709551615}},
				}}}},
		&enginepb.VserverStatus{Name: "v6", Enabled: false, Override: enginepb.OverrideState_OVERRIDE_DISABLED, Services: []*enginepb.ServiceStatus{
			{Family: nccpb.Family_INET6, Protocol: nccpb.Protocol_UDP, Vip: "2001:db8::53", Port: 53,
				Destinations: []*enginepb.DestinationStatus{
					{Address: "2001:db8:1::1", Port: 53, Weight: 1, Enabled: true, Healthy: true, InIpvs: true},
					{Address: "2001:db8:1::1", Port: 53, Weight: 1, Enabled: true, Healthy: true, InIpvs: true}, // twice: once
				}}}},
		proto.Clone(vs[1]).(*enginepb.VserverStatus), // "web" twice: once
	)
	checks := append(ch.Checks,
		&enginepb.CheckView{Name: "TCP/53", Backend: "ns1.example.com.", Known: true, Healthy: true,
			Check: &hcpb.Check{Id: 8, Type: hcpb.CheckType_TCP, Address: "2001:db8:1::1", Target: "2001:db8:1::2", Port: 53},
			Last:  &hcpb.Result{Id: 8, Time: ts(-2 * time.Second), Duration: durationpb.New(1500 * time.Microsecond)}},
		&enginepb.CheckView{Name: "HTTP/8080", Backend: "be\"q\".example.com.", Check: &hcpb.Check{Id: 9, Address: "198.51.100.9"}},
	)
	return &snapshot{
		Taken: t0, Cluster: cl, HA: ha, Config: cf, Vservers: vs, Checks: checks,
		Components:    map[string]*seesawpb.ComponentStatus{"engine": {Healthy: true, Details: map[string]string{"ncc_applies": "12", "ncc_kernel_writes": "345", "ncc_apply_errors": "0"}}, "ecu": {Healthy: true}},
		ComponentErrs: map[string]string{"ncc": "down"},
		CheckRuns:     map[uint64]checkRuns{7: {successes: 10, failures: 90}, 8: {successes: 5}},
	}
}

// TestMetricsGolden: the exposition of goldenSnapshot is its golden file
// (go test -update rewrites it), byte for byte: the writer's speed-ups
// must not change a byte of what scrapers get.
func TestMetricsGolden(t *testing.T) {
	got := writeSnapshot(nil, goldenSnapshot())
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		must(t, os.WriteFile(golden, got, 0o644))
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the exposition differs from %s:\n%s", golden, got)
	}
}
