package ecu

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/procfs"

	gen "github.com/seesawlb/seesaw/engine/config/configtest"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// BenchmarkECU measures, at 1,000 vservers × 10 backends (2 services
// each: 2,000 IPVS services, 20,000 destinations) from a real engine:
//
//   - snapshot: reading the engine once (every RPC the ECU makes);
//   - metrics-write: writing a snapshot's exposition, which a scrape of a
//     new snapshot does;
//   - metrics, page, live, api-vservers: the ECU's own work per request on
//     a snapshot it holds (collect and encode; render), with the response
//     size (metrics: the snapshot's exposition already written);
//   - node_exporter-ipvs: what node_exporter's IPVS collector does per
//     scrape for the same destinations (procfs parsing /proc/net/ip_vs,
//     three series per destination with its six labels, encoding), on a
//     file in the kernel's format written from the same table. The kernel's
//     cost of producing /proc/net/ip_vs is not counted.
func BenchmarkECU(b *testing.B) {
	const nvs, nbe = 1000, 10
	r := startRig(b, gen.SeesawCfg("eth0", "eth1"), gen.Cluster(nvs, nbe, gen.Options{Plain: true}), hcDryRun, time.Hour)
	cc, err := ipc.Dial(r.esock, ipc.DialOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	e := &ecu{cfg: Config{CallTimeout: time.Minute, Now: time.Now, EngineSocket: r.esock}, comp: ipc.NewComponent("ecu"),
		conns: map[string]*grpcClientConn{"engine": cc}, names: []string{"engine"}, engine: cc}
	e.snaps = &snapshots{fetch: e.fetchSnapshot, maxAge: time.Hour, now: time.Now}
	// Wait until every destination is in service.
	r.waitFor("every destination healthy", func() bool {
		resp, err := enginepb.NewEngineClient(cc).Vservers(context.Background(), &enginepb.VserversRequest{})
		if err != nil || len(resp.Vservers) != nvs {
			return false
		}
		for _, v := range resp.Vservers {
			for _, s := range v.Services {
				if s.HealthyDestinations != nbe {
					return false
				}
			}
		}
		return true
	})
	snap := e.snaps.get(context.Background())
	if snap.Stale {
		b.Fatal(snap.EngineErr)
	}

	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			if s := e.fetchSnapshot(context.Background(), nil); s.Stale {
				b.Fatal(s.EngineErr)
			}
		}
	})
	serve := func(name string, h http.Handler, url string) {
		b.Run(name, func(b *testing.B) {
			var size int
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
				if rec.Code != 200 {
					b.Fatalf("%s: %d %s", url, rec.Code, rec.Body.String())
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/response")
		})
	}
	h := e.handler()
	// A scrape of a new snapshot writes its exposition; the scrapes after
	// it on the same snapshot share it ("metrics").
	b.Run("metrics-write", func(b *testing.B) {
		var (
			buf []byte
			lc  labelCache // as the handler keeps it, with its buffers
		)
		for b.Loop() {
			buf = writeSnapshotCached(buf[:0], snap, &lc)
		}
		size := len(buf)
		b.ReportMetric(float64(size), "bytes/response")
	})
	serve("metrics", e.metricsHandler(), "/metrics")
	serve("page", h, "/")
	serve("live", h, "/?live=1")
	serve("api-vservers", h, "/api/v1/vservers")

	// node_exporter's IPVS collector on the same table.
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "net"), 0o755); err != nil {
		b.Fatal(err)
	}
	procText := procIPVS(snap.Vservers)
	if err := os.WriteFile(filepath.Join(dir, "net", "ip_vs"), []byte(procText), 0o644); err != nil {
		b.Fatal(err)
	}
	fs, err := procfs.NewFS(dir)
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(nodeExporterIPVS{fs})
	serve("node_exporter-ipvs", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), "/metrics")

	// The same as processes, as the lab's TestLabBenchECU measures them:
	// an ECU of this build (the test binary as seesaw_ecu) reading the
	// rig's engine for every scrape, and Debian's node_exporter with only
	// its IPVS collector reading the file above as /proc/net/ip_vs (its
	// --path.procfs), each scraped over loopback TCP; the CPU per scrape
	// is the process's own, from /proc, its garbage collection and
	// system calls included.
	child := b.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchChildEnv+"="+r.esock+","+filepath.Join(r.dir, "healthcheck.sock")+","+child)
	cmd.Stderr = io.Discard
	ours := benchProcess(b, "ecu-process", cmd, func() string {
		a, _ := os.ReadFile(filepath.Join(child, "addr"))
		return string(a)
	})
	ne, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		b.Logf("node_exporter-process not measured: %v (Debian package prometheus-node-exporter)", err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "net", "ip_vs_stats"), []byte(procIPVSStats), 0o644); err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	neAddr := l.Addr().String()
	l.Close()
	cmd = exec.Command(ne, "--path.procfs="+dir, "--collector.disable-defaults", "--collector.ipvs",
		"--web.disable-exporter-metrics", "--web.listen-address="+neAddr)
	theirs := benchProcess(b, "node_exporter-process", cmd, func() string { return neAddr })
	if ours > 0 && theirs > 0 {
		b.Logf("ecu-process/node_exporter-process CPU per scrape: %.2f", float64(ours)/float64(theirs))
	}
}

