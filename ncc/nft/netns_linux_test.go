package nft

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/deploy/testenv"
	"github.com/seesawlb/seesaw/ncc/reconcile"
)

// These tests run on the host's kernel, each in network namespaces of its
// own (nftables is per namespace), with nft(8) as the independent witness.

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// newNode gives a test a fresh namespace.
func newNode(t *testing.T, role string) *labtest.Node {
	t.Helper()
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (Debian package nftables)")
	}
	return labtest.NewTestNode(t, role)
}

// open opens a reconciler for the node's namespace.
func open(t *testing.T, n *labtest.Node) *Reconciler {
	t.Helper()
	f, err := os.Open(filepath.Join("/run/netns", n.NS))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(int(f.Fd()), t.Logf)
	f.Close() // Open keeps a copy
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// nft runs nft(8) in the node's namespace; args are split on spaces.
func nft(t *testing.T, n *labtest.Node, args string) string {
	t.Helper()
	return n.Run(t, "nft", strings.Fields(args)...)
}

// nftScript loads a script with nft -f.
func nftScript(t *testing.T, n *labtest.Node, script string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(p, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	n.Run(t, "nft", "-f", p)
}

func hasTable(t *testing.T, n *labtest.Node) bool {
	return strings.Contains(nft(t, n, "list tables"), "table inet "+Table+"\n")
}

func apply(t *testing.T, r *Reconciler, st State) []reconcile.Change {
	t.Helper()
	before := r.Writes()
	cs, err := r.Apply(st, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Err != nil {
			t.Fatalf("%s", c)
		}
	}
	if w := r.Writes() - before; w != uint64(len(cs)) {
		t.Errorf("%d changes, %d writes", len(cs), w)
	}
	return cs
}

func strs(cs []reconcile.Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.String() + "\n")
	}
	return b.String()
}

