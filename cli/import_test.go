package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const kaTestdata = "../engine/config/keepalived/testdata"

// TestImportKeepalivedSeeds runs "config import keepalived" on the seeds'
// keepalived pairs and then "config check" on what it wrote, for each node,
// as an operator would.
func TestImportKeepalivedSeeds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		nodes []string // expected seesaw.cfg files
	}{
		{"seed001", []string{kaTestdata + "/seed001/lb116.conf", kaTestdata + "/seed001/lb75.conf",
			"--cluster-vip", "192.168.128.119/24,2004::192:168:128:119/64"}, []string{"seesaw.cfg", "peer/seesaw.cfg"}},
		{"seed001 unicast peers only", []string{kaTestdata + "/seed001/lb116.conf",
			"--cluster-vip", "192.168.128.119/24", "--cluster-vip", "2004::192:168:128:119/64"}, []string{"seesaw.cfg", "peer/seesaw.cfg"}},
		{"seed003", []string{kaTestdata + "/seed003/master.conf", kaTestdata + "/seed003/backup.conf",
			"--cluster-vip", "192.168.100.46/24"}, []string{"seesaw.cfg", "peer/seesaw.cfg"}},
		{"sample", []string{kaTestdata + "/sample/keepalived.conf", kaTestdata + "/sample/keepalived.conf",
			"--config-id", "lb1", "--peer-config-id", "lb2", "--name", "web", "--fwmark", "7 10.0.0.99 tcp/80 tcp/443"},
			[]string{"seesaw.cfg", "peer/seesaw.cfg"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"config", "import", "keepalived", "--out", dir}, tc.args...)
			out, errOut, err := run(t, args...)
			if err != nil {
				t.Fatalf("import: %v\nstderr:\n%s", err, errOut)
			}
			for _, n := range append([]string{"cluster.pb"}, tc.nodes...) {
				if !strings.Contains(out, "wrote "+filepath.Join(dir, n)+"\n") {
					t.Errorf("output does not report writing %s:\n%s", n, out)
				}
			}
			for _, n := range tc.nodes {
				cout, cerr, err := run(t, "config", "check", "--conf", filepath.Join(dir, n), "--cluster", filepath.Join(dir, "cluster.pb"))
				if err != nil {
					t.Fatalf("config check %s: %v\n%s", n, err, cerr)
				}
				if !strings.Contains(cout, "configuration OK") || !strings.Contains(cout, "(this node)") && !strings.Contains(cout, "this node") {
					t.Errorf("config check %s:\n%s", n, cout)
				}
			}
		})
	}
}

func TestImportKeepalivedOutput(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, "config", "import", "keepalived", "--out", dir, "--cluster-vip", "192.168.100.46/24",
		kaTestdata+"/seed003/master.conf", kaTestdata+"/seed003/backup.conf")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(out, dir, "OUT")
	golden(t, "import_keepalived_seed003.golden", got)

	// A second run keeps the files unless --force.
	_, _, err = run(t, "config", "import", "keepalived", "--out", dir, "--cluster-vip", "192.168.100.46/24",
		kaTestdata+"/seed003/master.conf", kaTestdata+"/seed003/backup.conf")
	if err == nil || !strings.Contains(err.Error(), "exists; remove it or use --force") {
		t.Errorf("second import: err=%v, want a refusal to overwrite", err)
	}
	if _, _, err := run(t, "config", "import", "keepalived", "--out", dir, "--force", "--cluster-vip", "192.168.100.46/24",
		kaTestdata+"/seed003/master.conf", kaTestdata+"/seed003/backup.conf"); err != nil {
		t.Errorf("import --force: %v", err)
	}
}

// TestImportKeepalivedErrors: bad input is reported with file:line on
// stderr and nothing is written.
func TestImportKeepalivedErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(bad, []byte("vrrp_instance VI {\n  virtual_router_id 300\n  interface eth0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	_, errOut, err := run(t, "config", "import", "keepalived", "--out", out, bad)
	if err == nil {
		t.Fatal("import of a broken file succeeded")
	}
	want := bad + ":1: '{' is never closed\n" + bad + ":2: virtual_router_id \"300\": want a number in 1..255\n"
	if errOut != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, want)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output directory was created: %v", err)
	}
	if _, errOut, err := run(t, "config", "import", "keepalived", "--out", out, kaTestdata+"/seed003/master.conf"); err == nil ||
		!strings.Contains(errOut, "master.conf:9: every VIP of the VRRP instances carries a virtual_server") ||
		!strings.Contains(errOut, "--cluster-vip") {
		t.Errorf("seed 003 without a cluster VIP: err=%v stderr=%s", err, errOut)
	}
}

func TestImportKeepalivedBadFlags(t *testing.T) {
	conf := kaTestdata + "/seed003/master.conf"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cluster-vip", "192.168.100.46"}, `import keepalived: --cluster-vip "192.168.100.46": want ADDR/LEN, e.g. 192.0.2.4/24`},
		{[]string{"--cluster-vip", "192.168.100.46/24,192.168.100.47/24"}, "import keepalived: --cluster-vip: one address per family"},
		{[]string{"--cluster-vip", "192.168.100.46/24", "--fwmark", "7 tcp/80"},
			`import keepalived: --fwmark "7 tcp/80": want MARK ADDR [ADDR] PROTO/PORT..., e.g. "7 192.0.2.30 tcp/80 tcp/443"`},
	} {
		args := append([]string{"config", "import", "keepalived", "--out", t.TempDir(), conf}, tc.args...)
		if _, _, err := run(t, args...); err == nil || err.Error() != tc.want {
			t.Errorf("%v: err=%v, want %s", tc.args, err, tc.want)
		}
	}
	if _, _, err := run(t, "config", "import", "keepalived", conf); err == nil || !strings.Contains(err.Error(), `"out" not set`) {
		t.Errorf("without --out: err=%v", err)
	}
}
