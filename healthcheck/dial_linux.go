package healthcheck

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// markControl sets SO_MARK on a socket before it connects, so that a DSR or
// TUN probe addressed to the VIP matches the per-backend fwmark service and
// IPVS forwards it to that one backend.
func markControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("set SO_MARK %#x: %w (needs CAP_NET_ADMIN)", mark, serr)
		}
		return nil
	}
}

// dialTCP connects to t.dst by deadline, marking the socket for DSR/TUN;
// connectOnly is for a probe that will send nothing (see startConnect).
//
// It is the checkers' hot path, so it uses the socket calls directly: a
// connection that completes at once (as to a nearby backend it often
// does) costs four system calls and no trip through the runtime's poller;
// only one still in progress is handed to the poller to wait for. The
// net package's dialer spends twice that.
func dialTCP(t *target, deadline time.Time, connectOnly bool) (net.Conn, error) {
	fd, done, err := startConnect(t, connectOnly)
	if err != nil {
		return nil, err
	}
	c := &sockConn{fd: fd, dst: t.dst, deadline: deadline}
	if done {
		return c, nil
	}
	if _, err := c.file(); err != nil {
		c.Close()
		return nil, err
	}
	sa := t.rawDst()
	var cerr error
	werr := c.rc.Write(func(fd uintptr) bool {
		done, cerr = connected(int(fd), sa)
		return done || cerr != nil
	})
	if err := cmp.Or(cerr, werr); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// startConnect opens a non-blocking socket to t.dst, marked for DSR/TUN,
// and starts connecting. done says the connection is already made.
//
// A connectOnly probe delays the last ACK of the handshake (TCP_QUICKACK
// off) and then resets: the backend's kernel answers the SYN, which is
// what the check tests, but never hands the backend a connection to
// accept, so checks do not wake the service or fill its logs. HAProxy's
// connect checks do the same.
func startConnect(t *target, connectOnly bool) (fd int, done bool, err error) {
	family := unix.AF_INET6
	if t.dst.Addr().Is4() {
		family = unix.AF_INET
	}
	sa := t.rawDst()
	fd, err = sysSocket(family)
	if err != nil {
		return -1, false, os.NewSyscallError("socket", err)
	}
	if connectOnly {
		// Best effort: without it the check is the same, only costlier.
		sysSetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_QUICKACK, 0)
	}
	if t.mark != 0 {
		if err := sysSetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(t.mark)); err != nil {
			unix.Close(fd)
			return -1, false, fmt.Errorf("set SO_MARK %#x: %w (needs CAP_NET_ADMIN)", t.mark, err)
		}
	}
	switch err := sysConnect(fd, sa); err {
	case nil:
		return fd, true, nil
	case unix.EINPROGRESS, unix.EINTR:
	default:
		closeFD(fd)
		return -1, false, os.NewSyscallError("connect", err)
	}
	done, err = connected(fd, sa)
	if err != nil {
		closeFD(fd)
		return -1, false, err
	}
	return fd, done, nil
}

// closeFD closes a probe socket with a reset (see closeNow).
func closeFD(fd int) { sysCloseReset(fd) }

// connected reports whether a connecting socket has connected, or the
// error that ended the attempt. Asking connect again answers all three in
// one cheap call: success (or EISCONN) once connected, EALREADY while
// connecting, and the error that ended a failed attempt.
func connected(fd int, sa *rawSockaddr) (bool, error) {
	for {
		switch err := sysConnect(fd, sa); err {
		case nil, unix.EISCONN:
			return true, nil
		case unix.EALREADY, unix.EINPROGRESS:
			return false, nil
		case unix.EINTR:
			continue
		default:
			return false, os.NewSyscallError("connect", err)
		}
	}
}

// sockConn is a connected probe socket. It joins the runtime's poller (as
// an *os.File) only when it must wait, and always closes with a reset (see
// closeNow). Like any net.Conn it may be closed while another goroutine
// reads (crypto/tls does, to cancel a handshake).
type sockConn struct {
	fd  int
	dst netip.AddrPort

	mu       sync.Mutex
	f        *os.File // nil until attached
	rc       syscall.RawConn
	deadline time.Time
	closed   bool
}

// file returns the socket as an *os.File in the poller, making it so on
// first use.
func (c *sockConn) file() (*os.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attachLocked()
}

func (c *sockConn) attachLocked() (*os.File, error) {
	if c.closed {
		return nil, net.ErrClosed
	}
	if c.f != nil {
		return c.f, nil
	}
	f := os.NewFile(uintptr(c.fd), "probe "+c.dst.String())
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	if !c.deadline.IsZero() {
		if err := f.SetDeadline(c.deadline); err != nil {
			return nil, err
		}
	}
	c.f, c.rc = f, rc
	return f, nil
}

func (c *sockConn) Read(b []byte) (int, error) {
	f, err := c.file()
	if err != nil {
		return 0, err
	}
	return f.Read(b)
}

func (c *sockConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	n := 0
	if c.f == nil {
		// A request fits the empty send buffer of a new connection: no
		// need to wait.
		var err error
		n, err = sysWrite(c.fd, b)
		if err == nil && n == len(b) {
			c.mu.Unlock()
			return n, nil
		}
		if err != nil && err != unix.EAGAIN {
			c.mu.Unlock()
			return 0, os.NewSyscallError("write", err)
		}
		n = max(n, 0)
	}
	f, err := c.attachLocked()
	c.mu.Unlock()
	if err != nil {
		return n, err
	}
	m, err := f.Write(b[n:])
	return n + m, err
}

func (c *sockConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.f == nil {
		sysCloseReset(c.fd)
		return nil
	}
	c.rc.Control(func(fd uintptr) {
		unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	})
	return c.f.Close()
}

func (c *sockConn) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		if sa, err := unix.Getsockname(c.fd); err == nil {
			switch sa := sa.(type) {
			case *unix.SockaddrInet4:
				return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
			case *unix.SockaddrInet6:
				return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
			}
		}
	}
	return &net.TCPAddr{}
}

func (c *sockConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.dst) }

func (c *sockConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.f == nil {
		return nil
	}
	return c.f.SetDeadline(t)
}

func (c *sockConn) SetReadDeadline(t time.Time) error {
	f, err := c.file()
	if err != nil {
		return err
	}
	return f.SetReadDeadline(t)
}

func (c *sockConn) SetWriteDeadline(t time.Time) error {
	f, err := c.file()
	if err != nil {
		return err
	}
	return f.SetWriteDeadline(t)
}

// rawDst is t.dst as the kernel takes it, made once.
func (t *target) rawDst() *rawSockaddr {
	t.rawOnce.Do(func() { t.raw = newRawSockaddr(t.dst) })
	return t.raw
}
