package engine

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/testenv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

func TestMain(m *testing.M) {
	flag.Set("logtostderr", "true")
	os.Exit(m.Run())
}

// clock is a settable time for the engine.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var (
	t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = t0.Add(time.Hour)
	t2 = t1.Add(time.Hour)
)

func TestReloadKeepsRunningConfigOnError(t *testing.T) {
	cfgPath, clPath := copyGKE(t)
	clk := &clock{t: t0}
	e := New(Config{EngineConf: cfgPath, ClusterConf: clPath, Now: clk.now})
	ctx := context.Background()
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	cl, err := e.ClusterStatus(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Site != "bundled-seesaw-onprem" || len(cl.Nodes) != 2 || cl.Version != ipc.Version {
		t.Fatalf("ClusterStatus = %v", cl)
	}
	if n := cl.Nodes[0]; !n.ThisNode || n.Priority != 255 || n.Ipv4 != "203.0.113.2" || !n.HaEnabled {
		t.Errorf("this node %v", n)
	}
	if n := cl.Nodes[1]; n.ThisNode || n.Priority != 254 || n.Fqdn != "node.203.0.113.3." {
		t.Errorf("peer node %v", n)
	}
	if cl.HaState != seesawpb.HAState_HA_STATE_UNKNOWN {
		t.Errorf("HA state without HA: %v", cl.HaState)
	}

	// A syntax error: rejected whole, with file:line:col, and the running
	// config keeps serving.
	good, _ := os.ReadFile(clPath)
	bad := strings.Replace(string(good), "fqdn:", "fqdnx:", 1)
	os.WriteFile(clPath, []byte(bad), 0o644)
	clk.set(t1)
	if err := e.Reload(); err == nil {
		t.Fatal("a broken cluster.pb was accepted")
	}
	st, err := e.ConfigStatus(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(clPath) + `:\d+:\d+: `).MatchString(st.LastError) {
		t.Errorf("last error %q does not name file:line:col", st.LastError)
	}
	if !st.LastErrorTime.AsTime().Equal(t1) || !st.Loaded.AsTime().Equal(t0) || st.Source != "disk" {
		t.Errorf("ConfigStatus after rejection: %v", st)
	}
	if cl, err := e.ClusterStatus(ctx, nil); err != nil || cl.Site != "bundled-seesaw-onprem" {
		t.Errorf("the running config stopped serving: %v, %v", cl, err)
	}
	comp := e.Component().Snapshot()
	if f, _ := e.Component().Facility("config"); !f.Available {
		t.Errorf("config facility went down on a rejected reload: %v", f)
	}
	if len(comp.Warnings) != 1 || !strings.Contains(comp.Warnings[0], "config rejected") {
		t.Errorf("status warnings %q", comp.Warnings)
	}

	// A config that parses but does not fit this node is rejected too.
	os.WriteFile(clPath, good, 0o644)
	cfg, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(cfg), "node_ipv4 = 203.0.113.2", "node_ipv4 = 203.0.113.9", 1)), 0o644)
	if _, err := e.ConfigReload(ctx, nil); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "203.0.113.9") {
		t.Errorf("ConfigReload with a foreign node: %v", err)
	}
	if st, _ := e.ConfigStatus(ctx, nil); !strings.Contains(st.LastError, cfgPath+":") {
		t.Errorf("last error %q does not name seesaw.cfg", st.LastError)
	}

	// Fixed: the new config is loaded and the rejection is cleared.
	os.WriteFile(cfgPath, cfg, 0o644)
	clk.set(t2)
	if _, err := e.ConfigReload(ctx, nil); err != nil {
		t.Fatal(err)
	}
	st, _ = e.ConfigStatus(ctx, nil)
	if st.LastError != "" || !st.Loaded.AsTime().Equal(t2) {
		t.Errorf("after a good reload: %v", st)
	}
	if w := e.Component().Snapshot().Warnings; len(w) != 0 {
		t.Errorf("warnings after a good reload: %q", w)
	}
}

