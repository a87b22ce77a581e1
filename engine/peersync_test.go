package engine

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	gen "github.com/seesawlb/seesaw/engine/config/configtest"
	"github.com/seesawlb/seesaw/engine/peer"
	"github.com/seesawlb/seesaw/engine/peer/peertest"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Two real engines (two rigs, each with its own fake kernel) synced over
// real TCP and TLS on loopback: lb1 on 127.0.0.2, lb2 on 127.0.0.3.

const (
	lb1Addr = "127.0.0.2"
	lb2Addr = "127.0.0.3"
)

// pairCfg is the seesaw.cfg of node lb1 or lb2 of the generated pair
// cluster (10.0.0.2 and 10.0.0.3). Peer sync runs on loopback addresses
// instead (Config.PeerLocal, PeerRemote): the node addresses are the fake
// kernel's, not the host's.
func pairCfg(node string, extra string) string {
	self, other := "10.0.0.2", "10.0.0.3"
	if node == lb2Addr {
		self, other = other, self
	}
	return fmt.Sprintf("[cluster]\nname = gen\nanycast_enabled = false\nnode_ipv4 = %s\npeer_ipv4 = %s\nvip_ipv4 = 10.0.0.4\n"+
		"[interface]\nnode = eth0\nlb = eth1\n%s", self, other, extra)
}

// pairCluster is the generated cluster of n vservers.
func pairCluster(n int) string {
	return gen.Cluster(n, 3, gen.Options{})
}

// onLoopback runs peer sync between addr and peerAddr.
func onLoopback(addr, peerAddr string) rigOption {
	return func(c *Config) {
		c.PeerLocal, c.PeerRemote = netip.MustParseAddr(addr), netip.MustParseAddr(peerAddr)
	}
}

// freePort is a TCP port free on both loopback addresses just now.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l1, err := net.Listen("tcp", lb1Addr+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l1.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", net.JoinHostPort(lb2Addr, strconv.Itoa(port)))
		l1.Close()
		if err == nil {
			l2.Close()
			return port
		}
	}
	t.Fatal("no port free on both loopback addresses")
	return 0
}

// fastPeer is peer sync's timing for tests.
var fastPeer = peer.Options{Heartbeat: 300 * time.Millisecond, Poll: 10 * time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}

type pairNode struct {
	*rig
	addr     string
	stopPeer func()
}

// startPeer runs the rig's peer sync until stopPeer.
func (n *pairNode) startPeer() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e := n.e
	go func() {
		defer close(done)
		e.RunPeer(ctx)
	}()
	n.stopPeer = func() {
		cancel()
		<-done
	}
	n.t.Cleanup(n.stopPeer)
}

// newPair starts two engines with certificates of one CA and their peer
// sync, each with its own state file.
func newPair(t *testing.T, opts ...rigOption) (*pairNode, *pairNode, *peertest.CA) {
	t.Helper()
	return newPairCfg(t, "", opts...)
}

// newPairCfg is newPair with extra lines at the end of both seesaw.cfg.
func newPairCfg(t *testing.T, extra string, opts ...rigOption) (*pairNode, *pairNode, *peertest.CA) {
	t.Helper()
	ca := peertest.NewCA(t, "seesaw cluster CA")
	port := freePort(t)
	cl := pairCluster(3)
	mk := func(addr, peerAddr string) *pairNode {
		cfg, clp := fixture(t, pairCfg(addr, extra), cl)
		ssl := ca.WriteDir(t, "lb "+addr, addr)
		state := filepath.Join(t.TempDir(), "state.pb")
		r := newRig(t, cfg, clp, nil, append([]rigOption{onLoopback(addr, peerAddr), func(c *Config) {
			c.SSLDir, c.PeerPort, c.Peer, c.StateFile = ssl, port, fastPeer, state
			c.ConfigArchive = filepath.Join(t.TempDir(), "archive")
		}}, opts...)...)
		n := &pairNode{rig: r, addr: addr}
		n.startPeer()
		return n
	}
	a, b := mk(lb1Addr, lb2Addr), mk(lb2Addr, lb1Addr)
	a.settle()
	b.settle()
	a.waitConnected()
	b.waitConnected()
	return a, b, ca
}

func (n *pairNode) peerStatus() *enginepb.PeerStatus {
	st, _ := n.e.Peer(context.Background(), nil)
	return st
}

func (n *pairNode) waitConnected() {
	n.t.Helper()
	n.waitFor(n.addr+" connected to its peer", func() bool { return n.peerStatus().Connected })
}

