package labtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
)

// The addressing plan, from the documentation ranges (RFC 5737, RFC 3849),
// which are routed nowhere; the namespaces have no link to the host's own
// network either. It is the plan of deploy/samples, so the sample
// seesaw.cfg and cluster.pb describe this topology as they stand:
//
//	net       IPv4             IPv6               who (interface: host part)
//	client    203.0.113.0/24   2001:db8:0:3::/64  router eth0: 1, client eth0: 10
//	node      192.0.2.0/24     2001:db8:0:1::/64  router eth1: 1, lbN eth0: 1+N   (bridge "node")
//	backend   198.51.100.0/24  2001:db8:0:2::/64  lbN eth1: 1+N, backendN eth0: 10+N (bridge "backend")
//
// The IPv6 host part is written with the IPv4 one's digits (.11 is ::11),
// as the sample config does. The client routes through the router, the LB
// nodes through the router's node address. The backends' default route is
// BackendGateway, which no node holds at first: it is the floating gateway
// that the active LB takes for NAT, or that a test assigns.
var (
	ClientNet4  = netip.MustParsePrefix("203.0.113.0/24")
	ClientNet6  = netip.MustParsePrefix("2001:db8:0:3::/64")
	NodeNet4    = netip.MustParsePrefix("192.0.2.0/24")
	NodeNet6    = netip.MustParsePrefix("2001:db8:0:1::/64")
	BackendNet4 = netip.MustParsePrefix("198.51.100.0/24")
	BackendNet6 = netip.MustParsePrefix("2001:db8:0:2::/64")
)

// BackendGateway returns the backends' default gateway addresses.
func BackendGateway() (v4, v6 netip.Addr) {
	return Host(BackendNet4, 1).Addr(), Host(BackendNet6, 1).Addr()
}

// Host returns the address with host part n in net, with net's prefix
// length. For IPv6 the digits of n are read as hex, so Host(net, 11) is
// ::11, matching 198.51.100.11.
func Host(net netip.Prefix, n int) netip.Prefix {
	if net.Addr().Is4() {
		a := net.Addr().As4()
		a[3] = byte(n)
		return netip.PrefixFrom(netip.AddrFrom4(a), net.Bits())
	}
	s := strings.TrimSuffix(net.Addr().String(), "::")
	return netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("%s::%d", s, n)), net.Bits())
}

// Config shapes a topology.
type Config struct {
	LBs      int // LB nodes, 1 to 8; default 2
	Backends int // backends, 0 to 80; default 2
	// LBNIC, when set, gives every LB node a second interface of that name
	// on the node bridge, up, without addresses: Seesaw's LB NIC, which
	// shares its L2 with the node NIC and carries the VRRP MAC and the
	// VIPs while the node is master (seesaw.cfg [interface] lb).
	LBNIC string
	// RoutedBackends plugs the router into the backend bridge (as eth2)
	// with BackendGateway's addresses: the backends' replies, to clients
	// (DSR, TUN) and to the cluster VIP (full NAT), go through it, as
	// behind a real router, not through an LB node.
	RoutedBackends bool
	// Prefix starts every namespace name (then the role: lb1, router...).
	// New picks a random one when it is empty, so tests can run side by
	// side; Build uses it as it is (the demo's namespaces are plain lb1,
	// router...).
	Prefix string
}

// Topology is a set of network namespaces:
//
//	client ── router ══ node bridge ══ lb1 … lbN ══ backend bridge ══ backend1 … backendM
//
// The bridges live in a namespace of their own (Switch), so that nothing is
// added to the namespace the caller runs in.
type Topology struct {
	Prefix   string
	Client   *Node
	Router   *Node
	LBs      []*Node
	Backends []*Node
	Switch   *Node
	nodes    []*Node // in creation order
}

// Node is one network namespace. Its methods that change or run things
// work through the namespace's own netlink handle or on an OS thread
// locked into the namespace; the calling thread never moves.
type Node struct {
	Role   string  // lb1, router, client, backend1, switch, or a test's own name
	NS     string  // the named namespace (/run/netns/NS): ip netns exec NS ...
	Ifaces []Iface // interfaces the topology created, with addresses

	mu    sync.Mutex
	procs []*proc
	sys   nodeSys // the namespace handle and netlink handle (per OS)
}

// Iface is an interface of a node and the addresses the topology gave it.
type Iface struct {
	Name       string
	IPv4, IPv6 netip.Prefix // invalid when none
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when reaped; nil when the caller waits
}

// IPv4 is the node's address on its first interface (eth0).
func (n *Node) IPv4() netip.Addr { return n.firstIface().IPv4.Addr() }

// IPv6 is the node's IPv6 address on its first interface (eth0).
func (n *Node) IPv6() netip.Addr { return n.firstIface().IPv6.Addr() }

func (n *Node) firstIface() Iface {
	if len(n.Ifaces) == 0 {
		return Iface{}
	}
	return n.Ifaces[0]
}

// Iface returns the interface with that name.
func (n *Node) Iface(name string) (Iface, bool) {
	for _, i := range n.Ifaces {
		if i.Name == name {
			return i, true
		}
	}
	return Iface{}, false
}

