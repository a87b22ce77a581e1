package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/cli"
)

// updating: -update, the flag the package's own tests define.
func updating() bool { return flag.Lookup("update").Value.(flag.Getter).Get().(bool) }

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updating() {
		must(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// normalize takes out what changes from run to run: pids, times, the
// test's directory.
func (te *testEngine) normalize(s string) string {
	s = strings.ReplaceAll(s, te.dir, "$DIR")
	s = regexp.MustCompile(`pid \d+`).ReplaceAllString(s, "pid N")
	s = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).ReplaceAllString(s, "TIME")
	return s
}

// session runs each command line and renders it as a transcript.
func (te *testEngine) session(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		out, errOut, code := te.run(strings.Fields(l)...)
		b.WriteString("$ seesaw " + l + "\n" + out + errOut)
		if code != 0 {
			b.WriteString("[exit " + string(rune('0'+code)) + "]\n")
		}
	}
	return te.normalize(b.String())
}

// TestShow: every show command against the real engine, as a golden
// transcript (one match of a name gives its detail).
func TestShow(t *testing.T) {
	te := startEngine(t)
	te.ncc.setConns("198.51.100.11:80", 7)
	te.hc.setUnwell("192.0.2.22", "DNS: no answer (timeout)")
	must(t, te.hc.report())
	te.waitFor("ns2 out of IPVS", func() bool { return !strings.Contains(te.ipvs.Save(), "192.0.2.22:53") })
	got := te.session(
		"show vservers",
		"sh vs web",
		"show vservers dns@example",
		"show backends",
		"show backends ns2",
		"show destinations",
		"show destinations web@example/198.51.100.11:80/TCP",
		"show nodes",
		"show nodes seesaw2",
		"show vlans",
		"show warnings",
		"show bgp neighbors",
		"show healthchecks ns",
		"show stats web",
		"config status",
		"config source",
		"show vservers nosuch",
	)
	golden(t, "show.golden", got)
	for _, l := range strings.Split(got, "\n") {
		if len([]rune(l)) > cli.Width {
			t.Errorf("line wider than %d columns: %q", cli.Width, l)
		}
	}
}

// TestShowHAAndVersion: the parts that carry the wall clock.
func TestShowHAAndVersion(t *testing.T) {
	te := startEngine(t)
	out, _, code := te.run("show", "ha")
	if code != 0 || !strings.Contains(out, "HA state:     master") || !strings.Contains(out, "Last update:") {
		t.Errorf("show ha [%d]:\n%s", code, out)
	}
	out, _, code = te.run("show", "version")
	if code != 0 || !regexp.MustCompile(`(?m)^cli +dev +\d+ +- +this command$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^engine +dev +\d+ +\S+ +`).MatchString(out) ||
		!strings.Contains(out, "Not reached: ha: ") {
		t.Errorf("show version [%d]:\n%s", code, out)
	}
}

// TestJSON: --json on every show prints valid, stable JSON with the
// engine's field names.
func TestJSON(t *testing.T) {
	te := startEngine(t)
	for _, c := range []struct{ cmd, want string }{
		{"show vservers", `"name": "web@example"`},
		{"show vservers web@example", `"in_ipvs": true`},
		{"show backends", `"fqdn": "ns1.example.com."`},
		{"show destinations dns", `"name": "dns@example/192.0.2.21:53/TCP"`},
		{"show ha", `"state": "HA_STATE_LEADER"`},
		{"show healthchecks web", `"name": "TCP/8080"`},
		{"show nodes", `"this_node": true`},
		{"show stats", `"stats": {}`},
		{"show version", `"component": "engine"`},
		{"show vlans", `[]`},
		{"show warnings", `[]`},
		{"show bgp neighbors", `"neighbors": []`},
		{"config status", `"source": "disk"`},
		{"config diff", `{}`},
	} {
		out1, errOut, code := te.run(append(strings.Fields(c.cmd), "--json")...)
		if code != 0 {
			t.Errorf("%s --json: exit %d: %s", c.cmd, code, errOut)
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(out1), &v); err != nil {
			t.Errorf("%s --json: not JSON: %v\n%s", c.cmd, err, out1)
		}
		if !strings.Contains(out1, c.want) {
			t.Errorf("%s --json: no %s in\n%s", c.cmd, c.want, out1)
		}
		if c.cmd == "show ha" || c.cmd == "show version" || c.cmd == "config status" {
			continue // they carry times
		}
		out2, _, _ := te.run(append(strings.Fields(c.cmd), "--json")...)
		if out1 != out2 {
			t.Errorf("%s --json is not stable:\n%s\n%s", c.cmd, out1, out2)
		}
	}
}

