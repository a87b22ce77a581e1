package ecu

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/seesawlb/seesaw/engine"
	"github.com/seesawlb/seesaw/engine/config"
	"github.com/seesawlb/seesaw/healthcheck"
	"github.com/seesawlb/seesaw/ncc"
	"github.com/seesawlb/seesaw/ncc/ipvs/ipvstest"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/netconf/netconftest"
	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/nft/nfttest"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// The rig: a real engine (its loop and its gRPC server on a Unix socket)
// over a real NCC server on the NCC's wire-level fake kernels, a real
// healthcheck process checking real TCP servers on loopback, and a real
// ECU reading the engine over its socket. Only the kernel is a fake.

const rigSeesawCfg = `[cluster]
name = ecutest
anycast_enabled = false
node_ipv4 = 10.0.0.2
peer_ipv4 = 10.0.0.3
vip_ipv4 = 10.0.0.4
[interface]
node = eth0
lb = eth1
`

// rigCluster is a cluster of vservers "web", "api" and "dns": each has a
// TCP service whose destinations are loopback addresses with a TCP check
// on the port of a real server of the test's.
func rigCluster(ports map[string]int) string {
	var s strings.Builder
	s.WriteString(`seesaw_vip { fqdn: "vip." ipv4: "10.0.0.4/16" status: PRODUCTION }
node { fqdn: "lb1." ipv4: "10.0.0.2/16" status: PRODUCTION }
node { fqdn: "lb2." ipv4: "10.0.0.3/16" status: PRODUCTION }
`)
	i := 0
	for _, vs := range []string{"api", "dns", "web"} {
		i++
		fmt.Fprintf(&s, "vserver {\n  name: %q\n  rp: \"ops@ecutest\"\n", vs)
		fmt.Fprintf(&s, "  entry_address { fqdn: \"%s.\" ipv4: \"10.1.0.%d/32\" status: PRODUCTION }\n", vs, i)
		fmt.Fprintf(&s, "  vserver_entry { protocol: TCP port: 80 scheduler: WLC mode: NAT }\n")
		for j, be := range []string{"a", "b"} {
			fmt.Fprintf(&s, "  backend { host { fqdn: \"%s-%s.\" ipv4: \"127.0.%d.%d/8\" status: PRODUCTION } weight: 1 }\n", vs, be, i, j+1)
		}
		fmt.Fprintf(&s, "  healthcheck { type: TCP port: %d mode: PLAIN interval: 1 timeout: 1 retries: 0 }\n", ports[vs])
		s.WriteString("}\n")
	}
	return s.String()
}

// backendServer is a TCP server on loopback that can be stopped and
// started again on the same address.
type backendServer struct {
	mu   sync.Mutex
	addr string
	lis  net.Listener
}

func startBackend(t testing.TB, addr string) *backendServer {
	b := &backendServer{addr: addr}
	b.start(t)
	t.Cleanup(b.stop)
	return b
}

