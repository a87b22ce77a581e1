package reconcile

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/netconf"
)

// mhService is an mh service with the destinations 10.0.0.<n>:80 of ns,
// in that order, each with weight w[n] (1 when absent).
func mhService(sched string, w map[int]uint32, ns ...int) IPVSState {
	v := ipvs.VirtualServer{Service: ipvs.Service{ServiceKey: web, Scheduler: sched, Flags: ipvs.FlagSched1}}
	for _, n := range ns {
		wt, ok := w[n]
		if !ok {
			wt = 1
		}
		v.Destinations = append(v.Destinations, ipvs.Destination{Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(n)}), Port: 80, Forward: ipvs.Masquerade, Weight: wt})
	}
	return IPVSState{Services: []ipvs.VirtualServer{v}}
}

// kernelOrder is the service's destination list as the kernel walks it
// (its dump order), as "1 2 3".
func kernelOrder(t *testing.T, c interface {
	Destinations(ipvs.ServiceKey) ([]ipvs.DestinationStats, error)
}) string {
	t.Helper()
	ds, err := c.Destinations(web)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprint(d.Addr.As4()[3]))
	}
	return strings.Join(out, " ")
}

func mustApply(t *testing.T, r *IPVSReconciler, st IPVSState) []Change {
	t.Helper()
	cs, err := r.Apply(st, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Err != nil {
			t.Fatalf("%s", c)
		}
	}
	return cs
}

// TestIPVSMaglevOrder: an mh service's destinations are in the kernel in
// exactly the desired order, whatever each node's history, so the two
// nodes of a pair pick alike for connections the sync missed. The kernel
// (and its fake) put a new destination at the head of the list.
func TestIPVSMaglevOrder(t *testing.T) {
	// Node A grows the service one backend at a time, loses one and
	// reweights; node B is given the end state at once.
	ka, ca := newFake(t)
	ra := NewIPVS(ca, t.Logf)
	mustApply(t, ra, mhService("mh", nil, 1, 2, 3))
	if got := kernelOrder(t, ca); got != "1 2 3" {
		t.Fatalf("a new mh service: kernel order %q, want 1 2 3", got)
	}
	cs := mustApply(t, ra, mhService("mh", nil, 1, 2, 3, 4))
	if got := kernelOrder(t, ca); got != "1 2 3 4" {
		t.Fatalf("a backend appended: kernel order %q, want 1 2 3 4\n%s", got, changeList(cs))
	}
	cs = mustApply(t, ra, mhService("mh", nil, 1, 3, 4))
	if got := kernelOrder(t, ca); got != "1 3 4" || len(cs) != 1 {
		t.Fatalf("a backend removed: kernel order %q (want 1 3 4) after %d changes (want 1: nothing re-added)\n%s", got, len(cs), changeList(cs))
	}
	w := ka.Writes()
	cs = mustApply(t, ra, mhService("mh", map[int]uint32{3: 0}, 1, 3, 4))
	if got := kernelOrder(t, ca); got != "1 3 4" || ka.Writes()-w != 1 {
		t.Fatalf("a backend quiesced: kernel order %q (want 1 3 4) after %d writes (want 1)\n%s", got, ka.Writes()-w, changeList(cs))
	}
	cs = mustApply(t, ra, mhService("mh", map[int]uint32{3: 0}, 0, 1, 3, 4))
	if got := kernelOrder(t, ca); got != "0 1 3 4" || len(cs) != 1 {
		t.Fatalf("a backend prepended: kernel order %q (want 0 1 3 4) after %d changes (want 1)\n%s", got, len(cs), changeList(cs))
	}

	_, cb := newFake(t)
	mustApply(t, NewIPVS(cb, t.Logf), mhService("mh", map[int]uint32{3: 0}, 0, 1, 3, 4))
	if a, b := kernelOrder(t, ca), kernelOrder(t, cb); a != b {
		t.Fatalf("two histories, two orders: %q and %q", a, b)
	}

	// A kernel holding the destinations in another order (an earlier
	// NCC, or ipvsadm) is put right by a reconciler that adopts it.
	kc, cc := newFake(t)
	st := mhService("mh", nil, 1, 2, 3)
	kc.Edit(func([]ipvs.VirtualServer) []ipvs.VirtualServer {
		v := st.Services[0]
		v.Destinations = slices.Clone(v.Destinations)
		slices.Reverse(v.Destinations)
		return []ipvs.VirtualServer{v}
	})
	if got := kernelOrder(t, cc); got != "3 2 1" {
		t.Fatalf("the edited kernel: %q", got)
	}
	cs = mustApply(t, NewIPVS(cc, t.Logf), st)
	if got := kernelOrder(t, cc); got != "1 2 3" {
		t.Fatalf("adopted kernel: order %q, want 1 2 3\n%s", got, changeList(cs))
	}

	// A service switched to mh has its list put in order too; one that
	// is not mh is left in whatever order the kernel has.
	kd, cd := newFake(t)
	rd := NewIPVS(cd, t.Logf)
	mustApply(t, rd, mhService("rr", nil, 1, 2, 3))
	if got := kernelOrder(t, cd); got != "3 2 1" {
		t.Fatalf("rr: kernel order %q; the fake should put new destinations at the head", got)
	}
	cs = mustApply(t, rd, mhService("mh", nil, 1, 2, 3))
	if got := kernelOrder(t, cd); got != "1 2 3" {
		t.Fatalf("rr -> mh: kernel order %q, want 1 2 3\n%s", got, changeList(cs))
	}
	w = kd.Writes()
	if cs := mustApply(t, rd, mhService("mh", nil, 1, 2, 3)); len(cs) != 0 || kd.Writes() != w {
		t.Fatalf("the same state again: %d writes\n%s", kd.Writes()-w, changeList(cs))
	}
}

