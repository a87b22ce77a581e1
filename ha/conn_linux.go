package ha

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/seesawlb/seesaw/ha/vrrp"
)

// checkRawSocket opens (and closes) the raw socket a VRRP speaker needs, which
// is the one reliable test of CAP_NET_RAW: capability sets, user namespaces
// and seccomp all have a say.
func checkRawSocket() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, vrrp.Protocol)
	if err != nil {
		return fmt.Errorf("ha: open raw IP socket (protocol %d): %w (needs CAP_NET_RAW: run as root or setcap cap_net_raw+ep seesaw_ha)", vrrp.Protocol, err)
	}
	unix.Close(fd)
	return nil
}

// rawConn is a raw IP protocol 112 socket on one interface. One socket
// both sends and receives: the kernel builds the IP header (TTL or hop
// limit 255, DSCP CS6 as keepalived uses), the source address and outgoing
// interface go in an IP_PKTINFO/IPV6_PKTINFO control message on every send,
// and we compute the checksum ourselves (no IPV6_CHECKSUM) so that a bad
// one reaches the state machine and is counted instead of vanishing in the
// kernel.
type rawConn struct {
	f       *os.File
	rc      syscall.RawConn
	v6      bool
	ifindex int
	local   netip.Addr
	pktinfo []byte // control message for every send
	closed  atomic.Bool

	rbuf, roob []byte // used by Read only (one reader)
}

// OpenRawConn opens the raw socket for cc.
func OpenRawConn(cc ConnConfig) (Conn, error) {
	ifi, err := net.InterfaceByName(cc.Interface)
	if err != nil {
		return nil, fmt.Errorf("ha: vrrp socket: %w", err)
	}
	if err := hasAddr(ifi, cc.Local); err != nil {
		return nil, err
	}
	v6 := !cc.Local.Is4()
	fam := unix.AF_INET
	if v6 {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, vrrp.Protocol)
	if err != nil {
		return nil, fmt.Errorf("ha: vrrp socket: open raw socket for protocol %d: %w (needs CAP_NET_RAW)", vrrp.Protocol, err)
	}
	fail := func(op string, err error) (Conn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("ha: vrrp socket on %s: %s: %w", cc.Interface, op, err)
	}
	// Only packets that arrive on our interface.
	if err := unix.BindToDevice(fd, cc.Interface); err != nil {
		return fail("SO_BINDTODEVICE", err)
	}
	c := &rawConn{v6: v6, ifindex: ifi.Index, local: cc.Local.WithZone(""), rbuf: make([]byte, 1<<16), roob: make([]byte, 256)}
	type opt struct {
		name       string
		level, opt int
		val        int
	}
	var opts []opt
	group := vrrp.Group(cc.Local)
	if !v6 {
		opts = []opt{
			{"IP_TTL", unix.IPPROTO_IP, unix.IP_TTL, vrrp.HopLimit},
			{"IP_MULTICAST_TTL", unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, vrrp.HopLimit},
			{"IP_MULTICAST_LOOP", unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0},
			// Only the groups this socket joined, not every group any
			// socket on the host joined.
			{"IP_MULTICAST_ALL", unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0},
			{"IP_TOS", unix.IPPROTO_IP, unix.IP_TOS, 0xc0},
		}
		c.pktinfo = unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: int32(ifi.Index), Spec_dst: c.local.As4()})
	} else {
		opts = []opt{
			{"IPV6_UNICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, vrrp.HopLimit},
			{"IPV6_MULTICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, vrrp.HopLimit},
			{"IPV6_MULTICAST_LOOP", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0},
			{"IPV6_MULTICAST_IF", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index},
			{"IPV6_RECVHOPLIMIT", unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1},
			{"IPV6_RECVPKTINFO", unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1},
			{"IPV6_TCLASS", unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xc0},
		}
		c.pktinfo = unix.PktInfo6(&unix.Inet6Pktinfo{Addr: c.local.As16(), Ifindex: uint32(ifi.Index)})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			return fail(o.name, err)
		}
	}
	if v6 {
		// Kernels before 4.20 lack it; nothing depends on it.
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0)
	} else {
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Address: c.local.As4(), Ifindex: int32(ifi.Index)}); err != nil {
			return fail("IP_MULTICAST_IF", err)
		}
	}
	if cc.Multicast {
		if v6 {
			err = unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(ifi.Index)})
		} else {
			err = unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(ifi.Index)})
		}
		if err != nil {
			return fail("join "+group.String(), err)
		}
	}
	c.f = os.NewFile(uintptr(fd), "vrrp-"+cc.Interface)
	if c.rc, err = c.f.SyscallConn(); err != nil {
		c.f.Close()
		return nil, fmt.Errorf("ha: vrrp socket on %s: %w", cc.Interface, err)
	}
	return c, nil
}

