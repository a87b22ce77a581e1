package engine

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/config"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

const gkeDir = "config/testdata/gke"

func loadGKE(t *testing.T) *config.Result {
	t.Helper()
	r := config.Check(filepath.Join(gkeDir, "seesaw.cfg"), filepath.Join(gkeDir, "cluster.pb"))
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHAConfigFromGKE(t *testing.T) {
	r := loadGKE(t)
	got := haConfig(r.Engine, r.Cluster, r.ThisNode)
	want := &hapb.Config{
		Enabled:      true,
		Interface:    "ens192",
		Vrid:         128,
		Priority:     255,
		LocalAddress: "203.0.113.2",
		Peers:        []string{"203.0.113.3"},
		Addresses:    []string{"203.0.113.4"},
	}
	want.AdvertInterval = got.AdvertInterval
	if !proto.Equal(got, want) {
		t.Errorf("haConfig =\n%v\nwant\n%v", got, want)
	}
	if got.AdvertInterval.AsDuration() != 500*time.Millisecond {
		t.Errorf("advert interval %v, want Seesaw's 500ms", got.AdvertInterval.AsDuration())
	}

}

func TestCheckSetFromGKE(t *testing.T) {
	r := loadGKE(t)
	cs := checkSet(r.Cluster)
	if !cs.Full {
		t.Error("not a full set")
	}
	// Every check in the fixture is "HTTP /healthz on 10256, PLAIN": one
	// per backend address, however many vservers and entries ask for it.
	// admin-1..4 and user-1..3 are seven backends.
	if len(cs.Upsert) != 7 {
		for _, c := range cs.Upsert {
			t.Log(c)
		}
		t.Fatalf("%d checks, want 7 (one per backend after dedup)", len(cs.Upsert))
	}
	seen := map[uint64]bool{}
	for i, c := range cs.Upsert {
		if c.Id == 0 || seen[c.Id] {
			t.Errorf("id %d zero or repeated", c.Id)
		}
		seen[c.Id] = true
		if i > 0 && cs.Upsert[i-1].Id >= c.Id {
			t.Error("not ordered by id")
		}
		if c.Type != hcpb.CheckType_HTTP || c.Mode != hcpb.CheckMode_PLAIN || c.Port != 10256 || c.Send != "/healthz" || c.Target != "" {
			t.Errorf("check %v", c)
		}
		if c.Interval.AsDuration() != 10*time.Second || c.Timeout.AsDuration() != 5*time.Second || c.Rise != 1 || c.Fall != 1 {
			t.Errorf("timing of %v", c)
		}
	}
	// Stable: the same config gives the same ids.
	again := checkSet(loadGKE(t).Cluster)
	if !proto.Equal(cs, again) {
		t.Error("two derivations of one config differ")
	}
}

const dsrCluster = `
seesaw_vip: < fqdn: "vip." ipv4: "192.0.2.4/24" status: PRODUCTION >
node: < fqdn: "lb1." ipv4: "192.0.2.2/24" >
node: < fqdn: "lb2." ipv4: "192.0.2.3/24" >
vserver: <
  name: "web@site"
  entry_address: < fqdn: "web." ipv4: "192.0.2.10/32" ipv6: "2001:db8::10/128" >
  rp: "web@example.com"
  vserver_entry: <
    protocol: TCP
    port: 80
    scheduler: WLC
    mode: DSR
    healthcheck: < type: TCP mode: DSR >
  >
  healthcheck: < type: TCP port: 8080 >
  backend: < host: < fqdn: "b1." ipv4: "192.0.2.21/32" ipv6: "2001:db8::21/128" > >
  backend: < host: < fqdn: "b2." ipv4: "192.0.2.22/32" status: PROPOSED > >
>
vserver: <
  name: "api@site"
  entry_address: < fqdn: "api." ipv4: "192.0.2.11/32" >
  rp: "api@example.com"
  vserver_entry: <
    protocol: TCP
    port: 80
    scheduler: WLC
    mode: DSR
    healthcheck: < type: TCP mode: DSR >
  >
  healthcheck: < type: TCP port: 8080 >
  backend: < host: < fqdn: "b1." ipv4: "192.0.2.21/32" ipv6: "2001:db8::21/128" > >
>
`

func TestCheckSetExpansion(t *testing.T) {
	c, err := config.ParseCluster("cluster.pb", []byte(dsrCluster))
	if err != nil {
		t.Fatal(err)
	}
	cs := checkSet(c)
	var names []string
	for _, ck := range cs.Upsert {
		names = append(names, ck.Name)
	}
	slices.Sort(names)
	// The port 8080 check is PLAIN: one per backend address, shared by both
	// vservers. The DSR port 80 check goes through each VIP, so it is per VIP and family. b2
	// is PROPOSED, so it is not checked; api has no IPv6 VIP.
	want := []string{
		"TCP 192.0.2.21:80 via 192.0.2.10 (DSR)",
		"TCP 192.0.2.21:80 via 192.0.2.11 (DSR)",
		"TCP 192.0.2.21:8080",
		"TCP [2001:db8::21]:80 via 2001:db8::10 (DSR)",
		"TCP [2001:db8::21]:8080",
	}
	if !slices.Equal(names, want) {
		t.Errorf("checks:\n%q\nwant\n%q", names, want)
	}
}

func TestCheckIDsFollowTheirCheck(t *testing.T) {
	c, err := config.ParseCluster("cluster.pb", []byte(dsrCluster))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]uint64{}
	for _, ck := range checkSet(c).Upsert {
		ids[ck.Name] = ck.Id
	}
	// Drop the api vserver and change the PLAIN check's interval: the DSR
	// checks of web keep their ids, the changed PLAIN checks get new ones.
	changed := dsrCluster[:indexOf(t, dsrCluster, "vserver: <\n  name: \"api@site\"")]
	changed = replaceOnce(t, changed, "healthcheck: < type: TCP port: 8080 >", "healthcheck: < type: TCP port: 8080 interval: 3 >")
	c2, err := config.ParseCluster("cluster.pb", []byte(changed))
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range checkSet(c2).Upsert {
		old, ok := ids[ck.Name]
		switch ck.Mode {
		case hcpb.CheckMode_DSR:
			if !ok || old != ck.Id {
				t.Errorf("%s: id %d, was %d", ck.Name, ck.Id, old)
			}
		case hcpb.CheckMode_PLAIN:
			if ck.Interval.AsDuration() != 3*time.Second {
				t.Errorf("%s: interval %v, want the changed 3s", ck.Name, ck.Interval.AsDuration())
			}
			if !ok || old == ck.Id {
				t.Errorf("%s: changed check kept id %d", ck.Name, ck.Id)
			}
		}
	}
}

func indexOf(t *testing.T, s, sub string) int {
	t.Helper()
	i := strings.Index(s, sub)
	if i < 0 {
		t.Fatalf("%q not found", sub)
	}
	return i
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	i := indexOf(t, s, old)
	return s[:i] + new + s[i+len(old):]
}

// copyGKE copies the GKE fixture into a temporary directory and returns the
// paths of its seesaw.cfg and cluster.pb.
func copyGKE(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for _, f := range []string{"seesaw.cfg", "cluster.pb"} {
		b, err := os.ReadFile(filepath.Join(gkeDir, f))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, f)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out[0], out[1]
}
