package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/config"
	gen "github.com/seesawlb/seesaw/engine/config/configtest"
	"github.com/seesawlb/seesaw/ncc"
	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/ipvs/ipvstest"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/netconf/netconftest"
	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/nft/nfttest"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// The rig: an engine driving a real NCC (its server, in process) over the
// NCC's wire-level fake kernels, so that "config, checks and HA in, kernel
// text out" runs anywhere, unprivileged.

// fakeKernel is the fakes an NCC runs on.
type fakeKernel struct {
	ipvs    *ipvstest.Kernel
	net     *netconftest.Kernel
	nftK    *nfttest.Kernel
	openNFT func() (*nft.Reconciler, error)
}

func newFakeKernel(ifaces ...string) *fakeKernel {
	k := &fakeKernel{
		ipvs: ipvstest.New(),
		net:  netconftest.New(netconftest.IPVSSysctls()),
	}
	k.nftK, k.openNFT = newNFTFake()
	for i, name := range ifaces {
		k.net.AddPhysical(name, net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, byte(i + 1)}, true)
	}
	return k
}

// text is what the kernel holds, for failure messages and comparisons.
func (k *fakeKernel) text() string {
	return "== ipvs\n" + k.ipvs.String() + "== net\n" + k.net.String() + "== nft\n" + k.nftK.String()
}

// writes counts the kernel writes of every fake.
func (k *fakeKernel) writes() int { return k.ipvs.Writes() + k.net.Writes() + k.nftK.Writes() }

// testNCC is an NCC in process: its server over fake kernels, called
// through the NCC's client interface. It counts calls and can be told to
// fail them, as an NCC that has gone away does.
type testNCC struct {
	srv       *ncc.Server
	applies   atomic.Int64
	announces atomic.Int64
	down      atomic.Bool
	mu        sync.Mutex
	onApply   func(*nccpb.ApplyRequest)
	// onState edits GetState's answers (the kernel's counters).
	onState func(*nccpb.GetStateResponse)
}

func newTestNCC(t testing.TB, k *fakeKernel) *testNCC {
	srv := ncc.NewServer(ncc.Config{
		IPVS:   func() (reconcile.IPVS, error) { return k.ipvs.Client() },
		Net:    func() (netconf.Kernel, error) { return k.net, nil },
		NFT:    k.openNFT,
		Sender: func() (ncc.FrameSender, error) { return discard{}, nil },
	})
	t.Cleanup(srv.Close)
	return &testNCC{srv: srv}
}

type discard struct{}

func (discard) Send(int, ...[]byte) error { return nil }

var errNCCDown = errors.New("connection refused (the test's NCC is down)")

func (c *testNCC) Apply(ctx context.Context, in *nccpb.ApplyRequest, _ ...grpc.CallOption) (*nccpb.ApplyResponse, error) {
	if c.down.Load() {
		return nil, errNCCDown
	}
	if !in.DryRun {
		c.applies.Add(1)
	}
	c.mu.Lock()
	f := c.onApply
	c.mu.Unlock()
	if f != nil {
		f(in)
	}
	return c.srv.Apply(ctx, in)
}

func (c *testNCC) GetState(ctx context.Context, in *nccpb.GetStateRequest, _ ...grpc.CallOption) (*nccpb.GetStateResponse, error) {
	if c.down.Load() {
		return nil, errNCCDown
	}
	resp, err := c.srv.GetState(ctx, in)
	c.mu.Lock()
	f := c.onState
	c.mu.Unlock()
	if err == nil && f != nil {
		f(resp)
	}
	return resp, err
}

func (c *testNCC) Announce(ctx context.Context, in *nccpb.AnnounceRequest, _ ...grpc.CallOption) (*nccpb.AnnounceResponse, error) {
	if c.down.Load() {
		return nil, errNCCDown
	}
	c.announces.Add(1)
	return c.srv.Announce(ctx, in)
}

// rig is an engine with its loop running against a testNCC.
type rig struct {
	t        testing.TB
	e        *Engine
	k        *fakeKernel
	ncc      *testNCC
	cfg, cl  string
	stop     func()
	deadline time.Duration
}

type rigOption func(*Config)

