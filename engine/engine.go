// Package engine is the Seesaw engine daemon: the one process that holds
// state and decides. It loads seesaw.cfg and cluster.pb, tells HA its VRRP
// parameters and the healthcheck process its checks, records what they
// report, and answers operators (CLI, ECU) on its socket.
//
// This build is the skeleton. What is real: loading and reloading the config
// from disk (a bad config is rejected whole and the running one keeps
// serving, the rejection kept for ConfigStatus), the HA and healthcheck
// sessions, cluster/config/HA status, Failover (relinquish to HA), and
// watching whether the NCC answers. Not yet: vserver state machines, the
// desired data-plane state pushed to the NCC, overrides, peer sync and the
// config server; those RPCs answer Unimplemented and the status says so.
package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc"

	"github.com/seesawlb/seesaw/engine/config"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Defaults of the engine's paths and access groups.
const (
	DefaultSocket      = "/var/run/seesaw/engine/engine.sock"
	DefaultNCCSocket   = "/var/run/seesaw/ncc/ncc.sock"
	DefaultEngineConf  = "/etc/seesaw/seesaw.cfg"
	DefaultClusterConf = "/etc/seesaw/cluster.pb"
	// DefaultReaderGroup may read the engine's state. When the flag keeps
	// this default and the group does not exist, only root may read.
	DefaultReaderGroup = "seesaw"
	// DefaultDaemonUser is who HA and healthcheck run as.
	DefaultDaemonUser = "root"
)

// notInBuild says what the engine does not do yet.
const notInBuild = "the engine computes no desired data-plane state and pushes nothing to the NCC in this build (no vserver state machines, overrides, peer sync or config server)"

