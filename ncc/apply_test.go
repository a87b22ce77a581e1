package ncc

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/deploy/testenv"
	"github.com/seesawlb/seesaw/ncc/announce"
	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/ipvs/ipvstest"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/netconf/netconftest"
	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// runNCC serves an NCC whose IPVS is k, and returns a client to it. Stop
// it with the returned function (tests that restart it do). Its nftables
// are those of a namespace of the test's own.
func runNCC(t *testing.T, k *ipvstest.Kernel, audit time.Duration) (nccpb.NCCClient, func()) {
	t.Helper()
	return runNCCNet(t, k, nil, "", audit)
}

// runNCCNFT is runNCC with the nftables that openNFT opens (see nftNS).
func runNCCNFT(t *testing.T, k *ipvstest.Kernel, openNFT func() (*nft.Reconciler, error), audit time.Duration) (nccpb.NCCClient, func()) {
	t.Helper()
	return runNCCFull(t, k, nil, "", audit, &recorder{}, time.Hour, openNFT)
}

// runNCCNet is runNCC with a fake network stack (nil: one that fails the
// test if used) and a state file.
func runNCCNet(t *testing.T, k *ipvstest.Kernel, nk *netconftest.Kernel, stateFile string, audit time.Duration) (nccpb.NCCClient, func()) {
	t.Helper()
	return runNCCFull(t, k, nk, stateFile, audit, &recorder{}, time.Hour, nil)
}

// nftNS gives a test a network namespace of its own for the NCC's
// nftables (the host kernel's, real), so that no test touches the host's
// table, and an opener for it.
func nftNS(t *testing.T) (*labtest.Node, func() (*nft.Reconciler, error)) {
	t.Helper()
	testenv.RequireRoot(t)
	n := labtest.NewTestNode(t, "ncc")
	return n, nodeNFT(n, t.Logf)
}

// nodeNFT opens nftables in the node's namespace, so that an NCC under
// test never reads or changes the namespace the test runs in.
func nodeNFT(n *labtest.Node, logf func(string, ...any)) func() (*nft.Reconciler, error) {
	return func() (*nft.Reconciler, error) {
		f, err := os.Open(filepath.Join("/run/netns", n.NS))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return nft.Open(int(f.Fd()), logf)
	}
}

// nftList is `nft list ruleset` in the node's namespace: the kernel's own
// account, as witness.
func nftList(t *testing.T, n *labtest.Node) string {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (Debian package nftables)")
	}
	return n.Run(t, "nft", "list", "ruleset")
}

// recorder is a FrameSender that keeps what it was given.
type recorder struct {
	mu     sync.Mutex
	frames []sentFrame
}

type sentFrame struct {
	ifindex int
	frame   []byte
}

func (r *recorder) Send(ifindex int, frames ...[]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range frames {
		r.frames = append(r.frames, sentFrame{ifindex, f})
	}
	return nil
}

func (r *recorder) sent() []sentFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sentFrame(nil), r.frames...)
}

