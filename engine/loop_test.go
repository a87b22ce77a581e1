package engine

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/seesawlb/seesaw/engine/dataplane"
	"github.com/seesawlb/seesaw/ncc/ipvs"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestEngineDrivesTheKernel: the GKE seed's config, HA and check results
// in, the kernel as the NCC's fakes hold it out.
func TestEngineDrivesTheKernel(t *testing.T) {
	cfg, cl := copyGKE(t)
	r := newRig(t, cfg, cl, nil)
	r.settle()
	// No result yet: no service is up; HA has said nothing: the LB
	// interface is down, with the cluster VIP and the VIPs on it.
	if got := r.k.ipvsLines(); len(got) != 0 {
		t.Errorf("IPVS before any check reported: %q", got)
	}
	if net := r.k.net.String(); !contains(net, "ens224 down", "203.0.113.4/25", "100.115.222.143/32") {
		t.Errorf("network before HA spoke:\n%s", net)
	}

	r.ha(unknown, backup)
	r.ha(backup, leader)
	r.results("", true)
	r.waitFor("every service with every destination", func() bool { return len(r.k.ipvsLines()) == 6+4*6-2 })
	r.settle()
	net := r.k.net.String()
	if !contains(net, "ens224 up 00:00:5e:00:01:80") {
		t.Errorf("the master's LB interface:\n%s", net)
	}
	if n := r.ncc.announces.Load(); n != 1 {
		t.Errorf("becoming master: %d Announce calls, want 1", n)
	}
	want := []string{
		"-A -t 100.115.222.143:443 -s wlc",
		"-a -t 100.115.222.143:443 -r 100.115.222.163:443 -g -w 1",
		"-A -t 100.115.222.145:80 -s wlc",
		"-a -t 100.115.222.145:80 -r 100.115.222.169:80 -g -w 1",
	}
	save := r.k.ipvs.Save()
	for _, w := range want {
		if !strings.Contains(save, w) {
			t.Errorf("IPVS lacks %q:\n%s", w, save)
		}
	}

	// One backend's check fails: its destinations leave IPVS, and that is
	// all that is written.
	r.e.mu.Lock()
	var id uint64
	var dests int
	for _, c := range r.e.checks.Upsert {
		if c.Address == "100.115.222.163" {
			id, dests = c.Id, len(r.e.model.CheckInfo[c.Id].Destinations)
		}
	}
	r.e.mu.Unlock()
	before := r.k.writes()
	r.e.recordResults(&hcpb.Results{Results: []*hcpb.Result{{Id: id, Message: "HTTP GET: connection refused"}}})
	r.waitFor("admin-1 out of IPVS", func() bool { return !strings.Contains(r.k.ipvs.Save(), "100.115.222.163") })
	r.settle()
	if got := r.k.writes() - before; got != dests {
		t.Errorf("one failed check: %d kernel writes, want %d (one per destination it decides)", got, dests)
	}

	// The master is demoted: the LB interface goes down; IPVS stays warm.
	r.ha(leader, backup)
	r.waitFor("the LB interface down", func() bool { return strings.Contains(r.k.net.String(), "ens224 down") })
	r.settle()
	if got := len(r.k.ipvsLines()); got != 6+4*6-2-4 {
		t.Errorf("IPVS on the backup: %d lines, want the same services as the master's", got)
	}
}

// TestBurstIsCoalesced: a thousand results at once are one or a few
// applies, not a thousand.
func TestBurstIsCoalesced(t *testing.T) {
	cfg, cl := generatedConfig(t, 100, 10)
	r := newRig(t, cfg, cl, nil)
	r.ha(unknown, leader)
	r.settle()
	before := r.ncc.applies.Load()
	n := r.results("", true)
	r.settle()
	applies := r.ncc.applies.Load() - before
	r.e.mu.Lock()
	want := len(r.e.plan.Desired.Services)
	r.e.mu.Unlock()
	if got := len(r.k.ipvs.Table()); got != want || want < 300 {
		t.Errorf("IPVS has %d services, want every one of the plan's %d", got, want)
	}
	t.Logf("%d results: %d applies", n, applies)
	if n < 1000 || applies > 3 {
		t.Errorf("%d results made %d applies, want at most 3", n, applies)
	}
}

