//go:build !linux

package labtest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"

	"github.com/vishvananda/netlink"
)

// Network namespaces are Linux's: elsewhere every operation says so.
var errNotLinux = errors.New("labtest: network namespaces need Linux")

type nodeSys struct{ nl *netlink.Handle }

func NewNode(role, name string) (*Node, error)                    { return nil, errNotLinux }
func (s *nodeSys) start(cmd *exec.Cmd) error                      { return errNotLinux }
func (s *nodeSys) close(name string) error                        { return nil }
func (n *Node) Do(fn func() error) error                          { return errNotLinux }
func (n *Node) Listen(network, addr string) (net.Listener, error) { return nil, errNotLinux }
func (n *Node) ListenPacket(network, addr string) (net.PacketConn, error) {
	return nil, errNotLinux
}
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return nil, errNotLinux
}
func (n *Node) Sysctl(key, value string) error                       { return errNotLinux }
func (n *Node) LinkUp(name string) error                             { return errNotLinux }
func (n *Node) AddLink(l netlink.Link) error                         { return errNotLinux }
func (n *Node) AddAddr(ifname string, p netip.Prefix) error          { return errNotLinux }
func (n *Node) AddRoute(dst netip.Prefix, via netip.Addr) error      { return errNotLinux }
func (n *Node) AddDefaultRoute(via netip.Addr) error                 { return errNotLinux }
func (n *Node) AddBridge(name string) error                          { return errNotLinux }
func Veth(a *Node, aName string, b *Node, bName string) error        { return errNotLinux }
func (n *Node) Plug(bridge string, other *Node, ifname string) error { return errNotLinux }

func Teardown(prefix string) error { return errNotLinux }