func runNCCFull(t *testing.T, k *ipvstest.Kernel, nk *netconftest.Kernel, stateFile string, audit time.Duration, rec *recorder, announceEvery time.Duration,
	openNFT func() (*nft.Reconciler, error)) (nccpb.NCCClient, func()) {
	t.Helper()
	testenv.RequireRoot(t) // the NCC answers root only
	if openNFT == nil {
		_, openNFT = nftNS(t)
	}
	sock := filepath.Join(t.TempDir(), "ncc.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	openNet := func() (netconf.Kernel, error) {
		if nk == nil {
			t.Error("the NCC opened the host's network stack for a state that says nothing of it")
			return nil, errors.New("no network stack in this test")
		}
		return nk, nil
	}
	go func() {
		done <- Run(ctx, Config{Socket: sock, AuditInterval: audit, StateFile: stateFile, AnnounceInterval: announceEvery,
			Sender: func() (FrameSender, error) { return rec, nil },
			Probe:  func() (ipvs.GenlFamily, error) { return ipvs.GenlFamily{ID: ipvstest.FamilyID, Version: 1}, nil },
			IPVS:   func() (reconcile.IPVS, error) { return k.Client() },
			Net:    openNet,
			NFT:    openNFT})
	}()
	cc, err := ipc.Dial(sock, ipc.DialOptions{MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var once bool
	stop := func() {
		if once {
			return
		}
		once = true
		cc.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return nccpb.NewNCCClient(cc), stop
}

func call[Req, Resp any](t *testing.T, f func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return f(ctx, req, grpc.WaitForReady(true))
}

// desired is what an engine would send of IPVS: a NAT web service over
// IPv4, a DSR one over IPv6 with persistence, a health-check fwmark
// service, a sync daemon; and a firewall mark rule.
func desired() *nccpb.DesiredState {
	return &nccpb.DesiredState{
		Services: []*nccpb.Service{
			{
				Family: nccpb.Family_INET, Protocol: nccpb.Protocol_TCP, Address: "192.0.2.10", Port: 80, Scheduler: "wrr",
				Destinations: []*nccpb.Destination{
					{Address: "10.0.0.1", Port: 8080, Forward: nccpb.Forward_FORWARD_NAT, Weight: 1},
					{Address: "10.0.0.2", Port: 8080, Forward: nccpb.Forward_FORWARD_NAT, Weight: 3, UpperThreshold: 100, LowerThreshold: 10},
				},
			},
			{
				Protocol: nccpb.Protocol_TCP, Address: "2001:db8::10", Port: 443, Scheduler: "sh", Flags: uint32(ipvs.FlagSHFallback | ipvs.FlagSHPort),
				PersistenceTimeout: 300, PersistenceNetmask: 64,
				Destinations: []*nccpb.Destination{{Address: "2001:db8:1::1", Port: 443, Forward: nccpb.Forward_FORWARD_DSR, Weight: 1}},
			},
			{
				Family: nccpb.Family_INET, Fwmark: 65536, Scheduler: "rr",
				Destinations: []*nccpb.Destination{{Address: "10.0.0.1", Forward: nccpb.Forward_FORWARD_TUNNEL, Weight: 1,
					TunnelType: nccpb.TunnelType_TUNNEL_GUE, TunnelPort: 6080}},
			},
		},
		SyncDaemons: []*nccpb.SyncDaemon{{Role: nccpb.SyncDaemon_MASTER, Interface: "eth1", SyncId: 3, MulticastGroup: "239.0.0.3"}},
		Nft:         &nccpb.NFTState{Fwmarks: []*nccpb.FwmarkRule{{Family: nccpb.Family_INET, Address: "192.0.2.10", Protocol: nccpb.Protocol_TCP, Port: 80, Mark: 7}}},
	}
}

const desiredText = `-A -f 65536 -s rr
-a -f 65536 -r 10.0.0.1:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum
-A -t 192.0.2.10:80 -s wrr
-a -t 192.0.2.10:80 -r 10.0.0.1:8080 -m -w 1
-a -t 192.0.2.10:80 -r 10.0.0.2:8080 -m -w 3 -x 100 -y 10
-A -t [2001:db8::10]:443 -s sh -p 300 -M 64 -b sh-fallback,sh-port
-a -t [2001:db8::10]:443 -r [2001:db8:1::1]:443 -g -w 1
master sync daemon (mcast=eth1, syncid=3, maxlen=1472, group=239.0.0.3, port=8848, ttl=1)
`

// fwmarkRule is the rule desired() asks for, as nft(8) lists it.
const fwmarkRule = `ip daddr 192.0.2.10 tcp dport 80 meta mark set 0x00000007 comment "fwmark TCP 192.0.2.10:80 mark 7"`

func TestApplyOverTheSocket(t *testing.T) {
	k := ipvstest.New()
	ns, openNFT := nftNS(t)
	c, _ := runNCCNFT(t, k, openNFT, time.Hour)

	// A dry run plans and writes nothing.
	resp, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: desired(), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if k.Writes() != 0 || len(resp.Changes) != 8+3 || resp.KernelWrites != 0 || nftList(t, ns) != "" {
		t.Fatalf("dry run: %d writes, response %v", k.Writes(), resp)
	}

	resp, err = call(t, c.Apply, &nccpb.ApplyRequest{Desired: desired()})
	if err != nil {
		t.Fatal(err)
	}
	if got := k.String(); got != desiredText {
		t.Fatalf("kernel:\n%s\nwant:\n%s", got, desiredText)
	}
	// The firewall mark is in the kernel: the table, its chain, the rule.
	if got := nftList(t, ns); !strings.Contains(got, fwmarkRule) || !strings.Contains(got, "type filter hook prerouting priority mangle") {
		t.Errorf("nft list ruleset:\n%s\nwant the rule %s", got, fwmarkRule)
	}
	if len(resp.Changes) != 11 || resp.KernelWrites != 11 || int(resp.KernelWrites) != k.Writes()+3 || resp.Took.AsDuration() <= 0 {
		t.Errorf("response: %v (IPVS saw %d writes)", resp, k.Writes())
	}
	if len(resp.Errors) != 0 {
		t.Errorf("errors: %v", resp.Errors)
	}
	if c0 := resp.Changes[0]; c0.Op != nccpb.Change_ADD || c0.Kind != "ipvs-service" || c0.Object != "TCP 192.0.2.10:80" {
		t.Errorf("first change %v", c0)
	}
	if cl := resp.Changes[10]; cl.Op != nccpb.Change_ADD || cl.Kind != nft.KindFwmark || cl.Object != "TCP 192.0.2.10:80 mark 7" {
		t.Errorf("last change %v", cl)
	}

	// The same state again: no writes, no changes.
	w := k.Writes()
	resp, err = call(t, c.Apply, &nccpb.ApplyRequest{Desired: desired()})
	if err != nil || len(resp.Changes) != 0 || resp.KernelWrites != 0 || k.Writes() != w {
		t.Errorf("second apply: %v, %v, %d writes", resp, err, k.Writes()-w)
	}

	// One weight: one write, described.
	ds := desired()
	ds.Services[0].Destinations[0].Weight = 0
	resp, err = call(t, c.Apply, &nccpb.ApplyRequest{Desired: ds})
	if err != nil || len(resp.Changes) != 1 || resp.KernelWrites != 1 || resp.Changes[0].Detail != "weight 1 -> 0" ||
		resp.Changes[0].Object != "TCP 192.0.2.10:80 -> 10.0.0.1:8080" || resp.Changes[0].Op != nccpb.Change_UPDATE {
		t.Errorf("reweight: %v, %v", resp, err)
	}

	// What the kernel holds, in the request's shape.
	st, err := call(t, c.GetState, &nccpb.GetStateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.State.Services) != 3 || len(st.State.SyncDaemons) != 1 {
		t.Fatalf("state: %v", st)
	}
	if !proto.Equal(st.State.Nft, desired().Nft) {
		t.Errorf("nft state:\n got %v\nwant %v", st.State.Nft, desired().Nft)
	}
	web := st.State.Services[1]
	want := ds.Services[0]
	want.Destinations[0].Family, want.Destinations[1].Family = nccpb.Family_INET, nccpb.Family_INET
	want.PersistenceNetmask = 32
	if !proto.Equal(web, want) {
		t.Errorf("web service:\n got %v\nwant %v", web, want)
	}

	// With statistics, read from the kernel.
	k.SetStats(ipvs.AddrPortKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.10:80")), ipvs.Stats{Connections: 42, BytesIn: 1 << 40})
	st, err = call(t, c.GetState, &nccpb.GetStateRequest{WithStats: true})
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, s := range st.State.Services {
		if s.Address == "192.0.2.10" {
			seen = s.Stats.GetConnections() == 42 && s.Stats.GetBytesIn() == 1<<40 && len(s.Destinations) == 2 && s.Destinations[0].Stats != nil
		}
	}
	if !seen {
		t.Errorf("statistics missing: %v", st)
	}

	// An empty state removes everything, one by one; the NCC's nftables
	// table goes with its last rule.
	resp, err = call(t, c.Apply, &nccpb.ApplyRequest{Desired: &nccpb.DesiredState{}})
	if err != nil || k.String() != "" || len(resp.Errors) != 0 || nftList(t, ns) != "" {
		t.Errorf("empty state: %v %v\n%s\n%s", resp, err, k, nftList(t, ns))
	}
}

func TestApplyRejectsBadStatesWholesale(t *testing.T) {
	k := ipvstest.New()
	ns, openNFT := nftNS(t)
	c, _ := runNCCNFT(t, k, openNFT, time.Hour)
	if _, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: desired()}); err != nil {
		t.Fatal(err)
	}
	w, rules := k.Writes(), nftList(t, ns)
	for _, bad := range []struct {
		change func(*nccpb.DesiredState)
		want   string
	}{
		{func(ds *nccpb.DesiredState) { ds.Services[0].Destinations[1].Weight = -1 },
			"services[0]: TCP 192.0.2.10:80: destinations[1]: 10.0.0.2: weight -1 is negative"},
		// Bad packet rules refuse the whole state too: the other
		// changes in it are not made.
		{func(ds *nccpb.DesiredState) { ds.Nft.Fwmarks[0].Mark = 0 },
			"nft.fwmarks[0] (TCP 192.0.2.10:80 mark 0): mark 0 is no mark"},
		{func(ds *nccpb.DesiredState) { ds.Nft.Fwmarks[0].Address = "192.0.2.300" },
			`nft.fwmarks[0]: address: ParseAddr("192.0.2.300")`},
		{func(ds *nccpb.DesiredState) { ds.Nft.Fwmarks[0].Port = 70000 },
			"nft.fwmarks[0] (192.0.2.10): port 70000 is above 65535"},
		{func(ds *nccpb.DesiredState) { ds.Nft.Fwmarks[0].Family = nccpb.Family_INET6 },
			"nft.fwmarks[0]: address 192.0.2.10 is not INET6"},
		{func(ds *nccpb.DesiredState) {
			ds.Nft.Snat = []*nccpb.SNATRule{{Vip: "192.0.2.10", Protocol: nccpb.Protocol_TCP, Port: 80, ToSource: "2001:db8::1"}}
		}, "nft.snat[0] (TCP 192.0.2.10:80 to 2001:db8::1): to_source 2001:db8::1 and vip 192.0.2.10 are of different families"},
	} {
		ds := desired()
		ds.Services[0].Destinations[0].Weight = 5 // a change that would be made
		bad.change(ds)
		_, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: ds})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v, want %q", err, bad.want)
		}
	}
	if k.Writes() != w || k.String() != desiredText || nftList(t, ns) != rules {
		t.Errorf("a rejected state changed the kernel")
	}
}

