package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// packageLocks are the files apt and dpkg lock while they work: dpkg's
// frontend and database locks, apt's package lists (listsLock) and its
// download cache. They are fcntl (POSIX) locks, which flock(2), and so
// flock(1), does not see.
func packageLocks() []string {
	return []string{"/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", listsLock, "/var/cache/apt/archives/lock"}
}

const listsLock = "/var/lib/apt/lists/lock"

// packageLockTimeout is how long the lab waits for another apt or dpkg run
// (unattended-upgrades, a person's apt install, a parallel make test) before
// it gives up: long enough for a large upgrade.
const packageLockTimeout = 10 * time.Minute

// aptLockSlice is the longest apt-get is let wait for dpkg's locks at one
// go (its DPkg::Lock::Timeout) before the lab looks again itself.
const aptLockSlice = 10 * time.Second

// aptGet runs apt-get, first waiting for whatever else holds the package
// manager's locks. apt-get's own DPkg::Lock::Timeout waits for dpkg's locks
// only: apt-get update fails at once when the package lists are locked, and
// install when the download cache is. So aptGet waits for all four, and
// when apt-get still fails on a lock (another run took it between the wait
// and apt-get), it waits again, until the deadline. apt-get download takes
// no lock; it waits only while an update is rewriting the lists it reads,
// not for a long upgrade that has nothing to do with it.
type aptGet struct {
	locks     []string      // lock files install and update wait for
	listsLock string        // the one download waits for
	timeout   time.Duration // for all the waiting in one run
	poll      time.Duration // how often to look at the locks again
	logf      func(string, ...any)
}

func newAptGet(logf func(string, ...any)) *aptGet {
	return &aptGet{locks: packageLocks(), listsLock: listsLock, timeout: packageLockTimeout, poll: time.Second, logf: logf}
}

// run runs apt-get args in dir (the current directory when empty) with
// DEBIAN_FRONTEND=noninteractive and returns its output, stdout and stderr
// together. args[0] is apt-get's command (install, update, download).
func (a *aptGet) run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	deadline := time.Now().Add(a.timeout)
	w := &lockWait{apt: a, locks: a.locks, deadline: deadline}
	if args[0] == "download" {
		w.locks = []string{a.listsLock}
	}
	for {
		if err := w.wait(ctx); err != nil {
			return nil, err
		}
		// apt-get waits for dpkg's locks itself, but silently (it says so
		// only in the output it returns when it gives up), so only briefly:
		// a longer wait comes back here, where it is reported.
		secs := int(min(aptLockSlice, max(time.Second, time.Until(deadline))).Round(time.Second) / time.Second)
		full := append([]string{args[0], "-o", "DPkg::Lock::Timeout=" + strconv.Itoa(secs)}, args[1:]...)
		cmd := exec.CommandContext(ctx, "apt-get", full...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err == nil || ctx.Err() != nil {
			return out, err
		}
		lock, pid, ok := lockFailure(out)
		if !ok {
			return out, err
		}
		w.tell(lock, pid)
		if !time.Now().Before(deadline) {
			return out, w.timedOut(lock, pid)
		}
		if err := sleepCtx(ctx, min(a.poll, time.Until(deadline))); err != nil {
			return out, err
		}
	}
}

// lockWait is one run's waiting: it says once that it waits, and gives up
// at the deadline.
type lockWait struct {
	apt      *aptGet
	locks    []string
	deadline time.Time
	told     bool
}

// wait returns when none of the locks is held, or an error naming the one
// still held at the deadline.
func (w *lockWait) wait(ctx context.Context) error {
	for {
		lock, pid, held := heldLock(w.locks)
		if !held {
			return nil
		}
		w.tell(lock, pid)
		if !time.Now().Before(w.deadline) {
			return w.timedOut(lock, pid)
		}
		if err := sleepCtx(ctx, min(w.apt.poll, time.Until(w.deadline))); err != nil {
			return fmt.Errorf("lab: waiting for the package manager's lock %s: %w", lock, err)
		}
	}
}

func (w *lockWait) tell(lock string, pid int) {
	if w.told {
		return
	}
	w.told = true
	w.apt.logf("lab: waiting for the package manager's lock held by %s on %s (up to %s)", holder(pid), lock, w.apt.timeout)
}

func (w *lockWait) timedOut(lock string, pid int) error {
	return &lockError{lock: lock, holder: holder(pid), waited: w.apt.timeout}
}

// lockError is another apt or dpkg run holding a lock for longer than the
// lab waits.
type lockError struct {
	lock   string
	holder string
	waited time.Duration
}

func (e *lockError) Error() string {
	return fmt.Sprintf("lab: the package manager's lock %s is still held by %s after %s; let that apt or dpkg run finish (or stop it) and try again",
		e.lock, e.holder, e.waited)
}

// isLockError reports whether err is aptGet giving up on a lock.
func isLockError(err error) bool {
	var le *lockError
	return errors.As(err, &le)
}

// aptError describes a failed apt-get run: what it did and the end of its
// output, or only the lock when that was what stopped it.
func aptError(what string, out []byte, err error, lines int) error {
	if isLockError(err) {
		return err
	}
	return fmt.Errorf("lab: %s: %w: %s", what, err, lastLines(out, lines))
}

// heldLock returns the first of locks that another process holds, and that
// process's PID (0 when unknown). A lock file that cannot be opened (it is
// missing, or only root may read it) counts as free: apt-get reports the
// lock itself if it matters.
func heldLock(locks []string) (lock string, pid int, ok bool) {
	for _, l := range locks {
		if pid, ok := lockHolder(l); ok {
			return l, pid, true
		}
	}
	return "", 0, false
}

// holder names the process that holds a lock, the way apt does.
func holder(pid int) string {
	if pid <= 0 {
		return "another process"
	}
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
		return fmt.Sprintf("PID %d (%s)", pid, strings.TrimSpace(string(comm)))
	}
	return fmt.Sprintf("PID %d", pid)
}

// apt's reports of a lock it could not take: "E: Could not get lock
// /var/lib/apt/lists/lock. It is held by process 1234 (apt-get)" (on
// stdout, after "Waiting for cache lock: ", while DPkg::Lock::Timeout
// runs), or without the holder when apt cannot tell; and, once that
// timeout has expired, only the summary on stderr.
var (
	aptLockRE        = regexp.MustCompile(`Could not get lock (/\S*?)\.?(?:\s|$)(?:It is held by process (\d+))?`)
	aptLockSummaryRE = regexp.MustCompile(`Unable to (?:acquire the dpkg frontend lock|lock the administration directory) \((/[^)]*)\)`)
)

// lockFailure reports whether apt-get failed because another process held
// a lock, and which lock and process (0 when apt did not say).
func lockFailure(out []byte) (lock string, pid int, ok bool) {
	if m := aptLockRE.FindSubmatch(out); m != nil {
		pid, _ = strconv.Atoi(string(m[2]))
		return string(m[1]), pid, true
	}
	if m := aptLockSummaryRE.FindSubmatch(out); m != nil {
		return string(m[1]), 0, true
	}
	return "", 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
