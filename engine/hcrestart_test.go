package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/healthcheck"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	"github.com/seesawlb/seesaw/proto/ipc"
)

// serveEngineSock serves e on a socket in a temporary directory, letting
// any local user in, and returns its path.
func serveEngineSock(t *testing.T, e *Engine) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "engine.sock")
	all := ipc.Rule{Anyone: true}
	s, err := ipc.NewServer(ipc.ServerOptions{Path: sock, Policy: ipc.Policy{Read: all, Write: all, Internal: all}})
	if err != nil {
		t.Fatal(err)
	}
	e.Register(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, 100*time.Millisecond) }()
	t.Cleanup(func() { cancel(); <-done })
	return sock
}

type checkFunc func(context.Context) healthcheck.Outcome

func (f checkFunc) Check(ctx context.Context) healthcheck.Outcome { return f(ctx) }

// TestRestartedCheckerKeepsDestinations: the real healthcheck process body
// against the engine. A destination healthy under the first checker stays
// in when a restarted checker's first run of its check fails: the engine
// hands the new checker each check's last known state, so it still takes
// retries+1 (here 3) consecutive failures to take the destination out, as
// before the restart, not one.
func TestRestartedCheckerKeepsDestinations(t *testing.T) {
	cfg, cl := copyGKE(t)
	b, err := os.ReadFile(cl)
	must(t, err)
	// The first vserver's check: every second, three tries.
	s := strings.Replace(string(b), `send: "/healthz"`, `send: "/healthz"
interval: 1
timeout: 1
retries: 2`, 1)
	must(t, os.WriteFile(cl, []byte(s), 0o644))
	r := newRig(t, cfg, cl, nil)
	r.ha(unknown, backup)
	r.ha(backup, leader)
	sock := serveEngineSock(t, r.e)

	const dest = "-a -t 100.115.222.143:443 -r 100.115.222.163:443"
	var failing atomic.Bool
	var failures atomic.Int32
	newChecker := func(c *hcpb.Check, _ *healthcheck.Env) (healthcheck.Checker, error) {
		target := c.GetAddress() == "100.115.222.163" && c.GetInterval().AsDuration() == time.Second
		return checkFunc(func(context.Context) healthcheck.Outcome {
			if target && failing.Load() {
				failures.Add(1)
				return healthcheck.Outcome{Message: "timed out"}
			}
			return healthcheck.Outcome{OK: true, Message: "ok"}
		}), nil
	}
	checker := func(name string) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- healthcheck.Run(ctx, healthcheck.Config{
				Socket: filepath.Join(t.TempDir(), name+".sock"), EngineSocket: sock,
				RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
				BatchDelay: time.Millisecond, ResyncInterval: 100 * time.Millisecond,
				NewChecker: newChecker,
			})
		}()
		stopped := false
		stop = func() {
			if !stopped {
				stopped = true
				cancel()
				<-done
			}
		}
		t.Cleanup(stop)
		return stop
	}

	stop1 := checker("hc1")
	r.waitFor("every destination in under the first checker", func() bool { return strings.Contains(r.k.ipvs.Save(), dest) })
	var id uint64
	r.e.mu.Lock()
	for _, c := range r.e.checks.Upsert {
		if c.Address == "100.115.222.163" && c.Interval.AsDuration() == time.Second {
			id = c.Id
		}
	}
	r.e.mu.Unlock()
	if id == 0 {
		t.Fatal("no one-second check of 100.115.222.163 in the check set")
	}
	stop1()

	// The restarted checker: its first run of the check fails.
	failing.Store(true)
	checker("hc2")
	r.waitFor("the restarted checker's state after its first failure to reach the engine", func() bool {
		r.e.mu.Lock()
		defer r.e.mu.Unlock()
		res := r.e.results[id]
		return res != nil && res.ConsecutiveFailures >= 1
	})
	r.settle()
	r.e.mu.Lock()
	res := r.e.results[id]
	r.e.mu.Unlock()
	if !res.Healthy || !strings.Contains(r.k.ipvs.Save(), dest) {
		t.Fatalf("after %d failure(s) under the restarted checker: result %v; destination in: %v, want healthy and in (retries 2)",
			failures.Load(), res, strings.Contains(r.k.ipvs.Save(), dest))
	}
	// The third consecutive failure takes it out, as without a restart.
	r.waitFor("the destination out after retries+1 failures", func() bool { return !strings.Contains(r.k.ipvs.Save(), dest) })
	if n := failures.Load(); n < 3 {
		t.Errorf("destination out after %d failures, want 3", n)
	}
	t.Logf("destination out after %d consecutive failures under the restarted checker", failures.Load())
}