// TestRestartAdoptsAndAuditRepairs: a new NCC facing the kernel the old one
// left writes nothing for the same state; someone's ipvsadm -C is undone
// by the audit.
func TestRestartAdoptsAndAuditRepairs(t *testing.T) {
	k := ipvstest.New()
	ns, openNFT := nftNS(t)
	c, stop := runNCCNFT(t, k, openNFT, time.Hour)
	if _, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: desired()}); err != nil {
		t.Fatal(err)
	}
	stop()
	w, rules := k.Writes(), nftList(t, ns)
	c, _ = runNCCNFT(t, k, openNFT, 20*time.Millisecond)
	resp, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: desired()})
	if err != nil || resp.KernelWrites != 0 || k.Writes() != w || nftList(t, ns) != rules {
		t.Fatalf("after a restart: %v %v, %d writes", resp, err, k.Writes()-w)
	}
	k.Flush()
	ns.Run(t, "nft", "flush", "ruleset")
	for deadline := time.Now().Add(20 * time.Second); k.String() != desiredText || nftList(t, ns) != rules; {
		if time.Now().After(deadline) {
			t.Fatalf("the audit did not repair a flush:\n%s\n%s", k, nftList(t, ns))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCleanupRemovesEverything(t *testing.T) {
	k := ipvstest.New()
	ns, openNFT := nftNS(t)
	c, stop := runNCCNFT(t, k, openNFT, time.Hour)
	if _, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: desired()}); err != nil {
		t.Fatal(err)
	}
	stop()
	nftList(t, ns)
	ns.Run(t, "nft", "add", "table", "inet", "other")
	ns.Run(t, "nft", "add", "chain", "inet", "other", "c", "{ type filter hook input priority 0; }")
	other := nftList(t, ns)
	if strings.Count(other, "table ") != 2 {
		t.Fatalf("before cleanup:\n%s", other)
	}
	other = other[strings.Index(other, "table inet other"):]
	// Without a state file: the table is known by its name.
	if err := CleanupWith(Config{IPVS: func() (reconcile.IPVS, error) { return k.Client() }, NFT: openNFT}); err != nil {
		t.Fatal(err)
	}
	if k.String() != "" || nftList(t, ns) != other {
		t.Errorf("after cleanup:\n%s\n%s\nwant only:\n%s", k, nftList(t, ns), other)
	}
	if err := CleanupWith(Config{IPVS: func() (reconcile.IPVS, error) { return nil, ipvs.ErrNotAvailable }, NFT: openNFT}); err != nil {
		t.Errorf("cleanup without IPVS: %v", err)
	}
}

