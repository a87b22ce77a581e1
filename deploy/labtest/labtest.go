// Package labtest is what tests use to run in the kernel lab (deploy/lab)
// and to build networks of namespaces there or on the host.
//
// A lab test is named TestLab... and calls RequireLab first: `make vmtest`
// selects tests by that name and runs them inside the guest, and on the host
// they skip (make unit leaves them out with -skip '^TestLab').
//
// New builds the two-node topology of the sample config (deploy/samples): a
// client, a router, LB nodes and backends in their own network namespaces,
// joined by veth pairs and two bridges, with IPv4 and IPv6 addresses and
// routes. It works on the host kernel too (veth, bridges and namespaces are
// there; dummy, VLAN and IPIP links are not).
package labtest

import (
	"fmt"
	"os"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/seesawlb/seesaw/deploy/testenv"
)

// RequireLab marks t as a lab-layer test and skips it unless it runs where
// the kernel has IPVS (the lab's guest) and as root.
func RequireLab(t testing.TB) {
	t.Helper()
	t.Log(testenv.Marker + "lab")
	if err := ProbeIPVS(); err != nil {
		t.Skipf("needs the kernel lab (%v); run `make vmtest`, or: go test -exec \"$(pwd)/bin/seesaw-lab exec\" -run '^TestLab' ./PKG", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root inside the kernel lab")
	}
}

// ProbeIPVS returns nil when the running kernel has IPVS: its generic
// netlink family resolves.
func ProbeIPVS() error {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return fmt.Errorf("generic netlink: %w", err)
	}
	defer c.Close()
	if _, err := c.GetFamily("IPVS"); err != nil {
		return fmt.Errorf("this kernel has no IPVS generic netlink family: %w", err)
	}
	return nil
}
