package ipvstest

import (
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/ipvs/ipvslab"
)

// TestLabFakeAgreesWithKernel makes the same random calls on the fake and
// on the lab's real kernel, and requires the same outcome for each (the
// same errno) and the same table and daemons after each. Where they part,
// the fake is wrong.
func TestLabFakeAgreesWithKernel(t *testing.T) {
	labtest.RequireLab(t)
	_, real := ipvslab.Node(t, "ipvstest")
	fake := New()
	fc := client(t, fake)

	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("IPVSTEST_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d", seed)
	for i, o := range randomOps(rand.New(rand.NewPCG(seed, 7)), 400) {
		want, got := outcome(o.do(real)), outcome(o.do(fc))
		if want != got {
			t.Errorf("call %d, %s: kernel says %q, fake %q", i, o.name, want, got)
		}
		st, err := real.State()
		if err != nil {
			t.Fatal(err)
		}
		var table []ipvs.VirtualServer
		for _, s := range st {
			table = append(table, s.Config())
		}
		if k, f := normalize(table), fake.Table(); !slices.EqualFunc(k, f, sameServer) {
			t.Errorf("after call %d, %s:\nkernel:\n%s\nfake:\n%s\nkernel: %+v\nfake:   %+v", i, o.name, ipvs.Save(k), ipvs.Save(f), k, f)
			// Carry on from the kernel's state, to find every difference
			// in one run.
			fake.Edit(func([]ipvs.VirtualServer) []ipvs.VirtualServer { return table })
		}
		kd, err := real.SyncDaemons()
		if err != nil {
			t.Fatal(err)
		}
		fd, err := fc.SyncDaemons()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(kd, fd) {
			t.Fatalf("after call %d, %s: daemons:\nkernel %+v\nfake   %+v", i, o.name, kd, fd)
		}
	}
	t.Logf("final state:\n%s", fake)
}

// TestLabBatchedWritesOnKernel sends random changes to the real kernel in
// batches and to the fake one by one: every change must have the same
// outcome, and the tables must end equal. This is the kernel's word on the
// batch protocol (acknowledgements only for failures and the last).
func TestLabBatchedWritesOnKernel(t *testing.T) {
	labtest.RequireLab(t)
	_, real := ipvslab.Node(t, "ipvstest")
	fake := New()
	fc, err := ipvs.NewClient(fake.Dial())
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	ops := randomOps(rand.New(rand.NewPCG(seed, 9)), 1000)
	errs := real.Write(writes(ops))
	failures := 0
	for i, o := range ops {
		want := outcome(o.do(fc))
		if got := outcome(errs[i]); got != want {
			t.Errorf("call %d, %s: kernel (batched) %q, fake (alone) %q", i, o.name, got, want)
		}
		if errs[i] != nil {
			failures++
		}
	}
	st, err := real.State()
	if err != nil {
		t.Fatal(err)
	}
	var table []ipvs.VirtualServer
	for _, s := range st {
		table = append(table, s.Config())
	}
	if k, f := normalize(table), fake.Table(); !slices.EqualFunc(k, f, sameServer) {
		t.Errorf("kernel:\n%s\nfake:\n%s", ipvs.Save(k), ipvs.Save(f))
	}
	t.Logf("%d of %d changes failed, as on the fake", failures, len(ops))
}

func normalize(vs []ipvs.VirtualServer) []ipvs.VirtualServer {
	out := []ipvs.VirtualServer{}
	for _, v := range vs {
		n := ipvs.VirtualServer{Service: v.Service.Normalize()}
		for _, d := range v.Destinations {
			n.Destinations = append(n.Destinations, d.Normalize())
		}
		slices.SortFunc(n.Destinations, func(a, b ipvs.Destination) int { return strings.Compare(a.String(), b.String()) })
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b ipvs.VirtualServer) int {
		return strings.Compare(a.ServiceKey.String(), b.ServiceKey.String())
	})
	return out
}

func sameServer(a, b ipvs.VirtualServer) bool {
	return a.Service == b.Service && slices.Equal(a.Destinations, b.Destinations)
}