// TestApplyPacketRules: firewall marks and source NAT through the NCC, on
// the real kernel (in a namespace): changes are minimal, the state reads
// back, and an NCC that starts with no rules wanted removes the table an
// NCC before it left.
func TestApplyPacketRules(t *testing.T) {
	k := ipvstest.New()
	ns, openNFT := nftNS(t)
	c, stop := runNCCNFT(t, k, openNFT, time.Hour)
	ds := &nccpb.DesiredState{Nft: &nccpb.NFTState{
		Fwmarks: []*nccpb.FwmarkRule{{Family: nccpb.Family_INET6, Address: "2001:db8::10", Protocol: nccpb.Protocol_UDP, Mark: 9}},
		Snat: []*nccpb.SNATRule{
			{Family: nccpb.Family_INET, Vip: "192.0.2.10", Protocol: nccpb.Protocol_TCP, Port: 80, ToSource: "198.51.100.2"},
			{Family: nccpb.Family_INET6, Vip: "2001:db8::10", Protocol: nccpb.Protocol_TCP, Port: 443, ToSource: "2001:db8:2::2"},
		},
	}}
	resp, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: ds})
	if err != nil || len(resp.Errors) != 0 || resp.KernelWrites != 6 || k.Writes() != 0 {
		t.Fatalf("apply: %v %v", resp, err)
	}
	for _, want := range []string{
		`meta l4proto tcp ct original ip daddr 192.0.2.10 ct original proto-dst 80 snat ip to 198.51.100.2 comment "snat TCP 192.0.2.10:80 to 198.51.100.2"`,
		`meta l4proto tcp ct original ip6 daddr 2001:db8::10 ct original proto-dst 443 snat ip6 to 2001:db8:2::2`,
		`ip6 daddr 2001:db8::10 meta l4proto udp meta mark set 0x00000009`,
		`type nat hook postrouting priority srcnat; policy accept;`,
	} {
		if got := nftList(t, ns); !strings.Contains(got, want) {
			t.Errorf("nft list ruleset lacks %s:\n%s", want, got)
		}
	}
	st, err := call(t, c.GetState, &nccpb.GetStateRequest{})
	if err != nil || !proto.Equal(st.State.Nft, ds.Nft) {
		t.Errorf("state: %v %v", st, err)
	}
	// One rule's source changes: one rule goes, one comes.
	ds.Nft.Snat[0].ToSource = "198.51.100.3"
	resp, err = call(t, c.Apply, &nccpb.ApplyRequest{Desired: ds})
	if err != nil || len(resp.Changes) != 2 || resp.KernelWrites != 2 || resp.Changes[0].Op != nccpb.Change_DELETE ||
		resp.Changes[0].Object != "TCP 192.0.2.10:80 to 198.51.100.2" || resp.Changes[1].Object != "TCP 192.0.2.10:80 to 198.51.100.3" {
		t.Errorf("a new source: %v %v", resp, err)
	}

	// A new NCC whose first state has no rules removes the table.
	stop()
	c, _ = runNCCNFT(t, k, openNFT, time.Hour)
	resp, err = call(t, c.Apply, &nccpb.ApplyRequest{Desired: &nccpb.DesiredState{}})
	if err != nil || len(resp.Errors) != 0 || resp.KernelWrites != 3+2+1 || nftList(t, ns) != "" {
		t.Errorf("a new NCC, no rules: %v %v\n%s", resp, err, nftList(t, ns))
	}
	resp, err = call(t, c.Apply, &nccpb.ApplyRequest{Desired: &nccpb.DesiredState{}})
	if err != nil || len(resp.Changes) != 0 {
		t.Errorf("no rules again: %v %v", resp, err)
	}
}

