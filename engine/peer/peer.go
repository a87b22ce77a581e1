// Package peer is peer sync: the link between the two engines of a pair,
// on TCP 10258 of each node address (Seesaw's port). Each engine serves
// the Peer service and watches the other's: it receives the peer's view
// (HA state, config version, failing checks, healthy destinations and
// overrides) whenever it changes, asks the peer to fail over, and fetches
// its running config for the "peer" config source.
//
// Seesaw's sync was unauthenticated (only the source address was looked
// at), yet the peer can change what this node serves. Here both ends prove
// themselves with mutual TLS: the certificate must chain to the cluster CA
// and name the node's address (IP SAN), and the connection must come from
// the configured peer address. Anything else is refused and logged. With no
// certificate files peer sync is off, and the status says why.
package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
)

// DefaultPort is Seesaw's peer sync port.
const DefaultPort = 10258

// MaxMessageSize bounds a message from the peer (its config, at most).
const MaxMessageSize = 64 << 20

// Settings say where peer sync runs. The engine derives them from
// seesaw.cfg; a change restarts peer sync.
type Settings struct {
	// Disabled, when set, is why peer sync is off (no peer configured).
	Disabled string
	Name     string       // this node's fqdn, for the peer's logs
	Node     []netip.Addr // this node's addresses: served on; the first is dialled from
	Peer     []netip.Addr // the peer's: the first is dialled, all are accepted
	Port     int
	SSLDir   string // ca.crt, seesaw.crt, seesaw.key
}

// Local is the engine as peer sync sees it.
type Local interface {
	// View is this engine's view now, for the peer.
	View() *enginepb.PeerView
	// PeerView takes the peer's view (its overrides to merge).
	PeerView(*enginepb.PeerView)
	// Failover gives up mastership for the peer; an error if this node is
	// not the master.
	Failover(ctx context.Context, reason string) (string, error)
	// Config is the running config, for the peer.
	Config() (*enginepb.PeerConfigResponse, error)
}

// Options tune peer sync; the zero value is the production timing.
type Options struct {
	Heartbeat  time.Duration // a view is sent at least this often (2s); 3 missed: unreachable
	Poll       time.Duration // the view is looked at for changes this often (250ms), and at each Notify
	BackoffMin time.Duration // reconnect backoff (100ms up to 5s)
	BackoffMax time.Duration
	Logf       func(format string, args ...any)
	Now        func() time.Time
}

func (o *Options) setDefaults() {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 2 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 100 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Sync runs peer sync for one engine.
type Sync struct {
	local Local
	o     Options

	mu      sync.Mutex
	st      *enginepb.PeerStatus
	client  enginepb.PeerClient // nil while not connected
	changed chan struct{}       // closed (and replaced) by Notify
}

// Notify says that this engine's view may have changed: the watchers look
// at once rather than at their next poll.
func (s *Sync) Notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *Sync) changedCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// New returns peer sync for local; Run starts it.
func New(local Local, o Options) *Sync {
	o.setDefaults()
	return &Sync{local: local, o: o, st: &enginepb.PeerStatus{DisabledReason: "not started"}, changed: make(chan struct{})}
}

// Status is peer sync's state and the peer's last view.
func (s *Sync) Status() *enginepb.PeerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := proto.Clone(s.st).(*enginepb.PeerStatus)
	if st.Enabled && st.ViewAt != nil && s.o.Now().Sub(st.ViewAt.AsTime()) > 3*s.o.Heartbeat {
		st.Connected = false
	}
	return st
}

func (s *Sync) update(f func(st *enginepb.PeerStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.st)
}

