package dataplane

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// TestAdoptKernelAtStart: an engine that starts with no check results
// keeps what the kernel holds (a Seesaw engine removed every service on its
// first evaluation), and a result, once in, decides again.
func TestAdoptKernelAtStart(t *testing.T) {
	for _, dir := range []string{"testdata/golden/sample", "testdata/golden/use-fwm", "testdata/golden/quiescent", "testdata/golden/dsr-tun-checks"} {
		res := load(t, dir)
		m := Derive(Input{Engine: res.Engine, Cluster: res.Cluster, Node: res.ThisNode})
		health := allHealth(m, true)
		// One destination quiesced in the kernel stays quiesced.
		for _, v := range m.Vservers {
			if v.Config.Name == "q@test" {
				health[v.Services[0].Destinations[0].Checks[0]].Healthy = false
			}
		}
		running := m.Evaluate(seesawpb.HAState_HA_STATE_LEADER, health, nil)
		adopted := AdoptedFrom(running.Desired)

		restarted := Derive(Input{Engine: res.Engine, Cluster: res.Cluster, Node: res.ThisNode, Marks: m.Marks})
		p := restarted.EvaluateAdopting(seesawpb.HAState_HA_STATE_LEADER, Health{}, nil, adopted)
		if !proto.Equal(p.Desired, running.Desired) {
			t.Errorf("%s: a restarted engine without results changes the kernel:\n%s", dir, lineDiff(Text(running.Desired), Text(p.Desired)))
		}
		without := restarted.Evaluate(seesawpb.HAState_HA_STATE_LEADER, Health{}, nil)
		if proto.Equal(without.Desired, running.Desired) && len(m.Checks.Upsert) > 0 {
			t.Errorf("%s: without adopting, no results should take services down", dir)
		}
		// A result that says unhealthy wins over the kernel.
		ck := restarted.Checks.Upsert[0]
		info := restarted.CheckInfo[ck.Id]
		p = restarted.EvaluateAdopting(seesawpb.HAState_HA_STATE_LEADER, Health{ck.Id: &hcpb.Result{Id: ck.Id, Message: "refused"}}, nil, adopted)
		for _, v := range p.Vservers {
			for _, s := range v.Services {
				for _, d := range s.Destinations {
					if d.Name == info.Destinations[0] && (d.Healthy || !strings.Contains(strings.Join(d.FailingChecks, ";"), "refused")) {
						t.Errorf("%s: %s is healthy after its check %s failed", dir, d.Name, info.Name)
					}
				}
			}
		}
	}
}