// TestApplyListsAtMostMaxChanges: a cold start of a large cluster reports
// the first changes and counts the rest, so that the answer fits a message.
func TestApplyListsAtMostMaxChanges(t *testing.T) {
	k := ipvstest.New()
	c, _ := runNCC(t, k, time.Hour)
	ds := &nccpb.DesiredState{}
	for i := range 1000 {
		s := &nccpb.Service{Protocol: nccpb.Protocol_TCP, Address: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String(), Port: 80, Scheduler: "rr"}
		for j := range 10 {
			s.Destinations = append(s.Destinations, &nccpb.Destination{Address: netip.AddrFrom4([4]byte{10, 2 + byte(j), byte(i >> 8), byte(i)}).String(), Port: 80, Weight: 1})
		}
		ds.Services = append(ds.Services, s)
	}
	resp, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: ds})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Changes) != maxChanges || resp.ChangesOmitted != 11000-maxChanges || resp.KernelWrites != 11000 || k.Writes() != 11000 {
		t.Errorf("%d changes listed, %d omitted, %d kernel writes (the kernel saw %d)", len(resp.Changes), resp.ChangesOmitted, resp.KernelWrites, k.Writes())
	}
}

// netDesired is the network part an engine would send for a master: the
// LB interface up with the VRRP MAC, the cluster VIP and a unicast VIP on
// it, a dedicated VIP on the dummy, a VLAN, policy routing, sysctls.
func netDesired() *nccpb.DesiredState {
	return &nccpb.DesiredState{
		LbInterface: &nccpb.LBInterface{Name: "eth1", Up: true, Vrid: 60, UseVmac: true, DummyInterface: "dummy0", RoutingTable: 2},
		Vips: []*nccpb.VIP{
			{Address: "192.0.2.10/24", Placement: nccpb.VIPPlacement_VIP_ON_LB_INTERFACE},
			{Address: "192.0.2.20/24", Placement: nccpb.VIPPlacement_VIP_ON_LB_INTERFACE, Announce: true},
			{Address: "198.51.100.1", Placement: nccpb.VIPPlacement_VIP_ON_DUMMY},
			{Address: "203.0.113.5/24", Interface: "eth1.7"},
		},
		Vlans:   []*nccpb.VLAN{{Id: 7, Addresses: []string{"203.0.113.2/24"}}},
		Routes:  []*nccpb.Route{{Table: 2, Gateway: "192.0.2.1", Device: "eth1"}},
		Rules:   []*nccpb.Rule{{Priority: 100, Table: 2, From: "192.0.2.10"}},
		Sysctls: map[string]string{"net.ipv4.ip_forward": "1"},
	}
}