// Config is what the engine runs with.
type Config struct {
	Socket      string
	NCCSocket   string
	EngineConf  string // seesaw.cfg
	ClusterConf string // cluster.pb
	// ReaderGroup may call READ methods; AdminGroup READ and WRITE methods;
	// DaemonUsers INTERNAL ones (the HA and healthcheck sessions). Each is a
	// comma-separated list; root may always call everything.
	ReaderGroup string
	AdminGroup  string
	DaemonUsers string
	// Reload delivers SIGHUP: re-read the config from disk.
	Reload <-chan os.Signal
	// NCCPollInterval is how often the engine asks whether the NCC answers
	// (default 5s).
	NCCPollInterval time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Socket == "" {
		c.Socket = DefaultSocket
	}
	if c.NCCSocket == "" {
		c.NCCSocket = DefaultNCCSocket
	}
	if c.EngineConf == "" {
		c.EngineConf = DefaultEngineConf
	}
	if c.ClusterConf == "" {
		c.ClusterConf = DefaultClusterConf
	}
	if c.NCCPollInterval <= 0 {
		c.NCCPollInterval = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// loaded is one accepted config and what the engine derived from it. It is
// never changed once built; a reload replaces it whole.
type loaded struct {
	res    *config.Result
	at     time.Time
	ha     *hapb.Config
	checks *hcpb.CheckSet
}

// haSession is the open HASession.
type haSession struct {
	cmds   chan *hapb.Command
	cancel context.CancelCauseFunc
}

// errSuperseded ends an HA session when a newer one opens.
var errSuperseded = errors.New("superseded by a newer HA session")

// Engine is the engine's state and its gRPC services.
type Engine struct {
	enginepb.UnimplementedEngineServer
	cfg  Config
	comp *ipc.Component

	mu          sync.Mutex
	cur         *loaded       // nil until a config loads
	changed     chan struct{} // closed and replaced whenever cur changes
	lastErr     string
	lastErrTime time.Time

	ha            *haSession // nil when no HA is connected
	haStatus      *hapb.Status
	haState       seesawpb.HAState
	haLastUpdate  time.Time
	haTransitions []*hapb.Transition // newest last, at most maxTransitions

	hcSessions int
	results    map[uint64]*hcpb.Result // last result per check id
	nResults   uint64
}

const maxTransitions = 32

// New returns an engine with no config loaded yet.
func New(cfg Config) *Engine {
	cfg.setDefaults()
	e := &Engine{
		cfg:     cfg,
		comp:    ipc.NewComponent("engine"),
		changed: make(chan struct{}),
		results: map[uint64]*hcpb.Result{},
	}
	e.comp.SetFacility("config", false, "not loaded yet")
	e.comp.SetFacility("ncc", false, "not checked yet")
	e.comp.SetFacility("dataplane", false, notInBuild)
	e.comp.SetDetail("socket", cfg.Socket)
	e.comp.SetDetail("ncc_socket", cfg.NCCSocket)
	e.comp.SetDetail("engine_conf", cfg.EngineConf)
	e.comp.SetDetail("cluster_conf", cfg.ClusterConf)
	e.comp.SetHook(e.statusDetails)
	return e
}

// Component is the engine's Component service.
func (e *Engine) Component() *ipc.Component { return e.comp }

// Register adds the engine's services to a server.
func (e *Engine) Register(s grpc.ServiceRegistrar) {
	enginepb.RegisterEngineServer(s, e)
	seesawpb.RegisterComponentServer(s, e.comp)
}

func (e *Engine) statusDetails(st *seesawpb.ComponentStatus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur != nil {
		cl := e.cur.res.Cluster
		n := cl.Counts()
		st.Details["cluster"] = e.cur.res.Engine.ClusterName
		st.Details["vservers"] = strconv.Itoa(n.Vservers)
		st.Details["checks"] = strconv.Itoa(len(e.cur.checks.Upsert))
		st.Details["config_loaded"] = e.cur.at.UTC().Format(time.RFC3339)
	}
	st.Details["ha_state"] = e.haStateLocked().String()
	st.Details["ha_session"] = strconv.FormatBool(e.ha != nil)
	st.Details["healthcheck_sessions"] = strconv.Itoa(e.hcSessions)
	st.Details["check_results"] = strconv.FormatUint(e.nResults, 10)
	if e.lastErr != "" {
		st.Warnings = append(st.Warnings, fmt.Sprintf("config rejected at %s (the previous config, if any, keeps serving): %s",
			e.lastErrTime.UTC().Format(time.RFC3339), e.lastErr))
	}
}

// Reload reads seesaw.cfg and cluster.pb from disk. A config with any error
// is rejected whole: the running config keeps serving, and the error is kept
// for ConfigStatus and logged. An accepted config replaces the running one
// and is sent to the open HA and healthcheck sessions.
func (e *Engine) Reload() error {
	res := config.Check(e.cfg.EngineConf, e.cfg.ClusterConf)
	err := res.Err()
	if err == nil && res.ThisNode == nil {
		err = fmt.Errorf("%s: this node is not a node of %s", e.cfg.EngineConf, e.cfg.ClusterConf)
	}
	now := e.cfg.Now()
	if err != nil {
		e.mu.Lock()
		e.lastErr, e.lastErrTime = err.Error(), now
		serving := e.cur != nil
		e.mu.Unlock()
		if serving {
			glog.Errorf("engine: config rejected; the running config keeps serving:\n%v", err)
		} else {
			e.comp.SetFacility("config", false, "no config loaded: "+err.Error())
			glog.Errorf("engine: config rejected; no config is loaded:\n%v", err)
		}
		return fmt.Errorf("engine: config rejected: %w", err)
	}
	l := &loaded{
		res:    res,
		at:     now,
		ha:     haConfig(res.Engine, res.Cluster, res.ThisNode),
		checks: checkSet(res.Cluster),
	}
	for _, w := range res.Warnings {
		glog.Warningf("engine: config warning: %v", w)
	}
	e.mu.Lock()
	e.cur = l
	e.lastErr, e.lastErrTime = "", time.Time{}
	// Results of checks the new config no longer has would never be
	// replaced; forget them.
	keep := map[uint64]bool{}
	for _, c := range l.checks.Upsert {
		keep[c.Id] = true
	}
	for id := range e.results {
		if !keep[id] {
			delete(e.results, id)
		}
	}
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
	n := res.Cluster.Counts()
	e.comp.SetFacility("config", true, fmt.Sprintf("%s and %s loaded at %s: cluster %q, %d nodes, %d vservers, %d checks",
		e.cfg.EngineConf, e.cfg.ClusterConf, now.UTC().Format(time.RFC3339), res.Engine.ClusterName, n.Nodes, n.Vservers, len(l.checks.Upsert)))
	glog.Infof("engine: config loaded: cluster %q, this node %s (priority %d), %d vservers, %d checks",
		res.Engine.ClusterName, res.ThisNode.FQDN, res.ThisNode.Priority, n.Vservers, len(l.checks.Upsert))
	return nil
}

// current returns the running config (nil if none) and a channel closed when
// it next changes.
func (e *Engine) current() (*loaded, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cur, e.changed
}

// Run serves the engine until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	policy, gid, err := policy(cfg)
	if err != nil {
		return err
	}
	e := New(cfg)
	// A missing or bad config at start leaves the engine serving its status
	// (with the error) so that an operator can see it and reload.
	e.Reload()

	srv, err := ipc.NewServer(ipc.ServerOptions{
		Path:       cfg.Socket,
		DirMode:    0o750,
		SocketMode: 0o660,
		GID:        gid,
		Policy:     policy,
		Logf:       glog.Warningf,
	})
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	e.Register(srv)
	ncc, err := ipc.Dial(cfg.NCCSocket, ipc.DialOptions{})
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	defer ncc.Close()
	glog.Infof("engine: serving on %s; NCC at %s", cfg.Socket, cfg.NCCSocket)

	var wg sync.WaitGroup
	wg.Go(func() { e.watchNCC(ctx, ncc) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-cfg.Reload:
				glog.Infof("engine: SIGHUP: reloading the config from disk")
				e.Reload()
			}
		}
	})
	err = srv.Serve(ctx, 2*time.Second)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	glog.Infof("engine: stopped")
	return nil
}

