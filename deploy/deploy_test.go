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
	for _, d := range []string{"usr/lib/seesaw", "etc/systemd/system", "usr/lib/systemd", "etc/seesaw", "bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-r", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copy system units: %v: %s", err, out)
	}
	for _, b := range []string{"usr/lib/seesaw/seesaw_watchdog", "usr/lib/seesaw/seesaw_ncc", "bin/kill"} {
		if err := os.WriteFile(filepath.Join(root, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
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
	out, err := exec.Command(sa, "verify", "--man=no", "--root="+root, "seesaw_watchdog.service").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=always", "LimitNOFILE=", "ExecStart=/usr/lib/seesaw/seesaw_watchdog",
		"ExecReload=/bin/kill -HUP $MAINPID", "ExecStopPost=/usr/lib/seesaw/seesaw_ncc --release",
		"ConditionPathExists=/etc/seesaw/seesaw.cfg", "ConditionPathExists=/etc/seesaw/cluster.pb"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	// A stop, a restart, an upgrade or the watchdog's death must not end
	// the connections: nothing in the unit cleans up.
	if strings.Contains(string(unit), "--cleanup --") || strings.Contains(string(unit), "ExecStopPost=/usr/lib/seesaw/seesaw_ncc --cleanup") {
		t.Error("the unit runs seesaw_ncc --cleanup, which ends every connection through the node")
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
	checkLayout(t, dest)
	// The samples are samples: the unit waits for the operator's configs.
	for _, f := range []string{"etc/seesaw/seesaw.cfg", "etc/seesaw/cluster.pb"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err == nil {
			t.Errorf("%s installed; the samples belong in usr/share/doc/seesaw/examples", f)
		}
	}
	// The old layout's unit in /etc/systemd/system would override the new
	// one: it goes aside.
	oldUnit := filepath.Join(dest, "etc/systemd/system/seesaw_watchdog.service")
	os.MkdirAll(filepath.Dir(oldUnit), 0o755)
	if err := os.WriteFile(oldUnit, []byte("[Service]\nExecStart=/usr/local/seesaw/seesaw_watchdog\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := install(); !strings.Contains(out, "moved the old layout's unit aside") {
		t.Errorf("reinstall over the old layout did not say it moved the old unit:\n%s", out)
	}
	if _, err := os.Stat(oldUnit); err == nil {
		t.Error("the old layout's unit still overrides the new one")
	}
	// An operator's edited config survives a reinstall.
	cfg := filepath.Join(dest, "etc/seesaw/watchdog.cfg")
	if err := os.WriteFile(cfg, []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := install(); !strings.Contains(out, "kept /etc/seesaw/watchdog.cfg") {
		t.Errorf("reinstall did not say it kept the config:\n%s", out)
	}
	if b, _ := os.ReadFile(cfg); string(b) != "# mine\n" {
		t.Errorf("reinstall overwrote an edited config: %q", b)
	}
	if _, err := os.Stat(cfg + ".dist"); err != nil {
		t.Errorf("shipped version not written beside it: %v", err)
	}
	// The reinstall replaced the file and moved every name to the new one.
	again, err := os.Stat(filepath.Join(dest, "usr/lib/seesaw/seesaw-multicall"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bins {
		if fi, err := os.Stat(filepath.Join(dest, "usr/lib/seesaw", b)); err != nil || !os.SameFile(fi, again) {
			t.Errorf("after a reinstall %s is not a hard link to seesaw-multicall: %v", b, err)
		}
	}
}

// checkLayout checks the layout install.sh and the package share, under
// root.
func checkLayout(t *testing.T, root string) {
	t.Helper()
	// One file, every name a hard link to it: copies would share no memory.
	multi, err := os.Stat(filepath.Join(root, "usr/lib/seesaw/seesaw-multicall"))
	if err != nil || multi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("seesaw-multicall not installed executable: %v", err)
	}
	for _, b := range []string{"seesaw_watchdog", "seesaw_engine", "seesaw_ncc", "seesaw_ha", "seesaw_healthcheck", "seesaw_ecu", "seesaw_cli"} {
		fi, err := os.Stat(filepath.Join(root, "usr/lib/seesaw", b))
		if err != nil || !os.SameFile(fi, multi) {
			t.Errorf("%s is not a hard link to seesaw-multicall: %v", b, err)
		}
	}
	for _, f := range []string{"etc/seesaw/watchdog.cfg", "lib/systemd/system/seesaw_watchdog.service",
		"usr/share/doc/seesaw/examples/seesaw.cfg", "usr/share/doc/seesaw/examples/cluster.pb",
		"usr/lib/sysusers.d/seesaw.conf", "usr/lib/tmpfiles.d/seesaw.conf", "usr/share/man/man1/seesaw.1.gz"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(root, "usr/bin/seesaw")); err != nil || l != "../lib/seesaw/seesaw_cli" {
		t.Errorf("usr/bin/seesaw -> %q (%v), want ../lib/seesaw/seesaw_cli", l, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/seesaw/watchdog.cfg")); err == nil && strings.Contains(string(b), "/usr/local/") {
		t.Errorf("watchdog.cfg names binaries outside /usr/lib/seesaw:\n%s", b)
	}
	if b, err := os.ReadFile(filepath.Join(root, "usr/lib/tmpfiles.d/seesaw.conf")); err != nil || !strings.Contains(string(b), "d /var/log/seesaw 0750 root seesaw 30d") {
		t.Errorf("tmpfiles.d/seesaw.conf lacks the logs' age limit: %v\n%s", err, b)
	}
}
