package appliance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
)

// A backend's servers run in this test process, each socket opened inside
// the backend's namespace (labtest.Node.Listen), and say who they are:
//
//	TCP: on connect, "<name> <peer> <local>\n"; then every line sent is
//	     echoed, so that a held connection can prove it still carries data.
//	UDP: every datagram is answered with "<name> <peer> <local>\n".
//	HTTP: GET /healthz answers 200, for health checks.
//	Talk (TCP, server speaks first): the TCP greeting, then "tick <n>\n"
//	     every TalkEvery unasked; lines sent are echoed as on TCP.
//
// <peer> is the source address the backend saw (the cluster VIP under
// Seesaw's full NAT, the client's own address under DSR) and <local> the
// address the request was sent to.

// ServeOptions say what a backend serves.
type ServeOptions struct {
	// TCP are listen addresses (":80": every address of both families).
	TCP []string
	// UDP are the addresses to answer on, each with a socket of its own: a
	// socket bound to the wildcard answers from whatever address the route
	// back picks (the backend's own), where a DSR backend must answer from
	// the VIP the request went to.
	UDP []netip.AddrPort
	// Health are the listen addresses of the /healthz server (":8080").
	Health []string
	// Talk are listen addresses of the server that speaks first, sending a
	// tick every TalkEvery (default a second) whether asked or not.
	Talk      []string
	TalkEvery time.Duration
	// NoKeepAlive turns off TCP keepalives on accepted connections (Go
	// sends them every 15 s), so that an idle connection is really idle.
	NoKeepAlive bool
}

// Server is a backend's servers.
type Server struct {
	Node *labtest.Node
	Name string
	opts ServeOptions

	mu     sync.Mutex
	health []*http.Server // nil while stopped
}

// Serve starts n's servers, answering with n's role as the name; they stop
// when the test ends.
func Serve(t testing.TB, n *labtest.Node, o ServeOptions) *Server {
	t.Helper()
	s := &Server{Node: n, Name: n.Role, opts: o}
	for _, addr := range o.TCP {
		l, err := n.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s: listen tcp %s: %v", n.Role, addr, err)
		}
		t.Cleanup(func() { l.Close() })
		go s.serveTCP(l)
	}
	for _, addr := range o.Talk {
		l, err := n.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s: listen tcp %s: %v", n.Role, addr, err)
		}
		t.Cleanup(func() { l.Close() })
		go s.serveTalk(l)
	}
	for _, ap := range o.UDP {
		pc, err := n.ListenPacket("udp", ap.String())
		if err != nil {
			t.Fatalf("%s: listen udp %s: %v", n.Role, ap, err)
		}
		t.Cleanup(func() { pc.Close() })
		go s.serveUDP(pc)
	}
	if err := s.StartHealth(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.StopHealth)
	return s
}

func (s *Server) serveTCP(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		if tc, ok := c.(*net.TCPConn); ok && s.opts.NoKeepAlive {
			tc.SetKeepAlive(false)
		}
		go func() {
			defer c.Close()
			if _, err := io.WriteString(c, answerLine(s.Name, c.RemoteAddr(), c.LocalAddr())); err != nil {
				return
			}
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := io.WriteString(c, line); err != nil {
					return
				}
			}
		}()
	}
}

// serveTalk is serveTCP with a ticker: the backend sends on its own, as
// a server that pushes does, so that the only packets of such a connection
// through the LB (under DSR and TUN) are the client's acknowledgements.
func (s *Server) serveTalk(l net.Listener) {
	every := s.opts.TalkEvery
	if every <= 0 {
		every = time.Second
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var mu sync.Mutex // one writer at a time: the ticker or the echo
			write := func(line string) error {
				mu.Lock()
				defer mu.Unlock()
				c.SetWriteDeadline(time.Now().Add(time.Minute))
				_, err := io.WriteString(c, line)
				return err
			}
			if write(answerLine(s.Name, c.RemoteAddr(), c.LocalAddr())) != nil {
				return
			}
			done := make(chan struct{})
			defer close(done)
			go func() {
				tk := time.NewTicker(every)
				defer tk.Stop()
				for n := 1; ; n++ {
					select {
					case <-done:
						return
					case <-tk.C:
					}
					if write(fmt.Sprintf("tick %d\n", n)) != nil {
						c.Close()
						return
					}
				}
			}()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil || write(line) != nil {
					return
				}
			}
		}()
	}
}

func (s *Server) serveUDP(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo([]byte(answerLine(s.Name, from, pc.LocalAddr())), from)
	}
}

// StartHealth starts the /healthz server (again).
func (s *Server) StartHealth() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.health != nil {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s\n", s.Name)
	})
	for _, addr := range s.opts.Health {
		l, err := s.Node.Listen("tcp", addr)
		if err != nil {
			for _, h := range s.health {
				h.Close()
			}
			s.health = nil
			return fmt.Errorf("%s: listen %s for /healthz: %w", s.Name, addr, err)
		}
		h := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go h.Serve(l)
		s.health = append(s.health, h)
	}
	return nil
}

// StopHealth stops the /healthz server: its port refuses connections, as
// a backend whose server died does.
func (s *Server) StopHealth() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.health {
		h.Close()
	}
	s.health = nil
}

