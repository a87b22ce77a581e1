package ncc

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/seesawlb/seesaw/ncc/netconf"
)

// openNet is the host's network stack in the NCC's own namespace.
func openNet() (netconf.Kernel, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("ncc: open rtnetlink: %w", err)
	}
	return netconf.NewLinux(h, nil), nil
}
