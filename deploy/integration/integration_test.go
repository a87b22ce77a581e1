// Package integration runs the whole appliance: the real seesaw_watchdog
// starting the five real daemons from a watchdog.cfg, with every socket, log
// and config in a temporary directory, and checks that they come up, talk to
// each other, and stop cleanly.
package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/deploy/testenv"

	"google.golang.org/grpc"

	"github.com/seesawlb/seesaw/ncc/ipvs"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
	watchdogpb "github.com/seesawlb/seesaw/proto/watchdog"
)

// binaries are built from these packages, relative to the module root.
var binaries = []string{
	"./watchdog/cmd/seesaw_watchdog",
	"./engine/cmd/seesaw_engine",
	"./ncc/cmd/seesaw_ncc",
	"./ha/cmd/seesaw_ha",
	"./healthcheck/cmd/seesaw_healthcheck",
	"./ecu/cmd/seesaw_ecu",
	"./cli/cmd/seesaw_cli",
}

// daemons are the services the watchdog runs.
var daemons = []string{"ncc", "engine", "ha", "healthcheck", "ecu"}

// appliance is one run's layout in its temporary directory.
type appliance struct {
	dir, bin, run, logs, etc string
	httpAddr                 string
}

func (a *appliance) sock(name string) string { return filepath.Join(a.run, name, name+".sock") }

