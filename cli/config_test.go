package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	gkeConf    = "../engine/config/testdata/gke/seesaw.cfg"
	gkeCluster = "../engine/config/testdata/gke/cluster.pb"
)

// run executes the command tree with args and returns stdout, stderr and the
// error main would turn into the exit status.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := NewRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestConfigCheckGKE(t *testing.T) {
	out, errOut, err := run(t, "config", "check", "--conf", gkeConf, "--cluster", gkeCluster)
	if err != nil || errOut != "" {
		t.Fatalf("config check: err=%v stderr=%q", err, errOut)
	}
	golden(t, "config_check_gke.golden", out)
}

func TestConfigCheckSamples(t *testing.T) {
	out, _, err := run(t, "config", "check", "--conf", "../deploy/samples/seesaw.cfg", "--cluster", "../deploy/samples/cluster.pb")
	if err != nil {
		t.Fatalf("config check: %v", err)
	}
	golden(t, "config_check_samples.golden", out)
}

// The -c one-shot mode runs the same tree and prints the same thing.
func TestOneShot(t *testing.T) {
	want, _, err := run(t, "config", "check", "--conf", gkeConf, "--cluster", gkeCluster)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := run(t, "-c", "config check --conf "+gkeConf+" --cluster "+gkeCluster, "--engine", "/tmp/x.sock")
	if err != nil || got != want {
		t.Errorf("-c: err=%v output:\n%s\nwant:\n%s", err, got, want)
	}
	if _, _, err := run(t, "-c", "--help"); err == nil || !strings.Contains(err.Error(), "expected a command") {
		t.Errorf("-c --help: err=%v, want an error", err)
	}
	if _, _, err := run(t, "-c", "frobnicate"); err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Errorf("-c frobnicate: err=%v, want unknown command", err)
	}
}

func TestConfigCheckBroken(t *testing.T) {
	data, err := os.ReadFile(gkeCluster)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	if lines[4] != ">" || lines[len(lines)-2] != ">" {
		t.Fatalf("fixture changed: line 5 %q, last line %q", lines[4], lines[len(lines)-2])
	}
	tests := []struct {
		name    string
		drop    int // 0-based line to delete
		wantErr string
	}{
		// Without the ">" closing seesaw_vip, "node" on the (new) line 5 is
		// read as a field of seesaw_vip.
		{"seesaw_vip not closed", 4, ":5:1: unknown field: node"},
		// Without the last ">", the last vserver (opened on line 166) never ends.
		{"last vserver not closed", len(lines) - 2, `:166:10: syntax error: "<" is never closed (unexpected end of file)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			broken := append(append([]string{}, lines[:tc.drop]...), lines[tc.drop+1:]...)
			path := filepath.Join(t.TempDir(), "cluster.pb")
			if err := os.WriteFile(path, []byte(strings.Join(broken, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
			out, errOut, err := run(t, "config", "check", "--conf", gkeConf, "--cluster", path)
			if err == nil {
				t.Fatal("config check succeeded on a broken cluster.pb")
			}
			if out != "" {
				t.Errorf("stdout not empty on failure: %q", out)
			}
			if want := path + tc.wantErr + "\n"; errOut != want {
				t.Errorf("stderr = %q, want %q", errOut, want)
			}
		})
	}
}

func TestConfigCheckListsEveryError(t *testing.T) {
	dir := t.TempDir()
	conf, cluster := filepath.Join(dir, "seesaw.cfg"), filepath.Join(dir, "cluster.pb")
	os.WriteFile(conf, []byte("[cluster]\nname = x\nnode_ipv4 = 192.0.2.9\nvrid = 300\ncolour = red\n"), 0o644)
	os.WriteFile(cluster, []byte(`seesaw_vip { fqdn: "v." ipv4: "192.0.2.10/24" }
node { fqdn: "a." ipv4: "192.0.2.1/24" }
vserver { name: "w" rp: "r" entry_address { fqdn: "w." ipv4: "192.0.2.1/32" } vserver_entry { protocol: TCP port: 0 } }
`), 0o644)
	out, errOut, err := run(t, "config", "check", "--conf", conf, "--cluster", cluster)
	if err == nil || !strings.Contains(err.Error(), "4 error(s)") {
		t.Errorf("err = %v, want 4 errors", err)
	}
	want := strings.Join([]string{
		conf + ":4: [cluster] vrid: 300 is out of range 1..255",
		cluster + `: vserver "w" entry_address: 192.0.2.1 is the address of node "a."`,
		cluster + `: vserver "w" entry TCP/0: port 0 is out of range 1..65535`,
		conf + ":3: [cluster] node_ipv4: 192.0.2.9 is not the address of any node in " + cluster,
		"warning: " + conf + `:5: unknown key "colour" in [cluster]; ignored`,
	}, "\n") + "\n"
	if out != "" || errOut != want {
		t.Errorf("stdout %q\nstderr:\n%s\nwant:\n%s", out, errOut, want)
	}
}

func TestConfigCheckDefaults(t *testing.T) {
	cmd := newConfigCheckCommand()
	if got := cmd.Flag("conf").DefValue; got != "/etc/seesaw/seesaw.cfg" {
		t.Errorf("--conf default %q", got)
	}
	if got := cmd.Flag("cluster").DefValue; got != "/etc/seesaw/cluster.pb" {
		t.Errorf("--cluster default %q", got)
	}
}
