package healthcheck

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// pingChecker sends one ICMP (or ICMPv6) echo request and waits for the
// matching reply.
type pingChecker struct {
	p       *pinger
	dst     netip.Addr
	what    string
	timeout time.Duration
	okMsg   string
}

func newPingChecker(c *hcpb.Check, t *target, env *Env) (*pingChecker, error) {
	if env == nil {
		return nil, fmt.Errorf("healthcheck: an ICMP_PING check needs an Env for its socket")
	}
	k := &pingChecker{p: env.getPinger(), dst: t.backend, timeout: timeoutOf(c)}
	k.what = "ICMP_PING " + t.backend.String()
	k.okMsg = k.what + ": echo reply"
	return k, nil
}

func (k *pingChecker) Check(ctx context.Context) Outcome {
	if err := k.p.ping(ctx, k.dst); err != nil {
		var ie icmpError
		switch {
		case isTimeout(err):
			return fail(k.what, fmt.Sprintf("no echo reply within %v", k.timeout))
		case errors.As(err, &ie):
			return fail(k.what, ie.msg)
		}
		return fail(k.what, describe(phaseSend, err, k.timeout))
	}
	return Outcome{OK: true, Message: k.okMsg}
}

// ICMP message types used here.
const (
	icmpEchoReply     = 0
	icmpUnreachable   = 3
	icmpEchoRequest   = 8
	icmpTimeExceeded  = 11
	icmp6Unreachable  = 1
	icmp6TimeExceeded = 3
	icmp6EchoRequest  = 128
	icmp6EchoReply    = 129
)

// pinger is one ICMP socket per address family shared by every ping check
// of the process, with replies handed to the waiting check by sequence
// number. Sockets are opened on first use.
//
// A raw socket sees every ICMP message the host receives, so replies are
// matched on identifier, sequence, source and a per-process nonce in the
// payload. An unprivileged ping socket (SOCK_DGRAM, IPPROTO_ICMP) gets only
// its own replies; the kernel chooses the identifier.
type pinger struct {
	mode  string // "raw", "dgram" or "" (raw, else dgram)
	id    uint16
	nonce [8]byte

	mu      sync.Mutex
	socks   [2]*pingSock // IPv4, IPv6
	waiters map[uint16]*pingWaiter
	seq     uint16
	closed  bool
}

type pingSock struct {
	conn  net.PacketConn
	dgram bool
}

type pingWaiter struct {
	dst  netip.Addr
	done chan error // nil error: echo reply
}

func newPinger(mode string) *pinger {
	p := &pinger{mode: mode, id: uint16(os.Getpid()), waiters: map[uint16]*pingWaiter{}}
	rand.Read(p.nonce[:])
	return p
}

// sock returns the socket for dst's family, opening it if needed.
func (p *pinger) sock(v6 bool) (*pingSock, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("ICMP sockets closed")
	}
	i := 0
	if v6 {
		i = 1
	}
	if s := p.socks[i]; s != nil {
		return s, nil
	}
	s, err := openPingSock(p.mode, v6)
	if err != nil {
		return nil, err
	}
	p.socks[i] = s
	go p.read(s, v6)
	return s, nil
}

func openPingSock(mode string, v6 bool) (*pingSock, error) {
	network, laddr := "ip4:icmp", "0.0.0.0"
	if v6 {
		network, laddr = "ip6:ipv6-icmp", "::"
	}
	var rawErr error
	if mode != "dgram" {
		c, err := net.ListenPacket(network, laddr)
		if err == nil {
			return &pingSock{conn: c}, nil
		}
		if mode == "raw" {
			return nil, fmt.Errorf("open raw ICMP socket: %w (needs CAP_NET_RAW)", err)
		}
		rawErr = err
	}
	c, err := listenPingDgram(v6)
	if err != nil {
		if rawErr != nil {
			return nil, fmt.Errorf("open ICMP socket: raw: %v (needs CAP_NET_RAW); unprivileged: %w (see net.ipv4.ping_group_range)", rawErr, err)
		}
		return nil, fmt.Errorf("open unprivileged ICMP socket: %w (see net.ipv4.ping_group_range)", err)
	}
	return &pingSock{conn: c, dgram: true}, nil
}

func (p *pinger) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for i, s := range p.socks {
		if s != nil {
			errs = append(errs, s.conn.Close())
			p.socks[i] = nil
		}
	}
	return errors.Join(errs...)
}

