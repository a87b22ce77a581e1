// Package ha is the high-availability daemon: the VRRPv3 speaker that decides
// whether this node is master (LEADER) or BACKUP and tells the engine.
//
// The protocol itself (codec and state machine) is package ha/vrrp, pure and
// clock-free. This package runs it: raw sockets on the node interface
// (conn_linux.go), a Speaker that drives a vrrp.Machine with the real clock,
// and the process around it. The process gets its parameters from the engine
// over the HASession stream, reports every transition at once and its status
// periodically, honours relinquish requests with a priority-0 advert, and
// steps down when the engine goes away (a node whose engine is gone must not
// hold the VIPs), reconnecting with backoff. Two restarts for a reload are
// the exceptions, and keep this node's mastership: HA's own (SIGUSR2, see
// Config.Restart) and the engine's when it says so first (EngineRestarting).
// Socket errors are counted and logged; nothing but the end of its context
// stops it. Standalone mode runs the same speaker from flags, without an
// engine.
package ha

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/seesawlb/seesaw/ha/vrrp"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

var (
	// DefaultSocket is where HA serves its status.
	DefaultSocket = ipc.DefaultSocket("ha")
	// DefaultEngineSocket is where HA finds the engine.
	DefaultEngineSocket = ipc.DefaultSocket("engine")
)

// Config is what HA runs with.
type Config struct {
	Socket       string
	EngineSocket string
	// StatusInterval is how often HA reports its status to the engine
	// (Seesaw v2 used 3s). Transitions are reported at once.
	StatusInterval time.Duration
	// RetryMin and RetryMax bound the wait between attempts to reopen a
	// broken engine session (defaults 100ms and 5s). RetryMax is also the
	// wait before retrying a VRRP socket that would not open.
	RetryMin, RetryMax time.Duration
	// OpenConn opens the VRRP transport (default: raw sockets) and
	// LookupAddr finds the advert source on an interface (default: the
	// host's); tests replace them.
	OpenConn   OpenConnFunc
	LookupAddr AddrLookup
	// Restart, when it yields (seesaw_ha: SIGUSR2, which the watchdog
	// sends for a reload), stops HA for a restart that is to keep this
	// node's mastership: the speaker stops without a priority-0 advert,
	// HA tells the engine (Restarting: its state and last advert) instead
	// of reporting SHUTDOWN, and Run returns. The next HA learns from the
	// engine (Resume) that this node was master and resumes at once. With
	// no engine session open, a restart is a plain stop. nil: never.
	Restart <-chan struct{}
}

// restartWait bounds how long a restart waits for the engine to take the
// Restarting report before HA exits anyway.
const restartWait = 2 * time.Second

func (c *Config) setDefaults() {
	if c.Socket == "" {
		c.Socket = DefaultSocket
	}
	if c.EngineSocket == "" {
		c.EngineSocket = DefaultEngineSocket
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = 3 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(5*time.Second, c.RetryMin)
	}
	if c.OpenConn == nil {
		c.OpenConn = OpenRawConn
	}
	if c.LookupAddr == nil {
		c.LookupAddr = InterfaceAddr
	}
}

// node is HA's state, shared by the engine session, the VRRP loop and the
// status service.
type node struct {
	hapb.UnimplementedHAServer
	comp *ipc.Component
	cfg  Config
	logf func(format string, args ...any)

	mu          sync.Mutex
	state       seesawpb.HAState
	since       time.Time
	transitions uint64
	config      *hapb.Config       // last received from the engine; nil before
	pending     []*hapb.Transition // not yet delivered to the engine
	wake        chan struct{}      // signalled when pending grows
	speaker     *Speaker           // running, or the last one, for its counters
	cmds        []vrrpCmd          // for the VRRP loop
	cmdWake     chan struct{}

	// A restart for a reload (Config.Restart).
	resumeFrom   time.Time        // the engine's Resume, for the first speaker
	speakerRan   bool             // a speaker has started: Resume comes too late
	restarting   *hapb.Restarting // set once, before restartReady closes
	restartReady chan struct{}    // closed when restarting is set
	restartDone  chan struct{}    // closed when the engine has it (or could not)
	restartOnce  sync.Once
	sessionUp    atomic.Bool // an engine session is established

	// An engine restart for a reload (EngineRestarting).
	engineWithin time.Duration // the notice's grace; 0: no notice on this session
	graceGen     uint64        // bumped by every new session: stale grace timers do nothing
}