func answerLine(name string, peer, local net.Addr) string {
	return fmt.Sprintf("%s %s %s\n", name, addrOf(peer), addrOf(local))
}

func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// Answer is what a backend said: its name, the address it saw the
// request come from, and the address it was sent to; and the client's
// own end of the connection.
type Answer struct {
	Backend     string
	Peer, Local netip.Addr
	Client      netip.AddrPort
}

func (a Answer) String() string { return fmt.Sprintf("%s (saw %s -> %s)", a.Backend, a.Peer, a.Local) }

func parseAnswer(s string) (Answer, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return Answer{}, fmt.Errorf("answer %q: want name, peer and local address", s)
	}
	peer, err1 := netip.ParseAddr(f[1])
	local, err2 := netip.ParseAddr(f[2])
	if err := errors.Join(err1, err2); err != nil {
		return Answer{}, fmt.Errorf("answer %q: %w", s, err)
	}
	return Answer{Backend: f[0], Peer: peer, Local: local}, nil
}

// Ask sends one request from inside n to dst over network ("tcp" or
// "udp") and returns the answer; timeout bounds the whole exchange. A UDP
// request is sent again every half second until an answer comes (the
// first may be lost while a neighbour is resolved); each Ask is a new
// socket, so a new connection to IPVS's scheduler.
func Ask(n *labtest.Node, network string, dst netip.AddrPort, timeout time.Duration) (Answer, error) {
	deadline := time.Now().Add(timeout)
	var c net.Conn
	err := n.Do(func() (err error) {
		d := net.Dialer{Deadline: deadline}
		c, err = d.Dial(network, dst.String())
		return err
	})
	if err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", network, dst, err)
	}
	defer c.Close()
	var line string
	if network == "udp" {
		buf := make([]byte, 1500)
		for {
			if _, err = c.Write([]byte("who?\n")); err != nil {
				break
			}
			try := time.Now().Add(500 * time.Millisecond)
			if try.After(deadline) {
				try = deadline
			}
			c.SetReadDeadline(try)
			var k int
			if k, err = c.Read(buf); err == nil {
				line = string(buf[:k])
				break
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !time.Now().Before(deadline) {
				break
			}
		}
	} else {
		c.SetDeadline(deadline)
		line, err = bufio.NewReader(c).ReadString('\n')
	}
	if err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", network, dst, err)
	}
	ans, err := parseAnswer(line)
	if err == nil {
		ans.Client = netip.AddrPortFrom(addrOf(c.LocalAddr()), uint16(portOf(c.LocalAddr())))
	}
	return ans, err
}

func portOf(a net.Addr) int {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.Port
	case *net.UDPAddr:
		return a.Port
	}
	return 0
}

// Conn is a TCP connection held open through a VIP.
type Conn struct {
	Src    netip.AddrPort // the client's end
	Dst    netip.AddrPort
	Answer Answer // the backend's greeting
	c      net.Conn
	r      *bufio.Reader
	n      int
}

// Hold connects from inside n to dst and reads the backend's greeting.
func Hold(n *labtest.Node, dst netip.AddrPort, timeout time.Duration) (*Conn, error) {
	return hold(n, dst, timeout, 0)
}

// hold is Hold with the dialer's keep-alive period (0: Go's default of
// 15 s; negative: none, so that an idle connection sends nothing at all).
func hold(n *labtest.Node, dst netip.AddrPort, timeout, keepAlive time.Duration) (*Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		d := net.Dialer{Timeout: timeout, KeepAlive: keepAlive}
		c, err = d.Dial("tcp", dst.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tcp %s: %w", dst, err)
	}
	hc := &Conn{Dst: dst, c: c, r: bufio.NewReader(c)}
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
		hc.Src = netip.AddrPortFrom(la.AddrPort().Addr().Unmap(), la.AddrPort().Port())
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	line, err := hc.r.ReadString('\n')
	if err == nil {
		hc.Answer, err = parseAnswer(line)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("tcp %s: greeting: %w", dst, err)
	}
	return hc, nil
}

// Exchange sends a line and reads it back from the backend. timeout is
// for the whole exchange; make it generous: a segment lost while a
// daemon restarts is retransmitted with a growing delay.
func (c *Conn) Exchange(timeout time.Duration) error {
	c.n++
	msg := fmt.Sprintf("ping %d\n", c.n)
	c.c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c.c, msg); err != nil {
		return fmt.Errorf("%s to %s: write: %w", c.Dst, c.Answer.Backend, err)
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("%s to %s: read: %w", c.Dst, c.Answer.Backend, err)
	}
	if got != msg {
		return fmt.Errorf("%s to %s: sent %q, got %q back", c.Dst, c.Answer.Backend, msg, got)
	}
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// DSR readies a backend for direct server return of vips: it holds them
// on lo, where they are its own, but with arp_ignore=1 and arp_announce=2
// it never answers or announces them by ARP on its other links (IPv6
// answers neighbour solicitations only for addresses of the link asked
// on), so the LB stays the only one the router finds for a VIP.
func DSR(n *labtest.Node, vips ...netip.Addr) error {
	for k, v := range map[string]string{"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2"} {
		if err := n.Sysctl(k, v); err != nil {
			return err
		}
	}
	for _, v := range vips {
		if err := n.AddAddr("lo", netip.PrefixFrom(v, v.BitLen())); err != nil {
			return err
		}
	}
	return nil
}
