//go:build !linux

package healthcheck

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"time"
)

// markControl fails: firewall marks (and IPVS) are Linux-only.
func markControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error {
		return fmt.Errorf("set SO_MARK %#x: firewall marks are Linux-only", mark)
	}
}

// dialTCP connects with the net package's dialer.
func dialTCP(t *target, deadline time.Time, _ bool) (net.Conn, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return t.dialer.DialContext(ctx, "tcp", t.dst.String())
}

// rawSockaddr is used on Linux only.
type rawSockaddr struct{}
