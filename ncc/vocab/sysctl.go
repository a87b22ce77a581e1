package vocab

import (
	"maps"
	"strconv"
)

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

// SyncSettings are the knobs of IPVS connection sync that ConnSyncSysctls
// turns into sysctls.
type SyncSettings struct {
	RefreshPeriodSeconds int  // resend a used connection this often; 0: never
	Retries              int  // resends of a refresh, 0..3
	SockSize             int  // the sync sockets' buffer, bytes; 0: the system's
	Sloppy               bool // create entries from mid-stream packets
}

// ConnSyncSysctls are the settings that make IPVS connection sync carry
// every connection to the peer, for a node whose sync daemons run:
//   - vs.sync_threshold "0 0": no packet-count threshold or period, so a
//     connection is sent when it is established (and at every state
//     change), not after its third packet; vs.sync_refresh_period then
//     paces the resends of a connection in use, so the backup's copy does
//     not time out while the master's is alive, and vs.sync_retries
//     repeats each resend against a lost datagram.
//   - vs.sync_sock_size: a burst of new connections must not overflow the
//     sync socket (the kernel caps it at net.core.wmem_max/rmem_max, which
//     are the host's, not a namespace's, to raise).
//   - vs.sync_persist_mode 0: persistence templates are synced too.
//   - vs.sloppy_tcp, vs.sloppy_sctp: a packet of a connection the sync had
//     not carried yet (a handshake in flight, the last 2 s of a sync
//     buffer) makes a new entry on the node that took over instead of
//     being refused; with the mh scheduler, whose pick depends only on the
//     packet and the destination list, it reaches the backend it was on.
func ConnSyncSysctls(s SyncSettings) map[string]string {
	m := map[string]string{
		"net.ipv4.vs.sync_threshold":      "0 0",
		"net.ipv4.vs.sync_refresh_period": strconv.Itoa(s.RefreshPeriodSeconds),
		"net.ipv4.vs.sync_retries":        strconv.Itoa(s.Retries),
		"net.ipv4.vs.sync_persist_mode":   "0",
	}
	if s.SockSize > 0 {
		m["net.ipv4.vs.sync_sock_size"] = strconv.Itoa(s.SockSize)
	}
	if s.Sloppy {
		m["net.ipv4.vs.sloppy_tcp"] = "1"
		m["net.ipv4.vs.sloppy_sctp"] = "1"
	}
	return m
}
