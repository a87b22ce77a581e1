package healthcheck

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// Outcome is what one attempt of a check found.
type Outcome struct {
	OK      bool
	Message string
}

// Checker runs one kind of probe against one target. Check returns by ctx's
// deadline (the check's timeout) at the latest, which it must enforce itself
// (with socket deadlines): the Manager's contexts carry the deadline, but
// their Done channel closes only when the check is stopped. Check is never
// called concurrently with itself.
type Checker interface {
	Check(ctx context.Context) Outcome
}

// asyncChecker is a Checker that can also run without a goroutine waiting
// for it: start begins a run on an I/O loop and returns at once, and done
// gets the outcome by the deadline (from the loop's goroutine, or before
// start returns). start reports false when it cannot run that way (then
// Check must be used).
type asyncChecker interface {
	start(l *ioLoop, deadline time.Time, done func(Outcome)) bool
}

// Default timeouts when a check gives none, as Seesaw v2's checkers had them.
var defaultTimeout = map[hcpb.CheckType]time.Duration{
	hcpb.CheckType_ICMP_PING: time.Second,
	hcpb.CheckType_TCP:       10 * time.Second,
	hcpb.CheckType_TCP_TLS:   10 * time.Second,
	hcpb.CheckType_UDP:       5 * time.Second,
	hcpb.CheckType_HTTP:      5 * time.Second,
	hcpb.CheckType_HTTPS:     5 * time.Second,
	hcpb.CheckType_DNS:       3 * time.Second,
	hcpb.CheckType_RADIUS:    3 * time.Second,
}

// Default ports for the types whose service has a well-known one; TCP and
// UDP checks must name theirs.
var defaultPort = map[hcpb.CheckType]uint16{
	hcpb.CheckType_HTTP:    80,
	hcpb.CheckType_HTTPS:   443,
	hcpb.CheckType_TCP_TLS: 443,
	hcpb.CheckType_DNS:     53,
	hcpb.CheckType_RADIUS:  1812,
}

// DefaultInterval is the interval of a check that gives none (cluster.pb's
// default).
const DefaultInterval = 10 * time.Second

// target is where a probe goes and how its packets are marked.
type target struct {
	backend netip.Addr     // the backend being checked
	dst     netip.AddrPort // where packets are sent: the backend, or the VIP for DSR/TUN
	mark    uint32         // SO_MARK for DSR/TUN, else 0
	dialer  *net.Dialer    // sets the mark; deadlines come from the context

	rawOnce sync.Once
	raw     *rawSockaddr // dst for raw connect calls (Linux)
}

// label names the target in messages: "192.0.2.5:80", or, for DSR/TUN,
// the backend and the VIP: "192.0.2.5 via 198.51.100.1:80 (DSR, mark 0x10000)".
func (t *target) label(mode hcpb.CheckMode) string {
	if t.mark == 0 {
		return t.dst.String()
	}
	return fmt.Sprintf("%s via %s (%s, mark %#x)", t.backend, t.dst, mode, t.mark)
}

// timeoutOf is the check's timeout, or its type's default.
func timeoutOf(c *hcpb.Check) time.Duration {
	if d := c.GetTimeout().AsDuration(); d > 0 {
		return d
	}
	if d, ok := defaultTimeout[c.GetType()]; ok {
		return d
	}
	return 5 * time.Second
}

// intervalOf is the check's interval, or the default.
func intervalOf(c *hcpb.Check) time.Duration {
	if d := c.GetInterval().AsDuration(); d > 0 {
		return d
	}
	return DefaultInterval
}

// NewChecker builds the checker a check describes. An error means the check
// cannot run as given (a bad address, an unknown query type, ...); it names
// the field at fault. env may be nil for every type but ICMP_PING (whose
// socket it holds); the defaults then apply.
func NewChecker(c *hcpb.Check, env *Env) (Checker, error) {
	t, err := newTarget(c)
	if err != nil {
		return nil, err
	}
	if c.GetType() == hcpb.CheckType_ICMP_PING {
		return newPingChecker(c, t, env)
	}
	if env == nil {
		env = &Env{}
	}
	switch c.GetType() {
	case hcpb.CheckType_TCP, hcpb.CheckType_TCP_TLS:
		return newTCPChecker(c, t, env)
	case hcpb.CheckType_UDP:
		return newUDPChecker(c, t)
	case hcpb.CheckType_HTTP, hcpb.CheckType_HTTPS:
		return newHTTPChecker(c, t, env)
	case hcpb.CheckType_DNS:
		return newDNSChecker(c, t)
	case hcpb.CheckType_RADIUS:
		return newRADIUSChecker(c, t, env)
	}
	return nil, fmt.Errorf("healthcheck: type %v is not a check type", c.GetType())
}

