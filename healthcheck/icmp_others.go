//go:build !linux

package healthcheck

import (
	"errors"
	"net"
)

func listenPingDgram(bool) (net.PacketConn, error) {
	return nil, errors.New("unprivileged ping sockets are implemented for Linux only")
}
