package engine

import (
	"slices"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/seesawlb/seesaw/engine/config"
	hapb "github.com/seesawlb/seesaw/proto/ha"
)

// haConfig derives what HA runs with from a loaded config, as Seesaw v2's
// engine did: enabled and priority from this node's entry in cluster.pb, the
// VRID and this node's address from seesaw.cfg. Adverts go from the node
// address, so the interface is the node interface. Peers are every other
// node's IPv4 address (the accepted advert sources); the address list
// carries the cluster VIP.
func haConfig(e *config.Engine, c *config.Cluster, self *config.Node) *hapb.Config {
	hc := &hapb.Config{
		Enabled:        self.HAEnabled,
		Interface:      e.NodeInterface,
		Vrid:           uint32(e.VRID),
		Priority:       uint32(self.Priority),
		AdvertInterval: durationpb.New(e.AdvertInterval),
	}
	if e.Node.IPv4.IsValid() {
		hc.LocalAddress = e.Node.IPv4.String()
	}
	for _, n := range c.Nodes {
		if n == self || !n.IPv4.IsValid() {
			continue
		}
		hc.Peers = append(hc.Peers, n.IPv4.Addr().String())
	}
	if p := e.Peer.IPv4; p.IsValid() && !slices.Contains(hc.Peers, p.String()) {
		hc.Peers = append(hc.Peers, p.String())
	}
	if v := e.ClusterVIP.IPv4; v.IsValid() {
		hc.Addresses = append(hc.Addresses, v.String())
	} else if c.VIP.IPv4.IsValid() {
		hc.Addresses = append(hc.Addresses, c.VIP.IPv4.Addr().String())
	}
	return hc
}
