package appliance

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/engine/config"
	gen "github.com/seesawlb/seesaw/engine/config/configtest"
)

// TestLabBenchECU measures, in one lab run, the whole appliance serving
// 1,000 vservers x 10 backends (2,000 IPVS services, 20,000 destinations,
// all in service: the vservers have no checks, see below) and node_exporter (Debian's prometheus-node-exporter, only
// its IPVS collector) reading the same kernel's /proc/net/ip_vs in lb1's
// namespace. For each it scrapes /metrics from inside the namespace, a
// scrape every 1.5 s, longer than the ECU's snapshot age, so that each of
// the ECU's scrapes reads the engine afresh as Prometheus' would, and
// takes the process's CPU (user and system, from /proc) per scrape: the
// kernel's work producing /proc/net/ip_vs is node_exporter's system time.
// It also times the status page and a burst of back-to-back scrapes (one
// snapshot shared). It prints bench: lines.
func TestLabBenchECU(t *testing.T) {
	labtest.RequireLab(t)
	if !*benchFlag {
		t.Skip("a benchmark: run with -args -appliance.bench (make bench does)")
	}
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	ne, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		t.Fatalf("node_exporter is the peer this benchmark measures against and is not installed (%v): deploy/deps.sh bench installs it (Debian package prometheus-node-exporter)", err)
	}
	const nvs, nbe = 1000, 10
	nets := gen.Options{Plain: true, NodeNet4: labtest.NodeNet4, NodeNet6: labtest.NodeNet6}
	cfg, pb := gen.SeesawCfg("eth0", "eth2", nets), gen.Cluster(nvs, nbe, nets)
	// Without KVM the lab's guest cannot bring 10,000 HTTP checks to
	// healthy within a run (three quarters of the destinations after 15
	// minutes): the vservers go without checks, every destination in
	// service at once. /metrics then has no check series (about 60,000
	// fewer); node_exporter has none either way.
	check := ` healthcheck { type: HTTP port: 8080 send: "/healthz" }`
	if !strings.Contains(pb, check) {
		t.Fatalf("the generated cluster.pb has no %q to take out", check)
	}
	pb = strings.ReplaceAll(pb, check, "")
	if err := config.CheckData("seesaw.cfg", []byte(cfg), "cluster.pb", []byte(pb)).Err(); err != nil {
		t.Fatalf("the generated config is rejected: %v", err)
	}
	topo := labtest.New(t, labtest.Config{LBs: 1, Backends: 1, LBNIC: "eth2", RoutedBackends: true})
	lb, be := topo.LBs[0], topo.Backends[0]

	// The backends (10.2.0.0/16): one namespace takes the whole range as
	// its own (a local route) and answers the checks' GET /healthz on
	// 8080; lb1 routes the range through it (a gateway: one neighbour,
	// where 10,000 on-link addresses would overflow the neighbour table).
	backendNet := netip.MustParsePrefix("10.2.0.0/16")
	if out, err := be.Output("ip", "route", "add", "local", backendNet.String(), "dev", "lo"); err != nil {
		t.Fatalf("backend: local route: %v: %s", err, out)
	}
	if out, err := lb.Output("ip", "route", "add", backendNet.String(), "via", be.IPv4().String()); err != nil {
		t.Fatalf("lb1: route to the backends: %v: %s", err, out)
	}
	lis, err := be.Listen("tcp", "0.0.0.0:8080")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })

	start := time.Now()
	a := Start(t, lb, Options{Bin: bin, SeesawCfg: cfg, ClusterPB: pb})
	a.WaitRunning(t, 5*time.Minute)
	var dests int
	a.Wait(t, 10*time.Minute, "every IPVS service and destination in the kernel as master", func() error {
		if err := a.master(); err != nil {
			return err
		}
		tab, err := IPVS(lb)
		if err != nil {
			return err
		}
		dests = 0
		for _, s := range tab.Services {
			dests += len(s.Dests)
		}
		if len(tab.Services) != 2*nvs || dests != 2*nvs*nbe {
			return fmt.Errorf("ipvsadm lists %d services, %d destinations", len(tab.Services), dests)
		}
		return nil
	})
	t.Logf("%d vservers: %d destinations in IPVS %v after the watchdog started", nvs, dests, time.Since(start).Round(time.Second))
	svcs, err := a.running()
	if err != nil {
		t.Fatal(err)
	}
	ecuPID, engPID := int(svcs["ecu"].Pid), int(svcs["engine"].Pid)

	neCmd := exec.Command(ne, "--collector.disable-defaults", "--collector.ipvs", "--web.disable-exporter-metrics",
		"--web.listen-address=127.0.0.1:9100")
	if err := lb.Start(neCmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { neCmd.Process.Kill(); neCmd.Wait() })

	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		DialContext:        func(ctx context.Context, network, addr string) (net.Conn, error) { return lb.Dial(ctx, network, addr) },
		DisableCompression: true, // both answer uncompressed: the work, not gzip's
	}}
	get := func(url string) (int, error) {
		resp, err := hc.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("%s: %s", url, resp.Status)
		}
		return int(n), err
	}
	a.Wait(t, time.Minute, "node_exporter answering", func() error { _, err := get("http://127.0.0.1:9100/metrics"); return err })

	// SEESAW_BENCH_ECU_BEFORE names another build's binaries: its ECU runs
	// beside the appliance's on the same engine and is measured in the
	// same run (a before/after of a change to the ECU), with the flags in
	// SEESAW_BENCH_ECU_BEFORE_ARGS.
	var beforePID int
	if dir := os.Getenv("SEESAW_BENCH_ECU_BEFORE"); dir != "" {
		sock := filepath.Join(a.Dir, "run", "ecu-before.sock")
		cmd := exec.Command(filepath.Join(dir, "seesaw_ecu"), "-log_dir="+a.LogDir(), "-socket="+sock, "-engine_socket="+a.Sock("engine"),
			"-ncc_socket="+a.Sock("ncc"), "-ha_socket="+a.Sock("ha"), "-healthcheck_socket="+a.Sock("healthcheck"),
			"-watchdog_socket="+a.Sock("watchdog"), "-http_addr=127.0.0.1:10259", "-control_addr=-")
		cmd.Args = append(cmd.Args, strings.Fields(os.Getenv("SEESAW_BENCH_ECU_BEFORE_ARGS"))...)
		if err := lb.Start(cmd); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		beforePID = cmd.Process.Pid
		a.Wait(t, time.Minute, "the other build's ECU answering", func() error { _, err := get("http://127.0.0.1:10259/metrics"); return err })
	}

	const n = 10
	if beforePID != 0 {
		old := measure(t, get, "http://127.0.0.1:10259/metrics", beforePID, engPID, n, 1500*time.Millisecond)
		oldBurst := measure(t, get, "http://127.0.0.1:10259/metrics", beforePID, engPID, n, 0)
		fmt.Printf("bench: ecu metrics (SEESAW_BENCH_ECU_BEFORE's ECU) %s per scrape, %.1f MB, ECU CPU %s per scrape (engine %s); back-to-back %s, CPU %s per scrape\n",
			old.wall, mb(old.size), old.cpu, old.otherCPU, oldBurst.wall, oldBurst.cpu)
	}
	ecu := measure(t, get, "http://127.0.0.1:10257/metrics", ecuPID, engPID, n, 1500*time.Millisecond)
	nodeExp := measure(t, get, "http://127.0.0.1:9100/metrics", neCmd.Process.Pid, engPID, n, 1500*time.Millisecond)
	burst := measure(t, get, "http://127.0.0.1:10257/metrics", ecuPID, engPID, n, 0)
	page := measure(t, get, "http://127.0.0.1:10257/", ecuPID, engPID, n, 1500*time.Millisecond)

	fmt.Printf("bench: ecu metrics %d vservers x %d backends (%d IPVS destinations): %s per scrape, %.1f MB, ECU CPU %s per scrape (engine %s); node_exporter ipvs: %s, %.1f MB, CPU %s; ours/node_exporter=%.2f (CPU per scrape)\n",
		nvs, nbe, dests, ecu.wall, mb(ecu.size), ecu.cpu, ecu.otherCPU, nodeExp.wall, mb(nodeExp.size), nodeExp.cpu, float64(ecu.cpu)/float64(nodeExp.cpu))
	fmt.Printf("bench: ecu metrics back-to-back (one snapshot shared): %s per scrape, ECU CPU %s per scrape\n", burst.wall, burst.cpu)
	fmt.Printf("bench: ecu page %d vservers x %d backends: %s per render, %.2f MB, ECU CPU %s per render\n", nvs, nbe, page.wall, mb(page.size), page.cpu)
}

