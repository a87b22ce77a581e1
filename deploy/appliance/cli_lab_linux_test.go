package appliance

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
)

// TestLabCLI runs the operator's CLI, the real binary, against the whole
// appliance on lb1: a drain with connections open through the NAT VIP,
// and a config diff against the changes the reload then makes.
func TestLabCLI(t *testing.T) {
	labtest.RequireLab(t)
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	r := newCLIRig(t, 1)
	r.a = Start(t, r.lb, Options{Bin: bin, SeesawCfg: labSeesawCfg, ClusterPB: labClusterPB(r.backends)})
	r.a.WaitRunning(t, 2*time.Minute)
	r.a.WaitMaster(t, 2*time.Minute)
	r.waitSteady(t)

	t.Run("Show", r.testCLIShow)
	t.Run("Override", r.testCLIOverride)
	t.Run("Drain", r.testCLIDrain)
	t.Run("ConfigDiff", r.testCLIConfigDiff)
}

// newCLIRig is the lab topology with lbs LB nodes and the two backends
// serving, as TestLabAppliance has them.
func newCLIRig(t *testing.T, lbs int) *labRig {
	r := &labRig{servers: map[string]*Server{}}
	r.topo = labtest.New(t, labtest.Config{LBs: lbs, Backends: 2, LBNIC: "eth2", RoutedBackends: true})
	r.lb, r.client, r.backends = r.topo.LBs[0], r.topo.Client, r.topo.Backends
	for _, b := range r.backends {
		if err := DSR(b, dsrVIP4, dsrVIP6); err != nil {
			t.Fatal(err)
		}
		var udp []netip.AddrPort
		for _, a := range []netip.Addr{b.IPv4(), b.IPv6(), dsrVIP4, dsrVIP6} {
			udp = append(udp, netip.AddrPortFrom(a, svcPort))
		}
		r.servers[b.Role] = Serve(t, b, ServeOptions{TCP: []string{fmt.Sprintf(":%d", svcPort)}, UDP: udp, Health: []string{fmt.Sprintf(":%d", healthPort)}})
	}
	return r
}

// TestLabCLIFailover: two appliances, lb1 master; the CLI's failover on
// the backup is refused, on the master it moves the VIPs to lb2, which the
// client then reaches, and each node's CLI says which it is.
func TestLabCLIFailover(t *testing.T) {
	labtest.RequireLab(t)
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	r := newCLIRig(t, 2)
	lb2 := r.topo.LBs[1]
	pb := labClusterPB(r.backends)
	lb2Cfg := strings.NewReplacer("node_ipv4 = 192.0.2.2", "node_ipv4 = 192.0.2.3", "peer_ipv4 = 192.0.2.3", "peer_ipv4 = 192.0.2.2",
		"node_ipv6 = 2001:db8:0:1::2", "node_ipv6 = 2001:db8:0:1::3", "peer_ipv6 = 2001:db8:0:1::3", "peer_ipv6 = 2001:db8:0:1::2",
		"seesaw.cfg of lb1", "seesaw.cfg of lb2").Replace(labSeesawCfg)
	// lb1 first, master before lb2 starts, as the other pair tests do:
	// started together, either may win the first election (the start-up
	// jitter is larger than the priorities' skew), and with connection
	// sync on and no peer sync lb1 would take mastership back only after
	// catch_up_limit (engine/failback.go).
	r.a = Start(t, r.lb, Options{Bin: bin, SeesawCfg: labSeesawCfg, ClusterPB: pb})
	r.a.WaitRunning(t, 2*time.Minute)
	r.a.WaitMaster(t, 2*time.Minute)
	a2 := Start(t, lb2, Options{Bin: bin, SeesawCfg: lb2Cfg, ClusterPB: pb})
	a2.WaitRunning(t, 2*time.Minute)
	r.waitSteady(t)
	cli2 := func(args ...string) (string, error) {
		out, err := lb2.Output(filepath.Join(bin, "seesaw_cli"), append([]string{"--engine", a2.Sock("engine")}, args...)...)
		t.Logf("lb2$ seesaw %s\n%s", strings.Join(args, " "), out)
		return string(out), err
	}
	a2.Wait(t, time.Minute, "lb2 backup", func() error {
		out, err := cli2("show", "ha")
		if err != nil || !strings.Contains(out, "HA state:     backup") {
			return fmt.Errorf("lb2: %v %s", err, out)
		}
		return nil
	})
	nat := flow{"NAT", "tcp", natVIP4}
	if _, err := Ask(r.client, nat.proto, nat.dst(), 10*time.Second); err != nil {
		t.Fatalf("%s through lb1: %v", nat, err)
	}
	if out, err := cli2("failover"); err == nil || !strings.Contains(out, "not the master") {
		t.Errorf("failover on the backup: %v\n%s", err, out)
	}
	if out := r.cli(t, "failover"); !strings.Contains(out, "Failover requested") {
		t.Errorf("failover on the master:\n%s", out)
	}
	took := a2.WaitMaster(t, 2*time.Minute)
	t.Logf("lb2 master %v after the CLI's failover on lb1", took.Round(time.Millisecond))
	// The backup keeps its VIPs on its LB interface, which it takes down.
	lbUp := func(n *labtest.Node) (bool, error) {
		out, err := n.Output("ip", "-o", "link", "show", "eth2")
		if err != nil {
			return false, err
		}
		flags := strings.SplitN(strings.SplitN(string(out), "<", 2)[1], ">", 2)[0]
		return slices.Contains(strings.Split(flags, ","), "UP"), nil
	}
	r.a.Wait(t, time.Minute, "lb1's LB interface down, lb2's up, the client served", func() error {
		if up, err := lbUp(r.lb); err != nil || up {
			return fmt.Errorf("lb1's eth2 up=%v (%v)", up, err)
		}
		if up, err := lbUp(lb2); err != nil || !up {
			return fmt.Errorf("lb2's eth2 up=%v (%v)", up, err)
		}
		_, err := Ask(r.client, nat.proto, nat.dst(), 3*time.Second)
		return err
	})
	if out := r.cli(t, "show", "ha"); !strings.Contains(out, "HA state:     backup") {
		t.Errorf("lb1 after the failover is not backup")
	}
	if out, err := cli2("show", "vservers"); err != nil || !strings.Contains(out, "nat@lab        up") {
		t.Errorf("lb2's vservers after the failover: %v", err)
	}
}

