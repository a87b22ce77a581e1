package ha

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	hapb "github.com/seesawlb/seesaw/proto/ha"
)

func TestParamsFromProto(t *testing.T) {
	lookup := func(iface string, v6 bool) (netip.Addr, error) {
		if iface != "eth1" {
			return netip.Addr{}, errors.New("no such interface")
		}
		if v6 {
			return netip.MustParseAddr("fe80::1"), nil
		}
		return netip.MustParseAddr("10.0.0.1"), nil
	}
	base := func() *hapb.Config {
		return &hapb.Config{Enabled: true, Interface: "eth1", Vrid: 60, Priority: 255,
			AdvertInterval: durationpb.New(500 * time.Millisecond)}
	}
	// What the engine sends (haConfig): IPv4 from the node address, the
	// other nodes as peers, the cluster VIP as the address list.
	c := base()
	c.LocalAddress, c.Peers, c.Addresses = "10.0.0.2", []string{"10.0.0.3"}, []string{"10.0.0.10", "2001:db8::10"}
	p, err := ParamsFromProto(c, lookup)
	if err != nil {
		t.Fatal(err)
	}
	v := p.VRRP
	if p.Interface != "eth1" || v.Local != netip.MustParseAddr("10.0.0.2") || v.Priority != 255 || v.VRID != 60 ||
		v.Interval != 500*time.Millisecond || len(v.Peers) != 1 || len(v.Addresses) != 1 || v.Addresses[0] != netip.MustParseAddr("10.0.0.10") {
		t.Errorf("params %+v", p)
	}
	// No local address: the interface's; IPv6 when the peers are.
	c = base()
	c.Peers = []string{"fe80::2"}
	if p, err := ParamsFromProto(c, lookup); err != nil || p.VRRP.Local != netip.MustParseAddr("fe80::1") {
		t.Errorf("IPv6 params %+v, %v", p, err)
	}
	c = base()
	c.AdvertInterval = nil
	if p, err := ParamsFromProto(c, lookup); err != nil || p.VRRP.Local != netip.MustParseAddr("10.0.0.1") || p.VRRP.Interval != DefaultAdvertInterval {
		t.Errorf("default params %+v, %v", p, err)
	}
	for _, c := range []struct {
		mod  func(*hapb.Config)
		want string
	}{
		{func(c *hapb.Config) { c.Interface = "" }, "no interface"},
		{func(c *hapb.Config) { c.Vrid = 0 }, "VRID 0"},
		{func(c *hapb.Config) { c.Priority = 256 }, "priority 256"},
		{func(c *hapb.Config) { c.Peers = []string{"nonsense"} }, "peer"},
		{func(c *hapb.Config) { c.LocalAddress = "10.0.0.2"; c.Peers = []string{"fe80::2"} }, "peer fe80::2"},
		{func(c *hapb.Config) { c.LocalAddressV6 = "2001:db8::1" }, "link-local"},
		{func(c *hapb.Config) { c.Interface = "eth9" }, "no such interface"},
		{func(c *hapb.Config) { c.Unicast = true }, "unicast needs at least one peer"},
	} {
		cfg := base()
		c.mod(cfg)
		if _, err := ParamsFromProto(cfg, lookup); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParamsFromProto(%v) = %v, want an error with %q", cfg, err, c.want)
		}
	}
}
