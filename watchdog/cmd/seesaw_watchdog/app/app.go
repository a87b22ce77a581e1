// Package app is the seesaw_watchdog command, outside package main so that the
// multi-call binary (deploy/cmd/seesaw-multicall) links the same code as
// the standalone seesaw_watchdog, whose main only calls Main.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang/glog"

	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
	watchdogpb "github.com/seesawlb/seesaw/proto/watchdog"
	"github.com/seesawlb/seesaw/watchdog"
	"github.com/seesawlb/seesaw/watchdog/sdnotify"
)

// Defaults of the flags.
const (
	defaultConfig    = "/etc/seesaw/watchdog.cfg"
	defaultLogDir    = "/var/log/seesaw"
	defaultReadGroup = "seesaw"
)

// options are the command line.
type options struct {
	config    string
	logDir    string
	socket    string
	readGroup string
	backoff   time.Duration
	maxDelay  time.Duration
	stableRun time.Duration

	readyTimeout time.Duration
	reloadFirst  string
	reloadSettle time.Duration
	reloadSignal string
}

// Main runs seesaw_watchdog on os.Args, as its main did: it exits with
// status 1 on an error and returns once every service has stopped. First it
// turns transparent huge pages off, for itself and the services it starts,
// which may execute the binary again in place (watchdog.NoHugePages). Its
// flags are registered on flag.CommandLine when it is called, so it runs
// once per process.
func Main() {
	// First of all, since it may execute the binary again, and before any
	// service starts, so that each inherits it.
	thpErr := watchdog.NoHugePages()

	var o options
	flag.StringVar(&o.config, "config", defaultConfig, "path of watchdog.cfg")
	flag.StringVar(&o.logDir, "service_log_dir", defaultLogDir,
		"directory for the services' stdout/stderr (seesaw_<name>.log.<time>, with a seesaw_<name>.log symlink)")
	flag.StringVar(&o.socket, "socket", ipc.DefaultSocket("watchdog"), "path of the watchdog's status socket")
	flag.StringVar(&o.readGroup, "read_group", defaultReadGroup,
		"group whose members may read the status besides root; empty for root only (the default group is skipped when it does not exist)")
	flag.DurationVar(&o.backoff, "restart_delay", watchdog.DefaultBackoffBase,
		"delay before restarting a service that exited; doubles with each consecutive failure")
	flag.DurationVar(&o.maxDelay, "max_restart_delay", watchdog.DefaultBackoffMax, "cap of the restart delay")
	flag.DurationVar(&o.stableRun, "stable_run", watchdog.DefaultStableRun,
		"a run at least this long resets a service's consecutive failures")
	flag.DurationVar(&o.readyTimeout, "ready_timeout", 30*time.Second,
		"report READY to systemd after this long even if some services have not started (they are named in the log)")
	flag.StringVar(&o.reloadFirst, "reload_first", "ncc,ha",
		"services a reload (SIGHUP, systemctl reload) restarts first, in this order; the others follow, each after its dependencies")
	flag.StringVar(&o.reloadSignal, "reload_signal", "ha=USR2,engine=USR2",
		"service=SIGNAL,...: the signal a reload stops these services with instead of SIGTERM; seesaw_ha takes SIGUSR2 as a restart that keeps this node's mastership, seesaw_engine as one that HA is told to wait out")
	flag.DurationVar(&o.reloadSettle, "reload_settle", time.Second,
		"during a reload, how long to wait after one service runs again before restarting the next")
	flag.Parse()

	// SIGQUIT stops in order too, as in Seesaw, rather than Go's default of
	// dumping and exiting, which would orphan the services.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	defer stop()
	hup := make(chan struct{}, 1)
	go handleSignals(hup)

	glog.Infof("seesaw_watchdog starting (pid %d)", os.Getpid())
	if thpErr != nil {
		glog.Warningf("seesaw_watchdog: transparent huge pages may stay on: %v", thpErr)
	}
	if err := run(ctx, o, os.Getenv, hup); err != nil {
		glog.Errorf("seesaw_watchdog: %v", err)
		glog.Flush()
		os.Exit(1)
	}
	glog.Infof("seesaw_watchdog: all services stopped")
	glog.Flush()
}

