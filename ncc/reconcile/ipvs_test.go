package reconcile

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/ipvs/ipvstest"
)

// The reconciler is tested the way tailscale tests its router: a table of
// desired states, each with the text the fake kernel must render after it
// is applied, applied in order and then in random orders. Every state must
// be reached from every other, and applying a state twice must write
// nothing. lab_linux_test.go replays the same table on the real kernel.

var (
	a   = netip.MustParseAddr
	web = ipvs.AddrPortKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.10:80"))
	dns = ipvs.AddrPortKey(ipvs.UDP, netip.MustParseAddrPort("[2001:db8::10]:53"))
	fwm = ipvs.FWMarkKey(ipvs.IPv4, 65536)
)

type stateCase struct {
	name string
	in   IPVSState
	want string // the fake kernel's String()
}

func stateTable() []stateCase {
	return []stateCase{
		{name: "empty", want: ""},
		{
			name: "one web service",
			in: IPVSState{Services: []ipvs.VirtualServer{{
				Service: ipvs.Service{ServiceKey: web, Scheduler: "wrr"},
				Destinations: []ipvs.Destination{
					{Addr: a("10.0.0.1"), Port: 8080, Forward: ipvs.Masquerade, Weight: 1},
					{Addr: a("10.0.0.2"), Port: 8080, Forward: ipvs.Masquerade, Weight: 2},
				},
			}}},
			want: `-A -t 192.0.2.10:80 -s wrr
-a -t 192.0.2.10:80 -r 10.0.0.1:8080 -m -w 1
-a -t 192.0.2.10:80 -r 10.0.0.2:8080 -m -w 2
`,
		},
		{
			name: "web reweighted, drained backend, thresholds",
			in: IPVSState{Services: []ipvs.VirtualServer{{
				Service: ipvs.Service{ServiceKey: web, Scheduler: "wrr"},
				Destinations: []ipvs.Destination{
					{Addr: a("10.0.0.1"), Port: 8080, Forward: ipvs.Masquerade, Weight: 0},
					{Addr: a("10.0.0.2"), Port: 8080, Forward: ipvs.Masquerade, Weight: 5, UpperThreshold: 100, LowerThreshold: 50},
				},
			}}},
			want: `-A -t 192.0.2.10:80 -s wrr
-a -t 192.0.2.10:80 -r 10.0.0.1:8080 -m -w 0
-a -t 192.0.2.10:80 -r 10.0.0.2:8080 -m -w 5 -x 100 -y 50
`,
		},
		{
			name: "web moved to sh with persistence and DSR backends, DNS over IPv6",
			in: IPVSState{Services: []ipvs.VirtualServer{
				{
					Service: ipvs.Service{ServiceKey: web, Scheduler: "sh", Flags: ipvs.FlagSHFallback | ipvs.FlagSHPort | ipvs.FlagPersistent, Timeout: 300},
					Destinations: []ipvs.Destination{
						{Addr: a("10.0.0.2"), Port: 80, Forward: ipvs.DirectRoute, Weight: 1},
						{Addr: a("10.0.0.3"), Port: 80, Forward: ipvs.DirectRoute, Weight: 1},
					},
				},
				{
					Service: ipvs.Service{ServiceKey: dns, Scheduler: "mh", Flags: ipvs.FlagMHFallback | ipvs.FlagMHPort | ipvs.FlagOnePacket},
					Destinations: []ipvs.Destination{
						{Addr: a("2001:db8:1::1"), Port: 53, Forward: ipvs.Tunnel, Weight: 1, TunnelType: ipvs.GUE, TunnelPort: 6080},
					},
				},
			}},
			want: `-A -t 192.0.2.10:80 -s sh -p 300 -b sh-fallback,sh-port
-a -t 192.0.2.10:80 -r 10.0.0.2:80 -g -w 1
-a -t 192.0.2.10:80 -r 10.0.0.3:80 -g -w 1
-A -u [2001:db8::10]:53 -s mh -o -b mh-fallback,mh-port
-a -u [2001:db8::10]:53 -r [2001:db8:1::1]:53 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum
`,
		},
		{
			name: "health-check fwmark service and a sync daemon",
			in: IPVSState{
				Services: []ipvs.VirtualServer{
					{
						Service:      ipvs.Service{ServiceKey: fwm, Scheduler: "rr"},
						Destinations: []ipvs.Destination{{Addr: a("10.0.0.3"), Forward: ipvs.DirectRoute, Weight: 1}},
					},
					{
						Service:      ipvs.Service{ServiceKey: dns, Scheduler: "mh", Flags: ipvs.FlagMHPort},
						Destinations: []ipvs.Destination{{Addr: a("2001:db8:1::2"), Port: 53, Forward: ipvs.DirectRoute, Weight: 3}},
					},
				},
				SyncDaemons: []ipvs.SyncDaemon{{State: ipvs.SyncMaster, Interface: "dummy0", SyncID: 7}},
			},
			want: `-A -f 65536 -s rr
-a -f 65536 -r 10.0.0.3:0 -g -w 1
-A -u [2001:db8::10]:53 -s mh -b mh-port
-a -u [2001:db8::10]:53 -r [2001:db8:1::2]:53 -g -w 3
master sync daemon (mcast=dummy0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)
`,
		},
		{
			name: "sync daemon changed, services emptied of backends",
			in: IPVSState{
				Services: []ipvs.VirtualServer{
					{Service: ipvs.Service{ServiceKey: fwm, Scheduler: "rr"}},
					{Service: ipvs.Service{ServiceKey: dns, Scheduler: "mh", Flags: ipvs.FlagMHPort}},
				},
				SyncDaemons: []ipvs.SyncDaemon{
					{State: ipvs.SyncMaster, Interface: "dummy0", SyncID: 8, MulticastGroup: a("239.0.0.8"), Port: 9000, TTL: 2},
					{State: ipvs.SyncBackup, Interface: "dummy0", SyncID: 8},
				},
			},
			want: `-A -f 65536 -s rr
-A -u [2001:db8::10]:53 -s mh -b mh-port
master sync daemon (mcast=dummy0, syncid=8, maxlen=1472, group=239.0.0.8, port=9000, ttl=2)
backup sync daemon (mcast=dummy0, syncid=8, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)
`,
		},
	}
}

