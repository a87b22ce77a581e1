package ipvs

import (
	"errors"
	"fmt"
	"os"

	"github.com/mdlayher/genetlink"
)

// Probe asks the kernel's generic netlink controller for the IPVS family.
// Asking is also what makes a kernel with ip_vs built as a module load it
// (the controller requests "net-pf-16-proto-16-family-IPVS"), when the caller
// may load modules.
func Probe() (Family, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return Family{}, fmt.Errorf("ipvs: probe: open generic netlink socket: %w", err)
	}
	defer c.Close()
	return ProbeConn(c)
}

// ProbeConn is Probe over a connection the caller chose (a test's fake, or a
// socket opened in another network namespace).
func ProbeConn(c *genetlink.Conn) (Family, error) {
	f, err := c.GetFamily(FamilyName)
	if errors.Is(err, os.ErrNotExist) {
		return Family{}, fmt.Errorf("ipvs: probe: %w: %s", ErrNotAvailable, Hint)
	}
	if err != nil {
		return Family{}, fmt.Errorf("ipvs: probe: get generic netlink family %q: %w", FamilyName, err)
	}
	return Family{ID: f.ID, Version: f.Version}, nil
}
