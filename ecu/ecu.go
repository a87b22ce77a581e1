// Package ecu is the externally-facing control unit: the HTTP monitoring
// endpoint (Seesaw's port 10257) with the status page at /, the JSON API
// under /api/v1/, Prometheus metrics at /metrics, /healthz (200 while the
// engine answers) and the old plain-text status at /?format=text.
//
// Everything it shows comes from one snapshot of the engine and the other
// daemons (snapshot.go), shared by the requests of the same second and
// kept, marked stale, while the engine is away. The ECU only reads.
package ecu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Defaults of the ECU's socket paths: its own and those of the daemons it
// reports on.
var (
	DefaultSocket            = ipc.DefaultSocket("ecu")
	DefaultEngineSocket      = ipc.DefaultSocket("engine")
	DefaultNCCSocket         = ipc.DefaultSocket("ncc")
	DefaultHASocket          = ipc.DefaultSocket("ha")
	DefaultHealthcheckSocket = ipc.DefaultSocket("healthcheck")
	DefaultWatchdogSocket    = ipc.DefaultSocket("watchdog")
)

// DefaultHTTPAddr is the ECU's monitoring listener unless told otherwise.
const DefaultHTTPAddr = ":10257"

// Config is what the ECU runs with.
type Config struct {
	Socket       string
	EngineSocket string
	// Sockets of the other daemons whose status / shows, by name; the
	// engine's is added from EngineSocket. Empty paths are skipped.
	Components map[string]string
	// HTTPAddr is the monitoring listener, host:port.
	HTTPAddr string
	// CallTimeout bounds each call to a daemon (default 2s).
	CallTimeout time.Duration
	// SnapshotTimeout bounds the reading of a snapshot (default 10s): the
	// engine's answers for a big config are tens of megabytes, more than
	// CallTimeout allows on a slow or busy node (1,000 vservers x 10
	// backends in the kernel lab's guest).
	SnapshotTimeout time.Duration
	// PollInterval is how often the ECU checks that the engine answers, for
	// its own status (default 5s). /healthz always asks afresh.
	PollInterval time.Duration
	// Ready, when set, receives the HTTP listener's address once it listens.
	Ready func(addr net.Addr)
	// MaxAge is how long a snapshot of the engine's state is shared by the
	// requests that come after it (default 1s): however many clients and
	// scrapers there are, the engine is read at most once per MaxAge.
	MaxAge time.Duration
	// MaxRequests bounds the HTTP requests served at once (default 64); the
	// others are answered 503 at once, so that a flood of slow clients
	// cannot hold the ECU's memory or the engine.
	MaxRequests int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ControlAddr is remote control's listener (default :10256; "-" to
	// turn it off). It runs only when SSLDir (default /etc/seesaw/ssl)
	// holds ca.crt, seesaw.crt and seesaw.key; its roles come from
	// EngineConf's [remote_control] (default /etc/seesaw/seesaw.cfg).
	ControlAddr, SSLDir, EngineConf string
	// ControlReady, when set, receives remote control's address once it
	// listens.
	ControlReady func(addr net.Addr)
}

