package keepalived_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seesawlb/seesaw/engine"
	"github.com/seesawlb/seesaw/engine/config/keepalived"
	"github.com/seesawlb/seesaw/engine/dataplane"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// ipvsadm renders a desired state's IPVS services the way "ipvsadm -Ln"
// lists them (services and destinations sorted, no counters), so that it
// can be compared with what keepalived made the kernel hold.
func ipvsadm(ds *nccpb.DesiredState) string {
	fwd := map[nccpb.Forward]string{nccpb.Forward_FORWARD_NAT: "Masq", nccpb.Forward_FORWARD_DSR: "Route",
		nccpb.Forward_FORWARD_TUNNEL: "Tunnel", nccpb.Forward_FORWARD_LOCAL: "Local"}
	var svcs []string
	for _, s := range ds.GetServices() {
		line := fmt.Sprintf("%s  %s %s", s.Protocol, dataplane.HostPort(s.Address, s.Port), s.Scheduler)
		if s.PersistenceTimeout != 0 {
			line += fmt.Sprintf(" persistent %d", s.PersistenceTimeout)
		}
		var dests []string
		for _, d := range s.Destinations {
			dests = append(dests, fmt.Sprintf("  -> %s %s %d", dataplane.HostPort(d.Address, d.Port), fwd[d.Forward], d.Weight))
		}
		slices.Sort(dests)
		svcs = append(svcs, line+"\n"+strings.Join(dests, "\n"))
	}
	slices.Sort(svcs)
	return strings.Join(svcs, "\n") + "\n"
}

// TestPlanMatchesKeepalived imports the seeds' pairs, has the engine plan
// each node's data plane as master with every backend healthy (what
// "seesaw_engine plan" computes), and compares the IPVS services with what
// keepalived programmed: seed 001's "ipvsadm -ln" output as its guide
// prints it, and seed 003's ipvsadm equivalents as its comments give them
// ("ipvsadm -A -t 192.168.100.40:6443 -s rr", "-a ... -g -w 1").
func TestPlanMatchesKeepalived(t *testing.T) {
	for _, tc := range []struct {
		name       string
		self, peer string
		clusterVIP []string
		want       string
	}{
		{"seed001", "testdata/seed001/lb116.conf", "testdata/seed001/lb75.conf",
			[]string{"192.168.128.119/24", "2004::192:168:128:119/64"}, `TCP  192.168.128.118:80 rr
  -> 192.168.129.100:80 Masq 1
  -> 192.168.138.100:80 Masq 1
  -> 192.168.143.192:80 Masq 1
TCP  [2004::192:168:128:118]:80 rr
  -> [2004::192:168:129:100]:80 Masq 1
  -> [2004::192:168:138:100]:80 Masq 1
  -> [2004::192:168:143:192]:80 Masq 1
`},
		{"seed003", "testdata/seed003/master.conf", "testdata/seed003/backup.conf",
			[]string{"192.168.100.46/24"}, `TCP  192.168.100.40:6443 rr
  -> 192.168.100.41:6443 Route 1
  -> 192.168.100.42:6443 Route 1
  -> 192.168.100.43:6443 Route 1
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			self, err := keepalived.ParseFile(tc.self, keepalived.Options{})
			if err != nil {
				t.Fatal(err)
			}
			peer, err := keepalived.ParseFile(tc.peer, keepalived.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var vips []netip.Prefix
			for _, s := range tc.clusterVIP {
				vips = append(vips, netip.MustParsePrefix(s))
			}
			r, err := keepalived.Import(keepalived.Input{Stmts: self}, &keepalived.Input{Stmts: peer}, keepalived.ImportOptions{ClusterVIP: vips})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			for name, data := range r.Files("test") {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// Either node, once master, serves the same.
			for _, cfg := range []string{"seesaw.cfg", "peer/seesaw.cfg"} {
				plan, _, err := engine.PlanFiles(filepath.Join(dir, cfg), filepath.Join(dir, "cluster.pb"), seesawpb.HAState_HA_STATE_LEADER, true)
				if err != nil {
					t.Fatalf("%s: plan: %v", cfg, err)
				}
				if got := ipvsadm(plan.Desired); got != tc.want {
					t.Errorf("%s: IPVS as master:\n%s\nwant (keepalived's):\n%s", cfg, got, tc.want)
				}
				// keepalived's NAT rewrites the destination only. The import
				// says so (source_nat: false), and the engine then neither
				// source-NATs nor asks for conntrack.
				text := dataplane.Text(plan.Desired)
				if strings.Contains(text, "nft snat") || strings.Contains(text, "vs.conntrack") {
					t.Errorf("%s: keepalived's NAT imported as source NAT:\n%s", cfg, grepLines(text, "snat")+grepLines(text, "conntrack"))
				}
			}
		})
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
