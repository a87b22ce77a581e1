package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// listen opens a unixgram socket like systemd's notify socket.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	abstract := fmt.Sprintf("@seesaw-sdnotify-test-%d", os.Getpid())
	for _, socket := range []string{path, abstract} {
		c := listen(t, socket)
		n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": socket}))
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify(Ready); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); got != "READY=1" {
			t.Errorf("%s: got %q", socket, got)
		}
		if err := n.Notify(Stopping, "STATUS=bye"); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); got != "STOPPING=1\nSTATUS=bye" {
			t.Errorf("%s: got %q", socket, got)
		}
	}
}

func TestFromEnv(t *testing.T) {
	n, err := FromEnv(env(nil))
	if n != nil || err != nil {
		t.Errorf("unset: %v, %v", n, err)
	}
	// A nil Notifier is a quiet no-op.
	if err := n.Notify(Ready); err != nil {
		t.Error(err)
	}
	if _, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": "relative"})); err == nil {
		t.Error("relative socket accepted")
	}
	n, _ = New(filepath.Join(t.TempDir(), "nobody-listens"))
	if err := n.Notify(Ready); err == nil {
		t.Error("send to a missing socket succeeded")
	}
}

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want time.Duration
		err  bool
	}{
		{nil, 0, false},
		{map[string]string{"WATCHDOG_USEC": "3000000"}, 3 * time.Second, false},
		{map[string]string{"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "42"}, 3 * time.Second, false},
		{map[string]string{"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "43"}, 0, false},
		{map[string]string{"WATCHDOG_USEC": "soon"}, 0, true},
		{map[string]string{"WATCHDOG_USEC": "0"}, 0, true},
		{map[string]string{"WATCHDOG_USEC": "1", "WATCHDOG_PID": "x"}, 0, true},
	}
	for _, tc := range tests {
		got, err := WatchdogInterval(env(tc.env), 42)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%v: %v, %v; want %v, error %v", tc.env, got, err, tc.want, tc.err)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	c := listen(t, filepath.Join(t.TempDir(), "notify"))
	n, err := New(c.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var checks atomic.Int32
	healthy := func() bool { return checks.Add(1) > 2 } // the first two checks fail
	done := make(chan struct{})
	go func() {
		n.KeepAlive(ctx, 20*time.Millisecond, healthy, t.Logf)
		close(done)
	}()
	for range 3 {
		if got := recv(t, c); got != "WATCHDOG=1" {
			t.Errorf("got %q", got)
		}
	}
	if got := checks.Load(); got < 5 {
		t.Errorf("%d health checks for 3 pings, want the 2 failed ones skipped", got)
	}
	cancel()
	<-done
}
