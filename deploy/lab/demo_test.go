package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
// node; and the seesaw command on lb1 checks lb1's config. Its browser
// subtest loads the forwarded page in chromium and keeps a screenshot
// (DEMO_SCREENSHOT=file.png; the README's picture).
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
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
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
while [ ! -e %s/stop ] && [ $i -lt 6000 ]; do sleep 0.1; i=$((i+1)); done
seesaw config check`, stop)
	cmd := exec.CommandContext(ctx, filepath.Join(root, "deploy/lab/demo.sh"), "sh", "-c", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"DEMO_BIN="+bin,
		"DEMO_PORT="+strconv.Itoa(port),
		"DEMO_LAB_FLAGS=--timeout 8m --writable "+stop)
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
		// the forwarded port is lb1's ECU. (The demo has just brought lb1
		// back after its failover: its ECU may still be starting.)
		checked = true
		var code int
		var body string
		deadline := time.Now().Add(3 * time.Minute)
		for {
			code, body, err = get("/healthz")
			if err == nil && code == http.StatusOK || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil || code != http.StatusOK {
			t.Errorf("GET %s/healthz from the host: %d %q %v", base, code, body, err)
		}
		for {
			code, body, err = get("/")
			if err == nil && code == http.StatusOK && strings.Contains(body, "<title>example ") || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil || code != http.StatusOK || !strings.Contains(body, "<title>example ") {
			t.Errorf("GET %s/ from the host: %d %v\n%s", base, code, err, body)
		}
		code, body, err = get("/api/v1/cluster")
		if err != nil || code != http.StatusOK || !strings.Contains(thisNode(body), `"ipv4": "192.0.2.2"`) {
			t.Errorf("GET %s/api/v1/cluster: not lb1's (192.0.2.2 this node): %d %v\n%s", base, code, err, body)
		}
		// What a visitor sees there, in a real browser (TestDemo/browser).
		t.Run("browser", func(t *testing.T) { demoPageInBrowser(t, base, get) })
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
	// Each LB's state is its own node's: lb1 is master, lb2 its backup.
	_, lb2, _ := strings.Cut(got, "== lb2: seesaw show ha")
	lb1, _, _ := strings.Cut(got, "== lb2: seesaw show ha")
	_, lb1, _ = strings.Cut(lb1, "== lb1: seesaw show ha")
	// One is master, the other its backup (which one depends on which
	// HA came up first under emulation).
	m1, m2 := strings.Contains(lb1, "HA state:     master"), strings.Contains(lb2, "HA state:     master")
	b1, b2 := strings.Contains(lb1, "HA state:     backup"), strings.Contains(lb2, "HA state:     backup")
	if !(m1 && b2 || m2 && b1) || !strings.Contains(lb1, "web@example") {
		t.Errorf("the demo does not show one master and one backup, with the vservers")
	}
	// The failover under the client's traffic kept its connection.
	if !strings.Contains(got, "(the master) dies") || !strings.Contains(got, "=> the client's connection survived the master's death") {
		t.Errorf("the demo's failover did not keep the client's connection")
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

// thisNode is the node of a /api/v1/cluster answer that is this node,
// as its JSON text, or "".
func thisNode(body string) string {
	var cs struct {
		Nodes []json.RawMessage `json:"nodes"`
	}
	if json.Unmarshal([]byte(body), &cs) != nil {
		return ""
	}
	for _, n := range cs.Nodes {
		var node struct {
			ThisNode bool `json:"this_node"`
		}
		if json.Unmarshal(n, &node) == nil && node.ThisNode {
			var b bytes.Buffer
			json.Indent(&b, n, "", "  ")
			return b.String()
		}
	}
	return ""
}
