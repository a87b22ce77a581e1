package ncc

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

func TestConvertRejectsWithTheField(t *testing.T) {
	svc := func(mod func(s *nccpb.Service)) *nccpb.DesiredState {
		s := &nccpb.Service{Protocol: nccpb.Protocol_TCP, Address: "192.0.2.1", Port: 80, Scheduler: "rr",
			Destinations: []*nccpb.Destination{{Address: "10.0.0.1", Port: 80, Weight: 1}}}
		mod(s)
		return &nccpb.DesiredState{Services: []*nccpb.Service{s}}
	}
	for _, tt := range []struct {
		ds   *nccpb.DesiredState
		want string
	}{
		{svc(func(s *nccpb.Service) { s.Fwmark = 5 }), "services[0]: fwmark 5: a firewall-mark service has no address"},
		{svc(func(s *nccpb.Service) { s.Fwmark, s.Address, s.Port, s.Protocol = 5, "", 0, 0 }), "fwmark 5: family is required"},
		{svc(func(s *nccpb.Service) { s.Address = "192.0.2" }), "services[0]: address:"},
		{svc(func(s *nccpb.Service) { s.Family = nccpb.Family_INET6 }), "address 192.0.2.1 is not IPv6"},
		{svc(func(s *nccpb.Service) { s.Protocol = 0 }), "protocol PROTOCOL_UNSPECIFIED is not TCP, UDP or SCTP"},
		{svc(func(s *nccpb.Service) { s.Port = 70000 }), "port 70000 is above 65535"},
		{svc(func(s *nccpb.Service) { s.Scheduler = "" }), "TCP 192.0.2.1:80: scheduler is required"},
		{svc(func(s *nccpb.Service) { s.Flags = 1 }), "only the scheduler flags"},
		{svc(func(s *nccpb.Service) { s.PersistenceNetmask = 33 }), "persistence_netmask /33"},
		{svc(func(s *nccpb.Service) { s.Destinations[0].Family = nccpb.Family_INET6 }), "destinations[0]: address 10.0.0.1 is not IPv6"},
		{svc(func(s *nccpb.Service) { s.Destinations[0].Address = "2001:db8::1" }), "only a tunnel reaches a destination of another family"},
		{svc(func(s *nccpb.Service) {
			s.Destinations[0].Forward, s.Destinations[0].TunnelType = nccpb.Forward_FORWARD_TUNNEL, nccpb.TunnelType_TUNNEL_GUE
		}), "a GUE tunnel needs tunnel_port"},
		{svc(func(s *nccpb.Service) { s.Destinations[0].LowerThreshold = 5 }), "lower_threshold 5 is above upper_threshold 0"},
		{svc(func(s *nccpb.Service) { s.Destinations = append(s.Destinations, s.Destinations[0]) }), "destinations[1]: 10.0.0.1:80 is listed twice"},
		{&nccpb.DesiredState{Services: []*nccpb.Service{
			{Protocol: nccpb.Protocol_UDP, Address: "192.0.2.1", Port: 53, Scheduler: "rr"},
			{Protocol: nccpb.Protocol_UDP, Address: "::ffff:192.0.2.1", Port: 53, Scheduler: "wrr"},
		}}, "service UDP 192.0.2.1:53 is listed twice"},
		{&nccpb.DesiredState{SyncDaemons: []*nccpb.SyncDaemon{{Interface: "eth0"}}}, "sync_daemons[0]: role ROLE_UNSPECIFIED"},
		{&nccpb.DesiredState{SyncDaemons: []*nccpb.SyncDaemon{{Role: nccpb.SyncDaemon_BACKUP}}}, "backup: interface is required"},
		{&nccpb.DesiredState{SyncDaemons: []*nccpb.SyncDaemon{{Role: nccpb.SyncDaemon_MASTER, Interface: "eth0", MulticastGroup: "10.0.0.1"}}}, "not a multicast address"},
	} {
		_, err := ipvsFromProto(tt.ds)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want %q", tt.ds, err, tt.want)
		}
	}
}

// TestConvertRoundTrip: what GetState reports in the request's shape reads
// back as the same state.
func TestConvertRoundTrip(t *testing.T) {
	ds := desired()
	st, err := ipvsFromProto(ds)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range st.Services {
		p := serviceToProto(v.Service)
		for _, d := range v.Destinations {
			p.Destinations = append(p.Destinations, destToProto(d))
		}
		back, err := serviceFromProto(p)
		if err != nil {
			t.Fatalf("services[%d] %v: %v", i, p, err)
		}
		if back.Service != v.Service || len(back.Destinations) != len(v.Destinations) {
			t.Errorf("services[%d]: %+v, want %+v", i, back, v)
		}
		for j := range back.Destinations {
			if back.Destinations[j] != v.Destinations[j] {
				t.Errorf("services[%d].destinations[%d]: %+v, want %+v", i, j, back.Destinations[j], v.Destinations[j])
			}
		}
	}
	d, err := daemonFromProto(daemonToProto(st.SyncDaemons[0]))
	if err != nil || d != st.SyncDaemons[0] {
		t.Errorf("daemon %+v %v", d, err)
	}
	if !proto.Equal(daemonToProto(d), ds.SyncDaemons[0]) {
		t.Errorf("daemon proto %v, want %v", daemonToProto(d), ds.SyncDaemons[0])
	}
}

