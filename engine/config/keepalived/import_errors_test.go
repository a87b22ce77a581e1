package keepalived

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// A minimal valid pair half, to which each case adds one mistake.
const okVRRP = `vrrp_instance VI {
  interface eth0
  virtual_router_id 9
  unicast_src_ip 10.0.0.4
  unicast_peer {
    10.0.0.3
  }
  virtual_ipaddress {
    10.0.0.2/24
    10.0.0.10
  }
}
`

func importText(t *testing.T, self, peer string, o ImportOptions) (*Result, error) {
	t.Helper()
	fs := memFS{"/self.conf": self}
	a, err := ParseFile("/self.conf", fs.options(""))
	if err != nil {
		return nil, err
	}
	var p *Input
	if peer != "" {
		fs["/peer.conf"] = peer
		b, err := ParseFile("/peer.conf", fs.options(""))
		if err != nil {
			return nil, err
		}
		p = &Input{Stmts: b}
	}
	return Import(Input{Stmts: a}, p, o)
}

// TestImportErrors: what cannot be imported at all is refused, naming the
// file and line to fix.
func TestImportErrors(t *testing.T) {
	vs := "virtual_server 10.0.0.10 80 {\n  real_server 10.0.1.1 80 {\n  }\n}\n"
	for _, tc := range []struct {
		name       string
		self, peer string
		o          ImportOptions
		want       []string
	}{
		{"bad vs address", okVRRP + "virtual_server 10.0.0.300 80 {\n}\n", "", ImportOptions{},
			[]string{`/self.conf:13: virtual_server: "10.0.0.300" is not an IP address`}},
		{"bad port", okVRRP + "virtual_server 10.0.0.10 0 {\n}\n", "", ImportOptions{},
			[]string{`/self.conf:13: virtual_server: "0" is not a port (1-65535)`}},
		{"port translation", okVRRP + "virtual_server 10.0.0.10 80 {\n  real_server 10.0.1.1 8080 {\n  }\n}\n", "", ImportOptions{},
			[]string{"/self.conf:14: real_server port 8080 differs from the virtual_server's port 80: Seesaw sends to the backend on the entry's port"}},
		{"bad lb_kind", okVRRP + "virtual_server 10.0.0.10 80 {\n  lb_kind FULLNAT\n}\n", "", ImportOptions{},
			[]string{`/self.conf:14: lb_kind "FULLNAT": want NAT, DR or TUN`}},
		{"bad protocol", okVRRP + "virtual_server 10.0.0.10 80 {\n  protocol ICMP\n}\n", "", ImportOptions{},
			[]string{"/self.conf:14: protocol must be TCP, UDP or SCTP"}},
		{"bad weight", okVRRP + "virtual_server 10.0.0.10 80 {\n  real_server 10.0.1.1 80 {\n    weight -1\n  }\n}\n", "", ImportOptions{},
			[]string{`/self.conf:15: weight "-1": want a number in 0..65535`}},
		{"bad timer", okVRRP + "virtual_server 10.0.0.10 80 {\n  delay_loop soon\n}\n", "", ImportOptions{},
			[]string{`/self.conf:14: delay_loop "soon": want seconds (e.g. 3 or 0.5)`}},
		{"bad priority", strings.Replace(okVRRP, "  interface eth0\n", "  interface eth0\n  priority 300\n", 1), "", ImportOptions{},
			[]string{`/self.conf:3: priority "300": want a number in 1..255`}},
		{"bad vip", strings.Replace(okVRRP, "10.0.0.10\n", "10.0.0.x\n", 1), "", ImportOptions{},
			[]string{`/self.conf:10: virtual_ipaddress: "10.0.0.x" is not an IP address`}},
		{"bad peer", strings.Replace(okVRRP, "    10.0.0.3\n", "    lb2\n", 1), "", ImportOptions{},
			[]string{`/self.conf:6: unicast_peer: "lb2" is not an IP address`}},
		{"no vrrp", vs, "", ImportOptions{},
			[]string{"keepalived: no vrrp_instance: Seesaw is a pair and needs the VRRP instance that moves the VIPs"}},
		{"no vrid", strings.Replace(okVRRP, "  virtual_router_id 9\n", "", 1) + vs, "", ImportOptions{},
			[]string{"/self.conf:1: vrrp_instance VI has no virtual_router_id"}},
		{"no source address", strings.Replace(okVRRP, "  unicast_src_ip 10.0.0.4\n", "", 1) + vs, "", ImportOptions{},
			[]string{"/self.conf:1: cannot tell this node's IPv4 address: keepalived takes it from interface eth0; " +
				"add unicast_src_ip (or mcast_src_ip) to the IPv4 vrrp_instance"}},
		{"no interface", strings.Replace(okVRRP, "  interface eth0\n", "", 1) + vs, "", ImportOptions{},
			[]string{"/self.conf:1: vrrp_instance VI has no interface: Seesaw needs the interface its adverts use"}},
		{"no cluster VIP", strings.Replace(okVRRP, "    10.0.0.2/24\n", "", 1) + vs, "", ImportOptions{},
			[]string{"/self.conf:1: every VIP of the VRRP instances carries a virtual_server, but Seesaw also needs a cluster VIP " +
				"(seesaw_vip: an address of its own that the master holds, and NAT backends' gateway): give one with --cluster-vip ADDR/LEN"}},
		{"cluster VIP is a vserver VIP", okVRRP + vs, "", ImportOptions{ClusterVIP: []netip.Prefix{netip.MustParsePrefix("10.0.0.10/24")}},
			[]string{"keepalived: cluster VIP 10.0.0.10/24 carries a virtual_server; Seesaw's cluster VIP must be an address of its own"}},
		{"not a pair", okVRRP + vs, strings.NewReplacer("virtual_router_id 9", "virtual_router_id 10", "10.0.0.4", "10.0.0.3", "10.0.0.3", "10.0.0.4").Replace(okVRRP), ImportOptions{},
			[]string{"/peer.conf:3: virtual_router_id 10 differs from 9 at /self.conf:3: the two files are not one pair"}},
		{"same node twice", okVRRP + vs, okVRRP + vs, ImportOptions{},
			[]string{"/peer.conf:4: the peer's address 10.0.0.4 is this node's own"}},
		{"all ports", okVRRP + "virtual_server 10.0.0.10 {\n  persistence_timeout\n  real_server 10.0.1.1 {\n  }\n}\n", "", ImportOptions{},
			[]string{"/self.conf:13: virtual_server 10.0.0.10 has no port (all ports, persistent): Seesaw serves one port per entry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := importText(t, tc.self, tc.peer, tc.o)
			if err == nil {
				t.Fatalf("imported without error; unmapped:\n%s", r.UnmappedText())
			}
			if got := errStrings(err); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestUnmappedExact: the unmapped list names every statement not carried
// over, each once, in file order, and nothing that was mapped.
func TestUnmappedExact(t *testing.T) {
	self := `global_defs {
  router_id lb1
  script_user nobody
}
vrrp_script chk { script "/bin/true" }
vrrp_instance VI {
  state MASTER
  interface eth0
  virtual_router_id 9
  priority 150
  advert_int 1
  unicast_src_ip 10.0.0.4
  unicast_peer {
    10.0.0.3
  }
  authentication {
    auth_type PASS
    auth_pass x
  }
  virtual_ipaddress {
    10.0.0.2/24
    10.0.0.10
  }
  track_script {
    chk
  }
  notify_master /bin/true
  notify_backup /bin/true
}
virtual_server 10.0.0.10 80 {
  lb_algo wrr
  lb_kind DR
  sorry_server 10.0.9.9 80
  real_server 10.0.1.1 80 {
    weight 2
    TCP_CHECK {
      connect_port 81
      bindto 10.0.0.4
    }
  }
}
virtual_server_group G { 10.0.0.11 80 }
mystery_keyword 1
`
	r, err := importText(t, self, "", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/self.conf:3: script_user nobody: Seesaw runs no user scripts",
		"/self.conf:5: vrrp_script chk {...}: health scripts that move VRRP priority; " + whyTrack,
		"/self.conf:7: state MASTER: Seesaw prefers the node with the lower IPv4 address as master (10.0.0.3, priority 255); keepalived preferred 10.0.0.4",
		"/self.conf:16: authentication {...}: " + whyAuth,
		"/self.conf:24: track_script {...}: " + whyTrack,
		"/self.conf:27: notify_master /bin/true: " + whyScript,
		"/self.conf:28: notify_backup /bin/true: " + whyScript,
		"/self.conf:30: virtual_server 10.0.0.10 80 {...}: no protocol: keepalived (and IPVS) take UDP, so UDP was imported; add \"protocol TCP\" if TCP was meant",
		"/self.conf:33: sorry_server 10.0.9.9 80: Seesaw has no sorry server; its watermarks take an entry down instead",
		"/self.conf:38: bindto 10.0.0.4: Seesaw's checks connect from the node to the backend's own address",
		"/self.conf:42: virtual_server_group G {...}: write one virtual_server per address and port (or a Seesaw vserver with several entries)",
		"/self.conf:43: mystery_keyword 1: unknown keyword",
	}
	got := strings.Split(strings.TrimSuffix(string(r.UnmappedText()), "\n"), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("unmapped:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// What was mapped made it into the cluster.
	vsList := r.Cluster.GetVserver()
	if len(vsList) != 1 {
		t.Fatalf("got %d vservers, want 1", len(vsList))
	}
	e := vsList[0].GetVserverEntry()[0]
	if e.GetProtocol().String() != "UDP" || e.GetScheduler().String() != "WRR" || e.GetMode().String() != "DSR" || e.GetHealthcheck()[0].GetPort() != 81 ||
		vsList[0].GetBackend()[0].GetWeight() != 2 {
		t.Errorf("entry not mapped as written: %v", e)
	}
}

// TestPeerDiffers: when the peer's file serves something else, this node's
// virtual servers are imported and the difference is listed at the peer's
// line; the peer's own VRRP settings (priority, interface) still count.
func TestPeerDiffers(t *testing.T) {
	vs := "virtual_server 10.0.0.10 80 {\n  protocol TCP\n  real_server 10.0.1.1 80 {\n    weight %d\n  }\n}\n"
	self := okVRRP + strings.Replace(vs, "%d", "1", 1)
	peer := strings.NewReplacer("10.0.0.4", "10.0.0.3", "    10.0.0.3\n", "    10.0.0.4\n", "interface eth0", "interface bond0").Replace(okVRRP) +
		strings.Replace(vs, "%d", "2", 1)
	r, err := importText(t, self, peer, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "/peer.conf:13: virtual servers: differ from this node's file; this node's were imported (Seesaw's pair serves one set)\n"
	if got := string(r.UnmappedText()); got != want {
		t.Errorf("unmapped:\n%s\nwant:\n%s", got, want)
	}
	if w := r.Cluster.GetVserver()[0].GetBackend()[0].GetWeight(); w != 1 {
		t.Errorf("weight %d, want this node's 1", w)
	}
	if len(r.Engines) != 2 || r.Engines[1].NodeInterface != "bond0" || r.Engines[0].NodeInterface != "eth0" {
		t.Errorf("interfaces not taken from each node's file: %+v", r.Engines)
	}
}

// TestSecondInstance: a second VRRP instance's VIPs are served, and what
// Seesaw's single router cannot keep of it (its VRID, its interface) is
// listed.
func TestSecondInstance(t *testing.T) {
	second := "vrrp_instance VI6 {\n  interface eth2\n  virtual_router_id 10\n  unicast_src_ip 2001:db8::4\n" +
		"  virtual_ipaddress {\n    2001:db8::10\n  }\n}\n"
	vs := "virtual_server 2001:db8::10 80 {\n  protocol TCP\n  real_server 2001:db8:1::1 80 {\n  }\n}\n"
	r, err := importText(t, okVRRP+second+vs, "", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "/self.conf:10: 10.0.0.10/32: a VIP that carries no virtual_server; Seesaw holds only the cluster VIP and the vservers' VIPs\n" +
		"/self.conf:13: interface eth2: Seesaw has one node and one LB interface per node; eth0 (from the first vrrp_instance) was used\n" +
		"/self.conf:15: virtual_router_id 10: Seesaw runs one VRRP router per pair: vrid 9 (from /self.conf:3) moves these VIPs too\n"
	if got := string(r.UnmappedText()); got != want {
		t.Errorf("unmapped:\n%s\nwant:\n%s", got, want)
	}
	if got := r.Cluster.GetVserver()[0].GetEntryAddress().GetIpv6(); got != "2001:db8::10/128" {
		t.Errorf("vserver VIP %q, want the second instance's", got)
	}
	if e := r.Engines[0]; e.Node.IPv6.String() != "2001:db8::4" {
		t.Errorf("node_ipv6 %v, want the second instance's unicast_src_ip", e.Node.IPv6)
	}
}
