// Package deploy holds what puts the appliance on a machine: the systemd
// unit, the shipped configs, the install script, and the test tooling.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnitVerifies runs systemd-analyze verify on the unit in a scratch root
// that holds a copy of the system's units and a stand-in for the binary, so
// that verify checks our file and nothing on this machine. verify exits 0 on
// unknown keys, so any output at all is a failure.
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found (Debian package systemd); make test installs it")
	}
	root := t.TempDir()
	for _, d := range []string{"usr/local/seesaw", "etc/systemd/system", "usr/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-r", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copy system units: %v: %s", err, out)
	}
	for _, b := range []string{"seesaw_watchdog", "seesaw_ncc"} {
		if err := os.WriteFile(filepath.Join(root, "usr/local/seesaw", b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	unit, err := os.ReadFile("seesaw_watchdog.service")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/seesaw_watchdog.service"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--root="+root, "seesaw_watchdog.service").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=always", "LimitNOFILE=", "ExecStart=/usr/local/seesaw/seesaw_watchdog", "ExecStopPost=/usr/local/seesaw/seesaw_ncc --cleanup"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}

func TestInstallLayout(t *testing.T) {
	bindir := t.TempDir()
	bins := []string{"seesaw_watchdog", "seesaw_engine", "seesaw_ncc", "seesaw_ha", "seesaw_healthcheck", "seesaw_ecu", "seesaw_cli"}
	dest := t.TempDir()
	install := func() string {
		cmd := exec.Command("bash", "install.sh")
		cmd.Env = append(os.Environ(), "DESTDIR="+dest, "BINDIR="+bindir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	cmd := exec.Command("bash", "install.sh")
	cmd.Env = append(os.Environ(), "DESTDIR="+dest, "BINDIR="+bindir)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "seesaw-multicall missing; run 'make build' first") {
		t.Errorf("install.sh without a build: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(bindir, "seesaw-multicall"), []byte("#!/bin/sh\necho multicall\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	install()
	// One file, every name a hard link to it: copies would share no memory.
	multi, err := os.Stat(filepath.Join(dest, "usr/local/seesaw/seesaw-multicall"))
	if err != nil || multi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("seesaw-multicall not installed executable: %v", err)
	}
	for _, b := range bins {
		fi, err := os.Stat(filepath.Join(dest, "usr/local/seesaw", b))
		if err != nil || !os.SameFile(fi, multi) {
			t.Errorf("%s is not a hard link to seesaw-multicall: %v", b, err)
		}
	}
	for _, f := range []string{"etc/seesaw/watchdog.cfg", "etc/seesaw/seesaw.cfg", "etc/seesaw/cluster.pb", "etc/systemd/system/seesaw_watchdog.service", "var/log/seesaw"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(dest, "usr/bin/seesaw")); err != nil || l != "/usr/local/seesaw/seesaw_cli" {
		t.Errorf("usr/bin/seesaw -> %q (%v), want /usr/local/seesaw/seesaw_cli", l, err)
	}
	// An operator's edited config survives a reinstall.
	cfg := filepath.Join(dest, "etc/seesaw/cluster.pb")
	if err := os.WriteFile(cfg, []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := install(); !strings.Contains(out, "kept /etc/seesaw/cluster.pb") {
		t.Errorf("reinstall did not say it kept the config:\n%s", out)
	}
	if b, _ := os.ReadFile(cfg); string(b) != "# mine\n" {
		t.Errorf("reinstall overwrote an edited config: %q", b)
	}
	if _, err := os.Stat(cfg + ".dist"); err != nil {
		t.Errorf("shipped version not written beside it: %v", err)
	}
	// The reinstall replaced the file and moved every name to the new one.
	again, err := os.Stat(filepath.Join(dest, "usr/local/seesaw/seesaw-multicall"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bins {
		if fi, err := os.Stat(filepath.Join(dest, "usr/local/seesaw", b)); err != nil || !os.SameFile(fi, again) {
			t.Errorf("after a reinstall %s is not a hard link to seesaw-multicall: %v", b, err)
		}
	}
}
