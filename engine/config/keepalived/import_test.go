package keepalived

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seesawlb/seesaw/engine/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenCase is one import: keepalived files in, Seesaw files out.
type goldenCase struct {
	dir        string
	self, peer string
	configID   string
	peerID     string
	name       string
	clusterVIP []string
	fwmarks    []string
}

var goldenCases = []goldenCase{
	// Seed 001: dual-stack NAT, rr, TCP check on 1936, unicast peers. All
	// VIPs carry virtual servers, so the cluster VIP (the NAT backends'
	// gateway) is given.
	{dir: "seed001", self: "lb116.conf", peer: "lb75.conf", clusterVIP: []string{"192.168.128.119/24", "2004::192:168:128:119/64"}},
	// Seed 003: DR for the Kubernetes API on 6443, TCP checks, multicast.
	{dir: "seed003", self: "master.conf", peer: "backup.conf", clusterVIP: []string{"192.168.100.46/24"}},
	// The same pair imported from the backup's side.
	{dir: "seed003-backup", self: "../seed003/backup.conf", peer: "../seed003/master.conf", clusterVIP: []string{"192.168.100.46/24"}},
	// Seed 003 from one file only: multicast gives no peer address.
	{dir: "seed003-single", self: "../seed003/master.conf", clusterVIP: []string{"192.168.100.46/24"}},
	// A varied configuration: includes, parameters, conditional lines,
	// every check type, every scheduler, TUN, persistence, fwmark and
	// groups, scripts; one file for both nodes.
	{dir: "sample", self: "keepalived.conf", peer: "keepalived.conf", configID: "lb1", peerID: "lb2", name: "web",
		fwmarks: []string{"7 10.0.0.99 tcp/80 tcp/443"}},
}

func runImport(t *testing.T, c goldenCase) (*Result, error) {
	t.Helper()
	dir := filepath.Join("testdata", c.dir)
	self, err := ParseFile(filepath.Join(dir, c.self), Options{ConfigID: c.configID})
	if err != nil {
		return nil, err
	}
	var peer *Input
	if c.peer != "" {
		ps, err := ParseFile(filepath.Join(dir, c.peer), Options{ConfigID: c.peerID})
		if err != nil {
			return nil, err
		}
		peer = &Input{Stmts: ps}
	}
	o := ImportOptions{Name: c.name}
	for _, s := range c.clusterVIP {
		o.ClusterVIP = append(o.ClusterVIP, netip.MustParsePrefix(s))
	}
	for _, s := range c.fwmarks {
		fm, err := ParseFWMark(s)
		if err != nil {
			t.Fatal(err)
		}
		o.FWMarks = append(o.FWMarks, fm)
	}
	return Import(Input{Stmts: self}, peer, o)
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestGolden imports each case, compares every written file and the
// unmapped list with its golden copy, and runs config check (the engine's
// own validator) on each node's seesaw.cfg with the cluster.pb.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.dir, func(t *testing.T) {
			r, err := runImport(t, c)
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			out := filepath.Join("testdata", c.dir, "want")
			files := r.Files("test")
			for name, data := range files {
				golden(t, filepath.Join(out, name), data)
			}
			golden(t, filepath.Join(out, "unmapped.txt"), r.UnmappedText())
			for name, data := range files {
				if !strings.HasSuffix(name, "seesaw.cfg") {
					continue
				}
				res := config.CheckData(name, data, "cluster.pb", files["cluster.pb"])
				if err := res.Err(); err != nil {
					t.Errorf("config check %s + cluster.pb:\n%v", name, err)
				}
				if res.ThisNode == nil {
					t.Errorf("%s: this node not found in cluster.pb", name)
				}
				if len(r.Engines) == 2 && res.Peer == nil {
					t.Errorf("%s: peer not found in cluster.pb", name)
				}
				for _, w := range res.Warnings {
					t.Logf("config check warning: %s", w)
				}
			}
			if c.peer != "" && len(r.Engines) != 2 {
				t.Errorf("got %d seesaw.cfg, want one per node", len(r.Engines))
			}
		})
	}
}

func TestParseFWMark(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"7 192.0.2.30 2001:db8::30 tcp/80 TCP/443 udp/53", "{7 [192.0.2.30 2001:db8::30] [{TCP 80} {TCP 443} {UDP 53}]}"},
		{"0x10 192.0.2.30 sctp/9", "{16 [192.0.2.30] [{SCTP 9}]}"},
		{"7 192.0.2.30", `"7 192.0.2.30": want MARK ADDR [ADDR] PROTO/PORT..., e.g. "7 192.0.2.30 tcp/80 tcp/443"`},
		{"0 192.0.2.30 tcp/80", `"0 192.0.2.30 tcp/80": "0" is not a firewall mark (1-4294967295)`},
		{"7 192.0.2.30 192.0.2.31 tcp/80", `"7 192.0.2.30 192.0.2.31 tcp/80": one address per family (a Seesaw vserver has one VIP per family)`},
		{"7 192.0.2.30 tcp/0", `"7 192.0.2.30 tcp/0": "tcp/0" is neither an IP address nor PROTO/PORT (tcp/443)`},
		{"7 tcp/80 tcp/81", `"7 tcp/80 tcp/81": needs at least one address and one PROTO/PORT`},
	} {
		fm, err := ParseFWMark(tc.in)
		got := fmt.Sprint(fm)
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("ParseFWMark(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestFWMarkWithoutDefinition: a fwmark virtual server is imported only
// with --fwmark; without, it is listed, and a --fwmark for a mark the
// configuration lacks is an error.
func TestFWMarkWithoutDefinition(t *testing.T) {
	conf := okVRRP + "virtual_server fwmark 7 {\n  persistence_timeout 60\n  real_server 10.0.1.1 {\n  }\n}\n"
	r, err := importText(t, conf, "", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "/self.conf:13: virtual_server fwmark 7 {...}: the VIPs and ports behind mark 7 are in firewall rules keepalived never sees; " +
		"say what they are with --fwmark \"7 ADDR PROTO/PORT...\"\n" +
		"/self.conf:10: 10.0.0.10/32: a VIP that carries no virtual_server; Seesaw holds only the cluster VIP and the vservers' VIPs\n"
	if got := string(r.UnmappedText()); !sameLines(got, want) {
		t.Errorf("unmapped:\n%s\nwant:\n%s", got, want)
	}
	fm, _ := ParseFWMark("8 10.0.0.10 tcp/80")
	_, err = importText(t, conf, "", ImportOptions{FWMarks: []FWMark{fm}})
	if got := errStrings(err); !slices.Equal(got, []string{"keepalived: --fwmark 8: no virtual_server fwmark 8 in the configuration"}) {
		t.Errorf("errors %q", got)
	}
}

func sameLines(a, b string) bool {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