func newTarget(c *hcpb.Check) (*target, error) {
	backend, err := netip.ParseAddr(c.GetAddress())
	if err != nil {
		return nil, fmt.Errorf("healthcheck: address %q: %w", c.GetAddress(), err)
	}
	backend = backend.Unmap()
	port := c.GetPort()
	if port > 65535 {
		return nil, fmt.Errorf("healthcheck: port %d is out of range", port)
	}
	if port == 0 && c.GetType() != hcpb.CheckType_ICMP_PING {
		p, ok := defaultPort[c.GetType()]
		if !ok {
			return nil, fmt.Errorf("healthcheck: a %v check needs a port", c.GetType())
		}
		port = uint32(p)
	}
	t := &target{backend: backend, dst: netip.AddrPortFrom(backend, uint16(port))}
	switch c.GetMode() {
	case hcpb.CheckMode_CHECK_MODE_UNSPECIFIED, hcpb.CheckMode_PLAIN:
	case hcpb.CheckMode_DSR, hcpb.CheckMode_TUN:
		if c.GetType() == hcpb.CheckType_ICMP_PING {
			return nil, fmt.Errorf("healthcheck: an ICMP_PING check cannot use mode %v (ICMP is not steered by a firewall mark to one backend)", c.GetMode())
		}
		vip, err := netip.ParseAddr(c.GetTarget())
		if err != nil {
			return nil, fmt.Errorf("healthcheck: mode %v needs the VIP as target: %q: %w", c.GetMode(), c.GetTarget(), err)
		}
		vip = vip.Unmap()
		if vip.Is4() != backend.Is4() {
			return nil, fmt.Errorf("healthcheck: target %s and address %s are of different families", vip, backend)
		}
		// Without a mark the probe would test the VIP's service, whichever
		// backend IPVS picks, and report that as this backend's health.
		if c.GetFwmark() == 0 {
			return nil, fmt.Errorf("healthcheck: mode %v needs a fwmark (none was allocated for backend %s)", c.GetMode(), backend)
		}
		t.dst = netip.AddrPortFrom(vip, uint16(port))
		t.mark = c.GetFwmark()
	default:
		return nil, fmt.Errorf("healthcheck: mode %v is not a check mode", c.GetMode())
	}
	// Keep-alive probes are pointless on a connection that lives for one
	// check, and setting them costs syscalls.
	t.dialer = &net.Dialer{KeepAlive: -1}
	if t.mark != 0 {
		t.dialer.Control = markControl(t.mark)
	}
	return t, nil
}

// deadlineOf is ctx's deadline, or timeout from now if it has none.
func deadlineOf(ctx context.Context, timeout time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(timeout)
}

// phase is the step of a probe an error happened in; it makes the message
// say what the backend did.
type phase int

const (
	phaseConnect phase = iota
	phaseTLS
	phaseSend
	phaseReply
	phaseDatagram // waiting for the answer to a datagram (UDP, DNS, RADIUS)
)