func newFake(t *testing.T) (*ipvstest.Kernel, *ipvs.Client) {
	t.Helper()
	k := ipvstest.New()
	c, err := k.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return k, c
}

// applyChecked applies a state and checks the kernel renders want, that
// nothing failed, and that applying it again writes nothing.
func applyChecked(t *testing.T, r *IPVSReconciler, k *ipvstest.Kernel, s stateCase) []Change {
	t.Helper()
	changes, err := r.Apply(s.in, false)
	if err != nil {
		t.Fatalf("%s: %v", s.name, err)
	}
	for _, c := range changes {
		if c.Err != nil {
			t.Errorf("%s: %s", s.name, c)
		}
	}
	if got := k.String(); got != s.want {
		t.Fatalf("after %q the kernel holds:\n%s\nwant:\n%s\nchanges:\n%s", s.name, got, s.want, changeList(changes))
	}
	before := k.Requests()
	again, err := r.Apply(s.in, false)
	if err != nil || len(again) != 0 || k.Requests() != before {
		t.Fatalf("%s applied twice: %d more kernel requests, changes %v, %v", s.name, k.Requests()-before, again, err)
	}
	return changes
}

func changeList(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.String() + "\n")
	}
	return b.String()
}

func TestIPVSStatesInOrderAndRandomOrder(t *testing.T) {
	k, c := newFake(t)
	r := NewIPVS(c, t.Logf)
	table := stateTable()
	for _, s := range table {
		applyChecked(t, r, k, s)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := 0; round < 20; round++ {
		for _, i := range rng.Perm(len(table)) {
			applyChecked(t, r, k, table[i])
		}
	}
}

// TestIPVSWritesOnlyTheDifference counts the writes for small changes:
// they are what an engine does all day.
func TestIPVSWritesOnlyTheDifference(t *testing.T) {
	k, c := newFake(t)
	r := NewIPVS(c, nil)
	table := stateTable()
	applyChecked(t, r, k, table[1])
	w := k.Writes()
	changes := applyChecked(t, r, k, table[2]) // two weights and a threshold
	if k.Writes()-w != 2 || len(changes) != 2 {
		t.Errorf("reweighting two backends: %d writes:\n%s", k.Writes()-w, changeList(changes))
	}
	for _, want := range []string{"update ipvs-destination TCP 192.0.2.10:80 -> 10.0.0.1:8080: weight 1 -> 0",
		"update ipvs-destination TCP 192.0.2.10:80 -> 10.0.0.2:8080: weight 2 -> 5, thresholds 0/0 -> 100/50"} {
		if !slices.ContainsFunc(changes, func(c Change) bool { return c.String() == want }) {
			t.Errorf("changes lack %q:\n%s", want, changeList(changes))
		}
	}
}

// TestIPVSNewBackendsBeforeOldLeave: when a kept service's backends are
// replaced, the new ones are added before the old ones go, so that the
// service is never without a backend.
func TestIPVSNewBackendsBeforeOldLeave(t *testing.T) {
	k, c := newFake(t)
	r := NewIPVS(c, nil)
	applyChecked(t, r, k, stateTable()[1])
	changes, err := r.Apply(IPVSState{Services: []ipvs.VirtualServer{{
		Service:      ipvs.Service{ServiceKey: web, Scheduler: "wrr"},
		Destinations: []ipvs.Destination{{Addr: a("10.0.0.9"), Port: 8080, Weight: 1}},
	}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := "add ipvs-destination TCP 192.0.2.10:80 -> 10.0.0.9:8080: Masq weight 1\n" +
		"delete ipvs-destination TCP 192.0.2.10:80 -> 10.0.0.1:8080\n" +
		"delete ipvs-destination TCP 192.0.2.10:80 -> 10.0.0.2:8080\n"
	if got := changeList(changes); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
}

// TestIPVSAdoptsWhatTheKernelHolds: a new reconciler (a restarted NCC)
// facing a kernel that already holds the desired state writes nothing.
func TestIPVSAdoptsWhatTheKernelHolds(t *testing.T) {
	k, c := newFake(t)
	table := stateTable()
	applyChecked(t, NewIPVS(c, nil), k, table[4])
	w := k.Writes()
	r := NewIPVS(c, nil)
	changes, err := r.Apply(table[4].in, false)
	if err != nil || len(changes) != 0 || k.Writes() != w {
		t.Errorf("restarted reconciler: %d writes, changes:\n%s%v", k.Writes()-w, changeList(changes), err)
	}
	// An audit before any apply only reads: the kernel's state is
	// adopted, not judged.
	fresh := NewIPVS(c, nil)
	if changes, err := fresh.Audit(); err != nil || len(changes) != 0 || k.Writes() != w {
		t.Errorf("audit before the first apply: %v %v", changes, err)
	}
	st, err := fresh.Known()
	if err != nil {
		t.Fatal(err)
	}
	if ipvs.Save(st.Services) != k.Save() || len(st.SyncDaemons) != 1 {
		t.Errorf("known:\n%s%v\nkernel:\n%s", ipvs.Save(st.Services), st.SyncDaemons, k.Save())
	}
}

// TestIPVSAuditRepairsDrift: someone runs ipvsadm -C, or edits a backend;
// the audit puts the desired state back and says what it did.
func TestIPVSAuditRepairsDrift(t *testing.T) {
	k, c := newFake(t)
	var logged []string
	r := NewIPVS(c, func(f string, args ...any) { logged = append(logged, fmt.Sprintf(f, args...)) })
	s := stateTable()[3]
	applyChecked(t, r, k, s)

	k.Flush()
	changes, err := r.Audit()
	if err != nil {
		t.Fatal(err)
	}
	if got := k.String(); got != s.want {
		t.Fatalf("after the audit:\n%s\nwant:\n%s", got, s.want)
	}
	if len(changes) != 5 {
		t.Errorf("repairing a flush: %d changes, want 5 (2 services, 3 backends):\n%s", len(changes), changeList(changes))
	}
	if !slices.ContainsFunc(logged, func(l string) bool { return strings.Contains(l, "drift repaired: add ipvs-service TCP 192.0.2.10:80") }) {
		t.Errorf("drift not logged: %q", logged)
	}

	k.Edit(func(vs []ipvs.VirtualServer) []ipvs.VirtualServer {
		for i := range vs {
			for j := range vs[i].Destinations {
				vs[i].Destinations[j].Weight = 100
			}
		}
		return vs
	})
	changes, err = r.Audit()
	if err != nil || len(changes) != 3 || k.String() != s.want {
		t.Errorf("repairing weights: %v\n%s\n%s", err, changeList(changes), k)
	}
	if changes, err := r.Audit(); err != nil || len(changes) != 0 {
		t.Errorf("audit without drift: %v %v", changes, err)
	}
}

// TestIPVSDriftDuringApply: the record says a service exists, the kernel
// lost it; the write fails, and the reconciler reads the kernel and
// finishes from what is really there.
func TestIPVSDriftDuringApply(t *testing.T) {
	k, c := newFake(t)
	r := NewIPVS(c, nil)
	table := stateTable()
	applyChecked(t, r, k, table[1])
	k.Edit(func([]ipvs.VirtualServer) []ipvs.VirtualServer {
		// Someone deleted web and made a service of their own.
		return []ipvs.VirtualServer{{Service: ipvs.Service{ServiceKey: fwm, Scheduler: "lc"}}}
	})
	changes, err := r.Apply(table[2].in, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.String(); got != table[2].want {
		t.Errorf("kernel:\n%s\nwant:\n%s\nchanges:\n%s", got, table[2].want, changeList(changes))
	}
	for _, c := range changes {
		if c.Err != nil {
			t.Errorf("a failure was reported although the retry succeeded: %s", c)
		}
	}
}

// TestIPVSPartialFailure: a service the kernel refuses is reported, its
// backends are not tried, and the rest is applied.
func TestIPVSPartialFailure(t *testing.T) {
	k, c := newFake(t)
	r := NewIPVS(c, nil)
	in := stateTable()[3].in
	in.Services[1].Scheduler = "nosuch"
	changes, err := r.Apply(in, false)
	if err != nil {
		t.Fatal(err)
	}
	var failed []Change
	for _, c := range changes {
		if c.Err != nil {
			failed = append(failed, c)
		}
	}
	if len(failed) != 1 || failed[0].Object != dns.String() || !strings.Contains(failed[0].Err.Error(), "ip_vs_nosuch") {
		t.Fatalf("failures:\n%s", changeList(failed))
	}
	if strings.Contains(k.Save(), "2001:db8::10") || !strings.Contains(k.Save(), "-a -t 192.0.2.10:80 -r 10.0.0.3:80 -g -w 1") {
		t.Errorf("kernel:\n%s", k.Save())
	}
	// Applied again, only the failed part is tried again: the service,
	// and its destination, which goes in the same batch (and fails
	// unreported, as its service is missing).
	w := k.Writes()
	changes, _ = r.Apply(in, false)
	if k.Writes()-w != 2 || len(changes) != 1 {
		t.Errorf("second apply: %d writes:\n%s", k.Writes()-w, changeList(changes))
	}

	// A kernel error that is not drift: the NCC is not allowed.
	k.FailNext(func(uint8) syscall.Errno { return syscall.EPERM })
	changes, _ = r.Apply(stateTable()[0].in, false)
	if len(changes) != 1 || changes[0].Err == nil {
		t.Errorf("EPERM: %s", changeList(changes))
	}
}

func TestIPVSDryRun(t *testing.T) {
	k, c := newFake(t)
	r := NewIPVS(c, nil)
	applyChecked(t, r, k, stateTable()[1])
	w := k.Writes()
	changes, err := r.Apply(stateTable()[3].in, true)
	if err != nil {
		t.Fatal(err)
	}
	if k.Writes() != w || k.String() != stateTable()[1].want {
		t.Errorf("a dry run wrote")
	}
	if len(changes) != 7 {
		t.Errorf("plan:\n%s", changeList(changes))
	}
	// The dry run did not become the state the audit defends.
	if changes, _ := r.Audit(); len(changes) != 0 {
		t.Errorf("audit after a dry run:\n%s", changeList(changes))
	}
}

func TestIPVSRejectsImpossibleStates(t *testing.T) {
	_, c := newFake(t)
	r := NewIPVS(c, nil)
	for name, s := range map[string]IPVSState{
		"service twice": {Services: []ipvs.VirtualServer{{Service: ipvs.Service{ServiceKey: web, Scheduler: "rr"}}, {Service: ipvs.Service{ServiceKey: web, Scheduler: "wrr"}}}},
		"backend twice": {Services: []ipvs.VirtualServer{{Service: ipvs.Service{ServiceKey: web, Scheduler: "rr"},
			Destinations: []ipvs.Destination{{Addr: a("10.0.0.1"), Port: 1}, {Addr: a("10.0.0.1"), Port: 1, Weight: 2}}}}},
		"two masters": {SyncDaemons: []ipvs.SyncDaemon{{State: ipvs.SyncMaster, Interface: "a"}, {State: ipvs.SyncMaster, Interface: "b"}}},
	} {
		if _, err := r.Apply(s, false); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
