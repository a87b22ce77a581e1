package ipvs

import (
	"errors"
	"fmt"
	"os"

	"github.com/mdlayher/genetlink"
)

// ProbeConn is Probe over a connection the caller chose (a test's fake, or a
// socket opened in another network namespace).
func ProbeConn(c *genetlink.Conn) (GenlFamily, error) {
	f, err := c.GetFamily(FamilyName)
	if errors.Is(err, os.ErrNotExist) {
		return GenlFamily{}, fmt.Errorf("ipvs: probe: %w: %s", ErrNotAvailable, Hint)
	}
	if err != nil {
		return GenlFamily{}, fmt.Errorf("ipvs: probe: get generic netlink family %q: %w", FamilyName, err)
	}
	return GenlFamily{ID: f.ID, Version: f.Version}, nil
}
