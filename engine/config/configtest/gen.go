// Package configtest writes large configs for tests and benchmarks: n vservers of
// b backends each, of every forwarding mode and scheduler, both address
// families, some with use_fwm and some with DSR checks, the same every time.
package configtest

import (
	"fmt"
	"net/netip"
	"strings"
)

// SeesawCfg is the seesaw.cfg of node lb1 of a generated cluster, with
// lb the LB interface and node the node interface.
func SeesawCfg(node, lb string, o ...Options) string {
	n4, n6 := nodeNets(o)
	return fmt.Sprintf("[cluster]\nname = gen\nanycast_enabled = false\nnode_ipv4 = %s\nnode_ipv6 = %s\n"+
		"peer_ipv4 = %s\nvip_ipv4 = %s\n[interface]\nnode = %s\nlb = %s\n",
		host(n4, 2).Addr(), host(n6, 2).Addr(), host(n4, 3).Addr(), host(n4, 4).Addr(), node, lb)
}

// Options shape a cluster.
type Options struct {
	// Plain makes every vserver the same simple kind: TCP 80 and 443,
	// DSR, wlc, one HTTP check, IPv4 only; for benchmarks that compare
	// with a peer doing the same.
	Plain bool
	// NodeNet4 and NodeNet6 are the nodes' networks (default 10.0.0.0/16
	// and 2001:db8::/64): lb1 is host 2, lb2 host 3, the cluster VIP 4.
	NodeNet4, NodeNet6 netip.Prefix
}

func nodeNets(o []Options) (netip.Prefix, netip.Prefix) {
	n4, n6 := netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("2001:db8::/64")
	if len(o) > 0 && o[0].NodeNet4.IsValid() {
		n4 = o[0].NodeNet4
	}
	if len(o) > 0 && o[0].NodeNet6.IsValid() {
		n6 = o[0].NodeNet6
	}
	return n4, n6
}

// host is the address with host part n in net (n < 256).
func host(net netip.Prefix, n int) netip.Prefix {
	b := net.Masked().Addr().AsSlice()
	b[len(b)-1] = byte(n)
	a, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(a, net.Bits())
}

// Cluster is a cluster.pb of n vservers of b backends each.
func Cluster(n, b int, o Options) string {
	var s strings.Builder
	n4, n6 := nodeNets([]Options{o})
	fmt.Fprintf(&s, `seesaw_vip { fqdn: "vip." ipv4: "%s" ipv6: "%s" status: PRODUCTION }
node { fqdn: "lb1." ipv4: "%s" ipv6: "%s" status: PRODUCTION }
node { fqdn: "lb2." ipv4: "%s" ipv6: "%s" status: PRODUCTION }
`, host(n4, 4), host(n6, 4), host(n4, 2), host(n6, 2), host(n4, 3), host(n6, 3))
	modes := []string{"DSR", "NAT", "TUN"}
	scheds := []string{"RR", "WRR", "LC", "WLC", "SH", "MH"}
	for i := range n {
		fmt.Fprintf(&s, "vserver {\n  name: \"svc%04d@gen\"\n  rp: \"ops@gen\"\n", i)
		if o.Plain {
			fmt.Fprintf(&s, "  entry_address { fqdn: \"svc%04d.\" ipv4: \"10.1.%d.%d/32\" status: PRODUCTION }\n", i, i/250, i%250+1)
			s.WriteString("  vserver_entry { protocol: TCP port: 80 scheduler: WLC mode: DSR healthcheck { type: HTTP port: 8080 send: \"/healthz\" } }\n")
			s.WriteString("  vserver_entry { protocol: TCP port: 443 scheduler: WLC mode: DSR }\n")
		} else {
			fmt.Fprintf(&s, "  entry_address { fqdn: \"svc%04d.\" ipv4: \"10.1.%d.%d/32\" ipv6: \"2001:db8:1::%x/128\" status: PRODUCTION }\n", i, i/250, i%250+1, i+1)
			mode := modes[i%3]
			fwm := i%10 == 9
			if fwm {
				s.WriteString("  use_fwm: true\n")
			}
			fmt.Fprintf(&s, "  vserver_entry { protocol: TCP port: 80 scheduler: %s mode: %s healthcheck { type: HTTP port: 8080 send: \"/healthz\" } }\n", scheds[i%6], mode)
			fmt.Fprintf(&s, "  vserver_entry { protocol: TCP port: 443 scheduler: %s mode: %s }\n", scheds[i%6], mode)
			if mode == "DSR" && !fwm {
				s.WriteString("  healthcheck { type: TCP port: 443 mode: DSR }\n")
			}
		}
		for j := range b {
			k := (i*b + j) % 60000
			if o.Plain {
				fmt.Fprintf(&s, "  backend { host { fqdn: \"be%05d.\" ipv4: \"10.2.%d.%d/16\" status: PRODUCTION } weight: %d }\n", k, k/250, k%250+1, 1+j%3)
				continue
			}
			fmt.Fprintf(&s, "  backend { host { fqdn: \"be%05d.\" ipv4: \"10.2.%d.%d/16\" ipv6: \"2001:db8:2::%x/64\" status: PRODUCTION } weight: %d }\n",
				k, k/250, k%250+1, k+1, 1+j%3)
		}
		s.WriteString("}\n")
	}
	return s.String()
}
