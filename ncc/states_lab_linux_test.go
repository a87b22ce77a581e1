package ncc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/seesawlb/seesaw/deploy/labtest"
	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/netconf"
	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// statesSeedEnv replays the random orders of TestLabNCCStates: the seed a
// failing run logged. statesRoundsEnv asks for more random orders than
// the two a run makes by default (each costs some 12 s under TCG).
const (
	statesSeedEnv   = "NCC_STATES_SEED"
	statesRoundsEnv = "NCC_STATES_ROUNDS"
)

// statesEth1MAC is the LB interface's own MAC, which it has again when no
// VRRP MAC is wanted.
var statesEth1MAC = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x01}

// statesCase is one complete desired state, and a few facts about what
// the kernel must hold after it, checked by hand the first time it is
// applied, so that the recording later applies are held to is itself right.
type statesCase struct {
	name string
	ds   *nccpb.DesiredState
	// has and lacks: section of the witness -> lines or fragments it must
	// (must not) contain.
	has, lacks map[string][]string
}

// The witness sections.
const (
	wIPVS    = "ipvsadm -Sn"
	wThresh  = "ipvsadm -Ln --thresholds"
	wDaemons = "ipvsadm -L --daemon"
	wAddrs   = "ip -o addr show scope global"
	wLinks   = "ip -o -d link show"
	wRules4  = "ip rule"
	wRules6  = "ip -6 rule"
	wRoutes4 = "ip -4 route show table 2"
	wRoutes6 = "ip -6 route show table 2"
	wNFT     = "nft list table inet seesaw"
	wSysctls = "sysctls"
)