type grpcClientConn = grpc.ClientConn

// procIPVS writes the vservers' IPVS table as the kernel's /proc/net/ip_vs
// does (hex addresses and ports).
func procIPVS(vs []*enginepb.VserverStatus) string {
	var s strings.Builder
	s.WriteString("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n")
	hexAP := func(addr string, port uint32) string {
		a := netip.MustParseAddr(addr).As4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", a[0], a[1], a[2], a[3], port)
	}
	for _, v := range vs {
		for _, svc := range v.Services {
			proto := "TCP"
			if svc.Protocol == nccpb.Protocol_UDP {
				proto = "UDP"
			}
			fmt.Fprintf(&s, "%s  %s %s \n", proto, hexAP(svc.Vip, svc.Port), strings.ToLower(svc.Scheduler))
			for _, d := range svc.Destinations {
				fmt.Fprintf(&s, "  -> %s      Route   %d      %d          %d         \n", hexAP(d.Address, d.Port), d.Weight, d.ActiveConnections, d.InactiveConnections)
			}
		}
	}
	return s.String()
}

// nodeExporterIPVS does what node_exporter's IPVS collector does for the
// backends: parse /proc/net/ip_vs, three gauges per backend.
type nodeExporterIPVS struct{ fs procfs.FS }

var (
	neLabels   = []string{"local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"}
	neActive   = prometheus.NewDesc("node_ipvs_backend_connections_active", "The current active connections by local and remote address.", neLabels, nil)
	neInactive = prometheus.NewDesc("node_ipvs_backend_connections_inactive", "The current inactive connections by local and remote address.", neLabels, nil)
	neWeight   = prometheus.NewDesc("node_ipvs_backend_weight", "The current backend weight by local and remote address.", neLabels, nil)
)

func (nodeExporterIPVS) Describe(ch chan<- *prometheus.Desc) {
	ch <- neActive
	ch <- neInactive
	ch <- neWeight
}

func (c nodeExporterIPVS) Collect(ch chan<- prometheus.Metric) {
	bs, err := c.fs.IPVSBackendStatus()
	if err != nil {
		panic(err)
	}
	for _, b := range bs {
		labels := []string{b.LocalAddress.String(), fmt.Sprint(b.LocalPort), b.RemoteAddress.String(), fmt.Sprint(b.RemotePort), b.Proto, b.LocalMark}
		ch <- prometheus.MustNewConstMetric(neActive, prometheus.GaugeValue, float64(b.ActiveConn), labels...)
		ch <- prometheus.MustNewConstMetric(neInactive, prometheus.GaugeValue, float64(b.InactConn), labels...)
		ch <- prometheus.MustNewConstMetric(neWeight, prometheus.GaugeValue, float64(b.Weight), labels...)
	}
}

