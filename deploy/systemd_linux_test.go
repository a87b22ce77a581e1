package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/testenv"
)

// container is a systemd booted by systemd-nspawn over an overlay of the
// host's root: the host's own files, none of its changes kept, no network
// but loopback.
type container struct {
	t      *testing.T
	root   string // the overlay, as the host sees it
	nspawn *exec.Cmd
	out    bytes.Buffer
	exited chan struct{}
	init   int // the container's PID 1, as the host sees it
}

// bootContainer boots systemd in a container and waits until it has
// started (basic.target: the host's own services stay off).
func bootContainer(t *testing.T) *container {
	t.Helper()
	testenv.RequireRoot(t)
	nspawn, err := exec.LookPath("systemd-nspawn")
	if err != nil {
		t.Fatal("systemd-nspawn not found (Debian package systemd-container); make test installs it (deploy/deps.sh)")
	}
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		t.Fatalf("no systemd on this host to boot: %v", err)
	}
	dir, err := os.MkdirTemp("", "seesaw-nspawn-")
	if err != nil {
		t.Fatal(err)
	}
	c := &container{t: t, root: filepath.Join(dir, "merged"), exited: make(chan struct{})}
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=/,upperdir=%s/upper,workdir=%s/work", dir, dir)
	if err := syscall.Mount("overlay", c.root, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay of / on %s: %v", c.root, err)
	}
	t.Cleanup(func() {
		// Unmounted first, so that removing the directory never reaches
		// through the overlay.
		if err := syscall.Unmount(c.root, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v; left %s in place", c.root, err, dir)
			return
		}
		os.RemoveAll(dir)
	})
	// Its own machine id, or nspawn refuses to share the host's journal
	// directory name.
	id := make([]byte, 16)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	f.Read(id)
	f.Close()
	c.write("/etc/machine-id", fmt.Sprintf("%x\n", id), 0o444)
	// A container image's policy-rc.d (Docker's "exit 101") would keep
	// the maintainer scripts from starting or reloading anything, as no
	// real machine does.
	if err := os.Remove(filepath.Join(c.root, "usr/sbin/policy-rc.d")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}

	// nspawn keeps what it propagates into the container under
	// /run/systemd/nspawn and will only remove it from a tmpfs; /run here
	// may be on disk. A mount namespace of its own keeps that tmpfs (and
	// nspawn's other mounts) off the host. --keep-unit and --register=no:
	// no host systemd or machined is needed.
	script := "mkdir -p /run/systemd/nspawn && mount -t tmpfs tmpfs /run/systemd/nspawn && exec " + nspawn +
		" --quiet --directory=" + c.root + " --boot --private-network --register=no --keep-unit --link-journal=no" +
		" --console=passive --machine=seesawtest -- --unit=basic.target"
	c.nspawn = exec.Command("unshare", "--mount", "--propagation=private", "sh", "-c", script)
	c.nspawn.Stdout, c.nspawn.Stderr = &c.out, &c.out
	c.nspawn.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.nspawn.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.nspawn.Wait(); close(c.exited) }()
	t.Cleanup(c.shutdown)
	c.waitFor(2*time.Minute, "the container's systemd", func() error {
		select {
		case <-c.exited:
			t.Fatalf("systemd-nspawn exited: %s", c.out.String())
		default:
		}
		pid, err := containerInit(c.nspawn.Process.Pid)
		if err != nil {
			return err
		}
		c.init = pid
		return nil
	})
	c.waitFor(3*time.Minute, "the container's boot", func() error {
		out, _ := c.exec("systemctl", "is-system-running")
		if s := strings.TrimSpace(out); s != "running" && s != "degraded" {
			return fmt.Errorf("system %q", s)
		}
		return nil
	})
	return c
}

// containerInit finds the container's PID 1 among nspawn's descendants.
func containerInit(nspawn int) (int, error) {
	queue := []int{nspawn}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err == nil {
			for _, l := range strings.Split(string(st), "\n") {
				if f := strings.Fields(l); len(f) > 2 && f[0] == "NSpid:" && f[len(f)-1] == "1" {
					return pid, nil
				}
			}
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				queue = append(queue, n)
			}
		}
	}
	return 0, fmt.Errorf("no PID 1 under nspawn (pid %d) yet", nspawn)
}