// statesTable is what an engine could send a node in turn: masters of
// different VRIDs, with and without the VRRP MAC, a backup, and a stopped
// node. Every part differs from state to state (services, destinations,
// forwarding modes, sync daemons, VRID, VIPs, VLANs, routes, rules,
// sysctl values, packet rules), while some objects recur with other
// attributes, so that updates are made in place as well as adds and
// deletes. All keep the LB interface, the dummy and policy table 2: the
// NCC owns the routes and rules of the tables a state names, and a table
// no longer named is not its to clear. And none is wholly empty: a state
// that says nothing of the network leaves the network alone.
func statesTable() []statesCase {
	lb := func(up bool, vrid uint32, vmac bool) *nccpb.LBInterface {
		return &nccpb.LBInterface{Name: "eth1", Up: up, Vrid: vrid, UseVmac: vmac, DummyInterface: "dummy0", RoutingTable: 2}
	}
	onLB := func(a string, announce bool) *nccpb.VIP {
		return &nccpb.VIP{Address: a, Placement: nccpb.VIPPlacement_VIP_ON_LB_INTERFACE, Announce: announce}
	}
	onDummy := func(a string) *nccpb.VIP { return &nccpb.VIP{Address: a, Placement: nccpb.VIPPlacement_VIP_ON_DUMMY} }
	const (
		tcp, udp       = nccpb.Protocol_TCP, nccpb.Protocol_UDP
		inet, inet6    = nccpb.Family_INET, nccpb.Family_INET6
		nat, dsr, tun  = nccpb.Forward_FORWARD_NAT, nccpb.Forward_FORWARD_DSR, nccpb.Forward_FORWARD_TUNNEL
		ipip, gue      = nccpb.TunnelType_TUNNEL_IPIP, nccpb.TunnelType_TUNNEL_GUE
		master, backup = nccpb.SyncDaemon_MASTER, nccpb.SyncDaemon_BACKUP
	)
	table := []statesCase{
		{
			name: "master, VRID 60",
			ds: &nccpb.DesiredState{
				LbInterface: lb(true, 60, true),
				Services: []*nccpb.Service{
					{Protocol: tcp, Address: "192.0.2.10", Port: 80, Scheduler: "wrr", Destinations: []*nccpb.Destination{
						{Address: "10.0.1.1", Port: 8080, Forward: nat, Weight: 1},
						{Address: "10.0.1.2", Port: 8080, Forward: nat, Weight: 3},
					}},
					{Protocol: tcp, Address: "2001:db8::10", Port: 443, Scheduler: "wlc", PersistenceTimeout: 300, PersistenceNetmask: 64,
						Destinations: []*nccpb.Destination{{Address: "2001:db8:1::1", Port: 443, Forward: dsr, Weight: 1}}},
					{Protocol: tcp, Address: "2001:db8::12", Port: 8443, Scheduler: "rr",
						Destinations: []*nccpb.Destination{{Address: "2001:db8:1::3", Port: 8443, Forward: nat, Weight: 1}}},
					{Family: inet, Fwmark: 1, Scheduler: "rr", Destinations: []*nccpb.Destination{
						{Address: "10.0.2.1", Forward: tun, Weight: 1, TunnelType: ipip},
						{Address: "10.0.2.2", Forward: tun, Weight: 1, TunnelType: gue, TunnelPort: 6080},
					}},
				},
				SyncDaemons: []*nccpb.SyncDaemon{{Role: master, Interface: "eth1", SyncId: 60}},
				Vips: []*nccpb.VIP{
					onLB("192.0.2.10/24", true), onLB("2001:db8::10/64", false),
					onDummy("198.51.100.1/32"), onDummy("2001:db8:5::1/128"),
					{Address: "203.0.113.10/24", Interface: "eth1.7"},
				},
				Vlans: []*nccpb.VLAN{{Id: 7, Addresses: []string{"203.0.113.2/24"}}},
				Routes: []*nccpb.Route{
					{Table: 2, Gateway: "192.0.2.1", Device: "eth1"},
					{Family: inet6, Table: 2, Destination: "2001:db8:5::/64", Device: "dummy0"},
				},
				Rules: []*nccpb.Rule{
					{Family: inet, Priority: 100, Table: 2, From: "192.0.2.10"},
					{Family: inet6, Priority: 100, Table: 2, From: "2001:db8::10"},
				},
				Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.vs.conntrack": "1", "net.ipv4.conf.all.arp_ignore": "1",
					"net/ipv4/conf/eth1.7/arp_ignore": "2"},
				Nft: &nccpb.NFTState{
					Fwmarks: []*nccpb.FwmarkRule{
						{Family: inet, Address: "192.0.2.11", Protocol: tcp, Port: 8000, Mark: 1},
						{Family: inet6, Address: "2001:db8::11", Protocol: udp, Port: 53, Mark: 2},
					},
					Snat: []*nccpb.SNATRule{
						{Family: inet, Vip: "192.0.2.10", Protocol: tcp, Port: 80, ToSource: "10.0.1.254"},
						{Family: inet6, Vip: "2001:db8::12", Protocol: tcp, Port: 8443, ToSource: "2001:db8:1::fe"},
					},
				},
			},
			has: map[string][]string{
				wIPVS: {"-A -t 192.0.2.10:80 -s wrr", "-a -t 192.0.2.10:80 -r 10.0.1.2:8080 -m -w 3",
					"-a -t [2001:db8::10]:443 -r [2001:db8:1::1]:443 -g -w 1", "-a -t [2001:db8::12]:8443 -r [2001:db8:1::3]:8443 -m -w 1",
					"-A -f 1 -s rr", "-a -f 1 -r 10.0.2.1:0 -i -w 1", "-a -f 1 -r 10.0.2.2:0 -i -w 1 --tun-type gue --tun-port 6080"},
				wDaemons: {"master sync daemon (mcast=eth1, syncid=60"},
				wLinks:   {"eth1 up 00:00:5e:00:01:3c", "vrrp6.60@eth1 up 00:00:5e:00:02:3c macvlan bridge", "eth1.7@eth1 up 00:00:5e:00:01:3c vlan 7", "dummy0 up"},
				wAddrs: {"eth1 inet 192.0.2.10/24", "vrrp6.60 inet6 2001:db8::10/64", "dummy0 inet 198.51.100.1/32", "dummy0 inet6 2001:db8:5::1/128",
					"eth1.7 inet 203.0.113.2/24", "eth1.7 inet 203.0.113.10/24"},
				wRules4:  {"100:\tfrom 192.0.2.10 lookup 2"},
				wRules6:  {"100:\tfrom 2001:db8::10 lookup 2"},
				wRoutes4: {"default via 192.0.2.1 dev eth1"},
				wRoutes6: {"2001:db8:5::/64 dev dummy0"},
				wNFT: {"ip daddr 192.0.2.11 tcp dport 8000 meta mark set 0x00000001", "ip6 daddr 2001:db8::11 udp dport 53 meta mark set 0x00000002",
					"ct original ip daddr 192.0.2.10 ct original proto-dst 80 snat ip to 10.0.1.254",
					"ct original ip6 daddr 2001:db8::12 ct original proto-dst 8443 snat ip6 to 2001:db8:1::fe"},
				wSysctls: {"net.ipv4.ip_forward=1", "net.ipv4.vs.conntrack=1", "net.ipv4.conf.all.arp_ignore=1", "net/ipv4/conf/eth1.7/arp_ignore=2",
					"net/ipv6/conf/vrrp6.60/accept_dad=0", "net/ipv6/conf/vrrp6.60/keep_addr_on_down=1", "net/ipv4/conf/vrrp6.60/arp_ignore=1"},
			},
			lacks: map[string][]string{wAddrs: {"eth1 inet6"}},
		},
		{
			name: "backup, VRID 61",
			ds: &nccpb.DesiredState{
				LbInterface: lb(false, 61, true),
				Services: []*nccpb.Service{
					{Protocol: udp, Address: "192.0.2.20", Port: 53, Scheduler: "lc", Destinations: []*nccpb.Destination{
						{Address: "10.0.1.3", Port: 53, Forward: nat, Weight: 1, UpperThreshold: 100, LowerThreshold: 10},
						{Address: "10.0.1.4", Port: 53, Forward: dsr, Weight: 2},
					}},
					{Protocol: tcp, Address: "2001:db8::20", Port: 80, Scheduler: "sh", Flags: uint32(ipvs.FlagSHFallback),
						Destinations: []*nccpb.Destination{{Address: "2001:db8:1::4", Port: 80, Forward: tun, Weight: 1, TunnelType: ipip}}},
					{Family: inet6, Fwmark: 2, Scheduler: "wrr",
						Destinations: []*nccpb.Destination{{Address: "2001:db8:1::5", Forward: dsr, Weight: 2}}},
				},
				SyncDaemons: []*nccpb.SyncDaemon{{Role: backup, Interface: "eth1", SyncId: 61, MulticastGroup: "239.0.0.61", Port: 8850}},
				Vips: []*nccpb.VIP{
					onLB("192.0.2.20/24", false), onLB("2001:db8::20/64", false),
					onDummy("198.51.100.2/32"), onDummy("2001:db8:5::2/128"),
					{Address: "203.0.113.20/24", Interface: "eth1.8"},
				},
				Vlans: []*nccpb.VLAN{{Id: 8, Addresses: []string{"203.0.113.3/24"}}},
				// The LB interface is down: nothing can be routed
				// through it.
				Routes: []*nccpb.Route{
					{Table: 2, Destination: "198.51.100.0/24", Device: "dummy0"},
					{Family: inet6, Table: 2, Destination: "2001:db8:6::/64", Device: "dummy0"},
				},
				Rules: []*nccpb.Rule{
					{Family: inet, Priority: 101, Table: 2, To: "192.0.2.20"},
					{Family: inet, Priority: 102, Table: 2, Fwmark: 2},
				},
				Sysctls: map[string]string{"net.ipv4.ip_forward": "0", "net.ipv4.vs.conntrack": "0", "net.ipv4.conf.all.arp_ignore": "2",
					"net/ipv4/conf/eth1.8/arp_ignore": "1"},
				Nft: &nccpb.NFTState{
					Fwmarks: []*nccpb.FwmarkRule{
						{Family: inet6, Address: "2001:db8::21", Protocol: tcp, Port: 80, Mark: 2},
						{Family: inet, Address: "192.0.2.21", Mark: 3},
					},
					Snat: []*nccpb.SNATRule{
						{Family: inet, Vip: "192.0.2.20", Protocol: udp, Port: 53, ToSource: "10.0.1.253"},
						{Family: inet6, Vip: "2001:db8::20", Protocol: tcp, Port: 80, ToSource: "2001:db8:1::fd"},
					},
				},
			},
			has: map[string][]string{
				wThresh: {"UDP 192.0.2.20:53 lc\n-> 10.0.1.3:53 100 10 0 0\n-> 10.0.1.4:53 0 0 0 0\n"},
				wIPVS: {"-A -u 192.0.2.20:53 -s lc", "-a -u 192.0.2.20:53 -r 10.0.1.3:53 -m -w 1", "-a -u 192.0.2.20:53 -r 10.0.1.4:53 -g -w 2",
					"-A -t [2001:db8::20]:80 -s sh -b sh-fallback", "-a -t [2001:db8::20]:80 -r [2001:db8:1::4]:80 -i -w 1",
					"-A -f 2 -6 -s wrr", "-a -f 2 -6 -r [2001:db8:1::5]:0 -g -w 2"},
				wDaemons: {"backup sync daemon (mcast=eth1, syncid=61", "group=239.0.0.61, port=8850"},
				wLinks:   {"eth1 down 00:00:5e:00:01:3d", "vrrp6.61@eth1 down 00:00:5e:00:02:3d macvlan bridge", "eth1.8@eth1 down", "vlan 8", "dummy0 up"},
				wAddrs: {"eth1 inet 192.0.2.20/24", "vrrp6.61 inet6 2001:db8::20/64", "dummy0 inet 198.51.100.2/32", "dummy0 inet6 2001:db8:5::2/128",
					"eth1.8 inet 203.0.113.3/24", "eth1.8 inet 203.0.113.20/24"},
				wRules4:  {"101:\tfrom all to 192.0.2.20 lookup 2", "102:\tfrom all fwmark 0x2 lookup 2"},
				wRoutes4: {"198.51.100.0/24 dev dummy0"},
				wRoutes6: {"2001:db8:6::/64 dev dummy0"},
				wNFT: {"ip6 daddr 2001:db8::21 tcp dport 80 meta mark set 0x00000002", "ip daddr 192.0.2.21 meta mark set 0x00000003",
					"ct original ip daddr 192.0.2.20 ct original proto-dst 53 snat ip to 10.0.1.253",
					"ct original ip6 daddr 2001:db8::20 ct original proto-dst 80 snat ip6 to 2001:db8:1::fd"},
				wSysctls: {"net.ipv4.ip_forward=0", "net.ipv4.vs.conntrack=0", "net.ipv4.conf.all.arp_ignore=2", "net/ipv4/conf/eth1.8/arp_ignore=1",
					"net/ipv6/conf/vrrp6.61/accept_ra=0"},
			},
			lacks: map[string][]string{wLinks: {"vrrp6.60", "eth1.7"}, wRules6: {"lookup 2"}, wRoutes4: {"default"}},
		},
		{
			name: "master, VRID 62, own MAC",
			ds: &nccpb.DesiredState{
				LbInterface: lb(true, 62, false),
				Services: []*nccpb.Service{
					// The keys of the first state's services, with
					// other attributes and destinations.
					{Protocol: tcp, Address: "192.0.2.10", Port: 80, Scheduler: "mh", Flags: uint32(ipvs.FlagMHFallback), Destinations: []*nccpb.Destination{
						{Address: "10.0.1.1", Port: 8080, Forward: nat, Weight: 2},
						{Address: "10.0.1.5", Port: 8080, Forward: tun, Weight: 1, TunnelType: gue, TunnelPort: 6081},
					}},
					{Protocol: tcp, Address: "2001:db8::10", Port: 443, Scheduler: "wlc", Destinations: []*nccpb.Destination{
						{Address: "2001:db8:1::1", Port: 443, Forward: dsr, Weight: 5},
						{Address: "2001:db8:1::2", Port: 443, Forward: dsr, Weight: 1},
					}},
					{Family: inet, Fwmark: 3, Scheduler: "rr",
						Destinations: []*nccpb.Destination{{Address: "10.0.2.3", Forward: tun, Weight: 1, TunnelType: ipip}}},
				},
				Vips: []*nccpb.VIP{
					onLB("192.0.2.10/24", false), onLB("192.0.2.30/24", true), onLB("2001:db8::30/64", true),
					onDummy("198.51.100.3/32"), onDummy("2001:db8:5::3/128"),
					{Address: "203.0.113.30/24", Interface: "eth1.9"},
				},
				Vlans: []*nccpb.VLAN{{Id: 9, Addresses: []string{"203.0.113.4/24"}}},
				Routes: []*nccpb.Route{
					{Table: 2, Gateway: "192.0.2.254", Device: "eth1"},
					{Table: 2, Destination: "10.0.1.0/24", Gateway: "192.0.2.1", Device: "eth1"},
				},
				Rules: []*nccpb.Rule{
					{Family: inet, Priority: 100, Table: 2, From: "192.0.2.30"},
					{Family: inet6, Priority: 103, Table: 2, To: "2001:db8::30"},
				},
				Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.vs.conntrack": "0", "net.ipv4.conf.all.arp_ignore": "0",
					"net/ipv4/conf/eth1.9/arp_ignore": "1", "net.ipv4.vs.expire_nodest_conn": "1"},
				Nft: &nccpb.NFTState{
					Fwmarks: []*nccpb.FwmarkRule{
						{Family: inet, Address: "192.0.2.31", Protocol: udp, Port: 500, Mark: 3},
						{Family: inet6, Address: "2001:db8::31", Protocol: tcp, Port: 22, Mark: 4},
					},
					Snat: []*nccpb.SNATRule{
						{Family: inet, Vip: "192.0.2.10", Protocol: tcp, Port: 80, ToSource: "10.0.1.254"},
						{Family: inet6, Vip: "2001:db8::30", Protocol: udp, Port: 53, ToSource: "2001:db8:1::fc"},
					},
				},
			},
			has: map[string][]string{
				wIPVS: {"-A -t 192.0.2.10:80 -s mh -b mh-fallback", "-a -t 192.0.2.10:80 -r 10.0.1.1:8080 -m -w 2",
					"-a -t 192.0.2.10:80 -r 10.0.1.5:8080 -i -w 1 --tun-type gue --tun-port 6081",
					"-A -t [2001:db8::10]:443 -s wlc\n", "-a -t [2001:db8::10]:443 -r [2001:db8:1::2]:443 -g -w 1",
					"-A -f 3 -s rr", "-a -f 3 -r 10.0.2.3:0 -i -w 1"},
				wLinks: {"eth1 up " + statesEth1MAC.String(), "eth1.9@eth1 up " + statesEth1MAC.String() + " vlan 9"},
				wAddrs: {"eth1 inet 192.0.2.10/24", "eth1 inet 192.0.2.30/24", "eth1 inet6 2001:db8::30/64", "dummy0 inet 198.51.100.3/32",
					"eth1.9 inet 203.0.113.4/24", "eth1.9 inet 203.0.113.30/24"},
				wRules4:  {"100:\tfrom 192.0.2.30 lookup 2"},
				wRules6:  {"103:\tfrom all to 2001:db8::30 lookup 2"},
				wRoutes4: {"default via 192.0.2.254 dev eth1", "10.0.1.0/24 via 192.0.2.1 dev eth1"},
				wNFT:     {"ip daddr 192.0.2.31 udp dport 500 meta mark set 0x00000003", "snat ip6 to 2001:db8:1::fc"},
				wSysctls: {"net.ipv4.conf.all.arp_ignore=0", "net.ipv4.vs.expire_nodest_conn=1", "net/ipv4/conf/eth1.9/arp_ignore=1"},
			},
			lacks: map[string][]string{wLinks: {"vrrp6", "00:00:5e"}, wDaemons: {"sync daemon"}, wRoutes6: {"dev"}, wAddrs: {"192.0.2.20", "eth1.8"}},
		},
		{
			name: "master, VRID 63, two sync daemons",
			ds: &nccpb.DesiredState{
				LbInterface: lb(true, 63, true),
				Services: []*nccpb.Service{
					{Protocol: udp, Address: "2001:db8::40", Port: 53, Scheduler: "mh", Flags: uint32(ipvs.FlagMHPort), OnePacket: true,
						Destinations: []*nccpb.Destination{
							{Address: "2001:db8:1::6", Port: 5353, Forward: nat, Weight: 1},
							{Address: "2001:db8:1::7", Port: 53, Forward: tun, Weight: 1, TunnelType: gue, TunnelPort: 6080},
						}},
					{Protocol: tcp, Address: "192.0.2.40", Port: 443, Scheduler: "sh", Flags: uint32(ipvs.FlagSHPort), PersistenceTimeout: 60, PersistenceNetmask: 24,
						Destinations: []*nccpb.Destination{
							{Address: "10.0.1.8", Port: 443, Forward: dsr, Weight: 1},
							{Address: "10.0.1.9", Port: 443, Forward: dsr, Weight: 0},
						}},
					{Family: inet6, Fwmark: 4, Scheduler: "lc",
						Destinations: []*nccpb.Destination{{Address: "2001:db8:1::8", Forward: tun, Weight: 1, TunnelType: ipip}}},
					// The first state's fwmark service, in another mode.
					{Family: inet, Fwmark: 1, Scheduler: "wlc",
						Destinations: []*nccpb.Destination{{Address: "10.0.1.10", Forward: nat, Weight: 4}}},
				},
				SyncDaemons: []*nccpb.SyncDaemon{
					{Role: master, Interface: "eth1", SyncId: 63, MulticastGroup: "239.0.0.63", Port: 9000, Ttl: 2},
					{Role: backup, Interface: "eth1", SyncId: 63, MulticastGroup: "239.0.0.63", Port: 9000},
				},
				Vips: []*nccpb.VIP{
					onLB("192.0.2.40/24", true), onLB("2001:db8::40/64", true), onLB("2001:db8::41/128", false),
					onDummy("198.51.100.4/32"), onDummy("2001:db8:5::4/128"),
				},
				// The first state's VLAN, with other addresses, one of
				// them IPv6 (which the VLAN loses whenever the LB
				// interface goes down for a new MAC).
				Vlans: []*nccpb.VLAN{{Id: 7, Addresses: []string{"203.0.113.5/24", "2001:db8:7::2/64"}}},
				Routes: []*nccpb.Route{
					{Table: 2, Gateway: "192.0.2.1", Device: "eth1"},
					{Table: 2, Destination: "192.0.2.0/24", Device: "eth1", Source: "192.0.2.40"},
					{Family: inet6, Table: 2, Destination: "2001:db8:7::/64", Device: "eth1.7"},
				},
				Rules: []*nccpb.Rule{
					{Family: inet, Priority: 104, Table: 2, From: "192.0.2.40"},
					{Family: inet, Priority: 105, Table: 2, Fwmark: 1},
					{Family: inet6, Priority: 104, Table: 2, From: "2001:db8::40"},
				},
				Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.vs.conntrack": "1", "net.ipv4.conf.all.arp_ignore": "1",
					"net/ipv4/conf/eth1.7/arp_ignore": "1", "net.ipv4.vs.expire_nodest_conn": "0"},
				Nft: &nccpb.NFTState{
					Fwmarks: []*nccpb.FwmarkRule{
						{Family: inet, Address: "192.0.2.41", Protocol: tcp, Port: 80, Mark: 1},
						{Family: inet6, Address: "2001:db8::42", Protocol: udp, Mark: 4},
					},
					Snat: []*nccpb.SNATRule{
						{Family: inet, Vip: "192.0.2.41", Protocol: tcp, Port: 80, ToSource: "10.0.1.252"},
						{Family: inet6, Vip: "2001:db8::40", Protocol: udp, Port: 53, ToSource: "2001:db8:1::fb"},
					},
				},
			},
			has: map[string][]string{
				wIPVS: {"-A -u [2001:db8::40]:53 -s mh -o -b mh-port", "-a -u [2001:db8::40]:53 -r [2001:db8:1::6]:5353 -m -w 1",
					"-A -t 192.0.2.40:443 -s sh -p 60 -M 255.255.255.0 -b sh-port", "-a -t 192.0.2.40:443 -r 10.0.1.9:443 -g -w 0",
					"-A -f 4 -6 -s lc", "-A -f 1 -s wlc", "-a -f 1 -r 10.0.1.10:0 -m -w 4"},
				wDaemons: {"master sync daemon (mcast=eth1, syncid=63", "group=239.0.0.63, port=9000, ttl=2",
					"backup sync daemon (mcast=eth1, syncid=63"},
				wLinks: {"eth1 up 00:00:5e:00:01:3f", "vrrp6.63@eth1 up 00:00:5e:00:02:3f macvlan bridge", "eth1.7@eth1 up 00:00:5e:00:01:3f vlan 7"},
				wAddrs: {"vrrp6.63 inet6 2001:db8::40/64", "vrrp6.63 inet6 2001:db8::41/128", "eth1.7 inet 203.0.113.5/24",
					"eth1.7 inet6 2001:db8:7::2/64", "dummy0 inet6 2001:db8:5::4/128"},
				wRules4:  {"104:\tfrom 192.0.2.40 lookup 2", "105:\tfrom all fwmark 0x1 lookup 2"},
				wRules6:  {"104:\tfrom 2001:db8::40 lookup 2"},
				wRoutes4: {"default via 192.0.2.1 dev eth1", "192.0.2.0/24 dev eth1 scope link src 192.0.2.40"},
				wRoutes6: {"2001:db8:7::/64 dev eth1.7"},
				wNFT:     {"ip6 daddr 2001:db8::42 meta l4proto udp meta mark set 0x00000004", "snat ip to 10.0.1.252"},
				wSysctls: {"net/ipv4/conf/eth1.7/arp_ignore=1", "net.ipv4.vs.expire_nodest_conn=0", "net/ipv6/conf/vrrp6.63/accept_dad=0"},
			},
			lacks: map[string][]string{wAddrs: {"203.0.113.2/", "203.0.113.10/", "eth1 inet6"}, wLinks: {"vrrp6.60", "eth1.9"}},
		},
		{
			// What a node holds when the engine stops it: the LB
			// interface down with its own MAC, nothing else.
			name: "stopped",
			ds: &nccpb.DesiredState{
				LbInterface: &nccpb.LBInterface{Name: "eth1", DummyInterface: "dummy0", RoutingTable: 2},
				Sysctls:     map[string]string{"net.ipv4.ip_forward": "0"},
			},
			has: map[string][]string{
				wLinks:   {"eth1 down " + statesEth1MAC.String(), "dummy0 up"},
				wRules4:  {"0:\tfrom all lookup local", "32766:\tfrom all lookup main"},
				wSysctls: {"net.ipv4.ip_forward=0"},
			},
			lacks: map[string][]string{
				wLinks: {"vrrp6", "eth1."}, wRules4: {"lookup 2"}, wRules6: {"lookup 2"},
				wIPVS: {"-A"}, wThresh: {"->"}, wDaemons: {"daemon"}, wAddrs: {"inet"}, wRoutes4: {"dev"}, wRoutes6: {"dev"}, wNFT: {"table"},
			},
		},
	}
	// As on an appliance (vocab.ApplianceSysctls): without it, the
	// kernel takes an IPv4 subnet's other addresses with its primary one
	// when that goes, and a state that replaces the primary VIP loses,
	// for a moment, the VIPs that stay.
	for _, c := range table {
		c.ds.Sysctls["net.ipv4.conf.all.promote_secondaries"] = "1"
	}
	return table
}

