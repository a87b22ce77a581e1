package dataplane

import (
	"cmp"
	"fmt"
	"net/netip"

	"github.com/seesawlb/seesaw/engine/config"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// deriveConntrackd asks the NCC for conntrackd, the netfilter conntrack
// sync that full NAT (IPVS masquerade plus source NAT to the cluster VIP)
// needs to keep its connections through a failover: the source-NAT
// binding lives in conntrack, and IPVS sync does not carry it.
//
// It is wanted when connection sync is on, this node has a peer, and
// [connection_sync] conntrackd is true, or auto (the default) with an
// enabled full-NAT vserver: a pair without full NAT pays nothing for it.
// The sync runs over the connection sync's interface (the node interface
// unless seesaw.cfg says otherwise), unicast UDP between the node's and
// the peer's addresses, IPv4 when both have one, else IPv6. Neither
// node's own connections are synced.
func deriveConntrackd(e *config.Engine, fullNAT bool) (*nccpb.Conntrackd, string) {
	cs := e.ConnSync
	want := cs.Conntrackd == config.On || cs.Conntrackd == config.Auto && fullNAT
	if !want || !cs.Enabled {
		return nil, ""
	}
	var local, peer netip.Addr
	switch {
	case e.Node.IPv4.IsValid() && e.Peer.IPv4.IsValid():
		local, peer = e.Node.IPv4, e.Peer.IPv4
	case e.Node.IPv6.IsValid() && e.Peer.IPv6.IsValid():
		local, peer = e.Node.IPv6, e.Peer.IPv6
	default:
		if cs.Conntrackd == config.On || e.Peer.IPv4.IsValid() || e.Peer.IPv6.IsValid() {
			return nil, fmt.Sprintf("conntrackd: seesaw.cfg gives this node and its peer no address of one family (node_ipv4 and peer_ipv4, or node_ipv6 and peer_ipv6) to sync conntrack over: full-NAT connections will not survive a failover")
		}
		return nil, "" // a single node: nothing to sync with
	}
	ct := &nccpb.Conntrackd{Interface: cmp.Or(cs.Interface, e.NodeInterface), LocalAddress: local.String(), PeerAddress: peer.String()}
	for _, a := range []netip.Addr{e.Node.IPv4, e.Node.IPv6, e.Peer.IPv4, e.Peer.IPv6} {
		if a.IsValid() && a != local && a != peer {
			ct.IgnoreAddresses = append(ct.IgnoreAddresses, a.String())
		}
	}
	return ct, ""
}