func (n *pairNode) override(name string, s enginepb.OverrideState) {
	n.t.Helper()
	if _, err := n.e.Override(context.Background(), &enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Vserver{Vserver: name}, State: s}); err != nil {
		n.t.Fatal(err)
	}
}

// overrideOf is the record of vserver name (set or cleared), or nil.
func (n *pairNode) overrideOf(name string) *enginepb.OverrideRecord {
	n.e.mu.Lock()
	defer n.e.mu.Unlock()
	if r := n.e.overrides["vserver "+name]; r != nil {
		return r
	}
	return n.e.cleared["vserver "+name]
}

func sameRecord(a, b *enginepb.OverrideRecord) bool {
	return a != nil && b != nil && a.Info.GetState() == b.Info.GetState() && a.Info.GetSetBy() == b.Info.GetSetBy() &&
		a.Info.GetSetAt().AsTime().Equal(b.Info.GetSetAt().AsTime())
}

func TestPeerSyncOverridesBothWays(t *testing.T) {
	a, b, _ := newPair(t)
	const vs = "svc0001@gen"

	a.override(vs, enginepb.OverrideState_OVERRIDE_DISABLED)
	b.waitFor("lb2 takes lb1's override", func() bool { return sameRecord(b.overrideOf(vs), a.overrideOf(vs)) })
	b.settle()
	if got := b.overrideOf(vs).Info.State; got != enginepb.OverrideState_OVERRIDE_DISABLED {
		t.Fatalf("lb2's override is %v", got)
	}
	// lb2 serves without the vserver now, as lb1 does.
	if strings.Contains(b.k.ipvs.Save(), "10.1.0.2:80") || strings.Contains(a.k.ipvs.Save(), "10.1.0.2:80") {
		t.Errorf("the disabled vserver is still in IPVS:\nlb1:\n%s\nlb2:\n%s", a.k.ipvs.Save(), b.k.ipvs.Save())
	}

	b.override(vs, enginepb.OverrideState_OVERRIDE_ENABLED)
	a.waitFor("lb1 takes lb2's newer override", func() bool { return sameRecord(a.overrideOf(vs), b.overrideOf(vs)) })
	if got := a.overrideOf(vs).Info.State; got != enginepb.OverrideState_OVERRIDE_ENABLED {
		t.Fatalf("lb1's override is %v", got)
	}

	a.override(vs, enginepb.OverrideState_OVERRIDE_DEFAULT)
	b.waitFor("lb2 takes lb1's clearing", func() bool {
		r := b.overrideOf(vs)
		return r != nil && r.Info.State == enginepb.OverrideState_OVERRIDE_DEFAULT
	})
	if ov, _ := b.e.Overrides(context.Background(), nil); len(ov.Overrides) != 0 {
		t.Errorf("lb2 still lists overrides: %v", ov)
	}

	// An older record from the peer loses: lb2 gets a record dated before
	// lb1's clearing, through the same path a view takes.
	old := &enginepb.OverrideRecord{Target: &enginepb.OverrideRecord_Vserver{Vserver: vs},
		Info: &enginepb.OverrideInfo{State: enginepb.OverrideState_OVERRIDE_DISABLED, SetBy: "old", SetAt: timestamppb.New(time.Unix(1, 0))}}
	peerLocal{b.e}.PeerView(&enginepb.PeerView{Overrides: []*enginepb.OverrideRecord{old}})
	if r := b.overrideOf(vs); r.Info.SetBy == "old" {
		t.Errorf("an older override won: %v", r)
	}

	// No ping-pong: with every record settled, further views change
	// nothing on either side.
	a.e.mu.Lock()
	genA := a.e.ovGen
	a.e.mu.Unlock()
	b.e.mu.Lock()
	genB := b.e.ovGen
	b.e.mu.Unlock()
	for _, n := range []*pairNode{a, b} {
		n.waitHeartbeats(3)
	}
	a.e.mu.Lock()
	b.e.mu.Lock()
	if a.e.ovGen != genA || b.e.ovGen != genB {
		t.Errorf("overrides kept changing after they settled: lb1 %d -> %d, lb2 %d -> %d", genA, a.e.ovGen, genB, b.e.ovGen)
	}
	b.e.mu.Unlock()
	a.e.mu.Unlock()

	// The overrides learnt from the peer are in the state file: they
	// survive a restart of lb2.
	a.override(vs, enginepb.OverrideState_OVERRIDE_DISABLED)
	b.waitFor("lb2 takes the override again", func() bool { return sameRecord(b.overrideOf(vs), a.overrideOf(vs)) })
	b.stopPeer()
	b.restart()
	if !sameRecord(b.overrideOf(vs), a.overrideOf(vs)) {
		t.Errorf("after a restart lb2 has %v, want %v", b.overrideOf(vs), a.overrideOf(vs))
	}
}