// TestExitCodes: 0, 1 for a failed operation, 2 for a usage error; an
// ambiguous prefix lists the candidates.
func TestExitCodes(t *testing.T) {
	te := startEngine(t)
	for _, c := range []struct {
		args string
		code int
		msg  string
	}{
		{"sh vs", 0, ""},
		{"show v", 2, `ambiguous command "v": could be version, vlans, vservers`},
		{"show vservers a b", 2, "too many arguments"},
		{"show frobs", 2, `unknown command "frobs" for "seesaw show"`},
		{"show vservers --bogus", 2, "unknown flag: --bogus"},
		{"override vserver state disabled", 2, "want one vserver name"},
		{"override vserver", 2, `incomplete command "seesaw override vserver"`},
		{"config source floppy", 2, `config source "floppy"`},
		{"show vservers nosuch", 1, `no vserver named "nosuch"`},
		{"override backend state disabled nosuch", 1, `no backend "nosuch" in the running config`},
		{"failover --engine " + te.dir + "/nowhere.sock", 1, "the engine is not running: no socket at"},
	} {
		_, errOut, code := te.run(strings.Fields(c.args)...)
		if code != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("%s: exit %d (want %d), stderr %q (want %q)", c.args, code, c.code, errOut, c.msg)
		}
	}
}

// TestOneShotC: -c runs one command line, quote-aware, with --engine.
func TestOneShotC(t *testing.T) {
	te := startEngine(t)
	out, errOut, code := te.run("-c", `sh vs "web@example"`)
	if code != 0 || !strings.HasPrefix(out, "Vserver web@example") {
		t.Errorf("-c with quotes: [%d] %s%s", code, out, errOut)
	}
	_, errOut, code = te.run("-c", `show vservers "web`)
	if code != 2 || !strings.Contains(errOut, "unterminated double quote") {
		t.Errorf("-c with an open quote: [%d] %s", code, errOut)
	}
	_, errOut, code = te.run("--engine", te.dir+"/other.sock", "-c", "show vservers")
	if code != 1 || !strings.Contains(errOut, te.dir+"/other.sock") {
		t.Errorf("--engine is not used by -c: [%d] %s", code, errOut)
	}
}

// TestOverrideAndFailover: overrides change what IPVS holds; failover
// reaches HA.
func TestOverrideAndFailover(t *testing.T) {
	te := startEngine(t)
	got := te.session(
		"override vserver state disabled web@example",
		"override backend state disabled ns1.example.com.",
		"override destination state disabled web@example/198.51.100.12:80/TCP",
	)
	te.waitFor("web gone, ns1 gone", func() bool {
		s := te.ipvs.Save()
		return !strings.Contains(s, "192.0.2.100") && !strings.Contains(s, "192.0.2.21:")
	})
	got += te.session("show warnings")
	got += te.session(
		"o v s def web@example",
		"override backend state default ns1.example.com.",
	)
	te.waitFor("web back without 198.51.100.12, ns1 back", func() bool {
		s := te.ipvs.Save()
		return strings.Contains(s, "198.51.100.11:80") && !strings.Contains(s, "198.51.100.12:80") && strings.Contains(s, "192.0.2.21")
	})
	got += te.session("failover")
	select {
	case r := <-te.relinq:
		if !strings.Contains(r, "operator") {
			t.Errorf("relinquish reason %q", r)
		}
	case <-time.After(30 * time.Second):
		t.Error("failover never reached HA")
	}
	golden(t, "override.golden", got)
}

// runCtx runs the CLI in process with ctx.
func (te *testEngine) runCtx(ctx context.Context, args ...string) (string, int) {
	var out bytes.Buffer
	code := cli.Run(ctx, cli.Options{Name: "seesaw", Engine: te.sock}, args, strings.NewReader(""), &out, &out)
	return out.String(), code
}

