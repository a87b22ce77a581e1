// Package engine is the Seesaw engine daemon: the one process that holds
// state and decides. It loads seesaw.cfg and cluster.pb (and reloads them
// when they change on disk), tells HA its VRRP parameters and the
// healthcheck process its checks, records what they report, keeps the
// operators' overrides, and drives the data plane: on any change it
// computes the whole desired state (package dataplane, pure) and sends it to
// the NCC, which makes the kernel match it.
//
// The files of the package are its edges around that decision: engine.go
// holds the state and the config, loop.go the reconcile loop that talks to
// the NCC, sessions.go the HA and healthcheck streams, rpc.go the operators'
// RPCs, state.go the state file, plan.go what a config would do,
// peersync.go the link to the other engine of the pair (package peer) and
// failover on health over it, configsource.go where the cluster config
// comes from (disk, server, peer, none; package source).
package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc"

	"github.com/seesawlb/seesaw/engine/config"
	"github.com/seesawlb/seesaw/engine/dataplane"
	"github.com/seesawlb/seesaw/engine/peer"
	"github.com/seesawlb/seesaw/engine/source"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Defaults of the engine's paths and access groups.
const (
	DefaultEngineConf  = "/etc/seesaw/seesaw.cfg"
	DefaultClusterConf = "/etc/seesaw/cluster.pb"
	// DefaultStateFile keeps the overrides and firewall marks across
	// restarts (and reboots: it is not under /var/run).
	DefaultStateFile = "/var/lib/seesaw/engine/state.pb"
	// DefaultReaderGroup may read the engine's state. When the flag keeps
	// this default and the group does not exist, only root may read.
	DefaultReaderGroup = "seesaw"
	// DefaultDaemonUser is who HA and healthcheck run as.
	DefaultDaemonUser = "root"
)

var (
	// DefaultSocket is where the engine serves.
	DefaultSocket = ipc.DefaultSocket("engine")
	// DefaultNCCSocket is where the engine finds the NCC.
	DefaultNCCSocket = ipc.DefaultSocket("ncc")
	// DefaultHealthcheckSocket is where the engine asks the healthcheck
	// process for its checks' history.
	DefaultHealthcheckSocket = ipc.DefaultSocket("healthcheck")
)