func TestStartsWithoutConfig(t *testing.T) {
	dir := t.TempDir()
	e := New(Config{EngineConf: filepath.Join(dir, "seesaw.cfg"), ClusterConf: filepath.Join(dir, "cluster.pb")})
	if err := e.Reload(); err == nil {
		t.Fatal("missing files accepted")
	}
	ctx := context.Background()
	if _, err := e.ClusterStatus(ctx, nil); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "no config loaded") {
		t.Errorf("ClusterStatus without config: %v", err)
	}
	st, err := e.ConfigStatus(ctx, nil)
	if err != nil || !strings.Contains(st.LastError, "seesaw.cfg") || st.Loaded != nil {
		t.Errorf("ConfigStatus without config: %v, %v", st, err)
	}
	if f, _ := e.Component().Facility("config"); f.Available || !strings.Contains(f.Detail, "no config loaded") {
		t.Errorf("config facility %v", f)
	}
}

func TestConfigSource(t *testing.T) {
	cfgPath, clPath := copyGKE(t)
	e := New(Config{EngineConf: cfgPath, ClusterConf: clPath})
	ctx := context.Background()
	if r, err := e.ConfigSource(ctx, &enginepb.ConfigSourceRequest{}); err != nil || r.Source != "disk" {
		t.Errorf("get: %v, %v", r, err)
	}
	if _, err := e.ConfigSource(ctx, &enginepb.ConfigSourceRequest{Source: "disk"}); err != nil {
		t.Errorf("set disk: %v", err)
	}
	if _, err := e.ClusterStatus(ctx, nil); err != nil {
		t.Errorf("setting the source did not load the config: %v", err)
	}
	// The other sources are set even when their first pull fails (no CA,
	// no peer): the running config keeps serving.
	prev := "disk"
	for _, src := range []string{"peer", "server", "none"} {
		r, err := e.ConfigSource(ctx, &enginepb.ConfigSourceRequest{Source: src})
		if err != nil || r.Source != src || r.Previous != prev || (src != "none") != (r.ReloadError != "") {
			t.Errorf("set %s: %v, %v", src, r, err)
		}
		prev = src
	}
	if _, err := e.ConfigSource(ctx, &enginepb.ConfigSourceRequest{Source: "floppy"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("set floppy: %v", err)
	}
	if _, err := e.ClusterStatus(ctx, nil); err != nil {
		t.Errorf("a failed pull dropped the config: %v", err)
	}
}

// serveEngine serves e on a socket in a temporary directory, letting any
// local user in, and returns a client connection to it.
func serveEngine(t *testing.T, e *Engine) *grpc.ClientConn {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "engine.sock")
	all := ipc.Rule{Anyone: true}
	s, err := ipc.NewServer(ipc.ServerOptions{Path: sock, Policy: ipc.Policy{Read: all, Write: all, Internal: all}})
	if err != nil {
		t.Fatal(err)
	}
	e.Register(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, 100*time.Millisecond) }()
	cc, err := ipc.Dial(sock, ipc.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		cancel()
		<-done
	})
	return cc
}