func TestApplianceUnderWatchdog(t *testing.T) {
	testenv.RequireRoot(t) // seesaw_ncc refuses to run as any other user, and the daemons answer root
	if testing.Short() {
		t.Skip("builds seven binaries and runs the appliance; skipped with -short")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// A short directory name: Unix socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "seesaw-it")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &appliance{
		dir:  dir,
		bin:  filepath.Join(dir, "bin"),
		run:  filepath.Join(dir, "run"),
		logs: filepath.Join(dir, "log"),
		etc:  filepath.Join(dir, "etc"),
	}
	for _, d := range []string{a.bin, a.run, a.logs, a.etc} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	build := exec.Command("go", append([]string{"build", "-o", a.bin + "/"}, binaries...)...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	site := copyConfig(t, root, a.etc)
	// The appliance runs in a network namespace of its own, never on this
	// machine's interfaces: HA sends real VRRP adverts on the node
	// interface. eth0 and eth1 are veth pairs to a second, empty namespace,
	// eth0 with the sample's node addresses.
	lb := labtest.NewTestNode(t, "lb")
	wire := labtest.NewTestNode(t, "wire")
	for _, ifc := range []string{"eth0", "eth1"} {
		if err := labtest.Veth(lb, ifc, wire, ifc); err != nil {
			t.Fatal(err)
		}
		if err := lb.LinkUp(ifc); err != nil {
			t.Fatal(err)
		}
		if err := wire.LinkUp(ifc); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"192.0.2.2/24", "2001:db8:0:1::2/64"} {
		if err := lb.AddAddr("eth0", netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	a.httpAddr = "127.0.0.1:10257" // the namespace's own loopback
	get := func(url string) (int, string, error) { return httpGet(lb, url) }
	wcfg := filepath.Join(a.etc, "watchdog.cfg")
	if err := os.WriteFile(wcfg, []byte(watchdogConfig(a)), 0o644); err != nil {
		t.Fatal(err)
	}

	wd := exec.Command(filepath.Join(a.bin, "seesaw_watchdog"),
		"-config="+wcfg,
		"-socket="+a.sock("watchdog"),
		"-service_log_dir="+a.logs,
		"-read_group=",
		"-log_dir="+a.logs,
	)
	var wdOut bytes.Buffer
	wd.Stdout, wd.Stderr = &wdOut, &wdOut
	if err := lb.Start(wd); err != nil {
		t.Fatal(err)
	}
	// exited is closed when the watchdog has exited, with its error in wdErr.
	exited := make(chan struct{})
	var wdErr error
	go func() { wdErr = wd.Wait(); close(exited) }()
	var lastPIDs map[string]int32
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			// The test failed before its orderly stop: do not leave the
			// appliance running.
			wd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				wd.Process.Kill()
				<-exited
			}
			for _, pid := range lastPIDs {
				syscall.Kill(int(pid), syscall.SIGKILL)
			}
		}
		if t.Failed() {
			t.Logf("watchdog output:\n%s", wdOut.String())
			dumpLogs(t, a.logs)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	conns := map[string]*grpc.ClientConn{}
	for _, name := range append([]string{"watchdog"}, daemons...) {
		cc, err := ipc.Dial(a.sock(name), ipc.DialOptions{MaxBackoff: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		conns[name] = cc
	}
	watchdog := watchdogpb.NewWatchdogClient(conns["watchdog"])
	engine := enginepb.NewEngineClient(conns["engine"])
	status := func(name string) (*seesawpb.ComponentStatus, error) {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		defer ccancel()
		return seesawpb.NewComponentClient(conns[name]).Status(cctx, &seesawpb.StatusRequest{})
	}
	// poll calls f until it returns nil or the deadline passes.
	poll := func(what string, f func() error) {
		t.Helper()
		var err error
		for {
			if err = f(); err == nil {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %v", what, err)
			case <-exited:
				t.Fatalf("%s: the watchdog exited (%v) while waiting; last: %v", what, wdErr, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	services := func() (map[string]*watchdogpb.Service, error) {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		defer ccancel()
		resp, err := watchdog.Services(cctx, &watchdogpb.ServicesRequest{})
		if err != nil {
			return nil, err
		}
		m := map[string]*watchdogpb.Service{}
		pids := map[string]int32{}
		for _, s := range resp.Services {
			m[s.Name] = s
			if s.Pid > 0 {
				pids[s.Name] = s.Pid
			}
		}
		lastPIDs = pids
		return m, nil
	}

	// All five are running under the watchdog and answer on their sockets,
	// each with the pid the watchdog started.
	statuses := map[string]*seesawpb.ComponentStatus{}
	poll("every daemon running and answering", func() error {
		svcs, err := services()
		if err != nil {
			return fmt.Errorf("watchdog: %w", err)
		}
		for _, name := range daemons {
			s := svcs[name]
			if s == nil || s.State != watchdogpb.ServiceState_SERVICE_STATE_RUNNING || s.Pid <= 0 {
				return fmt.Errorf("watchdog reports %s as %v", name, s)
			}
			st, err := status(name)
			if err != nil {
				return fmt.Errorf("%s Component.Status: %w", name, err)
			}
			if st.Component != name || st.Pid != s.Pid {
				return fmt.Errorf("%s answers as %q pid %d; the watchdog started pid %d", name, st.Component, st.Pid, s.Pid)
			}
			statuses[name] = st
		}
		return nil
	})
	for name, st := range statuses {
		t.Logf("%-12s pid %d healthy=%v %s", name, st.Pid, st.Healthy, st.State)
	}

	// NCC tells the truth about IPVS on this kernel.
	_, probeErr := ipvs.Probe()
	hostHasIPVS := probeErr == nil
	ncc := statuses["ncc"]
	f := facility(ncc, "ipvs")
	switch {
	case f == nil:
		t.Errorf("NCC reports no ipvs facility: %v", ncc)
	case hostHasIPVS && !f.Available:
		t.Errorf("the kernel has IPVS but NCC says %q", f.Detail)
	case !hostHasIPVS && (f.Available || ncc.Healthy || !strings.Contains(f.Detail, "modprobe ip_vs")):
		t.Errorf("the kernel lacks IPVS (%v) but NCC reports %v (healthy=%v)", probeErr, f, ncc.Healthy)
	}

	// The engine loaded the sample config.
	cs, err := engine.ConfigStatus(ctx, &enginepb.ConfigStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if cs.Source != "disk" || cs.Loaded == nil || cs.LastError != "" {
		t.Errorf("ConfigStatus = %v", cs)
	}
	cl, err := engine.ClusterStatus(ctx, &enginepb.ClusterStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if cl.Site != site || len(cl.Nodes) < 2 || !cl.Nodes[0].ThisNode {
		t.Errorf("ClusterStatus = %v, want site %q with this node first", cl, site)
	}

	// HA's session reached the engine: the engine knows HA's state.
	poll("HA state reaches the engine", func() error {
		hs, err := engine.HAStatus(ctx, &enginepb.HAStatusRequest{})
		if err != nil {
			return err
		}
		// Alone on its segment, this node becomes master once the master
		// down interval passes without an advert.
		if hs.State != seesawpb.HAState_HA_STATE_LEADER || !facility2(hs.Facilities, "vrrp").GetAvailable() {
			return fmt.Errorf("engine HAStatus = %v", hs)
		}
		cl, err := engine.ClusterStatus(ctx, &enginepb.ClusterStatusRequest{})
		if err != nil || cl.HaState != seesawpb.HAState_HA_STATE_LEADER {
			return fmt.Errorf("ClusterStatus HA state %v (%v)", cl.GetHaState(), err)
		}
		return nil
	})
	// Healthcheck holds the engine's checks.
	poll("healthcheck holds the engine's checks", func() error {
		es, err := status("engine")
		if err != nil {
			return err
		}
		lc, err := hcpb.NewHealthcheckClient(conns["healthcheck"]).ListChecks(ctx, &hcpb.ListChecksRequest{})
		if err != nil {
			return err
		}
		if n := strconv.Itoa(len(lc.Checks)); n == "0" || n != es.Details["checks"] {
			return fmt.Errorf("healthcheck holds %s checks, engine derived %s", n, es.Details["checks"])
		}
		return nil
	})
	// The engine found the NCC (it polls every 5s), which also gives the
	// NCC those seconds to crash if it were going to.
	poll("engine reaches NCC", func() error {
		es, err := status("engine")
		if err != nil {
			return err
		}
		if f := facility(es, "ncc"); f == nil || !f.Available {
			return fmt.Errorf("engine's ncc facility: %v", f)
		}
		return nil
	})
	poll("NCC stays up", func() error {
		svcs, err := services()
		if err != nil {
			return err
		}
		s := svcs["ncc"]
		if s.Pid != ncc.Pid || s.Restarts != 0 || s.State != watchdogpb.ServiceState_SERVICE_STATE_RUNNING {
			t.Fatalf("NCC did not stay up: now %v, first seen as pid %d", s, ncc.Pid)
		}
		if up := s.Uptime.AsDuration(); up < 3*time.Second {
			return fmt.Errorf("NCC up for %v so far", up)
		}
		st, err := status("ncc")
		if err != nil || st.Pid != ncc.Pid {
			return fmt.Errorf("NCC status: %v, %v", st, err)
		}
		return nil
	})

	// ECU: /healthz says the engine answers; / shows the cluster.
	base := "http://" + a.httpAddr
	poll("ECU /healthz", func() error {
		code, body, err := get(base + "/healthz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/healthz: %d %s", code, body)
		}
		return nil
	})
	if code, body, err := get(base + "/"); err != nil || code != http.StatusOK || !strings.Contains(body, "<title>"+site+" ") {
		t.Errorf("ECU /: %d %v\n%s", code, err, body)
	}
	if code, body, err := get(base + "/api/v1/cluster"); err != nil || code != http.StatusOK || !strings.Contains(strings.ReplaceAll(body, " ", ""), `"site":"`+site+`"`) {
		t.Errorf("ECU /api/v1/cluster: %d %v\n%s", code, err, body)
	}

	// The seesaw CLI binary was built and runs.
	if out, err := exec.Command(filepath.Join(a.bin, "seesaw_cli"), "--help").CombinedOutput(); err != nil {
		t.Errorf("seesaw_cli --help: %v\n%s", err, out)
	}

	// SIGTERM: the watchdog stops every daemon and exits 0.
	svcs, err := services()
	if err != nil {
		t.Fatal(err)
	}
	if err := wd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		stopped = true
		if wdErr != nil {
			t.Fatalf("watchdog exit: %v", wdErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("watchdog did not exit within 60s of SIGTERM")
	}
	for name, s := range svcs {
		if err := syscall.Kill(int(s.Pid), 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after the watchdog exited (kill 0: %v)", name, s.Pid, err)
		}
	}
	// Each daemon stopped gracefully: a graceful gRPC stop removes its socket.
	for _, name := range daemons {
		if _, err := os.Stat(a.sock(name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left its socket behind (not a graceful stop?): %v", name, err)
		}
	}
}

// watchdogConfig is watchdog.cfg for a: the shipped file's services,
// dependencies and timeouts, with every path in the temporary directory.
func watchdogConfig(a *appliance) string {
	logDir := "-log_dir=" + a.logs
	svc := func(name, deps string, args ...string) string {
		s := fmt.Sprintf("[%s]\nbinary = %s\nargs = %s %s\n", name, filepath.Join(a.bin, "seesaw_"+name), logDir, strings.Join(args, " "))
		if deps != "" {
			s += "dependency = " + deps + "\n"
		}
		return s + "\n"
	}
	return strings.Join([]string{
		"# Written by deploy/integration for one test run.\n",
		svc("ncc", "", "-socket="+a.sock("ncc"), "-engine_user="),
		svc("engine", "ncc",
			"-socket="+a.sock("engine"), "-ncc_socket="+a.sock("ncc"),
			"-conf="+filepath.Join(a.etc, "seesaw.cfg"), "-cluster="+filepath.Join(a.etc, "cluster.pb"),
			"-reader_group=", "-daemon_user=root"),
		svc("ha", "engine", "-socket="+a.sock("ha"), "-engine_socket="+a.sock("engine")),
		svc("healthcheck", "engine", "-socket="+a.sock("healthcheck"), "-engine_socket="+a.sock("engine")),
		svc("ecu", "engine",
			"-socket="+a.sock("ecu"), "-engine_socket="+a.sock("engine"),
			"-ncc_socket="+a.sock("ncc"), "-ha_socket="+a.sock("ha"),
			"-healthcheck_socket="+a.sock("healthcheck"), "-watchdog_socket="+a.sock("watchdog"),
			"-http_addr="+a.httpAddr),
	}, "")
}

// copyConfig puts the sample seesaw.cfg and cluster.pb in etc and returns the
// cluster name they configure.
func copyConfig(t *testing.T, root, etc string) string {
	t.Helper()
	var site string
	for _, f := range []string{"seesaw.cfg", "cluster.pb"} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "samples", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(etc, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if f == "seesaw.cfg" {
			for _, line := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "name" {
					site = strings.TrimSpace(v)
				}
			}
		}
	}
	if site == "" {
		t.Fatal("deploy/samples/seesaw.cfg names no cluster")
	}
	return site
}

// moduleRoot is the directory holding go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the module")
	}
	return filepath.Dir(mod), nil
}

// httpGet fetches url from inside n's network namespace.
func httpGet(n *labtest.Node, url string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: n.Dial}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func facility(st *seesawpb.ComponentStatus, name string) *seesawpb.Facility {
	return facility2(st.GetFacilities(), name)
}

func facility2(fs []*seesawpb.Facility, name string) *seesawpb.Facility {
	for _, f := range fs {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// dumpLogs logs every file in dir, for a failed run.
func dumpLogs(t *testing.T, dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Type()&os.ModeSymlink != 0 || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if len(b) > 8000 {
			b = b[len(b)-8000:]
		}
		t.Logf("== %s ==\n%s", e.Name(), b)
	}
}