// maxPending bounds the transitions kept for an engine that is away; the
// current state goes with every status report anyway.
const maxPending = 16

func newNode(comp *ipc.Component, cfg Config, logf func(string, ...any)) *node {
	return &node{
		comp: comp, cfg: cfg, logf: logf,
		state: seesawpb.HAState_HA_STATE_UNKNOWN, since: time.Now(),
		wake: make(chan struct{}, 1), cmdWake: make(chan struct{}, 1),
		restartReady: make(chan struct{}), restartDone: make(chan struct{}),
	}
}

// transition moves to state and queues the transition for the engine.
func (n *node) transition(to seesawpb.HAState, reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if to == n.state {
		return
	}
	now := time.Now()
	t := &hapb.Transition{From: n.state, To: to, Time: timestamppb.New(now), Reason: reason}
	glog.Infof("ha: %v -> %v: %s", n.state, to, reason)
	n.state, n.since = to, now
	n.transitions++
	n.pending = append(n.pending, t)
	if len(n.pending) > maxPending {
		n.pending = n.pending[len(n.pending)-maxPending:]
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// takePending returns the transitions not yet sent and forgets them.
func (n *node) takePending() []*hapb.Transition {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.pending
	n.pending = nil
	return p
}

// requeue puts back transitions whose send failed, ahead of newer ones.
func (n *node) requeue(ts []*hapb.Transition) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pending = append(ts, n.pending...)
	if len(n.pending) > maxPending {
		n.pending = n.pending[len(n.pending)-maxPending:]
	}
}

// status is HA's status as both the engine and GetStatus see it.
func (n *node) status() *hapb.Status {
	n.mu.Lock()
	st := &hapb.Status{
		State:       n.state,
		Since:       timestamppb.New(n.since),
		LastUpdate:  timestamppb.Now(),
		Transitions: n.transitions,
	}
	sp := n.speaker
	n.mu.Unlock()
	if sp != nil {
		s := sp.Stats()
		st.AdvertsSent = s.AdvertsSent
		st.AdvertsReceived = s.AdvertsReceived
		st.Dropped = map[string]uint64{}
		for r, c := range s.Dropped {
			st.Dropped[string(r)] = c
		}
		if s.MasterAddr.IsValid() {
			st.MasterAddress = s.MasterAddr.String()
			st.MasterPriority = uint32(s.MasterPriority)
		}
		st.SendErrors, st.ReceiveErrors, st.LastError = s.SendErrors, s.ReceiveErrors, s.LastError
		st.DualMaster = s.DualMaster
		if d := s.LastDualMaster; d != nil {
			st.Warning = d.String()
		}
		if s.MasterAdvertInterval > 0 {
			st.MasterAdvertInterval = durationpb.New(s.MasterAdvertInterval)
		}
		if s.MasterDownInterval > 0 {
			st.MasterDownInterval = durationpb.New(s.MasterDownInterval)
		}
		st.Priority = uint32(s.Priority)
		st.PriorityZeroReceived = s.Priority0Received
		st.AddressListMismatch = s.AddressListMismatch
	}
	st.Facilities = n.comp.Snapshot().Facilities
	return st
}

// GetStatus implements the HA service.
func (n *node) GetStatus(context.Context, *hapb.GetStatusRequest) (*hapb.Status, error) {
	return n.status(), nil
}

// setConfig records the engine's parameters and has the VRRP loop apply
// them.
func (n *node) setConfig(c *hapb.Config) {
	n.mu.Lock()
	changed := !proto.Equal(n.config, c)
	n.config = c
	n.mu.Unlock()
	if changed {
		glog.Infof("ha: config from engine: enabled=%v interface=%q vrid=%d priority=%d local=%s peers=%v unicast=%v interval=%v preempt=%v addresses=%v",
			c.Enabled, c.Interface, c.Vrid, c.Priority, c.LocalAddress, c.Peers, c.Unicast, c.AdvertInterval.AsDuration(), c.Preempt, c.Addresses)
	}
	n.comp.SetDetail("config", fmt.Sprintf("enabled=%v interface=%s vrid=%d priority=%d local=%s peers=%s",
		c.Enabled, c.Interface, c.Vrid, c.Priority, c.LocalAddress, strings.Join(c.Peers, ",")))
	if !c.Enabled {
		n.post(vrrpCmd{stop: true, state: seesawpb.HAState_HA_STATE_DISABLED, reason: "HA disabled for this node in the cluster config"})
		return
	}
	p, err := ParamsFromProto(c, n.cfg.LookupAddr)
	if err != nil {
		n.post(vrrpCmd{stop: true, state: seesawpb.HAState_HA_STATE_ERROR, reason: err.Error()})
		return
	}
	n.post(vrrpCmd{params: &p})
}

// vrrpCmd is a request to the VRRP loop: run with params, stop (and enter
// state), or relinquish.
type vrrpCmd struct {
	params     *Params
	stop       bool
	state      seesawpb.HAState
	reason     string
	relinquish bool
	handoff    bool // stop for a restart (Config.Restart)
}

func (n *node) post(c vrrpCmd) {
	n.mu.Lock()
	n.cmds = append(n.cmds, c)
	n.mu.Unlock()
	select {
	case n.cmdWake <- struct{}{}:
	default:
	}
}

func (n *node) takeCmds() []vrrpCmd {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.cmds
	n.cmds = nil
	return c
}

// vrrpLoop owns the speaker: it starts, updates, restarts and stops it as
// commands arrive, and retries a socket that would not open. On ctx done it
// stops the speaker (a master steps down with a priority-0 advert).
func (n *node) vrrpLoop(ctx context.Context) {
	var (
		sp     *Speaker
		params Params
		cancel context.CancelCauseFunc
		done   chan struct{}
		want   *Params // what to run; nil for nothing
		retry  <-chan time.Time
	)
	stopWith := func(cause error) {
		if sp == nil {
			return
		}
		cancel(cause)
		<-done
		sp, cancel, done = nil, nil, nil
	}
	stop := func(why string) { stopWith(fmt.Errorf("%s", why)) }
	start := func() {
		retry = nil
		p := *want
		conn, err := n.cfg.OpenConn(ConnConfig{Interface: p.Interface, Local: p.VRRP.Local, Multicast: !p.VRRP.Unicast})
		if err == nil {
			sp, err = NewSpeaker(p.Interface, p.VRRP, conn, SpeakerOptions{
				Logf:         n.logf,
				Debugf:       func(f string, a ...any) { glog.V(2).Infof(f, a...) },
				OnTransition: n.onVRRPTransition,
				ResumeFrom:   n.takeResume(),
			})
			if err != nil {
				conn.Close()
			}
		}
		if err != nil {
			sp = nil
			n.comp.SetFacility("vrrp", false, err.Error())
			n.transition(seesawpb.HAState_HA_STATE_ERROR, err.Error())
			n.logf("%v; retrying in %v", err, n.cfg.RetryMax)
			retry = time.After(n.cfg.RetryMax)
			return
		}
		params = p
		n.mu.Lock()
		n.speaker = sp
		n.mu.Unlock()
		mode := "multicast " + vrrp.Group(p.VRRP.Local).String()
		if p.VRRP.Unicast {
			mode = fmt.Sprintf("unicast to %v", p.VRRP.Peers)
		}
		n.comp.SetFacility("vrrp", true, fmt.Sprintf("VRRPv3 VRID %d priority %d on %s from %v, %s, every %v",
			p.VRRP.VRID, p.VRRP.Priority, p.Interface, p.VRRP.Local, mode, p.VRRP.Interval))
		var sctx context.Context
		sctx, cancel = context.WithCancelCause(context.Background())
		done = make(chan struct{})
		go func(sp *Speaker, done chan struct{}) {
			defer close(done)
			sp.Run(sctx)
		}(sp, done)
	}
	defer func() { stop("HA stopping") }()
	for {
		select {
		case <-ctx.Done():
			stop("HA stopping")
			n.transition(seesawpb.HAState_HA_STATE_SHUTDOWN, "HA stopping")
			return
		case <-retry:
			if want != nil && sp == nil {
				start()
			}
		case <-n.cmdWake:
			for _, c := range n.takeCmds() {
				switch {
				case c.handoff:
					n.handoff(sp, params, stopWith)
					// HA is exiting: nothing more to run, and no SHUTDOWN.
					<-ctx.Done()
					return
				case c.relinquish:
					if sp == nil {
						n.logf("ha: relinquish (%s): no speaker running; nothing to give up", c.reason)
						continue
					}
					n.logf("ha: relinquishing mastership: %s", c.reason)
					sp.Relinquish(c.reason)
				case c.stop:
					want, retry = nil, nil
					stop(c.reason)
					if c.state == seesawpb.HAState_HA_STATE_ERROR {
						n.comp.SetFacility("vrrp", false, c.reason)
					} else {
						n.comp.SetFacility("vrrp", true, "not speaking: "+c.reason)
					}
					n.transition(c.state, c.reason)
				case c.params != nil:
					want = c.params
					if sp != nil && params.sameSocket(*want) {
						if err := sp.Update(want.VRRP); err == nil {
							params = *want
							continue
						}
					}
					stop("restarting with a new configuration")
					start()
				}
			}
		}
	}
}

// handoff stops the speaker for a restart (vrrp.Machine.Handoff: no
// priority-0 advert) and has the engine session send Restarting.
func (n *node) handoff(sp *Speaker, params Params, stopWith func(error)) {
	r := &hapb.Restarting{Reason: "restarting for a reload"}
	if sp != nil {
		r.AdvertInterval = durationpb.New(params.VRRP.Interval)
	}
	stopWith(ErrRestart)
	n.mu.Lock()
	r.State = n.state
	if sp != nil && r.State == seesawpb.HAState_HA_STATE_LEADER {
		if last := sp.Stats().LastAdvert; !last.IsZero() {
			r.LastAdvert = timestamppb.New(last)
		}
	}
	n.restarting = r
	n.mu.Unlock()
	glog.Infof("ha: stopped speaking for a restart in state %v (last advert %v); telling the engine", r.State, r.LastAdvert.AsTime())
	close(n.restartReady)
}

// setResume records the engine's Resume for the first speaker; an HA that
// has already run one ignores it (its mastership is its own business by
// then, and the peer's).
func (n *node) setResume(r *hapb.Resume) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.speakerRan {
		glog.Warningf("ha: ignoring the engine's resume (%s): a speaker has already run", r.GetReason())
		return
	}
	n.resumeFrom = r.GetLastAdvert().AsTime()
	glog.Infof("ha: this node was master before a restart (%s); last advert at %v", r.GetReason(), n.resumeFrom)
}