// waitHeartbeats waits until n more views came from the peer.
func (n *pairNode) waitHeartbeats(k int) {
	n.t.Helper()
	for range k {
		at := n.peerStatus().GetViewAt().AsTime()
		n.waitFor("a view from the peer", func() bool { return n.peerStatus().GetViewAt().AsTime().After(at) })
	}
}

func TestPeerSyncView(t *testing.T) {
	a, b, _ := newPair(t)
	a.ha(seesawpb.HAState_HA_STATE_BACKUP, seesawpb.HAState_HA_STATE_LEADER)
	b.ha(seesawpb.HAState_HA_STATE_UNKNOWN, seesawpb.HAState_HA_STATE_BACKUP)
	a.results("", true)
	failing := a.backendResults("be00001.", false)
	if failing == 0 {
		t.Fatal("no check of be00001")
	}
	a.settle()
	b.waitFor("lb2 sees lb1 as master with failing checks", func() bool {
		v := b.peerStatus().View
		return v.GetHaState() == seesawpb.HAState_HA_STATE_LEADER && int(v.GetFailingCheckCount()) == failing
	})
	st := b.peerStatus()
	v := st.View
	a.e.mu.Lock()
	digest := a.e.cur.digest
	a.e.mu.Unlock()
	if v.Node != "lb1." || v.ConfigDigest != digest || v.ConfigSource != "disk" || v.Destinations == 0 ||
		v.HealthyDestinations >= v.Destinations || !strings.HasPrefix(v.FailingChecks[0], "be00001.") {
		t.Errorf("lb2's view of lb1: %v", v)
	}
	if !st.Enabled || st.Address != net.JoinHostPort(lb1Addr, strconv.Itoa(a.e.cfg.PeerPort)) {
		t.Errorf("lb2's peer status: %v", st)
	}
	// The status RPCs carry it too.
	cs, err := b.e.ClusterStatus(context.Background(), nil)
	if err != nil || cs.Peer.GetView().GetHaState() != seesawpb.HAState_HA_STATE_LEADER {
		t.Errorf("ClusterStatus: %v, %v", cs, err)
	}
	a.waitFor("lb1 sees lb2 as backup", func() bool { return a.peerStatus().View.GetHaState() == seesawpb.HAState_HA_STATE_BACKUP })
}

// backendResults reports every check of backend with the given health.
func (n *pairNode) backendResults(backend string, healthy bool) int {
	n.e.mu.Lock()
	var rs []*hcpb.Result
	for _, c := range n.e.checks.GetUpsert() {
		if n.e.model.CheckInfo[c.Id].Backend == backend {
			rs = append(rs, &hcpb.Result{Id: c.Id, Healthy: healthy, Success: healthy, Message: "connection refused"})
		}
	}
	n.e.mu.Unlock()
	n.e.recordResults(&hcpb.Results{Results: rs})
	return len(rs)
}

// haCommands gives the rig an HA session whose commands the test reads.
func (n *pairNode) haCommands() chan *hapb.Command {
	cmds := make(chan *hapb.Command, 4)
	n.e.mu.Lock()
	n.e.ha = &haSession{cmds: cmds, cancel: func(error) {}}
	n.e.mu.Unlock()
	return cmds
}

func TestPeerFailoverFromBackup(t *testing.T) {
	a, b, _ := newPair(t)
	aCmds, _ := a.haCommands(), b.haCommands()
	b.ha(seesawpb.HAState_HA_STATE_UNKNOWN, seesawpb.HAState_HA_STATE_BACKUP)
	a.ha(seesawpb.HAState_HA_STATE_UNKNOWN, seesawpb.HAState_HA_STATE_BACKUP)

	// Neither is master: the backup's request is refused by its peer.
	if _, err := b.e.Failover(context.Background(), &enginepb.FailoverRequest{}); err == nil || !strings.Contains(err.Error(), "not the master") {
		t.Errorf("failover with no master: %v", err)
	}
	a.ha(seesawpb.HAState_HA_STATE_BACKUP, seesawpb.HAState_HA_STATE_LEADER)
	resp, err := b.e.Failover(context.Background(), &enginepb.FailoverRequest{})
	if err != nil {
		t.Fatalf("failover on the backup: %v", err)
	}
	select {
	case c := <-aCmds:
		if c.GetRelinquish() == nil || !strings.Contains(c.GetRelinquish().Reason, "peer") {
			t.Errorf("lb1's HA got %v", c)
		}
	default:
		t.Fatalf("lb1's HA got no command; the backup answered %v", resp)
	}
	// With the peer gone, the backup says so.
	a.stopPeer()
	b.waitFor("lb2 sees lb1 gone", func() bool { return !b.peerStatus().Connected && b.peerStatus().UnreachableSince != nil })
	if _, err := b.e.Failover(context.Background(), &enginepb.FailoverRequest{}); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("failover with the peer gone: %v", err)
	}
}

