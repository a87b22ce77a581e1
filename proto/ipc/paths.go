package ipc

import "path/filepath"

// RunDir holds every daemon's runtime files, each in a directory named after
// the daemon.
const RunDir = "/var/run/seesaw"

// DefaultSocket is where the named daemon ("engine", "ncc", "ha",
// "healthcheck", "ecu", "watchdog") serves gRPC unless its flags say
// otherwise: RunDir/<component>/<component>.sock. The socket has a
// directory of its own so that the directory's mode and group decide who
// may connect.
func DefaultSocket(component string) string {
	return filepath.Join(RunDir, component, component+".sock")
}