// takeResume is the resume the next speaker starts from (zero: none); only
// the first speaker gets one.
func (n *node) takeResume() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.resumeFrom
	n.resumeFrom, n.speakerRan = time.Time{}, true
	return r
}

// restart runs a restart for a reload: the VRRP loop hands off, the engine
// session reports it, and then cancel ends HA. Without an engine session
// (nobody to resume from) it is a plain stop.
func (n *node) restart(cancel context.CancelCauseFunc) {
	if !n.sessionUp.Load() {
		glog.Warningf("ha: restart asked for with no engine session open: stopping as for a stop (stepping down)")
		cancel(errors.New("restart without an engine session"))
		return
	}
	glog.Infof("ha: restarting for a reload: keeping mastership for the next HA")
	n.post(vrrpCmd{handoff: true})
	select {
	case <-n.restartDone:
	case <-time.After(restartWait):
		glog.Warningf("ha: the engine did not take the restart report within %v; exiting anyway", restartWait)
	}
	cancel(ErrRestart)
}

// onVRRPTransition reports the speaker's states to the engine.
func (n *node) onVRRPTransition(t vrrp.Transition) {
	switch t.To {
	case vrrp.Master:
		n.transition(seesawpb.HAState_HA_STATE_LEADER, t.Reason)
	case vrrp.Backup:
		n.transition(seesawpb.HAState_HA_STATE_BACKUP, t.Reason)
	}
	// Initialize: the VRRP loop stopped the speaker and reports why.
}

