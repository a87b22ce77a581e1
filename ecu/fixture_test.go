package ecu

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// fixedEngine answers every status RPC with the same fixed state: a
// cluster of two vservers, one with a destination down, for golden files
// of the JSON API and the page.
type fixedEngine struct {
	enginepb.UnimplementedEngineServer
}

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func ts(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }

func (fixedEngine) ClusterStatus(context.Context, *enginepb.ClusterStatusRequest) (*enginepb.ClusterStatusResponse, error) {
	return &enginepb.ClusterStatusResponse{Site: "golden", Version: "v1.2.3", HaState: seesawpb.HAState_HA_STATE_LEADER,
		Nodes: []*enginepb.Node{
			{Fqdn: "lb1.example.com.", Ipv4: "192.0.2.1", Priority: 255, HaEnabled: true, VserversEnabled: true, ThisNode: true},
			{Fqdn: "lb2.example.com.", Ipv4: "192.0.2.2", Priority: 254, HaEnabled: true, VserversEnabled: true},
		}}, nil
}

func (fixedEngine) HAStatus(context.Context, *enginepb.HAStatusRequest) (*hapb.Status, error) {
	return &hapb.Status{State: seesawpb.HAState_HA_STATE_LEADER, Since: ts(-time.Hour), LastUpdate: ts(-time.Second),
		AdvertsSent: 3600, AdvertsReceived: 2, Transitions: 2, MasterAddress: "192.0.2.1", MasterPriority: 255, Priority: 255,
		Dropped: map[string]uint64{"bad ttl": 1}}, nil
}

func (fixedEngine) ConfigStatus(context.Context, *enginepb.ConfigStatusRequest) (*enginepb.ConfigStatusResponse, error) {
	return &enginepb.ConfigStatusResponse{Source: "disk", Loaded: ts(-2 * time.Hour), LastUpdate: ts(-3 * time.Hour),
		Warnings: []string{"vserver web: no healthcheck on port 443"}}, nil
}

func fixedVservers() []*enginepb.VserverStatus {
	return []*enginepb.VserverStatus{
		{Name: "api", Fqdn: "api.example.com.", Ipv4: "192.0.2.10", Enabled: true, ConfigEnabled: true,
			Vips: []*enginepb.VIPStatus{{Address: "192.0.2.10/32", Placement: "lb-interface", Interface: "eth1", Active: true, Placed: true}},
			Services: []*enginepb.ServiceStatus{{Family: nccpb.Family_INET, Protocol: nccpb.Protocol_TCP, Port: 443, Vip: "192.0.2.10",
				Mode: "NAT", Scheduler: "wlc", Enabled: true, Healthy: true, Active: true, HealthyDestinations: 2, InServiceDestinations: 2,
				Stats: &nccpb.Stats{Connections: 1000, PacketsIn: 5000, BytesIn: 1 << 20, Cps: 5, BpsIn: 2048},
				Destinations: []*enginepb.DestinationStatus{
					{Name: "api/198.51.100.1:443/TCP", Backend: "be1.example.com.", Address: "198.51.100.1", Port: 443, Weight: 1,
						Enabled: true, Healthy: true, Active: true, InIpvs: true, ActiveConnections: 12, InactiveConnections: 3,
						Stats: &nccpb.Stats{Connections: 600}},
					{Name: "api/198.51.100.2:443/TCP", Backend: "be2.example.com.", Address: "198.51.100.2", Port: 443, Weight: 2,
						Enabled: true, Healthy: true, Active: true, InIpvs: true, ActiveConnections: 7, Stats: &nccpb.Stats{Connections: 400}},
				}}}},
		{Name: "web", Fqdn: "web.example.com.", Ipv4: "192.0.2.20", Enabled: true, ConfigEnabled: true,
			Vips: []*enginepb.VIPStatus{{Address: "192.0.2.20/32", Placement: "lb-interface", Interface: "eth1", Active: true, Placed: true}},
			Services: []*enginepb.ServiceStatus{{Family: nccpb.Family_INET, Protocol: nccpb.Protocol_TCP, Port: 80, Vip: "192.0.2.20",
				Mode: "DSR", Scheduler: "rr", Enabled: true, Healthy: true, Active: true, HealthyDestinations: 1, InServiceDestinations: 2,
				Destinations: []*enginepb.DestinationStatus{
					{Name: "web/198.51.100.1:80/TCP", Backend: "be1.example.com.", Address: "198.51.100.1", Port: 80, Weight: 1,
						Enabled: true, Healthy: true, Active: true, InIpvs: true},
					{Name: "web/198.51.100.3:80/TCP", Backend: "be3.example.com.", Address: "198.51.100.3", Port: 80, Weight: 1,
						Enabled: true, FailingChecks: []string{"HTTP/80: connection refused"}},
				}}}},
	}
}

