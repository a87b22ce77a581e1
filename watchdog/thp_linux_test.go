package watchdog

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// With this variable set the test binary is TestNoHugePages's subject: it
// reports each start, calls NoHugePages and reports the outcome.
const thpEnv = "SEESAW_TEST_NOHUGEPAGES"

func init() {
	if os.Getenv(thpEnv) != "1" {
		return
	}
	fmt.Printf("start pid %d\n", os.Getpid())
	err := NoHugePages()
	on, _ := unix.PrctlRetInt(unix.PR_GET_THP_DISABLE, 0, 0, 0, 0)
	comm, _ := os.ReadFile("/proc/self/comm")
	fmt.Printf("pid %d comm %s thp-disabled %d err %v\n", os.Getpid(), strings.TrimSpace(string(comm)), on, err)
	os.Exit(0)
}

// TestNoHugePages: a process that did not inherit the switch sets it and
// starts again in place (the same pid, name, arguments and environment),
// with THP off from its first page; one that inherited it goes on at once.
func TestNoHugePages(t *testing.T) {
	run := func() (int, string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), thpEnv+"=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return cmd.Process.Pid, string(out)
	}
	inherited, err := unix.PrctlRetInt(unix.PR_GET_THP_DISABLE, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The kernel names a process after the file it executes, cut to 15
	// bytes.
	comm := filepath.Base(os.Args[0])
	comm = comm[:min(len(comm), 15)]
	pid, out := run()
	want := fmt.Sprintf("start pid %d\nstart pid %d\npid %d comm %s thp-disabled 1 err <nil>\n", pid, pid, pid, comm)
	if inherited != 0 {
		want = want[strings.Index(want, "\n")+1:]
	}
	if out != want {
		t.Errorf("got\n%swant\n%s", out, want)
	}
	if inherited != 0 {
		return
	}
	// Now from a parent with the switch on, as the services are: no
	// second start.
	if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_THP_DISABLE, 0, 0, 0, 0)
	pid, out = run()
	if want := fmt.Sprintf("start pid %d\npid %d comm %s thp-disabled 1 err <nil>\n", pid, pid, comm); out != want {
		t.Errorf("with the switch inherited: got\n%swant\n%s", out, want)
	}
}
