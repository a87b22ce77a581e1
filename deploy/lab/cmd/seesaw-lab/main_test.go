package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/seesawlb/seesaw/deploy/testenv"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, env{stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

// TestRunExitStatus boots a guest: seesaw-lab run -- sh -c 'exit 3' exits 3.
func TestRunExitStatus(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	code, stdout, stderr := runCLI("run", "--", "sh", "-c", "echo in the guest; exit 3")
	if code != 3 {
		t.Errorf("exit status %d, want 3; stderr:\n%s", code, stderr)
	}
	if stdout != "in the guest\n" {
		t.Errorf("stdout %q", stdout)
	}
}

// TestRunTimeout boots a guest whose command never ends: the time limit
// kills it, says so, and exits 124.
func TestRunTimeout(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	code, _, stderr := runCLI("run", "--timeout", "12s", "--", "sleep", "600")
	if code != exitTimeout {
		t.Errorf("exit status %d, want %d; stderr:\n%s", code, exitTimeout, stderr)
	}
	if !strings.Contains(stderr, "time limit reached") || !strings.Contains(stderr, "still running after 12s") {
		t.Errorf("stderr does not say the time limit killed the guest:\n%s", stderr)
	}
}

// TestExecWithoutTests runs this test binary through the exec wrapper
// with a -test.run that matches nothing: it must run on the host without
// preparing a guest, which an unusable cache directory would make fail.
func TestExecWithoutTests(t *testing.T) {
	t.Setenv("SEESAW_LAB_CACHE", "/dev/null/unusable")
	code, stdout, stderr := runCLI("exec", os.Args[0], "-test.run=^TestNoSuchTest$")
	if code != 0 || !strings.Contains(stdout+stderr, "no tests to run") {
		t.Errorf("exit status %d, output:\n%s%s", code, stdout, stderr)
	}
	// With tests to run, it must prepare a guest: here that fails, loudly.
	code, _, stderr = runCLI("exec", os.Args[0], "-test.run=^TestExecWithoutTests$")
	if code != exitLab || !strings.Contains(stderr, "/dev/null/unusable") {
		t.Errorf("exit status %d, want %d with the cache error; stderr:\n%s", code, exitLab, stderr)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nosuch"}, {"run"}, {"run", "--mem"}, {"exec"}, {"run", "--tty=maybe", "--", "true"}} {
		if code, _, _ := runCLI(args...); code != 2 {
			t.Errorf("seesaw-lab %q: exit status %d, want 2", args, code)
		}
	}
	if code, stdout, _ := runCLI("help"); code != 0 || !strings.Contains(stdout, "seesaw-lab run") {
		t.Errorf("help: %d %q", code, stdout)
	}
}
