package appliance

import (
	"flag"
	"fmt"
	gen "github.com/seesawlb/seesaw/engine/config/configtest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/engine/config"
	configpb "github.com/seesawlb/seesaw/proto/config"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

var benchFlag = flag.Bool("appliance.bench", false, "run TestLabBenchMemory and TestLabBenchECU: the appliance against keepalived and node_exporter (make bench)")

// memWindow is how long memory is sampled once a config is running: a
// little more than the configs' check interval (10 s, the default), so
// that every check has run in it.
const (
	memWindow = 11 * time.Second
	memEvery  = 500 * time.Millisecond
)

// TestLabBenchMemory measures the memory of the whole appliance (watchdog
// and its five daemons) running the GKE seed and a generated 1,000-vserver
// x 10-backend config, and of keepalived 2.2.7 doing the same job (VRRP for
// the cluster VIP, the VIPs, the same IPVS virtual and real servers,
// HTTP_GET checks) in a namespace of its own, in the same run. The figure
// is the sum of the processes' PSS, the physical memory they take (pages
// that several of them map, such as the code of make build's multi-call
// binary or keepalived's forked children, count once); the sum of their
// RSS, which counts such pages once per process, is printed beside it. It
// prints one bench: line.
func TestLabBenchMemory(t *testing.T) {
	labtest.RequireLab(t)
	if !*benchFlag {
		t.Skip("a benchmark: run with -args -appliance.bench (make bench does)")
	}
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SEESAW_BIN=%s: %s", bin, binLayout(bin))
	ka, err := exec.LookPath("keepalived")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/keepalived"); serr != nil {
			t.Fatalf("keepalived is the peer this benchmark measures against and is not installed (%v): deploy/deps.sh bench installs it (Debian package keepalived)", err)
		}
		ka = "/usr/sbin/keepalived"
	}

	// The GKE seed: ours, then keepalived, one at a time, so that neither
	// is measured while the other starts.
	g := startGKE(t, bin)
	g.waitBalanced(t)
	oursGKE, destsGKE := sampleAppliance(t, g.a, "gke")
	if err := g.a.Stop(); err != nil {
		t.Fatal(err)
	}
	kaGKE := runKeepalived(t, ka, g.res, destsGKE, func(n *labtest.Node) {
		// Its checks reach the seed's backends, as ours did.
		if err := g.topo.Switch.Plug("backend", n, "eth1"); err != nil {
			t.Fatal(err)
		}
		if err := n.AddAddr("eth1", netip.MustParsePrefix("198.51.100.9/24")); err != nil {
			t.Fatal(err)
		}
		for _, a := range g.backends {
			if out, err := n.Output("ip", "route", "add", a.String()+"/32", "dev", "eth1"); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		}
	}, "gke")

	// 1,000 vservers x 10 backends. Their backends exist nowhere (their
	// checks fail on both sides): memory is the point.
	// The generated vservers (TCP 80 with an HTTP check and TCP 443, WLC,
	// DSR, IPv4; VIPs 10.1.x.y, backends 10.2.x.y) with the topology's node
	// and cluster VIP addresses, so that lb1 is the config's node.
	nets := gen.Options{Plain: true, NodeNet4: labtest.NodeNet4, NodeNet6: labtest.NodeNet6}
	cfg, pb := gen.SeesawCfg("eth0", "eth2", nets), gen.Cluster(1000, 10, nets)
	res := config.CheckData("seesaw.cfg", []byte(cfg), "cluster.pb", []byte(pb))
	if err := res.Err(); err != nil {
		t.Fatalf("the generated config is rejected: %v", err)
	}
	topo := labtest.New(t, labtest.Config{LBs: 1, Backends: 1, LBNIC: "eth2", RoutedBackends: true})
	start := time.Now()
	a := Start(t, topo.LBs[0], Options{Bin: bin, SeesawCfg: cfg, ClusterPB: pb})
	a.WaitRunning(t, 5*time.Minute)
	var inIPVS string
	a.Wait(t, 10*time.Minute, "the engine's IPVS services applied as master, every check reported", func() error {
		if err := a.master(); err != nil {
			return err
		}
		// Once the checks have failed, each port-80 service has no
		// healthy backend and is down, out of IPVS, as in Seesaw; the
		// engine's plan says how many services remain.
		st, err := a.Status("engine")
		if err != nil {
			return err
		}
		inIPVS = st.Details["ipvs_services"]
		if n, err := ipvsServices(topo.LBs[0]); err != nil || strconv.Itoa(n) != inIPVS {
			return fmt.Errorf("ipvsadm lists %d services, the engine's plan %s (%v)", n, inIPVS, err)
		}
		ctx, cancel := rpcCtx()
		defer cancel()
		lc, err := a.Healthcheck.ListChecks(ctx, &hcpb.ListChecksRequest{OmitHistory: true})
		if err != nil {
			return err
		}
		reported := 0
		for _, c := range lc.Checks {
			if c.Last != nil {
				reported++
			}
		}
		if reported == 0 || reported < len(lc.Checks) {
			return fmt.Errorf("%d of %d checks reported", reported, len(lc.Checks))
		}
		return nil
	})
	t.Logf("1000 vservers: %s IPVS services applied and every check reported %v after the watchdog started", inIPVS, time.Since(start).Round(time.Millisecond))
	ours1000, dests1000 := sampleAppliance(t, a, "1000 vservers")
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	ka1000 := runKeepalived(t, ka, res, dests1000, nil, "1000 vservers")

	mem := func(m Mem) string {
		return fmt.Sprintf("%.1f MiB PSS (RSS %.1f)", float64(m.PSS)/(1<<20), float64(m.RSS)/(1<<20))
	}
	fmt.Printf("bench: appliance memory gke=%s 1000 vservers=%s; keepalived gke=%s 1000 vservers=%s; ours/keepalived=%.2f (gke %.2f)\n",
		mem(oursGKE), mem(ours1000), mem(kaGKE), mem(ka1000),
		float64(ours1000.PSS)/float64(ka1000.PSS), float64(oursGKE.PSS)/float64(kaGKE.PSS))
}