// Config is what the engine runs with.
type Config struct {
	Socket            string
	NCCSocket         string
	HealthcheckSocket string
	EngineConf        string // seesaw.cfg
	ClusterConf       string // cluster.pb
	StateFile         string // "": overrides and marks are not kept
	// ReaderGroup may call READ methods; AdminGroup READ and WRITE methods;
	// DaemonUsers INTERNAL ones (the HA and healthcheck sessions). Each is a
	// comma-separated list; root may always call everything.
	ReaderGroup string
	AdminGroup  string
	DaemonUsers string
	// RelayUIDs are the users whose calls may name their caller in the
	// call's metadata (ipc.RelayCallerKey): the ECU, whose remote control
	// forwards a certificate holder's calls. nil is the engine's own user,
	// which the appliance's daemons share; an empty non-nil list trusts
	// no one.
	RelayUIDs []uint32
	// Reload delivers SIGHUP: re-read the config from disk.
	Reload <-chan os.Signal
	// Restart delivers the watchdog's reload signal (SIGUSR2): the engine
	// is to exit and be started again at once. It tells HA first
	// (EngineRestarting) so that HA keeps this node's mastership across
	// the gap instead of stepping down, then stops as on SIGTERM.
	Restart <-chan os.Signal
	// WatchInterval is how often the config files are looked at for
	// changes (default 250ms; negative: not watched).
	WatchInterval time.Duration
	// NCCPollInterval is how often the engine asks whether the NCC answers
	// (default 5s).
	NCCPollInterval time.Duration
	// NCCTimeout bounds one call to the NCC (default 60s: a cold start of
	// a large cluster is many writes).
	NCCTimeout time.Duration
	// RetryMin and RetryMax bound the backoff of a failed apply (default
	// 100ms and 5s).
	RetryMin, RetryMax time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	// Added with peer sync and the config sources.
	//
	// SSLDir holds the cluster CA and this node's certificate and key
	// (ca.crt, seesaw.crt, seesaw.key): peer sync's mutual TLS and the
	// config server's CA check. Default /etc/seesaw/ssl.
	SSLDir string
	// PeerPort replaces seesaw.cfg's sync port (10258) when not zero.
	PeerPort int
	// PeerLocal and PeerRemote, when set, carry peer sync over other
	// addresses than seesaw.cfg's node_ipv4 and peer_ipv4 (a dedicated sync
	// link): this node serves on and dials from PeerLocal, and dials and
	// accepts only PeerRemote.
	PeerLocal, PeerRemote netip.Addr
	// Peer tunes peer sync's timing (the zero value is production's).
	Peer peer.Options
	// HealthFailover says when the master hands over to a backup that sees
	// clearly more healthy destinations (the zero value is the defaults).
	HealthFailover peer.HealthPolicy
	// ConfigArchive keeps every config applied from the server or the peer,
	// the newest ArchiveKeep of them (default 50).
	ConfigArchive string
	ArchiveKeep   int
	// SourceInterval replaces seesaw.cfg's config poll period (1m) for the
	// server and peer sources when not zero.
	SourceInterval time.Duration
	// ConfigServerPort replaces the config server port (10255) when not zero.
	ConfigServerPort int
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
	if c.WatchInterval == 0 {
		c.WatchInterval = 250 * time.Millisecond
	}
	if c.NCCPollInterval <= 0 {
		c.NCCPollInterval = 5 * time.Second
	}
	if c.NCCTimeout <= 0 {
		c.NCCTimeout = 60 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SSLDir == "" {
		c.SSLDir = peer.DefaultSSLDir
	}
	if c.ConfigArchive == "" {
		c.ConfigArchive = source.DefaultArchiveDir
	}
	if c.ArchiveKeep <= 0 {
		c.ArchiveKeep = source.DefaultArchiveKeep
	}
}

// loaded is one accepted config and what the engine derived from it alone.
// It is never changed once built; a reload replaces it whole.
type loaded struct {
	res *config.Result
	at  time.Time
	ha  *hapb.Config
	// digest is the sha256 of the cluster config (binary, deterministic),
	// hex: the config version peer sync compares.
	digest string
}

// haSession is the open HASession.
type haSession struct {
	cmds   chan *hapb.Command
	cancel context.CancelCauseFunc
	// restartSent is closed once EngineRestarting has gone to HA.
	restartSent chan struct{}
}

// errSuperseded ends an HA session when a newer one opens.
var errSuperseded = errors.New("superseded by a newer HA session")

// Engine is the engine's state and its gRPC services.
type Engine struct {
	enginepb.UnimplementedEngineServer
	cfg  Config
	comp *ipc.Component
	// ncc is the NCC's client; hc the healthcheck process's (nil: no
	// check history). Run dials them; tests give their own.
	ncc nccpb.NCCClient
	hc  hcpb.HealthcheckClient
	// kick wakes the reconcile loop: something it depends on changed.
	// wakes counts the wake-ups, stepped is the count the last finished
	// step had seen.
	kick           chan struct{}
	wakes, stepped atomic.Uint64

	mu          sync.Mutex
	cur         *loaded       // nil until a config loads
	changed     chan struct{} // closed and replaced whenever cur changes
	lastErr     string
	lastErrTime time.Time

	// Operators' overrides by key ("vserver NAME", ...), and a generation
	// bumped at every change.
	overrides map[string]*enginepb.OverrideRecord
	ovGen     uint64
	// marks are the firewall marks in use (dataplane.Model.Marks), kept in
	// the state file.
	marks    map[string]uint32
	stateErr string

	// The model and plan the loop computed last; checks is the check set
	// for the healthcheck sessions, checksChanged closed when it changes.
	model     *dataplane.Model
	plan      *dataplane.Plan
	planOvGen uint64 // the overrides' generation plan was computed with
	// planned is closed (and replaced) whenever a new plan is in place,
	// for callers waiting for their change to be in it.
	planned chan struct{}
	// announceDue asks the loop to announce the VIPs again while master
	// (HA stayed master over another one).
	announceDue   bool
	checks        *hcpb.CheckSet
	checksChanged chan struct{}

	ha            *haSession // nil when no HA is connected
	haStatus      *hapb.Status
	haTransitions []*hapb.Transition // newest last, at most maxTransitions
	ht            *haTracker

	hcSessions int
	results    map[uint64]*hcpb.Result // last result per check id
	nResults   uint64

	// What the loop knows of the NCC and the kernel.
	nccPid     int32
	resend     bool // send the desired state even if it is what was applied
	apply      applyStatus
	adopted    *dataplane.Adopted // what the kernel held at start, until settled
	adoptUntil time.Time
	readKernel bool // the kernel's state was read (adopted) once

	// Peer sync and the config source (peersync.go, configsource.go).
	peer *peer.Sync
	// cleared are the overrides set back to default, with who and when,
	// so that peer sync can tell a clearing from an override never set.
	cleared      map[string]*enginepb.OverrideRecord
	source       string // disk, server, peer, none ("" is disk)
	sourceDetail string // where the running config came from
	sourceKick   chan struct{}
	reloadMu     sync.Mutex // one Reload at a time
	events       *eventLog  // recent events for operators (events.go)
	// Totals of the applies the NCC answered, for the status (and the
	// ECU's metrics): applies, kernel writes, changes it could not make.
	nApplies, nKernelWrites, nApplyErrors uint64

	// components are the other daemons' status services, by name, for
	// Versions.
	components map[string]seesawpb.ComponentClient

	// fb is failback's state (failback.go).
	fb failback
}

// applyStatus is the outcome of the last Apply, for the status.
type applyStatus struct {
	at       time.Time
	changes  int
	writes   uint64
	errors   []string
	rpcErr   string
	applied  *nccpb.DesiredState // the last state the NCC took (even with errors)
	failures int                 // consecutive failed applies
}

const maxTransitions = 32

// New returns an engine with no config loaded yet, whose NCC is ncc (nil
// until Run dials it).
func New(cfg Config) *Engine {
	cfg.setDefaults()
	e := &Engine{
		cfg:           cfg,
		comp:          ipc.NewComponent("engine"),
		kick:          make(chan struct{}, 1),
		changed:       make(chan struct{}),
		checksChanged: make(chan struct{}),
		results:       map[uint64]*hcpb.Result{},
		overrides:     map[string]*enginepb.OverrideRecord{},
		ht:            newHATracker(30 * time.Second),
		cleared:       map[string]*enginepb.OverrideRecord{},
		sourceKick:    make(chan struct{}, 1),
	}
	e.peer = peer.New(peerLocal{e}, e.peerOptions())
	e.events = newEventLog(cfg.Now, maxEvents)
	e.comp.SetFacility("config", false, "not loaded yet")
	e.comp.SetFacility("ncc", false, "not checked yet")
	e.comp.SetFacility("dataplane", false, "nothing applied yet")
	e.comp.SetDetail("socket", cfg.Socket)
	e.comp.SetDetail("ncc_socket", cfg.NCCSocket)
	e.comp.SetDetail("engine_conf", cfg.EngineConf)
	e.comp.SetDetail("cluster_conf", cfg.ClusterConf)
	e.comp.SetDetail("state_file", cfg.StateFile)
	e.comp.SetHook(e.statusDetails)
	e.loadState()
	return e
}

// SetNCC gives the engine its NCC (Run dials the socket; tests give a
// client of their own, such as one over fake kernels).
func (e *Engine) SetNCC(c nccpb.NCCClient) { e.ncc = c }

// SetHealthcheck gives the engine the healthcheck process's status service,
// which it asks for the checks' history.
func (e *Engine) SetHealthcheck(c hcpb.HealthcheckClient) { e.hc = c }

// Component is the engine's Component service.
func (e *Engine) Component() *ipc.Component { return e.comp }

// Register adds the engine's services to a server.
func (e *Engine) Register(s grpc.ServiceRegistrar) {
	enginepb.RegisterEngineServer(s, e)
	seesawpb.RegisterComponentServer(s, e.comp)
}

func (e *Engine) now() time.Time { return e.cfg.Now() }

// wake asks the reconcile loop to look again.
func (e *Engine) wake() {
	if e.peer != nil {
		e.peer.Notify() // the view for the peer may have changed too
	}
	e.wakes.Add(1)
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *Engine) statusDetails(st *seesawpb.ComponentStatus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur != nil {
		cl := e.cur.res.Cluster
		n := cl.Counts()
		st.Details["cluster"] = e.cur.res.Engine.ClusterName
		st.Details["vservers"] = strconv.Itoa(n.Vservers)
		st.Details["config_loaded"] = e.cur.at.UTC().Format(time.RFC3339)
	}
	if e.checks != nil {
		st.Details["checks"] = strconv.Itoa(len(e.checks.Upsert))
	}
	if e.plan != nil {
		st.Details["ipvs_services"] = strconv.Itoa(len(e.plan.Desired.Services))
		st.Details["lb_interface_up"] = strconv.FormatBool(e.plan.Desired.GetLbInterface().GetUp())
	}
	st.Details["ha_state"] = e.ht.state(e.now()).String()
	st.Details["ha_session"] = strconv.FormatBool(e.ha != nil)
	st.Details["healthcheck_sessions"] = strconv.Itoa(e.hcSessions)
	st.Details["check_results"] = strconv.FormatUint(e.nResults, 10)
	st.Details["overrides"] = strconv.Itoa(len(e.overrides))
	st.Details["ncc_applies"] = strconv.FormatUint(e.nApplies, 10)
	st.Details["ncc_kernel_writes"] = strconv.FormatUint(e.nKernelWrites, 10)
	st.Details["ncc_apply_errors"] = strconv.FormatUint(e.nApplyErrors, 10)
	if !e.apply.at.IsZero() {
		last := fmt.Sprintf("%s: %d changes, %d kernel writes", e.apply.at.UTC().Format(time.RFC3339), e.apply.changes, e.apply.writes)
		if n := len(e.apply.errors); n > 0 {
			last += fmt.Sprintf(", %d errors: %s", n, e.apply.errors[0])
		}
		st.Details["ncc_last_apply"] = last
	}
	if e.apply.rpcErr != "" && e.apply.failures > 0 {
		st.Details["ncc_last_failure"] = e.apply.rpcErr
	}
	if e.adopted != nil {
		st.Details["adopting"] = "until every check has reported, at most until " + e.adoptUntil.UTC().Format(time.RFC3339)
	}
	if e.lastErr != "" {
		st.Warnings = append(st.Warnings, fmt.Sprintf("config rejected at %s (the previous config, if any, keeps serving): %s",
			e.lastErrTime.UTC().Format(time.RFC3339), e.lastErr))
	}
	if e.stateErr != "" {
		st.Warnings = append(st.Warnings, e.stateErr)
	}
	if e.model != nil {
		st.Warnings = append(st.Warnings, e.model.Warnings...)
	}
	st.Details["config_source"] = e.sourceLocked()
	ps := e.peer.Status()
	switch {
	case !ps.Enabled:
		st.Details["peer_sync"] = "off: " + ps.DisabledReason
	case ps.Connected:
		st.Details["peer_sync"] = fmt.Sprintf("connected to %s (%s, %v)", ps.Address, ps.View.GetNode(), ps.View.GetHaState())
	default:
		since := ""
		if ps.UnreachableSince != nil {
			since = " since " + ps.UnreachableSince.AsTime().UTC().Format(time.RFC3339)
		}
		st.Details["peer_sync"] = "peer unreachable"
		st.Warnings = append(st.Warnings, fmt.Sprintf("peer sync: the peer %s is unreachable%s: %s", ps.Address, since, ps.LastError))
	}
	if ps.Refused > 0 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("peer sync: %d connections refused, the last at %s: %s",
			ps.Refused, ps.LastRefusedAt.AsTime().UTC().Format(time.RFC3339), ps.LastRefused))
	}
}

