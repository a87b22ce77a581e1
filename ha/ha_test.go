package ha

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/seesawlb/seesaw/ha/vrrp"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

func TestMain(m *testing.M) {
	flag.Set("logtostderr", "true")
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	os.Exit(code)
}

// cleanups run after all tests.
var cleanups []func()

// fakeEngine serves HASession: it sends config, forwards every report to
// reports and sends whatever is put on commands.
type fakeEngine struct {
	enginepb.UnimplementedEngineServer
	config   *hapb.Config
	reports  chan *hapb.Report
	commands chan *hapb.Command
	// resumes: a master's Restarting report makes the next session start
	// with a Resume, as the engine does (engine/hastate.go).
	resumes bool
	resume  atomic.Pointer[hapb.Resume]
}

func (f *fakeEngine) HASession(s grpc.BidiStreamingServer[hapb.Report, hapb.Command]) error {
	if r := f.resume.Swap(nil); r != nil {
		if err := s.Send(&hapb.Command{Command: &hapb.Command_Resume{Resume: r}}); err != nil {
			return err
		}
	}
	if err := s.Send(&hapb.Command{Command: &hapb.Command_Config{Config: f.config}}); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				errc <- err
				return
			}
			if x := r.GetRestarting(); f.resumes && x != nil && x.State == seesawpb.HAState_HA_STATE_LEADER && x.LastAdvert != nil {
				f.resume.Store(&hapb.Resume{LastAdvert: x.LastAdvert, Reason: "test"})
			}
			f.reports <- r
		}
	}()
	for {
		select {
		case err := <-errc:
			return err
		case <-s.Context().Done():
			return s.Context().Err()
		case c := <-f.commands:
			if err := s.Send(c); err != nil {
				return err
			}
		}
	}
}

// startEngine serves a fake engine on sock until the returned stop is called.
func startEngine(t *testing.T, sock string, f *fakeEngine) (stop func()) {
	t.Helper()
	s, err := ipc.NewServer(ipc.ServerOptions{Path: sock, Policy: ipc.Policy{Read: ipc.Rule{Anyone: true}, Internal: ipc.Rule{Anyone: true}}})
	if err != nil {
		t.Fatal(err)
	}
	enginepb.RegisterEngineServer(s, f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, 100*time.Millisecond) }()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// engineView follows what the fake engine hears: the current state and
// every transition.
type engineView struct {
	t           *testing.T
	f           *fakeEngine
	state       seesawpb.HAState
	transitions []*hapb.Transition
	status      *hapb.Status
}

// waitState reads reports until the engine has seen state (by a
// transition), or fails at the deadline.
func (v *engineView) waitState(ctx context.Context, want seesawpb.HAState, reason string) *hapb.Transition {
	v.t.Helper()
	for {
		select {
		case r := <-v.f.reports:
			if st := r.GetStatus(); st != nil {
				v.status = st
			}
			if tr := r.GetTransition(); tr != nil {
				v.transitions = append(v.transitions, tr)
				v.state = tr.To
				if tr.To == want && strings.Contains(tr.Reason, reason) {
					return tr
				}
			}
		case <-ctx.Done():
			v.t.Fatalf("engine never heard %v (%q); transitions so far: %v", want, reason, v.transitions)
			return nil
		}
	}
}

// waitStatus reads reports until a status satisfies ok.
func (v *engineView) waitStatus(ctx context.Context, what string, ok func(*hapb.Status) bool) *hapb.Status {
	v.t.Helper()
	for {
		select {
		case r := <-v.f.reports:
			if tr := r.GetTransition(); tr != nil {
				v.transitions = append(v.transitions, tr)
			}
			if st := r.GetStatus(); st != nil {
				v.status = st
				if ok(st) {
					return st
				}
			}
		case <-ctx.Done():
			v.t.Fatalf("%s: never reported; last status %v", what, v.status)
			return nil
		}
	}
}

