// Package ipvslab gives kernel-lab tests a network namespace of their own
// with IPVS in it, so that each test starts from an empty table.
package ipvslab

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/ncc/ipvs"
)

// Node makes a namespace with lo and a dummy0 up and opens a client of its
// IPVS; both go when the test ends. lo matters: without the namespace's
// local routing table the kernel takes every IPv4 destination for a
// broadcast address and refuses it. The caller has checked
// labtest.RequireLab.
func Node(t testing.TB, role string) (*labtest.Node, *ipvs.Client) {
	t.Helper()
	n := labtest.NewTestNode(t, role)
	if err := n.AddLink(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "dummy0"}}); err != nil {
		t.Fatal(err)
	}
	if err := n.LinkUp("dummy0"); err != nil {
		t.Fatal(err)
	}
	var c *ipvs.Client
	if err := n.Do(func() (err error) { c, err = ipvs.New(); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return n, c
}