// TestDrain: weight 0 at once, progress while connections close, disabled
// when the last one has; a timeout disables anyway; Ctrl-C leaves weight 0.
func TestDrain(t *testing.T) {
	te := startEngine(t)
	te.ncc.setConns("198.51.100.11:80", 3)
	te.ncc.setConns("[2001:db8:0:2::11]:80", 2)
	type res struct {
		out  string
		code int
	}
	done := make(chan res, 1)
	go func() {
		out, code := te.runCtx(context.Background(), "drain", "backend", "web1.example.com.", "--interval", "5ms")
		done <- res{out, code}
	}()
	te.waitFor("web1 at weight 0", func() bool {
		s := te.ipvs.Save()
		return strings.Contains(s, "-r 198.51.100.11:80 -m -w 0") && strings.Contains(s, "-r [2001:db8:0:2::11]:80 -m -w 0")
	})
	te.ncc.setConns("198.51.100.11:80", 1)
	time.Sleep(20 * time.Millisecond) // let it see the 3 go (not required)
	te.ncc.setConns("[2001:db8:0:2::11]:80", 0)
	te.ncc.setConns("198.51.100.11:80", 0)
	r := <-done
	if r.code != 0 || !regexp.MustCompile(`: [1-5] active connection\(s\) on 2 destination\(s\)`).MatchString(r.out) ||
		!strings.Contains(r.out, "no active connections left on 2 destination(s)") ||
		!strings.Contains(r.out, "Drained: backend web1.example.com. is disabled.") {
		t.Errorf("drain [%d]:\n%s", r.code, r.out)
	}
	te.waitFor("web1 out of IPVS", func() bool { return !strings.Contains(te.ipvs.Save(), "198.51.100.11") })

	// A timeout disables anyway.
	te.ncc.setConns("192.0.2.21:53", 4)
	out, code := te.runCtx(context.Background(), "drain", "destination", "dns@example/192.0.2.21:53/UDP", "--interval", "5ms", "--timeout", "30ms")
	if code != 0 || !strings.Contains(out, "timed out after 30ms with 4 active connection(s): disabling anyway") {
		t.Errorf("drain with a timeout [%d]:\n%s", code, out)
	}
	te.waitFor("the UDP destination gone, the TCP one kept", func() bool {
		s := te.ipvs.Save()
		return !strings.Contains(s, "-a -u 192.0.2.53:53 -r 192.0.2.21:53") && strings.Contains(s, "-a -t 192.0.2.53:53 -r 192.0.2.21:53")
	})

	// Ctrl-C: left at weight 0, and it says so.
	te.ncc.setConns("198.51.100.12:80", 9)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		out, code := te.runCtx(ctx, "drain", "destination", "web@example/198.51.100.12:80/TCP", "--interval", "5ms")
		done <- res{out, code}
	}()
	te.waitFor("198.51.100.12 at weight 0", func() bool { return strings.Contains(te.ipvs.Save(), "-r 198.51.100.12:80 -m -w 0") })
	cancel()
	r = <-done
	if r.code != 1 || !strings.Contains(r.out, "Interrupted: destination web@example/198.51.100.12:80/TCP is left at weight 0") || !strings.Contains(r.out, "(override drain), not disabled.") {
		t.Errorf("interrupted drain [%d]:\n%s", r.code, r.out)
	}
	time.Sleep(50 * time.Millisecond)
	if !strings.Contains(te.ipvs.Save(), "-r 198.51.100.12:80 -m -w 0") {
		t.Errorf("after Ctrl-C the destination is not at weight 0:\n%s", te.ipvs.Save())
	}
	out, _, _ = te.run("show", "destinations", "web@example/198.51.100.12:80/TCP")
	if !strings.Contains(out, "State:       draining") || !strings.Contains(out, "Override:    drain") {
		t.Errorf("show of the drained destination:\n%s", out)
	}
}

// TestConfigDiff: the diff of an edited cluster.pb lists the changes the
// reload then makes, and a reload of the same file changes nothing more.
func TestConfigDiff(t *testing.T) {
	te := startEngine(t)
	b, err := os.ReadFile(te.cl)
	must(t, err)
	edited := strings.Replace(string(b), "scheduler: RR", "scheduler: WRR", 1)
	edited = strings.Replace(edited, "    weight: 2\n", "    weight: 5\n", 1)
	cand := filepath.Join(te.dir, "candidate.pb")
	must(t, os.WriteFile(cand, []byte(edited), 0o644))
	before := te.ipvs.Save()
	got := te.session("config diff --cluster " + cand)
	if te.ipvs.Save() != before {
		t.Fatal("config diff changed the kernel")
	}
	must(t, os.WriteFile(te.cl, []byte(edited), 0o644))
	got += te.session("config diff", "config reload")
	te.waitFor("the reload applied", func() bool { return strings.Contains(te.ipvs.Save(), "192.0.2.21:53 -g -w 5") })
	got += te.session("config diff")
	golden(t, "diff.golden", got)

	must(t, os.WriteFile(cand, []byte(edited+"vserver <\n"), 0o644))
	_, errOut, code := te.run("config", "diff", "--cluster", cand)
	if code != 1 || !strings.Contains(errOut, "candidate.pb:") {
		t.Errorf("diff of a broken config [%d]: %s", code, errOut)
	}
}

