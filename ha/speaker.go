package ha

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/seesawlb/seesaw/ha/vrrp"
)

// ErrClosed is what Conn.Read returns once the conn is closed.
var ErrClosed = net.ErrClosed

// Conn carries VRRP packets for one speaker. The Linux implementation is a
// raw IP protocol 112 socket bound to the interface; tests use a fake.
type Conn interface {
	// Read blocks until a packet arrives. After Close it returns an error
	// wrapping ErrClosed; any other error is transient.
	Read() (vrrp.Packet, error)
	// Write sends one VRRP message to dst from the conn's local address
	// with TTL/hop limit 255.
	Write(dst netip.Addr, payload []byte) error
	Close() error
}

// ConnConfig is what opening a Conn needs.
type ConnConfig struct {
	Interface string
	// Local is the source address: on Interface, IPv4 or IPv6 link-local.
	Local netip.Addr
	// Multicast joins 224.0.0.18 or ff02::12 on Interface; unicast-only
	// speakers do not.
	Multicast bool
}

// OpenConnFunc opens a Conn.
type OpenConnFunc func(ConnConfig) (Conn, error)

// SpeakerOptions are a speaker's hooks. All are optional.
type SpeakerOptions struct {
	// Logf gets transitions, notices and errors; Debugf every drop.
	Logf, Debugf func(format string, args ...any)
	// OnTransition is called from the speaker's goroutine, after the
	// step's adverts have been sent.
	OnTransition func(vrrp.Transition)
	// ErrorBackoff is the pause after a receive error so that a persistent
	// one does not spin (default 10ms).
	ErrorBackoff time.Duration
	// ResumeFrom, if set, is the last advert of this node's previous HA,
	// master when it restarted for a reload: the speaker starts with
	// vrrp.Machine.Resume instead of Start.
	ResumeFrom time.Time
}

// ErrRestart, as the cause of the context that ends Speaker.Run, stops the
// speaker for a restart that is to resume mastership (vrrp.Machine.Handoff):
// a master sends no priority-0 advert. Any other cause steps down.
var ErrRestart = errors.New("restarting for a reload")

// SpeakerStats is a snapshot of a speaker.
type SpeakerStats struct {
	vrrp.Stats
	State                     vrrp.State
	AdvertsSent               uint64
	SendErrors, ReceiveErrors uint64
	LastError                 string
	LastErrorTime             time.Time
	Priority                  uint8
	AdvertInterval            time.Duration
	Interface                 string
	Local                     netip.Addr
	Unicast                   bool
	LastAdvert                time.Time // the last sent as master
}

// Speaker runs one VRRP virtual router on a Conn with the real clock.
type Speaker struct {
	iface string
	conn  Conn
	opts  SpeakerOptions
	cmds  chan func(time.Time) vrrp.Step
	done  chan struct{}

	mu          sync.Mutex // guards m and the counters
	m           *vrrp.Machine
	sent        uint64
	sendErrs    uint64
	recvErrs    uint64
	lastErr     string
	lastErrTime time.Time
	errLogged   time.Time // rate limit for error logs
}

// NewSpeaker returns a speaker for cfg on conn; Run starts it.
func NewSpeaker(iface string, cfg vrrp.Config, conn Conn, opts SpeakerOptions) (*Speaker, error) {
	m, err := vrrp.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("ha: speaker: %w", err)
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Debugf == nil {
		opts.Debugf = func(string, ...any) {}
	}
	if opts.ErrorBackoff <= 0 {
		opts.ErrorBackoff = 10 * time.Millisecond
	}
	return &Speaker{iface: iface, conn: conn, opts: opts, m: m, cmds: make(chan func(time.Time) vrrp.Step), done: make(chan struct{})}, nil
}