func TestConvertNetRejectsWithTheField(t *testing.T) {
	for _, tt := range []struct {
		mod  func(ds *nccpb.DesiredState)
		want string
	}{
		{func(ds *nccpb.DesiredState) { ds.LbInterface.Name = "" }, "lb_interface: name is required"},
		{func(ds *nccpb.DesiredState) { ds.LbInterface.Vrid = 256 }, "vrid 256"},
		{func(ds *nccpb.DesiredState) { ds.Vips[0].Address = "192.0.2.300/24" }, "vips[0]: address"},
		{func(ds *nccpb.DesiredState) { ds.LbInterface.DummyInterface = "" }, "vips[2] (198.51.100.1/32): no interface"},
		{func(ds *nccpb.DesiredState) { ds.Vips[3].Interface = "eth0" }, "VIP 203.0.113.5/24 is on eth0"},
		{func(ds *nccpb.DesiredState) { ds.Vlans[0].Addresses[0] = "x" }, "vlans[0].addresses[0]"},
		{func(ds *nccpb.DesiredState) { ds.Routes[0].Table = 0 }, "routes[0]: table 0"},
		{func(ds *nccpb.DesiredState) { ds.Routes[0].Gateway, ds.Routes[0].Device = "", "" }, "routes[0]: a default route needs a family or a gateway"},
		{func(ds *nccpb.DesiredState) { ds.Routes[0].Source = "nope" }, "routes[0]: source"},
		{func(ds *nccpb.DesiredState) { ds.Rules[0].From = "10.0.0.0/33" }, "rules[0]: from"},
		{func(ds *nccpb.DesiredState) { ds.Sysctls["../../etc/passwd"] = "x" }, "is not a sysctl"},
	} {
		ds := netDesired()
		tt.mod(ds)
		_, err := netFromProto(ds)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("got %v, want %q", err, tt.want)
		}
	}
	st, err := netFromProto(netDesired())
	if err != nil {
		t.Fatal(err)
	}
	back := &nccpb.DesiredState{}
	netToProto(st, back)
	again, err := netFromProto(back)
	if err != nil || len(again.VIPs) != 4 || again.LB != st.LB || again.VLANs[0].Name() != "eth1.7" {
		t.Errorf("round trip: %+v %v", again, err)
	}
}

// TestConvertNetVMAC6: an IPv6 VIP on the LB interface under use_vmac is
// reported (GetState) where it is, on the IPv6 VRRP macvlan, still placed
// on the LB interface; that report converts back to a valid state.
func TestConvertNetVMAC6(t *testing.T) {
	ds := netDesired()
	ds.LbInterface.Vrid, ds.LbInterface.UseVmac = 60, true
	ds.Vips = append(ds.Vips, &nccpb.VIP{Address: "2001:db8::10/64", Placement: nccpb.VIPPlacement_VIP_ON_LB_INTERFACE})
	n := len(ds.Vips) - 1 // the IPv6 VIP's index
	st, err := netFromProto(ds)
	if err != nil {
		t.Fatal(err)
	}
	placed := st.Placed()
	if got := placed.VIPs[n].Link; got != "vrrp6.60" {
		t.Fatalf("the IPv6 VIP is placed on %s", got)
	}
	back := &nccpb.DesiredState{}
	netToProto(placed, back)
	if v := back.Vips[n]; v.Placement != nccpb.VIPPlacement_VIP_ON_LB_INTERFACE || v.Interface != "vrrp6.60" {
		t.Errorf("reported as %v", v)
	}
	again, err := netFromProto(back)
	if err != nil || again.VIPs[n].Link != "vrrp6.60" || again.Placed().VIPs[n].Link != "vrrp6.60" {
		t.Errorf("converted back: %+v %v", again.VIPs, err)
	}
	back.LbInterface.UseVmac = false
	if _, err := netFromProto(back); err == nil || !strings.Contains(err.Error(), "vrrp6.60") {
		t.Errorf("a VIP on the macvlan without use_vmac: %v", err)
	}
}

// TestConvertNetVIPSource: a VIP's source reads into the state, is
// refused with the VIP's index when it is no address, of the other family
// or the VIP itself, and is reported back (GetState) as it was given.
func TestConvertNetVIPSource(t *testing.T) {
	for _, tt := range []struct {
		src, want string
	}{
		{"192.0.2", "vips[0] (192.0.2.10/24): source"},
		{"2001:db8::1", "source 2001:db8::1 is not of its family"},
		{"192.0.2.10", "is the VIP itself"},
		{"127.0.0.1", "not a unicast address"},
	} {
		ds := netDesired()
		ds.Vips[0].Source = tt.src
		if _, err := netFromProto(ds); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("source %q: got %v, want %q", tt.src, err, tt.want)
		}
	}
	ds := netDesired()
	ds.Vips[0].Source = "10.0.0.5"
	ds.Vips[2].Source = "203.0.113.2"
	st, err := netFromProto(ds)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.VIPs[0].Source.String(); got != "10.0.0.5" || st.VIPs[1].Source.IsValid() {
		t.Errorf("sources %v", st.VIPs)
	}
	back := &nccpb.DesiredState{}
	netToProto(st, back)
	for i, v := range back.Vips {
		if v.Source != ds.Vips[i].Source {
			t.Errorf("vips[%d] reported with source %q, want %q", i, v.Source, ds.Vips[i].Source)
		}
	}
	again, err := netFromProto(back)
	if err != nil || again.VIPs[2].Source != st.VIPs[2].Source {
		t.Errorf("converted back: %+v %v", again.VIPs, err)
	}
}
