package ipc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/seesawlb/seesaw/deploy/testenv"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
	_ "github.com/seesawlb/seesaw/proto/healthcheck"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
	_ "github.com/seesawlb/seesaw/proto/watchdog"
)

// The test binary doubles as a client run under another uid: see TestMain.
const childEnv = "SEESAW_IPC_TEST_CHILD"

func TestMain(m *testing.M) {
	if sock := os.Getenv(childEnv); sock != "" {
		os.Exit(childCall(sock))
	}
	os.Exit(m.Run())
}

// childCall calls Component.Status and exits 0 on success, 3 on
// PermissionDenied, 4 on anything else.
func childCall(sock string) int {
	cc, err := Dial(sock, DialOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = seesawpb.NewComponentClient(cc).Status(ctx, &seesawpb.StatusRequest{})
	switch status.Code(err) {
	case codes.OK:
		return 0
	case codes.PermissionDenied:
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	fmt.Fprintln(os.Stderr, err)
	return 4
}

type component struct {
	seesawpb.UnimplementedComponentServer
}

func (component) Status(ctx context.Context, _ *seesawpb.StatusRequest) (*seesawpb.ComponentStatus, error) {
	c, _ := CredFromContext(ctx)
	return &seesawpb.ComponentStatus{Component: "test", Pid: c.PID}, nil
}

type logbuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logbuf) logf(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(f, a...))
}

func (l *logbuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func startServer(t *testing.T, opts ServerOptions) *Server {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	seesawpb.RegisterComponentServer(s, component{})
	enginepb.RegisterEngineServer(s, enginepb.UnimplementedEngineServer{})
	healthpb.RegisterHealthServer(s, health.NewServer())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func TestMethodAccess(t *testing.T) {
	for method, want := range map[string]seesawpb.Access{
		"/seesaw.Component/Status":                   seesawpb.Access_READ,
		"/seesaw.engine.Engine/ConfigReload":         seesawpb.Access_WRITE,
		"/seesaw.engine.Engine/HASession":            seesawpb.Access_INTERNAL,
		"/seesaw.ncc.NCC/Apply":                      seesawpb.Access_INTERNAL,
		"/grpc.health.v1.Health/Check":               seesawpb.Access_ACCESS_UNSPECIFIED,
		"/no.such.Service/Method":                    seesawpb.Access_ACCESS_UNSPECIFIED,
		"garbage":                                    seesawpb.Access_ACCESS_UNSPECIFIED,
		"/seesaw.watchdog.Watchdog/Services":         seesawpb.Access_READ,
		"/seesaw.healthcheck.Healthcheck/ListChecks": seesawpb.Access_READ,
	} {
		if got := MethodAccess(method); got != want {
			t.Errorf("MethodAccess(%q) = %v, want %v", method, got, want)
		}
	}
}

func TestRuleAllows(t *testing.T) {
	r := Rule{UIDs: []uint32{1000}, GIDs: []uint32{50}}
	for _, tc := range []struct {
		c    Cred
		want bool
	}{
		{Cred{UID: 0, GID: 0}, true},
		{Cred{UID: 1000, GID: 1000}, true},
		{Cred{UID: 1001, GID: 50}, true},
		{Cred{UID: 1001, GID: 1001, Groups: []uint32{7, 50}}, true},
		{Cred{UID: 1001, GID: 1001, Groups: []uint32{7}}, false},
	} {
		if got := r.Allows(tc.c); got != tc.want {
			t.Errorf("Allows(%+v) = %v, want %v", tc.c, got, tc.want)
		}
	}
	if !(Rule{Anyone: true}).Allows(Cred{UID: 12345}) {
		t.Error("Anyone rule refused a caller")
	}
}

func TestPolicyPerMethod(t *testing.T) {
	logs := &logbuf{}
	sock := filepath.Join(t.TempDir(), "run", "engine.sock")
	startServer(t, ServerOptions{Path: sock, Policy: Policy{Read: Rule{Anyone: true}}, Logf: logs.logf})
	cc, err := Dial(sock, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// READ, allowed: the handler sees our real pid through SO_PEERCRED.
	st, err := seesawpb.NewComponentClient(cc).Status(ctx, &seesawpb.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Pid != int32(os.Getpid()) {
		t.Errorf("server saw pid %d, want %d", st.Pid, os.Getpid())
	}
	// WRITE and INTERNAL as root: allowed, so the call reaches the
	// (unimplemented) handler.
	eng := enginepb.NewEngineClient(cc)
	if _, err := eng.ConfigReload(ctx, &enginepb.ConfigReloadRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("ConfigReload as root: %v, want Unimplemented", err)
	}
	// A method without an access level is refused even to root.
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("Health.Check: %v, want PermissionDenied", err)
	}
	if !strings.Contains(logs.String(), "declares no access level") {
		t.Errorf("no log line for the refusal; logs:\n%s", logs)
	}
}

func TestOtherUIDRefused(t *testing.T) {
	testenv.RequireRoot(t) // to run a client as another uid
	const nobody = 65534
	// Let the other uid reach the socket and run a copy of this test binary,
	// so that only the policy can refuse it.
	dir, err := os.MkdirTemp("", "ipc-uid-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "child")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "ncc", "ncc.sock")
	logs := &logbuf{}
	run := func(p Policy) (int, string) {
		s := startServerNamed(t, sock, p, logs)
		defer s()
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		return 0, string(out)
	}
	// Root-only policy: uid 65534 gets PermissionDenied and a log line.
	if code, out := run(RootOnly); code != 3 {
		t.Fatalf("uid %d under RootOnly: exit %d (%s), want 3 (PermissionDenied)", nobody, code, out)
	}
	if !strings.Contains(logs.String(), fmt.Sprintf("uid=%d", nobody)) {
		t.Errorf("refusal not logged with the caller's uid; logs:\n%s", logs)
	}
	// The same caller is let in once the policy names its uid.
	if code, out := run(Policy{Read: Rule{UIDs: []uint32{nobody}}}); code != 0 {
		t.Fatalf("uid %d allowed by policy: exit %d (%s), want 0", nobody, code, out)
	}
}

func startServerNamed(t *testing.T, sock string, p Policy, logs *logbuf) (stop func()) {
	t.Helper()
	s, err := NewServer(ServerOptions{Path: sock, DirMode: 0o755, SocketMode: 0o666, Policy: p, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	seesawpb.RegisterComponentServer(s, component{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, time.Second) }()
	return func() { cancel(); <-done }
}

func TestStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "x.sock")
	// A socket left behind by a dead process: bound, then closed without unlink.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	s := startServer(t, ServerOptions{Path: sock, Policy: RootOnly})
	_ = s
	// A live socket is not taken over.
	if _, err := Listen(ServerOptions{Path: sock}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Listen on a live socket: %v, want 'in use' error", err)
	}
	// A regular file at the path is never removed.
	f := filepath.Join(t.TempDir(), "file.sock")
	os.WriteFile(f, []byte("keep"), 0o644)
	if _, err := Listen(ServerOptions{Path: f}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v, want 'not a socket'", err)
	}
	if b, _ := os.ReadFile(f); string(b) != "keep" {
		t.Error("regular file was touched")
	}
}

func TestDirectoryModeAndSocketMode(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "engine", "engine.sock")
	startServer(t, ServerOptions{Path: sock, DirMode: 0o770, SocketMode: 0o660, Policy: RootOnly})
	di, err := os.Stat(filepath.Dir(sock))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o770 {
		t.Errorf("dir mode %v, want 0770", di.Mode().Perm())
	}
	si, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if si.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660", si.Mode().Perm())
	}
}

func TestGracefulStopRemovesSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "g.sock")
	s, err := NewServer(ServerOptions{Path: sock, Policy: RootOnly})
	if err != nil {
		t.Fatal(err)
	}
	seesawpb.RegisterComponentServer(s, component{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, time.Second) }()
	cc, _ := Dial(sock, DialOptions{})
	defer cc.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	if _, err := seesawpb.NewComponentClient(cc).Status(cctx, &seesawpb.StatusRequest{}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after stop: %v", err)
	}
}

