//go:build !linux

package ncc

import (
	"fmt"
	"runtime"

	"github.com/seesawlb/seesaw/ncc/netconf"
)

// openNet reports that the NCC manages Linux hosts only.
func openNet() (netconf.Kernel, error) {
	return nil, fmt.Errorf("ncc: network configuration is managed on Linux only, not %s", runtime.GOOS)
}