// exec runs a command inside the container and returns its output.
func (c *container) exec(name string, args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"--target", strconv.Itoa(c.init), "--all", "--", name}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs a command inside the container and fails the test if it fails.
func (c *container) must(name string, args ...string) string {
	c.t.Helper()
	out, err := c.exec(name, args...)
	if err != nil {
		c.t.Fatalf("in the container: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// write writes a file into the container's tree.
func (c *container) write(path, body string, mode os.FileMode) {
	c.t.Helper()
	p := filepath.Join(c.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		c.t.Fatal(err)
	}
}

func (c *container) waitFor(timeout time.Duration, what string, f func() error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// shutdown powers the container off, and kills it if it will not go.
func (c *container) shutdown() {
	if c.init != 0 {
		syscall.Kill(c.init, syscall.Signal(34+4)) // SIGRTMIN+4: systemd powers off
	}
	select {
	case <-c.exited:
	case <-time.After(time.Minute):
		syscall.Kill(-c.nspawn.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
	if c.t.Failed() {
		c.t.Logf("systemd-nspawn's output:\n%s", c.out.String())
	}
}

// show is one property of a unit.
func (c *container) show(unit, prop string) string {
	c.t.Helper()
	return strings.TrimSpace(c.must("systemctl", "show", "--value", "-p", prop, unit))
}

// daemons maps each Seesaw daemon running in the container to its pid.
func (c *container) daemons() map[string]string {
	// The name is argv[0] (the kernel's comm is cut at 15 bytes).
	out, _ := c.exec("pgrep", "-a", "^seesaw_")
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			m[filepath.Base(f[1])] = f[0]
		}
	}
	return m
}

var fiveDaemons = []string{"seesaw_ncc", "seesaw_engine", "seesaw_ha", "seesaw_healthcheck", "seesaw_ecu"}

// allNew says whether the watchdog and the five daemons run, each daemon
// as another process than in before.
func allNew(now, before map[string]string) error {
	if now["seesaw_watchdog"] == "" {
		return fmt.Errorf("no watchdog: %v", now)
	}
	for _, d := range fiveDaemons {
		if now[d] == "" || now[d] == before[d] {
			return fmt.Errorf("%s runs as %q (before: %q)", d, now[d], before[d])
		}
	}
	return nil
}

// TestSystemdUnit installs the package in a container that boots systemd
// and drives the real unit: no start without configs; start returns once
// READY=1 came, with every daemon running; a killed daemon comes back; a
// reload and an upgrade restart the daemons but not the watchdog; a
// stopped watchdog is killed by WatchdogSec and the unit comes back (not
// with -short); stop and purge leave nothing behind.
func TestSystemdUnit(t *testing.T) {
	testenv.RequireRoot(t)
	bindir, out := t.TempDir(), t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(bindir, "seesaw-multicall"), "./deploy/cmd/seesaw-multicall")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	deb := func(version string) string {
		cmd := exec.Command("bash", "deb.sh", out)
		cmd.Env = append(os.Environ(), "BINDIR="+bindir, "DEB_VERSION="+version)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("deb.sh: %v\n%s", err, b)
		}
		return strings.TrimSpace(string(b))
	}
	v1, v2 := deb("1.0"), deb("1.1")

	c := bootContainer(t)
	const unit = "seesaw_watchdog.service"
	leftovers := func() string {
		out, _ := c.exec("sh", "-c", "find /etc /usr /lib /var /run -xdev -name '*seesaw*' 2>/dev/null | sort")
		return out
	}
	before := leftovers()
	for i, p := range []string{v1, v2} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c.write(fmt.Sprintf("/root/seesaw-%d.deb", i+1), string(b), 0o644)
	}
	c.must("dpkg", "-i", "/root/seesaw-1.deb")
	if out, _ := c.exec("systemctl", "is-enabled", unit); strings.TrimSpace(out) != "enabled" {
		t.Errorf("after install the unit is %q, want enabled (it waits for the configs)", out)
	}
	if out := c.must("id", "seesaw"); !strings.Contains(out, "(seesaw)") {
		t.Errorf("id seesaw: %s", out)
	}
	if out := c.must("stat", "-c", "%U:%G %a", "/var/log/seesaw"); strings.TrimSpace(out) != "root:seesaw 750" {
		t.Errorf("/var/log/seesaw: %s", out)
	}

	// Without the operator's configs the unit does not start.
	c.must("systemctl", "start", unit)
	if got := c.show(unit, "ConditionResult"); got != "no" {
		t.Errorf("started without /etc/seesaw/seesaw.cfg: ConditionResult=%s", got)
	}
	c.must("cp", "/usr/share/doc/seesaw/examples/seesaw.cfg", "/usr/share/doc/seesaw/examples/cluster.pb", "/etc/seesaw/")

	// Type=notify: start returns once READY=1 came, which the watchdog
	// sends once every daemon has started.
	c.must("systemctl", "start", unit)
	if got := c.show(unit, "ActiveState") + "/" + c.show(unit, "SubState"); got != "active/running" {
		t.Fatalf("after start: %s\n%s", got, c.must("systemctl", "status", "--no-pager", unit))
	}
	started := c.daemons()
	if err := allNew(started, nil); err != nil {
		t.Errorf("when start returned: %v", err)
	}
	mainPID := c.show(unit, "MainPID")
	if mainPID != started["seesaw_watchdog"] {
		t.Errorf("MainPID %s, watchdog %s", mainPID, started["seesaw_watchdog"])
	}

	// A killed daemon: the watchdog starts it again; systemd sees nothing.
	c.must("kill", "-KILL", started["seesaw_engine"])
	c.waitFor(time.Minute, "the engine restarted", func() error {
		now := c.daemons()
		if now["seesaw_engine"] == "" || now["seesaw_engine"] == started["seesaw_engine"] {
			return fmt.Errorf("engine %q", now["seesaw_engine"])
		}
		return nil
	})
	if got := c.show(unit, "MainPID"); got != mainPID {
		t.Errorf("a daemon's death restarted the watchdog: MainPID %s, was %s", got, mainPID)
	}

	// Reload: every daemon anew, the watchdog the same.
	prev := c.daemons()
	c.must("systemctl", "reload", unit)
	c.waitFor(2*time.Minute, "every daemon restarted by the reload", func() error { return allNew(c.daemons(), prev) })
	if got := c.show(unit, "MainPID"); got != mainPID {
		t.Errorf("reload restarted the watchdog: MainPID %s, was %s", got, mainPID)
	}

	// Upgrade: postinst reloads, so again every daemon anew and the
	// watchdog (and the unit) never stopped.
	prev = c.daemons()
	c.must("dpkg", "-i", "/root/seesaw-2.deb")
	c.waitFor(2*time.Minute, "every daemon restarted by the upgrade", func() error { return allNew(c.daemons(), prev) })
	if got := c.show(unit, "MainPID"); got != mainPID {
		t.Errorf("the upgrade restarted the watchdog: MainPID %s, was %s", got, mainPID)
	}
	if got := c.show(unit, "NRestarts"); got != "0" {
		t.Errorf("NRestarts %s after the upgrade", got)
	}

	if testing.Short() {
		t.Log("-short: not waiting for WatchdogSec (30s) to fire")
	} else {
		// A hung watchdog: systemd kills it after WatchdogSec and starts
		// the unit again.
		c.must("kill", "-STOP", mainPID)
		stoppedAt := time.Now()
		c.waitFor(3*time.Minute, "systemd to restart the stopped watchdog", func() error {
			pid := c.show(unit, "MainPID")
			if pid == mainPID || pid == "0" || c.show(unit, "ActiveState") != "active" {
				return fmt.Errorf("MainPID %s, %s", pid, c.show(unit, "ActiveState"))
			}
			return allNew(c.daemons(), nil)
		})
		t.Logf("WatchdogSec fired and the unit was back %v after SIGSTOP", time.Since(stoppedAt).Round(time.Second))
		if got := c.show(unit, "NRestarts"); got != "1" {
			t.Errorf("NRestarts %s, want 1", got)
		}
	}

	// Stop: nothing of the appliance runs, /run/seesaw is gone.
	c.must("systemctl", "stop", unit)
	if d := c.daemons(); len(d) > 0 {
		t.Errorf("after stop still running: %v", d)
	}
	if out, err := c.exec("test", "-e", "/run/seesaw"); err == nil {
		t.Errorf("after stop /run/seesaw remains %s", out)
	}

	// Purge: nothing named seesaw is left that was not there before (the
	// seesaw user stays, as Debian keeps system users). What was there
	// before (this host's own /var/lib/seesaw, say) may have gone.
	c.must("dpkg", "--purge", "seesaw")
	was := map[string]bool{}
	for _, p := range strings.Fields(before) {
		was[p] = true
	}
	for _, p := range strings.Fields(leftovers()) {
		if !was[p] {
			t.Errorf("after purge %s is left", p)
		}
	}
	if out, err := c.exec("test", "-e", "/etc/seesaw"); err == nil {
		t.Errorf("after purge /etc/seesaw remains %s", out)
	}
}
