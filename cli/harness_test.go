package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/seesawlb/seesaw/cli"
	"github.com/seesawlb/seesaw/engine"
	"github.com/seesawlb/seesaw/ncc"
	"github.com/seesawlb/seesaw/ncc/ipvs/ipvstest"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/netconf/netconftest"
	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/nft/nfttest"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// The tests' engine: the real engine serving on a real Unix socket with
// its real authorization, driving a real NCC server over the NCC's
// wire-level fake kernels. The test plays HA and the healthcheck process
// through their real sessions on the socket. Only the IPVS connection
// counts are the test's word (the fake kernel has no connections): the
// lab test drains with real ones.

const (
	readerGID = 4242 // the reader group: may read
	adminGID  = 4343 // the admin group: may also write
	nobody    = 65534
)

func TestMain(m *testing.M) {
	// The test binary is also the CLI, for the tests that run it as a
	// process (another user, a terminal).
	if os.Getenv("SEESAW_CLI_TEST_MAIN") == "1" {
		opts := cli.DefaultOptions(os.Stdout)
		opts.Name = "seesaw"
		if s := os.Getenv("SEESAW_CLI_TEST_ENGINE"); s != "" {
			opts.Engine = s
		}
		ctx, stop := signalContext()
		code := cli.Run(ctx, opts, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// testNCC is the NCC's server in process, with connection counts the test
// sets by destination address ("ip:port").
type testNCC struct {
	srv   *ncc.Server
	mu    sync.Mutex
	conns map[string]uint32
}

func (c *testNCC) Apply(ctx context.Context, in *nccpb.ApplyRequest, _ ...grpc.CallOption) (*nccpb.ApplyResponse, error) {
	return c.srv.Apply(ctx, in)
}

func (c *testNCC) GetState(ctx context.Context, in *nccpb.GetStateRequest, _ ...grpc.CallOption) (*nccpb.GetStateResponse, error) {
	r, err := c.srv.GetState(ctx, in)
	if err != nil {
		return nil, err
	}
	r = proto.Clone(r).(*nccpb.GetStateResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range r.GetState().GetServices() {
		if s.Stats == nil {
			s.Stats = &nccpb.Stats{}
		}
		for _, d := range s.Destinations {
			n := c.conns[hostPort(d.Address, d.Port)]
			d.ActiveConnections = n
			if d.Stats == nil {
				d.Stats = &nccpb.Stats{}
			}
			d.Stats.Connections += uint64(n)
			s.Stats.Connections += uint64(n)
		}
	}
	return r, nil
}

func (c *testNCC) Announce(ctx context.Context, in *nccpb.AnnounceRequest, _ ...grpc.CallOption) (*nccpb.AnnounceResponse, error) {
	return c.srv.Announce(ctx, in)
}

func (c *testNCC) setConns(addr string, n uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conns[addr] = n
}

func hostPort(a string, p uint32) string {
	if strings.Contains(a, ":") {
		return fmt.Sprintf("[%s]:%d", a, p)
	}
	return fmt.Sprintf("%s:%d", a, p)
}

// testHC plays the healthcheck process: it takes the engine's checks and
// reports each one's health; it also answers the engine's ListChecks with
// the history of what it reported.
type testHC struct {
	mu      sync.Mutex
	checks  map[uint64]*hcpb.Check
	history map[uint64][]*hcpb.Result
	unwell  map[string]string // backend address -> message: its checks fail
	send    func(*hcpb.Results) error
	now     time.Time
}

func (h *testHC) ListChecks(_ context.Context, in *hcpb.ListChecksRequest, _ ...grpc.CallOption) (*hcpb.ListChecksResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := &hcpb.ListChecksResponse{}
	for _, id := range in.Ids {
		c := h.checks[id]
		if c == nil {
			continue
		}
		cs := &hcpb.CheckStatus{Check: c, History: h.history[id]}
		for _, x := range cs.History {
			if x.Success {
				cs.Successes++
			} else {
				cs.Failures++
			}
		}
		r.Checks = append(r.Checks, cs)
	}
	return r, nil
}

// report sends one result for every check, healthy unless its backend is
// unwell.
func (h *testHC) report() error {
	h.mu.Lock()
	rs := &hcpb.Results{}
	h.now = h.now.Add(5 * time.Second)
	for id, c := range h.checks {
		msg, bad := h.unwell[c.Address]
		if !bad {
			msg = "OK"
		}
		r := &hcpb.Result{Id: id, Healthy: !bad, Success: !bad, Message: msg,
			Time: timestamppb.New(h.now), Duration: durationpb.New(1500 * time.Microsecond)}
		h.history[id] = append(h.history[id], r)
		rs.Results = append(rs.Results, r)
	}
	send := h.send
	h.mu.Unlock()
	if send == nil {
		return nil
	}
	return send(rs)
}

func (h *testHC) setUnwell(addr, msg string) {
	h.mu.Lock()
	if msg == "" {
		delete(h.unwell, addr)
	} else {
		h.unwell[addr] = msg
	}
	h.mu.Unlock()
}

// testEngine is a running engine and its socket.
type testEngine struct {
	t      *testing.T
	sock   string
	dir    string
	cfg    string // seesaw.cfg
	cl     string // cluster.pb
	e      *engine.Engine
	ipvs   *ipvstest.Kernel
	ncc    *testNCC
	hc     *testHC
	relinq chan string // HA's relinquish requests
	haSend func(*hapb.Report) error
}

// now is the tests' clock for the CLI's ages: a minute after the
// healthcheck's clock started.
func (te *testEngine) now() time.Time { return testEpoch.Add(time.Minute) }

var testEpoch = time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)

// startEngine runs an engine on the sample config (deploy/samples) as
// master with every check healthy.
func startEngine(t *testing.T) *testEngine {
	t.Helper()
	return startEngineWith(t, "")
}

// startEngineWith is startEngine with more of cluster.pb.
func startEngineWith(t *testing.T, extra string) *testEngine {
	t.Helper()
	dir, err := os.MkdirTemp("", "seesaw-cli-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Others (the test's other user) must reach the socket's directory.
	must(t, os.Chmod(dir, 0o755))
	te := &testEngine{t: t, dir: dir, sock: filepath.Join(dir, "engine", "engine.sock"), relinq: make(chan string, 4)}
	te.cfg, te.cl = filepath.Join(dir, "seesaw.cfg"), filepath.Join(dir, "cluster.pb")
	for _, f := range [][2]string{{"../deploy/samples/seesaw.cfg", te.cfg}, {"../deploy/samples/cluster.pb", te.cl}} {
		b, err := os.ReadFile(f[0])
		must(t, err)
		if f[1] == te.cl {
			b = append(b, extra...)
		}
		must(t, os.WriteFile(f[1], b, 0o644))
	}

	ik := ipvstest.New()
	nk := netconftest.New(netconftest.IPVSSysctls())
	fk := nfttest.New()
	nk.AddPhysical("eth0", net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 1}, true)
	nk.AddPhysical("eth1", net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 2}, true)
	must(t, nk.AddAddr("eth0", netip.MustParsePrefix("192.0.2.2/24")))
	must(t, nk.AddAddr("eth0", netip.MustParsePrefix("2001:db8:0:1::2/64")))
	srv := ncc.NewServer(ncc.Config{
		IPVS:   func() (reconcile.IPVS, error) { return ik.Client() },
		Net:    func() (netconf.Kernel, error) { return nk, nil },
		NFT:    func() (*nft.Reconciler, error) { return fk.Reconciler(nil) },
		Sender: func() (ncc.FrameSender, error) { return discard{}, nil },
	})
	t.Cleanup(srv.Close)
	te.ipvs = ik
	te.ncc = &testNCC{srv: srv, conns: map[string]uint32{}}
	te.hc = &testHC{checks: map[uint64]*hcpb.Check{}, history: map[uint64][]*hcpb.Result{}, unwell: map[string]string{},
		now: testEpoch}

	// The groups' names as the engine's flags would give them (the test's
	// policy below uses their ids: no such groups exist on this host).
	te.e = engine.New(engine.Config{Socket: te.sock, EngineConf: te.cfg, ClusterConf: te.cl, WatchInterval: -1,
		AdminGroup: "seesaw-admin", ReaderGroup: "seesaw",
		RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	te.e.SetNCC(te.ncc)
	te.e.SetHealthcheck(te.hc)
	must(t, te.e.Reload())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { te.e.Loop(ctx) })
	s, err := ipc.NewServer(ipc.ServerOptions{
		Path: te.sock, GID: readerGID,
		Policy: ipc.Policy{Read: ipc.Rule{GIDs: []uint32{readerGID, adminGID}}, Write: ipc.Rule{GIDs: []uint32{adminGID}}},
	})
	must(t, err)
	te.e.Register(s)
	wg.Go(func() { s.Serve(ctx, time.Second) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	// HA and healthcheck, over their sessions on the socket.
	cc, err := ipc.Dial(te.sock, ipc.DialOptions{})
	must(t, err)
	t.Cleanup(func() { cc.Close() })
	ec := enginepb.NewEngineClient(cc)
	ha, err := ec.HASession(ctx)
	must(t, err)
	te.haSend = ha.Send
	must(t, ha.Send(&hapb.Report{Report: &hapb.Report_Transition{Transition: &hapb.Transition{
		From: seesawpb.HAState_HA_STATE_BACKUP, To: seesawpb.HAState_HA_STATE_LEADER, Reason: "test"}}}))
	go func() {
		for {
			c, err := ha.Recv()
			if err != nil {
				return
			}
			if r := c.GetRelinquish(); r != nil {
				te.relinq <- r.Reason
			}
		}
	}()
	hs, err := ec.HealthcheckSession(ctx)
	must(t, err)
	te.hc.send = hs.Send
	gotChecks := make(chan struct{}, 1)
	go func() {
		for {
			set, err := hs.Recv()
			if err != nil {
				return
			}
			te.hc.mu.Lock()
			if set.Full {
				clear(te.hc.checks)
			}
			for _, c := range set.Upsert {
				te.hc.checks[c.Id] = c
			}
			for _, id := range set.Remove {
				delete(te.hc.checks, id)
			}
			te.hc.mu.Unlock()
			select {
			case gotChecks <- struct{}{}:
			default:
			}
		}
	}()
	<-gotChecks
	must(t, te.hc.report())
	te.waitFor("every service in IPVS with its destinations", func() bool {
		return strings.Count(ik.Save(), "-a ") >= 6
	})
	return te
}

type discard struct{}

func (discard) Send(int, ...[]byte) error { return nil }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (te *testEngine) waitFor(what string, cond func() bool) {
	te.t.Helper()
	end := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			te.t.Fatalf("%s: never happened; IPVS holds:\n%s", what, te.ipvs.Save())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// run runs the CLI in process against the engine: stdout, stderr, status.
func (te *testEngine) run(args ...string) (string, string, int) {
	te.t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), cli.Options{Name: "seesaw", Engine: te.sock, Now: te.now}, args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM)
}