func TestPeerSyncRefusesStrangers(t *testing.T) {
	a, _, ca := newPair(t)
	target := net.JoinHostPort(lb1Addr, strconv.Itoa(a.e.cfg.PeerPort))
	refusedAfter := func(what string, before uint64, want string) {
		t.Helper()
		a.waitFor(what+" refused", func() bool { return a.peerStatus().Refused > before })
		if st := a.peerStatus(); !strings.Contains(st.LastRefused, want) {
			t.Errorf("%s: refused with %q, want it to say %q", what, st.LastRefused, want)
		}
	}
	watch := func(cert tls.Certificate, from string) error {
		creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: ca.Pool(), ServerName: lb1Addr})
		cc, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(creds),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
				return d.DialContext(ctx, "tcp", addr)
			}))
		if err != nil {
			return err
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := enginepb.NewPeerClient(cc).Watch(ctx, &enginepb.PeerWatchRequest{Node: "stranger"})
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}

	// The right address with a certificate of another CA.
	other := peertest.NewCA(t, "another CA")
	n := a.peerStatus().Refused
	if err := watch(other.TLSCert(t, "impostor", lb2Addr), lb2Addr); err == nil {
		t.Error("a certificate of another CA was let in")
	}
	refusedAfter("a certificate of another CA", n, "certificate")

	// A certificate of the cluster CA, from an address that is not the peer.
	n = a.peerStatus().Refused
	if err := watch(ca.TLSCert(t, "elsewhere", "127.0.0.5"), "127.0.0.5"); err == nil {
		t.Error("a connection from 127.0.0.5 was let in")
	}
	refusedAfter("a connection from elsewhere", n, "not the configured peer")

	// The peer's address, the cluster CA, but a certificate naming another
	// node.
	n = a.peerStatus().Refused
	if err := watch(ca.TLSCert(t, "wrong name", "127.0.0.9"), lb2Addr); err == nil {
		t.Error("a certificate naming another address was let in")
	}
	refusedAfter("a certificate naming another address", n, "does not name")

	// Plain TCP from the peer's address: no TLS at all.
	n = a.peerStatus().Refused
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(lb2Addr)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	_, rerr := c.Read(buf)
	c.Close()
	if rerr == nil {
		t.Error("a plain TCP client got an answer")
	}
	refusedAfter("plain TCP", n, "TLS handshake")

	// The component status warns of the refusals.
	st, err := a.e.Component().Status(context.Background(), nil)
	if err != nil || !strings.Contains(strings.Join(st.Warnings, "\n"), "connections refused") {
		t.Errorf("component status: %v, %v", st, err)
	}
}

func TestPeerSyncReconnects(t *testing.T) {
	a, b, _ := newPair(t)
	b.stopPeer()
	a.waitFor("lb1 sees lb2 unreachable", func() bool {
		st := a.peerStatus()
		return !st.Connected && st.UnreachableSince != nil && st.LastError != ""
	})
	since := a.peerStatus().UnreachableSince.AsTime()
	if cs, _ := a.e.ClusterStatus(context.Background(), nil); cs.GetPeer().GetUnreachableSince() == nil {
		t.Errorf("ClusterStatus does not say the peer is unreachable: %v", cs.GetPeer())
	}
	if st, _ := a.e.Component().Status(context.Background(), nil); !strings.Contains(strings.Join(st.GetWarnings(), "\n"), "unreachable since") {
		t.Errorf("component status: %v", st)
	}
	// An override made while apart reaches the peer once it is back.
	a.override("svc0002@gen", enginepb.OverrideState_OVERRIDE_DISABLED)
	b.restart()
	b.startPeer()
	a.waitConnected()
	b.waitConnected()
	b.waitFor("lb2 takes the override made while it was away", func() bool {
		return sameRecord(b.overrideOf("svc0002@gen"), a.overrideOf("svc0002@gen"))
	})
	if a.peerStatus().UnreachableSince != nil {
		t.Errorf("still unreachable since %v after reconnecting", since)
	}
}