// run supervises until ctx ends and every service has stopped. getenv is
// os.Getenv outside tests; it supplies systemd's variables. Each value on
// hup (SIGHUP) reloads: every service restarts on the binary now on disk.
func run(ctx context.Context, o options, getenv func(string) string, hup <-chan struct{}) error {
	cfg, err := watchdog.LoadConfig(o.config)
	if err != nil {
		return err
	}
	reloadSignal, err := watchdog.ParseReloadSignals(o.reloadSignal)
	if err != nil {
		return fmt.Errorf("--reload_signal: %w", err)
	}
	sup, err := watchdog.New(cfg, watchdog.Options{
		LogDir:      o.logDir,
		BackoffBase: o.backoff,
		BackoffMax:  o.maxDelay,
		StableRun:   o.stableRun,
		Logf:        glog.Infof,

		ReloadFirst:  splitList(o.reloadFirst),
		ReloadSettle: o.reloadSettle,
		ReloadSignal: reloadSignal,
	})
	if err != nil {
		return err
	}

	// systemd is an aid, not a requirement: a broken NOTIFY_SOCKET is
	// logged and the services are supervised all the same.
	notifier, err := sdnotify.FromEnv(getenv)
	if err != nil {
		glog.Errorf("seesaw_watchdog: not notifying systemd: %v", err)
	}
	keepAlive, err := sdnotify.WatchdogInterval(getenv, os.Getpid())
	if err != nil {
		glog.Errorf("seesaw_watchdog: no systemd watchdog pings: %v", err)
	}

	// The status socket runs on its own context so that it keeps answering
	// while the services are being stopped; it closes after they have.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopBG()

	srv, err := statusServer(o, sup)
	if err != nil {
		// Like systemd, the socket is not worth leaving the load balancer
		// unsupervised for.
		glog.Errorf("seesaw_watchdog: status socket unavailable: %v", err)
	} else {
		wg.Go(func() {
			if err := srv.Serve(bg, time.Second); err != nil {
				glog.Errorf("seesaw_watchdog: %v", err)
			}
		})
	}

	wg.Go(func() {
		// READY=1 once every service has started; but a service that cannot
		// start (a missing binary) must not hold systemd's start job until it
		// kills and restarts the watchdog and with it every healthy service.
		// After ready_timeout the watchdog reports ready and names the laggards.
		if o.readyTimeout <= 0 {
			o.readyTimeout = 30 * time.Second
		}
		timer := time.NewTimer(o.readyTimeout)
		defer timer.Stop()
		ready := func() {
			if err := notifier.Notify(sdnotify.Ready); err != nil {
				glog.Errorf("seesaw_watchdog: %v", err)
			}
		}
		select {
		case <-sup.Ready():
			glog.Infof("seesaw_watchdog: all services started")
			ready()
		case <-timer.C:
			var waiting []string
			for _, st := range sup.Status().Services {
				if st.State != watchdog.StateRunning {
					waiting = append(waiting, fmt.Sprintf("%s (%s)", st.Name, st.State))
				}
			}
			glog.Warningf("seesaw_watchdog: ready after %v with services not running: %s", o.readyTimeout, strings.Join(waiting, ", "))
			ready()
		case <-ctx.Done():
		}
		<-ctx.Done()
		glog.Infof("seesaw_watchdog: stopping all services")
		if err := notifier.Notify(sdnotify.Stopping); err != nil {
			glog.Errorf("seesaw_watchdog: %v", err)
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			reload(ctx, sup, notifier)
		}
	})
	if keepAlive > 0 {
		glog.Infof("seesaw_watchdog: pinging the systemd watchdog every %v", keepAlive/2)
		// Status takes the supervisor's lock, so a wedged supervisor stops
		// the pings and systemd restarts us.
		wg.Go(func() { notifier.KeepAlive(bg, keepAlive, func() bool { sup.Status(); return true }, glog.Errorf) })
	}

	return sup.Run(ctx)
}

