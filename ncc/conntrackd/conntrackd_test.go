package conntrackd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

func desired() *nccpb.Conntrackd {
	return &nccpb.Conntrackd{Interface: "eth0", LocalAddress: "192.0.2.2", PeerAddress: "192.0.2.3",
		IgnoreAddresses: []string{"2001:db8::2", "2001:db8::3", "192.0.2.2"}}
}

// TestConfig: the file conntrackd gets, for the things that matter: FTFW
// with the external cache, unicast UDP between the two nodes on the
// interface, its files in its directory, and the nodes' own connections
// left out (each address once).
func TestConfig(t *testing.T) {
	p := Paths{Dir: "/run/seesaw/ncc/conntrackd"}
	got, err := Config(desired(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\tMode FTFW {\n\t\tDisableExternalCache off\n",
		"\t\tIPv4_address 192.0.2.2\n\t\tIPv4_Destination_Address 192.0.2.3\n\t\tPort 3780\n\t\tInterface eth0\n",
		"\tLockFile /run/seesaw/ncc/conntrackd/lock\n",
		"\t\tPath /run/seesaw/ncc/conntrackd/ctl.sock\n",
		"\tLogFile /run/seesaw/ncc/conntrackd/conntrackd.log\n",
		"\t\tAddress Ignore {\n\t\t\tIPv4_address 127.0.0.1\n\t\t\tIPv6_address ::1\n\t\t\tIPv4_address 192.0.2.2\n\t\t\tIPv4_address 192.0.2.3\n\t\t\tIPv6_address 2001:db8::2\n\t\t\tIPv6_address 2001:db8::3\n\t\t}\n",
		"ESTABLISHED CLOSED TIME_WAIT CLOSE_WAIT for TCP",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "{") != strings.Count(got, "}") {
		t.Errorf("unbalanced braces:\n%s", got)
	}
	six := &nccpb.Conntrackd{Interface: "bond0", LocalAddress: "2001:db8::2", PeerAddress: "2001:db8::3", Port: 3781}
	got, err = Config(six, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "\t\tIPv6_address 2001:db8::2\n\t\tIPv6_Destination_Address 2001:db8::3\n\t\tPort 3781\n\t\tInterface bond0\n") {
		t.Errorf("IPv6 config:\n%s", got)
	}
}

// TestCheck: a desired conntrackd no daemon could run is refused, naming
// the field.
func TestCheck(t *testing.T) {
	for want, edit := range map[string]func(c *nccpb.Conntrackd){
		"no interface":                func(c *nccpb.Conntrackd) { c.Interface = "" },
		"is not an interface name":    func(c *nccpb.Conntrackd) { c.Interface = "eth0 }" },
		`local_address "x"`:           func(c *nccpb.Conntrackd) { c.LocalAddress = "x" },
		`peer_address ""`:             func(c *nccpb.Conntrackd) { c.PeerAddress = "" },
		"of different families":       func(c *nccpb.Conntrackd) { c.PeerAddress = "2001:db8::3" },
		"are both 192.0.2.2":          func(c *nccpb.Conntrackd) { c.PeerAddress = "192.0.2.2" },
		"port 70000 is not":           func(c *nccpb.Conntrackd) { c.Port = 70000 },
		`ignore_addresses[1] "bogus"`: func(c *nccpb.Conntrackd) { c.IgnoreAddresses[1] = "bogus" },
	} {
		c := desired()
		edit(c)
		err := Check(c)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", c, err, want)
		}
		if _, err := Config(c, Paths{Dir: "/x"}); err == nil {
			t.Errorf("Config took %v", c)
		}
	}
	if err := Check(desired()); err != nil {
		t.Error(err)
	}
	if _, err := Config(desired(), Paths{Dir: "/" + strings.Repeat("d", 100)}); err == nil || !strings.Contains(err.Error(), "longer than 107") {
		t.Errorf("a socket path too long: %v", err)
	}
}

// TestTransition: becoming master commits before the VIPs come up, and
// after they are up flushes, resyncs and sends a bulk update; becoming backup asks for a
// resync once the interface is down; no change, nothing.
func TestTransition(t *testing.T) {
	flags := func(s []Step) string {
		var f []string
		for _, x := range s {
			f = append(f, x.Flag)
		}
		return strings.Join(f, " ")
	}
	for _, c := range []struct {
		prev          Role
		master        bool
		before, after string
	}{
		{RoleUnknown, true, "-c", "-f -R -B"},
		{RoleBackup, true, "-c", "-f -R -B"},
		{RoleMaster, true, "", ""},
		{RoleUnknown, false, "", "-n"},
		{RoleMaster, false, "", "-n"},
		{RoleBackup, false, "", ""},
	} {
		b, a := Transition(c.prev, c.master)
		if flags(b) != c.before || flags(a) != c.after {
			t.Errorf("%v -> master %v: before %q after %q, want %q %q", c.prev, c.master, flags(b), flags(a), c.before, c.after)
		}
	}
}

// TestDaemonMissing: without the binary, Ensure says so and how to fix it.
func TestDaemonMissing(t *testing.T) {
	d := &Daemon{Binary: filepath.Join(t.TempDir(), "conntrackd"), Paths: Paths{Dir: t.TempDir()}}
	_, err := d.Ensure(desired())
	if err == nil || !strings.Contains(err.Error(), "conntrackd is not installed") || !strings.Contains(err.Error(), "conntrackd = false") {
		t.Fatalf("Ensure without conntrackd: %v", err)
	}
	if d.Running() {
		t.Error("running")
	}
}

// TestDaemonReal runs Debian's conntrackd with the generated configuration
// in a network namespace of its own: it starts and answers, takes every
// role command the NCC sends it, is restarted when its configuration
// changes or it dies, and is stopped.
func TestDaemonReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a network namespace)")
	}
	if _, err := os.Stat(DefaultBinary); err != nil {
		t.Skipf("needs Debian's conntrackd (%v); make test installs it", err)
	}
	ns := "seesaw-ctd-" + filepath.Base(t.TempDir())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", "192.0.2.2/32", "dev", "lo"}} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "conntrackd-in-ns")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec ip netns exec "+ns+" "+DefaultBinary+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Binary: wrapper, Paths: Paths{Dir: filepath.Join(dir, "ctd")}, Logf: t.Logf}
	defer d.Stop()
	c := desired()
	c.Interface = "lo"
	started, err := d.Ensure(c)
	if err != nil || !started {
		t.Fatalf("Ensure: started %v, %v", started, err)
	}
	pid := d.cmd.Process.Pid
	if started, err := d.Ensure(c); err != nil || started || d.cmd.Process.Pid != pid {
		t.Fatalf("Ensure again: started %v, %v", started, err)
	}
	if err := d.Before(true); err != nil || d.Role() != RoleUnknown {
		t.Fatalf("becoming master, before the network: %v (role %v)", err, d.Role())
	}
	if err := d.After(true); err != nil || d.Role() != RoleMaster {
		t.Fatalf("becoming master: %v (role %v)", err, d.Role())
	}
	if err := d.After(false); err != nil || d.Role() != RoleBackup {
		t.Fatalf("becoming backup: %v (role %v)", err, d.Role())
	}
	c.Port = 3781
	if started, err := d.Ensure(c); err != nil || !started || d.Role() != RoleUnknown {
		t.Fatalf("Ensure with a new port: started %v, %v", started, err)
	}
	if b, _ := os.ReadFile(d.Paths.Config()); !strings.Contains(string(b), "Port 3781") {
		t.Errorf("the configuration was not rewritten:\n%s", b)
	}
	d.cmd.Process.Kill()
	<-d.done
	if d.Running() {
		t.Fatal("running after it was killed")
	}
	if started, err := d.Ensure(c); err != nil || !started {
		t.Fatalf("Ensure after it died: started %v, %v", started, err)
	}
	d.Stop()
	if d.Running() {
		t.Error("running after Stop")
	}
	if err := d.Before(true); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("a command with no daemon: %v", err)
	}
}