// newComponent sets up the status that both modes serve.
func newComponent() *ipc.Component {
	comp := ipc.NewComponent("ha")
	if err := checkRawSocket(); err != nil {
		comp.SetFacility("raw-socket", false, err.Error())
		glog.Warningf("%v", err)
	} else {
		comp.SetFacility("raw-socket", true, "raw IP protocol 112 socket opens (CAP_NET_RAW)")
	}
	return comp
}

func (n *node) hook(st *seesawpb.ComponentStatus) {
	n.mu.Lock()
	defer n.mu.Unlock()
	st.Details["state"] = n.state.String()
	st.Details["since"] = n.since.UTC().Format(time.RFC3339)
}

// serve serves the HA and Component services on path until ctx is done.
func (n *node) newServer(path string) (*ipc.Server, error) {
	srv, err := ipc.NewServer(ipc.ServerOptions{
		Path: path,
		// Status only: any local user who can reach the socket may read it.
		DirMode:    0o755,
		SocketMode: 0o666,
		Policy:     ipc.Policy{Read: ipc.Rule{Anyone: true}},
		Logf:       glog.Warningf,
	})
	if err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	hapb.RegisterHAServer(srv, n)
	seesawpb.RegisterComponentServer(srv, n.comp)
	return srv, nil
}