// TestIPVSTimeouts: the connection timeouts are held like the rest (set
// when they differ, not again when they do not); a zero one and an
// absent set leave the kernel's.
func TestIPVSTimeouts(t *testing.T) {
	k, c := newFake(t)
	r := NewIPVS(c, t.Logf)
	st := IPVSState{Timeouts: &ipvs.Timeouts{TCP: 3600, UDP: 60}}
	cs := mustApply(t, r, st)
	got, err := c.Timeouts()
	if err != nil {
		t.Fatal(err)
	}
	if want := (ipvs.Timeouts{TCP: 3600, TCPFin: 120, UDP: 60}); got != want || len(cs) != 1 {
		t.Fatalf("timeouts %+v after %s, want %+v", got, changeList(cs), want)
	}
	w := k.Writes()
	if cs := mustApply(t, r, st); len(cs) != 0 || k.Writes() != w {
		t.Fatalf("the same timeouts again: %s", changeList(cs))
	}
	if cs := mustApply(t, r, IPVSState{}); len(cs) != 0 {
		t.Fatalf("no timeouts asked for: %s", changeList(cs))
	}
	// A restarted NCC reads them and writes nothing.
	if cs := mustApply(t, NewIPVS(c, t.Logf), st); len(cs) != 0 {
		t.Fatalf("adopting: %s", changeList(cs))
	}
}

// TestNetFloatingAddress: a floating address goes on a link the NCC owns
// nothing else of while held, and off it when not, and the link's own
// addresses are never touched; one on a link the NCC owns is refused.
func TestNetFloatingAddress(t *testing.T) {
	k := newNetFake(t)
	r := NewNet(k, t.Logf)
	gw := netconf.Floating{Addr: p("10.0.0.1/24"), Link: "eth0", Held: true}
	applyHeld := func(held bool) []Change {
		t.Helper()
		f := gw
		f.Held = held
		cs, err := r.Apply(netconf.State{LB: lbBackup, Floating: []netconf.Floating{f}}, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Err != nil {
				t.Fatalf("%s", c)
			}
		}
		return cs
	}
	applyHeld(true)
	if s := k.String(); !strings.Contains(s, "addr eth0 10.0.0.1/24\n") || !strings.Contains(s, "addr eth0 10.0.0.5/24\n") {
		t.Fatalf("held: the host holds:\n%s", s)
	}
	if cs := applyHeld(true); len(cs) != 0 {
		t.Fatalf("held again: %s", changeList(cs))
	}
	applyHeld(false)
	if s := k.String(); strings.Contains(s, "10.0.0.1/") || !strings.Contains(s, "addr eth0 10.0.0.5/24\n") {
		t.Fatalf("not held: the host holds:\n%s", s)
	}
	if cs := applyHeld(false); len(cs) != 0 {
		t.Fatalf("not held again: %s", changeList(cs))
	}
	bad := netconf.State{LB: lbBackup, Floating: []netconf.Floating{{Addr: p("192.0.2.1/24"), Link: "eth1", Held: true}}}
	if _, err := r.Apply(bad, false); err == nil || !strings.Contains(err.Error(), "make it a VIP") {
		t.Fatalf("a floating address on the LB interface: %v", err)
	}
}
