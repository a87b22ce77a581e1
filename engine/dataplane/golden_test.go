package dataplane

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seesawlb/seesaw/engine/config"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

var seedFlag = flag.Uint64("seed", 0, "the seed of the random tests (0: a new one, logged)")

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with what the code produces now")

// TestGolden runs every case under testdata/golden: a seesaw.cfg and a
// cluster.pb (or a "config" file naming a directory that has them), and
// steps.txt, a sequence of steps separated by "---" lines, each setting
// the HA state, check results and overrides:
//
//	ha LEADER|BACKUP|UNKNOWN        (LEADER until set)
//	healthy all|none                every check's result
//	healthy|unhealthy|unknown FQDN  every check of one backend
//	override vserver|backend|destination NAME enabled|disabled|default
//
// want.txt holds, for each step, the desired state (Text), the checks and a
// line per service. Regenerate with go test -run TestGolden -update.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no golden cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := runCase(t, dir)
			want := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			b, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(b) != got {
				t.Errorf("%s differs from what the code produces (run with -update to accept):\n%s", want, lineDiff(string(b), got))
			}
		})
	}
}

// load reads a case's config.
func load(t testing.TB, dir string) *config.Result {
	t.Helper()
	cfgDir := dir
	if b, err := os.ReadFile(filepath.Join(dir, "config")); err == nil {
		cfgDir = filepath.Join(dir, strings.TrimSpace(string(b)))
	}
	res := config.Check(filepath.Join(cfgDir, "seesaw.cfg"), filepath.Join(cfgDir, "cluster.pb"))
	if err := res.Err(); err != nil {
		t.Fatalf("config of %s: %v", dir, err)
	}
	if res.ThisNode == nil {
		t.Fatalf("config of %s: this node is not in the cluster", dir)
	}
	return res
}

func runCase(t *testing.T, dir string) string {
	res := load(t, dir)
	stepsText, err := os.ReadFile(filepath.Join(dir, "steps.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ha := seesawpb.HAState_HA_STATE_LEADER
	health := Health{}
	ov := Overrides{Vservers: map[string]enginepb.OverrideState{}, Backends: map[string]enginepb.OverrideState{},
		Destinations: map[string]enginepb.OverrideState{}}
	var prev *Plan
	var marks map[string]uint32
	var out strings.Builder
	for i, step := range strings.Split(string(stepsText), "\n---\n") {
		var directives []string
		// Directives that need the model (health by backend) apply after
		// it is derived; overrides before.
		sc := bufio.NewScanner(strings.NewReader(step))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			directives = append(directives, line)
			f := strings.Fields(line)
			switch f[0] {
			case "ha":
				ha = seesawpb.HAState(seesawpb.HAState_value["HA_STATE_"+f[1]])
			case "override":
				st := enginepb.OverrideState(enginepb.OverrideState_value["OVERRIDE_"+strings.ToUpper(f[3])])
				map[string]map[string]enginepb.OverrideState{"vserver": ov.Vservers, "backend": ov.Backends, "destination": ov.Destinations}[f[1]][f[2]] = st
			}
		}
		m := Derive(Input{Engine: res.Engine, Cluster: res.Cluster, Node: res.ThisNode, Overrides: ov, Marks: marks})
		marks = m.Marks
		for _, line := range directives {
			f := strings.Fields(line)
			if f[0] != "healthy" && f[0] != "unhealthy" && f[0] != "unknown" {
				continue
			}
			for _, ck := range m.Checks.Upsert {
				if f[1] != "all" && f[1] != "none" && m.CheckInfo[ck.Id].Backend != f[1] {
					continue
				}
				switch {
				case f[0] == "unknown":
					delete(health, ck.Id)
				case f[0] == "unhealthy" || f[1] == "none":
					health[ck.Id] = &hcpb.Result{Id: ck.Id, Healthy: false, Message: "connection refused"}
				default:
					health[ck.Id] = &hcpb.Result{Id: ck.Id, Healthy: true, Success: true}
				}
			}
		}
		p := m.Evaluate(ha, health, prev)
		prev = p
		fmt.Fprintf(&out, "=== step %d: %s\n", i+1, strings.Join(directives, "; "))
		out.WriteString(Text(p.Desired))
		out.WriteString("--- checks\n")
		var lines []string
		for _, ck := range m.Checks.Upsert {
			info := m.CheckInfo[ck.Id]
			line := fmt.Sprintf("%s %s", info.Name, ck.Address)
			if ck.Target != "" {
				line += fmt.Sprintf(" via %s %s mark %d", ck.Target, ck.Mode, ck.Fwmark)
			}
			lines = append(lines, fmt.Sprintf("%s decides %s\n", line, strings.Join(info.Destinations, " ")))
		}
		slices.Sort(lines)
		out.WriteString(strings.Join(lines, ""))
		out.WriteString("--- services\n")
		for _, v := range p.Vservers {
			for _, s := range v.Services {
				state := "down"
				if s.Active {
					state = "up"
				}
				what := fmt.Sprintf("%s:%d", s.Protocol, s.Port)
				if s.Fwmark != 0 {
					what = fmt.Sprintf("FWM %d", s.Fwmark)
				}
				fmt.Fprintf(&out, "%s %s %s %d/%d %s\n", v.Name, s.Vip, what, s.HealthyDestinations, s.InServiceDestinations, state)
			}
			for _, w := range v.Warnings {
				fmt.Fprintf(&out, "%s warning: %s\n", v.Name, w)
			}
		}
		for _, w := range m.Warnings {
			fmt.Fprintf(&out, "warning: %s\n", w)
		}
	}
	return out.String()
}

// lineDiff shows the lines of a and b that differ, with their numbers.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)) && len(out) < 40; i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("line %d:\n  want %q\n  got  %q", i+1, x, y))
		}
	}
	return strings.Join(slices.Clip(out), "\n")
}