// golden compares the table as nft lists it with testdata/name. With
// anyOrder, rules may be in any order (a repair appends).
func golden(t *testing.T, n *labtest.Node, name string, anyOrder bool) {
	t.Helper()
	got := nft(t, n, "list table inet "+Table)
	p := filepath.Join("testdata", name)
	if *update && !anyOrder {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := func(s string) []string {
		l := strings.Split(s, "\n")
		if anyOrder {
			slices.Sort(l)
		}
		return l
	}
	if !slices.Equal(lines(got), lines(string(want))) {
		t.Errorf("nft list table inet %s:\n%s\nwant (%s):\n%s", Table, got, p, want)
	}
}

// full is a state with every kind of rule.
func full() State {
	return State{
		Fwmarks: []Fwmark{
			{Addr: v4, Proto: TCP, Port: 80, Mark: 7},
			{Addr: v4, Proto: UDP, Port: 53, Mark: 9},
			{Addr: v6, Proto: TCP, Port: 80, Mark: 7},
			{Addr: v6, Proto: SCTP, Mark: 0x10001},
			{Addr: a("192.0.2.20"), Mark: 11},
		},
		SNAT: []SNAT{
			{VIP: v4, Proto: TCP, Port: 443, ToSource: src},
			{VIP: v6, Proto: UDP, Port: 53, ToSource: a("2001:db8:2::2")},
			{VIP: a("192.0.2.20"), ToSource: src},
		},
	}
}

func TestRulesLandAndApplyingAgainWritesNothing(t *testing.T) {
	n := newNode(t, "lb")
	r := open(t, n)

	// A dry run reads and plans, and writes nothing.
	cs, err := r.Apply(full(), true)
	if err != nil || len(cs) != 1+2+8 || r.Writes() != 0 || hasTable(t, n) {
		t.Fatalf("dry run: %v %v, %d writes\n%s", cs, err, r.Writes(), nft(t, n, "list ruleset"))
	}
	cs = apply(t, r, full())
	if len(cs) != 11 {
		t.Errorf("first apply:\n%s", strs(cs))
	}
	golden(t, n, "full.nft", false)

	w := r.Writes()
	if cs := apply(t, r, full()); len(cs) != 0 || r.Writes() != w {
		t.Errorf("the same state again:\n%s", strs(cs))
	}

	// A reconciler that starts on this kernel adopts it.
	r2 := open(t, n)
	k, err := r2.Known()
	if err != nil || !reflect.DeepEqual(k, full()) {
		t.Errorf("a new reconciler knows %+v, %v; want %+v", k, err, full())
	}
	if cs := apply(t, r2, full()); len(cs) != 0 || r2.Writes() != 0 {
		t.Errorf("a new reconciler, the same state:\n%s", strs(cs))
	}
	// In another order too.
	st := full()
	slices.Reverse(st.Fwmarks)
	slices.Reverse(st.SNAT)
	if cs := apply(t, r2, st); len(cs) != 0 {
		t.Errorf("the same rules in another order:\n%s", strs(cs))
	}

	// A change writes what changed, and nothing else.
	st = full()
	st.Fwmarks[1].Mark = 10
	st.Fwmarks = slices.Delete(st.Fwmarks, 4, 5)
	st.SNAT = append(st.SNAT, SNAT{VIP: v4, Proto: SCTP, Port: 9, ToSource: src})
	cs = apply(t, r2, st)
	want := `delete nft-fwmark UDP 192.0.2.10:53 mark 9
delete nft-fwmark any 192.0.2.20 mark 11
add nft-fwmark UDP 192.0.2.10:53 mark 10
add nft-snat SCTP 192.0.2.10:9 to 198.51.100.2
`
	if strs(cs) != want || r2.Writes() != 4 {
		t.Errorf("a changed state: %d writes\n%s\nwant:\n%s", r2.Writes(), strs(cs), want)
	}
	if k, _ := r.Known(); len(k.Fwmarks) != 4 || len(k.SNAT) != 4 {
		t.Errorf("known after the change: %+v", k)
	}

	// No fwmarks: their chain goes; no rules at all: the table goes.
	cs = apply(t, r2, State{SNAT: st.SNAT})
	if got := strs(cs); strings.Count(got, "delete nft-fwmark") != 4 || !strings.HasSuffix(got, "delete nft-chain fwmark\n") {
		t.Errorf("no fwmarks:\n%s", got)
	}
	apply(t, r2, State{})
	if hasTable(t, n) {
		t.Errorf("the table is left with no rules:\n%s", nft(t, n, "list ruleset"))
	}
	if cs := apply(t, r2, State{}); len(cs) != 0 {
		t.Errorf("nothing, again:\n%s", strs(cs))
	}
}

// TestOtherTablesAreNotTouched: tables of others, including one named
// like the NCC's in another family, are the same, handles and counters
// included, after everything the reconciler does.
func TestOtherTablesAreNotTouched(t *testing.T) {
	n := newNode(t, "lb")
	nftScript(t, n, `
table inet other {
	counter c {}
	chain pre {
		type filter hook prerouting priority -150; policy accept;
		ip daddr 192.0.2.10 tcp dport 80 counter name c meta mark set 99
	}
	chain post {
		type nat hook postrouting priority 100; policy accept;
		ip daddr 198.51.100.0/24 masquerade
	}
}
table ip seesaw {
	chain x {
		type filter hook input priority 0; policy accept;
		counter
	}
}
table ip6 seesaw {
	chain x {
		type filter hook input priority 0; policy accept;
	}
}
`)
	others := func() string {
		return nft(t, n, "-a list table inet other") + nft(t, n, "-a list table ip seesaw") + nft(t, n, "-a list table ip6 seesaw")
	}
	before := others()
	r := open(t, n)
	apply(t, r, full())
	nft(t, n, "flush table inet "+Table)
	if _, err := r.Audit(); err != nil {
		t.Fatal(err)
	}
	nft(t, n, "delete table inet "+Table)
	if _, err := r.Audit(); err != nil {
		t.Fatal(err)
	}
	apply(t, r, State{SNAT: full().SNAT})
	if _, err := r.Cleanup(); err != nil {
		t.Fatal(err)
	}
	apply(t, r, full())
	apply(t, r, State{})
	if after := others(); after != before {
		t.Errorf("other tables changed:\n%s\nwere:\n%s", after, before)
	}
}

// TestAuditRepairs: what nft(8) does to the NCC's table is undone by the
// next audit, which says what it repaired.
func TestAuditRepairs(t *testing.T) {
	n := newNode(t, "lb")
	r := open(t, n)
	if cs, err := r.Audit(); cs != nil || err != nil {
		t.Errorf("audit before any apply: %v %v", cs, err)
	}
	apply(t, r, full())
	audit := func(what string) string {
		t.Helper()
		w := r.Writes()
		cs, err := r.Audit()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if r.Writes()-w != uint64(len(cs)) {
			t.Errorf("%s: %d changes, %d writes", what, len(cs), r.Writes()-w)
		}
		golden(t, n, "full.nft", true)
		if cs, _ := r.Audit(); len(cs) != 0 {
			t.Errorf("%s: a second audit: %s", what, strs(cs))
		}
		return strs(cs)
	}
	for _, c := range []struct {
		what, cmds, want string
	}{
		{"nothing", "", ""},
		{"flush table", "flush table inet seesaw", "add nft-fwmark TCP 192.0.2.10:80 mark 7\n"},
		{"flush ruleset", "flush ruleset", "add nft-table inet seesaw\n"},
		{"delete table", "delete table inet seesaw", "add nft-chain vip_snat: type nat hook postrouting priority 100\n"},
		{"delete a rule", "", ""}, // filled in below
		{"a rule by hand", "add rule inet seesaw fwmark ip daddr 192.0.2.99 counter", "delete nft-rule fwmark handle"},
		{"our comment on a rule by hand",
			`add rule inet seesaw fwmark ip daddr 192.0.2.10 tcp dport 80 meta mark set 99 comment "fwmark TCP 192.0.2.10:80 mark 7"`,
			"delete nft-fwmark TCP 192.0.2.10:80 mark 7: not made as its comment says\n"},
		{"a chain by hand", "add chain inet seesaw extra", "delete nft-chain extra: not the NCC's\n"},
		{"dormant", "add table inet seesaw { flags dormant; }", "update nft-table inet seesaw: dormant -> active\n"},
		{"another priority", "delete chain inet seesaw vip_snat ; add chain inet seesaw vip_snat { type nat hook postrouting priority 50; }",
			"delete nft-chain vip_snat: replaced: not type nat hook postrouting priority 100\n"},
	} {
		if c.what == "delete a rule" {
			h := regexp.MustCompile(`comment "snat UDP \[2001:db8::10\]:53 to 2001:db8:2::2" # handle (\d+)`).FindStringSubmatch(nft(t, n, "-a list chain inet seesaw vip_snat"))
			if h == nil {
				t.Fatal("no handle for the rule")
			}
			c.cmds = "delete rule inet seesaw vip_snat handle " + h[1]
			c.want = "add nft-snat UDP [2001:db8::10]:53 to 2001:db8:2::2\n"
		}
		for _, cmd := range strings.Split(c.cmds, " ; ") {
			if cmd != "" {
				nftScript(t, n, cmd)
			}
		}
		if got := audit(c.what); !strings.Contains(got, c.want) || c.want == "" && got != "" {
			t.Errorf("%s: the audit did:\n%s\nwant it to do:\n%s", c.what, got, c.want)
		}
	}
}

func TestCleanupRemovesOnlyTheTable(t *testing.T) {
	n := newNode(t, "lb")
	nftScript(t, n, "table inet keep {\n\tchain c {\n\t\ttype filter hook input priority 0;\n\t\tcounter\n\t}\n}\n")
	r := open(t, n)
	apply(t, r, full())
	keep := nft(t, n, "-a list table inet keep")
	cs, err := r.Cleanup()
	if err != nil || strs(cs) != "delete nft-table inet seesaw\n" || r.Writes() != 12 {
		t.Errorf("cleanup: %v %v, %d writes in all", cs, err, r.Writes())
	}
	if hasTable(t, n) || nft(t, n, "-a list table inet keep") != keep {
		t.Errorf("after cleanup:\n%s", nft(t, n, "list ruleset"))
	}
	if cs, err := r.Cleanup(); len(cs) != 0 || err != nil {
		t.Errorf("a second cleanup: %v %v", cs, err)
	}
	// The applied state is forgotten: the audit does not put it back.
	if cs, err := r.Audit(); len(cs) != 0 || err != nil || hasTable(t, n) {
		t.Errorf("audit after cleanup: %v %v", cs, err)
	}
}

func TestInvalidStatesWriteNothing(t *testing.T) {
	n := newNode(t, "lb")
	r := open(t, n)
	st := full()
	st.SNAT[1].ToSource = src // IPv4 for an IPv6 VIP
	if _, err := r.Apply(st, false); err == nil || !strings.Contains(err.Error(), "snat[1] (UDP [2001:db8::10]:53 to 198.51.100.2): to_source 198.51.100.2 and vip 2001:db8::10 are of different families") {
		t.Errorf("family mismatch: %v", err)
	}
	st = full()
	st.Fwmarks[2].Mark = 0
	if _, err := r.Apply(st, false); err == nil || !strings.Contains(err.Error(), "fwmarks[2] (TCP [2001:db8::10]:80 mark 0): mark 0") {
		t.Errorf("mark 0: %v", err)
	}
	if r.Writes() != 0 || hasTable(t, n) {
		t.Errorf("an invalid state was written: %d writes", r.Writes())
	}
	if _, ok := r.Desired(); ok {
		t.Errorf("an invalid state was kept for the audit")
	}
}

// TestRandomStatesConverge applies random states in turn: each leaves the
// kernel holding exactly it (by Known), a second apply writes nothing, and
// each write is one change.
func TestRandomStatesConverge(t *testing.T) {
	n := newNode(t, "lb")
	r := open(t, n)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var pool State
	for i := range 6 {
		addr4 := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})
		addr6 := netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", 10+i))
		for _, ad := range []netip.Addr{addr4, addr6} {
			to := src
			if ad.Is6() {
				to = a("2001:db8:2::2")
			}
			pool.Fwmarks = append(pool.Fwmarks, Fwmark{Addr: ad, Proto: TCP, Port: 80, Mark: uint32(i + 1)}, Fwmark{Addr: ad, Proto: UDP, Port: 53, Mark: uint32(i + 1)})
			pool.SNAT = append(pool.SNAT, SNAT{VIP: ad, Proto: TCP, Port: 80, ToSource: to}, SNAT{VIP: ad, Proto: SCTP, ToSource: to})
		}
	}
	pick := func() State {
		var st State
		for _, f := range pool.Fwmarks {
			if rng.IntN(2) == 0 {
				st.Fwmarks = append(st.Fwmarks, f)
			}
		}
		for _, s := range pool.SNAT {
			if rng.IntN(3) == 0 {
				st.SNAT = append(st.SNAT, s)
			}
		}
		rng.Shuffle(len(st.Fwmarks), func(i, j int) { st.Fwmarks[i], st.Fwmarks[j] = st.Fwmarks[j], st.Fwmarks[i] })
		return st
	}
	sorted := func(st State) State {
		slices.SortFunc(st.Fwmarks, func(x, y Fwmark) int { return strings.Compare(x.Key(), y.Key()) })
		slices.SortFunc(st.SNAT, func(x, y SNAT) int { return strings.Compare(x.Key(), y.Key()) })
		return State{Fwmarks: slices.Clip(st.Fwmarks), SNAT: slices.Clip(st.SNAT)}
	}
	for i := range 25 {
		st := pick()
		if i%8 == 7 {
			st = State{}
		}
		apply(t, r, st)
		k, err := r.Known()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sorted(k), sorted(st); !(len(got.Fwmarks) == 0 && len(want.Fwmarks) == 0 || reflect.DeepEqual(got.Fwmarks, want.Fwmarks)) ||
			!(len(got.SNAT) == 0 && len(want.SNAT) == 0 || reflect.DeepEqual(got.SNAT, want.SNAT)) {
			t.Fatalf("state %d: the kernel holds\n%+v\nwant\n%+v", i, got, want)
		}
		if cs := apply(t, r, st); len(cs) != 0 {
			t.Fatalf("state %d again:\n%s", i, strs(cs))
		}
		if hasTable(t, n) == st.Empty() {
			t.Fatalf("state %d: table present %v with %d rules", i, !st.Empty(), len(st.Fwmarks)+len(st.SNAT))
		}
	}
}