// Handle is a netlink handle bound to the node's namespace.
func (n *Node) Handle() *netlink.Handle { return n.sys.nl }

func randomPrefix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return "sl" + hex.EncodeToString(b) + "-"
}

// Build creates the topology. On error it removes what it created. The
// caller removes it with Close; tests use New, which does that at cleanup.
func Build(cfg Config) (_ *Topology, err error) {
	if cfg.LBs == 0 {
		cfg.LBs = 2
	}
	if cfg.Backends == 0 {
		cfg.Backends = 2
	}
	if cfg.LBs < 1 || cfg.LBs > 8 || cfg.Backends < 0 || cfg.Backends > 80 {
		return nil, fmt.Errorf("labtest: topology: %d LBs and %d backends: want 1-8 LBs, 0-80 backends", cfg.LBs, cfg.Backends)
	}
	t := &Topology{Prefix: cfg.Prefix}
	defer func() {
		if err != nil {
			t.Close()
			err = fmt.Errorf("labtest: topology: %w", err)
		}
	}()
	mk := func(role string) (*Node, error) {
		n, err := NewNode(role, cfg.Prefix+role)
		if err != nil {
			return nil, err
		}
		t.nodes = append(t.nodes, n)
		return n, nil
	}
	if t.Switch, err = mk("switch"); err != nil {
		return t, err
	}
	if t.Router, err = mk("router"); err != nil {
		return t, err
	}
	if t.Client, err = mk("client"); err != nil {
		return t, err
	}
	for i := 1; i <= cfg.LBs; i++ {
		n, err := mk(fmt.Sprintf("lb%d", i))
		if err != nil {
			return t, err
		}
		t.LBs = append(t.LBs, n)
	}
	for i := 1; i <= cfg.Backends; i++ {
		n, err := mk(fmt.Sprintf("backend%d", i))
		if err != nil {
			return t, err
		}
		t.Backends = append(t.Backends, n)
	}
	for _, n := range t.nodes {
		// Addresses are usable at once: no duplicate address detection
		// (a second per address) on links only our namespaces share.
		for _, k := range []string{"net/ipv6/conf/all/accept_dad", "net/ipv6/conf/default/accept_dad"} {
			if err := n.Sysctl(k, "0"); err != nil {
				return t, err
			}
		}
		if err := n.LinkUp("lo"); err != nil {
			return t, err
		}
	}
	for _, k := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"} {
		if err := t.Router.Sysctl(k, "1"); err != nil {
			return t, err
		}
	}
	for _, br := range []string{"node", "backend"} {
		if err := t.Switch.AddBridge(br); err != nil {
			return t, err
		}
	}
	if err := Veth(t.Router, "eth0", t.Client, "eth0"); err != nil {
		return t, err
	}
	if err := t.Router.addIface("eth0", Host(ClientNet4, 1), Host(ClientNet6, 1)); err != nil {
		return t, err
	}
	if err := t.Client.addIface("eth0", Host(ClientNet4, 10), Host(ClientNet6, 10)); err != nil {
		return t, err
	}
	attach := func(n *Node, ifname, bridge string, v4, v6 netip.Prefix) error {
		if err := t.Switch.Plug(bridge, n, ifname); err != nil {
			return err
		}
		return n.addIface(ifname, v4, v6)
	}
	if err := attach(t.Router, "eth1", "node", Host(NodeNet4, 1), Host(NodeNet6, 1)); err != nil {
		return t, err
	}
	for i, lb := range t.LBs {
		if err := attach(lb, "eth0", "node", Host(NodeNet4, 2+i), Host(NodeNet6, 2+i)); err != nil {
			return t, err
		}
		if err := attach(lb, "eth1", "backend", Host(BackendNet4, 2+i), Host(BackendNet6, 2+i)); err != nil {
			return t, err
		}
	}
	for i, b := range t.Backends {
		if err := attach(b, "eth0", "backend", Host(BackendNet4, 11+i), Host(BackendNet6, 11+i)); err != nil {
			return t, err
		}
	}
	if cfg.LBNIC != "" {
		for _, lb := range t.LBs {
			if err := t.Switch.Plug("node", lb, cfg.LBNIC); err != nil {
				return t, err
			}
			if err := lb.LinkUp(cfg.LBNIC); err != nil {
				return t, err
			}
			lb.Ifaces = append(lb.Ifaces, Iface{Name: cfg.LBNIC})
		}
	}
	if cfg.RoutedBackends {
		gw4, gw6 := BackendGateway()
		if err := attach(t.Router, "eth2", "backend", netip.PrefixFrom(gw4, BackendNet4.Bits()), netip.PrefixFrom(gw6, BackendNet6.Bits())); err != nil {
			return t, err
		}
	}
	routes := []struct {
		n      *Node
		v4, v6 netip.Addr
	}{{t.Client, Host(ClientNet4, 1).Addr(), Host(ClientNet6, 1).Addr()}}
	for _, lb := range t.LBs {
		routes = append(routes, struct {
			n      *Node
			v4, v6 netip.Addr
		}{lb, Host(NodeNet4, 1).Addr(), Host(NodeNet6, 1).Addr()})
	}
	gw4, gw6 := BackendGateway()
	for _, b := range t.Backends {
		routes = append(routes, struct {
			n      *Node
			v4, v6 netip.Addr
		}{b, gw4, gw6})
	}
	for _, r := range routes {
		if err := r.n.AddDefaultRoute(r.v4); err != nil {
			return t, err
		}
		if err := r.n.AddDefaultRoute(r.v6); err != nil {
			return t, err
		}
	}
	return t, nil
}