// benchChildEnv, when set, makes the test binary a standalone ECU for
// BenchmarkECU's process benchmarks: "engine socket,healthcheck
// socket,directory". It serves until SIGTERM, reading the engine afresh
// for every request (as a Prometheus scraping less often than the
// snapshot age makes it do), and writes its HTTP address to
// directory/addr. SEESAW_ECU_BENCH_CPUPROFILE names a file for its CPU
// profile.
const benchChildEnv = "SEESAW_ECU_BENCH_CHILD"

func runBenchChild() int {
	parts := strings.Split(os.Getenv(benchChildEnv), ",")
	if len(parts) != 3 {
		fmt.Fprintf(os.Stderr, "%s=%q: want engine socket,healthcheck socket,directory\n", benchChildEnv, os.Getenv(benchChildEnv))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if p := os.Getenv("SEESAW_ECU_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	dir := parts[2]
	err := Run(ctx, Config{
		Socket: filepath.Join(dir, "ecu.sock"), EngineSocket: parts[0], Components: map[string]string{"healthcheck": parts[1]},
		HTTPAddr: "127.0.0.1:0", CallTimeout: time.Minute, MaxAge: time.Nanosecond, ControlAddr: "-",
		EngineConf: filepath.Join(dir, "none.cfg"),
		Ready: func(a net.Addr) {
			tmp := filepath.Join(dir, "addr.tmp")
			if err := os.WriteFile(tmp, []byte(a.String()), 0o644); err == nil {
				os.Rename(tmp, filepath.Join(dir, "addr"))
			}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// procCPU is a process's CPU time, user and system, from /proc.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	p, err := procfs.NewProc(pid)
	if err != nil {
		b.Fatal(err)
	}
	st, err := p.Stat()
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(st.CPUTime() * float64(time.Second))
}

// benchProcess runs cmd, waits until url answers, and measures scrapes of
// it: the wall time per scrape (ns/op), the process's CPU per scrape and
// this process's (the rig's engine, healthcheck and fake kernel, and the
// scraping client) per scrape. It returns the process's CPU per scrape.
func benchProcess(b *testing.B, name string, cmd *exec.Cmd, addr func() string) (cpu time.Duration) {
	b.Run(name, func(b *testing.B) {
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}()
		var url string
		deadline := time.Now().Add(time.Minute)
		hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		get := func() (int, error) {
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
		for {
			if a := addr(); a != "" {
				url = "http://" + a + "/metrics"
				if _, err := get(); err == nil {
					break
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s never answered", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		var size, n int
		c0, r0 := procCPU(b, cmd.Process.Pid), procCPU(b, os.Getpid())
		for b.Loop() {
			var err error
			if size, err = get(); err != nil {
				b.Fatal(err)
			}
			n++
		}
		cpu = (procCPU(b, cmd.Process.Pid) - c0) / time.Duration(n)
		rig := (procCPU(b, os.Getpid()) - r0) / time.Duration(n)
		b.ReportMetric(float64(size), "bytes/response")
		b.ReportMetric(float64(cpu)/1e6, "cpu-ms/scrape")
		b.ReportMetric(float64(rig)/1e6, "rig-cpu-ms/scrape")
	})
	return cpu
}

// procIPVSStats is /proc/net/ip_vs_stats, which node_exporter's IPVS
// collector reads too, with zero totals.
const procIPVSStats = `   Total Incoming Outgoing         Incoming         Outgoing
   Conns  Packets  Packets            Bytes            Bytes
       0        0        0                0                0

 Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s
       0        0        0                0                0
`