// cliCmd is the CLI with args, against the appliance's engine.
func (r *labRig) cliCmd(args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(r.a.Bin, "seesaw_cli"), append([]string{"--engine", r.a.Sock("engine")}, args...)...)
}

func (r *labRig) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := r.cliCmd(args...)
	out, err := r.lb.Output(cmd.Path, cmd.Args[1:]...)
	if err != nil {
		t.Fatalf("seesaw %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("$ seesaw %s\n%s", strings.Join(args, " "), out)
	return string(out)
}

// testCLIShow: the show commands against the live daemons: every daemon's
// version and uptime, the real checks' history, HA, stats, JSON.
func (r *labRig) testCLIShow(t *testing.T) {
	r.waitSteady(t)
	out := r.cli(t, "show", "version")
	for _, d := range []string{"cli", "engine", "ncc", "healthcheck", "ha", "ecu", "watchdog"} {
		if !regexp.MustCompile(`(?m)^` + d + ` +\S+ +\d+ +\S+ `).MatchString(out) {
			t.Errorf("show version lacks %s", d)
		}
	}
	out = r.cli(t, "show", "healthchecks", fqdn(r.backends[0]))
	if !regexp.MustCompile(`(?m)^  198\.51\.100\.11:8080 +HTTP/8080 +healthy +\S+ +\S+ +\+\+`).MatchString(out) {
		t.Errorf("show healthchecks lacks backend1's IPv4 check with its history")
	}
	if out = r.cli(t, "show", "ha"); !strings.Contains(out, "HA state:     master") {
		t.Errorf("show ha: not master")
	}
	r.cli(t, "show", "stats", "nat@lab")
	if out = r.cli(t, "show", "warnings"); !strings.Contains(out, "No warnings.") {
		t.Errorf("show warnings in the steady state")
	}
	if out = r.cli(t, "show", "backends", "--json"); !strings.Contains(out, `"fqdn": "backend2.lab."`) {
		t.Errorf("show backends --json")
	}
}

// testCLIOverride: what a client sees follows the CLI's overrides.
func (r *labRig) testCLIOverride(t *testing.T) {
	r.waitSteady(t)
	dsr := flow{"DSR", "tcp", dsrVIP4}
	r.cli(t, "override", "vserver", "state", "disabled", "dsr@lab")
	took := r.a.Wait(t, time.Minute, "dsr@lab unreachable", func() error {
		if ans, err := Ask(r.client, dsr.proto, dsr.dst(), 2*time.Second); err == nil {
			return fmt.Errorf("%s still answers: %v", dsr, ans)
		}
		return nil
	})
	t.Logf("%s unreachable %v after the CLI's override", dsr, took.Round(time.Millisecond))
	if out := r.cli(t, "show", "vservers", "dsr@lab"); !strings.Contains(out, "Status:     disabled (override disabled; config enabled)") ||
		!strings.Contains(out, "Override:   set by root (uid 0") {
		t.Errorf("show vservers dsr@lab does not show the override")
	}
	r.cli(t, "override", "vserver", "state", "default", "dsr@lab")
	r.a.Wait(t, time.Minute, "dsr@lab back", func() error {
		_, err := Ask(r.client, dsr.proto, dsr.dst(), 3*time.Second)
		return err
	})
	b2 := r.backends[1]
	r.cli(t, "override", "destination", "state", "disabled", fmt.Sprintf("nat@lab/%s/TCP", netip.AddrPortFrom(b2.IPv4(), svcPort)))
	nat := flow{"NAT", "tcp", natVIP4}
	r.a.Wait(t, time.Minute, "nat@lab's TCP answered by backend1 only", func() error {
		for i := 0; i < 4; i++ {
			ans, err := Ask(r.client, nat.proto, nat.dst(), 3*time.Second)
			if err != nil {
				return err
			}
			if ans.Backend != r.backends[0].Role {
				return fmt.Errorf("answered by %s", ans.Backend)
			}
		}
		return nil
	})
	r.cli(t, "override", "destination", "state", "default", fmt.Sprintf("nat@lab/%s/TCP", netip.AddrPortFrom(b2.IPv4(), svcPort)))
	r.waitSteady(t)
}

// activeConns is the ActiveConn column of ipvsadm for dst in service key.
func activeConns(n *labtest.Node, key string, dst netip.Addr) (int, error) {
	out, err := n.Output("ipvsadm", "-Ln")
	if err != nil {
		return 0, err
	}
	in := false
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "FWM") {
			ap, _ := netip.ParseAddrPort(f[1])
			in = f[0]+" "+ap.String() == key
			continue
		}
		if in && len(f) == 6 && f[0] == "->" {
			if ap, err := netip.ParseAddrPort(f[1]); err == nil && ap.Addr() == dst {
				return strconv.Atoi(f[4])
			}
		}
	}
	return 0, fmt.Errorf("ipvsadm has no %s in %s:\n%s", dst, key, out)
}

