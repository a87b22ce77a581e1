package ha

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// ipprotoVRRP is IP protocol 112, which VRRP adverts travel as.
const ipprotoVRRP = 112

// checkRawSocket opens (and closes) the raw socket a VRRP speaker needs, which
// is the one reliable test of CAP_NET_RAW: capability sets, user namespaces
// and seccomp all have a say.
func checkRawSocket() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, ipprotoVRRP)
	if err != nil {
		return fmt.Errorf("ha: open raw IP socket (protocol %d): %w (needs CAP_NET_RAW: run as root or setcap cap_net_raw+ep seesaw_ha)", ipprotoVRRP, err)
	}
	unix.Close(fd)
	return nil
}
