package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestPick(t *testing.T) {
	for _, tc := range []struct {
		argv     []string
		exe      string
		want     string // the command's name, "" for none
		wantArgs string
	}{
		{[]string{"/usr/local/seesaw/seesaw_engine", "-conf=x"}, "/usr/local/seesaw/seesaw_engine", "seesaw_engine", "/usr/local/seesaw/seesaw_engine -conf=x"},
		{[]string{"seesaw_ncc", "--cleanup"}, "/usr/local/seesaw/seesaw_ncc", "seesaw_ncc", "seesaw_ncc --cleanup"},
		// /usr/bin/seesaw is a symbolic link: the kernel reports its target.
		{[]string{"seesaw", "config", "check"}, "/usr/local/seesaw/seesaw_cli", "seesaw", "seesaw config check"},
		// argv[0] wins over the file's name.
		{[]string{"seesaw_ha"}, "/usr/local/seesaw/seesaw_engine", "seesaw_ha", "seesaw_ha"},
		// A watchdog.cfg service [engine2] runs seesaw_engine with argv[0]
		// seesaw_engine2: the file's name decides.
		{[]string{"seesaw_engine2", "-socket=s"}, "/usr/local/seesaw/seesaw_engine", "seesaw_engine", "seesaw_engine2 -socket=s"},
		// busybox style.
		{[]string{"./seesaw-multicall", "seesaw_engine", "plan"}, "/x/seesaw-multicall", "seesaw_engine", "seesaw_engine plan"},
		{[]string{"seesaw-multicall", "plan"}, "/x/seesaw-multicall", "", ""},
		{[]string{"seesaw-multicall"}, "", "", ""},
		// A name is a whole base name, not a prefix or a path's middle.
		{[]string{"seesaw_engine.old"}, "", "", ""},
		{[]string{"/seesaw_engine/x"}, "", "", ""},
		{nil, "/usr/local/seesaw/seesaw_engine", "", ""},
	} {
		c, args := pick(tc.argv, tc.exe)
		got := ""
		if c != nil {
			got = c.name
		}
		if got != tc.want || (c != nil && strings.Join(args, " ") != tc.wantArgs) {
			t.Errorf("pick(%q, %q) = %q %q, want %q %q", tc.argv, tc.exe, got, args, tc.want, tc.wantArgs)
		}
	}
}

// TestSameAsStandalone builds the seven standalone binaries and the
// multi-call one with a hard link for each name, and runs each name both
// ways with the same argv[0]: the help texts (which list every flag with
// its default, glog's included), the usage errors and their exit statuses
// are the same. A package linked only into the multi-call binary that
// registered a flag, or did work in init that printed or failed, would
// show here.
func TestSameAsStandalone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds eight binaries; skipped with -short")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	dir := t.TempDir()
	alone, multi := filepath.Join(dir, "alone"), filepath.Join(dir, "multi")
	mains := []string{"./watchdog/cmd/seesaw_watchdog", "./engine/cmd/seesaw_engine", "./ncc/cmd/seesaw_ncc",
		"./ha/cmd/seesaw_ha", "./healthcheck/cmd/seesaw_healthcheck", "./ecu/cmd/seesaw_ecu", "./cli/cmd/seesaw_cli"}
	build := func(out string, pkgs ...string) {
		t.Helper()
		cmd := exec.Command(goBin, append([]string{"build", "-o", out}, pkgs...)...)
		cmd.Dir = "../../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkgs, err, b)
		}
	}
	build(alone+"/", mains...)
	build(filepath.Join(multi, "seesaw-multicall"), "./deploy/cmd/seesaw-multicall")
	for _, c := range commands {
		if err := os.Link(filepath.Join(multi, "seesaw-multicall"), filepath.Join(multi, c.name)); err != nil {
			t.Fatal(err)
		}
	}
	run := func(path, argv0 string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(path, args...)
		cmd.Args[0] = argv0
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%s: %v", path, err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"seesaw_watchdog", []string{"--help"}},
		{"seesaw_watchdog", []string{"-no_such_flag"}},
		{"seesaw_engine", []string{"--help"}},
		{"seesaw_engine", []string{"plan", "--help"}},
		{"seesaw_engine", []string{"plan", "--state=sideways"}},
		{"seesaw_ncc", []string{"--help"}},
		{"seesaw_ha", []string{"--help"}},
		{"seesaw_ha", []string{"--vrid=x"}},
		{"seesaw_healthcheck", []string{"--help"}},
		{"seesaw_healthcheck", []string{"check", "--help"}},
		{"seesaw_ecu", []string{"--help"}},
		{"seesaw_cli", []string{"--help"}},
		{"seesaw_cli", []string{"config", "check", "--help"}},
		{"seesaw_cli", nil},
	} {
		want, wantCode := run(filepath.Join(alone, tc.name), tc.name, tc.args...)
		got, code := run(filepath.Join(multi, tc.name), tc.name, tc.args...)
		if got != want || code != wantCode {
			t.Errorf("%s %q: the multi-call binary exits %d with\n%s\nthe standalone %d with\n%s", tc.name, tc.args, code, got, wantCode, want)
		}
		if !strings.Contains(want, "sage") && tc.args != nil && tc.args[len(tc.args)-1] == "--help" {
			t.Errorf("%s %q printed no usage:\n%s", tc.name, tc.args, want)
		}
	}
	// As seesaw (/usr/bin/seesaw), the CLI.
	want, wantCode := run(filepath.Join(alone, "seesaw_cli"), "seesaw", "--help")
	if got, code := run(filepath.Join(multi, "seesaw"), "seesaw", "--help"); got != want || code != wantCode {
		t.Errorf("seesaw --help: %d\n%s\nwant %d\n%s", code, got, wantCode, want)
	}
	// Under its own name, or another: the names, and status 2.
	for _, argv0 := range []string{"seesaw-multicall", "seesaw_engin"} {
		got, code := run(filepath.Join(multi, "seesaw-multicall"), argv0, "x")
		if code != 2 || !strings.Contains(got, "no Seesaw command is named") {
			t.Errorf("as %s: %d\n%s", argv0, code, got)
		}
		for _, c := range commands {
			if !strings.Contains(got, "  "+c.name+" ") {
				t.Errorf("as %s: the usage does not list %s:\n%s", argv0, c.name, got)
			}
		}
	}
	// busybox style.
	want, wantCode = run(filepath.Join(alone, "seesaw_engine"), "seesaw_engine", "plan", "--help")
	if got, code := run(filepath.Join(multi, "seesaw-multicall"), "seesaw-multicall", "seesaw_engine", "plan", "--help"); got != want || code != wantCode {
		t.Errorf("seesaw-multicall seesaw_engine plan --help: %d\n%s\nwant %d\n%s", code, got, wantCode, want)
	}
}
