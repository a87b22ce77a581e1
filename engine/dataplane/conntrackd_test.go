package dataplane

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/config"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// TestDeriveConntrackd: when the engine asks the NCC for conntrackd, and
// over which addresses.
func TestDeriveConntrackd(t *testing.T) {
	const pair = "[cluster]\nname = t\nnode_ipv4 = 192.0.2.2\nnode_ipv6 = 2001:db8::2\npeer_ipv4 = 192.0.2.3\npeer_ipv6 = 2001:db8::3\n"
	v4 := &nccpb.Conntrackd{Interface: "eth0", LocalAddress: "192.0.2.2", PeerAddress: "192.0.2.3", IgnoreAddresses: []string{"2001:db8::2", "2001:db8::3"}}
	for _, c := range []struct {
		name, cfg string
		fullNAT   bool
		want      *nccpb.Conntrackd
		warn      string
	}{
		{name: "auto with full NAT", cfg: pair, fullNAT: true, want: v4},
		{name: "auto without full NAT", cfg: pair},
		{name: "on without full NAT", cfg: pair + "[connection_sync]\nconntrackd = true\n", want: v4},
		{name: "off", cfg: pair + "[connection_sync]\nconntrackd = false\n", fullNAT: true},
		{name: "connection sync off", cfg: pair + "[connection_sync]\nenabled = false\n", fullNAT: true},
		{name: "a single node", cfg: "[cluster]\nname = t\nnode_ipv4 = 192.0.2.2\n", fullNAT: true},
		{name: "on, single node", cfg: "[cluster]\nname = t\nnode_ipv4 = 192.0.2.2\n[connection_sync]\nconntrackd = true\n",
			fullNAT: true, warn: "no address of one family"},
		{name: "peer of the other family", cfg: "[cluster]\nname = t\nnode_ipv4 = 192.0.2.2\npeer_ipv6 = 2001:db8::3\n",
			fullNAT: true, warn: "full-NAT connections will not survive a failover"},
		{name: "IPv6 only", cfg: "[cluster]\nname = t\nnode_ipv4 = 192.0.2.2\nnode_ipv6 = 2001:db8::2\npeer_ipv6 = 2001:db8::3\n[connection_sync]\ninterface = bond0\n",
			fullNAT: true, want: &nccpb.Conntrackd{Interface: "bond0", LocalAddress: "2001:db8::2", PeerAddress: "2001:db8::3", IgnoreAddresses: []string{"192.0.2.2"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, _, err := config.ParseEngine("seesaw.cfg", []byte(c.cfg))
			if err != nil {
				t.Fatal(err)
			}
			got, warn := deriveConntrackd(e, c.fullNAT)
			if !proto.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if c.warn == "" && warn != "" || !strings.Contains(warn, c.warn) {
				t.Errorf("warning %q, want one with %q", warn, c.warn)
			}
		})
	}
}