// TestFwmarkMarksPackets sends real packets from a peer namespace over a
// veth to the LB namespace, where a second table (the witness) counts the
// packets that arrive with each mark, after the NCC's chain has run.
func TestFwmarkMarksPackets(t *testing.T) {
	lb := newNode(t, "lb")
	peer := newNode(t, "peer")
	if err := labtest.Veth(lb, "eth0", peer, "eth0"); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		n *labtest.Node
		p string
	}{{lb, "192.0.2.10/24"}, {lb, "192.0.2.11/24"}, {lb, "2001:db8::10/64"}, {peer, "192.0.2.2/24"}, {peer, "2001:db8::2/64"}} {
		if err := x.n.AddAddr("eth0", netip.MustParsePrefix(x.p)); err != nil {
			t.Fatal(err)
		}
	}
	r := open(t, lb)
	apply(t, r, State{Fwmarks: []Fwmark{
		{Addr: v4, Proto: TCP, Port: 80, Mark: 7},
		{Addr: v4, Proto: UDP, Port: 53, Mark: 9},
		{Addr: v6, Proto: TCP, Port: 80, Mark: 0x10007},
		{Addr: v6, Proto: UDP, Mark: 0x10009},
	}})
	// Priority 0 runs after the NCC's chain (mangle, -150).
	nftScript(t, lb, `
table inet witness {
	counter tcp4 {}
	counter udp4 {}
	counter tcp6 {}
	counter udp6 {}
	counter unmarked {}
	counter wrong {}
	chain pre {
		type filter hook prerouting priority 0; policy accept;
		ip daddr 192.0.2.10 tcp dport 80 meta mark 7 counter name tcp4
		ip daddr 192.0.2.10 udp dport 53 meta mark 9 counter name udp4
		ip6 daddr 2001:db8::10 tcp dport 80 meta mark 0x10007 counter name tcp6
		ip6 daddr 2001:db8::10 udp dport 5353 meta mark 0x10009 counter name udp6
		ip daddr { 192.0.2.10, 192.0.2.11 } tcp dport { 80, 81 } meta mark 0 counter name unmarked
		ip6 daddr 2001:db8::10 tcp dport 81 meta mark 0 counter name unmarked
		ip daddr 192.0.2.11 meta mark != 0 counter name wrong
		ip daddr 192.0.2.10 tcp dport 81 meta mark != 0 counter name wrong
		ip6 daddr 2001:db8::10 tcp dport 81 meta mark != 0 counter name wrong
	}
}`)
	count := func(name string) int {
		m := regexp.MustCompile(`packets (\d+) bytes`).FindStringSubmatch(nft(t, lb, "list counter inet witness "+name))
		if m == nil {
			t.Fatalf("counter %s not found", name)
		}
		c, _ := strconv.Atoi(m[1])
		return c
	}
	send := func(network, addr string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := peer.Dial(ctx, network, addr)
		if err != nil {
			return // refused: nothing listens, but the SYN arrived
		}
		c.Write([]byte("x"))
		c.Close()
	}
	waitFor := func(name string, n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); count(name) < n; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("counter %s: %d packets, want %d\n%s", name, count(name), n, nft(t, lb, "list ruleset"))
			}
		}
	}
	send("tcp", "192.0.2.10:80")
	waitFor("tcp4", 1)
	send("udp", "192.0.2.10:53")
	waitFor("udp4", 1)
	send("tcp", "[2001:db8::10]:80")
	waitFor("tcp6", 1)
	send("udp", "[2001:db8::10]:5353") // any UDP port
	waitFor("udp6", 1)
	// Another port, another address: not marked.
	send("tcp", "192.0.2.10:81")
	send("tcp", "192.0.2.11:80")
	send("tcp", "[2001:db8::10]:81")
	waitFor("unmarked", 3)
	if w := count("wrong"); w != 0 {
		t.Errorf("%d packets marked that should not be", w)
	}
}