// statesWitness is the kernel's own account of what the NCC manages, by
// section, put in a canonical form only where what the kernel shows
// follows the history and not the state (see the statesCanonical
// functions). sysctls holds every key any state names, and those the NCC
// sets on its IPv6 VRRP macvlans.
type statesWitness struct {
	sections map[string]string
	sysctls  map[string]string
}

// statesSections are the commands of a witness, each the name of its
// section; ipvsadm -S leaves the thresholds out, hence -L --thresholds.
var statesSections = []string{wIPVS, wThresh, wDaemons, wLinks, wAddrs, wRules4, wRules6, wRoutes4, wRoutes6, wNFT}

// statesMark separates the commands' outputs in a witness.
const statesMark = "@@@witness "

// section is one section as text; for sysctls, those of keys.
func (w statesWitness) section(name string, keys []string) string {
	if name != wSysctls {
		return w.sections[name]
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, w.sysctls[k])
	}
	return b.String()
}

// diff lists the sections that differ, with the sysctls of keys; was
// names w.
func (w statesWitness) diff(o statesWitness, keys []string, was string) string {
	var b strings.Builder
	for _, name := range append(slices.Clone(statesSections), wSysctls) {
		a, c := w.section(name, keys), o.section(name, keys)
		if a != c {
			fmt.Fprintf(&b, "--- %s, %s:\n%s--- now:\n%s", name, was, a, c)
		}
	}
	return b.String()
}

