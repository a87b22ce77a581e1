package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lockHolderEnv makes this test binary a helper that holds a lock (see
// TestLockHolderHelper).
const lockHolderEnv = "SEESAW_LAB_LOCK_HOLDER"

// TestLockHolderHelper is not a test. Run with lockHolderEnv set to a path,
// it takes an fcntl write lock on that file the way apt and dpkg do, says
// "locked", and keeps the lock until its stdin closes.
func TestLockHolderHelper(t *testing.T) {
	path := os.Getenv(lockHolderEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err == nil {
		err = unix.FcntlFlock(f.Fd(), unix.F_SETLK, &unix.Flock_t{Type: unix.F_WRLCK})
	}
	if err != nil {
		fmt.Println("lock:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// holdLock locks path from another process, as another apt run would, and
// returns that process's PID and a function that ends it, freeing the lock.
func holdLock(t *testing.T, path string) (pid int, release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolderHelper$")
	cmd.Env = append(os.Environ(), lockHolderEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			stdin.Close()
			cmd.Wait()
		})
	}
	t.Cleanup(release)
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("lock holder: %q", line)
	}
	return cmd.Process.Pid, release
}

// aptFixture is a scratch root with the four lock files and a fake apt-get
// first in PATH that records its arguments, one call a line, in calls (the
// script it ends with finds that file in $CALLS).
type aptFixture struct {
	dir   string
	locks []string // frontend, dpkg, lists, archives
	calls string
}

func newAptFixture(t *testing.T, script string) *aptFixture {
	t.Helper()
	dir := t.TempDir()
	f := &aptFixture{dir: dir, calls: filepath.Join(dir, "calls")}
	for _, l := range []string{"dpkg/lock-frontend", "dpkg/lock", "lists/lock", "archives/lock"} {
		p := filepath.Join(dir, l)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o640); err != nil {
			t.Fatal(err)
		}
		f.locks = append(f.locks, p)
	}
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	fake := "#!/bin/sh\nCALLS=" + f.calls + "\necho \"$*\" >> \"$CALLS\"\n" + script
	if err := os.WriteFile(filepath.Join(bin, "apt-get"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return f
}

// apt returns an aptGet on the fixture's locks that sends what it logs to
// the returned channel.
func (f *aptFixture) apt(timeout time.Duration) (*aptGet, chan string) {
	logs := make(chan string, 100)
	return &aptGet{
		locks:     f.locks,
		listsLock: f.locks[2],
		timeout:   timeout,
		poll:      5 * time.Millisecond,
		logf:      func(format string, args ...any) { logs <- fmt.Sprintf(format, args...) },
	}, logs
}

func (f *aptFixture) callLines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(f.calls)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// waitFor returns the next value from ch, failing the test if none comes
// within a deadline far longer than the test needs.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("no %s within a minute", what)
		panic("unreachable")
	}
}

func TestLockHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	os.WriteFile(p, nil, 0o640)
	if _, held := lockHolder(p); held {
		t.Fatal("a free lock reported held")
	}
	if _, held := lockHolder(p + ".missing"); held {
		t.Fatal("a missing lock file reported held")
	}
	pid, release := holdLock(t, p)
	if got, held := lockHolder(p); !held || got != pid {
		t.Fatalf("lockHolder = %d, %v; want %d, true", got, held, pid)
	}
	release()
	if _, held := lockHolder(p); held {
		t.Fatal("lock still reported held after its holder exited")
	}
}

// TestAptGetWaitsForLock holds the package lists' lock while the lab
// installs: apt-get must not run until the lock is free, the wait must be
// reported once, with the holder's PID, and the install must then proceed.
func TestAptGetWaitsForLock(t *testing.T) {
	f := newAptFixture(t, "exit 0\n")
	pid, release := holdLock(t, f.locks[2])
	apt, logs := f.apt(time.Hour)
	done := make(chan error, 1)
	go func() {
		_, err := apt.run(context.Background(), "", "install", "-y", "qemu-system-x86")
		done <- err
	}()
	msg := waitFor(t, logs, "waiting message")
	for _, want := range []string{"waiting for the package manager's lock held by PID " + strconv.Itoa(pid) + " (", " on " + f.locks[2] + " "} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	// Told it waits, so it has not run apt-get, and cannot until the lock is free.
	if calls := f.callLines(t); calls != nil {
		t.Fatalf("apt-get ran while the lock was held: %q", calls)
	}
	release()
	if err := waitFor(t, done, "install"); err != nil {
		t.Fatal(err)
	}
	want := "install -o DPkg::Lock::Timeout=10 -y qemu-system-x86"
	if calls := f.callLines(t); len(calls) != 1 || calls[0] != want {
		t.Errorf("apt-get calls %q, want [%q]", calls, want)
	}
	close(logs)
	for m := range logs {
		t.Errorf("said more than once: %q", m)
	}
}

// TestAptGetLockTimeout gives up on a lock that is never freed, with an
// error that names the lock and its holder, never having run apt-get.
func TestAptGetLockTimeout(t *testing.T) {
	f := newAptFixture(t, "exit 0\n")
	pid, _ := holdLock(t, f.locks[0])
	apt, _ := f.apt(20 * time.Millisecond)
	_, err := apt.run(context.Background(), "", "update", "-q")
	if !isLockError(err) {
		t.Fatalf("err = %v, want a lock error", err)
	}
	for _, want := range []string{"lock " + f.locks[0] + " is still held by PID " + strconv.Itoa(pid) + " (", "after 20ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if calls := f.callLines(t); calls != nil {
		t.Errorf("apt-get ran while the lock was held: %q", calls)
	}
	// aptError keeps the lock error as it is.
	if got := aptError("apt-get update", nil, err, 5); got != err {
		t.Errorf("aptError rewrapped the lock error: %v", got)
	}
}

