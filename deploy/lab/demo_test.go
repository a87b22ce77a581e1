package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/testenv"
)

// demoMains are the binaries make demo runs (make build's).
var demoMains = []string{
	"./watchdog/cmd/seesaw_watchdog", "./engine/cmd/seesaw_engine", "./ncc/cmd/seesaw_ncc",
	"./ha/cmd/seesaw_ha", "./healthcheck/cmd/seesaw_healthcheck", "./ecu/cmd/seesaw_ecu", "./cli/cmd/seesaw_cli",
}

// TestDemo runs make demo's script non-interactively, with a command in
// lb1 that holds the guest up until the test is done: while it runs, the
// forwarded port answers on the host with lb1's ECU; the script reports both
// LBs' watchdogs running with their ECUs' status pages, each for its own
// node; and the seesaw command on lb1 checks lb1's config.
func TestDemo(t *testing.T) {
	testenv.RequireRoot(t) // the lab installs its Debian packages; the guest runs as root
	if testing.Short() {
		t.Skip("builds the appliance and boots the demo (about a minute); skipped with -short")
	}
	prepareForTest(t) // fetch and build once here, where errors are clear
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	// The daemons are built afresh into a directory of the test's own: the
	// repository's bin/ may be stale or missing.
	bin := filepath.Join(t.TempDir(), "bin")
	build := exec.CommandContext(ctx, "go", append([]string{"build", "-o", bin + "/"}, demoMains...)...)
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	stop := t.TempDir() // the guest sees it writable; a file here ends the command
	port := freePort(t)
	script := fmt.Sprintf(`echo demo-waiting; i=0
while [ ! -e %s/stop ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done
seesaw config check`, stop)
	cmd := exec.CommandContext(ctx, filepath.Join(root, "deploy/lab/demo.sh"), "sh", "-c", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"DEMO_BIN="+bin,
		"DEMO_PORT="+strconv.Itoa(port),
		"DEMO_LAB_FLAGS=--timeout 6m --writable "+stop)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	get := func(path string) (int, string, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	checked := false
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if sc.Text() != "demo-waiting" {
			continue
		}
		// The guest is up and the demo reported what runs: from the host,
		// the forwarded port is lb1's ECU.
		checked = true
		code, body, err := get("/healthz")
		if err != nil || code != http.StatusOK {
			t.Errorf("GET %s/healthz from the host: %d %q %v", base, code, body, err)
		}
		code, body, err = get("/")
		if err != nil || code != http.StatusOK || !strings.Contains(body, "Seesaw ECU") {
			t.Errorf("GET %s/ from the host: %d %v\n%s", base, code, err, body)
		}
		if !strings.Contains(thisNodeLine(body), "192.0.2.2 ") {
			t.Errorf("the forwarded status page is not lb1's (192.0.2.2 this node):\n%s", body)
		}
		if err := os.WriteFile(filepath.Join(stop, "stop"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitErr := cmd.Wait()
	got := out.String()
	if waitErr != nil || !checked {
		t.Fatalf("demo.sh: %v (reached the command: %v)\nstdout:\n%s\nstderr:\n%s", waitErr, checked, got, stderr.String())
	}
	for _, lb := range []string{"lb1", "lb2"} {
		if !strings.Contains(got, "  "+lb+"  seesaw_watchdog running") {
			t.Errorf("the demo does not report %s's watchdog running", lb)
		}
		if !strings.Contains(got, "seesaw_ecu answers http://127.0.0.1:10257/healthz in "+lb) {
			t.Errorf("the demo does not report %s's ECU answering", lb)
		}
	}
	// Each LB's status page is its own node's: the configs differ.
	_, lb2, _ := strings.Cut(got, "== lb2: the ECU's status page")
	lb1, _, _ := strings.Cut(got, "== lb2: the ECU's status page")
	_, lb1, _ = strings.Cut(lb1, "== lb1: the ECU's status page")
	if !strings.Contains(thisNodeLine(lb1), "192.0.2.2 ") || !strings.Contains(thisNodeLine(lb2), "192.0.2.3 ") {
		t.Errorf("lb1's and lb2's status pages do not each name their own node (192.0.2.2, 192.0.2.3)")
	}
	if !strings.Contains(got, "host http://127.0.0.1:"+strconv.Itoa(port)+"/ is lb1's ECU") {
		t.Error("the demo does not report the forwarded port")
	}
	if !strings.Contains(got, `Cluster "example": configuration OK`) || !strings.Contains(got, "/run/seesaw-demo/lb1/seesaw.cfg") {
		t.Error("seesaw config check on lb1 did not check lb1's config")
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", got, stderr.String())
	}
}

// thisNodeLine returns the status page's line for the node it runs on.
func thisNodeLine(page string) string {
	for _, l := range strings.Split(page, "\n") {
		if strings.Contains(l, "(this node)") {
			return l
		}
	}
	return ""
}