// binLayout says whether dir's binaries are one multi-call file (make
// build's) or separate files, which is most of the difference in PSS.
func binLayout(dir string) string {
	files := map[uint64][]string{}
	for _, b := range Binaries {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil {
			return err.Error()
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return "unknown layout"
		}
		files[st.Ino] = append(files[st.Ino], b)
	}
	if len(files) == 1 {
		return fmt.Sprintf("the %d binaries are one multi-call file", len(Binaries))
	}
	return fmt.Sprintf("the %d binaries are %d separate files", len(Binaries), len(files))
}

// sampleAppliance samples the appliance's memory over memWindow and
// returns the sample with the highest PSS sum, and how many destinations
// IPVS then holds.
func sampleAppliance(t *testing.T, a *Appliance, what string) (Mem, int) {
	t.Helper()
	var peak Mem
	var at map[string]Mem
	for end := time.Now().Add(memWindow); time.Now().Before(end); time.Sleep(memEvery) {
		m, err := a.Memory()
		if err != nil {
			t.Fatal(err)
		}
		var sum Mem
		for _, v := range m {
			sum = sum.Add(v)
		}
		if sum.PSS > peak.PSS {
			peak, at = sum, m
		}
	}
	addrs, _ := a.Node.Output("ip", "-o", "addr", "show")
	dests := 0
	if tab, err := IPVS(a.Node); err == nil {
		for _, s := range tab.Services {
			dests += len(s.Dests)
		}
	}
	t.Logf("appliance memory, %s: %s; lb1 holds %d addresses and %d destinations in IPVS",
		what, formatMem(peak, at), strings.Count(string(addrs), "\n"), dests)
	return peak, dests
}

// formatMem is the total and each process's memory, in MiB.
func formatMem(total Mem, m map[string]Mem) string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	line := func(name string, v Mem) {
		fmt.Fprintf(&b, "\n  %-12s PSS %5.1f (anon %4.1f, file %4.1f, shmem %4.1f)  RSS %5.1f",
			name, mib(v.PSS), mib(v.PSSAnon), mib(v.PSSFile), mib(v.PSSShmem), mib(v.RSS))
	}
	for _, n := range names {
		line(n, m[n])
	}
	line("total", total)
	return b.String()
}