func mb(n int) float64 { return float64(n) / 1e6 }

// sample is a scraped target's cost: wall time, size, and the CPU of its
// process (and of another, the engine) per request.
type sample struct {
	wall, cpu, otherCPU time.Duration
	size                int
}

// measure gets url n times, every gap (0: back to back) after a first
// request that is not counted, and returns the mean cost per request.
func measure(t *testing.T, get func(string) (int, error), url string, pid, other, n int, gap time.Duration) sample {
	t.Helper()
	cpu := func(pid int) time.Duration {
		p, err := procfs.NewProc(pid)
		if err != nil {
			t.Fatal(err)
		}
		st, err := p.Stat()
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(st.CPUTime() * float64(time.Second))
	}
	if _, err := get(url); err != nil {
		t.Fatal(err)
	}
	time.Sleep(gap)
	var s sample
	c0, o0 := cpu(pid), cpu(other)
	for i := range n {
		t0 := time.Now()
		size, err := get(url)
		if err != nil {
			t.Fatal(err)
		}
		s.wall += time.Since(t0)
		s.size = size
		if i < n-1 {
			time.Sleep(gap)
		}
	}
	s.cpu, s.otherCPU = (cpu(pid)-c0)/time.Duration(n), (cpu(other)-o0)/time.Duration(n)
	s.wall /= time.Duration(n)
	s.cpu, s.otherCPU, s.wall = s.cpu.Round(time.Millisecond), s.otherCPU.Round(time.Millisecond), s.wall.Round(time.Millisecond)
	return s
}
