package keepalived

import (
	"strings"
	"testing"

	"github.com/seesawlb/seesaw/engine/config"
)

// natPair is a keepalived LVS-NAT pair as its users write it: the VIPs on
// eth2, and the backends' gateway (their default route) as a
// virtual_ipaddress on the backends' link, eth1 here and eth3 on the peer,
// listed first, so that the master holds it and the backends' replies come
// back through the node that holds their connections.
const natPairSelf = `vrrp_instance VI {
  interface eth0
  virtual_router_id 9
  unicast_src_ip 10.0.0.4
  unicast_peer {
    10.0.0.3
  }
  virtual_ipaddress {
    10.0.1.254/24 dev eth1
    10.0.0.2/24 dev eth2
    10.0.0.10/32 dev eth2
  }
  virtual_ipaddress_excluded {
    2001:db8:1::fe/64 dev eth1
    2001:db8::10/128 dev eth2
  }
}
virtual_server 10.0.0.10 80 {
  lb_kind NAT
  protocol TCP
  real_server 10.0.1.1 80 {
  }
}
virtual_server 2001:db8::10 80 {
  lb_kind NAT
  protocol TCP
  real_server 2001:db8:1::1 80 {
  }
}
`

// TestImportNATGateway: keepalived's floating gateway of NAT backends
// becomes [nat_gateway] on both nodes, each with its own file's interface,
// and is taken neither for the cluster VIP nor for the LB interface.
func TestImportNATGateway(t *testing.T) {
	peer := strings.NewReplacer("unicast_src_ip 10.0.0.4", "unicast_src_ip 10.0.0.3", "    10.0.0.3\n", "    10.0.0.4\n",
		"dev eth1", "dev eth3").Replace(natPairSelf)
	r, err := importText(t, natPairSelf, peer, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Engines) != 2 {
		t.Fatalf("%d seesaw.cfg, want 2", len(r.Engines))
	}
	files := r.Files("test")
	for i, name := range []string{"seesaw.cfg", "peer/seesaw.cfg"} {
		text := string(files[name])
		dev := []string{"eth1", "eth3"}[i]
		want := "\n[nat_gateway]\n# The virtual_ipaddress on the backends' link that NAT backends route\n" +
			"# their replies through: the master holds it, as keepalived's did.\n" +
			"ipv4 = 10.0.1.254/24\nipv6 = 2001:db8:1::fe/64\ninterface = " + dev + "\n"
		if !strings.HasSuffix(text, want) {
			t.Errorf("%s does not end with\n%s\nit is:\n%s", name, want, text)
		}
		for _, line := range []string{"lb = eth2\n", "vip_ipv4 = 10.0.0.2\n"} {
			if !strings.Contains(text, line) {
				t.Errorf("%s lacks %q:\n%s", name, line, text)
			}
		}
		if strings.Contains(text, "vip_ipv6") {
			t.Errorf("%s has an IPv6 cluster VIP, but the only IPv6 VIP without a virtual_server is the gateway:\n%s", name, text)
		}
		res := config.CheckData(name, files[name], "cluster.pb", files["cluster.pb"])
		if err := res.Err(); err != nil {
			t.Errorf("config check %s: %v", name, err)
		}
		if g := res.Engine.NATGateway; g.IPv4.String() != "10.0.1.254/24" || g.IPv6.String() != "2001:db8:1::fe/64" || res.Engine.GatewayInterface != dev {
			t.Errorf("%s: the engine reads [nat_gateway] as %v %v on %q", name, g.IPv4, g.IPv6, res.Engine.GatewayInterface)
		}
	}
	if u := string(r.UnmappedText()); strings.Contains(u, "10.0.1.254") || strings.Contains(u, "2001:db8:1::fe") {
		t.Errorf("the gateway is listed as not imported:\n%s", u)
	}
}

// TestImportNoNATGateway: an address on another link is a gateway only
// for NAT backends in its subnet. Without NAT virtual servers (here DR) it
// stays what it was: the first free VIP of its family, the cluster VIP;
// and a second gateway of a family is listed, not taken for the cluster
// VIP.
func TestImportNoNATGateway(t *testing.T) {
	dr := strings.ReplaceAll(natPairSelf, "lb_kind NAT", "lb_kind DR")
	r, err := importText(t, dr, "", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(r.Files("test")["seesaw.cfg"])
	if strings.Contains(cfg, "[nat_gateway]") || !strings.Contains(cfg, "vip_ipv4 = 10.0.1.254\n") {
		t.Errorf("DR: seesaw.cfg:\n%s", cfg)
	}

	two := strings.Replace(natPairSelf, "    10.0.1.254/24 dev eth1\n", "    10.0.1.254/24 dev eth1\n    10.0.1.253/24 dev eth1\n", 1)
	r, err = importText(t, two, "", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg = string(r.Files("test")["seesaw.cfg"])
	if !strings.Contains(cfg, "ipv4 = 10.0.1.254/24\n") || !strings.Contains(cfg, "vip_ipv4 = 10.0.0.2\n") {
		t.Errorf("two gateways: seesaw.cfg:\n%s", cfg)
	}
	want := "/self.conf:10: 10.0.1.253/24: another gateway of NAT backends: Seesaw's [nat_gateway] holds one per family, 10.0.1.254/24 (from /self.conf:9)"
	if u := string(r.UnmappedText()); !strings.Contains(u, want) {
		t.Errorf("unmapped:\n%s\nwant a line\n%s", u, want)
	}
}
