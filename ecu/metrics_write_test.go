package ecu

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
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

// TestMetricsLabelCache: an exposition written with the labels kept from
// the snapshots before it is the one written afresh, whatever changed in
// between: numbers and states only (the labels reused), a vserver,
// service or destination added, removed, renamed or moved, a duplicate
// appearing or going.
func TestMetricsLabelCache(t *testing.T) {
	var lc labelCache
	var buf []byte
	check := func(what string, s *snapshot) {
		t.Helper()
		want := writeSnapshot(nil, s)
		buf = writeSnapshotCached(buf[:0], s, &lc)
		if !bytes.Equal(buf, want) {
			t.Errorf("%s: with the kept labels:\n%s\nwritten afresh:\n%s", what, buf, want)
		}
	}
	s := goldenSnapshot()
	check("first", s)
	check("the same again", s)

	s = goldenSnapshot()
	d := s.Vservers[0].Services[0].Destinations[0]
	d.Healthy, d.Active, d.ActiveConnections, d.Stats = false, false, 99, &nccpb.Stats{Connections: 5}
	s.Vservers[1].Enabled, s.Vservers[1].Override = false, enginepb.OverrideState_OVERRIDE_DISABLED
	check("numbers and states changed", s)

	for _, c := range []struct {
		what   string
		change func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus
	}{
		{"a vserver renamed", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus {
			vs[1].Name = "www"
			return vs
		}},
		{"a vserver removed", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus { return vs[1:] }},
		{"the duplicate removed", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus { return vs[:len(vs)-1] }},
		{"a VIP changed", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus {
			vs[0].Services[0].Vip = "192.0.2.11"
			return vs
		}},
		{"a port changed", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus {
			vs[0].Services[0].Port = 8443
			return vs
		}},
		{"a protocol changed", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus {
			vs[0].Services[0].Protocol = nccpb.Protocol_UDP
			return vs
		}},
		{"a mark changed", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus {
			vs[2].Services[0].Fwmark = 8
			return vs
		}},
		{"a destination's address changed", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus {
			vs[0].Services[0].Destinations[1].Address = "198.51.100.99"
			return vs
		}},
		{"a destination's port changed", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus {
			vs[0].Services[0].Destinations[1].Port = 444
			return vs
		}},
		{"a destination removed", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus {
			vs[0].Services[0].Destinations = vs[0].Services[0].Destinations[:1]
			return vs
		}},
		{"a duplicate destination made", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus {
			ds := vs[0].Services[0].Destinations
			ds[1].Address, ds[1].Port = ds[0].Address, ds[0].Port
			return vs
		}},
		{"a service added", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus {
			vs[0].Services = append(vs[0].Services, proto.Clone(vs[0].Services[0]).(*enginepb.ServiceStatus))
			vs[0].Services[1].Port = 80
			return vs
		}},
		{"vservers swapped", func(vs []*enginepb.VserverStatus) []*enginepb.VserverStatus {
			vs[0], vs[1] = vs[1], vs[0]
			return vs
		}},
		{"no vservers", func([]*enginepb.VserverStatus) []*enginepb.VserverStatus { return nil }},
	} {
		s := goldenSnapshot()
		check("before "+c.what, s)
		s = goldenSnapshot()
		s.Vservers = c.change(s.Vservers)
		check(c.what, s)
	}
}

// TestExpositionBuffers: the exposition a scrape is writing out is never
// overwritten by the next snapshot's, however the scrapes overlap; a
// buffer is reused only once no scrape holds it, and a snapshot's
// exposition is written once for the scrapes sharing it.
func TestExpositionBuffers(t *testing.T) {
	var (
		x    expositions
		size atomic.Int64
	)
	snaps := make([]*snapshot, 4)
	for i := range snaps {
		snaps[i] = goldenSnapshot()
		snaps[i].Vservers[0].Services[0].Destinations[0].ActiveConnections = uint32(1000 + i)
	}
	want := func(i int) []byte { return writeSnapshot(nil, snaps[i]) }
	a := x.get(snaps[0], &size)
	a2 := x.get(snaps[0], &size)
	if a != a2 {
		t.Error("two scrapes of one snapshot wrote it twice")
	}
	b := x.get(snaps[1], &size) // a still held: b must not be a's buffer
	c := x.get(snaps[2], &size) // nor c a's or b's
	for _, r := range []struct {
		e *expoBuf
		i int
	}{{a, 0}, {b, 1}, {c, 2}} {
		if !bytes.Equal(r.e.b, want(r.i)) {
			t.Errorf("snapshot %d's exposition was overwritten while held", r.i)
		}
	}
	x.release(a)
	x.release(a2)
	x.release(b)
	d := x.get(snaps[3], &size) // may reuse a's or b's buffer, not c's
	if !bytes.Equal(c.b, want(2)) || !bytes.Equal(d.b, want(3)) {
		t.Error("a held exposition was overwritten by a reused buffer")
	}
	if &d.b[:1][0] != &a.b[:1][0] && &d.b[:1][0] != &b.b[:1][0] {
		t.Error("no released buffer was reused")
	}
	x.release(c)
	x.release(d)
	if got := x.get(snaps[3], &size); !bytes.Equal(got.b, want(3)) {
		t.Error("the last snapshot's exposition changed")
	}
}