// statesSysctlKeys are the sysctls a state's witness compares: those it
// names, and those the NCC sets on the macvlan of its IPv6 VRRP MAC.
// Sysctls a state does not name are not the NCC's to restore: they keep
// the values an earlier state left.
func statesSysctlKeys(ds *nccpb.DesiredState) []string {
	var keys []string
	for k := range ds.GetSysctls() {
		keys = append(keys, k)
	}
	if lb := ds.GetLbInterface(); lb.GetUseVmac() && slices.ContainsFunc(ds.GetVips(), func(v *nccpb.VIP) bool {
		return v.GetPlacement() == nccpb.VIPPlacement_VIP_ON_LB_INTERFACE && strings.Contains(v.GetAddress(), ":")
	}) {
		l := netconf.VMAC6Name(uint8(lb.GetVrid()))
		keys = append(keys, "net/ipv6/conf/"+l+"/accept_dad", "net/ipv6/conf/"+l+"/accept_ra",
			"net/ipv6/conf/"+l+"/keep_addr_on_down", "net/ipv4/conf/"+l+"/arp_ignore")
	}
	sort.Strings(keys)
	return keys
}

// statesCanonicalAddrs is `ip -o addr show` without interface indexes
// (a VLAN made again has a new one), one address a line, sorted (a link
// lists its addresses in the order they came), and without the
// "secondary" flag: which of two IPv4 addresses in one subnet is primary
// is a matter of which came first, and the state does not say.
func statesCanonicalAddrs(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		_, rest, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		f := strings.Fields(strings.ReplaceAll(rest, `\`, " "))
		f = slices.DeleteFunc(f, func(s string) bool { return s == "secondary" })
		lines = append(lines, strings.Join(f, " "))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// statesCanonicalList is `ipvsadm -L` without its headings, the services
// sorted and each one's destinations sorted (the kernel lists them in its
// hash table's and its lists' order, which follows the history), with
// single spaces.
func statesCanonicalList(out string) string {
	var blocks [][]string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 0 || f[0] == "IP" || f[0] == "Prot" || f[0] == "->" && f[1] == "RemoteAddress:Port":
		case f[0] == "->" && len(blocks) > 0:
			blocks[len(blocks)-1] = append(blocks[len(blocks)-1], strings.Join(f, " "))
		default:
			blocks = append(blocks, []string{strings.Join(f, " ")})
		}
	}
	for _, b := range blocks {
		sort.Strings(b[1:])
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i][0] < blocks[j][0] })
	var b strings.Builder
	for _, bl := range blocks {
		b.WriteString(strings.Join(bl, "\n") + "\n")
	}
	return b.String()
}

// statesCanonicalLinks is `ip -o -d link show` as "name up|down MAC kind"
// lines (the rest is the kernel's: operational state, counters, queue
// parameters), sorted; lo is left out, and a down VLAN's MAC.
func statesCanonicalLinks(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(strings.ReplaceAll(l, `\`, " "))
		if len(f) < 3 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		// A veth's peer is named by its index in the peer's namespace.
		if base, peer, ok := strings.Cut(name, "@if"); ok && strings.Trim(peer, "0123456789") == "" {
			name = base
		}
		if name == "lo" {
			continue
		}
		flags := strings.Split(strings.Trim(f[2], "<>"), ",")
		state := "down"
		if slices.Contains(flags, "UP") {
			state = "up"
		}
		mac := "-"
		if i := slices.Index(f, "link/ether"); i >= 0 && i+1 < len(f) {
			mac = f[i+1]
		}
		kind := ""
		switch {
		case slices.Contains(f, "vlan") && slices.Contains(f, "802.1Q"):
			kind = "vlan " + f[slices.Index(f, "id")+1]
		case slices.Contains(f, "macvlan"):
			kind = "macvlan " + f[slices.Index(f, "macvlan")+2]
		case slices.Contains(f, "dummy"):
			kind = "dummy"
		case slices.Contains(f, "veth"):
			kind = "veth"
		}
		// A VLAN takes its parent's MAC when it comes up; while down
		// (its parent is) it keeps the one it last had, which the
		// history decides: the NCC makes a VLAN before it gives the LB
		// interface a new MAC.
		if strings.HasPrefix(kind, "vlan ") && state == "down" {
			mac = "(parent's when up)"
		}
		lines = append(lines, strings.TrimSpace(strings.Join([]string{name, state, mac, kind}, " ")))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// statesCanonicalNFT is `nft list table` with its chains sorted by name
// and each chain's rules sorted: the reconciler adds new rules after the
// ones it keeps, and makes a chain again when it comes back, so the
// kernel's order follows the history. The order carries no meaning: a
// state whose rules could take the same packet differently is refused
// (nft.State.Validate).
func statesCanonicalNFT(out string) string {
	type chain struct {
		head        string
		hooks, body []string
	}
	var head []string
	var chains []chain
	var cur *chain
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		t := strings.TrimSpace(l)
		switch {
		case t == "":
		case strings.HasPrefix(t, "chain "):
			chains = append(chains, chain{head: t})
			cur = &chains[len(chains)-1]
		case cur != nil && t == "}":
			cur = nil
		case cur != nil && strings.HasPrefix(t, "type "):
			cur.hooks = append(cur.hooks, t)
		case cur != nil:
			cur.body = append(cur.body, t)
		case t == "}":
		default:
			head = append(head, t)
		}
	}
	if len(head) == 0 && len(chains) == 0 {
		return ""
	}
	sort.Slice(chains, func(i, j int) bool { return chains[i].head < chains[j].head })
	var b strings.Builder
	for _, h := range head {
		b.WriteString(h + "\n")
	}
	for _, c := range chains {
		sort.Strings(c.body)
		b.WriteString("\t" + c.head + "\n")
		for _, l := range append(c.hooks, c.body...) {
			b.WriteString("\t\t" + l + "\n")
		}
	}
	return b.String()
}

// takeStatesWitness reads n's kernel: the commands' output, and the
// sysctls of keys (read in the namespace, as the NCC writes them).
func takeStatesWitness(t *testing.T, n *labtest.Node, keys []string) statesWitness {
	t.Helper()
	// Two shells, at once, run the commands (a process costs a lot
	// under TCG, and the guest has two CPUs), each command's output and
	// exit status between markers.
	var scripts [2]strings.Builder
	for i, sec := range statesSections {
		fmt.Fprintf(&scripts[i%2], "echo '%s%s'; %s 2>&1; printf '\\n%src=%%d\\n' $?\n", statesMark, sec, sec, statesMark)
	}
	var outs [2][]byte
	var errs [2]error
	var wg sync.WaitGroup
	for i := range scripts {
		wg.Go(func() { outs[i], errs[i] = n.Output("sh", "-c", scripts[i].String()) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatalf("witness: %v", err)
	}
	out := append(outs[0], outs[1]...)
	order := make([]string, 0, len(statesSections))
	for i := range scripts {
		for j := i; j < len(statesSections); j += 2 {
			order = append(order, statesSections[j])
		}
	}
	w := statesWitness{sections: map[string]string{}, sysctls: map[string]string{}}
	parts := strings.Split(string(out), statesMark)
	if len(parts) != 2*len(statesSections)+1 {
		t.Fatalf("witness: %d parts, want %d:\n%s", len(parts), 2*len(statesSections)+1, out)
	}
	for i, sec := range order {
		head, text, _ := strings.Cut(parts[1+2*i], "\n")
		rc := strings.TrimSpace(parts[2+2*i])
		text = strings.TrimSuffix(text, "\n")
		switch {
		case head != sec:
			t.Fatalf("witness: %q where %q was due", head, sec)
		case rc == "rc=0":
		// A table that never held a route does not exist; no
		// nftables table is a witness too (the NCC removes it with its
		// last rule).
		case (sec == wRoutes4 || sec == wRoutes6) && strings.Contains(text, "FIB table does not exist"),
			sec == wNFT && strings.Contains(text, "No such file or directory"):
			text = ""
		default:
			t.Fatalf("%s: %s:\n%s", sec, rc, text)
		}
		switch sec {
		case wIPVS:
			text = ipvs.CanonicalSave(text)
		case wThresh:
			text = statesCanonicalList(text)
		case wAddrs:
			text = statesCanonicalAddrs(text)
		case wLinks:
			text = statesCanonicalLinks(text)
		case wNFT:
			text = statesCanonicalNFT(text)
		}
		w.sections[sec] = text
	}
	err := n.Do(func() error {
		for _, k := range keys {
			p := k
			if !strings.Contains(k, "/") {
				p = strings.ReplaceAll(k, ".", "/")
			}
			b, err := os.ReadFile(filepath.Join("/proc/sys", p))
			switch {
			case errors.Is(err, os.ErrNotExist):
				w.sysctls[k] = "(none)"
			case err != nil:
				return err
			default:
				w.sysctls[k] = strings.Join(strings.Fields(string(b)), " ")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestLabNCCStates runs the whole NCC in a lab node and sends it complete
// desired states (IPVS, the network, packet rules) over its socket, in
// table order and then in random orders (the seed is logged;
// NCC_STATES_SEED replays them, NCC_STATES_ROUNDS makes more). After each
// Apply: no errors; the kernel's own witnesses (ipvsadm, ip, nft, the
// sysctls) are exactly what they were the first time the same state was
// applied, whatever came before it, and that first recording holds the
// facts each state lists; the same state again writes nothing and reports
// no change; and a dry run of the next state leaves every witness as it
// was and writes nothing. At the end --cleanup removes IPVS, the nftables
// table and the network state.
func TestLabNCCStates(t *testing.T) {
	labtest.RequireLab(t)
	n, peer := labtest.NewTestNode(t, "ncc"), labtest.NewTestNode(t, "peer")
	if err := labtest.Veth(n, "eth1", peer, "p1"); err != nil {
		t.Fatal(err)
	}
	h := n.Handle()
	eth1, err := h.LinkByName("eth1")
	if err != nil {
		t.Fatal(err)
	}
	// The LB interface starts down with a MAC of its own, as on a node
	// the NCC has not yet been told about.
	if err := h.LinkSetDown(eth1); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetHardwareAddr(eth1, statesEth1MAC); err != nil {
		t.Fatal(err)
	}
	if err := n.AddLink(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "dummy0"}}); err != nil {
		t.Fatal(err)
	}

	// The NCC's openers, each inside the node; the IPVS and nftables
	// ones kept, for their own counts of writes.
	var mu sync.Mutex
	var ipvsc *ipvs.Client
	var nftr *nft.Reconciler
	var handles []*netlink.Handle
	t.Cleanup(func() {
		for _, h := range handles {
			h.Close()
		}
	})
	openIPVS := func() (reconcile.IPVS, error) {
		var c *ipvs.Client
		if err := n.Do(func() (err error) { c, err = ipvs.New(); return err }); err != nil {
			return nil, err
		}
		mu.Lock()
		ipvsc = c
		mu.Unlock()
		return c, nil
	}
	openNet := func() (netconf.Kernel, error) {
		var h *netlink.Handle
		if err := n.Do(func() (err error) { h, err = netlink.NewHandle(unix.NETLINK_ROUTE); return err }); err != nil {
			return nil, err
		}
		mu.Lock()
		handles = append(handles, h)
		mu.Unlock()
		return netconf.NewLinux(h, n.Do), nil
	}
	openNFT := func() (*nft.Reconciler, error) {
		r, err := nodeNFT(n, nil)()
		if err == nil {
			mu.Lock()
			nftr = r
			mu.Unlock()
		}
		return r, err
	}
	writes := func() (uint64, uint64) {
		mu.Lock()
		defer mu.Unlock()
		var i, f uint64
		if ipvsc != nil {
			i = ipvsc.Writes()
		}
		if nftr != nil {
			f = nftr.Writes()
		}
		return i, f
	}

	stateFile := filepath.Join(t.TempDir(), "desired.pb")
	sock := filepath.Join(t.TempDir(), "ncc.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Socket: sock, AuditInterval: time.Hour, AnnounceInterval: time.Hour, StateFile: stateFile,
			IPVS: openIPVS, Net: openNet, NFT: openNFT,
			Sender: func() (FrameSender, error) { return &recorder{}, nil },
			Probe:  func() (ipvs.GenlFamily, error) { return ipvs.GenlFamily{ID: 1}, nil }})
	}()
	cc, err := ipc.Dial(sock, ipc.DialOptions{MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			cc.Close()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	c := nccpb.NewNCCClient(cc)

	table := statesTable()
	var allKeys []string
	for _, s := range table {
		for _, k := range statesSysctlKeys(s.ds) {
			if !slices.Contains(allKeys, k) {
				allKeys = append(allKeys, k)
			}
		}
	}
	sort.Strings(allKeys)

	start := time.Now()
	first := make([]*statesWitness, len(table))
	cur := takeStatesWitness(t, n, allKeys)
	initial := cur
	var history []string // the states applied so far, for failure messages
	hist := func() string {
		const keep = 8
		if len(history) > keep {
			return "..., " + strings.Join(history[len(history)-keep:], ", ")
		}
		return strings.Join(history, ", ")
	}
	applies := 0
	step := func(i int) {
		t.Helper()
		s := table[i]
		before := hist()
		// A dry run plans and changes nothing: not the witnesses, not
		// the clients' counts of writes.
		wi, wf := writes()
		dry, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: s.ds, DryRun: true})
		if err != nil {
			t.Fatalf("dry run of %q after [%s]: %v", s.name, before, err)
		}
		if len(dry.Errors) != 0 || dry.KernelWrites != 0 {
			t.Fatalf("dry run of %q after [%s]: errors %v, %d kernel writes", s.name, before, dry.Errors, dry.KernelWrites)
		}
		after := takeStatesWitness(t, n, allKeys)
		if d := cur.diff(after, allKeys, "before the dry run"); d != "" {
			t.Fatalf("a dry run of %q after [%s] changed the kernel:\n%s", s.name, before, d)
		}
		if i2, f2 := writes(); i2 != wi || f2 != wf {
			t.Fatalf("a dry run of %q after [%s] wrote: %d to IPVS, %d to nftables", s.name, before, i2-wi, f2-wf)
		}

		resp, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: s.ds})
		applies++
		history = append(history, s.name)
		if err != nil {
			t.Fatalf("apply %q after [%s]: %v", s.name, before, err)
		}
		if len(resp.Errors) != 0 {
			t.Fatalf("apply %q after [%s]: errors %v\nchanges:\n%s", s.name, before, resp.Errors, statesChanges(resp.Changes))
		}
		// A dry run that saw nothing to do and an Apply that did
		// something (or the reverse) disagree.
		if (len(dry.Changes) == 0) != (len(resp.Changes) == 0) {
			t.Errorf("%q after [%s]: the dry run planned %d changes, the apply made %d:\n%s\n%s",
				s.name, before, len(dry.Changes), len(resp.Changes), statesChanges(dry.Changes), statesChanges(resp.Changes))
		}
		w := takeStatesWitness(t, n, allKeys)
		keys := statesSysctlKeys(s.ds)
		if first[i] == nil {
			for sec, frags := range s.has {
				got := w.section(sec, keys)
				for _, f := range frags {
					if !strings.Contains(got, f) {
						t.Errorf("after %q, %s lacks %q:\n%s", s.name, sec, f, got)
					}
				}
			}
			for sec, frags := range s.lacks {
				got := w.section(sec, keys)
				for _, f := range frags {
					if strings.Contains(got, f) {
						t.Errorf("after %q, %s has %q:\n%s", s.name, sec, f, got)
					}
				}
			}
			if t.Failed() {
				t.FailNow()
			}
			first[i] = &w
		} else if d := first[i].diff(w, keys, "the first time"); d != "" {
			t.Fatalf("after [%s] and now %q, the kernel does not hold what it held after %q the first time:\n%s\nchanges of this apply:\n%s",
				before, s.name, s.name, d, statesChanges(resp.Changes))
		}

		// The same state again: nothing to do.
		wi, wf = writes()
		again, err := call(t, c.Apply, &nccpb.ApplyRequest{Desired: s.ds})
		if err != nil {
			t.Fatal(err)
		}
		i2, f2 := writes()
		if len(again.Changes) != 0 || again.KernelWrites != 0 || len(again.Errors) != 0 || i2 != wi || f2 != wf {
			t.Fatalf("%q applied twice after [%s]: %d kernel writes (%d to IPVS, %d to nftables), errors %v, changes:\n%s",
				s.name, before, again.KernelWrites, i2-wi, f2-wf, again.Errors, statesChanges(again.Changes))
		}
		cur = w
	}

	for i := range table {
		step(i)
	}
	seed := rand.Uint64()
	if s, err := strconv.ParseUint(os.Getenv(statesSeedEnv), 10, 64); err == nil {
		seed = s
	}
	rounds := 2
	if r, err := strconv.Atoi(os.Getenv(statesRoundsEnv)); err == nil && r >= 0 {
		rounds = r
	}
	t.Logf("seed %d, %d random orders (%s=%d %s=%d replays them)", seed, rounds, statesSeedEnv, seed, statesRoundsEnv, rounds)
	rng := rand.New(rand.NewPCG(seed, 5))
	for range rounds {
		for _, i := range rng.Perm(len(table)) {
			step(i)
		}
	}
	// The richest state last, so that cleanup has the most to remove.
	step(slices.IndexFunc(table, func(c statesCase) bool { return c.name == "master, VRID 63, two sync daemons" }))
	t.Logf("%d applies in %v", applies, time.Since(start).Round(time.Millisecond))

	// --cleanup, after the NCC stopped, from its state file.
	stop()
	if err := CleanupWith(Config{IPVS: openIPVS, Net: openNet, NFT: openNFT, StateFile: stateFile}); err != nil {
		t.Fatal(err)
	}
	w := takeStatesWitness(t, n, allKeys)
	for _, sec := range []string{wIPVS, wThresh, wDaemons, wAddrs, wNFT, wRoutes4, wRoutes6} {
		if got := strings.TrimSpace(w.sections[sec]); got != "" {
			t.Errorf("after cleanup, %s:\n%s", sec, got)
		}
	}
	for _, sec := range []string{wRules4, wRules6} {
		if got, want := w.sections[sec], initial.sections[sec]; got != want {
			t.Errorf("after cleanup, %s:\n%swant what the node had before the NCC:\n%s", sec, got, want)
		}
	}
	// The LB interface is down with its own MAC again (as CleanupWith
	// promises), the dummy stays, and the NCC's VLANs and macvlans are
	// gone.
	wantLinks := fmt.Sprintf("dummy0 up %s dummy\n", statesLinkMAC(t, n, "dummy0")) + "eth1 down " + statesEth1MAC.String() + " veth\n"
	if got := w.sections[wLinks]; got != wantLinks {
		t.Errorf("after cleanup, links:\n%s\nwant:\n%s", got, wantLinks)
	}
}

// statesChanges lists changes one a line, for failure messages.
func statesChanges(cs []*nccpb.Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "  %v %s %s %s\n", c.GetOp(), c.GetKind(), c.GetObject(), c.GetDetail())
	}
	return b.String()
}

// statesLinkMAC is a link's MAC in n.
func statesLinkMAC(t *testing.T, n *labtest.Node, name string) string {
	t.Helper()
	l, err := n.Handle().LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr.String()
}