func TestProcessFollowsEngine(t *testing.T) {
	dir := t.TempDir()
	esock := filepath.Join(dir, "engine", "engine.sock")
	hsock := filepath.Join(dir, "ha", "ha.sock")
	interval := 20 * time.Millisecond
	f := &fakeEngine{
		config: &hapb.Config{
			Enabled: true, Interface: "fake0", Vrid: 60, Priority: 200,
			LocalAddress: addrA.String(), Peers: []string{addrB.String()},
			AdvertInterval: durationpb.New(interval), Addresses: []string{vipT.String()},
		},
		reports: make(chan *hapb.Report, 1000), commands: make(chan *hapb.Command),
	}
	stopEngine := startEngine(t, esock, f)
	defer func() { stopEngine() }()
	h := newHub()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Socket: hsock, EngineSocket: esock, StatusInterval: 20 * time.Millisecond,
			RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, OpenConn: h.open})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()
	v := &engineView{t: t, f: f}

	// With nobody else on the segment: backup, then master after the
	// master down interval, both reported at once.
	v.waitState(deadline, seesawpb.HAState_HA_STATE_BACKUP, "started")
	v.waitState(deadline, seesawpb.HAState_HA_STATE_LEADER, "no advert within the master down interval")
	st := v.waitStatus(deadline, "adverts", func(s *hapb.Status) bool { return s.AdvertsSent > 2 })
	if st.Priority != 200 || st.MasterAddress != addrA.String() || len(st.Facilities) == 0 {
		t.Errorf("status %v", st)
	}

	// The HA status service says the same.
	cc, err := ipc.Dial(hsock, ipc.DialOptions{MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hs, err := hapb.NewHAClient(cc).GetStatus(deadline, &hapb.GetStatusRequest{}, grpc.WaitForReady(true))
	if err != nil || hs.State != seesawpb.HAState_HA_STATE_LEADER {
		t.Fatalf("GetStatus = %v, %v", hs, err)
	}
	comp, err := seesawpb.NewComponentClient(cc).Status(deadline, &seesawpb.StatusRequest{})
	if err != nil || !facility(comp, "vrrp").GetAvailable() || !facility(comp, "engine").GetAvailable() {
		t.Fatalf("component status %v, %v", comp, err)
	}

	// A peer with a lower priority joins as backup. The engine asks for a
	// failover: HA sends priority 0 and steps down, and the peer takes over
	// after its skew time.
	peer := startSpeaker(t, h, addrB, 100, interval)
	defer peer.stop()
	time.Sleep(5 * interval)
	f.commands <- &hapb.Command{Command: &hapb.Command_Relinquish{Relinquish: &hapb.Relinquish{Reason: "operator failover"}}}
	v.waitState(deadline, seesawpb.HAState_HA_STATE_BACKUP, "relinquished: operator failover")
	if got := lastSent(h, addrA); got.adv.Priority != 0 {
		t.Errorf("last advert from HA %+v, want priority 0", got)
	}
	waitFor(t, deadline, "peer master", func() bool { return peer.State() == vrrp.Master })

	// The peer dies: HA takes over again.
	peer.port.setDead(true)
	v.waitState(deadline, seesawpb.HAState_HA_STATE_LEADER, "no advert from master 192.0.2.2")

	// Transient socket errors are counted, not fatal.
	h.port(addrA).fail(3, 3)
	v.waitStatus(deadline, "errors counted", func(s *hapb.Status) bool {
		return s.SendErrors == 3 && s.ReceiveErrors == 3 && s.LastError != "" && s.State == seesawpb.HAState_HA_STATE_LEADER
	})

	// The engine goes away: HA steps down with a priority-0 advert and
	// stops speaking, so it cannot take mastership without an engine.
	before := len(h.sentBy(addrA))
	stopEngine()
	waitFor(t, deadline, "step down", func() bool {
		s := h.sentBy(addrA)
		return len(s) > before && s[len(s)-1].adv.Priority == 0
	})
	n := len(h.sentBy(addrA))
	time.Sleep(10 * interval)
	if m := len(h.sentBy(addrA)); m != n {
		t.Errorf("HA sent %d adverts with no engine", m-n)
	}

	// The engine comes back: HA reports the step-down it missed, gets its
	// config again and takes part again (master: the peer is dead).
	stopEngine = startEngine(t, esock, f)
	v.waitState(deadline, seesawpb.HAState_HA_STATE_SHUTDOWN, "engine session lost")
	v.waitState(deadline, seesawpb.HAState_HA_STATE_LEADER, "")

	// A config change that needs no new socket is applied in place.
	before = len(v.transitions)
	f.config.Priority = 150
	f.commands <- &hapb.Command{Command: &hapb.Command_Config{Config: f.config}}
	v.waitStatus(deadline, "new priority", func(s *hapb.Status) bool { return s.Priority == 150 })
	if len(v.transitions) != before {
		t.Errorf("in-place update caused transitions: %v", v.transitions[before:])
	}

	// Disabled in the cluster config: stop speaking.
	off := &hapb.Config{Enabled: false}
	f.commands <- &hapb.Command{Command: &hapb.Command_Config{Config: off}}
	v.waitState(deadline, seesawpb.HAState_HA_STATE_DISABLED, "disabled")

	// A config HA cannot use is an ERROR with the reason, not an exit.
	bad := &hapb.Config{Enabled: true, Interface: "fake0", Vrid: 60, Priority: 300}
	f.commands <- &hapb.Command{Command: &hapb.Command_Config{Config: bad}}
	v.waitState(deadline, seesawpb.HAState_HA_STATE_ERROR, "priority 300")
}

func lastSent(h *hub, a netip.Addr) sent {
	s := h.sentBy(a)
	if len(s) == 0 {
		return sent{}
	}
	return s[len(s)-1]
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		if ctx.Err() != nil {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func facility(st *seesawpb.ComponentStatus, name string) *seesawpb.Facility {
	for _, f := range st.GetFacilities() {
		if f.Name == name {
			return f
		}
	}
	return nil
}

func TestSocketOpenFailureIsRetried(t *testing.T) {
	dir := t.TempDir()
	esock := filepath.Join(dir, "engine.sock")
	f := &fakeEngine{
		config: &hapb.Config{Enabled: true, Interface: "fake0", Vrid: 60, Priority: 100,
			LocalAddress: addrA.String(), AdvertInterval: durationpb.New(20 * time.Millisecond)},
		reports: make(chan *hapb.Report, 1000), commands: make(chan *hapb.Command),
	}
	defer startEngine(t, esock, f)()
	h := newHub()
	var mu sync.Mutex
	fails := 2
	open := func(cc ConnConfig) (Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return nil, os.ErrPermission
		}
		return h.open(cc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Socket: filepath.Join(dir, "ha.sock"), EngineSocket: esock, StatusInterval: 20 * time.Millisecond,
			RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, OpenConn: open})
	}()
	defer func() { cancel(); <-done }()
	deadline, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()
	v := &engineView{t: t, f: f}
	v.waitState(deadline, seesawpb.HAState_HA_STATE_ERROR, "permission denied")
	v.waitState(deadline, seesawpb.HAState_HA_STATE_LEADER, "")
}