const netDesiredText = `addr dummy0 198.51.100.1/32
addr eth1 192.0.2.10/24
addr eth1 192.0.2.20/24
addr eth1.7 203.0.113.2/24
addr eth1.7 203.0.113.5/24
link dummy0 up dummy
link eth1 up 00:00:5e:00:01:3c
link eth1.7 up vlan eth1 7
route table 2 inet default via 192.0.2.1 dev eth1
rule inet 100: from 192.0.2.10 lookup 2
sysctl net/ipv4/ip_forward 1
`

func TestApplyNetworkOverTheSocket(t *testing.T) {
	k := ipvstest.New()
	nk := netconftest.New(map[string]string{"net.ipv4.ip_forward": "0"})
	nk.AddPhysical("eth1", net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, false)
	state := filepath.Join(t.TempDir(), "desired.pb")
	c, stop := runNCCNet(t, k, nk, state, time.Hour)
	ds := netDesired()
	ds.Services = desired().Services
	resp, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: ds})
	if err != nil || len(resp.Errors) != 0 {
		t.Fatalf("apply: %v %v", resp, err)
	}
	if got := nk.String(); got != netDesiredText {
		t.Fatalf("host:\n%s\nwant:\n%s", got, netDesiredText)
	}
	if k.Save() == "" {
		t.Errorf("IPVS not programmed alongside")
	}
	w, nw := k.Writes(), nk.Writes()
	resp, err = call(t, c.Apply, &nccpb.ApplyRequest{Desired: ds})
	if err != nil || len(resp.Changes) != 0 || resp.KernelWrites != 0 || k.Writes() != w || nk.Writes() != nw {
		t.Errorf("second apply: %v %v", resp, err)
	}

	st, err := call(t, c.GetState, &nccpb.GetStateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if lb := st.State.LbInterface; lb == nil || !lb.Up || !lb.UseVmac || len(st.State.Vips) != 3 || len(st.State.Vlans) != 1 ||
		len(st.State.Routes) != 1 || len(st.State.Rules) != 1 || st.State.Sysctls["net.ipv4.ip_forward"] != "1" {
		t.Errorf("state: %v", st.State)
	}

	// A bad network state is refused whole: IPVS is not touched either.
	bad := netDesired()
	bad.Services = desired().Services[:1]
	bad.Vlans[0].Id = 5000
	if _, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: bad}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "vlans[0]") {
		t.Errorf("bad VLAN: %v", err)
	}
	if k.Writes() != w {
		t.Errorf("a refused state wrote to IPVS")
	}

	// --cleanup, from the state file: the interface down with its own
	// MAC, nothing of the NCC's left. The kernel does not report a
	// permanent MAC for every link (veth); the own MAC comes from the
	// state file then, as the NCC saw it before giving the VRRP MAC.
	stop()
	err = Cleanup(func() (reconcile.IPVS, error) { return k.Client() }, func() (netconf.Kernel, error) { return permMACHidden{nk}, nil }, state)
	if err != nil {
		t.Fatal(err)
	}
	want := "link dummy0 up dummy\nlink eth1 down 52:54:00:00:00:01\nsysctl net/ipv4/ip_forward 1\n"
	if got := nk.String(); got != want || k.Save() != "" {
		t.Errorf("after cleanup:\n%s\nwant:\n%s\nIPVS:\n%s", got, want, k.Save())
	}
}