// TestLargeStateInOneBatch: a cold start of a large cluster (3,000 rules)
// goes to the kernel in one batch, beyond what default socket buffers
// hold; applying it again costs nothing, auditing it writes nothing.
func TestLargeStateInOneBatch(t *testing.T) {
	n := newNode(t, "lb")
	r := open(t, n)
	r.logf = func(string, ...any) {}
	var st State
	for i := range 1500 {
		ad := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		st.Fwmarks = append(st.Fwmarks, Fwmark{Addr: ad, Proto: TCP, Port: 80, Mark: uint32(i + 1)})
		st.SNAT = append(st.SNAT, SNAT{VIP: ad, Proto: TCP, Port: 80, ToSource: src})
	}
	start := time.Now()
	cs := apply(t, r, st)
	cold := time.Since(start)
	start = time.Now()
	again := apply(t, r, st)
	noop := time.Since(start)
	start = time.Now()
	repairs, err := r.Audit()
	audit := time.Since(start)
	if len(cs) != 3003 || len(again) != 0 || len(repairs) != 0 || err != nil {
		t.Fatalf("%d changes, then %d, then an audit of %d (%v)", len(cs), len(again), len(repairs), err)
	}
	if got := strings.Count(nft(t, n, "list table inet "+Table), "comment "); got != 3000 {
		t.Errorf("nft lists %d rules", got)
	}
	t.Logf("3,000 rules: cold start %v, the same again %v, an audit (reading them all) %v", cold, noop, audit)
}