func (b *backendServer) start(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var lis net.Listener
	var err error
	for range 100 {
		if lis, err = net.Listen("tcp", b.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	b.addr, b.lis = lis.Addr().String(), lis
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func (b *backendServer) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lis != nil {
		b.lis.Close()
		b.lis = nil
	}
}

// nccClient calls an NCC server in process, as the engine's NCC client.
type nccClient struct{ srv *ncc.Server }

func (c nccClient) Apply(ctx context.Context, in *nccpb.ApplyRequest, _ ...grpc.CallOption) (*nccpb.ApplyResponse, error) {
	return c.srv.Apply(ctx, in)
}

func (c nccClient) GetState(ctx context.Context, in *nccpb.GetStateRequest, _ ...grpc.CallOption) (*nccpb.GetStateResponse, error) {
	return c.srv.GetState(ctx, in)
}

func (c nccClient) Announce(ctx context.Context, in *nccpb.AnnounceRequest, _ ...grpc.CallOption) (*nccpb.AnnounceResponse, error) {
	return c.srv.Announce(ctx, in)
}

type discard struct{}

func (discard) Send(int, ...[]byte) error { return nil }

// ecuRig is the running appliance minus HA, with an ECU in front.
type ecuRig struct {
	t        testing.TB
	dir      string
	ipvs     *ipvstest.Kernel
	backends map[string]*backendServer // by backend name ("web-a"): the server its check probes
	base     string                    // the ECU's http://host:port
	stopEng  func()                    // stops the engine's gRPC server (the ECU's engine goes away)
	esock    string
	eng      *engine.Engine
	cfg, cl  string
}

func newECURig(t testing.TB) *ecuRig {
	t.Helper()
	backends := map[string]*backendServer{}
	ports := map[string]int{}
	for i, vs := range []string{"api", "dns", "web"} {
		a := startBackend(t, fmt.Sprintf("127.0.%d.1:0", i+1))
		_, p, _ := net.SplitHostPort(a.addr)
		var port int
		fmt.Sscan(p, &port)
		ports[vs] = port
		backends[vs+"-a"] = a
		backends[vs+"-b"] = startBackend(t, fmt.Sprintf("127.0.%d.2:%d", i+1, port))
	}
	r := startRig(t, rigSeesawCfg, rigCluster(ports), hcReal, 50*time.Millisecond)
	r.backends = backends
	return r
}

// hcMode is how the rig runs the healthcheck process.
type hcMode int

const (
	hcNone   hcMode = iota
	hcReal          // probing for real
	hcDryRun        // every check healthy, no probe (for benchmarks)
)

// startRig runs the engine on the given config (this node's address from
// seesaw.cfg placed on eth0), HA reporting this node master, the
// healthcheck process as hc says, and an ECU sharing snapshots for maxAge.
func startRig(t testing.TB, seesawCfg, clusterPb string, hc hcMode, maxAge time.Duration, opts ...func(*Config)) *ecuRig {
	t.Helper()
	dir, err := os.MkdirTemp("", "ecurig")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := &ecuRig{t: t, dir: dir, backends: map[string]*backendServer{}}
	r.cfg, r.cl = filepath.Join(dir, "seesaw.cfg"), filepath.Join(dir, "cluster.pb")
	must(t, os.WriteFile(r.cfg, []byte(seesawCfg), 0o644))
	must(t, os.WriteFile(r.cl, []byte(clusterPb), 0o644))

	// The fake kernel, with this node's address on its node interface.
	r.ipvs = ipvstest.New()
	nk := netconftest.New(netconftest.IPVSSysctls())
	nk.AddPhysical("eth0", net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 1}, true)
	nk.AddPhysical("eth1", net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 2}, true)
	res := config.Check(r.cfg, r.cl)
	if err := res.Err(); err != nil {
		t.Fatalf("the rig's config: %v", err)
	}
	for _, p := range []netip.Prefix{res.ThisNode.IPv4, res.ThisNode.IPv6} {
		if p.IsValid() {
			must(t, nk.AddAddr("eth0", p))
		}
	}
	nftK := nfttest.New()
	nsrv := ncc.NewServer(ncc.Config{
		IPVS:   func() (reconcile.IPVS, error) { return r.ipvs.Client() },
		Net:    func() (netconf.Kernel, error) { return nk, nil },
		NFT:    func() (*nft.Reconciler, error) { return nftK.Reconciler(nil) },
		Sender: func() (ncc.FrameSender, error) { return discard{}, nil },
	})
	t.Cleanup(nsrv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	r.esock = filepath.Join(dir, "engine.sock")
	r.eng = engine.New(engine.Config{EngineConf: r.cfg, ClusterConf: r.cl, Socket: r.esock, WatchInterval: -1,
		RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	r.eng.SetNCC(nccClient{nsrv})
	must(t, r.eng.Reload())
	wg.Go(func() { r.eng.Loop(ctx) })
	r.serveEngine()
	wg.Go(func() { r.haSpeaker(ctx) })

	comps := map[string]string{}
	if hc != hcNone {
		hsock := filepath.Join(dir, "healthcheck.sock")
		comps["healthcheck"] = hsock
		wg.Go(func() {
			if err := healthcheck.Run(ctx, healthcheck.Config{Socket: hsock, EngineSocket: r.esock, BatchDelay: 10 * time.Millisecond, DryRun: hc == hcDryRun}); err != nil {
				t.Errorf("healthcheck: %v", err)
			}
		})
	}

	addrc := make(chan net.Addr, 1)
	cfg := Config{
		Socket:       filepath.Join(dir, "ecu", "ecu.sock"),
		EngineSocket: r.esock,
		Components:   comps,
		HTTPAddr:     "127.0.0.1:0",
		CallTimeout:  30 * time.Second,
		MaxAge:       maxAge,
		Ready:        func(a net.Addr) { addrc <- a },
		ControlAddr:  "-",
		EngineConf:   r.cfg,
	}
	for _, o := range opts {
		o(&cfg)
	}
	wg.Go(func() {
		err := Run(ctx, cfg)
		if err != nil {
			t.Errorf("ecu: %v", err)
		}
	})
	select {
	case a := <-addrc:
		r.base = "http://" + a.String()
	case <-time.After(30 * time.Second):
		t.Fatal("the ECU never listened")
	}
	return r
}

// haSpeaker stands in for seesaw_ha: it opens the engine's HA session and
// reports this node master, with the counters HA keeps, until ctx ends.
func (r *ecuRig) haSpeaker(ctx context.Context) {
	cc, err := ipc.Dial(r.esock, ipc.DialOptions{})
	if err != nil {
		r.t.Errorf("HA: %v", err)
		return
	}
	defer cc.Close()
	since := time.Now()
	for ctx.Err() == nil {
		stream, err := enginepb.NewEngineClient(cc).HASession(ctx)
		if err == nil {
			stream.Send(&hapb.Report{Report: &hapb.Report_Transition{Transition: &hapb.Transition{
				From: seesawpb.HAState_HA_STATE_BACKUP, To: seesawpb.HAState_HA_STATE_LEADER, Reason: "no advert from the peer"}}})
			for n := uint64(1); ctx.Err() == nil; n++ {
				err := stream.Send(&hapb.Report{Report: &hapb.Report_Status{Status: &hapb.Status{
					State: seesawpb.HAState_HA_STATE_LEADER, Since: timestamppb.New(since), LastUpdate: timestamppb.Now(),
					AdvertsSent: n, Transitions: 2, MasterAddress: "10.0.0.2", MasterPriority: 255, Priority: 255}}})
				if err != nil {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// serveEngine serves the engine's gRPC services on its socket.
func (r *ecuRig) serveEngine() {
	r.t.Helper()
	srv, err := ipc.NewServer(ipc.ServerOptions{Path: r.esock,
		Policy: ipc.Policy{Read: ipc.Rule{Anyone: true}, Write: ipc.Rule{Anyone: true}, Internal: ipc.Rule{Anyone: true}}})
	if err != nil {
		r.t.Fatal(err)
	}
	r.eng.Register(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx, 100*time.Millisecond)
	}()
	r.stopEng = func() { cancel(); <-done }
	r.t.Cleanup(r.stopEng)
}

// waitFor polls cond until it holds or fails the test naming what.
func (r *ecuRig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	end := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			r.t.Fatalf("%s: never happened", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *ecuRig) get(path string) (int, string) {
	r.t.Helper()
	resp, err := http.Get(r.base + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