// testCLIDrain: connections held to backend1 through the NAT VIP; drain
// sets weight 0 at once (new connections go to backend2, held ones still
// carry data), reports them with progress, and ends, disabling backend1,
// when the last one closes.
func (r *labRig) testCLIDrain(t *testing.T) {
	r.waitSteady(t)
	nat := flow{"NAT", "tcp", natVIP4}
	b1, b2 := r.backends[0], r.backends[1]
	var held, onB1 []*Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 12 && len(onB1) < 2; i++ {
		c, err := Hold(r.client, nat.dst(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if c.Answer.Backend == b1.Role {
			onB1 = append(onB1, c)
		}
	}
	if len(onB1) < 2 {
		t.Fatalf("12 connections, %d on backend1", len(onB1))
	}

	r.cli(t, "show", "vservers")
	if out := r.cli(t, "show", "vservers", "nat@lab"); !regexp.MustCompile(`(?m)^    198\.51\.100\.11:80 +backend1\.lab\. +1 +active +[2-9]`).MatchString(out) {
		t.Errorf("show vservers nat@lab does not count backend1's connections")
	}
	cmd := r.cliCmd("drain", "backend", fqdn(b1), "--interval", "300ms", "--timeout", "5m")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := r.lb.Start(cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	took := r.a.Wait(t, time.Minute, "backend1 at weight 0 with its connections, and the drain saying so", func() error {
		tab, err := IPVS(r.lb)
		if err != nil {
			return err
		}
		for _, f := range flows {
			if s := tab.Service(f.key()); s != nil {
				if d, ok := s.Dest(backendAddr(b1, f.vip)); ok && d.Weight != 0 {
					return fmt.Errorf("%s: backend1 at weight %d", f.key(), d.Weight)
				}
			}
		}
		n, err := activeConns(r.lb, nat.key(), b1.IPv4())
		if err != nil {
			return err
		}
		if n < len(onB1) {
			return fmt.Errorf("ipvsadm counts %d active connections on backend1, want %d", n, len(onB1))
		}
		if !regexp.MustCompile(`: \d+ active connection\(s\) on \d+ destination\(s\)`).MatchString(out.String()) {
			return fmt.Errorf("no progress yet: %q", out.String())
		}
		return nil
	})
	t.Logf("drain: backend1 at weight 0 everywhere, progress shown, after %v", took.Round(time.Millisecond))
	for i := 0; i < 4; i++ {
		ans, err := Ask(r.client, nat.proto, nat.dst(), 10*time.Second)
		if err != nil {
			t.Errorf("%s while backend1 drains: %v", nat, err)
		} else if ans.Backend != b2.Role {
			t.Errorf("%s while backend1 drains: a new connection went to %s", nat, ans.Backend)
		}
	}
	for _, c := range onB1 {
		if err := c.Exchange(10 * time.Second); err != nil {
			t.Errorf("a held connection on the draining backend1: %v", err)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("drain ended with connections open (%v):\n%s", err, out)
	default:
	}
	// The last connections close: the drain ends and disables backend1.
	for _, c := range onB1 {
		c.Close()
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("drain: %v\n%s", err, out)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("drain did not end after the last connection closed:\n%s", out)
	}
	t.Logf("$ seesaw drain backend %s\n%s", fqdn(b1), out)
	if s := out.String(); !strings.Contains(s, "no active connections left") || !strings.Contains(s, "Drained: backend "+fqdn(b1)+" is disabled.") {
		t.Errorf("drain output:\n%s", s)
	}
	r.a.Wait(t, time.Minute, "backend1 out of IPVS", func() error {
		tab, err := IPVS(r.lb)
		if err != nil {
			return err
		}
		if h := tab.Holding(b1.IPv4()); len(h) > 0 {
			return fmt.Errorf("backend1 still in %v", h)
		}
		return nil
	})
	for _, c := range held {
		if c.Answer.Backend == b2.Role {
			if err := c.Exchange(10 * time.Second); err != nil {
				t.Errorf("a connection on backend2 after the drain: %v", err)
			}
		}
	}
	r.cli(t, "override", "backend", "state", "default", fqdn(b1))
	r.waitSteady(t)
}

// testCLIConfigDiff: config diff of an edited cluster.pb (a scheduler
// changed, a vserver removed) lists exactly the IPVS services the reload
// then changes, and the VIP it removes; after the reload there is nothing
// left to diff.
func (r *labRig) testCLIConfigDiff(t *testing.T) {
	r.waitSteady(t)
	orig := labClusterPB(r.backends)
	natTCP := fmt.Sprintf("  vserver_entry { protocol: TCP port: %d scheduler: RR mode: NAT }\n", svcPort)
	if !strings.Contains(orig, natTCP) {
		t.Fatalf("the lab cluster changed: no %q", natTCP)
	}
	edited := strings.Replace(orig, natTCP, strings.Replace(natTCP, "RR", "WRR", 1), 1)
	cut := strings.Index(edited, "vserver {\n  name: \"quiescent@lab\"")
	if cut < 0 {
		t.Fatal("the lab cluster changed: no quiescent@lab")
	}
	edited = edited[:cut]
	cand := filepath.Join(r.a.Dir, "candidate.pb")
	if err := os.WriteFile(cand, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := IPVS(r.lb)
	if err != nil {
		t.Fatal(err)
	}
	diff := r.cli(t, "config", "diff", "--cluster", cand)
	if now, _ := IPVS(r.lb); now.Text != before.Text {
		t.Fatalf("config diff changed IPVS:\n%s", now.Text)
	}
	var svcChanges []string
	for _, l := range strings.Split(diff, "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[1] == "ipvs-service" {
			svcChanges = append(svcChanges, f[0]+" "+f[2]+" "+strings.TrimSuffix(f[3], ":"))
		}
	}

	if err := os.WriteFile(r.a.Etc("cluster.pb"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	r.cli(t, "config", "reload")
	var after *Table
	r.a.Wait(t, time.Minute, "the reload applied", func() error {
		var err error
		if after, err = IPVS(r.lb); err != nil {
			return err
		}
		q := after.Service(ServiceKey("TCP", quiescentVIP, svcPort))
		n := after.Service(ServiceKey("TCP", natVIP4, svcPort))
		if q != nil || n == nil || n.Scheduler != "wrr" {
			return fmt.Errorf("not yet:\n%s", after.Text)
		}
		return nil
	})
	var want []string
	for _, s := range before.Services {
		a := after.Service(s.Key)
		switch {
		case a == nil:
			want = append(want, "- "+s.Key)
		case a.Scheduler != s.Scheduler:
			want = append(want, "~ "+s.Key)
		}
	}
	for _, s := range after.Services {
		if before.Service(s.Key) == nil {
			want = append(want, "+ "+s.Key)
		}
	}
	slices.Sort(want)
	slices.Sort(svcChanges)
	if !slices.Equal(want, svcChanges) {
		t.Errorf("config diff listed the IPVS services %q; the reload changed %q\nbefore:\n%s\nafter:\n%s", svcChanges, want, before.Text, after.Text)
	}
	if !regexp.MustCompile(`(?m)^- address .*` + regexp.QuoteMeta(quiescentVIP.String()) + `/`).MatchString(diff) {
		t.Errorf("config diff does not list the removal of %s:\n%s", quiescentVIP, diff)
	}
	out, err := r.lb.Output("ip", "-o", "addr", "show")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), " "+quiescentVIP.String()+"/") {
		t.Errorf("the reload left %s on lb1", quiescentVIP)
	}
	if again := r.cli(t, "config", "diff"); !strings.Contains(again, "No changes") {
		t.Errorf("config diff after the reload:\n%s", again)
	}
}