func (c *Config) setDefaults() {
	if c.Socket == "" {
		c.Socket = DefaultSocket
	}
	if c.EngineSocket == "" {
		c.EngineSocket = DefaultEngineSocket
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 2 * time.Second
	}
	if c.SnapshotTimeout <= 0 {
		c.SnapshotTimeout = max(10*time.Second, c.CallTimeout)
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.MaxAge <= 0 {
		c.MaxAge = time.Second
	}
	if c.MaxRequests <= 0 {
		c.MaxRequests = 64
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ControlAddr == "" {
		c.ControlAddr = DefaultControlAddr
	}
	if c.SSLDir == "" {
		c.SSLDir = DefaultSSLDir
	}
	if c.EngineConf == "" {
		c.EngineConf = DefaultEngineConf
	}
}

// ecu is the running ECU.
type ecu struct {
	cfg    Config
	comp   *ipc.Component
	engine *grpc.ClientConn
	conns  map[string]*grpc.ClientConn // component name -> conn, the engine included
	names  []string                    // sorted keys of conns
	snaps  *snapshots
	// lastMetricsSize is the size of the last /metrics exposition.
	lastMetricsSize atomic.Int64
}

// Run serves the ECU until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	e := &ecu{cfg: cfg, comp: ipc.NewComponent("ecu"), conns: map[string]*grpc.ClientConn{}}
	e.snaps = &snapshots{fetch: e.fetchSnapshot, fetchPartial: e.fetchPartialSnapshot, maxAge: cfg.MaxAge, now: cfg.Now}
	e.comp.SetFacility("engine", false, "not checked yet")
	e.comp.SetFacility("http", false, "not listening yet on "+cfg.HTTPAddr)
	e.comp.SetDetail("socket", cfg.Socket)
	e.comp.SetDetail("engine_socket", cfg.EngineSocket)

	sockets := map[string]string{"engine": cfg.EngineSocket}
	for name, path := range cfg.Components {
		if path != "" && name != "engine" {
			sockets[name] = path
		}
	}
	for name, path := range sockets {
		cc, err := ipc.Dial(path, ipc.DialOptions{})
		if err != nil {
			e.closeConns()
			return fmt.Errorf("ecu: %w", err)
		}
		e.conns[name] = cc
		e.names = append(e.names, name)
	}
	defer e.closeConns()
	sort.Strings(e.names)
	e.engine = e.conns["engine"]

	srv, err := ipc.NewServer(ipc.ServerOptions{
		Path: cfg.Socket,
		// Status only: any local user who can reach the socket may read it.
		DirMode:    0o755,
		SocketMode: 0o666,
		Policy:     ipc.Policy{Read: ipc.Rule{Anyone: true}},
		Logf:       glog.Warningf,
	})
	if err != nil {
		return fmt.Errorf("ecu: %w", err)
	}
	seesawpb.RegisterComponentServer(srv, e.comp)
	glog.Infof("ecu: serving on %s; engine at %s; HTTP on %s", cfg.Socket, cfg.EngineSocket, cfg.HTTPAddr)

	var wg sync.WaitGroup
	e.startControl(ctx, &wg)
	wg.Go(func() { e.serveHTTP(ctx) })
	wg.Go(func() { e.pollEngine(ctx) })
	err = srv.Serve(ctx, 2*time.Second)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("ecu: %w", err)
	}
	glog.Infof("ecu: stopped")
	return nil
}

func (e *ecu) closeConns() {
	for _, cc := range e.conns {
		cc.Close()
	}
}

// engineAnswers asks the engine for its status and records the answer in the
// ECU's own status.
func (e *ecu) engineAnswers(ctx context.Context) (*seesawpb.ComponentStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	st, err := seesawpb.NewComponentClient(e.engine).Status(ctx, &seesawpb.StatusRequest{})
	if err != nil {
		if e.comp.SetFacility("engine", false, fmt.Sprintf("engine at %s does not answer: %v", e.cfg.EngineSocket, err)) {
			glog.Warningf("ecu: engine does not answer: %v", err)
		}
		return nil, err
	}
	if e.comp.SetFacility("engine", true, "engine answers at "+e.cfg.EngineSocket) {
		glog.Infof("ecu: engine answers")
	}
	return st, nil
}