// TestReplyDropDropsUntranslatedReplies: on the host's kernel, a node
// forwarding between a backend and a client drops what the backend sends
// from a port a reply-drop rule names (a NAT reply IPVS did not
// translate), and forwards the rest. The backend sends from the dropped
// port first and from a free one second, down the same path: once the
// second has arrived, the first would have, had it been let through.
func TestReplyDropDropsUntranslatedReplies(t *testing.T) {
	lb := newNode(t, "lb")
	backend := newNode(t, "be")
	client := newNode(t, "cl")
	if err := labtest.Veth(lb, "eth0", backend, "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := labtest.Veth(lb, "eth1", client, "eth0"); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		n      *labtest.Node
		ifname string
		p      string
	}{
		{lb, "eth0", "198.51.100.1/24"}, {lb, "eth0", "2001:db8:2::1/64"},
		{lb, "eth1", "203.0.113.1/24"}, {lb, "eth1", "2001:db8:3::1/64"},
		{backend, "eth0", "198.51.100.11/24"}, {backend, "eth0", "2001:db8:2::11/64"},
		{client, "eth0", "203.0.113.7/24"}, {client, "eth0", "2001:db8:3::7/64"},
	} {
		if err := x.n.AddAddr(x.ifname, netip.MustParsePrefix(x.p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []struct {
		n   *labtest.Node
		via string
	}{{backend, "198.51.100.1"}, {backend, "2001:db8:2::1"}, {client, "203.0.113.1"}, {client, "2001:db8:3::1"}} {
		if err := x.n.AddDefaultRoute(a(x.via)); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
		if err := lb.Sysctl(k, "1"); err != nil {
			t.Fatal(err)
		}
	}
	r := open(t, lb)
	apply(t, r, State{ReplyDrops: []ReplyDrop{
		{Addr: a("198.51.100.11"), Proto: UDP, Port: 80},
		{Addr: a("2001:db8:2::11"), Proto: UDP, Port: 80},
		{Addr: a("198.51.100.11"), Proto: TCP, Port: 80},
	}})
	golden(t, lb, "reply-drop.nft", false)

	for _, fam := range []struct{ net, client, backend string }{
		{"udp4", "203.0.113.7", "198.51.100.11"},
		{"udp6", "[2001:db8:3::7]", "[2001:db8:2::11]"},
	} {
		ln, err := client.ListenPacket(fam.net, fam.client+":9999")
		if err != nil {
			t.Fatal(err)
		}
		send := func(port int, msg string) {
			t.Helper()
			c, err := backend.ListenPacket(fam.net, fmt.Sprintf("%s:%d", fam.backend, port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			dst, err := netip.ParseAddrPort(fam.client + ":9999")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.WriteTo([]byte(msg), net.UDPAddrFromAddrPort(dst)); err != nil {
				t.Fatal(err)
			}
		}
		send(80, "untranslated reply")
		send(81, "other traffic")
		ln.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 100)
		n, from, err := ln.ReadFrom(buf)
		if err != nil {
			t.Fatalf("%s: nothing arrived from the backend's free port: %v\n%s", fam.net, err, nft(t, lb, "list ruleset"))
		}
		if got := string(buf[:n]); got != "other traffic" {
			t.Errorf("%s: first to arrive: %q from %s; the reply from port 80 should have been dropped", fam.net, got, from)
		}
		ln.Close()
	}
}
