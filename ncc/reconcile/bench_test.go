package reconcile

import (
	"net/netip"
	"testing"

	"github.com/seesawlb/seesaw/ncc/ipvs"

	"github.com/seesawlb/seesaw/ncc/ipvs/ipvstest"
)

// BenchmarkNoopApply measures what an apply that changes nothing costs the
// NCC itself at 10,000 services of 10 destinations: no kernel calls, only
// the comparison with its record.
func BenchmarkNoopApply(b *testing.B) {
	k := ipvstest.New()
	c, err := k.Client()
	if err != nil {
		b.Fatal(err)
	}
	r := NewIPVS(c, nil)
	st := IPVSState{Services: benchTable(10000)}
	if _, err := r.Apply(st, false); err != nil {
		b.Fatal(err)
	}
	w := k.Requests()
	b.ResetTimer()
	for b.Loop() {
		if ch, err := r.Apply(st, false); err != nil || len(ch) != 0 {
			b.Fatal(ch, err)
		}
	}
	if k.Requests() != w {
		b.Fatalf("a no-op apply made %d requests", k.Requests()-w)
	}
}

// benchTable is n TCP services of 10 NAT destinations each.
func benchTable(n int) []ipvs.VirtualServer {
	vs := make([]ipvs.VirtualServer, 0, n)
	for i := 0; i < n; i++ {
		vip := netip.AddrFrom4([4]byte{10, 100 + byte(i>>16), byte(i >> 8), byte(i)})
		v := ipvs.VirtualServer{Service: ipvs.Service{ServiceKey: ipvs.AddrPortKey(ipvs.TCP, netip.AddrPortFrom(vip, 80)), Scheduler: "wrr"}}
		for j := 0; j < 10; j++ {
			v.Destinations = append(v.Destinations, ipvs.Destination{
				Addr: netip.AddrFrom4([4]byte{10, 200 + byte(j), byte(i >> 8), byte(i)}), Port: 8080,
				Forward: ipvs.Masquerade, Weight: uint32(1 + j%3),
			})
		}
		vs = append(vs, v)
	}
	return vs
}
