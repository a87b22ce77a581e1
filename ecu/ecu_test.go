package ecu

import (
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

func TestMain(m *testing.M) {
	if sock := os.Getenv(childDaemonEnv); sock != "" {
		os.Exit(runChildDaemon(sock))
	}
	flag.Set("logtostderr", "true")
	if os.Getenv(benchChildEnv) != "" {
		os.Exit(runBenchChild())
	}
	os.Exit(m.Run())
}

type fakeEngine struct {
	enginepb.UnimplementedEngineServer
}

func (fakeEngine) ClusterStatus(context.Context, *enginepb.ClusterStatusRequest) (*enginepb.ClusterStatusResponse, error) {
	return &enginepb.ClusterStatusResponse{Site: "test-site", Version: "v-test",
		Nodes: []*enginepb.Node{{Fqdn: "lb1.example.com.", Ipv4: "192.0.2.1", Priority: 255, ThisNode: true}}}, nil
}

func (fakeEngine) ConfigStatus(context.Context, *enginepb.ConfigStatusRequest) (*enginepb.ConfigStatusResponse, error) {
	return &enginepb.ConfigStatusResponse{Source: "disk", LastError: "cluster.pb:3:7: bad", Warnings: []string{"w1"}}, nil
}

// serve runs the given registrations on a socket until stop is called.
func serve(t *testing.T, sock string, comp *ipc.Component, engine bool) (stop func()) {
	t.Helper()
	s, err := ipc.NewServer(ipc.ServerOptions{Path: sock, Policy: ipc.Policy{Read: ipc.Rule{Anyone: true}}})
	if err != nil {
		t.Fatal(err)
	}
	seesawpb.RegisterComponentServer(s, comp)
	if engine {
		enginepb.RegisterEngineServer(s, fakeEngine{})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, 100*time.Millisecond) }()
	return func() { cancel(); <-done }
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthzAndStatusPage(t *testing.T) {
	dir := t.TempDir()
	esock := filepath.Join(dir, "engine.sock")
	hsock := filepath.Join(dir, "ha.sock")
	haComp := ipc.NewComponent("ha")
	haComp.SetFacility("vrrp", false, "VRRP speaker not in this build")
	stopHA := serve(t, hsock, haComp, false)
	defer stopHA()
	stopEngine := serve(t, esock, ipc.NewComponent("engine"), true)

	addrc := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Socket:       filepath.Join(dir, "ecu", "ecu.sock"),
			EngineSocket: esock,
			Components:   map[string]string{"ha": hsock, "ncc": filepath.Join(dir, "missing.sock")},
			HTTPAddr:     "127.0.0.1:0",
			Ready:        func(a net.Addr) { addrc <- a },
			SSLDir:       filepath.Join(dir, "no-ssl"),
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case <-time.After(20 * time.Second):
		t.Fatal("ECU never listened")
	}

	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with the engine up: %d %q", code, body)
	}
	code, body := get(t, base+"/?format=text")
	if code != http.StatusOK {
		t.Errorf("/: %d", code)
	}
	for _, want := range []string{
		"site:      test-site",
		"lb1.example.com. 192.0.2.1",
		"(this node)",
		"source:      disk",
		"cluster.pb:3:7: bad",
		"VRRP speaker not in this build",
		"ncc          does not answer",
		"ok  remote-control disabled: ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/ lacks %q:\n%s", want, body)
		}
	}
	if code, _ := get(t, base+"/nosuchpage"); code != http.StatusNotFound {
		t.Errorf("/nosuchpage: %d, want 404", code)
	}

	stopEngine()
	if code, body := get(t, base+"/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "engine does not answer") {
		t.Errorf("/healthz with the engine down: %d %q", code, body)
	}
	if code, body := get(t, base+"/?format=text"); code != http.StatusOK || !strings.Contains(body, "Cluster\n  unavailable") {
		t.Errorf("/ with the engine down: %d\n%s", code, body)
	}
}

// TestWriteVservers: the plain-text page says, for each vserver, what is up
// and why a destination is out.
func TestWriteVservers(t *testing.T) {
	var b strings.Builder
	writeVservers(&b, []*enginepb.VserverStatus{{
		Name: "web@site", Enabled: true,
		Vips: []*enginepb.VIPStatus{{Address: "192.0.2.100/24", Interface: "eth1", Placement: "lb-interface", Active: true}},
		Services: []*enginepb.ServiceStatus{{
			Protocol: nccpb.Protocol_TCP, Vip: "192.0.2.100", Port: 80, Mode: "NAT", Scheduler: "rr", Active: true,
			HealthyDestinations: 1, InServiceDestinations: 2,
			Destinations: []*enginepb.DestinationStatus{
				{Address: "198.51.100.11", Port: 80, Weight: 1, Enabled: true, Healthy: true, InIpvs: true, ActiveConnections: 3},
				{Address: "2001:db8::12", Port: 80, Weight: 1, Enabled: true, FailingChecks: []string{"TCP/8080: connection refused"}},
			},
		}},
	}})
	got := b.String()
	for _, want := range []string{
		"web@site  enabled",
		"VIP 192.0.2.100/24 on eth1 (lb-interface), active",
		"TCP 192.0.2.100:80 NAT rr: up, 1/2 destinations healthy",
		"-> 198.51.100.11:80 weight 1, in service, active 3 inactive 0",
		"-> [2001:db8::12]:80 weight 1, out, active 0 inactive 0; failing: TCP/8080: connection refused",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks %q:\n%s", want, got)
		}
	}
}
