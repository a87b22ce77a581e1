package keepalived

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Lines keepalived --config-test prints when it could not read a statement
// as written (keepalived 2.2.7's wording).
var keepalivedParseFailures = []string{
	"Unknown keyword", "Unexpected", "missing '}'", "extra '}'", "outside range", "not valid", "invalid",
}

// keepalivedConfigTest runs keepalived's own parser over file in a fresh
// network namespace that has the interfaces the test configs name.
func keepalivedConfigTest(t *testing.T, file, configID string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: keepalived --config-test runs in its own network namespace (make test runs as root)")
	}
	for _, bin := range []string{"keepalived", "unshare", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (Debian package keepalived, util-linux, iproute2; make test installs them)", bin)
		}
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	args := "--config-test -f " + abs
	if configID != "" {
		args += " -i " + configID
	}
	script := "ip link add eth0 type veth peer name p0 && ip link add eth1 type veth peer name p1 && keepalived " + args
	out, err := exec.Command("unshare", "--net", "sh", "-c", script).CombinedOutput()
	if err != nil && !strings.Contains(err.Error(), "exit status") {
		t.Fatalf("keepalived --config-test: %v\n%s", err, out)
	}
	// keepalived -t exits non-zero for warnings too, so its output is what
	// tells a parse failure.
	return string(out)
}

// TestKeepalivedReadsTestdata holds the importer's inputs to the real
// keepalived: every statement of the seeds' pairs and of the sample is one
// keepalived itself parses, so the importer is tested on keepalived's
// grammar rather than on our idea of it.
func TestKeepalivedReadsTestdata(t *testing.T) {
	for _, tc := range []struct{ file, id string }{
		{"testdata/seed001/lb116.conf", ""},
		{"testdata/seed001/lb75.conf", ""},
		{"testdata/seed003/master.conf", ""},
		{"testdata/seed003/backup.conf", ""},
		{"testdata/sample/keepalived.conf", "lb1"},
		{"testdata/sample/keepalived.conf", "lb2"},
	} {
		t.Run(tc.file+"@"+tc.id, func(t *testing.T) {
			out := keepalivedConfigTest(t, tc.file, tc.id)
			for _, l := range strings.Split(out, "\n") {
				for _, bad := range keepalivedParseFailures {
					if strings.Contains(l, bad) {
						t.Errorf("keepalived could not read: %s", l)
					}
				}
			}
		})
	}
	// The control: the same check sees a statement keepalived does not know.
	t.Run("control", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.conf")
		if err := os.WriteFile(bad, []byte("vrrp_instance VI {\n  interface eth0\n  virtual_router_id 9\n  no_such_keyword 1\n}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := keepalivedConfigTest(t, bad, "")
		if !strings.Contains(out, "Unknown keyword 'no_such_keyword'") {
			t.Errorf("keepalived accepted an unknown keyword; output:\n%s", out)
		}
	})
}