// Reload reads seesaw.cfg from disk and the cluster config from the
// config source (cluster.pb on disk by default; see configsource.go). A config with any error
// is rejected whole: the running config keeps serving, and the error is kept
// for ConfigStatus and logged. An accepted config replaces the running one;
// the loop applies what it changes and the sessions get the new HA config
// and checks.
func (e *Engine) Reload() error {
	return e.reload()
}

// reloadDisk is Reload from the disk source.
func (e *Engine) reloadDisk() error {
	res := config.Check(e.cfg.EngineConf, e.cfg.ClusterConf)
	return e.accept(res)
}

// accept makes res the running config, or rejects it.
func (e *Engine) accept(res *config.Result) error {
	err := res.Err()
	if err == nil && res.ThisNode == nil {
		err = fmt.Errorf("%s: this node is not a node of %s", e.cfg.EngineConf, e.cfg.ClusterConf)
	}
	now := e.now()
	if err != nil {
		e.mu.Lock()
		e.lastErr, e.lastErrTime = err.Error(), now
		serving := e.cur != nil
		e.mu.Unlock()
		e.events.add("config", e.cfg.ClusterConf, true, "config rejected: "+err.Error())
		if serving {
			glog.Errorf("engine: config rejected; the running config keeps serving:\n%v", err)
		} else {
			e.comp.SetFacility("config", false, "no config loaded: "+err.Error())
			glog.Errorf("engine: config rejected; no config is loaded:\n%v", err)
		}
		return fmt.Errorf("engine: config rejected: %w", err)
	}
	l := &loaded{res: res, at: now, ha: haConfig(res.Engine, res.Cluster, res.ThisNode), digest: clusterDigest(res.Cluster)}
	for _, w := range res.Warnings {
		glog.Warningf("engine: config warning: %v", w)
	}
	e.mu.Lock()
	e.cur = l
	e.ht.timeout = res.Engine.HAStateTimeout
	e.lastErr, e.lastErrTime = "", time.Time{}
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
	e.wake()
	n := res.Cluster.Counts()
	e.comp.SetFacility("config", true, fmt.Sprintf("%s and %s loaded at %s: cluster %q, %d nodes, %d vservers",
		e.cfg.EngineConf, e.cfg.ClusterConf, now.UTC().Format(time.RFC3339), res.Engine.ClusterName, n.Nodes, n.Vservers))
	e.events.add("config", e.cfg.ClusterConf, false, fmt.Sprintf("config loaded: cluster %q, %d vservers", res.Engine.ClusterName, n.Vservers))
	glog.Infof("engine: config loaded: cluster %q, this node %s (priority %d), %d vservers",
		res.Engine.ClusterName, res.ThisNode.FQDN, res.ThisNode.Priority, n.Vservers)
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
	e.SetNCC(nccpb.NewNCCClient(ncc))
	e.SetComponent("ncc", seesawpb.NewComponentClient(ncc))
	if cfg.HealthcheckSocket != "" {
		hc, err := ipc.Dial(cfg.HealthcheckSocket, ipc.DialOptions{})
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		defer hc.Close()
		e.SetHealthcheck(hcpb.NewHealthcheckClient(hc))
		e.SetComponent("healthcheck", seesawpb.NewComponentClient(hc))
	}
	glog.Infof("engine: serving on %s; NCC at %s", cfg.Socket, cfg.NCCSocket)

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if cfg.Restart != nil {
		go func() {
			select {
			case <-cfg.Restart:
				e.announceRestart()
				stop()
			case <-ctx.Done():
			}
		}()
	}
	var wg sync.WaitGroup
	wg.Go(func() { e.watchNCC(ctx, seesawpb.NewComponentClient(ncc)) })
	wg.Go(func() { e.Loop(ctx) })
	wg.Go(func() { e.watchConfig(ctx) })
	wg.Go(func() { e.RunPeer(ctx) })
	wg.Go(func() { e.pollSource(ctx) })
	err = srv.Serve(ctx, 2*time.Second)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	glog.Infof("engine: stopped")
	return nil
}

