//go:build !linux

package ipvs

import (
	"fmt"
	"runtime"
)

// Probe reports that IPVS exists only on Linux.
func Probe() (Family, error) {
	return Family{}, fmt.Errorf("ipvs: probe: %w: IPVS exists only on Linux, not %s", ErrNotAvailable, runtime.GOOS)
}