// TestNCCAwayIsRetried: the engine keeps trying an NCC that does not
// answer, says so in its status, and applies once it answers.
func TestNCCAwayIsRetried(t *testing.T) {
	cfg, cl := copyGKE(t)
	k := newFakeKernel("ens192", "ens224")
	r := &rig{t: t, k: k, cfg: cfg, cl: cl, deadline: 20 * time.Second}
	r.ncc = newTestNCC(t, k)
	r.ncc.down.Store(true)
	r.start(Config{EngineConf: cfg, ClusterConf: cl, WatchInterval: -1, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	r.waitFor("a few failed attempts", func() bool {
		r.e.mu.Lock()
		defer r.e.mu.Unlock()
		return r.e.apply.failures >= 3
	})
	f := facility(r.e.Component().Snapshot(), "dataplane")
	if f == nil || f.Available || !strings.Contains(f.Detail, "retrying") {
		t.Errorf("dataplane facility while the NCC is away: %v", f)
	}
	r.ncc.down.Store(false)
	r.settle()
	if f := facility(r.e.Component().Snapshot(), "dataplane"); f == nil || !f.Available {
		t.Errorf("dataplane facility once the NCC answers: %v", f)
	}
	// A new NCC process gets the state again, even though it is the same.
	before := r.ncc.applies.Load()
	r.e.mu.Lock()
	r.e.resend = true
	r.e.mu.Unlock()
	r.e.wake()
	r.waitFor("the state sent again", func() bool { return r.ncc.applies.Load() > before })
}

func facility(st *seesawpb.ComponentStatus, name string) *seesawpb.Facility {
	for _, f := range st.Facilities {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// TestReloadWritesOnlyWhatChanged: a reload that changes nothing writes
// nothing; one that changes one backend's weight in one vserver writes
// that destination alone.
func TestReloadWritesOnlyWhatChanged(t *testing.T) {
	cfg, cl := copyGKE(t)
	r := gkeServing(t, cfg, cl)

	before := r.k.writes()
	must(t, r.e.Reload())
	r.settle()
	if got := r.k.writes() - before; got != 0 {
		t.Errorf("an unchanged reload: %d kernel writes, want 0", got)
	}

	b, _ := os.ReadFile(cl)
	s := string(b)
	// The first backend of the first vserver gets weight 5.
	i := strings.Index(s, `fqdn: "admin-1"`)
	j := i + strings.Index(s[i:], ">\n>")
	s = s[:j] + ">\nweight: 5\n>" + s[j+3:]
	must(t, os.WriteFile(cl, []byte(s), 0o644))
	before = r.k.writes()
	must(t, r.e.Reload())
	r.waitFor("the new weight", func() bool {
		return strings.Contains(r.k.ipvs.Save(), "-a -t 100.115.222.143:443 -r 100.115.222.163:443 -g -w 5")
	})
	r.settle()
	if got := r.k.writes() - before; got != 1 {
		t.Errorf("one changed weight: %d kernel writes, want 1", got)
	}

	// A changed check is a new check (a new id) that has not reported:
	// the destinations it decides keep their state until it does.
	s = strings.Replace(s, `send: "/healthz"`, `send: "/healthz"
interval: 3`, 1)
	must(t, os.WriteFile(cl, []byte(s), 0o644))
	before = r.k.writes()
	must(t, r.e.Reload())
	r.settle()
	if got := r.k.writes() - before; got != 0 {
		t.Errorf("a changed check's interval: %d kernel writes before it reported, want 0:\n%s", got, r.k.ipvs.Save())
	}
	r.results("100.115.222.163", false)
	r.waitFor("admin-1 out once its changed check fails", func() bool {
		return !strings.Contains(r.k.ipvs.Save(), "-a -t 100.115.222.143:443 -r 100.115.222.163:443")
	})
}

// TestConfigFileWatched: saving cluster.pb reloads it; a broken save is
// rejected and the running config keeps serving.
func TestConfigFileWatched(t *testing.T) {
	cfg, cl := copyGKE(t)
	r := newRig(t, cfg, cl, nil, func(c *Config) { c.WatchInterval = 10 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.e.watchConfig(ctx)
	r.ha(unknown, leader)
	r.results("", true)
	r.waitFor("every service", func() bool { return len(r.k.ipvs.Table()) == 6 })

	b, _ := os.ReadFile(cl)
	// Drop the last vserver (user-1-ingress-controller, 2 services).
	s := string(b)
	s = s[:strings.LastIndex(s, "vserver: <")]
	must(t, os.WriteFile(cl, []byte(s), 0o644))
	r.waitFor("the saved config applied", func() bool { return len(r.k.ipvs.Table()) == 4 })

	must(t, os.WriteFile(cl, []byte(s+"vserver: <\n"), 0o644))
	r.waitFor("the broken config rejected", func() bool {
		st, _ := r.e.ConfigStatus(ctx, &enginepb.ConfigStatusRequest{})
		return st.GetLastError() != ""
	})
	r.settle()
	if got := len(r.k.ipvs.Table()); got != 4 {
		t.Errorf("after a broken save IPVS has %d services, want the running config's 4", got)
	}
}

// TestOverrides: a vserver, a backend and a destination override apply at
// once, say who set them, and outlive the engine (the state file).
func TestOverrides(t *testing.T) {
	cfg, cl := copyGKE(t)
	state := t.TempDir() + "/state.pb"
	r := gkeServing(t, cfg, cl, func(c *Config) { c.StateFile = state })
	ctx := context.Background()

	set := func(req *enginepb.OverrideRequest) {
		t.Helper()
		if _, err := r.e.Override(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	set(&enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Vserver{Vserver: "admin-control-plane"}, State: enginepb.OverrideState_OVERRIDE_DISABLED})
	r.waitFor("the vserver's VIP and service gone", func() bool {
		return !strings.Contains(r.k.ipvs.Save(), "100.115.222.143") && !strings.Contains(r.k.net.String(), "100.115.222.143")
	})
	set(&enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Backend{Backend: "admin-2"}, State: enginepb.OverrideState_OVERRIDE_DISABLED})
	r.waitFor("the backend gone everywhere", func() bool { return !strings.Contains(r.k.ipvs.Save(), "100.115.222.164") })
	set(&enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Destination{Destination: "user-1-ingress-controller/100.115.222.167:80/TCP"},
		State: enginepb.OverrideState_OVERRIDE_DISABLED})
	r.waitFor("the destination gone", func() bool {
		s := r.k.ipvs.Save()
		return !strings.Contains(s, "100.115.222.167:80") && strings.Contains(s, "100.115.222.167:443")
	})
	if _, err := r.e.Override(ctx, &enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Backend{Backend: "admin-9"}}); err == nil ||
		!strings.Contains(err.Error(), `no backend "admin-9"`) || !strings.Contains(err.Error(), "did you mean") {
		t.Errorf("override of an unknown backend: %v", err)
	}
	list, _ := r.e.Overrides(ctx, &enginepb.OverridesRequest{})
	if len(list.Overrides) != 3 || list.Overrides[0].Info.SetBy == "" || list.Overrides[0].Info.SetAt == nil {
		t.Errorf("overrides: %v", list)
	}
	r.settle()
	kernel := r.k.text()

	// A new engine (same state file) keeps them: the kernel stays as it is.
	r.restart()
	r.ha(unknown, leader)
	r.results("", true)
	r.settle()
	if got := r.k.text(); got != kernel {
		t.Errorf("after a restart the kernel differs:\n%s\nwas\n%s", got, kernel)
	}
	set(&enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Vserver{Vserver: "admin-control-plane"}, State: enginepb.OverrideState_OVERRIDE_DEFAULT})
	r.waitFor("the vserver back", func() bool { return strings.Contains(r.k.ipvs.Save(), "100.115.222.143") })
}

// TestRestartAdoptsTheKernel: a new engine, before any check has reported
// and before HA has spoken, changes nothing the kernel holds.
func TestRestartAdoptsTheKernel(t *testing.T) {
	cfg, cl := copyGKE(t)
	r := gkeServing(t, cfg, cl)
	kernel, before := r.k.text(), r.k.writes()

	r.restart()
	r.settle()
	if got := r.k.writes() - before; got != 0 {
		t.Errorf("a restarted engine wrote %d times before anything reported:\n%s\nwas\n%s", got, r.k.text(), kernel)
	}
	// Then the results come back as they were: still nothing to write.
	r.results("", true)
	r.ha(unknown, leader)
	r.settle()
	if got := r.k.writes() - before; got != 0 {
		t.Errorf("a restarted engine wrote %d times once the results came back", got)
	}
	// A result that differs is followed.
	r.results("100.115.222.165", false)
	r.waitFor("admin-3 out", func() bool { return !strings.Contains(r.k.ipvs.Save(), "100.115.222.165") })
}

// TestPlanRPC: a candidate config's changes, before it is applied.
func TestPlanRPC(t *testing.T) {
	cfg, cl := copyGKE(t)
	r := gkeServing(t, cfg, cl)
	ctx := context.Background()
	same, err := r.e.Plan(ctx, &enginepb.PlanRequest{})
	if err != nil || len(same.Changes) != 0 {
		t.Fatalf("plan of the running config: %v, %v", same.GetChanges(), err)
	}
	b, _ := os.ReadFile(cl)
	cand := strings.Replace(string(b), "port: 80\n", "port: 8080\n", 1)
	p, err := r.e.Plan(ctx, &enginepb.PlanRequest{ClusterPb: []byte(cand)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Changes {
		got = append(got, c.Op.String()+" "+c.Kind+" "+c.Object)
	}
	j := strings.Join(got, "\n")
	if !contains(j, "ADD ipvs-service", "100.115.222.144:8080", "DELETE ipvs-service", "100.115.222.144:80") {
		t.Errorf("plan of a changed port:\n%s", j)
	}
	if r.k.ipvs.Writes() == 0 || strings.Contains(r.k.ipvs.Save(), ":8080") {
		t.Error("the plan changed the kernel")
	}
	// A changed scheduler and forwarding mode are in-place updates: no
	// service or destination is deleted and added again.
	cand = strings.Replace(strings.Replace(string(b), "scheduler: WLC", "scheduler: RR", 1), "mode: DSR", "mode: NAT", 1)
	p, err = r.e.Plan(ctx, &enginepb.PlanRequest{ClusterPb: []byte(cand)})
	if err != nil {
		t.Fatal(err)
	}
	updates := 0
	for _, c := range p.Changes {
		if strings.HasPrefix(c.Kind, "ipvs-") {
			if c.Op != nccpb.Change_UPDATE {
				t.Errorf("a scheduler or mode change planned as %v %s %s", c.Op, c.Kind, c.Object)
			}
			updates++
		}
	}
	if updates == 0 {
		t.Errorf("a scheduler and mode change planned no IPVS update: %v", p.Changes)
	}
	if _, err := r.e.Plan(ctx, &enginepb.PlanRequest{ClusterPb: []byte("vserver: <")}); err == nil || !strings.Contains(err.Error(), "cluster.pb (candidate):1") {
		t.Errorf("plan of a broken config: %v", err)
	}
}

// TestStatusRPCs: what operators read, with the kernel's counters.
func TestStatusRPCs(t *testing.T) {
	cfg, cl := copyGKE(t)
	r := newRig(t, cfg, cl, nil)
	r.ha(unknown, leader)
	r.results("", true)
	r.results("100.115.222.166", false)
	r.waitFor("every service", func() bool { return len(r.k.ipvs.Table()) == 6 })
	r.settle()
	ctx := context.Background()
	vs, err := r.e.Vservers(ctx, &enginepb.VserversRequest{Name: "admin-control"})
	if err != nil || len(vs.Vservers) != 1 {
		t.Fatalf("Vservers: %v, %v", vs, err)
	}
	v := vs.Vservers[0]
	s := v.Services[0]
	if !v.Enabled || !s.Active || s.Scheduler != "wlc" || s.Mode != "DSR" || len(s.Destinations) != 4 || s.HealthyDestinations != 3 {
		t.Errorf("vserver %v", v)
	}
	for _, d := range s.Destinations {
		switch d.Name {
		case "admin-control-plane/100.115.222.166:443/TCP":
			if d.Healthy || d.InIpvs || len(d.FailingChecks) != 1 || !strings.Contains(d.FailingChecks[0], "HTTP/10256: connection refused") {
				t.Errorf("the failing destination: %v", d)
			}
		case "admin-control-plane/100.115.222.163:443/TCP":
			if !d.Healthy || !d.Active || d.Weight != 1 {
				t.Errorf("a healthy destination: %v", d)
			}
		}
	}
	bs, _ := r.e.Backends(ctx, &enginepb.BackendsRequest{Fqdn: "admin-4"})
	if len(bs.GetBackends()) != 1 || bs.Backends[0].HealthyDestinations != 0 || len(bs.Backends[0].Destinations) != 4 {
		t.Errorf("Backends: %v", bs)
	}
	cs, _ := r.e.Checks(ctx, &enginepb.ChecksRequest{Backend: "admin-4", WithHistory: true})
	if len(cs.GetChecks()) != 1 || cs.Checks[0].Name != "HTTP/10256" || cs.Checks[0].Healthy || len(cs.Checks[0].Destinations) != 4 ||
		!strings.Contains(cs.Checks[0].Note, "no history") {
		t.Errorf("Checks: %v", cs)
	}
	vl, _ := r.e.VLANs(ctx, &enginepb.VLANsRequest{})
	if len(vl.GetVlans()) != 0 {
		t.Errorf("VLANs: %v", vl)
	}
}

// TestDrainStatsFromTheKernel: the kernel's counters reach Vservers.
func TestStatsFromTheKernel(t *testing.T) {
	cfg, cl := copyGKE(t)
	r := gkeServing(t, cfg, cl)
	for _, vs := range r.k.ipvs.Table() {
		r.k.ipvs.SetStats(vs.Service.ServiceKey, ipvs.Stats{Connections: 42, PacketsIn: 420})
	}
	v, err := r.e.Vservers(context.Background(), &enginepb.VserversRequest{Name: "admin-ingress"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range v.Vservers[0].Services {
		if s.Stats.GetConnections() != 42 || s.Stats.GetPacketsIn() != 420 {
			t.Errorf("service %d: stats %v", s.Port, s.Stats)
		}
	}
}

var (
	_ = dataplane.Text
	_ = nccpb.Family_INET
)

// gkeServing is a rig on the GKE config (cfg, cl) with this node master and
// every check healthy, settled with its 6 services in IPVS.
func gkeServing(t *testing.T, cfg, cl string, opts ...rigOption) *rig {
	t.Helper()
	r := newRig(t, cfg, cl, nil, opts...)
	r.ha(unknown, leader)
	r.results("", true)
	r.waitFor("every service", func() bool { return len(r.k.ipvs.Table()) == 6 })
	r.settle()
	return r
}

// fakeHC is the healthcheck process's status service, with a history.
type fakeHC struct{ calls atomic.Int64 }

func (f *fakeHC) ListChecks(_ context.Context, req *hcpb.ListChecksRequest, _ ...grpc.CallOption) (*hcpb.ListChecksResponse, error) {
	f.calls.Add(1)
	resp := &hcpb.ListChecksResponse{}
	for _, id := range req.Ids {
		resp.Checks = append(resp.Checks, &hcpb.CheckStatus{Check: &hcpb.Check{Id: id}, Successes: 7, Failures: 2,
			History: []*hcpb.Result{{Id: id, Success: false, Message: "refused"}, {Id: id, Healthy: true, Success: true, Message: "ok"}}})
	}
	return resp, nil
}

// TestChecksHistory: Checks with_history asks the healthcheck process for
// the checks it reports, and hands back their history.
func TestChecksHistory(t *testing.T) {
	cfg, cl := copyGKE(t)
	r := gkeServing(t, cfg, cl)
	hc := &fakeHC{}
	r.e.SetHealthcheck(hc)
	cs, err := r.e.Checks(context.Background(), &enginepb.ChecksRequest{Vserver: "user-1-ingress", WithHistory: true})
	if err != nil {
		t.Fatal(err)
	}
	// user-1-ingress-controller's backends are user-1..3: one HTTP check each.
	if len(cs.Checks) != 3 || hc.calls.Load() != 1 {
		t.Fatalf("%d checks in %d calls: %v", len(cs.Checks), hc.calls.Load(), cs)
	}
	for _, c := range cs.Checks {
		if len(c.History) != 2 || c.Successes != 7 || c.Failures != 2 || c.Note != "" || !c.Known || !c.Healthy {
			t.Errorf("check %s of %s: %v", c.Name, c.Backend, c)
		}
		if len(c.Destinations) != 2 { // 80 and 443 of that vserver
			t.Errorf("check %s of %s decides %v", c.Name, c.Backend, c.Destinations)
		}
	}
}

// TestBadStateFile: a state file that does not parse is set aside and
// reported; the engine starts without its overrides and serves.
func TestBadStateFile(t *testing.T) {
	cfg, cl := copyGKE(t)
	state := t.TempDir() + "/state.pb"
	must(t, os.WriteFile(state, []byte("not a protobuf \xff\xff\xff"), 0o600))
	r := gkeServing(t, cfg, cl, func(c *Config) { c.StateFile = state })
	st := r.e.Component().Snapshot()
	if !strings.Contains(strings.Join(st.Warnings, "\n"), "state file "+state+" could not be read") {
		t.Errorf("warnings: %q", st.Warnings)
	}
	if _, err := os.Stat(state + ".bad"); err != nil {
		t.Errorf("the bad file was not set aside: %v", err)
	}
	// The next override writes a good one, which clears the warning.
	if _, err := r.e.Override(context.Background(), &enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Backend{Backend: "admin-1"},
		State: enginepb.OverrideState_OVERRIDE_DISABLED}); err != nil {
		t.Fatal(err)
	}
	if st := r.e.Component().Snapshot(); len(st.Warnings) != 0 {
		t.Errorf("warnings after a good save: %q", st.Warnings)
	}
}

// TestAnnounceAfterDualMaster: when HA reports that it heard another
// master and stayed master (a partition healed), the engine has the NCC
// announce the VIPs again at once; a status without a new dual master, or
// one on the backup, announces nothing.
func TestAnnounceAfterDualMaster(t *testing.T) {
	cfg, cl := copyGKE(t)
	r := newRig(t, cfg, cl, nil)
	r.ha(unknown, backup)
	r.ha(backup, leader)
	r.results("", true)
	r.settle()
	r.waitFor("the announce of becoming master", func() bool { return r.ncc.announces.Load() == 1 })
	status := func(st seesawpb.HAState, dual uint64) {
		r.e.recordHA(&hapb.Report{Report: &hapb.Report_Status{Status: &hapb.Status{State: st, DualMaster: dual, Warning: "test"}}})
	}
	status(leader, 0)
	status(leader, 0)
	r.settle()
	if n := r.ncc.announces.Load(); n != 1 {
		t.Fatalf("statuses without a dual master: %d announces, want 1", n)
	}
	status(leader, 1)
	r.waitFor("an announce after the dual master", func() bool { return r.ncc.announces.Load() == 2 })
	status(leader, 1)
	r.settle()
	if n := r.ncc.announces.Load(); n != 2 {
		t.Fatalf("the same dual-master count again: %d announces, want 2", n)
	}
}