// newRig starts an engine on the config files (copied to a directory of
// the test's own) with its loop and a fresh fake kernel, or k when given.
func newRig(t testing.TB, cfgPath, clPath string, k *fakeKernel, opts ...rigOption) *rig {
	t.Helper()
	if k == nil {
		k = newFakeKernel("eth0", "eth1", "ens192", "ens224")
	}
	c := Config{EngineConf: cfgPath, ClusterConf: clPath, WatchInterval: -1, RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	for _, o := range opts {
		o(&c)
	}
	r := &rig{t: t, k: k, cfg: cfgPath, cl: clPath, deadline: 20 * time.Second}
	k.nodeAddrs(t, cfgPath, clPath)
	r.ncc = newTestNCC(t, k)
	r.start(c)
	return r
}

// nodeAddrs gives the node interface this node's addresses, as the host
// has them before the appliance starts.
func (k *fakeKernel) nodeAddrs(t testing.TB, cfgPath, clPath string) {
	t.Helper()
	res := config.Check(cfgPath, clPath)
	if res.ThisNode == nil {
		return
	}
	for _, p := range []netip.Prefix{res.ThisNode.IPv4, res.ThisNode.IPv6} {
		if p.IsValid() {
			if err := k.net.AddAddr(res.Engine.NodeInterface, p); err != nil {
				t.Fatalf("%s: %v", res.Engine.NodeInterface, err)
			}
		}
	}
}

func (r *rig) start(c Config) {
	r.t.Helper()
	r.e = New(c)
	r.e.SetNCC(r.ncc)
	if err := r.e.Reload(); err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.e.Loop(ctx)
	}()
	r.stop = func() {
		cancel()
		<-done
	}
	r.t.Cleanup(r.stop)
}

// restart stops the engine and starts a new one on the same kernel, NCC
// and files (and state file).
func (r *rig) restart() {
	r.t.Helper()
	c := r.e.cfg
	r.stop()
	r.start(c)
}

// waitFor polls cond until it holds, failing the test with what with
// says at the deadline.
func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	end := time.Now().Add(r.deadline)
	for !cond() {
		if time.Now().After(end) {
			r.t.Fatalf("%s: never happened; the kernel holds:\n%s", what, r.k.text())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settle waits until the loop has applied the state it computed last and
// has nothing more to do.
func (r *rig) settle() {
	r.t.Helper()
	r.waitFor("the engine settling", func() bool {
		r.e.mu.Lock()
		defer r.e.mu.Unlock()
		return r.e.plan != nil && r.e.apply.applied != nil && r.e.stepped.Load() == r.e.wakes.Load() && r.e.apply.failures == 0 &&
			r.e.cur != nil && r.e.plan.Model.Cluster == r.e.cur.res.Cluster && r.e.planOvGen == r.e.ovGen &&
			proto.Equal(r.e.plan.Desired, r.e.apply.applied)
	})
}

// ha reports an HA transition, as the HA process does.
func (r *rig) ha(from, to seesawpb.HAState) {
	r.e.recordHA(&hapb.Report{Report: &hapb.Report_Transition{Transition: &hapb.Transition{From: from, To: to, Reason: "test"}}})
}

// results reports every check of the running config whose name contains
// match (all with ""), with the given health.
func (r *rig) results(match string, healthy bool) int {
	r.t.Helper()
	r.waitFor("a check set", func() bool {
		r.e.mu.Lock()
		defer r.e.mu.Unlock()
		return r.e.checks != nil
	})
	r.e.mu.Lock()
	var rs []*hcpb.Result
	for _, c := range r.e.checks.Upsert {
		if strings.Contains(c.Name, match) {
			msg := "ok"
			if !healthy {
				msg = "connection refused"
			}
			rs = append(rs, &hcpb.Result{Id: c.Id, Healthy: healthy, Success: healthy, Message: msg})
		}
	}
	r.e.mu.Unlock()
	r.e.recordResults(&hcpb.Results{Results: rs})
	return len(rs)
}

// fixture writes a seesaw.cfg and a cluster.pb into a temporary directory.
func fixture(t testing.TB, seesawCfg, clusterPb string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	cfg, cl := filepath.Join(dir, "seesaw.cfg"), filepath.Join(dir, "cluster.pb")
	if err := os.WriteFile(cfg, []byte(seesawCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cl, []byte(clusterPb), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, cl
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ipvsLines are the lines of `ipvsadm -Sn` the fake kernel gives.
func (k *fakeKernel) ipvsLines() []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(k.ipvs.Save()), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

var _ = fmt.Sprint
var _ = ipvs.FamilyName

// generatedConfig writes a generated cluster of n vservers of b backends
// (package gen) for node lb1 with LB interface eth1.
func generatedConfig(t testing.TB, n, b int) (string, string) {
	return fixture(t, gen.SeesawCfg("eth0", "eth1"), gen.Cluster(n, b, gen.Options{}))
}
