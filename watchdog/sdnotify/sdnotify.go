// Package sdnotify speaks systemd's notification protocol (sd_notify(3)) so
// that a Type=notify service can report readiness, shutdown and watchdog
// keep-alives without linking libsystemd.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Messages understood by systemd.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
	// Reloading is sent with MonotonicUsec when a reload starts, and
	// Ready when it is done.
	Reloading = "RELOADING=1"
)

// MonotonicUsec is the MONOTONIC_USEC= line systemd wants with RELOADING=1:
// CLOCK_MONOTONIC now, in microseconds.
func MonotonicUsec() string {
	return "MONOTONIC_USEC=" + strconv.FormatInt(monotonicNow().Microseconds(), 10)
}

// Notifier sends state lines to the socket named by $NOTIFY_SOCKET.
type Notifier struct {
	addr *net.UnixAddr
}

// New returns a Notifier for socket, a path or, with a leading '@', a name
// in the abstract namespace.
func New(socket string) (*Notifier, error) {
	if socket == "" {
		return nil, errors.New("sdnotify: empty socket name")
	}
	if socket[0] != '/' && socket[0] != '@' {
		return nil, fmt.Errorf("sdnotify: socket %q is neither an absolute path nor abstract (@)", socket)
	}
	// Go's net package maps a leading '@' to the abstract namespace's NUL.
	return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}, nil
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET, or nil when it is unset
// (not started by systemd, or not as Type=notify). getenv is os.Getenv in
// production.
func FromEnv(getenv func(string) string) (*Notifier, error) {
	socket := getenv("NOTIFY_SOCKET")
	if socket == "" {
		return nil, nil
	}
	return New(socket)
}

// Notify sends the given state lines as one datagram. A nil Notifier does
// nothing, so callers need not check whether systemd is listening.
func (n *Notifier) Notify(states ...string) error {
	if n == nil {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: dial %s: %w", n.addr.Name, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(states, "\n"))); err != nil {
		return fmt.Errorf("sdnotify: send to %s: %w", n.addr.Name, err)
	}
	return nil
}

// WatchdogInterval returns systemd's watchdog timeout from $WATCHDOG_USEC,
// or 0 when the watchdog is off or meant for another process
// ($WATCHDOG_PID set to a pid other than pid).
func WatchdogInterval(getenv func(string) string, pid int) (time.Duration, error) {
	usec := getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0, nil
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		wpid, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID=%q: %w", p, err)
		}
		if wpid != pid {
			return 0, nil
		}
	}
	us, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || us == 0 {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC=%q is not a positive integer", usec)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// KeepAlive sends WATCHDOG=1 every timeout/2 until ctx ends, as systemd
// recommends. Before each ping it calls healthy (if not nil) and skips the
// ping when it returns false, so that systemd notices a wedged process and
// not just a live one. Send errors go to logf.
func (n *Notifier) KeepAlive(ctx context.Context, timeout time.Duration, healthy func() bool, logf func(string, ...any)) {
	if n == nil || timeout <= 0 {
		return
	}
	t := time.NewTicker(timeout / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if healthy != nil && !healthy() {
			continue
		}
		if err := n.Notify(Watchdog); err != nil && logf != nil {
			logf("%v", err)
		}
	}
}
