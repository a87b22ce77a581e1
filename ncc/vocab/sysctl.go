package vocab

import "maps"

// ApplianceSysctls are the kernel settings a load-balancing node needs, for
// the engine to put in the desired state beside its own, with the node's
// interfaces (the node interface, the LB interface, its VLANs). Keys are
// in the form the desired state takes; the per-interface ones are paths so
// that a VLAN's dotted name survives.
//
// Why each:
//   - ip_forward, IPv6 forwarding: NAT-mode replies and routed VIP traffic
//     pass through the node.
//   - vs.expire_nodest_conn: a connection to a removed destination is
//     dropped at its next packet instead of hanging until it times out.
//   - accept_local: DSR and TUN health checks come back from the VIP,
//     which is a local address; IPv4 drops such packets without it.
//   - arp_ignore 1, arp_announce 2, arp_filter 1, arp_notify 1: answer ARP
//     only for addresses of the interface asked on, from the best local
//     address, and announce address changes (the VIPs move between nodes).
//   - rp_filter 2: loose reverse-path filtering; strict would drop traffic
//     that enters on the LB interface for VIPs routed through the node one.
//   - send_redirects 0: the node forwards in and out of one interface by
//     design; redirects would send clients around it.
//   - promote_secondaries: removing one VIP must not take the other
//     addresses of its subnet with it.
//   - IPv6 autoconf 0, accept_dad 0, dad_transmits 0: no addresses from
//     router advertisements, and VIPs usable at once on a failover (both
//     nodes hold them; DAD would fail one).
//   - keep_addr_on_down: the backup keeps its IPv6 VIPs while its LB
//     interface is down, so a failover is one write.
//
// ConntrackSysctl (vs.conntrack=1) is not among them: it is for NAT-mode
// vservers only, and costs every balanced packet a conntrack entry.
//
// Seesaw also raised the neighbour table's gc_thresh; those exist only in
// the host's first namespace, so they are the OS image's to set.
func ApplianceSysctls(ifaces ...string) map[string]string {
	m := map[string]string{
		"net.ipv4.ip_forward":            "1",
		"net.ipv6.conf.all.forwarding":   "1",
		"net.ipv4.vs.expire_nodest_conn": "1",
	}
	for _, i := range append([]string{"all", "default"}, ifaces...) {
		maps.Copy(m, map[string]string{
			"net/ipv4/conf/" + i + "/accept_local":        "1",
			"net/ipv4/conf/" + i + "/arp_filter":          "1",
			"net/ipv4/conf/" + i + "/arp_ignore":          "1",
			"net/ipv4/conf/" + i + "/arp_announce":        "2",
			"net/ipv4/conf/" + i + "/arp_notify":          "1",
			"net/ipv4/conf/" + i + "/rp_filter":           "2",
			"net/ipv4/conf/" + i + "/send_redirects":      "0",
			"net/ipv4/conf/" + i + "/promote_secondaries": "1",
			"net/ipv6/conf/" + i + "/autoconf":            "0",
			"net/ipv6/conf/" + i + "/accept_dad":          "0",
			"net/ipv6/conf/" + i + "/dad_transmits":       "0",
			"net/ipv6/conf/" + i + "/keep_addr_on_down":   "1",
		})
	}
	return m
}

// ConntrackSysctl makes IPVS keep netfilter connection entries for what it
// balances. The source NAT of NAT-mode vservers (an nftables rule on the
// connection's original destination) never matches without it, so a node
// with a NAT vserver needs it; one without does not pay for it.
const ConntrackSysctl = "net.ipv4.vs.conntrack"
