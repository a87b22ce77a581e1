//go:build !linux

package ha

import (
	"errors"
	"runtime"
)

func checkRawSocket() error {
	return errors.New("ha: raw VRRP sockets are implemented for Linux only, not " + runtime.GOOS)
}

// OpenRawConn is Linux-only.
func OpenRawConn(ConnConfig) (Conn, error) {
	return nil, errors.New("ha: raw VRRP sockets are implemented for Linux only, not " + runtime.GOOS)
}