func TestPeerSyncOffWithoutCertificates(t *testing.T) {
	cfg, cl := fixture(t, pairCfg(lb1Addr, ""), pairCluster(1))
	dir := t.TempDir()
	r := newRig(t, cfg, cl, nil, onLoopback(lb1Addr, lb2Addr), func(c *Config) { c.SSLDir, c.PeerPort, c.Peer = dir, freePort(t), fastPeer })
	n := &pairNode{rig: r, addr: lb1Addr}
	n.startPeer()
	n.waitFor("peer sync saying why it is off", func() bool {
		st := n.peerStatus()
		return !st.Enabled && strings.Contains(st.DisabledReason, filepath.Join(dir, "ca.crt"))
	})
	if _, err := n.e.Failover(context.Background(), nil); err == nil {
		t.Error("failover with no HA and no peer succeeded")
	}
}

func TestFailoverOnHealth(t *testing.T) {
	a, b, _ := newPair(t, func(c *Config) {
		c.HealthFailover = peer.HealthPolicy{Hold: 200 * time.Millisecond, Interval: 10 * time.Millisecond}
	})
	aCmds, bCmds := a.haCommands(), b.haCommands()
	a.ha(seesawpb.HAState_HA_STATE_BACKUP, seesawpb.HAState_HA_STATE_LEADER)
	b.ha(seesawpb.HAState_HA_STATE_UNKNOWN, seesawpb.HAState_HA_STATE_BACKUP)
	a.results("", true)
	b.results("", true)
	a.settle()
	b.settle()
	// Both healthy: the master sees it and stays.
	a.waitFor("lb1 comparing health with lb2", func() bool {
		return strings.Contains(a.peerStatus().HealthFailover, "hand over at")
	})
	if len(aCmds) != 0 {
		t.Fatalf("lb1 handed over with both healthy: %v", <-aCmds)
	}
	// lb1's path to the backends breaks; lb2's does not.
	a.results("", false)
	a.settle()
	var cmd *hapb.Command
	a.waitFor("lb1 handing over", func() bool {
		select {
		case cmd = <-aCmds:
			return true
		default:
			return false
		}
	})
	if r := cmd.GetRelinquish(); r == nil || !strings.Contains(r.Reason, "failover on health") {
		t.Errorf("lb1's HA got %v", cmd)
	}
	if len(bCmds) != 0 {
		t.Errorf("lb2 was told %v", <-bCmds)
	}
}

// silentPeer sends one view, then nothing, holding the stream open: a peer
// whose engine hangs, or whose host died without closing the connection.
type silentPeer struct {
	enginepb.UnimplementedPeerServer
}

func (silentPeer) Watch(_ *enginepb.PeerWatchRequest, s grpc.ServerStreamingServer[enginepb.PeerView]) error {
	s.Send(&enginepb.PeerView{Node: "lb2.", HaState: seesawpb.HAState_HA_STATE_BACKUP})
	<-s.Context().Done()
	return nil
}

func TestPeerSyncNoticesASilentPeer(t *testing.T) {
	ca := peertest.NewCA(t, "seesaw cluster CA")
	port := freePort(t)
	l, err := net.Listen("tcp", net.JoinHostPort(lb2Addr, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{ca.TLSCert(t, "lb2", lb2Addr)}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert})))
	enginepb.RegisterPeerServer(srv, silentPeer{})
	go srv.Serve(l)
	defer srv.Stop()

	cfg, cl := fixture(t, pairCfg(lb1Addr, ""), pairCluster(1))
	r := newRig(t, cfg, cl, nil, onLoopback(lb1Addr, lb2Addr), func(c *Config) {
		c.SSLDir, c.PeerPort, c.Peer = ca.WriteDir(t, "lb1", lb1Addr), port, fastPeer
	})
	n := &pairNode{rig: r, addr: lb1Addr}
	n.startPeer()
	n.waitFor("lb1 seeing the silent peer's one view", func() bool { return n.peerStatus().View.GetNode() == "lb2." })
	n.waitFor("lb1 giving up on the silent peer", func() bool {
		st := n.peerStatus()
		return !st.Connected && strings.Contains(st.LastError, "three heartbeats")
	})
}
