package appliance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
)

// TestLabApplianceRestart proves the unit's rule under held connections,
// with the real daemons and IPVS: an upgrade (a new binary in place, then
// a reload: SIGHUP, as systemctl reload and the package's postinst send)
// restarts every daemon as a new process of the new binary and every held
// connection still carries data after; a stop (SIGTERM, then the unit's
// ExecStopPost, seesaw_ncc --release) takes the VIPs off the node but
// leaves IPVS as it was, and after a new start every held connection still
// carries data.
func TestLabApplianceRestart(t *testing.T) {
	labtest.RequireLab(t)
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	r := &labRig{servers: map[string]*Server{}}
	r.topo = labtest.New(t, labtest.Config{LBs: 1, Backends: 2, LBNIC: "eth2", RoutedBackends: true})
	r.lb, r.client, r.backends = r.topo.LBs[0], r.topo.Client, r.topo.Backends
	for _, b := range r.backends {
		if err := DSR(b, dsrVIP4, dsrVIP6); err != nil {
			t.Fatal(err)
		}
		r.servers[b.Role] = Serve(t, b, ServeOptions{TCP: []string{fmt.Sprintf(":%d", svcPort)}, Health: []string{fmt.Sprintf(":%d", healthPort)}})
	}
	// A copy of the build, so that the test can upgrade it in place as
	// dpkg and install.sh do.
	bin = copyBin(t, bin)
	// Checks more patient than the other tests': this test is about the
	// restarts, and the lab's guest (no KVM, on a shared host) may stall
	// a backend's answer past 1s. A healthcheck restarted by the reload
	// has no history, and its first failed probe takes a destination out
	// at once (retries do not apply to it), which resets the connections
	// through it: seen once here with a 1s timeout.
	pb := labClusterPB(r.backends)
	slow := strings.ReplaceAll(pb, fmt.Sprintf("interval: %d timeout: %d", checkInterval, checkTimeout), "interval: 5 timeout: 4")
	if slow == pb {
		t.Fatal("the lab cluster's check is not where this test expects it")
	}
	opts := Options{Bin: bin, SeesawCfg: labSeesawCfg, ClusterPB: slow}
	r.a = Start(t, r.lb, opts)
	r.a.WaitRunning(t, 2*time.Minute)
	r.waitSteady(t)

	held := newHeld(t, r.hold(t))
	exchange := func(after string) { t.Helper(); held.exchange(t, after, 90*time.Second) }
	exchange("opening")

	// Upgrade as the package does: a new file in place of the old (the
	// daemons keep running the old one), then a reload. Every daemon is a
	// new process of the new file, the node master again with every
	// destination in, every held connection alive.
	before, err := r.a.Services()
	if err != nil {
		t.Fatal(err)
	}
	oldFile, err := os.Stat(filepath.Join(bin, "seesaw-multicall"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Daemons {
		if exe, err := os.Stat(fmt.Sprintf("/proc/%d/exe", before[name].GetPid())); err != nil || !os.SameFile(exe, oldFile) {
			t.Fatalf("%s (pid %d) does not run the build: %v", name, before[name].GetPid(), err)
		}
	}
	newFile := upgradeBin(t, bin)
	reloadAt := time.Now()
	if err := r.a.wd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	r.a.Wait(t, 3*time.Minute, "every daemon restarted by the reload", func() error {
		svcs, err := r.a.running()
		if err != nil {
			return err
		}
		for _, name := range Daemons {
			if svcs[name].GetPid() == before[name].GetPid() {
				return fmt.Errorf("%s still runs as pid %d", name, before[name].GetPid())
			}
		}
		return nil
	})
	t.Logf("reload: every daemon a new process %v after SIGHUP", time.Since(reloadAt).Round(time.Millisecond))
	svcs, err := r.a.Services()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Daemons {
		if exe, err := os.Stat(fmt.Sprintf("/proc/%d/exe", svcs[name].GetPid())); err != nil || !os.SameFile(exe, newFile) {
			t.Errorf("after the upgrade and reload %s (pid %d) does not run the new file: %v", name, svcs[name].GetPid(), err)
		}
	}
	steady := r.waitSteady(t)
	t.Logf("reload: master with every destination in IPVS %v after that", steady.Round(time.Millisecond))
	exchange("reload")

	// Stop as systemd does: SIGTERM to the watchdog, then ExecStopPost.
	tabBefore, err := IPVS(r.lb)
	if err != nil {
		t.Fatal(err)
	}
	stopAt := time.Now()
	if err := r.a.Stop(); err != nil {
		t.Fatal(err)
	}
	release := exec.Command(filepath.Join(bin, "seesaw_ncc"), "--release", "--logtostderr",
		"-state_file="+filepath.Join(r.a.Dir, "run", "ncc", "desired.pb"))
	var out strings.Builder
	release.Stdout, release.Stderr = &out, &out
	if err := r.lb.Start(release); err != nil {
		t.Fatal(err)
	}
	if err := release.Wait(); err != nil {
		t.Fatalf("seesaw_ncc --release: %v\n%s", err, out.String())
	}
	// Released: no VIP on the node, the LB interface down; kept: IPVS,
	// every service and destination as before.
	addrs := r.lb.Run(t, "ip", "-o", "addr", "show")
	for _, f := range flows {
		if strings.Contains(addrs, " "+f.vip.String()+"/") {
			t.Errorf("after stop and release, %s is still on the node:\n%s", f.vip, addrs)
		}
	}
	if link := r.lb.Run(t, "ip", "-o", "link", "show", "eth2"); strings.Contains(link, ",UP") {
		t.Errorf("after release the LB interface is up: %s", link)
	}
	tabAfter, err := IPVS(r.lb)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.steady(); err != nil {
		t.Errorf("after stop and release IPVS is not as it was: %v\nbefore:\n%s", err, tabBefore.Text)
	}
	conns := r.lb.Run(t, "ipvsadm", "-L", "-n", "-c")
	if n := strings.Count(conns, "ESTABLISHED"); n < len(held.conns) {
		t.Errorf("after stop and release IPVS holds %d established connections, want the %d held:\n%s", n, len(held.conns), conns)
	}
	t.Logf("stopped and released in %v; IPVS kept %d services; its connection table:\n%s", time.Since(stopAt).Round(time.Millisecond), len(tabAfter.Services), conns)

	// Start again: the new NCC adopts IPVS; every held connection lives.
	r.a = Start(t, r.lb, opts)
	r.a.WaitRunning(t, 2*time.Minute)
	steady = r.waitSteady(t)
	t.Logf("start: master with every destination in IPVS %v after the new watchdog started (%v after the stop began)",
		steady.Round(time.Millisecond), time.Since(stopAt).Round(time.Millisecond))
	exchange("stop and start")
	held.report(t)
}

// copyBin copies the build in dir to a directory of the test's own: one
// file, hard-linked under every binary's name, as make build lays it out.
func copyBin(t *testing.T, dir string) string {
	t.Helper()
	// A short directory: the appliance's socket paths derive from its
	// own directory, not this one, but keep it tidy all the same.
	out, err := os.MkdirTemp("", "seesaw-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(out) })
	installBin(t, filepath.Join(dir, "seesaw-multicall"), out)
	return out
}

// upgradeBin puts a new copy of dir's multi-call file in its place and
// points every name at it, as install.sh does (dpkg likewise unpacks a new
// file and renames it over the old): processes of the old file keep
// running it. It returns the new file's info.
func upgradeBin(t *testing.T, dir string) os.FileInfo {
	t.Helper()
	installBin(t, filepath.Join(dir, "seesaw-multicall"), dir)
	fi, err := os.Stat(filepath.Join(dir, "seesaw-multicall"))
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// installBin copies src to dir/seesaw-multicall by way of a new file
// renamed into place, and hard-links every binary's name to it.
func installBin(t *testing.T, src, dir string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".seesaw-multicall.new")
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "seesaw-multicall")
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
	for _, name := range Binaries {
		link := filepath.Join(dir, name)
		os.Remove(link)
		if err := os.Link(dst, link); err != nil {
			t.Fatal(err)
		}
	}
}

// hold opens two TCP connections through every NAT and DSR VIP that
// serves, one to each backend by round robin.
func (r *labRig) hold(t *testing.T) []*Conn {
	t.Helper()
	var held []*Conn
	for _, f := range flows {
		if f.proto != "tcp" || f.vip == quiescentVIP {
			continue
		}
		for i := 0; i < len(r.backends); i++ {
			c, err := Hold(r.client, f.dst(), 10*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			held = append(held, c)
		}
	}
	var names []string
	for _, c := range held {
		names = append(names, fmt.Sprintf("%s->%s", c.Dst, c.Answer.Backend))
	}
	t.Logf("holding %d connections: %s", len(held), strings.Join(names, " "))
	return held
}