// Run serves HA until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	comp := newComponent()
	comp.SetFacility("vrrp", false, "waiting for the engine's HA config")
	comp.SetFacility("engine", false, "not connected yet to "+cfg.EngineSocket)
	comp.SetDetail("socket", cfg.Socket)
	comp.SetDetail("engine_socket", cfg.EngineSocket)
	n := newNode(comp, cfg, glog.Infof)
	comp.SetHook(n.hook)

	srv, err := n.newServer(cfg.Socket)
	if err != nil {
		return err
	}
	cc, err := ipc.Dial(cfg.EngineSocket, ipc.DialOptions{MaxBackoff: cfg.RetryMax})
	if err != nil {
		return fmt.Errorf("ha: %w", err)
	}
	defer cc.Close()
	glog.Infof("ha: serving on %s; engine at %s", cfg.Socket, cfg.EngineSocket)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	if cfg.Restart != nil {
		go func() {
			select {
			case <-cfg.Restart:
				n.restart(cancel)
			case <-ctx.Done():
			}
		}()
	}
	wg.Go(func() { n.vrrpLoop(ctx) })
	wg.Go(func() { n.engineLoop(ctx, cc, cfg) })
	err = srv.Serve(ctx, 2*time.Second)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("ha: %w", err)
	}
	glog.Infof("ha: stopped")
	return nil
}

// engineLoop keeps a session with the engine open until ctx is done. When
// a session breaks, the speaker stops (a master steps down with a
// priority-0 advert): without its engine a node cannot serve, and must not
// take mastership either, until the engine is back and sends its config.
// The exception is an engine that said it was restarting for a reload
// (EngineRestarting): HA speaks on for the grace it gave (awaitEngine).
func (n *node) engineLoop(ctx context.Context, cc *grpc.ClientConn, cfg Config) {
	retry := cfg.RetryMin
	for ctx.Err() == nil {
		established, err := n.session(ctx, cc, cfg)
		n.sessionUp.Store(false)
		if ctx.Err() != nil || errors.Is(err, ErrRestart) {
			return
		}
		if established {
			retry = cfg.RetryMin
			if !n.awaitEngine(err) {
				n.post(vrrpCmd{stop: true, state: seesawpb.HAState_HA_STATE_SHUTDOWN, reason: "engine session lost: " + err.Error()})
			}
		}
		n.comp.SetFacility("engine", false, fmt.Sprintf("session with the engine broke: %v; reconnecting", err))
		n.comp.SetDetail("engine_session_error", err.Error())
		glog.Warningf("ha: engine session: %v; retrying in %v", err, retry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, cfg.RetryMax)
	}
}

// awaitEngine handles a lost session after the engine said it was
// restarting for a reload: HA keeps speaking, as master too, and steps
// down only if no new session is established within the notice's grace.
// It reports whether the engine had said so.
func (n *node) awaitEngine(lost error) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	within := n.engineWithin
	n.engineWithin = 0
	if within <= 0 {
		return false
	}
	gen := n.graceGen
	glog.Infof("ha: engine session ended (%v) for the engine's restart: speaking on for up to %v", lost, within)
	time.AfterFunc(within, func() {
		n.mu.Lock()
		stale := n.graceGen != gen
		n.mu.Unlock()
		if stale {
			return
		}
		n.post(vrrpCmd{stop: true, state: seesawpb.HAState_HA_STATE_SHUTDOWN,
			reason: fmt.Sprintf("engine session lost: the restarted engine was not back within %v", within)})
	})
	return true
}

