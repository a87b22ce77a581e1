package dataplane

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/config"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// fuzzEngine is the seesaw.cfg every fuzzed cluster.pb is read with.
const fuzzEngine = `[cluster]
name = fuzz
anycast_enabled = true
node_ipv4 = 192.0.2.2
node_ipv6 = 2001:db8:0:1::2
vip_ipv4 = 192.0.2.4
[interface]
node = eth0
lb = eth1
`

// FuzzCompute feeds any cluster.pb the config loader accepts, with check
// results, overrides and an HA state drawn from the second input, to the
// decision, and holds the outcome to the contracts: the NCC takes the
// desired state, the healthcheck process every check, and the same inputs
// give the same state.
func FuzzCompute(f *testing.F) {
	cases, _ := filepath.Glob("testdata/golden/*/cluster.pb")
	for _, c := range cases {
		b, err := os.ReadFile(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte{0, 1, 2, 3, 0xff, 0x10})
	}
	eng, _, err := config.ParseEngine("seesaw.cfg", []byte(fuzzEngine))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, cluster, choices []byte) {
		c, err := config.ParseCluster("cluster.pb", cluster)
		if err != nil || config.CrossCheck(eng, c).Err() != nil {
			return
		}
		node := c.NodeByAddr(eng.Node.IPv4)
		next := func() byte {
			if len(choices) == 0 {
				return 0
			}
			b := choices[0]
			choices = choices[1:]
			return b
		}
		ov := Overrides{Vservers: map[string]enginepb.OverrideState{}, Backends: map[string]enginepb.OverrideState{}, Destinations: map[string]enginepb.OverrideState{}}
		for _, v := range c.Vservers {
			ov.Vservers[v.Name] = enginepb.OverrideState(next() % 3)
			for _, b := range v.Backends {
				ov.Backends[b.FQDN] = enginepb.OverrideState(next() % 3)
			}
		}
		in := Input{Engine: eng, Cluster: c, Node: node, Overrides: ov}
		m := Derive(in)
		health := Health{}
		for _, ck := range m.Checks.Upsert {
			switch next() % 3 {
			case 0:
				health[ck.Id] = &hcpb.Result{Id: ck.Id, Healthy: true}
			case 1:
				health[ck.Id] = &hcpb.Result{Id: ck.Id}
			}
		}
		ha := seesawpb.HAState(next() % 6)
		p := m.Evaluate(ha, health, nil)
		p2 := m.Evaluate(ha, health, p) // the hysteresis from p
		checkContracts(t, m, p)
		checkContracts(t, m, p2)
		in.Marks = m.Marks
		if again := Compute(in, ha, health, nil); !proto.Equal(again.Desired, p.Desired) {
			t.Fatalf("two computations of the same inputs differ:\n%s\n---\n%s", Text(p.Desired), Text(again.Desired))
		}
	})
}