// watchNCC asks the NCC for its status every poll interval (every second
// while it does not answer, so that an NCC starting late is found soon) and
// reports in the engine's status whether it answers. The connection redials
// with backoff by itself.
func (e *Engine) watchNCC(ctx context.Context, cc *grpc.ClientConn) {
	client := seesawpb.NewComponentClient(cc)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := client.Status(cctx, &seesawpb.StatusRequest{})
		cancel()
		wait := e.cfg.NCCPollInterval
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			wait = min(wait, time.Second)
			if e.comp.SetFacility("ncc", false, fmt.Sprintf("NCC at %s does not answer: %v", e.cfg.NCCSocket, err)) {
				glog.Warningf("engine: NCC does not answer: %v", err)
			}
		default:
			if e.comp.SetFacility("ncc", true, fmt.Sprintf("NCC answers (pid %d): %s", st.Pid, st.State)) {
				glog.Infof("engine: NCC answers (pid %d): %s", st.Pid, st.State)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// policy builds the engine's access policy from the configured names, and
// returns the reader group's gid to own the socket's directory (-1 for none).
func policy(cfg Config) (ipc.Policy, int, error) {
	var p ipc.Policy
	gid := -1
	if cfg.ReaderGroup != "" {
		gids, err := ipc.LookupGroups(cfg.ReaderGroup)
		switch {
		case errors.Is(err, ipc.ErrUnknownName) && cfg.ReaderGroup == DefaultReaderGroup:
			glog.Infof("engine: group %q does not exist: only root and the admin group may read", cfg.ReaderGroup)
		case err != nil:
			return p, 0, fmt.Errorf("engine: reader group: %w", err)
		default:
			p.Read.GIDs = gids
			gid = int(gids[0])
		}
	}
	admins, err := ipc.LookupGroups(cfg.AdminGroup)
	if err != nil {
		return p, 0, fmt.Errorf("engine: admin group: %w", err)
	}
	p.Read.GIDs = append(p.Read.GIDs, admins...)
	p.Write.GIDs = admins
	daemons, err := ipc.LookupUsers(cfg.DaemonUsers)
	if err != nil {
		return p, 0, fmt.Errorf("engine: daemon user: %w", err)
	}
	p.Internal.UIDs = daemons
	glog.Infof("engine: access: read gids %v, write gids %v, internal uids %v (and root)", p.Read.GIDs, p.Write.GIDs, p.Internal.UIDs)
	return p, gid, nil
}
