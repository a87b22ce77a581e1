package app

import (
	"context"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
	watchdogpb "github.com/seesawlb/seesaw/proto/watchdog"
)

func init() {
	flag.Set("logtostderr", "true")
}

// TestRun runs the whole watchdog: two services, the status socket, and
// systemd's notify socket with keep-alives.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "watchdog.cfg")
	cfg := "[a]\nbinary = /bin/sleep\nargs = 1000\n[b]\nbinary = /bin/sleep\nargs = 1000\ndependency = a\nterm_timeout = 200ms\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	getenv := func(k string) string {
		return map[string]string{
			"NOTIFY_SOCKET": filepath.Join(dir, "notify"),
			"WATCHDOG_USEC": "100000",
		}[k]
	}
	o := options{
		config:    cfgPath,
		logDir:    filepath.Join(dir, "log"),
		socket:    filepath.Join(dir, "run", "watchdog.sock"),
		backoff:   10 * time.Millisecond,
		maxDelay:  time.Second,
		stableRun: time.Second,

		readyTimeout: time.Hour,
		reloadFirst:  "b",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	hup := make(chan struct{}, 1)
	go func() { done <- run(ctx, o, getenv, hup) }()

	// READY=1 comes once both services run; keep-alives may arrive around it.
	got := map[string]bool{}
	waitNotify := func(want string) {
		t.Helper()
		buf := make([]byte, 1024)
		for !got[want] {
			notify.SetReadDeadline(time.Now().Add(15 * time.Second))
			n, err := notify.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			for _, l := range strings.Split(string(buf[:n]), "\n") {
				got[l] = true
			}
		}
	}
	waitNotify("READY=1")
	waitNotify("WATCHDOG=1")
	if got["STOPPING=1"] {
		t.Fatal("STOPPING=1 before stop")
	}

	cc, err := ipc.Dial(o.socket, ipc.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
	defer rcancel()
	resp, err := watchdogpb.NewWatchdogClient(cc).Services(rctx, &watchdogpb.ServicesRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Services) != 2 || resp.Started == nil {
		t.Fatalf("services: %v", resp)
	}
	for _, s := range resp.Services {
		if s.State != watchdogpb.ServiceState_SERVICE_STATE_RUNNING || s.Pid == 0 ||
			!strings.HasPrefix(s.LogFile, o.logDir+"/seesaw_"+s.Name+".log.") {
			t.Errorf("service %v", s)
		}
	}
	st, err := seesawpb.NewComponentClient(cc).Status(rctx, &seesawpb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Component != "watchdog" || st.Details["services_running"] != "2/2" || !st.Healthy {
		t.Errorf("component status %v", st)
	}

	// SIGHUP reloads: systemd hears RELOADING=1 (with the time), every
	// service runs again as a new process, then READY=1 again.
	delete(got, "READY=1")
	hup <- struct{}{}
	buf := make([]byte, 1024)
	var reloading string
	for reloading == "" {
		notify.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, err := notify.Read(buf)
		if err != nil {
			t.Fatalf("waiting for RELOADING=1: %v", err)
		}
		if m := string(buf[:n]); strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
			reloading = m
		}
	}
	waitNotify("READY=1")
	after, err := watchdogpb.NewWatchdogClient(cc).Services(rctx, &watchdogpb.ServicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range after.Services {
		if s.State != watchdogpb.ServiceState_SERVICE_STATE_RUNNING || s.Pid == resp.Services[i].Pid || s.Restarts != 1 {
			t.Errorf("after reload: %v, was pid %d", s, resp.Services[i].Pid)
		}
	}
	resp = after

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
	}
	waitNotify("STOPPING=1")
	for _, s := range resp.Services {
		if err := syscall.Kill(int(s.Pid), 0); err == nil {
			t.Errorf("%s (pid %d) survived the watchdog", s.Name, s.Pid)
		}
	}
	if _, err := os.Stat(o.socket); err == nil {
		t.Errorf("socket %s left behind", o.socket)
	}
}

func TestRunBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "watchdog.cfg")
	if err := os.WriteFile(cfgPath, []byte("[a]\nbinary = /bin/true\ndependency = b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), options{config: cfgPath, logDir: dir, socket: filepath.Join(dir, "s.sock")}, func(string) string { return "" }, nil)
	if err == nil || !strings.Contains(err.Error(), cfgPath+":3: dependency") {
		t.Errorf("run = %v, want the config error at line 3", err)
	}
}

// TestReadyDespiteMissingBinary: one service that cannot start must not keep
// systemd from hearing READY=1 (it would kill and restart everything).
func TestReadyDespiteMissingBinary(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "watchdog.cfg")
	cfg := "[a]\nbinary = /bin/sleep\nargs = 1000\nterm_timeout = 200ms\n[b]\nbinary = " + filepath.Join(dir, "missing") + "\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	getenv := func(k string) string {
		return map[string]string{"NOTIFY_SOCKET": filepath.Join(dir, "notify")}[k]
	}
	o := options{
		config: cfgPath, logDir: filepath.Join(dir, "log"), socket: filepath.Join(dir, "run", "watchdog.sock"),
		backoff: 10 * time.Millisecond, maxDelay: time.Second, stableRun: time.Second,
		readyTimeout: 200 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, getenv, nil) }()
	buf := make([]byte, 1024)
	for {
		notify.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, err := notify.Read(buf)
		if err != nil {
			t.Fatalf("waiting for READY=1: %v", err)
		}
		if string(buf[:n]) == "READY=1" {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
