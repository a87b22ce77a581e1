package appliance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
)

// A Load is a client's traffic through one VIP while a failure happens,
// and what the client saw of it. Its connections are of four kinds:
//
//	chatty: a request and its answer every ChattyEvery, all the time;
//	idle:   silent from its first exchange until one after the failure
//	        (no TCP keep-alives either: Go's dialer sends one every 15 s);
//	young:  opened in the YoungSpread before the failure (Young), so
//	        some are newer than the sync's 2 s flush; one exchange after;
//	talk:   the backend speaks first, on a timer (Serve's Talk); one
//	        exchange after the failure, and a tick must still arrive.
//
// Beside them a UDP stream sends a datagram every UDPEvery and times the
// answers: the largest gap between two is the client-visible outage.
//
// The sequence: StartLoad (connections opened, the stream running), Young
// (returns at the moment the failure should happen), Mark (the failure),
// Finish (after it: the exchanges, the figures), Close.
type Load struct {
	o    LoadOptions
	node *labtest.Node

	chatty []*chattyConn
	idle   []*Conn
	young  []*Conn
	// youngErrs are the young connections that could not be opened.
	youngErrs []string
	talk      []*talkConn
	udp       *udpStream

	mark time.Time
	stop chan struct{}
	wg   sync.WaitGroup
}

// LoadOptions shape a Load. Zero counts open none of that kind.
type LoadOptions struct {
	Chatty, Idle, Young, Talk int
	// Echo is the TCP echo service (Serve's TCP), TalkAddr the
	// server-first one (Serve's Talk), UDP the UDP answerer (Serve's UDP);
	// an invalid UDP: no stream.
	Echo, TalkAddr, UDP netip.AddrPort
	ChattyEvery         time.Duration // default 10 ms
	UDPEvery            time.Duration // default 1 ms
	YoungSpread         time.Duration // default 5 s
	// Timeout bounds an exchange: one that takes longer is lost (default
	// 15 s).
	Timeout time.Duration
}