// session runs one HASession stream. established is true once the engine
// answered (sent its first command), so that a session that worked resets
// the backoff and one refused at once does not.
func (n *node) session(ctx context.Context, cc *grpc.ClientConn, cfg Config) (established bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := enginepb.NewEngineClient(cc).HASession(sctx, grpc.WaitForReady(true))
	if err != nil {
		return false, fmt.Errorf("open HASession: %w", err)
	}
	send := func(r *hapb.Report) error {
		if err := stream.Send(r); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		return nil
	}
	sendPending := func() error {
		ts := n.takePending()
		for i, t := range ts {
			if err := send(&hapb.Report{Report: &hapb.Report_Transition{Transition: t}}); err != nil {
				n.requeue(ts[i:])
				return err
			}
		}
		return nil
	}
	// The engine learns the current state at once, then what happened while
	// it was away.
	if err := send(&hapb.Report{Report: &hapb.Report_Status{Status: n.status()}}); err != nil {
		return false, err
	}
	if err := sendPending(); err != nil {
		return false, err
	}

	cmds := make(chan *hapb.Command)
	recvErr := make(chan error, 1)
	go func() {
		for {
			c, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case cmds <- c:
			case <-sctx.Done():
				return
			}
		}
	}()

	tick := time.NewTicker(cfg.StatusInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stream.CloseSend()
			return established, ctx.Err()
		case err := <-recvErr:
			return established, fmt.Errorf("receive: %w", err)
		case c := <-cmds:
			if !established {
				established = true
				n.comp.SetFacility("engine", true, "HASession open to "+cfg.EngineSocket)
				n.comp.SetDetail("engine_session_error", "")
				glog.Infof("ha: engine session established")
				n.sessionUp.Store(true)
				n.mu.Lock()
				n.graceGen++ // the engine is back: no step-down for its restart
				n.mu.Unlock()
			}
			switch c := c.Command.(type) {
			case *hapb.Command_Resume:
				n.setResume(c.Resume)
			case *hapb.Command_EngineRestarting:
				within := c.EngineRestarting.GetWithin().AsDuration()
				glog.Infof("ha: the engine is restarting (%s): keeping on for up to %v without it", c.EngineRestarting.GetReason(), within)
				n.mu.Lock()
				n.engineWithin = within
				n.mu.Unlock()
			case *hapb.Command_Config:
				n.setConfig(c.Config)
			case *hapb.Command_Relinquish:
				n.comp.SetDetail("last_relinquish", time.Now().UTC().Format(time.RFC3339)+" "+c.Relinquish.GetReason())
				n.post(vrrpCmd{relinquish: true, reason: c.Relinquish.GetReason()})
			default:
				glog.Warningf("ha: unknown command from engine: %v", c)
			}
		case <-n.wake:
			if err := sendPending(); err != nil {
				return established, err
			}
		case <-tick.C:
			if err := send(&hapb.Report{Report: &hapb.Report_Status{Status: n.status()}}); err != nil {
				return established, err
			}
		case <-n.restartReady:
			return established, n.sendRestarting(ctx, stream, cmds, recvErr)
		}
	}
}

// sendRestarting sends HA's last word before a restart and waits for the
// engine to end the session, which it does only after taking every report
// before the end; restartDone then tells restart that HA may exit.
func (n *node) sendRestarting(ctx context.Context, stream grpc.BidiStreamingClient[hapb.Report, hapb.Command], cmds <-chan *hapb.Command, recvErr <-chan error) error {
	defer n.restartOnce.Do(func() { close(n.restartDone) })
	n.mu.Lock()
	r := n.restarting
	n.mu.Unlock()
	if err := stream.Send(&hapb.Report{Report: &hapb.Report_Restarting{Restarting: r}}); err != nil {
		glog.Warningf("ha: could not tell the engine about the restart: %v", err)
		return ErrRestart
	}
	stream.CloseSend()
	for {
		select {
		case <-recvErr:
			return ErrRestart
		case <-cmds: // too late for commands
		case <-ctx.Done():
			return ErrRestart
		}
	}
}
