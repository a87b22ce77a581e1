package conntrackd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// ErrNotInstalled is wrapped when the conntrackd binary is missing.
var ErrNotInstalled = errors.New("conntrackd is not installed")

// Daemon is one conntrackd the NCC runs: started, restarted with a new
// configuration, told the node's role, stopped. Its methods are not safe
// for concurrent use (the NCC calls them under its lock).
type Daemon struct {
	Binary string // default DefaultBinary
	Paths  Paths
	Logf   func(format string, args ...any)
	// Timeout bounds each client command and the wait for a started
	// daemon's socket. Default 30s (a commit of many entries takes time).
	Timeout time.Duration

	conf string // the configuration the running one was started with
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // cmd's exit, once done
	role Role
	// before: the steps before the network of the transition under way
	// have been run (After then finishes it).
	before bool

	waitMu sync.Mutex
}

func (d *Daemon) binary() string {
	if d.Binary != "" {
		return d.Binary
	}
	return DefaultBinary
}

func (d *Daemon) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return 30 * time.Second
}

func (d *Daemon) logf(format string, args ...any) {
	if d.Logf != nil {
		d.Logf(format, args...)
	}
}

// Role is what conntrackd was last told (RoleUnknown after a start).
func (d *Daemon) Role() Role { return d.role }

// Running says whether the child runs.
func (d *Daemon) Running() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Ensure makes conntrackd run with c's configuration: started if it is
// not running (it died, or never ran), restarted if the configuration
// changed. It returns once the daemon answers on its socket. started says
// it was (re)started, so has been told no role yet.
func (d *Daemon) Ensure(c *nccpb.Conntrackd) (started bool, err error) {
	conf, err := Config(c, d.Paths)
	if err != nil {
		return false, err
	}
	if d.Running() && conf == d.conf {
		return false, nil
	}
	if _, err := os.Stat(d.binary()); err != nil {
		return false, fmt.Errorf("%w (%s: %v): full-NAT connections will not survive a failover; install Debian's conntrackd (apt-get install conntrackd), or set [connection_sync] conntrackd = false in seesaw.cfg",
			ErrNotInstalled, d.binary(), errors.Unwrap(err))
	}
	if d.Running() {
		d.logf("conntrackd: configuration changed: restarting it")
	} else if d.cmd != nil {
		d.logf("conntrackd: it had exited (%v): starting it again", d.err)
	}
	d.Stop()
	if err := os.MkdirAll(d.Paths.Dir, 0o750); err != nil {
		return false, fmt.Errorf("conntrackd: %v", err)
	}
	// A lock or socket left by a conntrackd that was killed with its NCC
	// would make this one refuse to start.
	os.Remove(d.Paths.Lock())
	os.Remove(d.Paths.Socket())
	if err := os.WriteFile(d.Paths.Config(), []byte(conf), 0o640); err != nil {
		return false, fmt.Errorf("conntrackd: %v", err)
	}
	cmd := exec.Command(d.binary(), "-C", d.Paths.Config())
	out := &tailBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("conntrackd: start: %v", err)
	}
	d.cmd, d.conf, d.role, d.before, d.done, d.err = cmd, conf, RoleUnknown, false, make(chan struct{}), nil
	done := d.done
	go func() {
		err := cmd.Wait()
		d.waitMu.Lock()
		d.err = fmt.Errorf("%v; it said: %s", err, strings.TrimSpace(out.String()))
		d.waitMu.Unlock()
		close(done)
	}()
	d.logf("conntrackd: started (pid %d) with %s: %s -> %s on %s", cmd.Process.Pid, d.Paths.Config(), c.LocalAddress, c.PeerAddress, c.Interface)
	// Ready once its control socket answers.
	deadline := time.Now().Add(d.timeout())
	for {
		if _, err := os.Stat(d.Paths.Socket()); err == nil {
			if err := d.run(Step{"-s", "show statistics"}); err == nil {
				return true, nil
			}
		}
		select {
		case <-done:
			d.waitMu.Lock()
			defer d.waitMu.Unlock()
			return true, fmt.Errorf("conntrackd exited at start: %v (log %s)", d.err, d.Paths.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return true, fmt.Errorf("conntrackd: no answer on %s within %v of its start", d.Paths.Socket(), d.timeout())
		}
	}
}

// Stop kills the child, if any, and waits for it.
func (d *Daemon) Stop() {
	if d.cmd == nil {
		return
	}
	if d.Running() {
		d.cmd.Process.Kill()
		<-d.done
		d.logf("conntrackd: stopped")
	}
	d.cmd, d.conf, d.role = nil, "", RoleUnknown
}

// Before runs the steps of a role change that must come before the
// network is applied (Transition); After, those that come after it, and
// records the new role once all have succeeded, so that a failed step is
// tried again at the next Apply.
func (d *Daemon) Before(master bool) error {
	before, _ := Transition(d.role, master)
	if err := d.steps(before); err != nil {
		d.before = false
		return err
	}
	d.before = len(before) > 0
	return nil
}

func (d *Daemon) After(master bool) error {
	before, after := Transition(d.role, master)
	if len(before) > 0 && !d.before {
		// Before failed (or was not called): the role is not reached.
		return nil
	}
	if err := d.steps(after); err != nil {
		return err
	}
	d.before = false
	d.role = RoleBackup
	if master {
		d.role = RoleMaster
	}
	return nil
}

func (d *Daemon) steps(steps []Step) error {
	var errs []error
	for _, s := range steps {
		start := time.Now()
		if err := d.run(s); err != nil {
			errs = append(errs, err)
			continue
		}
		d.logf("conntrackd: %s (%s) in %v", s.What, s.Flag, time.Since(start).Round(time.Microsecond))
	}
	return errors.Join(errs...)
}

// run runs one client command against the running daemon.
func (d *Daemon) run(s Step) error {
	if !d.Running() {
		return fmt.Errorf("conntrackd: cannot %s: it is not running", s.What)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout())
	defer cancel()
	out, err := exec.CommandContext(ctx, d.binary(), "-C", d.Paths.Config(), s.Flag).CombinedOutput()
	if err != nil {
		return fmt.Errorf("conntrackd %s (%s): %v: %s", s.Flag, s.What, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// tailBuffer keeps the last few KiB a child wrote.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if n := len(t.buf) - 4096; n > 0 {
		t.buf = t.buf[n:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