func (c *rawConn) Close() error {
	c.closed.Store(true)
	return c.f.Close()
}

// closedErr makes the error of a use after Close recognisable: os.File's
// own ("use of closed file") matches neither os.ErrClosed nor ErrClosed.
func (c *rawConn) closedErr(err error) error {
	if c.closed.Load() || errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("ha: vrrp socket: %w", ErrClosed)
	}
	return fmt.Errorf("ha: vrrp socket: %w", err)
}

func (c *rawConn) Read() (vrrp.Packet, error) {
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := c.rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), c.rbuf, c.roob, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return vrrp.Packet{}, c.closedErr(err)
		}
		if rerr != nil {
			return vrrp.Packet{}, fmt.Errorf("ha: vrrp socket: recvmsg: %w", rerr)
		}
		if c.v6 {
			return c.parse6(c.rbuf[:n], c.roob[:oobn], from)
		}
		p, ok := parse4(c.rbuf[:n])
		if !ok {
			continue // not a whole IPv4 packet: nothing a speaker could use
		}
		return p, nil
	}
}

// parse4 takes the IP header a raw IPv4 socket delivers apart.
func parse4(b []byte) (vrrp.Packet, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return vrrp.Packet{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total < ihl || total > len(b) {
		return vrrp.Packet{}, false
	}
	return vrrp.Packet{
		Src:      netip.AddrFrom4([4]byte(b[12:16])),
		Dst:      netip.AddrFrom4([4]byte(b[16:20])),
		HopLimit: int(b[8]),
		Payload:  slices.Clone(b[ihl:total]),
	}, true
}

// parse6 gets the hop limit and destination from the control messages that
// IPV6_RECVHOPLIMIT and IPV6_RECVPKTINFO ask for.
func (c *rawConn) parse6(b, oob []byte, from unix.Sockaddr) (vrrp.Packet, error) {
	p := vrrp.Packet{HopLimit: -1, Payload: slices.Clone(b)}
	if sa, ok := from.(*unix.SockaddrInet6); ok {
		p.Src = netip.AddrFrom16(sa.Addr)
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return p, fmt.Errorf("ha: vrrp socket: control messages: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Level != unix.IPPROTO_IPV6 {
			continue
		}
		switch {
		case m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4:
			p.HopLimit = int(int32(binary.NativeEndian.Uint32(m.Data)))
		case m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 16:
			p.Dst = netip.AddrFrom16([16]byte(m.Data[:16]))
		}
	}
	if !p.Src.IsValid() || !p.Dst.IsValid() {
		return p, errors.New("ha: vrrp socket: IPv6 packet without source or destination address")
	}
	return p, nil
}

func (c *rawConn) Write(dst netip.Addr, payload []byte) error {
	var sa unix.Sockaddr
	if c.v6 {
		sa = &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(c.ifindex)}
	} else {
		sa = &unix.SockaddrInet4{Addr: dst.As4()}
	}
	var werr error
	err := c.rc.Write(func(fd uintptr) bool {
		werr = unix.Sendmsg(int(fd), payload, c.pktinfo, sa, 0)
		return werr != unix.EAGAIN
	})
	if err != nil {
		return c.closedErr(err)
	}
	if werr != nil {
		return fmt.Errorf("sendmsg from %v: %w", c.local, werr)
	}
	return nil
}

// hasAddr checks that a is configured on ifi: adverts from anything else
// would fail to send (or be spoofed), every interval.
func hasAddr(ifi *net.Interface, a netip.Addr) error {
	addrs, err := ifi.Addrs()
	if err != nil {
		return fmt.Errorf("ha: vrrp socket: addresses of %s: %w", ifi.Name, err)
	}
	for _, x := range addrs {
		if n, ok := x.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a.WithZone("") {
				return nil
			}
		}
	}
	return fmt.Errorf("ha: vrrp socket: %v is not an address of %s", a, ifi.Name)
}
