package deploy

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// depsFixture runs deps.sh as "root" with a PATH that holds only a fake
// id, a fake apt-get and sleep, so that protoc is missing and deps.sh
// installs it. The fake apt-get records each call in calls and, while the
// file held exists, fails the way apt-get 2.6 does when another process
// holds dpkg's frontend lock past its DPkg::Lock::Timeout; with APT_FAIL set
// it fails as for an unknown package.
type depsFixture struct {
	dir, calls, held string
}

func newDepsFixture(t *testing.T) *depsFixture {
	t.Helper()
	dir := t.TempDir()
	f := &depsFixture{dir: dir, calls: filepath.Join(dir, "calls"), held: filepath.Join(dir, "held")}
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command")
	}
	if err := os.Symlink(sleep, filepath.Join(bin, "sleep")); err != nil {
		t.Fatal(err)
	}
	write := func(name, script string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("id", "echo 0\n")
	write("apt-get", `echo "$*" >> `+f.calls+`
if [ -e `+f.held+` ]; then
  echo "Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt)..."
  echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?" >&2
  exit 100
fi
[ -z "$APT_FAIL" ] || { echo "E: Unable to locate package nosuch" >&2; exit 100; }
`)
	return f
}

// start runs deps.sh build with the fixture's PATH and env added.
func (f *depsFixture) start(t *testing.T, env ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	cmd := exec.Command(bash, "deps.sh", "build")
	cmd.Env = append([]string{"PATH=" + filepath.Join(f.dir, "bin")}, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stderr
}

func (f *depsFixture) callLines() []string {
	b, _ := os.ReadFile(f.calls)
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// wait returns cmd's exit error, failing the test if it has not exited
// within a deadline far longer than it needs.
func wait(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("deps.sh still running after a minute")
		return nil
	}
}

// TestDepsWaitsForLock: while another process holds the package manager's
// lock, deps.sh says once that it waits and for whom, and installs once the
// lock is free.
func TestDepsWaitsForLock(t *testing.T) {
	f := newDepsFixture(t)
	os.WriteFile(f.held, nil, 0o644)
	cmd, stderr := f.start(t, "DEPS_LOCK_TIMEOUT=3600", "DEPS_LOCK_POLL=0.01")
	sc := bufio.NewScanner(stderr)
	want := "deploy/deps.sh: waiting for the package manager's lock held by PID 4242 (apt) on /var/lib/dpkg/lock-frontend (up to 3600s)"
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == want {
			break
		}
	}
	if len(lines) == 0 || lines[len(lines)-1] != want {
		t.Fatalf("stderr %q, want a line %q", lines, want)
	}
	for _, c := range f.callLines() {
		if strings.Contains(c, "install") {
			t.Fatalf("installed while the lock was held: %q", c)
		}
	}
	os.Remove(f.held)
	rest, _ := io.ReadAll(stderr)
	if err := wait(t, cmd); err != nil {
		t.Fatalf("deps.sh: %v\n%s", err, rest)
	}
	if strings.Contains(string(rest), "waiting") {
		t.Errorf("said it waits more than once:\n%s", rest)
	}
	calls := f.callLines()
	last := calls[len(calls)-1]
	if !strings.HasPrefix(last, "-o DPkg::Lock::Timeout=10 install -y -qq --no-install-recommends protobuf-compiler") {
		t.Errorf("last apt-get call %q, want the install", last)
	}
}

// TestDepsLockTimeout: a lock never freed ends deps.sh with an error that
// names the lock and its holder, without installing.
func TestDepsLockTimeout(t *testing.T) {
	f := newDepsFixture(t)
	os.WriteFile(f.held, nil, 0o644)
	cmd, stderr := f.start(t, "DEPS_LOCK_TIMEOUT=0")
	out, _ := io.ReadAll(stderr)
	if err := wait(t, cmd); err == nil {
		t.Fatalf("deps.sh succeeded with the lock held:\n%s", out)
	}
	want := "deploy/deps.sh: the package manager's lock /var/lib/dpkg/lock-frontend is still held by PID 4242 (apt) after 0s"
	if !strings.Contains(string(out), want) {
		t.Errorf("stderr:\n%s\nwant %q", out, want)
	}
	if calls := f.callLines(); len(calls) != 1 || !strings.Contains(calls[0], "update") {
		t.Errorf("apt-get calls %q, want the one update", calls)
	}
}

// TestDepsAptFailure: any other apt-get failure is shown and fails deps.sh
// at once.
func TestDepsAptFailure(t *testing.T) {
	f := newDepsFixture(t)
	cmd, stderr := f.start(t, "DEPS_LOCK_TIMEOUT=3600", "APT_FAIL=1")
	out, _ := io.ReadAll(stderr)
	if err := wait(t, cmd); err == nil || !strings.Contains(string(out), "E: Unable to locate package nosuch") {
		t.Errorf("deps.sh: %v\n%s\nwant a failure showing apt-get's error", err, out)
	}
	if calls := f.callLines(); len(calls) != 1 {
		t.Errorf("apt-get calls %q, want one (no retry)", calls)
	}
}