// addIface gives ifname its addresses and brings it up.
func (n *Node) addIface(ifname string, v4, v6 netip.Prefix) error {
	for _, p := range []netip.Prefix{v4, v6} {
		if err := n.AddAddr(ifname, p); err != nil {
			return err
		}
	}
	if err := n.LinkUp(ifname); err != nil {
		return err
	}
	n.Ifaces = append(n.Ifaces, Iface{Name: ifname, IPv4: v4, IPv6: v6})
	return nil
}

// Nodes returns every node but the switch: router, client, LBs, backends.
func (t *Topology) Nodes() []*Node {
	var ns []*Node
	for _, n := range t.nodes {
		if n != t.Switch {
			ns = append(ns, n)
		}
	}
	return ns
}

// Close stops the processes started in the namespaces and deletes the
// namespaces, and with them every link and address in them.
func (t *Topology) Close() error {
	var errs []error
	for i := len(t.nodes) - 1; i >= 0; i-- {
		errs = append(errs, t.nodes[i].Close())
	}
	t.nodes = nil
	return errors.Join(errs...)
}

// String describes the topology: one line per node and interface.
func (t *Topology) String() string {
	var b strings.Builder
	for _, n := range t.Nodes() {
		for _, i := range n.Ifaces {
			fmt.Fprintf(&b, "%-10s %-22s %-5s %-18s %s\n", n.Role, n.NS, i.Name, i.IPv4, i.IPv6)
		}
	}
	return b.String()
}

// New builds a topology for a test and removes it when the test ends,
// however it ends.
func New(t testing.TB, cfg Config) *Topology {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = randomPrefix()
	}
	topo, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Errorf("labtest: remove topology: %v", err)
		}
	})
	return topo
}

// NewTestNode creates one namespace for a test, removed when the test
// ends; its name is random, so tests can run side by side.
func NewTestNode(t testing.TB, role string) *Node {
	t.Helper()
	n, err := NewNode(role, randomPrefix()+role)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("labtest: remove namespace: %v", err)
		}
	})
	if err := n.LinkUp("lo"); err != nil {
		t.Fatal(err)
	}
	return n
}

// Run runs a command in the node's namespace and returns its output
// (stdout and stderr); the test fails when the command does.
func (n *Node) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := n.Output(name, args...)
	if err != nil {
		t.Fatalf("in %s: %v", n.Role, err)
	}
	return string(out)
}

// Output runs a command in the node's namespace and returns its combined
// stdout and stderr; the error carries that output too.
func (n *Node) Output(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := n.Start(cmd); err != nil {
		return nil, err
	}
	if err := cmd.Wait(); err != nil {
		return []byte(out.String()), fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return []byte(out.String()), nil
}

// Spawn starts a command in the node's namespace and leaves it running;
// it is killed and reaped when the test ends (or when the node is closed),
// so the caller must not Wait for it.
func (n *Node) Spawn(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := n.sys.start(cmd); err != nil {
		t.Fatalf("labtest: %s: start %s: %v", n.Role, name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	n.mu.Lock()
	n.procs = append(n.procs, p)
	n.mu.Unlock()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return cmd
}

// Start starts cmd in the node's namespace. The node kills it, if it still
// runs, when it is closed; the caller may Wait for it meanwhile.
func (n *Node) Start(cmd *exec.Cmd) error {
	if err := n.sys.start(cmd); err != nil {
		return fmt.Errorf("labtest: %s: start %s: %w", n.Role, cmd.Path, err)
	}
	n.mu.Lock()
	n.procs = append(n.procs, &proc{cmd: cmd})
	n.mu.Unlock()
	return nil
}

// Close kills the processes the node started and deletes the namespace.
func (n *Node) Close() error {
	n.mu.Lock()
	procs := n.procs
	n.procs = nil
	n.mu.Unlock()
	for _, p := range procs {
		p.cmd.Process.Kill() // an error only says it had exited already
		if p.done != nil {
			<-p.done
		}
	}
	if err := n.sys.close(n.NS); err != nil {
		return fmt.Errorf("labtest: %s: delete namespace %s: %w", n.Role, n.NS, err)
	}
	return nil
}

// isRole reports whether s names a role Build creates.
func isRole(s string) bool {
	switch s {
	case "switch", "router", "client":
		return true
	}
	for _, p := range []string{"lb", "backend"} {
		if n, ok := strings.CutPrefix(s, p); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			return true
		}
	}
	return false
}
