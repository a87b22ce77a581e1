package ipvs

import (
	"fmt"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// Probe asks the kernel's generic netlink controller for the IPVS family.
// Asking is also what makes a kernel with ip_vs built as a module load it
// (the controller requests "net-pf-16-proto-16-family-IPVS"), when the caller
// may load modules.
func Probe() (GenlFamily, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return GenlFamily{}, fmt.Errorf("ipvs: probe: open generic netlink socket: %w", err)
	}
	defer c.Close()
	return ProbeConn(c)
}

// New opens a generic netlink socket in the caller's network namespace
// and returns a client on it. Close releases the socket.
func New() (*Client, error) {
	c, err := netlink.Dial(genetlink.Protocol, nil)
	if err != nil {
		return nil, fmt.Errorf("ipvs: open generic netlink socket: %w", err)
	}
	// Three more sockets, opened here so that they are in the caller's
	// network namespace too, let State read large tables in parallel.
	var readers []*netlink.Conn
	for range 3 {
		r, err := netlink.Dial(genetlink.Protocol, nil)
		if err != nil {
			break
		}
		readers = append(readers, r)
	}
	cl, err := NewClientNetlink(c, readers...)
	if err != nil {
		c.Close()
		for _, r := range readers {
			r.Close()
		}
		return nil, err
	}
	return cl, nil
}
