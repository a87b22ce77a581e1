package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian's prometheus package; deploy/deps.sh installs it)")
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRules: the rules are valid, and their unit tests (alerts that
// fire and alerts that stay quiet) pass.
func TestAlertRules(t *testing.T) {
	p := promtool(t)
	run(t, p, "check", "rules", "seesaw-alerts.yml")
	out := run(t, p, "test", "rules", "seesaw-alerts.test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}

type dashboard struct {
	Title  string `json:"title"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboardQueries: every query of the dashboard parses as PromQL
// (promtool checks them as recording rules, with Grafana's variables
// filled in).
func TestDashboardQueries(t *testing.T) {
	p := promtool(t)
	d := readDashboard(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*", "$cluster", "c1")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, pn := range d.Panels {
		for _, tg := range pn.Targets {
			n++
			expr, _ := json.Marshal(vars.Replace(tg.Expr))
			fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", n, expr)
		}
	}
	if n < 10 {
		t.Fatalf("the dashboard has %d queries", n)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, p, "check", "rules", file)
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("seesaw-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("seesaw-dashboard.json: %v", err)
	}
	return d
}

// TestNamesExist: every seesaw_ metric the rules and the dashboard use is
// one the ECU serves (its descriptors in ecu/metrics.go), so a rename there
// cannot leave them silently empty.
func TestNamesExist(t *testing.T) {
	src, err := os.ReadFile("../../ecu/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, m := range regexp.MustCompile(`def\("(seesaw_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		served[m[1]] = true
	}
	if len(served) < 20 {
		t.Fatalf("found %d metric names in ecu/metrics.go", len(served))
	}
	rules, err := os.ReadFile("seesaw-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	dash, err := os.ReadFile("seesaw-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`seesaw_[a-z_]+`)
	for file, b := range map[string][]byte{"seesaw-alerts.yml": rules, "seesaw-dashboard.json": dash} {
		for _, name := range used.FindAllString(string(b), -1) {
			if served[name] {
				continue
			}
			t.Errorf("%s uses %s, which the ECU does not serve", file, name)
		}
	}

	// The daemons' Go runtime and process families (ecu/goruntime.go).
	rt, err := os.ReadFile("../../ecu/goruntime.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`def\("((?:go|process)_[a-z_]+)"|goGCDurationsID += "([a-z_]+)"`).FindAllStringSubmatch(string(rt), -1) {
		served[m[1]+m[2]] = true
	}
	for _, name := range regexp.MustCompile(`\b(?:go|process)_[a-z_]+`).FindAllString(string(dash)+string(rules), -1) {
		if !served[name] && !served[strings.TrimSuffix(strings.TrimSuffix(name, "_sum"), "_count")] {
			t.Errorf("the dashboard or rules use %s, which the ECU does not serve", name)
		}
	}
}