func TestClientReconnects(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "r.sock")
	// The client exists before the server does, and survives a server restart.
	cc, err := Dial(sock, DialOptions{MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := seesawpb.NewComponentClient(cc).Status(ctx, &seesawpb.StatusRequest{}, grpcWaitForReady)
		return err
	}
	for i := 0; i < 2; i++ {
		stop := startServerNamed(t, sock, RootOnly, &logbuf{})
		if err := call(); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		stop()
	}
}

// TestLargeMessages: a desired state of tens of thousands of services is
// bigger than gRPC's default 4 MiB limit; both ends must accept it.
func TestLargeMessages(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "big.sock")
	big := strings.Repeat("x", 8<<20)
	cc := serveComponent(t, sock, Policy{Read: Rule{Anyone: true}}, bigComponent{s: big})
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	st, err := seesawpb.NewComponentClient(cc).Status(cctx, &seesawpb.StatusRequest{})
	if err != nil {
		t.Fatalf("8 MiB reply: %v", err)
	}
	if len(st.State) != len(big) {
		t.Errorf("reply state %d bytes, want %d", len(st.State), len(big))
	}
}

type bigComponent struct {
	seesawpb.UnimplementedComponentServer
	s string
}

func (b bigComponent) Status(context.Context, *seesawpb.StatusRequest) (*seesawpb.ComponentStatus, error) {
	return &seesawpb.ComponentStatus{State: b.s}, nil
}

// serveComponent serves srv as the Component service on a new server at
// sock with policy p, and dials it; both stop when the test ends.
func serveComponent(t *testing.T, sock string, p Policy, srv seesawpb.ComponentServer) *grpc.ClientConn {
	t.Helper()
	s, err := NewServer(ServerOptions{Path: sock, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	seesawpb.RegisterComponentServer(s, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	cc, err := Dial(sock, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}
