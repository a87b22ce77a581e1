package config

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

const minimalCfg = "[cluster]\nname = c1\nnode_ipv4 = 192.0.2.2\n"

func TestEngineDefaults(t *testing.T) {
	e, warns, err := ParseEngine("seesaw.cfg", []byte(minimalCfg))
	if err != nil || len(warns) != 0 {
		t.Fatalf("ParseEngine: err=%v warns=%v", err, warns)
	}
	want := DefaultEngine()
	want.File = "seesaw.cfg"
	want.ClusterName = "c1"
	want.Node.IPv4 = netip.MustParseAddr("192.0.2.2")
	want.keyLines = e.keyLines
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got %+v\nwant %+v", e, want)
	}
	// Spell out Seesaw v2's defaults so a change to DefaultEngine is caught.
	checks := []struct {
		name      string
		got, want any
	}{
		{"AnycastEnabled", e.AnycastEnabled, true},
		{"UseVMAC", e.UseVMAC, true},
		{"GratuitousARPInterval", e.GratuitousARPInterval, 10 * time.Second},
		{"VRID", e.VRID, uint8(60)},
		{"ConfigServers", e.ConfigServers, []string{"seesaw-config.example.com"}},
		{"NodeInterface", e.NodeInterface, "eth0"},
		{"LBInterface", e.LBInterface, "eth1"},
		{"AnycastRanges", e.AnycastRanges, []netip.Prefix{netip.MustParsePrefix("192.168.255.0/24"), netip.MustParsePrefix("2015:cafe:ffff::/64")}},
		{"ServiceAnycastIPv4", e.ServiceAnycastIPv4, []netip.Addr{netip.MustParseAddr("192.168.255.254")}},
		{"ServiceAnycastIPv6", e.ServiceAnycastIPv6, []netip.Addr{netip.MustParseAddr("2015:cafe:ffff::254")}},
		{"ConfigInterval", e.ConfigInterval, time.Minute},
		{"HAStateTimeout", e.HAStateTimeout, 30 * time.Second},
		{"RoutingTableID", e.RoutingTableID, uint8(2)},
		{"DummyInterface", e.DummyInterface, "dummy0"},
		{"SyncPort", e.SyncPort, 10258},
		{"StatsInterval", e.StatsInterval, 15 * time.Second},
		{"VRRPDestIP", e.VRRPDestIP, netip.MustParseAddr("224.0.0.18")},
		{"CACertFile", e.CACertFile, "/etc/seesaw/ssl/ca.crt"},
		{"ConfigServerPort", e.ConfigServerPort, 10255},
		{"ConfigServerTimeout", e.ConfigServerTimeout, 20 * time.Second},
		{"BGPUpdateInterval", e.BGPUpdateInterval, 15 * time.Second},
		{"MaxPeerConfigSyncErrors", e.MaxPeerConfigSyncErrors, 3},
		{"VMAC", e.VMAC().String(), "00:00:5e:00:01:3c"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestEngineGKE(t *testing.T) {
	e, warns, err := LoadEngine("testdata/gke/seesaw.cfg")
	if err != nil || len(warns) != 0 {
		t.Fatalf("LoadEngine: err=%v warns=%v", err, warns)
	}
	if e.ClusterName != "bundled-seesaw-onprem" || e.AnycastEnabled || e.VRID != 128 ||
		e.Node.IPv4 != netip.MustParseAddr("203.0.113.2") || e.Peer.IPv4 != netip.MustParseAddr("203.0.113.3") ||
		e.ClusterVIP.IPv4 != netip.MustParseAddr("203.0.113.4") || e.NodeInterface != "ens192" || e.LBInterface != "ens224" ||
		!reflect.DeepEqual(e.ConfigServers, []string{"127.0.0.1"}) {
		t.Errorf("unexpected engine config: %+v", e)
	}
	if got := e.VMAC(); !reflect.DeepEqual(got, net.HardwareAddr{0, 0, 0x5e, 0, 1, 128}) {
		t.Errorf("VMAC = %v", got)
	}
	if got := e.KeyLine("cluster", "vrid"); got != 7 {
		t.Errorf("KeyLine(cluster, vrid) = %d, want 7", got)
	}
}

func TestEngineAllKeys(t *testing.T) {
	cfg := `; every key
[Cluster]
NAME = c2   # trailing comment
anycast_enabled: off
node_ipv4 = 192.0.2.2
node_ipv6 = 2001:db8::2
peer_ipv4 = 192.0.2.3
peer_ipv6 = 2001:db8::3
vip_ipv4 = 192.0.2.4
vip_ipv6 = 2001:db8::4
use_vmac = no
garp_interval_sec = 3
vrid = 255
advert_interval = 100
anycast_ranges = 10.99.0.0/16, 2001:db8:ffff::/48

[config_server]
tertiary = c.example
primary = a.example

[interface]
node = bond0
lb = bond1.100

[extra_service_anycast]
mon4 = 10.99.1.1
mon6 = 2001:db8:ffff::1
`
	e, warns, err := ParseEngine("seesaw.cfg", []byte(strings.ReplaceAll(cfg, "\n", "\r\n")))
	if err != nil || len(warns) != 0 {
		t.Fatalf("ParseEngine: err=%v warns=%v", err, warns)
	}
	want := DefaultEngine()
	want.File = "seesaw.cfg"
	want.keyLines = e.keyLines
	want.ClusterName = "c2"
	want.AnycastEnabled = false
	want.Node = Addrs{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")}
	want.Peer = Addrs{netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("2001:db8::3")}
	want.ClusterVIP = Addrs{netip.MustParseAddr("192.0.2.4"), netip.MustParseAddr("2001:db8::4")}
	want.UseVMAC = false
	want.GratuitousARPInterval = 3 * time.Second
	want.VRID = 255
	want.AdvertInterval = 100 * time.Millisecond
	want.AnycastRanges = []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	// The monitoring defaults are outside the new ranges, so only the extras remain.
	want.ServiceAnycastIPv4 = []netip.Addr{netip.MustParseAddr("10.99.1.1")}
	want.ServiceAnycastIPv6 = []netip.Addr{netip.MustParseAddr("2001:db8:ffff::1")}
	want.ConfigServers = []string{"a.example", "c.example"}
	want.NodeInterface = "bond0"
	want.LBInterface = "bond1.100"
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got  %+v\nwant %+v", e, want)
	}
}

func TestEngineExtraAnycastAppends(t *testing.T) {
	e, _, err := ParseEngine("seesaw.cfg", []byte(minimalCfg+"[extra_service_anycast]\na = 192.168.255.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("192.168.255.254"), netip.MustParseAddr("192.168.255.1")}
	if !reflect.DeepEqual(e.ServiceAnycastIPv4, want) {
		t.Errorf("ServiceAnycastIPv4 = %v, want %v", e.ServiceAnycastIPv4, want)
	}
}

func TestEngineBools(t *testing.T) {
	for in, want := range map[string]bool{"1": true, "t": true, "TRUE": true, "yes": true, "on": true, "y": true,
		"0": false, "f": false, "False": false, "no": false, "off": false, "n": false} {
		e, _, err := ParseEngine("s", []byte(minimalCfg+"use_vmac = "+in+"\n"))
		if err != nil {
			t.Fatalf("use_vmac = %s: %v", in, err)
		}
		if e.UseVMAC != want {
			t.Errorf("use_vmac = %s: got %v", in, e.UseVMAC)
		}
	}
}

func TestEngineErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		want []string // every error, in order
	}{
		{"missing name", "[cluster]\nnode_ipv4 = 192.0.2.2\n", []string{"seesaw.cfg: [cluster] name is required"}},
		{"empty name", "[cluster]\nname =\nnode_ipv4 = 192.0.2.2\n", []string{"seesaw.cfg:2: [cluster] name is required"}},
		{"missing node_ipv4", "[cluster]\nname = c\n", []string{"seesaw.cfg: [cluster] node_ipv4 is required"}},
		{"bad ip", minimalCfg + "peer_ipv4 = 192.0.2\n", []string{`seesaw.cfg:4: [cluster] peer_ipv4: "192.0.2" is not an IP address`}},
		{"zone", minimalCfg + "peer_ipv6 = fe80::1%eth0\n", []string{`seesaw.cfg:4: [cluster] peer_ipv6: "fe80::1%eth0" is not an IP address`}},
		{"v6 in ipv4 key", "[cluster]\nname = c\nnode_ipv4 = 2001:db8::1\n", []string{"seesaw.cfg:3: [cluster] node_ipv4: 2001:db8::1 is not an IPv4 address"}},
		{"v4 in ipv6 key", minimalCfg + "vip_ipv6 = 192.0.2.9\n", []string{"seesaw.cfg:4: [cluster] vip_ipv6: 192.0.2.9 is not an IPv6 address"}},
		{"vrid 0", minimalCfg + "vrid = 0\n", []string{"seesaw.cfg:4: [cluster] vrid: 0 is out of range 1..255"}},
		{"vrid 256", minimalCfg + "vrid = 256\n", []string{"seesaw.cfg:4: [cluster] vrid: 256 is out of range 1..255"}},
		{"vrid word", minimalCfg + "vrid = sixty\n", []string{`seesaw.cfg:4: [cluster] vrid: "sixty" is not an integer`}},
		{"bad bool", minimalCfg + "anycast_enabled = maybe\n", []string{`seesaw.cfg:4: [cluster] anycast_enabled: "maybe" is not a boolean (want true or false)`}},
		{"garp 0", minimalCfg + "garp_interval_sec = 0\n", []string{"seesaw.cfg:4: [cluster] garp_interval_sec: 0 is out of range 1..3600"}},
		{"advert 0", minimalCfg + "advert_interval = 0\n", []string{"seesaw.cfg:4: [cluster] advert_interval: 0 is out of range 10..40950"}},
		{"advert too long", minimalCfg + "advert_interval = 41000\n", []string{"seesaw.cfg:4: [cluster] advert_interval: 41000 is out of range 10..40950"}},
		{"advert not centiseconds", minimalCfg + "advert_interval = 105\n",
			[]string{"seesaw.cfg:4: [cluster] advert_interval: 105 ms is not a whole number of centiseconds (VRRPv3 sends the interval in centiseconds)"}},
		{"advert seconds", minimalCfg + "advert_interval = 0.1\n", []string{`seesaw.cfg:4: [cluster] advert_interval: "0.1" is not an integer`}},
		{"peer is node", minimalCfg + "peer_ipv4 = 192.0.2.2\n", []string{"seesaw.cfg:4: [cluster] peer_ipv4: is the same as node_ipv4"}},
		{"VRRP MAC on the node NIC", minimalCfg + "use_vmac = true\n[interface]\nnode = eth0\nlb = eth0\n",
			[]string{"seesaw.cfg:4: [cluster] use_vmac: needs an LB NIC of its own: [interface] lb is the node NIC eth0 (set use_vmac = false, or lb to another NIC)"}},
		{"VRRP MAC by default on the node NIC", minimalCfg + "[interface]\nnode = eth0\nlb = eth0\n",
			[]string{"seesaw.cfg: [cluster] use_vmac: needs an LB NIC of its own: [interface] lb is the node NIC eth0 (set use_vmac = false, or lb to another NIC)"}},
		{"bad anycast range", minimalCfg + "anycast_ranges = 10.0.0.0/33\n", []string{`seesaw.cfg:4: [cluster] anycast_ranges: "10.0.0.0/33" is not a CIDR`}},
		{"extra anycast outside range", minimalCfg + "[extra_service_anycast]\nx = 10.0.0.1\n",
			[]string{"seesaw.cfg:5: [extra_service_anycast] x: 10.0.0.1 is not in an anycast range (192.168.255.0/24, 2015:cafe:ffff::/64)"}},
		{"extra anycast not ip", minimalCfg + "[extra_service_anycast]\nx = nope\n", []string{`seesaw.cfg:5: [extra_service_anycast] x: "nope" is not an IP address`}},
		{"bad interface", minimalCfg + "[interface]\nlb = a-very-long-interface-name\n", []string{`seesaw.cfg:5: [interface] lb: "a-very-long-interface-name" is not a valid interface name`}},
		{"garbage line", minimalCfg + "just words\n", []string{`seesaw.cfg:4: want "key = value" or "[section]"`}},
		{"missing key", minimalCfg + "= 3\n", []string{`seesaw.cfg:4: missing key before "="`}},
		{"unclosed header", "[cluster\nname = c\nnode_ipv4 = 192.0.2.2\n",
			[]string{`seesaw.cfg:1: malformed section header, want "[name]"`, "seesaw.cfg: [cluster] name is required", "seesaw.cfg: [cluster] node_ipv4 is required"}},
		{"empty header", minimalCfg + "[ ]\n", []string{"seesaw.cfg:4: empty section name"}},
		{"all reported", "[cluster]\nname = c\nnode_ipv4 = x\nvrid = 0\nuse_vmac = 2\n", []string{
			`seesaw.cfg:3: [cluster] node_ipv4: "x" is not an IP address`,
			"seesaw.cfg:4: [cluster] vrid: 0 is out of range 1..255",
			`seesaw.cfg:5: [cluster] use_vmac: "2" is not a boolean (want true or false)`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _, err := ParseEngine("seesaw.cfg", []byte(tc.cfg))
			if err == nil {
				t.Fatalf("ParseEngine succeeded, want errors %q", tc.want)
			}
			if e != nil {
				t.Errorf("ParseEngine returned an Engine with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not Errors", err)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			var iss Issue
			if !errors.As(err, &iss) || iss.File != "seesaw.cfg" {
				t.Errorf("errors.As(Issue) = %+v", iss)
			}
		})
	}
}

func TestEngineWarnings(t *testing.T) {
	cfg := "stray = 1\n" + minimalCfg + "colour = blue\nvrid = 10\nvrid = 11\n[default]\nx = 1\n[interface]\nnode = eth7\n"
	e, warns, err := ParseEngine("seesaw.cfg", []byte(cfg))
	if err != nil {
		t.Fatalf("warnings must not fail the load: %v", err)
	}
	want := []string{
		`seesaw.cfg:1: key "stray" is outside any section; ignored`,
		`seesaw.cfg:5: unknown key "colour" in [cluster]; ignored`,
		"seesaw.cfg:7: [cluster] vrid repeats line 6; the last one wins",
		"seesaw.cfg:8: unknown section [default]; ignored",
	}
	var got []string
	for _, w := range warns {
		got = append(got, w.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if e.VRID != 11 || e.NodeInterface != "eth7" {
		t.Errorf("VRID=%d NodeInterface=%q, want 11, eth7", e.VRID, e.NodeInterface)
	}
}

func TestINI(t *testing.T) {
	in := "\uFEFF# comment\n; comment\n[A]\nk1 = v1 ; note\nk2: a:b:c\nk3 = x#y\n  k4  =  spaced value  \n[b]\n[a]\nk5 =\n"
	secs, errs := parseINI("f", []byte(in))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if len(secs) != 2 || secs[0].Name != "a" || secs[1].Name != "b" {
		t.Fatalf("sections = %+v", secs)
	}
	want := []iniEntry{
		{"k1", "v1", 4}, {"k2", "a:b:c", 5}, {"k3", "x#y", 6}, {"k4", "spaced value", 7}, {"k5", "", 10},
	}
	if !reflect.DeepEqual(secs[0].Entries, want) {
		t.Errorf("entries = %+v\nwant %+v", secs[0].Entries, want)
	}
}

func TestEngineConnSyncAndNATGateway(t *testing.T) {
	e, warns, err := ParseEngine("seesaw.cfg", []byte(minimalCfg+`[connection_sync]
interface = bond0
sync_id = 7
max_length = 1400
refresh_period = 30
retries = 3
sloppy = false
tcp_timeout = 3600
conntrackd = false
[nat_gateway]
ipv4 = 198.51.100.1/24
ipv6 = 2001:db8:2::1/64
interface = eth3
`))
	if err != nil || len(warns) != 0 {
		t.Fatalf("%v %v", err, warns)
	}
	cs := e.ConnSync
	if !cs.Enabled || cs.Interface != "bond0" || cs.SyncID != 7 || cs.MaxLength != 1400 || cs.RefreshPeriod != 30*time.Second ||
		cs.Retries != 3 || cs.Sloppy || cs.TCPTimeout != time.Hour || cs.UDPTimeout != 300*time.Second || cs.SockSize != 4<<20 || cs.Conntrackd != Off {
		t.Errorf("connection_sync: %+v", cs)
	}
	if e.NATGateway.IPv4.String() != "198.51.100.1/24" || e.NATGateway.IPv6.String() != "2001:db8:2::1/64" || e.GatewayInterface != "eth3" {
		t.Errorf("nat_gateway: %+v on %q", e.NATGateway, e.GatewayInterface)
	}
	for cfg, want := range map[string]string{
		"[connection_sync]\nretries = 4\n":         "retries: 4 is out of range 0..3",
		"[connection_sync]\ntcp_timeout = 0\n":     "tcp_timeout: 0 is out of range",
		"[nat_gateway]\nipv4 = 198.51.100.1\n":     "not an address with a prefix length",
		"[nat_gateway]\nipv4 = 198.51.100.0/24\n":  "its network's own address",
		"[nat_gateway]\nipv6 = 198.51.100.1/24\n":  "not an IPv6 address",
		"[nat_gateway]\ninterface = eth3 eth4\n":   "not a valid interface name",
		"[connection_sync]\nenabled = sometimes\n": "not a boolean",
		"[connection_sync]\nconntrackd = maybe\n":  "conntrackd: \"maybe\" is not a boolean",
	} {
		_, _, err := ParseEngine("seesaw.cfg", []byte(minimalCfg+cfg))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", cfg, err, want)
		}
	}
}

func TestEngineFailback(t *testing.T) {
	e, _, err := ParseEngine("seesaw.cfg", []byte(minimalCfg))
	if err != nil {
		t.Fatal(err)
	}
	if e.ConnSync.Failback || e.ConnSync.CatchUpLimit != 120*time.Second {
		t.Errorf("defaults: failback %v, catch_up_limit %v", e.ConnSync.Failback, e.ConnSync.CatchUpLimit)
	}
	e, _, err = ParseEngine("seesaw.cfg", []byte(minimalCfg+"[connection_sync]\nfailback = true\ncatch_up_limit = 600\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !e.ConnSync.Failback || e.ConnSync.CatchUpLimit != 10*time.Minute {
		t.Errorf("failback %v, catch_up_limit %v", e.ConnSync.Failback, e.ConnSync.CatchUpLimit)
	}
	for cfg, want := range map[string]string{
		"[connection_sync]\nfailback = later\n":    "failback: ",
		"[connection_sync]\ncatch_up_limit = 0\n":  "catch_up_limit: 0 is out of range",
		"[connection_sync]\ncatch_up_limit = -5\n": "catch_up_limit: ",
	} {
		_, _, err := ParseEngine("seesaw.cfg", []byte(minimalCfg+cfg))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", cfg, err, want)
		}
	}
}

// TestRemoteControlNames: [remote_control] lists the certificate names of
// the remote control's admins and readers, by commas or spaces.
func TestRemoteControlNames(t *testing.T) {
	e, warns, err := ParseEngine("seesaw.cfg", []byte("[cluster]\nname = c\nnode_ipv4 = 192.0.2.1\n[remote_control]\nadmin = alice, ops.example.com\nreader = bob carol\n"))
	if err != nil || len(warns) != 0 {
		t.Fatalf("%v %v", err, warns)
	}
	if strings.Join(e.RemoteAdmins, "|") != "alice|ops.example.com" || strings.Join(e.RemoteReaders, "|") != "bob|carol" {
		t.Errorf("admins %q, readers %q", e.RemoteAdmins, e.RemoteReaders)
	}
}

// TestEngineConntrackdSwitch: conntrackd is auto unless seesaw.cfg says
// true or false.
func TestEngineConntrackdSwitch(t *testing.T) {
	for cfg, want := range map[string]Switch{
		"":                                       Auto,
		"[connection_sync]\nconntrackd = auto\n": Auto,
		"[connection_sync]\nconntrackd = AUTO\n": Auto,
		"[connection_sync]\nconntrackd = true\n": On,
		"[connection_sync]\nconntrackd = on\n":   On,
		"[connection_sync]\nconntrackd = no\n":   Off,
	} {
		e, _, err := ParseEngine("seesaw.cfg", []byte(minimalCfg+cfg))
		if err != nil {
			t.Fatalf("%q: %v", cfg, err)
		}
		if e.ConnSync.Conntrackd != want {
			t.Errorf("%q: conntrackd %v, want %v", cfg, e.ConnSync.Conntrackd, want)
		}
	}
}
