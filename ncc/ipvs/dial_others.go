//go:build !linux

package ipvs

import (
	"fmt"
	"runtime"
)

// Probe reports that IPVS exists only on Linux.
func Probe() (GenlFamily, error) {
	return GenlFamily{}, fmt.Errorf("ipvs: probe: %w: IPVS exists only on Linux, not %s", ErrNotAvailable, runtime.GOOS)
}

// New reports that IPVS exists only on Linux.
func New() (*Client, error) {
	return nil, fmt.Errorf("ipvs: %w: IPVS exists only on Linux, not %s", ErrNotAvailable, runtime.GOOS)
}
