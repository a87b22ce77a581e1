// Package ha is the high-availability daemon: the VRRPv3 speaker that decides
// whether this node is master (LEADER) or BACKUP and tells the engine.
//
// This build is the skeleton: there is no VRRP speaker yet, so the state is
// DISABLED and the status says so. What is real is the plumbing the speaker
// will use: the HASession stream to the engine (receive the Config and
// relinquish requests, report transitions at once and status periodically,
// reconnect with backoff when the stream breaks), the HA status service on
// its own socket, and the CAP_NET_RAW check.
package ha

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

const (
	// DefaultSocket is where HA serves its status.
	DefaultSocket = "/var/run/seesaw/ha/ha.sock"
	// DefaultEngineSocket is where HA finds the engine.
	DefaultEngineSocket = "/var/run/seesaw/engine/engine.sock"
)

// noSpeaker is why the state is DISABLED in this build.
const noSpeaker = "VRRP speaker not in this build"

// Config is what HA runs with.
type Config struct {
	Socket       string
	EngineSocket string
	// StatusInterval is how often HA reports its status to the engine
	// (Seesaw v2 used 3s). Transitions are reported at once.
	StatusInterval time.Duration
	// RetryMin and RetryMax bound the wait between attempts to reopen a
	// broken engine session (defaults 100ms and 5s).
	RetryMin, RetryMax time.Duration
}

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
}

// node is HA's state, shared by the engine session and the status service.
type node struct {
	hapb.UnimplementedHAServer
	comp *ipc.Component

	mu          sync.Mutex
	state       seesawpb.HAState
	since       time.Time
	transitions uint64
	config      *hapb.Config       // last received from the engine; nil before
	pending     []*hapb.Transition // not yet delivered to the engine
	wake        chan struct{}      // signalled when pending grows
}

// maxPending bounds the transitions kept for an engine that is away; the
// current state goes with every status report anyway.
const maxPending = 16

func newNode(comp *ipc.Component) *node {
	return &node{comp: comp, state: seesawpb.HAState_HA_STATE_UNKNOWN, since: time.Now(), wake: make(chan struct{}, 1)}
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
	n.mu.Unlock()
	st.Facilities = n.comp.Snapshot().Facilities
	return st
}

// GetStatus implements the HA service.
func (n *node) GetStatus(context.Context, *hapb.GetStatusRequest) (*hapb.Status, error) {
	return n.status(), nil
}

// setConfig records the engine's parameters. With no speaker there is
// nothing to apply them to; they are kept and shown.
func (n *node) setConfig(c *hapb.Config) {
	n.mu.Lock()
	changed := !proto.Equal(n.config, c)
	n.config = c
	n.mu.Unlock()
	if changed {
		glog.Infof("ha: config from engine: enabled=%v interface=%q vrid=%d priority=%d local=%s peers=%v (not applied: %s)",
			c.Enabled, c.Interface, c.Vrid, c.Priority, c.LocalAddress, c.Peers, noSpeaker)
	}
	n.comp.SetDetail("config", fmt.Sprintf("enabled=%v interface=%s vrid=%d priority=%d local=%s peers=%s",
		c.Enabled, c.Interface, c.Vrid, c.Priority, c.LocalAddress, strings.Join(c.Peers, ",")))
}

// Run serves HA until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	comp := ipc.NewComponent("ha")
	comp.SetFacility("vrrp", false, noSpeaker)
	if err := checkRawSocket(); err != nil {
		comp.SetFacility("raw-socket", false, err.Error())
		glog.Warningf("%v", err)
	} else {
		comp.SetFacility("raw-socket", true, "raw IP protocol 112 socket opens (CAP_NET_RAW)")
	}
	comp.SetFacility("engine", false, "not connected yet to "+cfg.EngineSocket)
	comp.SetDetail("socket", cfg.Socket)
	comp.SetDetail("engine_socket", cfg.EngineSocket)
	n := newNode(comp)
	n.transition(seesawpb.HAState_HA_STATE_DISABLED, noSpeaker)
	comp.SetHook(func(st *seesawpb.ComponentStatus) {
		n.mu.Lock()
		defer n.mu.Unlock()
		st.Details["state"] = n.state.String()
		st.Details["since"] = n.since.UTC().Format(time.RFC3339)
	})

	srv, err := ipc.NewServer(ipc.ServerOptions{
		Path: cfg.Socket,
		// Status only: any local user who can reach the socket may read it.
		DirMode:    0o755,
		SocketMode: 0o666,
		Policy:     ipc.Policy{Read: ipc.Rule{Anyone: true}},
		Logf:       glog.Warningf,
	})
	if err != nil {
		return fmt.Errorf("ha: %w", err)
	}
	hapb.RegisterHAServer(srv, n)
	seesawpb.RegisterComponentServer(srv, comp)
	cc, err := ipc.Dial(cfg.EngineSocket, ipc.DialOptions{MaxBackoff: cfg.RetryMax})
	if err != nil {
		return fmt.Errorf("ha: %w", err)
	}
	defer cc.Close()
	glog.Infof("ha: serving on %s; engine at %s", cfg.Socket, cfg.EngineSocket)

	var wg sync.WaitGroup
	wg.Go(func() { n.engineLoop(ctx, cc, cfg) })
	err = srv.Serve(ctx, 2*time.Second)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("ha: %w", err)
	}
	glog.Infof("ha: stopped")
	return nil
}

// engineLoop keeps a session with the engine open until ctx is done.
func (n *node) engineLoop(ctx context.Context, cc *grpc.ClientConn, cfg Config) {
	retry := cfg.RetryMin
	for ctx.Err() == nil {
		established, err := n.session(ctx, cc, cfg)
		if ctx.Err() != nil {
			return
		}
		if established {
			retry = cfg.RetryMin
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
			}
			switch c := c.Command.(type) {
			case *hapb.Command_Config:
				n.setConfig(c.Config)
			case *hapb.Command_Relinquish:
				glog.Warningf("ha: engine asked to relinquish mastership (%s): %s, this node is never master; nothing to give up",
					c.Relinquish.GetReason(), noSpeaker)
				n.comp.SetDetail("last_relinquish", time.Now().UTC().Format(time.RFC3339)+" "+c.Relinquish.GetReason())
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
		}
	}
}
