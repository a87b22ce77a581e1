package dataplane

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	gen "github.com/seesawlb/seesaw/engine/config/configtest"
	"github.com/seesawlb/seesaw/healthcheck"
	"github.com/seesawlb/seesaw/ncc"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// checkContracts holds a model and its plan to what the processes on the
// other side take: every check is one the healthcheck process's checker
// constructor accepts, and every desired state one the NCC's Apply takes.
func checkContracts(t testing.TB, m *Model, p *Plan) {
	t.Helper()
	env := healthcheck.NewEnv()
	defer env.Close()
	for _, ck := range m.Checks.Upsert {
		if ck.Type == hcpb.CheckType_ICMP_PING {
			continue // its constructor opens a raw socket; its fields are checked below
		}
		if _, err := healthcheck.NewChecker(ck, env); err != nil {
			t.Errorf("check %d (%s) is refused by the healthcheck process: %v", ck.Id, ck.Name, err)
		}
		if m.CheckInfo[ck.Id] == nil || len(m.CheckInfo[ck.Id].Destinations) == 0 {
			t.Errorf("check %d (%s) decides no destination", ck.Id, ck.Name)
		}
		if ck.Id != hashIDOf(m, ck) {
			t.Errorf("check %d (%s): its id is not the hash of its key", ck.Id, ck.Name)
		}
	}
	if err := ncc.Validate(p.Desired); err != nil {
		t.Errorf("the NCC refuses the desired state: %v\n%s", err, Text(p.Desired))
	}
}

// hashIDOf is what the id of ck should be (no collisions in these tests).
func hashIDOf(_ *Model, ck *hcpb.Check) uint64 { return hashID(hcpb.Key(ck)) }