// ping sends one echo request to dst and waits for its reply until ctx's
// deadline. It returns nil on a reply, context.DeadlineExceeded on timeout,
// or the ICMP error that came back instead.
func (p *pinger) ping(ctx context.Context, dst netip.Addr) error {
	s, err := p.sock(dst.Is6())
	if err != nil {
		return err
	}
	w := &pingWaiter{dst: dst, done: make(chan error, 1)}
	p.mu.Lock()
	if len(p.waiters) >= 1<<16 {
		p.mu.Unlock()
		return errors.New("too many pings in flight")
	}
	for {
		p.seq++
		if _, busy := p.waiters[p.seq]; !busy {
			break
		}
	}
	seq := p.seq
	p.waiters[seq] = w
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiters, seq)
		p.mu.Unlock()
	}()

	typ := byte(icmpEchoRequest)
	if dst.Is6() {
		typ = icmp6EchoRequest
	}
	msg := make([]byte, 8, 8+16)
	msg[0] = typ
	binary.BigEndian.PutUint16(msg[4:], p.id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	msg = append(msg, p.nonce[:]...)
	msg = binary.BigEndian.AppendUint64(msg, uint64(time.Now().UnixNano()))
	if dst.Is4() {
		// The kernel fills in the ICMPv6 checksum, and that of a ping
		// socket, but not that of a raw ICMPv4 socket.
		binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
	}
	var to net.Addr = &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	if s.dgram {
		to = &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	}
	// No write deadline: the socket is shared, and sending an echo
	// request does not wait.
	if _, err := s.conn.WriteTo(msg, to); err != nil {
		return err
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(time.Minute)
	}
	timer := time.NewTimer(time.Until(dl))
	defer timer.Stop()
	select {
	case err := <-w.done:
		return err
	case <-timer.C:
		return context.DeadlineExceeded
	case <-ctx.Done():
		return ctx.Err()
	}
}

// read hands each reply on s to its waiter until s is closed.
func (p *pinger) read(s *pingSock, v6 bool) {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. an ICMP error reported on a ping socket
		}
		var src netip.Addr
		switch a := from.(type) {
		case *net.IPAddr:
			src, _ = netip.AddrFromSlice(a.IP)
		case *net.UDPAddr:
			src, _ = netip.AddrFromSlice(a.IP)
		}
		p.deliver(buf[:n], src.Unmap(), v6, s.dgram)
	}
}

// deliver matches one received ICMP message to a waiting ping.
func (p *pinger) deliver(m []byte, src netip.Addr, v6, dgram bool) {
	if len(m) < 8 {
		return
	}
	typ, code := m[0], m[1]
	echoReply, unreach, exceeded := byte(icmpEchoReply), byte(icmpUnreachable), byte(icmpTimeExceeded)
	if v6 {
		echoReply, unreach, exceeded = icmp6EchoReply, icmp6Unreachable, icmp6TimeExceeded
	}
	switch typ {
	case echoReply:
		if !v6 && !dgram && icmpChecksum(m) != 0 {
			return
		}
		id, seq := binary.BigEndian.Uint16(m[4:]), binary.BigEndian.Uint16(m[6:])
		if (!dgram && id != p.id) || len(m) < 16 || [8]byte(m[8:16]) != p.nonce {
			return
		}
		p.wake(seq, src, nil)
	case unreach, exceeded:
		// The error quotes the start of our request: its IP header, then
		// its ICMP header with our identifier and sequence.
		inner := m[8:]
		var dst netip.Addr
		if v6 {
			if len(inner) < 40+8 || inner[6] != 58 {
				return
			}
			dst, _ = netip.AddrFromSlice(inner[24:40])
			inner = inner[40:]
		} else {
			if len(inner) < 20 {
				return
			}
			ihl := int(inner[0]&0x0f) * 4
			if ihl < 20 || len(inner) < ihl+8 || inner[9] != 1 {
				return
			}
			dst, _ = netip.AddrFromSlice(inner[16:20])
			inner = inner[ihl:]
		}
		id, seq := binary.BigEndian.Uint16(inner[4:]), binary.BigEndian.Uint16(inner[6:])
		if !dgram && id != p.id {
			return
		}
		p.wake(seq, dst, icmpError{fmt.Sprintf("%s from %s", icmpErrorText(v6, typ, code), src)})
	}
}

func (p *pinger) wake(seq uint16, addr netip.Addr, err error) {
	p.mu.Lock()
	w := p.waiters[seq]
	p.mu.Unlock()
	if w == nil || w.dst != addr {
		return
	}
	select {
	case w.done <- err:
	default:
	}
}

// icmpError is an ICMP error that came back instead of a reply.
type icmpError struct{ msg string }

func (e icmpError) Error() string { return e.msg }

func icmpErrorText(v6 bool, typ, code byte) string {
	if v6 {
		if typ == icmp6TimeExceeded {
			return "time exceeded"
		}
		switch code {
		case 0:
			return "destination unreachable (no route)"
		case 1:
			return "destination unreachable (administratively prohibited)"
		case 3:
			return "destination unreachable (address unreachable)"
		}
		return fmt.Sprintf("destination unreachable (code %d)", code)
	}
	if typ == icmpTimeExceeded {
		return "time exceeded"
	}
	switch code {
	case 0:
		return "destination unreachable (network unreachable)"
	case 1:
		return "destination unreachable (host unreachable)"
	case 13:
		return "destination unreachable (administratively prohibited)"
	}
	return fmt.Sprintf("destination unreachable (code %d)", code)
}

// icmpChecksum is the Internet checksum of b (RFC 1071). Over a message
// whose checksum field is filled in, it is 0 when the checksum is right.
func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
