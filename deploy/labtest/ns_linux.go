package labtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

type nodeSys struct {
	ns netns.NsHandle
	nl *netlink.Handle
}

// onThreadIn runs fn on an OS thread locked into the namespace ns (when ns
// is valid), then moves the thread back and unlocks it. A thread that
// cannot be moved back stays locked, and the runtime retires it with its
// goroutine, so no goroutine ever lands on a thread in the wrong namespace.
// (Moving back matters even so: when the goroutine happens to run on the
// main thread, the runtime parks that thread rather than retire it, and
// /proc/self/net would show the wrong namespace from then on.)
func onThreadIn(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer func() {
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			orig.Close()
			if r := recover(); r != nil {
				errc <- fmt.Errorf("panic in namespace: %v", r)
			}
		}()
		if ns.IsOpen() {
			if err := netns.Set(ns); err != nil {
				errc <- fmt.Errorf("setns: %w", err)
				return
			}
		}
		errc <- fn()
	}()
	return <-errc
}

// NewNode creates a named network namespace (/run/netns/name) and a
// netlink handle in it. Close deletes it.
func NewNode(role, name string) (*Node, error) {
	var ns netns.NsHandle
	err := onThreadIn(netns.None(), func() error {
		// NewNamed moves this thread into the new namespace: that is
		// why it runs on a thread of its own, which moves back after.
		var err error
		ns, err = netns.NewNamed(name)
		return err
	})
	if err != nil {
		hint := ""
		if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) {
			hint = " (needs root)"
		}
		return nil, fmt.Errorf("labtest: create namespace %s: %w%s", name, err, hint)
	}
	nl, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		netns.DeleteNamed(name)
		return nil, fmt.Errorf("labtest: netlink handle in %s: %w", name, err)
	}
	return &Node{Role: role, NS: name, sys: nodeSys{ns: ns, nl: nl}}, nil
}

func (s *nodeSys) start(cmd *exec.Cmd) error {
	return onThreadIn(s.ns, cmd.Start)
}

func (s *nodeSys) close(name string) error {
	if s.nl != nil {
		s.nl.Close()
		s.nl = nil
	}
	if s.ns.IsOpen() {
		s.ns.Close()
		s.ns = netns.None()
	}
	if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// Do runs fn on an OS thread inside the node's namespace. Sockets fn opens
// belong to the namespace for good and may be used from any goroutine
// afterwards; goroutines fn starts run outside it. fn must report failure
// by its error, not by t.Fatal (it does not run on the test's goroutine).
func (n *Node) Do(fn func() error) error {
	return onThreadIn(n.sys.ns, fn)
}

// Listen opens a listener inside the node's namespace.
func (n *Node) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// ListenPacket opens a packet socket inside the node's namespace.
func (n *Node) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Do(func() (err error) {
		c, err = net.ListenPacket(network, addr)
		return err
	})
	return c, err
}

// Dial connects from inside the node's namespace. Give it IP addresses:
// name resolution would run on other threads, outside the namespace.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Sysctl writes a sysctl of the node's namespace; key is a path under
// /proc/sys ("net/ipv4/ip_forward") or the dotted form ("net.ipv4.ip_forward").
func (n *Node) Sysctl(key, value string) error {
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	err := n.Do(func() error {
		// /proc/sys/net shows the namespace of the thread that opens it.
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0)
	})
	if err != nil {
		return fmt.Errorf("labtest: %s: sysctl %s=%s: %w", n.Role, key, value, err)
	}
	return nil
}

func (n *Node) link(name string) (netlink.Link, error) {
	l, err := n.sys.nl.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("labtest: %s: link %s: %w", n.Role, name, err)
	}
	return l, nil
}

// LinkUp brings a link of the node up.
func (n *Node) LinkUp(name string) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	if err := n.sys.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("labtest: %s: set %s up: %w", n.Role, name, err)
	}
	return nil
}

// AddLink creates a link (a dummy, a VLAN, a tunnel...) in the node's
// namespace and brings it up.
func (n *Node) AddLink(l netlink.Link) error {
	if err := n.sys.nl.LinkAdd(l); err != nil {
		return fmt.Errorf("labtest: %s: add %s link %s: %w", n.Role, l.Type(), l.Attrs().Name, err)
	}
	return n.LinkUp(l.Attrs().Name)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// AddAddr adds an address to a link of the node. IPv6 addresses skip
// duplicate address detection, so they are usable at once.
func (n *Node) AddAddr(ifname string, p netip.Prefix) error {
	l, err := n.link(ifname)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := n.sys.nl.AddrAdd(l, a); err != nil {
		return fmt.Errorf("labtest: %s: add %s to %s: %w", n.Role, p, ifname, err)
	}
	return nil
}

// AddRoute routes dst via a gateway in the node's namespace.
func (n *Node) AddRoute(dst netip.Prefix, via netip.Addr) error {
	r := &netlink.Route{Dst: ipNet(dst), Gw: via.AsSlice()}
	if err := n.sys.nl.RouteAdd(r); err != nil {
		return fmt.Errorf("labtest: %s: route %s via %s: %w", n.Role, dst, via, err)
	}
	return nil
}

// AddDefaultRoute routes everything of via's family through via.
func (n *Node) AddDefaultRoute(via netip.Addr) error {
	dst := netip.MustParsePrefix("0.0.0.0/0")
	if via.Is6() {
		dst = netip.MustParsePrefix("::/0")
	}
	return n.AddRoute(dst, via)
}

// AddBridge creates a bridge in the node's namespace and brings it up.
// Multicast snooping is off so that IPv6 neighbour discovery floods like
// on a plain switch.
func (n *Node) AddBridge(name string) error {
	off := false
	return n.AddLink(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, MulticastSnooping: &off})
}

// Veth joins two nodes with a veth pair: aName in a, bName in b, both up.
func Veth(a *Node, aName string, b *Node, bName string) error {
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aName}, PeerName: bName}
	if a != b {
		v.PeerNamespace = netlink.NsFd(int(b.sys.ns))
	}
	if err := a.sys.nl.LinkAdd(v); err != nil {
		return fmt.Errorf("labtest: veth %s/%s - %s/%s: %w", a.Role, aName, b.Role, bName, err)
	}
	if err := a.LinkUp(aName); err != nil {
		return err
	}
	return b.LinkUp(bName)
}

// Plug connects another node to a bridge of this node (the switch) with a
// veth pair: ifname in the other node, "<role>-<ifname>" on the bridge.
func (n *Node) Plug(bridge string, other *Node, ifname string) error {
	port := other.Role + "-" + ifname
	if err := Veth(n, port, other, ifname); err != nil {
		return err
	}
	br, err := n.link(bridge)
	if err != nil {
		return err
	}
	p, err := n.link(port)
	if err != nil {
		return err
	}
	if err := n.sys.nl.LinkSetMaster(p, br); err != nil {
		return fmt.Errorf("labtest: %s: plug %s into %s: %w", n.Role, port, bridge, err)
	}
	return nil
}

// Teardown deletes the named namespaces a Build with this prefix made
// (prefix+switch, +router, +client, +lbN, +backendN), for a topology
// whose *Topology is gone, as with seesaw-lab topo down.
func Teardown(prefix string) error {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("labtest: teardown: %w", err)
	}
	var errs []error
	for _, e := range entries {
		role, ok := strings.CutPrefix(e.Name(), prefix)
		if ok && isRole(role) {
			if err := netns.DeleteNamed(e.Name()); err != nil {
				errs = append(errs, fmt.Errorf("labtest: teardown %s: %w", e.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}