// describe turns a network error into a message that says what happened:
// a timeout (and in which step), a refusal, a reset, a close, or a route
// failure. Each reads differently, because each points at a different fault.
func describe(ph phase, err error, timeout time.Duration) string {
	switch {
	case isTimeout(err):
		switch ph {
		case phaseConnect:
			return fmt.Sprintf("connect timed out after %v (no answer to the connection attempt)", timeout)
		case phaseTLS:
			return fmt.Sprintf("connected, but the TLS handshake did not finish within %v", timeout)
		case phaseSend:
			return fmt.Sprintf("connected, but the request could not be sent within %v", timeout)
		case phaseDatagram:
			return fmt.Sprintf("no reply within %v", timeout)
		default:
			return fmt.Sprintf("connected, but no reply within %v", timeout)
		}
	case errors.Is(err, context.Canceled):
		return "check cancelled"
	case errors.Is(err, errConnRefused):
		if ph == phaseConnect {
			return "connection refused"
		}
		return "connection refused (port unreachable)"
	case errors.Is(err, errConnReset):
		// Whether the reset came before the connection was seen to be
		// made, or after, is a race on a nearby backend: one message.
		if ph == phaseTLS {
			return "connection reset by peer during the TLS handshake"
		}
		return "connection reset by peer"
	case isEOF(err):
		switch ph {
		case phaseTLS:
			return "connection closed by peer during the TLS handshake"
		default:
			return "connection closed by peer without a reply"
		}
	case errors.Is(err, errPerm):
		// What netfilter answers when it drops a packet we send.
		return "dropped by this host's firewall (operation not permitted)"
	case errors.Is(err, errHostUnreach):
		return "host unreachable"
	case errors.Is(err, errNetUnreach):
		return "network unreachable"
	}
	msg := err.Error()
	if ph == phaseTLS {
		return "TLS handshake failed: " + trimOpPrefix(msg)
	}
	return trimOpPrefix(msg)
}

var (
	errConnRefused = syscall.ECONNREFUSED
	errConnReset   = syscall.ECONNRESET
	errHostUnreach = syscall.EHOSTUNREACH
	errNetUnreach  = syscall.ENETUNREACH
	errPerm        = syscall.EPERM
)

func isEOF(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// trimOpPrefix drops the "dial tcp 1.2.3.4:80: " style prefix net errors
// carry, since our messages already name the target.
func trimOpPrefix(msg string) string {
	if i := strings.LastIndex(msg, ": "); i >= 0 && (strings.HasPrefix(msg, "dial ") || strings.HasPrefix(msg, "read ") || strings.HasPrefix(msg, "write ")) {
		return msg[i+2:]
	}
	return msg
}

// truncate shortens what a backend sent for a message.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return fmt.Sprintf("%q...", b[:n])
	}
	return fmt.Sprintf("%q", b)
}

func fail(what, detail string) Outcome { return Outcome{Message: what + ": " + detail} }

// Env is what checkers share within one process: the ICMP sockets (one per
// address family for every ping check), the I/O loops that run plain TCP
// and HTTP checks (one per processor, on Linux), and settings. Close
// releases the sockets and stops the loops.
type Env struct {
	// ICMP chooses the ping socket: "raw" (needs CAP_NET_RAW), "dgram" (an
	// unprivileged ping socket, allowed by net.ipv4.ping_group_range), or ""
	// for raw falling back to dgram.
	ICMP string
	// NASIdentifier names this node to RADIUS servers (default: hostname).
	NASIdentifier string
	// RootCAs verifies TLS servers when a check asks for verification (nil:
	// the system's roots).
	RootCAs *x509.CertPool

	mu      sync.Mutex
	pinger  *pinger
	loops   []*ioLoop
	loopErr error
}

// NewEnv returns an Env with the defaults.
func NewEnv() *Env {
	h, _ := os.Hostname()
	return &Env{NASIdentifier: h}
}

// Close closes the ICMP sockets and the I/O loop, if they were opened;
// checks still in flight on the loop end as cancelled.
func (e *Env) Close() error {
	e.mu.Lock()
	p, loops := e.pinger, e.loops
	e.pinger, e.loops = nil, nil
	e.loopErr = errors.New("closed")
	e.mu.Unlock()
	for _, l := range loops {
		l.close()
	}
	if p != nil {
		return p.close()
	}
	return nil
}

// getLoops returns the I/O loops, one per processor the runtime uses,
// started on first use; none when they cannot be (closed, failed to start,
// or not on Linux).
func (e *Env) getLoops() []*ioLoop {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.loops == nil && e.loopErr == nil {
		for range max(runtime.GOMAXPROCS(0), 1) {
			l, err := newIOLoop()
			if err != nil {
				for _, l := range e.loops {
					l.close()
				}
				e.loops, e.loopErr = nil, err
				break
			}
			e.loops = append(e.loops, l)
		}
	}
	return e.loops
}

// getLoop returns an I/O loop, or nil when there is none.
func (e *Env) getLoop() *ioLoop {
	if ls := e.getLoops(); len(ls) > 0 {
		return ls[0]
	}
	return nil
}

func (e *Env) getPinger() *pinger {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pinger == nil {
		e.pinger = newPinger(e.ICMP)
	}
	return e.pinger
}