func (o *LoadOptions) defaults() {
	if o.ChattyEvery <= 0 {
		o.ChattyEvery = 10 * time.Millisecond
	}
	if o.UDPEvery <= 0 {
		o.UDPEvery = time.Millisecond
	}
	if o.YoungSpread <= 0 {
		o.YoungSpread = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
}

// Kinds of connection, in the order results list them.
var Kinds = []string{"chatty", "idle", "young", "talk"}

// StartLoad opens the chatty, idle and talk connections from inside n
// (each reads its greeting), starts the chatty loops and the UDP stream.
// On error what was opened is closed.
func StartLoad(n *labtest.Node, o LoadOptions) (_ *Load, err error) {
	o.defaults()
	l := &Load{o: o, node: n, stop: make(chan struct{})}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	for range o.Idle {
		c, err := hold(n, o.Echo, o.Timeout, -1)
		if err != nil {
			return nil, fmt.Errorf("load: idle: %w", err)
		}
		l.idle = append(l.idle, c)
	}
	for range o.Talk {
		c, err := holdTalk(n, o.TalkAddr, o.Timeout)
		if err != nil {
			return nil, fmt.Errorf("load: talk: %w", err)
		}
		l.talk = append(l.talk, c)
	}
	for range o.Chatty {
		c, err := hold(n, o.Echo, o.Timeout, -1)
		if err != nil {
			return nil, fmt.Errorf("load: chatty: %w", err)
		}
		cc := &chattyConn{Conn: c, done: make(chan struct{})}
		l.chatty = append(l.chatty, cc)
	}
	// Every idle and talk connection has carried data once both ways
	// (established on the LB, and so synced, as a client's would be).
	for _, c := range l.idle {
		if err := c.Exchange(o.Timeout); err != nil {
			return nil, fmt.Errorf("load: idle: %w", err)
		}
	}
	for _, c := range l.talk {
		if err := c.exchange(o.Timeout); err != nil {
			return nil, fmt.Errorf("load: talk: %w", err)
		}
	}
	for _, c := range l.chatty {
		l.wg.Go(func() { c.loop(l.stop, o.ChattyEvery, o.Timeout) })
	}
	if o.UDP.IsValid() {
		if l.udp, err = startUDPStream(n, o.UDP, o.UDPEvery); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Established are the client ends of the chatty, idle and talk
// connections (the young are not yet open): what a backup should learn
// from the sync before the failure.
func (l *Load) Established() []netip.AddrPort {
	var out []netip.AddrPort
	for _, c := range l.idle {
		out = append(out, c.Src)
	}
	for _, c := range l.talk {
		out = append(out, c.Src)
	}
	for _, c := range l.chatty {
		out = append(out, c.Src)
	}
	return out
}

// Young opens the young connections, one every YoungSpread/Young, then
// waits a random part of the last interval, and returns: the failure is
// due now, the oldest young connection YoungSpread old, the newest a
// moment.
func (l *Load) Young() error {
	if l.o.Young == 0 {
		return nil
	}
	step := l.o.YoungSpread / time.Duration(l.o.Young)
	next := time.Now()
	for range l.o.Young {
		time.Sleep(time.Until(next))
		next = next.Add(step)
		c, err := hold(l.node, l.o.Echo, l.o.Timeout, -1)
		if err != nil {
			// Counted as a young connection lost: the pair failed a
			// client before the failure (a false failover under load).
			l.youngErrs = append(l.youngErrs, fmt.Sprintf("open at %s: %v", time.Now().Format("15:04:05.000"), err))
			continue
		}
		l.young = append(l.young, c)
	}
	time.Sleep(time.Until(next.Add(-step + rand.N(step))))
	return nil
}

// Mark says the failure happens now: stalls and UDP gaps count from here
// (each from the answer before it, so the one the failure causes counts
// whole).
func (l *Load) Mark() time.Time {
	l.mark = time.Now()
	if l.udp != nil {
		l.udp.window(l.mark)
	}
	return l.mark
}

// Kept is how many connections of a kind still worked after the failure.
type Kept struct {
	Total, OK int
	Errs      []string
	Lost      []netip.AddrPort // the client ends of those lost (opened ones)
}

// Pct is the share kept, in percent (100 with none).
func (k Kept) Pct() float64 {
	if k.Total == 0 {
		return 100
	}
	return 100 * float64(k.OK) / float64(k.Total)
}

// LoadResult is what the client saw.
type LoadResult struct {
	// UDPGap is the largest gap between two answers of the UDP stream
	// that ends after the failure (to the end, if answers never came
	// back); UDPSendGap the largest between two sends, which says how much
	// of UDPGap the client's own scheduling could account for.
	UDPGap, UDPSendGap time.Duration
	UDPSent, UDPRecv   int
	// Stalls are, per chatty connection kept, the longest wait between
	// two answers that ends after the failure; sorted.
	Stalls []time.Duration
	Kept   map[string]Kept // by kind
}

// Finish runs the exchanges after the failure and stops the load: every
// idle, young and talk connection sends a line and waits for it back (a
// talk connection also for a tick sent after that); every chatty one
// completes an exchange started after Finish was called, or fails.
// Call it once the new master is up: the exchanges then measure what the
// failover kept, and their timeouts what it did not.
func (l *Load) Finish() LoadResult {
	from := time.Now()
	res := LoadResult{Kept: map[string]Kept{}}
	var mu sync.Mutex
	add := func(kind string, err error, src netip.AddrPort, what string) {
		mu.Lock()
		defer mu.Unlock()
		k := res.Kept[kind]
		k.Total++
		if err == nil {
			k.OK++
		} else {
			k.Errs = append(k.Errs, fmt.Sprintf("%s: %v", what, err))
			if src.IsValid() {
				k.Lost = append(k.Lost, src)
			}
		}
		res.Kept[kind] = k
	}
	for _, e := range l.youngErrs {
		add("young", errors.New(e), netip.AddrPort{}, "young")
	}
	var wg sync.WaitGroup
	for kind, conns := range map[string][]*Conn{"idle": l.idle, "young": l.young} {
		for _, c := range conns {
			wg.Go(func() { add(kind, c.Exchange(l.o.Timeout), c.Src, c.Src.String()+" ("+c.Answer.Backend+")") })
		}
	}
	for _, c := range l.talk {
		wg.Go(func() { add("talk", c.after(from, l.o.Timeout), c.Src, c.Src.String()+" ("+c.Answer.Backend+")") })
	}
	for _, c := range l.chatty {
		wg.Go(func() {
			err := c.waitPast(from, l.o.Timeout+time.Second)
			add("chatty", err, c.Src, c.Src.String()+" ("+c.Answer.Backend+")")
			if err == nil {
				mu.Lock()
				res.Stalls = append(res.Stalls, c.stallSince(l.mark))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(l.stop)
	l.wg.Wait()
	slices.Sort(res.Stalls)
	if l.udp != nil {
		res.UDPGap, res.UDPSendGap, res.UDPSent, res.UDPRecv = l.udp.finish()
	}
	return res
}

// Close closes every connection and stops the stream; it may follow
// Finish or replace it.
func (l *Load) Close() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	for _, c := range l.chatty {
		c.Close()
	}
	l.wg.Wait()
	for _, c := range slices.Concat(l.idle, l.young) {
		c.Close()
	}
	for _, c := range l.talk {
		c.Close()
	}
	if l.udp != nil {
		l.udp.close()
	}
}

// chattyConn exchanges a line every period until stopped or an exchange
// fails.
type chattyConn struct {
	*Conn
	mu     sync.Mutex
	times  []time.Time // of each answer
	err    error
	done   chan struct{} // closed when the loop ends
	notify chan struct{} // closed at the next answer or the end; nil: none asked
}

func (c *chattyConn) loop(stop <-chan struct{}, every, timeout time.Duration) {
	defer close(c.done)
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
		}
		err := c.Exchange(timeout)
		now := time.Now()
		c.mu.Lock()
		if err != nil {
			c.err = err
		} else {
			c.times = append(c.times, now)
		}
		if c.notify != nil {
			close(c.notify)
			c.notify = nil
		}
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitPast waits for an answer to an exchange that started after from, or
// the loop's end, and returns the loop's error.
func (c *chattyConn) waitPast(from time.Time, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			return c.err
		}
		// An answer at least one exchange after from: the exchange
		// that was under way at from may have been sent before it.
		n := 0
		for i := len(c.times) - 1; i >= 0 && c.times[i].After(from); i-- {
			n++
		}
		if n >= 2 {
			c.mu.Unlock()
			return nil
		}
		ch := c.notify
		if ch == nil {
			ch = make(chan struct{})
			c.notify = ch
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-c.done:
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			if err == nil {
				err = errors.New("stopped before an answer after the failure")
			}
			return err
		case <-deadline:
			return fmt.Errorf("no answer within %v", timeout)
		}
	}
}

// stallSince is the longest wait between two answers, for those after
// since.
func (c *chattyConn) stallSince(since time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var most time.Duration
	for i := 1; i < len(c.times); i++ {
		if c.times[i].After(since) {
			most = max(most, c.times[i].Sub(c.times[i-1]))
		}
	}
	return most
}

// talkConn is a connection to a server that speaks first: a reader
// sorts its lines into ticks and echoes.
type talkConn struct {
	Src    netip.AddrPort
	Answer Answer
	c      net.Conn
	echo   chan string
	n      int

	mu       sync.Mutex
	lastTick time.Time
	readErr  error
	ticked   chan struct{} // closed at the next tick; nil: none asked
}

func holdTalk(n *labtest.Node, dst netip.AddrPort, timeout time.Duration) (*talkConn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		d := net.Dialer{Timeout: timeout, KeepAlive: -1}
		c, err = d.Dial("tcp", dst.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tcp %s: %w", dst, err)
	}
	tc := &talkConn{c: c, echo: make(chan string, 4)}
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
		tc.Src = netip.AddrPortFrom(la.AddrPort().Addr().Unmap(), la.AddrPort().Port())
	}
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(timeout))
	line, err := r.ReadString('\n')
	if err == nil {
		tc.Answer, err = parseAnswer(line)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("tcp %s: greeting: %w", dst, err)
	}
	c.SetReadDeadline(time.Time{})
	go tc.read(r)
	return tc, nil
}

func (c *talkConn) read(r *bufio.Reader) {
	for {
		line, err := r.ReadString('\n')
		c.mu.Lock()
		if err != nil {
			c.readErr = err
			if c.ticked != nil {
				close(c.ticked)
				c.ticked = nil
			}
			c.mu.Unlock()
			close(c.echo)
			return
		}
		if strings.HasPrefix(line, "tick ") {
			c.lastTick = time.Now()
			if c.ticked != nil {
				close(c.ticked)
				c.ticked = nil
			}
			c.mu.Unlock()
			continue
		}
		c.mu.Unlock()
		c.echo <- line
	}
}

func (c *talkConn) exchange(timeout time.Duration) error {
	c.n++
	msg := fmt.Sprintf("ping %d\n", c.n)
	c.c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c.c, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	select {
	case got, ok := <-c.echo:
		if !ok {
			c.mu.Lock()
			defer c.mu.Unlock()
			return fmt.Errorf("read: %w", c.readErr)
		}
		if got != msg {
			return fmt.Errorf("sent %q, got %q back", msg, got)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("no echo within %v", timeout)
	}
}

// after is the check after a failure: an exchange, then a tick sent
// after from.
func (c *talkConn) after(from time.Time, timeout time.Duration) error {
	if err := c.exchange(timeout); err != nil {
		return err
	}
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		if c.lastTick.After(from) {
			c.mu.Unlock()
			return nil
		}
		if c.readErr != nil {
			defer c.mu.Unlock()
			return fmt.Errorf("read: %w", c.readErr)
		}
		ch := c.ticked
		if ch == nil {
			ch = make(chan struct{})
			c.ticked = ch
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("no tick within %v", timeout)
		}
	}
}

func (c *talkConn) Close() error { return c.c.Close() }

// udpStream sends a datagram every period on one socket (one flow to
// IPVS) and notes when answers come.
type udpStream struct {
	c    net.Conn
	quit chan struct{}
	wg   sync.WaitGroup

	mu           sync.Mutex
	sent, recv   int
	lastSent     time.Time
	lastRecv     time.Time
	from         time.Time // gaps count when they end after this; zero: none yet
	sendGap, gap time.Duration
}

func startUDPStream(n *labtest.Node, dst netip.AddrPort, every time.Duration) (*udpStream, error) {
	var c net.Conn
	if err := n.Do(func() (err error) {
		c, err = net.Dial("udp", dst.String())
		return err
	}); err != nil {
		return nil, fmt.Errorf("load: udp %s: %w", dst, err)
	}
	s := &udpStream{c: c, quit: make(chan struct{})}
	s.wg.Go(func() {
		tk := time.NewTicker(every)
		defer tk.Stop()
		msg := []byte("u\n")
		for {
			select {
			case <-s.quit:
				return
			case <-tk.C:
			}
			c.Write(msg) // an error (unreachable, while the VIP moves) is a lost datagram
			now := time.Now()
			s.mu.Lock()
			if !s.lastSent.IsZero() && !s.from.IsZero() && now.After(s.from) {
				s.sendGap = max(s.sendGap, now.Sub(s.lastSent))
			}
			s.lastSent = now
			s.sent++
			s.mu.Unlock()
		}
	})
	s.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			if _, err := c.Read(buf); err != nil {
				select {
				case <-s.quit:
					return
				default:
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				// ECONNREFUSED from an ICMP error: keep reading.
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			now := time.Now()
			s.mu.Lock()
			if !s.lastRecv.IsZero() && !s.from.IsZero() && now.After(s.from) {
				s.gap = max(s.gap, now.Sub(s.lastRecv))
			}
			s.lastRecv = now
			s.recv++
			s.mu.Unlock()
		}
	})
	return s, nil
}

// finish returns the largest answer gap and send gap ending after the
// window's start (a stream still unanswered counts its gap to now) and
// the counts.
func (s *udpStream) finish() (gap, sendGap time.Duration, sent, recv int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.gap, time.Since(s.lastRecv)), s.sendGap, s.sent, s.recv
}

// window starts counting gaps that end after from.
func (s *udpStream) window(from time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.from = from
	s.gap, s.sendGap = 0, 0
}

func (s *udpStream) close() {
	select {
	case <-s.quit:
		return
	default:
	}
	close(s.quit)
	s.c.Close()
	s.wg.Wait()
}