// TestContracts holds every golden case, at every HA state and with all
// checks healthy and unhealthy, to the other processes' contracts.
func TestContracts(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/golden/*")
	for _, dir := range dirs {
		res := load(t, dir)
		m := Derive(Input{Engine: res.Engine, Cluster: res.Cluster, Node: res.ThisNode})
		for _, ha := range []seesawpb.HAState{seesawpb.HAState_HA_STATE_LEADER, seesawpb.HAState_HA_STATE_BACKUP} {
			for _, healthy := range []bool{true, false} {
				checkContracts(t, m, m.Evaluate(ha, allHealth(m, healthy), nil))
			}
		}
	}
}

func allHealth(m *Model, healthy bool) Health {
	h := Health{}
	for _, ck := range m.Checks.Upsert {
		h[ck.Id] = &hcpb.Result{Id: ck.Id, Healthy: healthy}
	}
	return h
}

// generated writes a config of n vservers of `backends` backends each
// (package gen) and returns its directory.
func generated(t testing.TB, n, backends int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.pb"), []byte(gen.Cluster(n, backends, gen.Options{})), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "seesaw.cfg"), []byte(gen.SeesawCfg("eth0", "eth1")), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestGenerated1000 derives a generated config of 1,000 vservers of 10
// backends and compares a summary with testdata/generated-1000.txt: the
// counts, the first and last vservers' services in full, and a digest of
// the whole desired state (so any change anywhere shows).
func TestGenerated1000(t *testing.T) {
	res := load(t, generated(t, 1000, 10))
	m := Derive(Input{Engine: res.Engine, Cluster: res.Cluster, Node: res.ThisNode})
	p := m.Evaluate(seesawpb.HAState_HA_STATE_LEADER, allHealth(m, true), nil)
	checkContracts(t, m, p)
	again := Compute(Input{Engine: res.Engine, Cluster: res.Cluster, Node: res.ThisNode}, seesawpb.HAState_HA_STATE_LEADER, allHealth(m, true), nil)
	if !proto.Equal(p.Desired, again.Desired) {
		t.Error("two computations of the same inputs differ")
	}
	text := Text(p.Desired)
	var dests, fwm int
	for _, s := range p.Desired.Services {
		dests += len(s.Destinations)
		if s.Fwmark != 0 {
			fwm++
		}
	}
	var sum strings.Builder
	fmt.Fprintf(&sum, "vservers %d\nservices %d (fwmark %d)\ndestinations %d\nchecks %d\nvips %d\nnft fwmarks %d snat %d\nsha256 %x\n",
		len(m.Vservers), len(p.Desired.Services), fwm, dests, len(m.Checks.Upsert), len(p.Desired.Vips),
		len(p.Desired.Nft.Fwmarks), len(p.Desired.Nft.Snat), sha256.Sum256([]byte(text)))
	for _, name := range []string{"svc0000@gen", "svc0998@gen"} {
		in := false
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "service ") {
				in = strings.Contains(line, addrOf(m, name))
			} else if !strings.HasPrefix(line, "  ->") {
				in = false
			}
			if in {
				fmt.Fprintf(&sum, "%s\n", line)
			}
		}
	}
	want := "testdata/generated-1000.txt"
	if *update {
		if err := os.WriteFile(want, []byte(sum.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(b) != sum.String() {
		t.Errorf("%s differs:\n%s", want, lineDiff(string(b), sum.String()))
	}
}

func addrOf(m *Model, vserver string) string {
	for _, v := range m.Vservers {
		if v.Config.Name == vserver {
			return v.Config.Address.IPv4.Addr().String() + ":"
		}
	}
	return "?"
}

// TestRandomOrderOfChanges applies random sequences of health changes,
// overrides and HA states and checks after each that the plan is the one a
// fresh computation from the same inputs and the same previous service
// states gives, and that it is NCC-valid. The seed is logged; replay with
// -seed.
func TestRandomOrderOfChanges(t *testing.T) {
	seed := uint64(rand.Int64())
	if *seedFlag != 0 {
		seed = *seedFlag
	}
	t.Logf("seed %d (replay with -seed %d)", seed, seed)
	r := rand.New(rand.NewPCG(seed, seed))
	for _, dir := range []string{"testdata/golden/overrides", "testdata/golden/use-fwm", "testdata/golden/dsr-tun-checks", "testdata/golden/watermarks"} {
		res := load(t, dir)
		ov := Overrides{Vservers: map[string]enginepb.OverrideState{}, Backends: map[string]enginepb.OverrideState{}, Destinations: map[string]enginepb.OverrideState{}}
		health := Health{}
		var prev *Plan
		var marks map[string]uint32
		for range 200 {
			m := Derive(Input{Engine: res.Engine, Cluster: res.Cluster, Node: res.ThisNode, Overrides: ov, Marks: marks})
			switch r.IntN(4) {
			case 0:
				v := res.Cluster.Vservers[r.IntN(len(res.Cluster.Vservers))]
				ov.Vservers[v.Name] = enginepb.OverrideState(r.IntN(3))
			case 1:
				v := res.Cluster.Vservers[r.IntN(len(res.Cluster.Vservers))]
				b := v.Backends[r.IntN(len(v.Backends))]
				ov.Backends[b.FQDN] = enginepb.OverrideState(r.IntN(3))
			default:
				if len(m.Checks.Upsert) > 0 {
					ck := m.Checks.Upsert[r.IntN(len(m.Checks.Upsert))]
					health[ck.Id] = &hcpb.Result{Id: ck.Id, Healthy: r.IntN(2) == 0}
				}
			}
			ha := []seesawpb.HAState{seesawpb.HAState_HA_STATE_LEADER, seesawpb.HAState_HA_STATE_BACKUP}[r.IntN(2)]
			m = Derive(Input{Engine: res.Engine, Cluster: res.Cluster, Node: res.ThisNode, Overrides: ov, Marks: marks})
			for k, mk := range marks {
				if got, ok := m.Marks[k]; ok && got != mk {
					t.Fatalf("%s: mark of %s moved from %d to %d", dir, k, mk, got)
				}
			}
			marks = m.Marks
			p := m.Evaluate(ha, health, prev)
			fresh := Compute(Input{Engine: res.Engine, Cluster: res.Cluster, Node: res.ThisNode, Overrides: ov, Marks: marks}, ha, health, prev)
			if !proto.Equal(p.Desired, fresh.Desired) {
				t.Fatalf("%s: a fresh computation differs", dir)
			}
			checkContracts(t, m, p)
			prev = p
		}
	}
}