// TestAnnounce: the VIPs marked for it are announced when the LB interface
// comes up, on demand, and periodically while it stays up; never from the
// dummy interface, never while down.
func TestAnnounce(t *testing.T) {
	k := ipvstest.New()
	nk := netconftest.New(map[string]string{"net.ipv4.ip_forward": "0"})
	nk.AddPhysical("eth1", net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, false)
	rec := &recorder{}
	c, _ := runNCCFull(t, k, nk, "", time.Hour, rec, 20*time.Millisecond, nil)
	links, _ := nk.Links()
	var eth1 int
	for _, l := range links {
		if l.Name == "eth1" {
			eth1 = l.Index
		}
	}
	vmac := netconf.VRRPMAC(60)
	frameOf := func(a string) []byte {
		f, err := announce.Frame(vmac, netip.MustParseAddr(a))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	// Becoming the master announces 192.0.2.20 (the one marked) at once.
	if _, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: netDesired()}); err != nil {
		t.Fatal(err)
	}
	sent := rec.sent()
	if len(sent) == 0 || sent[0].ifindex != eth1 || !bytes.Equal(sent[0].frame, frameOf("192.0.2.20")) {
		t.Fatalf("frames after coming up: %v", sent)
	}
	for _, f := range sent {
		if !bytes.Equal(f.frame, frameOf("192.0.2.20")) {
			t.Errorf("announced something else: %x", f.frame)
		}
	}
	// On demand, by address.
	resp, err := call(t, c.Announce, &nccpb.AnnounceRequest{Addresses: []string{"192.0.2.10", "198.51.100.1", "10.9.9.9"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Sent != 1 || len(resp.Errors) != 2 || !strings.Contains(strings.Join(resp.Errors, "|"), "dummy") ||
		!strings.Contains(strings.Join(resp.Errors, "|"), "10.9.9.9 is not a VIP") {
		t.Errorf("announce by address: %v", resp)
	}
	// Periodically while up.
	n := len(rec.sent())
	for deadline := time.Now().Add(10 * time.Second); len(rec.sent()) < n+3; {
		if time.Now().After(deadline) {
			t.Fatal("no periodic announcements while up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Down (the backup): nothing more, and a request says why.
	backup := netDesired()
	backup.LbInterface.Up = false
	backup.Routes = nil
	if _, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: backup}); err != nil {
		t.Fatal(err)
	}
	resp, err = call(t, c.Announce, &nccpb.AnnounceRequest{})
	if err != nil || resp.Sent != 0 || len(resp.Errors) != 1 || !strings.Contains(resp.Errors[0], "link eth1 is down") {
		t.Errorf("announce while down: %v %v", resp, err)
	}
	n = len(rec.sent())
	time.Sleep(100 * time.Millisecond) // five periods: the absence of sends is what is tested
	if len(rec.sent()) != n {
		t.Errorf("%d announcements while down", len(rec.sent())-n)
	}
}

// TestAnnounceIPv6VMAC: an IPv6 VIP of the LB interface, with use_vmac,
// lives on the macvlan that carries the IPv6 VRRP MAC, and is announced
// from there with that MAC. A link of someone else's that has taken the
// macvlan's name is not announced from.
func TestAnnounceIPv6VMAC(t *testing.T) {
	for _, foreign := range []bool{false, true} {
		nk := netconftest.New(map[string]string{"net.ipv4.ip_forward": "0"})
		nk.AddPhysical("eth1", net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, false)
		if foreign {
			nk.AddPhysical(netconf.VMAC6Name(60), net.HardwareAddr{0x52, 0x54, 0, 0, 0, 2}, true)
		}
		rec := &recorder{}
		c, stop := runNCCFull(t, ipvstest.New(), nk, "", time.Hour, rec, time.Hour, nil)
		ds := netDesired()
		ds.Vips = append(ds.Vips, &nccpb.VIP{Address: "2001:db8::20/64", Placement: nccpb.VIPPlacement_VIP_ON_LB_INTERFACE})
		if _, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: ds}); err != nil {
			t.Fatal(err)
		}
		links, _ := nk.Links()
		var mv netconf.Link
		for _, l := range links {
			if l.Name == netconf.VMAC6Name(60) {
				mv = l
			}
		}
		n := len(rec.sent())
		resp, err := call(t, c.Announce, &nccpb.AnnounceRequest{Addresses: []string{"2001:db8::20"}})
		if err != nil {
			t.Fatal(err)
		}
		sent := rec.sent()[n:]
		if foreign {
			if resp.Sent != 0 || len(sent) != 0 || len(resp.Errors) != 1 || !strings.Contains(resp.Errors[0], "not the NCC's macvlan") {
				t.Errorf("with a foreign %s: %v, frames %v", mv.Name, resp, sent)
			}
			stop()
			continue
		}
		want, err := announce.Frame(netconf.VRRP6MAC(60), netip.MustParseAddr("2001:db8::20"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Sent != 1 || len(sent) != 1 || sent[0].ifindex != mv.Index || !bytes.Equal(sent[0].frame, want) {
			t.Errorf("announce: %v; frames %v, want one from %s (index %d) with %s", resp, sent, mv.Name, mv.Index, netconf.VRRP6MAC(60))
		}
		stop()
	}
}

// permMACHidden hides the links' permanent MACs, as the kernel does for
// veth and some virtual NICs.
type permMACHidden struct{ *netconftest.Kernel }

func (h permMACHidden) Links() ([]netconf.Link, error) {
	ls, err := h.Kernel.Links()
	for i := range ls {
		ls[i].PermMAC = nil
	}
	return ls, err
}

// TestReleaseKeepsConnections: --release, the unit's ExecStopPost, gives up
// the links (the LB interface down with its own MAC, no VIPs, VLANs, routes
// or rules) and leaves IPVS and the nftables table as they were, for the
// next start to adopt.
func TestReleaseKeepsConnections(t *testing.T) {
	k := ipvstest.New()
	nk := netconftest.New(map[string]string{"net.ipv4.ip_forward": "0"})
	nk.AddPhysical("eth1", net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, false)
	state := filepath.Join(t.TempDir(), "desired.pb")
	ns, openNFT := nftNS(t)
	c, stop := runNCCFull(t, k, nk, state, time.Hour, &recorder{}, time.Hour, openNFT)
	ds := netDesired()
	ds.Services, ds.Nft = desired().Services, desired().Nft
	if resp, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: ds}); err != nil || len(resp.Errors) != 0 {
		t.Fatalf("apply: %v %v", resp, err)
	}
	stop()
	ipvsBefore, nftBefore := k.Save(), nftList(t, ns)
	if ipvsBefore == "" || !strings.Contains(nftBefore, "table inet seesaw") {
		t.Fatalf("nothing to keep: IPVS:\n%s\nnft:\n%s", ipvsBefore, nftBefore)
	}
	if err := ReleaseWith(Config{Net: func() (netconf.Kernel, error) { return permMACHidden{nk}, nil }, StateFile: state}); err != nil {
		t.Fatal(err)
	}
	want := "link dummy0 up dummy\nlink eth1 down 52:54:00:00:00:01\nsysctl net/ipv4/ip_forward 1\n"
	if got := nk.String(); got != want {
		t.Errorf("links after release:\n%s\nwant:\n%s", got, want)
	}
	if got := k.Save(); got != ipvsBefore {
		t.Errorf("IPVS after release:\n%s\nwant it kept:\n%s", got, ipvsBefore)
	}
	if got := nftList(t, ns); got != nftBefore {
		t.Errorf("nftables after release:\n%s\nwant it kept:\n%s", got, nftBefore)
	}
	// A second release (systemd may run it after a failed start) and one
	// without a state file have nothing to do.
	if err := ReleaseWith(Config{Net: func() (netconf.Kernel, error) { return permMACHidden{nk}, nil }, StateFile: state}); err != nil || nk.String() != want {
		t.Errorf("second release: %v\n%s", err, nk.String())
	}
	if err := ReleaseWith(Config{StateFile: filepath.Join(t.TempDir(), "missing.pb")}); err != nil {
		t.Errorf("release without a state file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pb")
	os.WriteFile(bad, []byte("\xff\xff"), 0o600)
	if err := ReleaseWith(Config{StateFile: bad}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("release with a corrupt state file: %v, want an error naming it", err)
	}
}