// Run runs peer sync until ctx is done. settings gives the current
// settings and a channel closed when they may have changed; peer sync
// restarts when they did.
func (s *Sync) Run(ctx context.Context, settings func() (Settings, <-chan struct{})) {
	var (
		cur   Settings
		stop  = func() {}
		done  chan struct{}
		first = true
	)
	defer func() {
		stop()
		if done != nil {
			<-done
		}
	}()
	for {
		st, changed := settings()
		if first || !st.equal(cur) {
			first = false
			stop()
			if done != nil {
				<-done
			}
			cur = st
			sctx, cancel := context.WithCancel(ctx)
			stop = cancel
			done = make(chan struct{})
			go func() {
				defer close(done)
				s.session(sctx, st)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func (a Settings) equal(b Settings) bool {
	return a.Disabled == b.Disabled && a.Name == b.Name && a.Port == b.Port && a.SSLDir == b.SSLDir &&
		slicesEqual(a.Node, b.Node) && slicesEqual(a.Peer, b.Peer)
}

func slicesEqual(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// session runs peer sync with one set of settings until ctx is done. When
// it cannot start (no certificates, an address it cannot listen on) it
// says why and tries again now and then, so that certificates installed
// later are found.
func (s *Sync) session(ctx context.Context, st Settings) {
	peerAddr := ""
	if len(st.Peer) > 0 {
		peerAddr = net.JoinHostPort(st.Peer[0].String(), strconv.Itoa(st.Port))
	}
	s.update(func(ps *enginepb.PeerStatus) {
		*ps = enginepb.PeerStatus{Address: peerAddr, Refused: ps.Refused, LastRefused: ps.LastRefused, LastRefusedAt: ps.LastRefusedAt,
			HealthFailover: ps.HealthFailover}
	})
	if st.Disabled == "" && (len(st.Node) == 0 || len(st.Peer) == 0) {
		st.Disabled = "no node or peer address"
	}
	if st.Disabled != "" {
		s.update(func(ps *enginepb.PeerStatus) { ps.DisabledReason = st.Disabled })
		s.o.Logf("peer sync is off: %s", st.Disabled)
		<-ctx.Done()
		return
	}
	retry := s.o.BackoffMax
	for {
		err := s.serve(ctx, st)
		if ctx.Err() != nil {
			return
		}
		s.update(func(ps *enginepb.PeerStatus) {
			ps.Enabled, ps.Connected, ps.DisabledReason = false, false, err.Error()
		})
		s.o.Logf("peer sync is off: %v", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(retry*2, 30*time.Second)
	}
}

// serve runs the server and the client of one session; it returns when it
// cannot start, or when ctx is done.
func (s *Sync) serve(ctx context.Context, st Settings) error {
	tc, err := loadTLS(st.SSLDir)
	if err != nil {
		return err
	}
	creds := &guard{TransportCredentials: tc.serverCreds(), allowed: st.Peer, refuse: s.refused}
	// The server pings a quiet client, so that a peer that died without
	// closing its connection does not hold a stream for TCP's timeout.
	srv := grpc.NewServer(grpc.Creds(creds), grpc.MaxRecvMsgSize(1<<20),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 5 * s.o.Heartbeat, Timeout: 5 * s.o.Heartbeat}))
	enginepb.RegisterPeerServer(srv, &server{s: s})
	// The first address (IPv4, the one dialled) must serve; another
	// (IPv6, which may still be tentative) is served when it can be.
	var lis []net.Listener
	for i, a := range st.Node {
		l, err := net.Listen("tcp", net.JoinHostPort(a.String(), strconv.Itoa(st.Port)))
		if err != nil && i == 0 {
			return fmt.Errorf("peer: listen: %w", err)
		}
		if err != nil {
			s.o.Logf("peer sync: not serving on %s: %v", a, err)
			continue
		}
		lis = append(lis, l)
	}
	var listen string
	for i, l := range lis {
		if i > 0 {
			listen += ", "
		}
		listen += l.Addr().String()
	}
	s.update(func(ps *enginepb.PeerStatus) {
		ps.Enabled, ps.DisabledReason, ps.Listen = true, "", listen
		ps.UnreachableSince = timestamppb.New(s.o.Now())
		ps.LastError = "not connected yet"
	})
	s.o.Logf("peer sync: serving on %s, peer %s", listen, st.Peer[0])
	var wg sync.WaitGroup
	for _, l := range lis {
		wg.Go(func() { srv.Serve(l) })
	}
	wg.Go(func() { s.watch(ctx, st, tc) })
	<-ctx.Done()
	srv.Stop()
	wg.Wait()
	return nil
}

// watch keeps a Watch stream open to the peer, reconnecting with backoff.
func (s *Sync) watch(ctx context.Context, st Settings, tc *tlsFiles) {
	target := net.JoinHostPort(st.Peer[0].String(), strconv.Itoa(st.Port))
	retry := s.o.BackoffMin
	for ctx.Err() == nil {
		got, err := s.watchOnce(ctx, st, tc, target)
		if ctx.Err() != nil {
			return
		}
		if got {
			retry = s.o.BackoffMin
		}
		s.unreachable(target, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(retry*2, s.o.BackoffMax)
	}
}

func (s *Sync) unreachable(target string, err error) {
	msg := status.Convert(err).Message()
	s.mu.Lock()
	first := s.st.UnreachableSince == nil
	if first {
		s.st.UnreachableSince = timestamppb.New(s.o.Now())
	}
	same := s.st.LastError == msg
	s.st.Connected, s.st.LastError = false, msg
	s.client = nil
	s.mu.Unlock()
	if first || !same {
		s.o.Logf("peer sync: peer %s unreachable: %s", target, msg)
	}
}

// watchOnce is one connection to the peer: it returns when the stream
// breaks or goes quiet for three heartbeats, reporting whether any view
// came.
func (s *Sync) watchOnce(ctx context.Context, st Settings, tc *tlsFiles, target string) (bool, error) {
	cc, err := grpc.NewClient("passthrough:///"+target,
		grpc.WithTransportCredentials(tc.clientCreds(st.Peer[0])),
		// The peer's running config can be larger than gRPC's default 4 MiB.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: st.Node[0].AsSlice()}, Timeout: 5 * time.Second}
			return d.DialContext(ctx, "tcp", addr)
		}),
	)
	if err != nil {
		return false, err
	}
	defer cc.Close()
	client := enginepb.NewPeerClient(cc)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Watch(wctx, &enginepb.PeerWatchRequest{Node: st.Name}, grpc.WaitForReady(false))
	if err != nil {
		return false, err
	}
	// A watchdog cancels the stream when it goes quiet (a peer that died
	// without closing its connection).
	alive := make(chan struct{}, 1)
	go func() {
		t := time.NewTimer(3 * s.o.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-alive:
				t.Reset(3 * s.o.Heartbeat)
			case <-t.C:
				cancel()
				return
			}
		}
	}()
	got := false
	for {
		v, err := stream.Recv()
		if err != nil {
			if ctx.Err() == nil && wctx.Err() != nil {
				err = errors.New("no view from the peer for three heartbeats")
			}
			return got, err
		}
		select {
		case alive <- struct{}{}:
		default:
		}
		now := s.o.Now()
		s.mu.Lock()
		if !got && s.st.UnreachableSince != nil {
			s.o.Logf("peer sync: connected to %s (node %s, %v)", target, v.Node, v.HaState)
		}
		got = true
		s.st.Connected, s.st.UnreachableSince, s.st.LastError = true, nil, ""
		s.st.View, s.st.ViewAt = v, timestamppb.New(now)
		s.client = client
		s.mu.Unlock()
		s.local.PeerView(v)
	}
}

// SetHealthNote records what failover on health sees, for the status.
func (s *Sync) SetHealthNote(note string) {
	s.update(func(ps *enginepb.PeerStatus) { ps.HealthFailover = note })
}

func (s *Sync) refused(addr string, err error) {
	s.o.Logf("peer sync: refused a connection from %s: %v", addr, err)
	s.update(func(ps *enginepb.PeerStatus) {
		ps.Refused++
		ps.LastRefused = fmt.Sprintf("%s: %v", addr, err)
		ps.LastRefusedAt = timestamppb.New(s.o.Now())
	})
}

// peerClient is the client of the connected peer, or an error saying why
// there is none.
func (s *Sync) peerClient() (enginepb.PeerClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.st.Enabled:
		return nil, status.Errorf(codes.FailedPrecondition, "peer sync is off: %s", s.st.DisabledReason)
	case s.client == nil:
		since := ""
		if s.st.UnreachableSince != nil {
			since = " since " + s.st.UnreachableSince.AsTime().UTC().Format(time.RFC3339)
		}
		return nil, status.Errorf(codes.Unavailable, "the peer %s is unreachable%s: %s", s.st.Address, since, s.st.LastError)
	}
	return s.client, nil
}

// Failover asks the peer to give up mastership.
func (s *Sync) Failover(ctx context.Context, reason string) (string, error) {
	c, err := s.peerClient()
	if err != nil {
		return "", err
	}
	resp, err := c.Failover(ctx, &enginepb.PeerFailoverRequest{Reason: reason})
	if err != nil {
		return "", err
	}
	return resp.Message, nil
}

// Config fetches the peer's running config.
func (s *Sync) Config(ctx context.Context) (*enginepb.PeerConfigResponse, error) {
	c, err := s.peerClient()
	if err != nil {
		return nil, err
	}
	return c.Config(ctx, &enginepb.PeerConfigRequest{})
}

// server is the Peer service this engine serves.
type server struct {
	enginepb.UnimplementedPeerServer
	s *Sync
}

func (p *server) Watch(req *enginepb.PeerWatchRequest, stream grpc.ServerStreamingServer[enginepb.PeerView]) error {
	s := p.s
	var last *enginepb.PeerView
	var lastSent time.Time
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	for {
		changed := s.changedCh()
		v := s.local.View()
		if last == nil || !proto.Equal(v, last) || time.Since(lastSent) >= s.o.Heartbeat {
			if err := stream.Send(v); err != nil {
				return err
			}
			last, lastSent = v, time.Now()
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-changed:
		case <-t.C:
		}
	}
}

func (p *server) Failover(ctx context.Context, req *enginepb.PeerFailoverRequest) (*enginepb.PeerFailoverResponse, error) {
	msg, err := p.s.local.Failover(ctx, req.Reason)
	if err != nil {
		return nil, err
	}
	return &enginepb.PeerFailoverResponse{Message: msg}, nil
}

func (p *server) Config(context.Context, *enginepb.PeerConfigRequest) (*enginepb.PeerConfigResponse, error) {
	return p.s.local.Config()
}