func (e *ecu) pollEngine(ctx context.Context) {
	t := time.NewTicker(e.cfg.PollInterval)
	defer t.Stop()
	for {
		e.engineAnswers(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// serveHTTP listens (retrying while the address is taken, so that a busy
// port degrades the ECU instead of crash-looping it) and serves until ctx is done.
func (e *ecu) serveHTTP(ctx context.Context) {
	retry := 100 * time.Millisecond
	var lis net.Listener
	for {
		var err error
		lis, err = (&net.ListenConfig{}).Listen(ctx, "tcp", e.cfg.HTTPAddr)
		if err == nil {
			break
		}
		if e.comp.SetFacility("http", false, fmt.Sprintf("cannot listen on %s: %v; retrying", e.cfg.HTTPAddr, err)) {
			glog.Errorf("ecu: http: %v; retrying", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, 10*time.Second)
	}
	e.comp.SetFacility("http", true, "listening on "+lis.Addr().String())
	e.comp.SetDetail("http_addr", lis.Addr().String())
	glog.Infof("ecu: HTTP listening on %s", lis.Addr())
	if e.cfg.Ready != nil {
		e.cfg.Ready(lis.Addr())
	}
	hs := &http.Server{
		Handler:           limit(e.handler(), e.cfg.MaxRequests),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A client that reads too slowly is cut off rather than holding
		// a request slot; the event stream sets its own deadlines.
		WriteTimeout: 60 * time.Second,
		IdleTimeout:  2 * time.Minute,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		e.comp.SetFacility("http", false, err.Error())
		glog.Errorf("ecu: http: %v", err)
	}
	<-done
}

// handler serves the monitoring endpoints.
func (e *ecu) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if _, err := e.engineAnswers(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "engine does not answer: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", e.metricsHandler())
	e.apiHandlers(mux)
	mux.HandleFunc("GET /{$}", e.pageHandler)
	return mux
}

// writeStatus renders the plain-text status page.
func (e *ecu) writeStatus(ctx context.Context, w io.Writer) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	fmt.Fprintf(w, "Seesaw ECU %s at %s\n", ipc.Version, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintln(w)

	eng := enginepb.NewEngineClient(e.engine)
	fmt.Fprintln(w, "Cluster")
	if cs, err := eng.ClusterStatus(ctx, &enginepb.ClusterStatusRequest{}); err != nil {
		fmt.Fprintf(w, "  unavailable: %v\n", err)
	} else {
		fmt.Fprintf(w, "  site:      %s\n", cs.Site)
		fmt.Fprintf(w, "  version:   %s\n", cs.Version)
		fmt.Fprintf(w, "  HA state:  %s\n", cs.HaState)
		for _, n := range cs.Nodes {
			this := ""
			if n.ThisNode {
				this = " (this node)"
			}
			fmt.Fprintf(w, "  node:      %s %s %s priority %d ha=%v vservers=%v%s\n",
				n.Fqdn, n.Ipv4, n.Ipv6, n.Priority, n.HaEnabled, n.VserversEnabled, this)
		}
	}
	fmt.Fprintln(w, "\nConfig")
	if cs, err := eng.ConfigStatus(ctx, &enginepb.ConfigStatusRequest{}); err != nil {
		fmt.Fprintf(w, "  unavailable: %v\n", err)
	} else {
		fmt.Fprintf(w, "  source:      %s\n", cs.Source)
		if cs.LastUpdate != nil {
			fmt.Fprintf(w, "  last update: %s\n", cs.LastUpdate.AsTime().UTC().Format(time.RFC3339))
		}
		if cs.Loaded != nil {
			fmt.Fprintf(w, "  loaded:      %s\n", cs.Loaded.AsTime().UTC().Format(time.RFC3339))
		}
		for _, a := range cs.Attributes {
			fmt.Fprintf(w, "  attribute:   %s = %s\n", a.Name, a.Value)
		}
		for _, wn := range cs.Warnings {
			fmt.Fprintf(w, "  warning:     %s\n", wn)
		}
		if cs.LastError != "" {
			fmt.Fprintf(w, "  last rejected config (%s):\n    %s\n",
				cs.LastErrorTime.AsTime().UTC().Format(time.RFC3339), strings.ReplaceAll(cs.LastError, "\n", "\n    "))
		}
	}

	fmt.Fprintln(w, "\nVservers")
	if vs, err := eng.Vservers(ctx, &enginepb.VserversRequest{}); err != nil {
		fmt.Fprintf(w, "  unavailable: %v\n", err)
	} else {
		writeVservers(w, vs.Vservers)
	}

	fmt.Fprintln(w, "\nComponents")
	statuses := map[string]*seesawpb.ComponentStatus{"ecu": e.comp.Snapshot()}
	errs := map[string]error{}
	for _, name := range e.names {
		st, err := seesawpb.NewComponentClient(e.conns[name]).Status(ctx, &seesawpb.StatusRequest{})
		if err != nil {
			errs[name] = err
			continue
		}
		statuses[name] = st
	}
	names := append([]string{"ecu"}, e.names...)
	sort.Strings(names)
	for _, name := range names {
		if err, ok := errs[name]; ok {
			fmt.Fprintf(w, "  %-12s does not answer: %v\n", name, err)
			continue
		}
		st := statuses[name]
		fmt.Fprintf(w, "  %-12s pid %d, %s, healthy=%v, %s\n", name, st.Pid, st.Version, st.Healthy, st.State)
		for _, f := range st.Facilities {
			mark := "ok "
			if !f.Available {
				mark = "NO "
			}
			fmt.Fprintf(w, "      %s %-12s %s\n", mark, f.Name, f.Detail)
		}
		for _, wn := range st.Warnings {
			fmt.Fprintf(w, "      warning: %s\n", wn)
		}
	}
}

// writeVservers renders each vserver: its state and VIPs, each service
// with its state and watermark, each destination with its weight, health
// and connections, and why a destination is out.
func writeVservers(w io.Writer, vs []*enginepb.VserverStatus) {
	if len(vs) == 0 {
		fmt.Fprintln(w, "  none configured")
	}
	for _, v := range vs {
		state := "enabled"
		if !v.Enabled {
			state = "disabled"
		}
		if v.Override != enginepb.OverrideState_OVERRIDE_DEFAULT {
			state += " (override " + strings.ToLower(strings.TrimPrefix(v.Override.String(), "OVERRIDE_")) + ")"
		}
		fmt.Fprintf(w, "  %s  %s\n", v.Name, state)
		for _, vip := range v.Vips {
			active := "inactive"
			if vip.Active {
				active = "active"
			}
			fmt.Fprintf(w, "    VIP %s on %s (%s), %s\n", vip.Address, vip.Interface, vip.Placement, active)
		}
		for _, s := range v.Services {
			what := fmt.Sprintf("%s %s", s.Protocol, hostPort(s.Vip, s.Port))
			if s.Fwmark != 0 {
				what = fmt.Sprintf("FWM %d (%s)", s.Fwmark, s.Vip)
			}
			up := "down"
			if s.Active {
				up = "up"
			}
			fmt.Fprintf(w, "    %s %s %s: %s, %d/%d destinations healthy", what, s.Mode, s.Scheduler, up, s.HealthyDestinations, s.InServiceDestinations)
			if st := s.Stats; st != nil {
				fmt.Fprintf(w, ", %d connections, %d packets in", st.Connections, st.PacketsIn)
			}
			fmt.Fprintln(w)
			for _, d := range s.Destinations {
				var state string
				switch {
				case d.Quiesced:
					state = "quiesced (weight 0)"
				case d.InIpvs:
					state = "in service"
				case !d.Enabled:
					state = "disabled"
				default:
					state = "out"
				}
				fmt.Fprintf(w, "      -> %s weight %d, %s, active %d inactive %d", hostPort(d.Address, d.Port), d.Weight, state, d.ActiveConnections, d.InactiveConnections)
				if len(d.FailingChecks) > 0 {
					fmt.Fprintf(w, "; failing: %s", strings.Join(d.FailingChecks, "; "))
				}
				fmt.Fprintln(w)
			}
		}
		for _, wn := range v.Warnings {
			fmt.Fprintf(w, "    warning: %s\n", wn)
		}
	}
}

func hostPort(addr string, port uint32) string {
	if strings.Contains(addr, ":") {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

// limit serves at most n requests at once and answers the others 503
// straight away.
func limit(h http.Handler, n int) http.Handler {
	sem := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			h.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "ecu: too many requests at once; try again", http.StatusServiceUnavailable)
		}
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// codeOf is the gRPC status code of err, by name.
func codeOf(err error) string { return status.Code(err).String() }

var (
	glogInfof    = glog.Infof
	glogWarningf = glog.Warningf
)

// startControl starts remote control when its files are there, and says
// in the ECU's status why it is off otherwise.
func (e *ecu) startControl(ctx context.Context, wg *sync.WaitGroup) {
	if e.cfg.ControlAddr == "-" {
		e.comp.SetFacility("remote-control", false, "turned off (-control_addr=-)")
		return
	}
	tc, err := controlTLS(e.cfg.SSLDir)
	if err != nil {
		// Without the files remote control is off by design (Seesaw's
		// rule), which leaves the ECU healthy; files that are there but
		// unusable are a fault.
		e.comp.SetFacility("remote-control", errors.Is(err, os.ErrNotExist), "disabled: "+err.Error())
		glog.Infof("ecu: remote control disabled: %v", err)
		return
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", e.cfg.ControlAddr)
	if err != nil {
		e.comp.SetFacility("remote-control", false, fmt.Sprintf("cannot listen on %s: %v", e.cfg.ControlAddr, err))
		glog.Errorf("ecu: remote control: %v", err)
		return
	}
	e.comp.SetFacility("remote-control", true, "mutual TLS on "+lis.Addr().String()+"; roles from [remote_control] of "+e.cfg.EngineConf)
	glog.Infof("ecu: remote control on %s", lis.Addr())
	if e.cfg.ControlReady != nil {
		e.cfg.ControlReady(lis.Addr())
	}
	wg.Go(func() { e.serveControl(ctx, lis, tc) })
}