// watchConfig reloads on SIGHUP, and when seesaw.cfg or cluster.pb change
// on disk: each is looked at every WatchInterval (size, time, inode, so an
// editor's save by rename counts), and reloaded once it has stayed the
// same for one interval, so that a file caught half-written is not read.
func (e *Engine) watchConfig(ctx context.Context) {
	var tick <-chan time.Time
	if e.cfg.WatchInterval > 0 {
		t := time.NewTicker(e.cfg.WatchInterval)
		defer t.Stop()
		tick = t.C
	}
	last := stamps(e.cfg.EngineConf, e.cfg.ClusterConf)
	pending := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.cfg.Reload:
			glog.Infof("engine: SIGHUP: reloading the config from disk")
			e.Reload()
		case <-tick:
			now := stamps(e.cfg.EngineConf, e.cfg.ClusterConf)
			switch {
			case now != last:
				last, pending = now, true
			case pending:
				pending = false
				glog.Infof("engine: %s or %s changed on disk: reloading", e.cfg.EngineConf, e.cfg.ClusterConf)
				e.Reload()
			}
		}
	}
}

// fileStamp is what tells that a file changed.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
	err   bool
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

func stamps(paths ...string) [2]fileStamp {
	var out [2]fileStamp
	for i, p := range paths[:2] {
		fi, err := os.Stat(p)
		if err != nil {
			out[i] = fileStamp{err: true}
			continue
		}
		out[i] = fileStamp{size: fi.Size(), mtime: fi.ModTime(), ino: inode(fi)}
	}
	return out
}

// watchNCC asks the NCC for its status every poll interval (every second
// while it does not answer, so that an NCC starting late is found soon) and
// reports in the engine's status whether it answers. A new NCC process (its
// pid changed) gets the whole desired state again. The connection redials
// with backoff by itself.
func (e *Engine) watchNCC(ctx context.Context, client seesawpb.ComponentClient) {
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
			e.mu.Lock()
			if e.nccPid != 0 && e.nccPid != st.Pid {
				glog.Infof("engine: the NCC restarted (pid %d, was %d): sending it the desired state again", st.Pid, e.nccPid)
				e.resend = true
			}
			e.nccPid = st.Pid
			e.mu.Unlock()
			e.wake()
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