// statusServer serves Watchdog.Services and Component.Status on the socket.
func statusServer(o options, sup *watchdog.Supervisor) (*ipc.Server, error) {
	policy, gid, err := readPolicy(o.readGroup)
	if err != nil {
		return nil, err
	}
	srv, err := ipc.NewServer(ipc.ServerOptions{
		Path:   o.socket,
		UID:    -1,
		GID:    gid,
		Policy: policy,
		Logf:   glog.Infof,
	})
	if err != nil {
		return nil, err
	}
	comp := ipc.NewComponent("watchdog")
	comp.SetHook(func(st *seesawpb.ComponentStatus) {
		snap := sup.Status()
		running := 0
		var down []string
		for _, s := range snap.Services {
			if s.State == watchdog.StateRunning {
				running++
			} else {
				down = append(down, s.Name+" "+s.State.String())
			}
		}
		st.Details["services_running"] = fmt.Sprintf("%d/%d", running, len(snap.Services))
		if len(down) > 0 {
			st.Details["services_not_running"] = strings.Join(down, ", ")
		}
	})
	watchdogpb.RegisterWatchdogServer(srv, watchdog.NewServer(sup.Status))
	seesawpb.RegisterComponentServer(srv, comp)
	return srv, nil
}

// readPolicy lets root and the members of group read the status, and
// returns the gid that should own the socket's directory (-1 for none).
func readPolicy(group string) (ipc.Policy, int, error) {
	if group == "" {
		return ipc.RootOnly, -1, nil
	}
	gid, err := ipc.LookupGroup(group)
	if errors.Is(err, ipc.ErrUnknownName) && group == defaultReadGroup {
		glog.Infof("seesaw_watchdog: group %q does not exist: status for root only", group)
		return ipc.RootOnly, -1, nil
	}
	if err != nil {
		return ipc.Policy{}, 0, fmt.Errorf("read group: %w", err)
	}
	return ipc.Policy{Read: ipc.Rule{GIDs: []uint32{gid}}}, int(gid), nil
}

// reload restarts every service on the binaries now on disk, telling
// systemd that the unit is reloading meanwhile.
func reload(ctx context.Context, sup *watchdog.Supervisor, notifier *sdnotify.Notifier) {
	glog.Infof("seesaw_watchdog: reload: restarting every service, one at a time")
	if err := notifier.Notify(sdnotify.Reloading, sdnotify.MonotonicUsec()); err != nil {
		glog.Errorf("seesaw_watchdog: %v", err)
	}
	status := "STATUS=reloaded"
	if err := sup.Reload(ctx); err != nil {
		glog.Errorf("seesaw_watchdog: %v", err)
		status = "STATUS=reload failed: " + strings.ReplaceAll(err.Error(), "\n", " ")
	} else {
		glog.Infof("seesaw_watchdog: reload: every service restarted")
	}
	if err := notifier.Notify(sdnotify.Ready, status); err != nil {
		glog.Errorf("seesaw_watchdog: %v", err)
	}
}

// splitList splits a comma or space separated list.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// handleSignals writes every goroutine's stack to the log on SIGUSR1 and
// turns SIGHUP into a reload on hup (a reload asked for while one is under
// way runs once it is done; more are one). It listens for the life of the
// process, the ordered shutdown included, because the default action of
// both signals would kill the watchdog and orphan the services.
func handleSignals(hup chan<- struct{}) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1, syscall.SIGHUP)
	for sig := range c {
		if sig == syscall.SIGHUP {
			select {
			case hup <- struct{}{}:
			default:
			}
			continue
		}
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		glog.Infof("SIGUSR1: goroutines:\n%s", buf)
		glog.Flush()
	}
}