// Run speaks VRRP until ctx is done, then shuts down: a master sends a
// priority-0 advert so that the backup takes over at once. It closes the
// conn before returning. Socket errors are counted and logged, never
// returned.
func (s *Speaker) Run(ctx context.Context) error {
	defer close(s.done)
	pkts := make(chan vrrp.Packet, 64)
	stopRead := make(chan struct{})
	readDone := make(chan struct{})
	go s.readLoop(pkts, stopRead, readDone)
	defer func() {
		close(stopRead)
		s.conn.Close()
		<-readDone
	}()

	if r := s.opts.ResumeFrom; !r.IsZero() {
		s.step(func(now time.Time) vrrp.Step { return s.m.Resume(now, r, "reload") })
	} else {
		s.step(func(now time.Time) vrrp.Step { return s.m.Start(now) })
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		deadline := s.m.Deadline()
		s.mu.Unlock()
		if deadline.IsZero() {
			timer.Reset(time.Hour)
		} else {
			timer.Reset(time.Until(deadline))
		}
		select {
		case <-ctx.Done():
			reason := "stopping"
			if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
				reason = c.Error()
			}
			if errors.Is(context.Cause(ctx), ErrRestart) {
				s.step(func(now time.Time) vrrp.Step { return s.m.Handoff(now, reason) })
				return nil
			}
			s.step(func(now time.Time) vrrp.Step { return s.m.Shutdown(now, reason) })
			return nil
		case p := <-pkts:
			s.step(func(now time.Time) vrrp.Step { return s.m.Receive(now, p) })
		case <-timer.C:
			s.step(func(now time.Time) vrrp.Step { return s.m.Tick(now) })
		case c := <-s.cmds:
			s.step(c)
		}
	}
}

// step runs f on the machine at the current time and carries out the step.
func (s *Speaker) step(f func(time.Time) vrrp.Step) {
	s.mu.Lock()
	st := f(time.Now())
	s.mu.Unlock()
	for _, o := range st.Send {
		err := s.conn.Write(o.Dst, o.Payload)
		s.mu.Lock()
		if err != nil {
			s.sendErrs++
			s.noteErrorLocked(fmt.Errorf("send advert to %v: %w", o.Dst, err))
		} else {
			s.sent++
		}
		s.mu.Unlock()
	}
	if st.Drop != "" {
		s.opts.Debugf("ha: vrrp: dropped (%s): %s", st.Drop, st.DropDetail)
	}
	if st.Notice != "" {
		s.opts.Logf("ha: vrrp: %s", st.Notice)
	}
	if t := st.Transition; t != nil {
		s.opts.Logf("ha: vrrp: %v -> %v: %s", t.From, t.To, t.Reason)
		if s.opts.OnTransition != nil {
			s.opts.OnTransition(*t)
		}
	}
}

// noteErrorLocked records a transient socket error and logs it, at most
// once a second so that a flood of them does not flood the log.
func (s *Speaker) noteErrorLocked(err error) {
	now := time.Now()
	s.lastErr, s.lastErrTime = err.Error(), now
	if now.Sub(s.errLogged) >= time.Second {
		s.errLogged = now
		s.opts.Logf("ha: vrrp: %v (%d send and %d receive errors so far; carrying on)", err, s.sendErrs, s.recvErrs)
	}
}

func (s *Speaker) readLoop(pkts chan<- vrrp.Packet, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		p, err := s.conn.Read()
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return
			}
			s.mu.Lock()
			s.recvErrs++
			s.noteErrorLocked(fmt.Errorf("receive: %w", err))
			s.mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(s.opts.ErrorBackoff):
			}
			continue
		}
		select {
		case pkts <- p:
		case <-stop:
			return
		}
	}
}

// do runs f in the speaker's goroutine; false if the speaker has stopped.
func (s *Speaker) do(f func(time.Time) vrrp.Step) bool {
	select {
	case s.cmds <- f:
		return true
	case <-s.done:
		return false
	}
}

// Relinquish gives up mastership (see vrrp.Machine.Relinquish).
func (s *Speaker) Relinquish(reason string) {
	s.do(func(now time.Time) vrrp.Step { return s.m.Relinquish(now, reason) })
}

// Update applies parameters that need no new socket (see
// vrrp.Machine.Update).
func (s *Speaker) Update(c vrrp.Config) error {
	errc := make(chan error, 1)
	if !s.do(func(now time.Time) vrrp.Step { errc <- s.m.Update(now, c); return vrrp.Step{} }) {
		return errors.New("ha: speaker stopped")
	}
	return <-errc
}

// Config returns the speaker's current parameters.
func (s *Speaker) Config() vrrp.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Config()
}

// Stats returns a snapshot.
func (s *Speaker) Stats() SpeakerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m.Config()
	return SpeakerStats{
		Stats:          s.m.Stats(),
		LastAdvert:     s.m.LastAdvert(),
		State:          s.m.State(),
		AdvertsSent:    s.sent,
		SendErrors:     s.sendErrs,
		ReceiveErrors:  s.recvErrs,
		LastError:      s.lastErr,
		LastErrorTime:  s.lastErrTime,
		Priority:       c.Priority,
		AdvertInterval: c.Interval,
		Interface:      s.iface,
		Local:          c.Local,
		Unicast:        c.Unicast,
	}
}

// State is the speaker's VRRP state.
func (s *Speaker) State() vrrp.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.State()
}
