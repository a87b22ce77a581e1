package lab

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/testenv"
)

// These tests boot real guests from the host (each boot takes seconds
// under emulation). They are namespace-layer tests: they need root to
// install the lab's Debian packages, and the first one fetches the kernel.

func prepareForTest(t *testing.T) Assets {
	t.Helper()
	testenv.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	a, err := Prepare(ctx, PrepareOptions{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRunGuest runs one command in a guest and checks everything Run
// promises about it: stdout and stderr apart and exact, the exit status,
// the working directory and environment, root, a writable share whose
// writes reach the host, the rest read-only, and IPVS in the kernel.
func TestRunGuest(t *testing.T) {
	a := prepareForTest(t)
	t.Parallel()
	work := t.TempDir() // under /tmp: the guest sees it only as a share
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `echo out; echo err >&2; pwd; echo "$FOO"; id -u
echo result > out/file
touch not-here 2>/dev/null && echo wrote-read-only-dir
ipvsadm -Ln | head -1
exit 7`
	var stdout, stderr bytes.Buffer
	code, err := Run(context.Background(), a, Options{
		Argv:     []string{"sh", "-c", script},
		Dir:      work,
		Env:      []string{"FOO=it's here", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Writable: []string{out},
		Stdout:   &stdout,
		Stderr:   &stderr,
		Timeout:  5 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 7 {
		t.Errorf("exit status %d, want 7", code)
	}
	want := "out\n" + work + "\nit's here\n0\nIP Virtual Server version 1.2.1 (size=4096)\n"
	if stdout.String() != want {
		t.Errorf("stdout:\n%q\nwant\n%q", stdout.String(), want)
	}
	if stderr.String() != "err\n" {
		t.Errorf("stderr %q, want %q", stderr.String(), "err\n")
	}
	if b, err := os.ReadFile(filepath.Join(out, "file")); err != nil || string(b) != "result\n" {
		t.Errorf("file written to the writable share: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(work, "not-here")); err == nil {
		t.Error("the guest wrote into a read-only share")
	}
}

// TestRunBootFailure makes the guest's kernel panic (no init to run) and
// expects an error that says the guest failed and shows its console.
func TestRunBootFailure(t *testing.T) {
	a := prepareForTest(t)
	t.Parallel()
	var stdout bytes.Buffer
	_, err := Run(context.Background(), a, Options{
		Argv:       []string{"true"},
		KernelArgs: "rdinit=/no-such-init",
		Stdout:     &stdout,
		Timeout:    5 * time.Minute,
	})
	if !errors.Is(err, ErrGuest) {
		t.Fatalf("err = %v, want ErrGuest", err)
	}
	if !strings.Contains(err.Error(), "Kernel panic") {
		t.Errorf("the error does not show the guest's console:\n%v", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout got %q from a guest that never ran the command", stdout.String())
	}
}
