// Package testenv lets a test say which layer it belongs to and skip, with a
// reason, where that layer cannot run. `make test` counts tests per layer
// from the marker lines these helpers log (see deploy/testsum).
//
// Layers: unit (pure logic, the default for any test that calls nothing
// here), namespace (root on the host kernel: real sockets, links and
// processes), lab (inside the kernel lab's guest, for IPVS).
package testenv

import (
	"os"
	"testing"
)

// Marker is the prefix of the line a test logs to name its layer.
const Marker = "seesaw-test-layer: "

// RequireRoot marks t as a namespace-layer test and skips it unless it runs
// as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	t.Log(Marker + "namespace")
	if os.Geteuid() != 0 {
		t.Skip("needs root (real sockets, processes and namespaces on the host kernel); run `make test` as root")
	}
}