func (fixedEngine) Vservers(context.Context, *enginepb.VserversRequest) (*enginepb.VserversResponse, error) {
	return &enginepb.VserversResponse{Vservers: fixedVservers()}, nil
}

func (fixedEngine) Backends(context.Context, *enginepb.BackendsRequest) (*enginepb.BackendsResponse, error) {
	return &enginepb.BackendsResponse{Backends: []*enginepb.BackendStatus{
		{Fqdn: "be1.example.com.", Ipv4: "198.51.100.1", Enabled: true, ConfigEnabled: true, HealthyDestinations: 2, ActiveDestinations: 2,
			Destinations: []string{"api/198.51.100.1:443/TCP", "web/198.51.100.1:80/TCP"}},
		{Fqdn: "be3.example.com.", Ipv4: "198.51.100.3", Enabled: true, ConfigEnabled: true, Destinations: []string{"web/198.51.100.3:80/TCP"}},
	}}, nil
}

func (fixedEngine) Checks(context.Context, *enginepb.ChecksRequest) (*enginepb.ChecksResponse, error) {
	return &enginepb.ChecksResponse{Checks: []*enginepb.CheckView{
		{Name: "HTTP/80", Backend: "be3.example.com.", Known: true, Destinations: []string{"web/198.51.100.3:80/TCP"},
			Check: &hcpb.Check{Id: 7, Type: hcpb.CheckType_HTTP, Address: "198.51.100.3", Port: 80, Interval: durationpb.New(5 * time.Second)},
			Last:  &hcpb.Result{Id: 7, Message: "connection refused", Time: ts(-time.Second), Duration: durationpb.New(2 * time.Millisecond)}},
	}}, nil
}

func (fixedEngine) Events(context.Context, *enginepb.EventsRequest) (*enginepb.EventsResponse, error) {
	return &enginepb.EventsResponse{NextSeq: 3, Events: []*enginepb.Event{
		{Seq: 1, Time: ts(-time.Hour), Kind: "ha", Object: "this node", Message: "HA HA_STATE_BACKUP -> HA_STATE_LEADER: peer went away"},
		{Seq: 2, Time: ts(-time.Minute), Kind: "destination", Object: "web/198.51.100.3:80/TCP", Problem: true,
			Message: "out of service: HTTP/80: connection refused"},
	}}, nil
}

// runFixedECU runs an ECU on a fixedEngine and returns its base URL.
func runFixedECU(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	esock := filepath.Join(dir, "engine.sock")
	s, err := ipc.NewServer(ipc.ServerOptions{Path: esock, Policy: ipc.Policy{Read: ipc.Rule{Anyone: true}}})
	if err != nil {
		t.Fatal(err)
	}
	seesawpb.RegisterComponentServer(s, ipc.NewComponent("engine"))
	enginepb.RegisterEngineServer(s, fixedEngine{})
	ctx, cancel := context.WithCancel(context.Background())
	sdone := make(chan error, 1)
	go func() { sdone <- s.Serve(ctx, 100*time.Millisecond) }()

	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Socket:       filepath.Join(dir, "ecu", "ecu.sock"),
			EngineSocket: esock,
			HTTPAddr:     "127.0.0.1:0",
			Ready:        func(a net.Addr) { addrc <- a },
			Now:          func() time.Time { return t0 },
			ControlAddr:  "-",
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		<-sdone
	})
	select {
	case a := <-addrc:
		return "http://" + a.String()
	case <-time.After(30 * time.Second):
		t.Fatal("the ECU never listened")
	}
	return ""
}
