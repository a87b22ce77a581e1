package engine

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/seesawlb/seesaw/engine/config"
	configpb "github.com/seesawlb/seesaw/proto/config"
	hapb "github.com/seesawlb/seesaw/proto/ha"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// advertInterval is Seesaw v2's VRRP advertisement interval (its
// -master_advert_interval default).
const advertInterval = 500 * time.Millisecond

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
		AdvertInterval: durationpb.New(advertInterval),
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

// checkSet expands the cluster's checks into the full set the healthcheck
// process runs: every check of a vserver and of its entries, against every
// enabled backend, once per address family that both the VIP and the backend
// have. A PLAIN check probes the backend alone, so identical PLAIN checks of
// one backend (from several vservers or entries) are one Check, as in Seesaw
// v2; DSR and TUN checks go through the VIP and stay per VIP.
//
// A check's id is a hash of everything that defines it, so the same check
// keeps its id across reloads and engine restarts, and a changed check gets a
// new one. The set is ordered by id.
func checkSet(c *config.Cluster) *hcpb.CheckSet {
	byID := map[uint64]*hcpb.Check{}
	keys := map[uint64]string{}
	add := func(hc *config.Healthcheck, vip, backend netip.Addr) {
		ck := &hcpb.Check{
			Type:      hcpb.CheckType(hcpb.CheckType_value[hc.Type.String()]),
			Address:   backend.String(),
			Port:      uint32(hc.Port),
			Mode:      hcpb.CheckMode(hcpb.CheckMode_value[hc.Mode.String()]),
			Interval:  durationpb.New(hc.Interval),
			Timeout:   durationpb.New(hc.Timeout),
			Retries:   int32(hc.Retries),
			Rise:      1, // Seesaw v2: one success makes a check healthy again
			Fall:      int32(hc.Retries) + 1,
			Send:      hc.Send,
			Receive:   hc.Receive,
			Code:      int32(hc.Code),
			Method:    hc.Method,
			Proxy:     hc.Proxy,
			TlsVerify: hc.TLSVerify,
		}
		if hc.Mode != configpb.Healthcheck_PLAIN {
			ck.Target = vip.String()
		}
		ck.Name = checkName(ck)
		key := checkKey(ck)
		id := hashID(key)
		// A collision of 64-bit hashes is not expected; if one happens, the
		// later check moves to the next free id, deterministically because
		// the config is walked in file order.
		for keys[id] != "" && keys[id] != key {
			id++
			if id == 0 {
				id = 1
			}
		}
		if _, ok := byID[id]; ok {
			return
		}
		ck.Id = id
		byID[id] = ck
		keys[id] = key
	}
	for _, v := range c.Vservers {
		for _, b := range v.Backends {
			if !b.Enabled {
				continue
			}
			for _, fam := range [][2]netip.Prefix{{v.Address.IPv4, b.IPv4}, {v.Address.IPv6, b.IPv6}} {
				vip, be := fam[0], fam[1]
				if !vip.IsValid() || !be.IsValid() {
					continue
				}
				for _, hc := range v.Healthchecks {
					add(hc, vip.Addr(), be.Addr())
				}
				for _, e := range v.Entries {
					for _, hc := range e.Healthchecks {
						add(hc, vip.Addr(), be.Addr())
					}
				}
			}
		}
	}
	cs := &hcpb.CheckSet{Full: true}
	for _, ck := range byID {
		cs.Upsert = append(cs.Upsert, ck)
	}
	slices.SortFunc(cs.Upsert, func(a, b *hcpb.Check) int { return cmp.Compare(a.Id, b.Id) })
	return cs
}

// checkName is a label for people: "HTTP 192.0.2.5:10256", with the VIP and
// mode for checks that go through it.
func checkName(ck *hcpb.Check) string {
	name := fmt.Sprintf("%s %s", ck.Type, netip.AddrPortFrom(netip.MustParseAddr(ck.Address), uint16(ck.Port)))
	if ck.Target != "" {
		name += fmt.Sprintf(" via %s (%s)", ck.Target, ck.Mode)
	}
	return name
}

// checkKey is every field that defines a check, in a fixed order.
func checkKey(ck *hcpb.Check) string {
	return strings.Join([]string{
		ck.Type.String(), ck.Mode.String(), ck.Address, ck.Target, strconv.Itoa(int(ck.Port)),
		ck.Interval.AsDuration().String(), ck.Timeout.AsDuration().String(),
		strconv.Itoa(int(ck.Retries)), strconv.Itoa(int(ck.Rise)), strconv.Itoa(int(ck.Fall)),
		strconv.Quote(ck.Send), strconv.Quote(ck.Receive), strconv.Itoa(int(ck.Code)), strconv.Quote(ck.Method),
		strconv.FormatBool(ck.Proxy), strconv.FormatBool(ck.TlsVerify),
	}, "|")
}

// hashID is a nonzero 64-bit FNV-1a hash of key.
func hashID(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	if id := h.Sum64(); id != 0 {
		return id
	}
	return 1
}