func TestHASession(t *testing.T) {
	cfgPath, clPath := copyGKE(t)
	e := New(Config{EngineConf: cfgPath, ClusterConf: clPath})
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	cc := serveEngine(t, e)
	eng := enginepb.NewEngineClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := eng.Failover(ctx, &enginepb.FailoverRequest{}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "no HA session") {
		t.Errorf("Failover without HA: %v", err)
	}
	hs, err := eng.HAStatus(ctx, &enginepb.HAStatusRequest{})
	if err != nil || hs.State != seesawpb.HAState_HA_STATE_UNKNOWN || len(hs.Facilities) != 1 {
		t.Errorf("HAStatus without HA: %v, %v", hs, err)
	}

	sctx, scancel := context.WithCancel(ctx)
	stream, err := eng.HASession(sctx)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if c := cmd.GetConfig(); c == nil || c.Vrid != 128 || c.Priority != 255 || !c.Enabled {
		t.Fatalf("first command %v, want the HA config", cmd)
	}
	stream.Send(&hapb.Report{Report: &hapb.Report_Transition{Transition: &hapb.Transition{
		From: seesawpb.HAState_HA_STATE_UNKNOWN, To: seesawpb.HAState_HA_STATE_DISABLED, Reason: "test"}}})
	stream.Send(&hapb.Report{Report: &hapb.Report_Status{Status: &hapb.Status{
		State: seesawpb.HAState_HA_STATE_DISABLED, AdvertsSent: 7, Transitions: 1}}})
	for {
		hs, err := eng.HAStatus(ctx, &enginepb.HAStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if hs.AdvertsSent == 7 {
			if hs.State != seesawpb.HAState_HA_STATE_DISABLED || hs.LastUpdate == nil || len(hs.Facilities) != 0 {
				t.Errorf("HAStatus %v", hs)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("HA's report never reached HAStatus")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if cl, _ := eng.ClusterStatus(ctx, &enginepb.ClusterStatusRequest{}); cl.HaState != seesawpb.HAState_HA_STATE_DISABLED {
		t.Errorf("ClusterStatus HA state %v", cl.HaState)
	}

	// Failover is for the master.
	if _, err := eng.Failover(ctx, &enginepb.FailoverRequest{}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "not the master") {
		t.Errorf("Failover on a node that is not master: %v", err)
	}
	stream.Send(&hapb.Report{Report: &hapb.Report_Transition{Transition: &hapb.Transition{
		From: seesawpb.HAState_HA_STATE_BACKUP, To: seesawpb.HAState_HA_STATE_LEADER, Reason: "test"}}})
	for e.haStateNow() != seesawpb.HAState_HA_STATE_LEADER {
		if ctx.Err() != nil {
			t.Fatal("the LEADER transition never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// On the master it reaches HA as a relinquish request.
	if r, err := eng.Failover(ctx, &enginepb.FailoverRequest{}); err != nil || r.Message == "" {
		t.Fatalf("Failover: %v, %v", r, err)
	}
	if cmd, err := stream.Recv(); err != nil || cmd.GetRelinquish() == nil {
		t.Fatalf("after Failover HA got %v, %v", cmd, err)
	}

	// A reloaded config with another VRID reaches HA.
	cfg, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(cfg), "vrid = 128", "vrid = 129", 1)), 0o644)
	if _, err := eng.ConfigReload(ctx, &enginepb.ConfigReloadRequest{}); err != nil {
		t.Fatal(err)
	}
	if cmd, err := stream.Recv(); err != nil || cmd.GetConfig().GetVrid() != 129 {
		t.Fatalf("after reload HA got %v, %v", cmd, err)
	}
	// A reload that changes nothing for HA sends nothing.
	if _, err := eng.ConfigReload(ctx, &enginepb.ConfigReloadRequest{}); err != nil {
		t.Fatal(err)
	}

	// A second HA session replaces the first.
	stream2, err := eng.HASession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cmd, err := stream2.Recv(); err != nil || cmd.GetConfig().GetVrid() != 129 {
		t.Fatalf("second session got %v, %v", cmd, err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Aborted {
		t.Errorf("first session after being replaced: %v, want Aborted (and no second config)", err)
	}
	scancel()

	// HA going away does not change the state by itself (30 s of silence
	// does; TestHAStateTimesOut), but the status says there is no session.
	stream2.CloseSend()
	if _, err := stream2.Recv(); err == nil {
		t.Fatal("session did not end")
	}
	for {
		hs, _ := eng.HAStatus(ctx, &enginepb.HAStatusRequest{})
		if len(hs.GetFacilities()) == 1 {
			if hs.GetState() != seesawpb.HAState_HA_STATE_LEADER {
				t.Errorf("HA state after the session ended: %v, want the last reported until the timeout", hs.GetState())
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("HAStatus never said the session ended: %v", hs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHAStateTimesOut(t *testing.T) {
	cfgPath, clPath := copyGKE(t)
	clk := &clock{t: t0}
	e := New(Config{EngineConf: cfgPath, ClusterConf: clPath, Now: clk.now})
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	e.ha = &haSession{}
	e.recordHA(&hapb.Report{Report: &hapb.Report_Status{Status: &hapb.Status{State: seesawpb.HAState_HA_STATE_BACKUP}}})
	if s := e.haStateNow(); s != seesawpb.HAState_HA_STATE_BACKUP {
		t.Fatalf("state %v", s)
	}
	clk.set(t0.Add(29 * time.Second))
	if s := e.haStateNow(); s != seesawpb.HAState_HA_STATE_BACKUP {
		t.Errorf("state after 29s of silence: %v", s)
	}
	clk.set(t0.Add(31 * time.Second))
	if s := e.haStateNow(); s != seesawpb.HAState_HA_STATE_UNKNOWN {
		t.Errorf("state after 31s of silence: %v, want UNKNOWN", s)
	}
}

func TestHealthcheckSession(t *testing.T) {
	cfgPath, clPath := copyGKE(t)
	r := newRig(t, cfgPath, clPath, nil)
	e := r.e
	cc := serveEngine(t, e)
	eng := enginepb.NewEngineClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := eng.HealthcheckSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !cs.Full || len(cs.Upsert) != 7 {
		t.Fatalf("check set: full=%v %d checks, want a full set of 7", cs.Full, len(cs.Upsert))
	}
	stream.Send(&hcpb.Results{})
	stream.Send(&hcpb.Results{Results: []*hcpb.Result{{Id: cs.Upsert[0].Id, Healthy: true, Success: true}}})
	for {
		st := e.Component().Snapshot()
		if st.Details["check_results"] == "1" {
			if st.Details["healthcheck_sessions"] != "1" || st.Details["checks"] != "7" {
				t.Errorf("details %v", st.Details)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("result never recorded: %v", st.Details)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A reload that drops a vserver's backends sends the new full set.
	cl, _ := os.ReadFile(clPath)
	os.WriteFile(clPath, []byte(strings.Replace(string(cl), `fqdn: "user-3"`, `fqdn: "user-3"
status: PROPOSED`, 1)), 0o644)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	cs, err = stream.Recv()
	if err != nil || !cs.Full || len(cs.Upsert) != 6 {
		t.Fatalf("after reload: %d checks, %v; want a full set of 6", len(cs.GetUpsert()), err)
	}
}

func TestRunFindsNCCLater(t *testing.T) {
	cfgPath, clPath := copyGKE(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "engine", "engine.sock")
	nccSock := filepath.Join(dir, "ncc", "ncc.sock")
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Socket: sock, NCCSocket: nccSock, EngineConf: cfgPath, ClusterConf: clPath,
			ReaderGroup: "", DaemonUsers: "root", Reload: hup, NCCPollInterval: 20 * time.Millisecond})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testenv.RequireRoot(t) // the engine's default policy answers root only
	cc, err := ipc.Dial(sock, ipc.DialOptions{MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	deadline, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()
	waitFacility := func(name string, want bool) {
		t.Helper()
		for {
			st, err := seesawpb.NewComponentClient(cc).Status(deadline, &seesawpb.StatusRequest{}, grpc.WaitForReady(true))
			if err == nil {
				for _, f := range st.Facilities {
					if f.Name == name && f.Available == want {
						return
					}
				}
			}
			if deadline.Err() != nil {
				t.Fatalf("facility %s never became available=%v: %v %v", name, want, st, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFacility("config", true)
	waitFacility("ncc", false)

	// An NCC appears: the engine finds it without a restart.
	ns, err := ipc.NewServer(ipc.ServerOptions{Path: nccSock, Policy: ipc.RootOnly})
	if err != nil {
		t.Fatal(err)
	}
	seesawpb.RegisterComponentServer(ns, ipc.NewComponent("ncc"))
	nctx, ncancel := context.WithCancel(context.Background())
	ndone := make(chan error, 1)
	go func() { ndone <- ns.Serve(nctx, 100*time.Millisecond) }()
	waitFacility("ncc", true)
	ncancel()
	<-ndone
	waitFacility("ncc", false)

	// SIGHUP re-reads the config: a broken one is rejected and reported.
	os.WriteFile(clPath, []byte("node: <\n"), 0o644)
	hup <- os.Interrupt
	for {
		st, err := enginepb.NewEngineClient(cc).ConfigStatus(deadline, &enginepb.ConfigStatusRequest{})
		if err == nil && st.LastError != "" {
			if !strings.Contains(st.LastError, clPath) || st.Loaded == nil {
				t.Errorf("after SIGHUP with a broken config: %v", st)
			}
			break
		}
		if deadline.Err() != nil {
			t.Fatalf("SIGHUP did not reload: %v %v", st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