// ipvsServices counts the services ipvsadm lists in n.
func ipvsServices(n *labtest.Node) (int, error) {
	tab, err := IPVS(n)
	if err != nil {
		return 0, err
	}
	return len(tab.Services), nil
}

// runKeepalived runs keepalived with keepalivedConf(res) in a namespace of
// its own (setup may wire it further), waits until it has programmed
// every IPVS service and its checks have settled on dests real servers
// (the appliance's count for the same config: each check has run), samples
// the memory of all its processes over memWindow, stops it and returns the
// sample with the highest PSS sum.
func runKeepalived(t *testing.T, bin string, res *config.Result, dests int, setup func(*labtest.Node), what string) Mem {
	t.Helper()
	n := labtest.NewTestNode(t, "ka")
	// VRRP needs a link that carries multicast: a veth pair to a
	// namespace where the adverts end.
	sink := labtest.NewTestNode(t, "kasink")
	if err := labtest.Veth(n, "eth0", sink, "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddr("eth0", netip.PrefixFrom(res.Engine.Node.IPv4, res.ThisNode.IPv4.Bits())); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(n)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	text, services := keepalivedConf(t, res, "eth0")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := n.Output(bin, "-t", "-f", conf); err != nil {
		t.Fatalf("keepalived rejects the generated config: %v\n%s", err, tail(string(out), 3000))
	}
	logf, err := os.Create(filepath.Join(dir, "keepalived.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-n", "-l", "-f", conf, "-p", filepath.Join(dir, "keepalived.pid"),
		"-c", filepath.Join(dir, "checkers.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that one signal reaches its children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.Start(cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	t.Cleanup(stop)
	start := time.Now()
	Wait(t, 10*time.Minute, fmt.Sprintf("keepalived (%s) programs %d IPVS services", what, services), func() error {
		select {
		case err := <-done:
			b, _ := os.ReadFile(logf.Name())
			return Permanent(fmt.Errorf("keepalived exited: %v\n%s", err, tail(string(b), 3000)))
		default:
		}
		tab, err := IPVS(n)
		if err != nil {
			return err
		}
		k := 0
		for _, s := range tab.Services {
			k += len(s.Dests)
		}
		if len(tab.Services) != services || k != dests {
			return fmt.Errorf("ipvsadm lists %d services and %d real servers, want %d and %d", len(tab.Services), k, services, dests)
		}
		return nil
	})
	t.Logf("keepalived, %s: %d IPVS services with %d real servers %v after start", what, services, dests, time.Since(start).Round(time.Millisecond))
	var peak Mem
	var at map[string]Mem
	for end := time.Now().Add(memWindow); time.Now().Before(end); time.Sleep(memEvery) {
		m, err := treeMem(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		var sum Mem
		for _, v := range m {
			sum = sum.Add(v)
		}
		if sum.PSS > peak.PSS {
			peak, at = sum, m
		}
	}
	// For the record: its VRRP instance is master, with the VIPs.
	addrs, _ := n.Output("ip", "-o", "addr", "show", "dev", "eth0")
	t.Logf("keepalived memory, %s (by pid): %s; it holds %d addresses on eth0",
		what, formatMem(peak, at), strings.Count(string(addrs), "\n"))
	stop()
	return peak
}

// treeMem is the memory of pid and of its children (keepalived's checker
// and VRRP processes), by "pid N".
func treeMem(pid int) (map[string]Mem, error) {
	pids := []int{pid}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, not ")".
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			pids = append(pids, child)
		}
	}
	m := map[string]Mem{}
	for _, p := range pids {
		pm, err := ProcMem(p)
		if err != nil {
			return nil, err
		}
		m[fmt.Sprintf("pid %d", p)] = pm
	}
	return m, nil
}

// keepalivedConf is keepalived's equivalent of res: a VRRP instance for the
// cluster VIP with every vserver VIP as an excluded address (what HA and
// the NCC do), and a virtual_server per vserver entry and address family
// with a real_server per backend, checked as Seesaw checks it (HTTP_GET,
// SSL_GET, TCP_CHECK; all of a destination's checks must pass). It returns
// the config and how many IPVS services it makes.
func keepalivedConf(t *testing.T, res *config.Result, iface string) (string, int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("global_defs {\n  router_id seesaw_bench\n  vrrp_version 3\n}\n")
	fmt.Fprintf(&b, "vrrp_instance VI_1 {\n  state BACKUP\n  interface %s\n  virtual_router_id %d\n  priority %d\n  advert_int 0.5\n",
		iface, res.Engine.VRID, res.ThisNode.Priority)
	fmt.Fprintf(&b, "  virtual_ipaddress {\n    %s\n  }\n  virtual_ipaddress_excluded {\n", res.Cluster.VIP.IPv4)
	for _, v := range res.Cluster.Vservers {
		for _, a := range v.Address.Addrs() {
			fmt.Fprintf(&b, "    %s/%d dev %s\n", a, a.BitLen(), iface)
		}
	}
	b.WriteString("  }\n}\n")
	services := 0
	for _, v := range res.Cluster.Vservers {
		for _, e := range v.Entries {
			checks := append(append([]*config.Healthcheck(nil), v.Healthchecks...), e.Healthchecks...)
			delay := 10 * time.Second
			for i, c := range checks {
				if i == 0 || c.Interval < delay {
					delay = c.Interval
				}
			}
			for _, vip := range v.Address.Addrs() {
				services++
				fmt.Fprintf(&b, "virtual_server %s %d {\n  delay_loop %d\n  lb_algo %s\n  lb_kind %s\n  protocol %s\n",
					vip, e.Port, int(delay.Seconds()), strings.ToLower(e.Scheduler.String()), kaKind(t, e.Mode), e.Protocol)
				if e.Persistence > 0 {
					fmt.Fprintf(&b, "  persistence_timeout %d\n", e.Persistence)
				}
				for _, be := range v.Backends {
					var addr netip.Addr
					for _, a := range be.Addrs() {
						if a.Is4() == vip.Is4() {
							addr = a
						}
					}
					if !addr.IsValid() {
						continue
					}
					fmt.Fprintf(&b, "  real_server %s %d {\n    weight %d\n", addr, e.Port, be.Weight)
					if e.Quiescent {
						b.WriteString("    inhibit_on_failure\n")
					}
					for _, c := range checks {
						b.WriteString(kaCheck(t, c))
					}
					b.WriteString("  }\n")
				}
				b.WriteString("}\n")
			}
		}
	}
	return b.String(), services
}

func kaKind(t *testing.T, m configpb.VserverEntry_Mode) string {
	switch m {
	case configpb.VserverEntry_DSR:
		return "DR"
	case configpb.VserverEntry_NAT:
		return "NAT"
	case configpb.VserverEntry_TUN:
		return "TUN"
	}
	t.Fatalf("keepalived has no forwarding method for %v", m)
	return ""
}

func kaCheck(t *testing.T, c *config.Healthcheck) string {
	common := fmt.Sprintf("      connect_port %d\n      connect_timeout %d\n      retry %d\n      delay_before_retry %d\n",
		c.Port, int(c.Timeout.Seconds()), c.Retries, int(c.Interval.Seconds()))
	switch c.Type {
	case configpb.Healthcheck_TCP:
		return "    TCP_CHECK {\n" + common + "    }\n"
	case configpb.Healthcheck_HTTP, configpb.Healthcheck_HTTPS:
		kind := "HTTP_GET"
		if c.Type == configpb.Healthcheck_HTTPS {
			kind = "SSL_GET"
		}
		code := c.Code
		if code == 0 {
			code = 200
		}
		path := c.Send
		if path == "" {
			path = "/"
		}
		return fmt.Sprintf("    %s {\n      url {\n        path %s\n        status_code %d\n      }\n%s    }\n", kind, path, code, common)
	}
	t.Fatalf("no keepalived checker here for a %v check", c.Type)
	return ""
}