// TestAptGetRetriesLockFailure: the locks looked free, but another run took
// one before apt-get could (apt-get says so and fails); the lab waits and
// runs apt-get again.
func TestAptGetRetriesLockFailure(t *testing.T) {
	f := newAptFixture(t, `n=$(wc -l < "$CALLS")
if [ "$n" -lt 3 ]; then
  echo "E: Could not get lock /var/cache/apt/archives/lock. It is held by process 4242 (apt-get)" >&2
  echo "E: Unable to lock directory /var/cache/apt/archives/" >&2
  exit 100
fi
echo done
`)
	apt, logs := f.apt(time.Hour)
	out, err := apt.run(context.Background(), "", "install", "-y", "x")
	if err != nil || strings.TrimSpace(string(out)) != "done" {
		t.Fatalf("run = %q, %v", out, err)
	}
	if n := len(f.callLines(t)); n != 3 {
		t.Errorf("apt-get ran %d times, want 3", n)
	}
	close(logs)
	var said []string
	for m := range logs {
		said = append(said, m)
	}
	if len(said) != 1 || !strings.Contains(said[0], "PID 4242") || !strings.Contains(said[0], "/var/cache/apt/archives/lock") {
		t.Errorf("said %q, want one message naming PID 4242 and the archives lock", said)
	}

	// A lock failure at the deadline is a lock error.
	os.Remove(f.calls)
	apt, _ = f.apt(0)
	if _, err := apt.run(context.Background(), "", "install", "-y", "x"); !isLockError(err) || !strings.Contains(err.Error(), "/var/cache/apt/archives/lock") {
		t.Errorf("err = %v, want a lock error naming the archives lock", err)
	}
}

// TestAptGetDownloadIgnoresDpkgLock: apt-get download takes no lock, so a
// long dpkg run does not hold it up; only an update of the lists does.
func TestAptGetDownloadIgnoresDpkgLock(t *testing.T) {
	f := newAptFixture(t, "exit 0\n")
	holdLock(t, f.locks[0])
	holdLock(t, f.locks[3])
	apt, _ := f.apt(0)
	if _, err := apt.run(context.Background(), t.TempDir(), "download", "-q", "linux-image-x=1"); err != nil {
		t.Fatalf("download waited for dpkg: %v", err)
	}
	holdLock(t, f.locks[2])
	if _, err := apt.run(context.Background(), t.TempDir(), "download", "-q", "linux-image-x=1"); !isLockError(err) {
		t.Fatalf("download with the lists locked: %v, want a lock error", err)
	}
}

func TestAptGetCancel(t *testing.T) {
	f := newAptFixture(t, "exit 0\n")
	holdLock(t, f.locks[1])
	apt, logs := f.apt(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := apt.run(ctx, "", "install", "x")
		done <- err
	}()
	waitFor(t, logs, "waiting message")
	cancel()
	if err := waitFor(t, done, "return after cancel"); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("err = %v, want context canceled", err)
	}
}

func TestLockFailure(t *testing.T) {
	for _, c := range []struct {
		out  string
		lock string
		pid  int
		ok   bool
	}{
		// apt 2.6 (Debian 12), as captured.
		{"Reading package lists...\nE: Could not get lock /var/lib/apt/lists/lock. It is held by process 20375 (python3)\nE: Unable to lock directory /var/lib/apt/lists/\n",
			"/var/lib/apt/lists/lock", 20375, true},
		{"E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 7 (apt)\nN: Be aware that removing the lock file is not a solution and may break your system.\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n",
			"/var/lib/dpkg/lock-frontend", 7, true},
		// DPkg::Lock::Timeout expired: the waiting lines on stdout, the summary on stderr.
		{"Waiting for cache lock: Could not get lock /var/lib/dpkg/lock. It is held by process 442 (apt)...\nE: Unable to lock the administration directory (/var/lib/dpkg/), is another process using it?\n",
			"/var/lib/dpkg/lock", 442, true},
		{"E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n", "/var/lib/dpkg/lock-frontend", 0, true},
		{"E: Unable to lock the administration directory (/var/lib/dpkg/), is another process using it?\n", "/var/lib/dpkg/", 0, true},
		// Older apt, and apt when it cannot tell the holder.
		{"E: Could not get lock /var/lib/dpkg/lock - open (11: Resource temporarily unavailable)\n", "/var/lib/dpkg/lock", 0, true},
		{"E: Could not get lock /var/cache/apt/archives/lock.", "/var/cache/apt/archives/lock", 0, true},
		{"E: Unable to locate package nosuch\n", "", 0, false},
		{"", "", 0, false},
	} {
		lock, pid, ok := lockFailure([]byte(c.out))
		if lock != c.lock || pid != c.pid || ok != c.ok {
			t.Errorf("lockFailure(%q) = %q, %d, %v; want %q, %d, %v", c.out, lock, pid, ok, c.lock, c.pid, c.ok)
		}
	}
}