// TestCompletion: bash and zsh scripts, and names from the engine.
func TestCompletion(t *testing.T) {
	te := startEngine(t)
	for _, sh := range []string{"bash", "zsh"} {
		out, _, code := te.run("completion", sh)
		if code != 0 || !strings.Contains(out, "seesaw") || len(out) < 1000 {
			t.Errorf("completion %s [%d]: %.200s", sh, code, out)
		}
	}
	out, _, _ := te.run("__complete", "--engine", te.sock, "show", "vservers", "")
	if !strings.Contains(out, "dns@example\nweb@example\n") {
		t.Errorf("completion of vserver names:\n%s", out)
	}
	out, _, _ = te.run("__complete", "--engine", te.sock, "drain", "backend", "web")
	if !strings.Contains(out, "web1.example.com.\nweb2.example.com.\n") {
		t.Errorf("completion of backend names:\n%s", out)
	}
}

// asUser runs the test binary as the CLI under another uid and groups.
func (te *testEngine) asUserBin(bin string, uid uint32, groups []uint32, args ...string) (string, int) {
	te.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SEESAW_CLI_TEST_MAIN=1", "SEESAW_CLI_TEST_ENGINE="+te.sock, "NO_COLOR=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: groups}}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		te.t.Fatal(err)
	}
	return string(out), code
}

// TestWhoMayDoWhat: the engine's own SO_PEERCRED check, from a process of
// another user: a reader reads and is refused a write, which changes
// nothing; a user in no group is told which group it needs; an admin
// writes, and the engine records who.
func TestWhoMayDoWhat(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run the CLI as other users")
	}
	te := startEngine(t)
	// The test binary must be readable by the other user.
	bin := filepath.Join(te.dir, "seesaw")
	data, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, data, 0o755))
	asUser := func(uid uint32, groups []uint32, args ...string) (string, int) {
		return te.asUserBin(bin, uid, groups, args...)
	}

	out, code := asUser(nobody, []uint32{readerGID}, "show", "vservers")
	if code != 0 || !strings.Contains(out, "web@example") {
		t.Errorf("a reader's show vservers [%d]:\n%s", code, out)
	}
	before := te.ipvs.Save()
	out, code = asUser(nobody, []uint32{readerGID}, "override", "vserver", "state", "disabled", "web@example")
	if code != 1 || !strings.Contains(out, "refused: this needs group seesaw-admin (the engine's admin group) or root") || !strings.Contains(out, "nothing was changed") {
		t.Errorf("a reader's override [%d]:\n%s", code, out)
	}
	time.Sleep(50 * time.Millisecond)
	if te.ipvs.Save() != before {
		t.Errorf("a refused override changed IPVS")
	}
	out, code = asUser(nobody, nil, "show", "vservers")
	if code != 1 || !strings.Contains(out, "you need group gid 4242 to talk to the engine") {
		t.Errorf("a stranger's show vservers [%d]:\n%s", code, out)
	}
	out, code = asUser(nobody, []uint32{readerGID, adminGID}, "override", "vserver", "state", "disabled", "web@example")
	if code != 0 {
		t.Errorf("an admin's override [%d]:\n%s", code, out)
	}
	out, _, _ = te.run("show", "vservers", "web@example")
	if !strings.Contains(out, "Override:   set by nobody (uid 65534") {
		t.Errorf("the override does not say who set it:\n%s", out)
	}
}

// TestShowVLANs: the VLANs of the config, a list and one by id or by an
// address in its subnet.
func TestShowVLANs(t *testing.T) {
	te := startEngineWith(t, `
vlan { vlan_id: 100 host { fqdn: "seesaw1-vlan100.example.com." ipv4: "198.51.100.2/24" ipv6: "2001:db8:0:2::2/64" status: PRODUCTION } }
vlan { vlan_id: 20 host { fqdn: "seesaw1-vlan20.example.com." ipv4: "203.0.113.2/24" status: PRODUCTION } }
`)
	golden(t, "vlans.golden", te.session("show vlans", "show vlans 100", "sh vl 203.0.113.77", "show vlans 7", "show vlans --json"))
}
