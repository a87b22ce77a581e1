package app

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

func runPlan(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := plan(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestPlanCommand(t *testing.T) {
	conf, cluster := "--conf=../../../../deploy/samples/seesaw.cfg", "--cluster=../../../../deploy/samples/cluster.pb"
	code, out, errs := runPlan(conf, cluster)
	if code != 0 || !strings.Contains(out, "lb-interface eth1 up vrid 60") ||
		!strings.Contains(out, "service inet TCP 192.0.2.100:80 rr\n  -> 198.51.100.11:80 nat weight 1") {
		t.Errorf("plan: %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runPlan(conf, cluster, "--state=backup", "--healthy=none")
	if code != 0 || !strings.Contains(out, "lb-interface eth1 down") || strings.Contains(out, "service inet TCP 192.0.2.100:80") {
		t.Errorf("plan of a backup with every check failing: %d\n%s", code, out)
	}
	code, out, _ = runPlan(conf, cluster, "--json")
	var ds nccpb.DesiredState
	if err := protojson.Unmarshal([]byte(out), &ds); code != 0 || err != nil || len(ds.Services) == 0 {
		t.Errorf("plan --json: %d, %v\n%s", code, err, out)
	}
	if code, _, errs := runPlan("--state=sideways"); code != 2 || !strings.Contains(errs, "want master or backup") {
		t.Errorf("a bad --state: %d %s", code, errs)
	}
	if code, _, _ := runPlan("extra"); code != 2 {
		t.Errorf("an extra argument: %d", code)
	}
	if code, _, errs := runPlan(conf, "--cluster=../../../config/testdata/fuzz/nothere.pb"); code != 1 || !strings.Contains(errs, "rejected") {
		t.Errorf("a missing cluster.pb: %d %s", code, errs)
	}
	if code, _, errs := runPlan("--help"); code != 0 || !strings.Contains(errs, "Usage: seesaw_engine plan") {
		t.Errorf("--help: %d %s", code, errs)
	}
}
