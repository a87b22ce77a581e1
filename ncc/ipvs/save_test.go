package ipvs

import (
	"net/netip"
	"testing"
)

// TestSave pins the ipvsadm -Sn format; the lab tests compare the same
// rendering with ipvsadm's own output.
func TestSave(t *testing.T) {
	a := netip.MustParseAddr
	table := []VirtualServer{
		{
			Service: Service{ServiceKey: AddrPortKey(UDP, netip.MustParseAddrPort("192.0.2.1:53")), Scheduler: "sh",
				Flags: FlagPersistent | FlagOnePacket | FlagSHFallback | FlagSHPort, Timeout: 60, Netmask: 24},
			Destinations: []Destination{
				{Addr: a("10.0.0.2"), Port: 53, Forward: DirectRoute, Weight: 1},
				{Addr: a("10.0.0.1"), Port: 53, Forward: Masquerade, Weight: 2, UpperThreshold: 9},
			},
		},
		{
			Service: Service{ServiceKey: FWMarkKey(IPv6, 9), Scheduler: "mh", Flags: FlagMHPort | FlagPersistent, Timeout: 10, Netmask: 64, PEName: "sip"},
			Destinations: []Destination{
				{Addr: a("2001:db8::1"), Forward: Tunnel, Weight: 3, TunnelType: GUE, TunnelPort: 5555},
				{Addr: a("2001:db8::2"), Forward: Tunnel, Weight: 3},
			},
		},
		{Service: Service{ServiceKey: AddrPortKey(SCTP, netip.MustParseAddrPort("[2001:db8::5]:9")), Scheduler: "rr", Flags: FlagSched1 | FlagSched3, Netmask: 64}},
	}
	want := `-A --sctp-service [2001:db8::5]:9 -s rr -b flag-1,flag-3
-A -f 9 -6 -s mh -p 10 -M 64 --pe sip -b mh-port
-a -f 9 -6 -r [2001:db8::1]:0 -i -w 3 --tun-type gue --tun-port 5555 --tun-nocsum
-a -f 9 -6 -r [2001:db8::2]:0 -i -w 3 --tun-type ipip
-A -u 192.0.2.1:53 -s sh -p 60 -M 255.255.255.0 -o -b sh-fallback,sh-port
-a -u 192.0.2.1:53 -r 10.0.0.1:53 -m -w 2
-a -u 192.0.2.1:53 -r 10.0.0.2:53 -g -w 1
`
	if got := Save(table); got != want {
		t.Errorf("Save:\n%s\nwant:\n%s", got, want)
	}
	// ipvsadm prints in hash order; canonical order is Save's.
	shuffled := "-A -u 192.0.2.1:53 -s sh -p 60 -M 255.255.255.0 -o -b sh-fallback,sh-port\n" +
		"-a -u 192.0.2.1:53 -r 10.0.0.2:53 -g -w 1\n" +
		"-a -u 192.0.2.1:53 -r 10.0.0.1:53 -m -w 2\n" +
		"-A -f 9 -6 -s mh -p 10 -M 64 --pe sip -b mh-port\n" +
		"-a -f 9 -6 -r [2001:db8::2]:0 -i -w 3 --tun-type ipip\n" +
		"-a -f 9 -6 -r [2001:db8::1]:0 -i -w 3 --tun-type gue --tun-port 5555 --tun-nocsum\n" +
		"-A --sctp-service [2001:db8::5]:9 -s rr -b flag-1,flag-3\n"
	if got := CanonicalSave(shuffled); got != want {
		t.Errorf("CanonicalSave:\n%s\nwant:\n%s", got, want)
	}
}
