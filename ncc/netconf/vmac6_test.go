package netconf

import (
	"net/netip"
	"strings"
	"testing"
)

func TestVMAC6Names(t *testing.T) {
	for _, vrid := range []uint8{0, 7, 42, 255} {
		name := VMAC6Name(vrid)
		if got, ok := ParseVMAC6Name(name); !ok || got != vrid || len(name) > 15 {
			t.Errorf("VMAC6Name(%d) = %q, parsed back as %d %t", vrid, name, got, ok)
		}
	}
	for _, name := range []string{"vrrp6.", "vrrp6.256", "vrrp6.042", "vrrp6.+4", "vrrp6.4x", "vrrp.42", "eth1", "vrrp6.-1"} {
		if _, ok := ParseVMAC6Name(name); ok {
			t.Errorf("%q taken for the NCC's macvlan", name)
		}
	}
	if got := VRRP6MAC(42).String(); got != "00:00:5e:00:02:2a" {
		t.Errorf("VRRP6MAC(42) = %s", got)
	}
}

func TestPlaced(t *testing.T) {
	p := netip.MustParsePrefix
	s := State{
		LB: LBInterface{Name: "eth1", VRID: 9, UseVMAC: true, Dummy: "dummy0"},
		VIPs: []VIP{
			{Addr: p("192.0.2.1/24"), Link: "eth1"},
			{Addr: p("2001:db8::1/64"), Link: "eth1", Announce: true},
			{Addr: p("2001:db8::2/128"), Link: "dummy0"},
			{Addr: p("2001:db8:1::1/64"), Link: "eth1.5"},
		},
		VLANs: []VLAN{{Parent: "eth1", ID: 5}},
	}
	placed := s.Placed()
	var got []string
	for _, v := range placed.VIPs {
		got = append(got, v.Addr.String()+"@"+v.Link)
	}
	if want := "192.0.2.1/24@eth1 2001:db8::1/64@vrrp6.9 2001:db8::2/128@dummy0 2001:db8:1::1/64@eth1.5"; strings.Join(got, " ") != want {
		t.Errorf("placed: %s\nwant:   %s", strings.Join(got, " "), want)
	}
	if !placed.VIPs[1].Announce || s.VIPs[1].Link != "eth1" {
		t.Errorf("placing lost the announce mark or changed the original")
	}
	if again := placed.Placed(); again.VIPs[1].Link != "vrrp6.9" || !placed.NeedsVMAC6() || s.NeedsVMAC6() {
		t.Errorf("placed twice: %+v; needs the macvlan: placed %t, unplaced %t", again.VIPs, placed.NeedsVMAC6(), s.NeedsVMAC6())
	}
	if err := placed.Validate(); err != nil {
		t.Errorf("placed state: %v", err)
	}
	off := s
	off.LB.UseVMAC = false
	if off.Placed().VIPs[1].Link != "eth1" || off.Placed().NeedsVMAC6() || off.LB.VMAC6Link() != "" {
		t.Errorf("without use_vmac the IPv6 VIPs moved")
	}
	v4only := s
	v4only.VIPs = s.VIPs[:1]
	if v4only.Placed().NeedsVMAC6() {
		t.Errorf("no IPv6 VIP on the LB interface, yet a macvlan")
	}

	for name, bad := range map[string]State{
		"IPv4 on the macvlan": {LB: s.LB, VIPs: []VIP{{Addr: p("192.0.2.1/24"), Link: "vrrp6.9"}}},
		"macvlan off":         {LB: off.LB, VIPs: []VIP{{Addr: p("2001:db8::1/64"), Link: "vrrp6.9"}}},
		"VLAN by its name":    {LB: LBInterface{Name: "vrrp6", VRID: 9, UseVMAC: true}, VLANs: []VLAN{{Parent: "vrrp6", ID: 9}}},
		"dummy by its name":   {LB: LBInterface{Name: "eth1", VRID: 9, UseVMAC: true, Dummy: "vrrp6.9"}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
}
