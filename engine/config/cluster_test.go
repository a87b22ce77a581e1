package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	configpb "github.com/seesawlb/seesaw/proto/config"
	"google.golang.org/protobuf/proto"
)

// baseCluster is a valid dual-stack two-node cluster; tests append to it.
const baseCluster = `
seesaw_vip { fqdn: "vip." ipv4: "192.0.2.10/24" ipv6: "2001:db8::10/64" status: PRODUCTION }
node { fqdn: "a." ipv4: "192.0.2.1/24" ipv6: "2001:db8::1/64" }
node { fqdn: "b." ipv4: "192.0.2.2/24" ipv6: "2001:db8::2/64" }
`

const (
	addrWeb  = `entry_address { fqdn: "web." ipv4: "192.0.2.100/32" }`
	entry443 = `vserver_entry { protocol: TCP port: 443 }`
	be1      = `backend { host { fqdn: "b1." ipv4: "198.51.100.1/32" } }`
)

// vs renders a vserver named name with the given fields.
func vs(name string, fields ...string) string {
	return fmt.Sprintf("vserver { name: %q rp: \"ops@example.com\" %s }\n", name, strings.Join(fields, " "))
}

// web is a valid vserver with extra fields appended.
func web(fields ...string) string {
	return vs("web@site", append([]string{addrWeb, entry443, be1}, fields...)...)
}

func TestClusterValid(t *testing.T) {
	good := baseCluster + web(`healthcheck { type: HTTP port: 8080 }`) +
		vs("dns@site", `entry_address { fqdn: "dns." ipv4: "192.0.2.53/32" ipv6: "2001:db8::53/128" status: TESTING }`,
			`use_fwm: true`,
			`vserver_entry { protocol: UDP port: 53 scheduler: MH one_packet: true healthcheck { type: DNS send: "a." receive: "192.0.2.1" } }`,
			`vserver_entry { protocol: TCP port: 53 scheduler: MH }`,
			`backend { host { fqdn: "ns1." ipv4: "198.51.100.1/32" ipv6: "2001:db8:1::1/128" } weight: 0 }`) +
		// The same VIP on disjoint ports is allowed.
		vs("web80@site", addrWeb, `vserver_entry { protocol: TCP port: 80 }`, be1) +
		`vlan { vlan_id: 100 host { fqdn: "v100." ipv4: "10.1.0.2/24" } }
		 dedicated_vip_subnet: "192.0.2.128/25"
		 bgp_peer { fqdn: "r1." ipv4: "192.0.2.254/24" }
		 misconfigured_vserver { name: "bad@site" error_message: "no backends" }
		 metadata { last_updated: 1700000000 attribute { name: "k" value: "v" } }`
	c, err := ParseCluster("cluster.pb", []byte(good))
	if err != nil {
		t.Fatalf("ParseCluster: %v", err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	if got, want := c.Counts(), (Counts{Nodes: 2, Vservers: 3, Entries: 4, Backends: 3, Checks: 2}); got != want {
		t.Errorf("Counts = %+v, want %+v", got, want)
	}
	dns := c.Vservers[1]
	if dns.Name != "dns@site" || !dns.Enabled || !dns.UseFWM || len(dns.Entries) != 2 {
		t.Fatalf("dns vserver = %+v", dns)
	}
	e := dns.Entries[0]
	if e.Key() != "UDP/53" || e.Scheduler != configpb.VserverEntry_MH || e.Mode != configpb.VserverEntry_DSR || !e.OnePacket {
		t.Errorf("entry = %+v", e)
	}
	// An entry-level check without a port checks the entry's port.
	if hc := e.Healthchecks[0]; hc.Port != 53 || hc.Interval.Seconds() != 10 || hc.Timeout.Seconds() != 5 || !hc.TLSVerify {
		t.Errorf("healthcheck = %+v", hc)
	}
	if b := dns.Backends[0]; b.Weight != 0 || !b.Enabled || !b.InService || b.IPv6 != netip.MustParsePrefix("2001:db8:1::1/128") {
		t.Errorf("backend = %+v", b)
	}
	if w := c.Vservers[0].Backends[0].Weight; w != 1 {
		t.Errorf("default weight = %d, want 1", w)
	}
	if len(c.VLANs) != 1 || c.VLANs[0].ID != 100 || c.VLANs[0].Host.IPv4 != netip.MustParsePrefix("10.1.0.2/24") {
		t.Errorf("VLANs = %+v", c.VLANs)
	}
	if c.StatusWarnings[0] != "bad@site: no backends" || c.LastUpdated.Unix() != 1700000000 {
		t.Errorf("StatusWarnings=%v LastUpdated=%v", c.StatusWarnings, c.LastUpdated)
	}
	if c.BGPLocalASN != 64512 || len(c.BGPPeers) != 1 {
		t.Errorf("BGP: %d %v", c.BGPLocalASN, c.BGPPeers)
	}
}

func TestClusterErrors(t *testing.T) {
	tests := []struct {
		name string
		pb   string
		want string // a fragment of the only error, or of the joined errors when many
	}{
		// Parsing.
		{"syntax error has line and column", "seesaw_vip {\n  fqdn: \"x\"\n  ipv4 \"1.2.3.4/24\"\n}\n",
			"cluster.pb:3:3: syntax error: missing field separator :"},
		{"unknown field", baseCluster + "\nvsrever {}\n", "cluster.pb:6:1: unknown field: vsrever"},
		{"unclosed message", baseCluster + "vserver <\n name: \"x\"\n", `cluster.pb:5:9: syntax error: "<" is never closed (unexpected end of file)`},
		{"mismatched close", baseCluster + "node < fqdn: \"c.\" }\n", "cluster.pb:5:19: syntax error: mismatched close character '}'"},
		{"unknown enum name", baseCluster + web(`vserver_entry { protocol: TCP port: 80 scheduler: FASTEST }`), "invalid value for enum type: FASTEST"},

		// Required fields, named by path.
		{"missing seesaw_vip", "node { fqdn: \"a.\" ipv4: \"192.0.2.1/24\" }", `cluster.pb: missing required field "seesaw_vip"`},
		{"missing vserver rp", baseCluster + `vserver { name: "x" ` + addrWeb + ` }`, `cluster.pb: vserver "x": missing required field "rp"`},
		{"missing backend fqdn", baseCluster + web(`backend { host { ipv4: "198.51.100.9/32" } }`),
			`cluster.pb: vserver "web@site" backend #2 host: missing required field "fqdn"`},
		{"missing entry port", baseCluster + web(`vserver_entry { protocol: UDP }`),
			`cluster.pb: vserver "web@site" entry #2: missing required field "port"`},
		{"missing backend host", baseCluster + web(`backend { weight: 2 }`), `cluster.pb: vserver "web@site" backend #2: missing required field "host"`},
		{"missing healthcheck type", baseCluster + web(`healthcheck { port: 80 }`),
			`cluster.pb: vserver "web@site" healthcheck #1: missing required field "type"`},

		// What the healthcheck process would refuse.
		{"http send not a path", baseCluster + web(`healthcheck { type: HTTP port: 80 send: "healthz" }`),
			`cluster.pb: vserver "web@site" healthcheck #1: send "healthz" is neither a path (starting with /) nor a URL`},
		{"http bad scheme", baseCluster + web(`healthcheck { type: HTTP port: 80 send: "ftp://x/y" }`), `scheme "ftp" is not http or https`},
		{"http bad method", baseCluster + web(`healthcheck { type: HTTP port: 80 method: "GE T" }`), `method "GE T" is not an HTTP method`},
		{"dns without name", baseCluster + web(`healthcheck { type: DNS port: 53 }`), "a DNS check needs send (the name to query)"},
		{"dns bad type", baseCluster + web(`healthcheck { type: DNS port: 53 send: "a." method: "PTR" }`), `method "PTR" is not a DNS query type`},
		{"dns bad answer", baseCluster + web(`healthcheck { type: DNS port: 53 send: "a." method: "AAAA" receive: "192.0.2.1" }`), `receive "192.0.2.1" is not an AAAA address`},
		{"radius send", baseCluster + web(`healthcheck { type: RADIUS port: 1812 send: "user" }`), "send must be user:password:secret"},
		{"radius receive", baseCluster + web(`healthcheck { type: RADIUS port: 1812 send: "u:p:s" receive: "maybe" }`), "receive must be accept, reject, challenge or any"},
		{"icmp dsr", baseCluster + web(`healthcheck { type: ICMP_PING port: 1 mode: DSR }`), "an ICMP_PING check cannot use mode DSR"},

		// Duplicates.
		{"duplicate vserver", baseCluster + web() + web(), `cluster.pb: vserver "web@site": duplicate vserver name (also vserver #1)`},
		{"duplicate entry", baseCluster + web(entry443), `cluster.pb: vserver "web@site" entry TCP/443: duplicate entry (also entry #1)`},
		{"duplicate backend fqdn", baseCluster + web(`backend { host { fqdn: "b1." ipv4: "198.51.100.2/32" } }`),
			`cluster.pb: vserver "web@site" backend "b1.": duplicate backend fqdn (also backend #1)`},
		{"duplicate backend address", baseCluster + web(`backend { host { fqdn: "b2." ipv4: "198.51.100.1/24" } }`),
			`cluster.pb: vserver "web@site" backend "b2.": duplicate backend address 198.51.100.1 (also backend "b1.")`},
		{"duplicate node fqdn", baseCluster + `node { fqdn: "a." ipv4: "192.0.2.3/24" }`, `cluster.pb: node "a.": duplicate node fqdn (also node #1)`},
		{"duplicate node address", baseCluster + `node { fqdn: "c." ipv4: "192.0.2.3/24" ipv6: "2001:db8::2/64" }`,
			`cluster.pb: node "c.": address 2001:db8::2 is also used by node "b."`},
		{"duplicate vlan", baseCluster + `vlan { vlan_id: 7 host { fqdn: "v." ipv4: "10.0.0.1/24" } } vlan { vlan_id: 7 host { fqdn: "w." ipv4: "10.0.1.1/24" } }`,
			`cluster.pb: vlan 7: duplicate vlan_id (also vlan #1)`},

		// Addresses.
		{"node cidr", "seesaw_vip { fqdn: \"v\" ipv4: \"192.0.2.10/24\" } node { fqdn: \"a.\" ipv4: \"192.0.2.1\" }",
			`cluster.pb: node "a.": ipv4 "192.0.2.1" is not a CIDR (add the prefix length, e.g. /32 or /128)`},
		{"seesaw_vip cidr", "seesaw_vip { fqdn: \"v\" ipv4: \"192.0.2.300/24\" }", `cluster.pb: seesaw_vip: ipv4 "192.0.2.300/24" is not a CIDR`},
		{"entry_address cidr", baseCluster + vs("x", `entry_address { fqdn: "x." ipv6: "2001:db8::zz/128" }`),
			`cluster.pb: vserver "x" entry_address: ipv6 "2001:db8::zz/128" is not a CIDR`},
		{"backend cidr", baseCluster + web(`backend { host { fqdn: "b2." ipv4: "198.51.100.2/40" } }`),
			`cluster.pb: vserver "web@site" backend "b2.": ipv4 "198.51.100.2/40" is not a CIDR`},
		{"vlan cidr", baseCluster + `vlan { vlan_id: 7 host { fqdn: "v." ipv4: "10.0.0.1/" } }`, `cluster.pb: vlan 7 host: ipv4 "10.0.0.1/" is not a CIDR`},
		{"dedicated subnet cidr", baseCluster + `dedicated_vip_subnet: "10.0.0.0"`, `cluster.pb: dedicated_vip_subnet #1: "10.0.0.0" is not a CIDR`},
		{"bgp peer cidr", baseCluster + `bgp_peer { fqdn: "r." ipv4: "r1" }`, `cluster.pb: bgp_peer "r.": ipv4 "r1" is not a CIDR`},
		{"ipv6 in ipv4", baseCluster + web(`backend { host { fqdn: "b2." ipv4: "2001:db8::5/128" } }`),
			`cluster.pb: vserver "web@site" backend "b2.": ipv4 "2001:db8::5/128" is not an IPv4 CIDR`},
		{"ipv4 in ipv6", baseCluster + `node { fqdn: "c." ipv4: "192.0.2.3/24" ipv6: "192.0.2.3/24" }`,
			`cluster.pb: node "c.": ipv6 "192.0.2.3/24" is not an IPv6 CIDR`},
		{"mapped ipv4 in ipv6", baseCluster + `node { fqdn: "c." ipv4: "192.0.2.3/24" ipv6: "::ffff:192.0.2.3/128" }`,
			`cluster.pb: node "c.": ipv6 "::ffff:192.0.2.3/128" is not an IPv6 CIDR`},
		{"node without ipv4", baseCluster + `node { fqdn: "c." ipv6: "2001:db8::3/64" }`, `cluster.pb: node "c.": has no ipv4 address`},
		{"node is cluster vip", baseCluster + `node { fqdn: "c." ipv4: "192.0.2.10/24" }`, `cluster.pb: node "c.": address 192.0.2.10 is the cluster VIP (seesaw_vip)`},
		{"seesaw_vip without address", "seesaw_vip { fqdn: \"v\" }", `cluster.pb: seesaw_vip: has no ipv4 or ipv6 address`},
		{"vserver without address", baseCluster + vs("x", `entry_address { fqdn: "x." }`, entry443),
			`cluster.pb: vserver "x" entry_address: has no ipv4 or ipv6 address`},
		{"backend without address", baseCluster + web(`backend { host { fqdn: "b2." } }`), `cluster.pb: vserver "web@site" backend "b2.": has no ipv4 or ipv6 address`},
		{"unknown status", baseCluster + web(`backend { host { fqdn: "b2." ipv4: "198.51.100.2/32" status: 12 } }`),
			`cluster.pb: vserver "web@site" backend "b2.": unknown status 12`},

		// VIP collisions (Seesaw issue #46).
		{"vserver vip is cluster vip", baseCluster + vs("x", `entry_address { fqdn: "x." ipv4: "192.0.2.10/24" }`, entry443),
			`cluster.pb: vserver "x" entry_address: 192.0.2.10 is the cluster VIP (seesaw_vip); a vserver needs its own address`},
		{"vserver vip is node address", baseCluster + vs("x", `entry_address { fqdn: "x." ipv6: "2001:db8::1/128" }`, entry443),
			`cluster.pb: vserver "x" entry_address: 2001:db8::1 is the address of node "a."`},
		{"two vservers same vip and port", baseCluster + web() + vs("web2@site", addrWeb, entry443, `vserver_entry { protocol: UDP port: 443 }`),
			`cluster.pb: vserver "web2@site" entry_address: 192.0.2.100 TCP/443 is also served by vserver "web@site"`},

		// Entries.
		{"entry port 0", baseCluster + web(`vserver_entry { protocol: TCP port: 0 }`), `cluster.pb: vserver "web@site" entry TCP/0: port 0 is out of range 1..65535`},
		{"entry port 0 with a portless check", baseCluster + web(`vserver_entry { protocol: UDP port: 0 healthcheck { type: UDP } }`),
			`cluster.pb: vserver "web@site" entry UDP/0: port 0 is out of range 1..65535`},
		{"entry port 65536", baseCluster + web(`vserver_entry { protocol: TCP port: 65536 }`), `cluster.pb: vserver "web@site" entry TCP/65536: port 65536 is out of range 1..65535`},
		{"unknown protocol", baseCluster + web(`vserver_entry { protocol: 9 port: 80 }`), `cluster.pb: vserver "web@site" entry 9/80: unknown protocol 9`},
		{"unknown scheduler", baseCluster + web(`vserver_entry { protocol: TCP port: 80 scheduler: 42 }`), `cluster.pb: vserver "web@site" entry TCP/80: unknown scheduler 42`},
		{"unknown mode", baseCluster + web(`vserver_entry { protocol: TCP port: 80 mode: 0 }`), `cluster.pb: vserver "web@site" entry TCP/80: unknown mode 0`},
		{"negative persistence", baseCluster + web(`vserver_entry { protocol: TCP port: 80 persistence: -1 }`),
			`cluster.pb: vserver "web@site" entry TCP/80: persistence -1 must not be negative`},
		{"negative lthreshold", baseCluster + web(`vserver_entry { protocol: TCP port: 80 lthreshold: -1 }`),
			`cluster.pb: vserver "web@site" entry TCP/80: lthreshold -1 must not be negative`},
		{"lthreshold above uthreshold", baseCluster + web(`vserver_entry { protocol: TCP port: 80 lthreshold: 100 uthreshold: 50 }`),
			`cluster.pb: vserver "web@site" entry TCP/80: lthreshold 100 is above uthreshold 50`},
		{"one_packet on tcp", baseCluster + web(`vserver_entry { protocol: TCP port: 80 one_packet: true }`),
			`cluster.pb: vserver "web@site" entry TCP/80: one_packet is only valid for UDP (IPVS ignores it for TCP)`},
		{"low watermark above 1", baseCluster + web(`vserver_entry { protocol: TCP port: 80 server_low_watermark: 1.5 }`),
			`cluster.pb: vserver "web@site" entry TCP/80: server_low_watermark 1.5 is outside 0..1`},
		{"negative high watermark", baseCluster + web(`vserver_entry { protocol: TCP port: 80 server_high_watermark: -0.25 }`),
			`cluster.pb: vserver "web@site" entry TCP/80: server_high_watermark -0.25 is outside 0..1`},
		{"nan watermark", baseCluster + web(`vserver_entry { protocol: TCP port: 80 server_high_watermark: nan }`),
			`cluster.pb: vserver "web@site" entry TCP/80: server_high_watermark NaN is outside 0..1`},
		{"use_fwm scheduler", baseCluster + web(`use_fwm: true`, `vserver_entry { protocol: TCP port: 80 scheduler: RR }`),
			`cluster.pb: vserver "web@site" entry TCP/80: use_fwm: scheduler RR differs from WLC on TCP/443`},
		{"use_fwm persistence", baseCluster + web(`use_fwm: true`, `vserver_entry { protocol: TCP port: 80 persistence: 300 }`),
			`cluster.pb: vserver "web@site" entry TCP/80: use_fwm: persistence 300 differs from 0 on TCP/443`},
		{"use_fwm mode", baseCluster + web(`use_fwm: true`, `vserver_entry { protocol: TCP port: 80 mode: NAT }`),
			`cluster.pb: vserver "web@site" entry TCP/80: use_fwm: mode NAT differs from DSR on TCP/443`},

		// Backends.
		{"negative weight", baseCluster + web(`backend { host { fqdn: "b2." ipv4: "198.51.100.2/32" } weight: -1 }`),
			`cluster.pb: vserver "web@site" backend "b2.": weight -1 is out of range 0..65535`},
		{"weight too big", baseCluster + web(`backend { host { fqdn: "b2." ipv4: "198.51.100.2/32" } weight: 65536 }`),
			`cluster.pb: vserver "web@site" backend "b2.": weight 65536 is out of range 0..65535`},

		// Healthchecks.
		{"vserver check without port", baseCluster + web(`healthcheck { type: TCP }`),
			`cluster.pb: vserver "web@site" healthcheck #1: a vserver-level healthcheck needs a port`},
		{"entry check port", baseCluster + vs("x", addrWeb, `vserver_entry { protocol: TCP port: 443 healthcheck { type: HTTP port: 70000 } }`),
			`cluster.pb: vserver "x" entry TCP/443 healthcheck #1: port 70000 is out of range 1..65535`},
		{"vserver check negative port", baseCluster + web(`healthcheck { type: TCP port: -5 }`),
			`cluster.pb: vserver "web@site" healthcheck #1: port -5 is out of range 1..65535`},
		{"interval 0", baseCluster + web(`healthcheck { type: TCP port: 80 interval: 0 }`),
			`cluster.pb: vserver "web@site" healthcheck #1: interval 0 must be > 0`},
		{"timeout negative", baseCluster + vs("x", addrWeb, `vserver_entry { protocol: TCP port: 443 healthcheck { type: TCP timeout: -1 } }`),
			`cluster.pb: vserver "x" entry TCP/443 healthcheck #1: timeout -1 must be > 0`},
		{"retries negative", baseCluster + web(`healthcheck { type: TCP port: 80 retries: -1 }`),
			`cluster.pb: vserver "web@site" healthcheck #1: retries -1 must not be negative`},
		{"bad http code", baseCluster + web(`healthcheck { type: HTTP port: 80 code: 999 }`),
			`cluster.pb: vserver "web@site" healthcheck #1: code 999 is not an HTTP status code`},
		{"unknown check type", baseCluster + web(`healthcheck { type: 99 port: 80 }`), `cluster.pb: vserver "web@site" healthcheck #1: unknown type 99`},
		{"unknown check mode", baseCluster + web(`healthcheck { type: TCP port: 80 mode: 7 }`), `cluster.pb: vserver "web@site" healthcheck #1: unknown mode 7`},

		// VLANs.
		{"vlan 0", baseCluster + `vlan { vlan_id: 0 host { fqdn: "v." ipv4: "10.0.0.1/24" } }`, `cluster.pb: vlan 0: vlan_id 0 is out of range 1..4094`},
		{"vlan 4095", baseCluster + `vlan { vlan_id: 4095 host { fqdn: "v." ipv4: "10.0.0.1/24" } }`, `cluster.pb: vlan 4095: vlan_id 4095 is out of range 1..4094`},
		{"vlan without address", baseCluster + `vlan { vlan_id: 5 host { fqdn: "v." } }`, `cluster.pb: vlan 5 host: has no ipv4 or ipv6 address`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCluster("cluster.pb", []byte(tc.pb))
			if err == nil {
				t.Fatalf("ParseCluster succeeded, want error containing %q", tc.want)
			}
			if c != nil {
				t.Error("ParseCluster returned a Cluster with an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("errors:\n%v\nwant one containing:\n%s", err, tc.want)
			}
			if n := len(err.(Errors)); n != 1 && !strings.HasPrefix(tc.name, "missing seesaw_vip") && !strings.HasPrefix(tc.name, "node cidr") {
				t.Errorf("got %d errors, want exactly 1:\n%v", n, err)
			}
		})
	}
}

func TestClusterWarnings(t *testing.T) {
	pb := baseCluster + web(`healthcheck { type: TCP port: 80 interval: 2 timeout: 3 }`) +
		`node { fqdn: "c." ipv4: "10.0.0.3/24" }`
	c, err := ParseCluster("cluster.pb", []byte(pb))
	if err != nil {
		t.Fatalf("warnings must not fail the load: %v", err)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, w.String())
	}
	want := []string{
		`cluster.pb: node "c.": cluster VIP 192.0.2.10 is outside the node's subnet 10.0.0.0/24`,
		`cluster.pb: vserver "web@site" healthcheck #1: timeout 3s is longer than interval 2s`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestClusterAllErrorsReported(t *testing.T) {
	pb := baseCluster + web(entry443, `healthcheck { type: TCP }`) + web() + `vlan { vlan_id: 9999 host { fqdn: "v." ipv4: "10.0.0.1/24" } }`
	_, err := ParseCluster("cluster.pb", []byte(pb))
	want := []string{
		`cluster.pb: vlan 9999: vlan_id 9999 is out of range 1..4094`,
		`cluster.pb: vserver "web@site" entry TCP/443: duplicate entry (also entry #1)`,
		`cluster.pb: vserver "web@site" healthcheck #1: a vserver-level healthcheck needs a port`,
		`cluster.pb: vserver "web@site": duplicate vserver name (also vserver #1)`,
	}
	if err == nil || !reflect.DeepEqual(strings.Split(err.Error(), "\n"), want) {
		t.Errorf("errors:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	var iss Issue
	if !errors.As(err, &iss) || iss.File != "cluster.pb" {
		t.Errorf("errors.As(Issue) = %+v", iss)
	}
}

func TestClusterBracketStyles(t *testing.T) {
	angle := `seesaw_vip: < fqdn: "v." ipv4: "192.0.2.10/24" status: PRODUCTION >
node: < fqdn: "a." ipv4: "192.0.2.1/24" >
vserver: < name: "w" rp: "r" entry_address: < fqdn: "w." ipv4: "192.0.2.100/32" >
  vserver_entry: < protocol: TCP port: 80 healthcheck: < type: TCP port: 81 > >
  backend: < host: < fqdn: "b." ipv4: "198.51.100.1/32" > weight: 3 > >`
	curly := strings.NewReplacer(": <", " {", "<", "{", ">", "}").Replace(angle)
	if curly == angle || strings.ContainsAny(curly, "<>") {
		t.Fatalf("replacement failed: %s", curly)
	}
	a, err := ParseCluster("angle.pb", []byte(angle))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCluster("curly.pb", []byte(curly))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(a.Proto, c.Proto) {
		t.Errorf("<> and {} parse differently:\n%v\n%v", a.Proto, c.Proto)
	}
	if a.Vservers[0].Backends[0].Weight != 3 || a.Vservers[0].Entries[0].Healthchecks[0].Port != 81 {
		t.Errorf("unexpected model: %+v", a.Vservers[0])
	}
}

// Seesaw v2 configs may still carry the removed legacy_backend field.
func TestClusterReservedField(t *testing.T) {
	pb := baseCluster + web(`legacy_backend { host { fqdn: "old." } }`)
	if _, err := ParseCluster("cluster.pb", []byte(pb)); err != nil {
		t.Fatal(err)
	}
}

func TestTextIssueNoBreakSpace(t *testing.T) {
	for _, sp := range []string{" ", "\u00a0"} {
		err := errors.New("proto:" + sp + "syntax error (line 3:7): proto:" + sp + "unexpected token: }")
		if got, want := textIssue("f", err).String(), "f:3:7: syntax error: unexpected token: }"; got != want {
			t.Errorf("textIssue = %q, want %q", got, want)
		}
	}
}

func TestPriorities(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string // IPv4 addresses in config order ("" for none)
		want  map[string]uint8
	}{
		{"two", []string{"192.0.2.3", "192.0.2.2"}, map[string]uint8{"192.0.2.2": 255, "192.0.2.3": 254}},
		{"three", []string{"10.0.0.20", "10.0.0.3", "10.0.0.100"}, map[string]uint8{"10.0.0.3": 255, "10.0.0.20": 254, "10.0.0.100": 253}},
		{"four, numeric not lexical order", []string{"10.0.0.9", "10.0.0.10", "10.0.0.1", "10.0.0.200"},
			map[string]uint8{"10.0.0.1": 255, "10.0.0.9": 254, "10.0.0.10": 253, "10.0.0.200": 252}},
		{"one", []string{"10.0.0.1"}, map[string]uint8{"10.0.0.1": 255}},
		{"no ipv4 sorts first, as Seesaw's nil address did", []string{"10.0.0.1", ""}, map[string]uint8{"": 255, "10.0.0.1": 254}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var nodes []*Node
			for _, a := range tc.nodes {
				n := &Node{}
				if a != "" {
					n.IPv4 = netip.PrefixFrom(netip.MustParseAddr(a), 24)
				}
				nodes = append(nodes, n)
			}
			assignPriorities(nodes)
			got := map[string]uint8{}
			for i, n := range nodes {
				a := ""
				if n.IPv4.IsValid() {
					a = n.IPv4.Addr().String()
				}
				got[a] = n.Priority
				if i > 0 && n.Priority >= nodes[i-1].Priority {
					t.Errorf("nodes not in descending priority: %v", nodes)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("priorities = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNodeFlags(t *testing.T) {
	type flags struct{ ha, anycast, bgp, vservers bool }
	tests := []struct {
		vip, node string
		want      flags
	}{
		{"PRODUCTION", "PRODUCTION", flags{true, true, true, true}},
		{"PRODUCTION", "TESTING", flags{false, true, true, true}}, // HA needs equal statuses
		{"TESTING", "TESTING", flags{true, true, true, true}},
		{"BUILDING", "BUILDING", flags{true, false, true, false}},
		{"STANDBY", "STANDBY", flags{false, false, false, false}}, // VIP status disables HA
		{"PRODUCTION", "DISABLED", flags{false, false, false, false}},
		{"PRODUCTION", "", flags{true, true, true, true}}, // unset is PRODUCTION
	}
	for _, tc := range tests {
		st := ""
		if tc.node != "" {
			st = "status: " + tc.node
		}
		pb := fmt.Sprintf(`seesaw_vip { fqdn: "v." ipv4: "192.0.2.10/24" status: %s } node { fqdn: "a." ipv4: "192.0.2.1/24" %s }`, tc.vip, st)
		c, err := ParseCluster("c", []byte(pb))
		if err != nil {
			t.Fatal(err)
		}
		n := c.Nodes[0]
		if got := (flags{n.HAEnabled, n.AnycastEnabled, n.BGPEnabled, n.VserversEnabled}); got != tc.want {
			t.Errorf("vip %s node %q: flags %+v, want %+v", tc.vip, tc.node, got, tc.want)
		}
	}
}

func TestStatuses(t *testing.T) {
	pb := baseCluster + vs("x", `entry_address { fqdn: "x." ipv4: "192.0.2.100/32" status: STANDBY }`, entry443,
		`backend { host { fqdn: "p." ipv4: "198.51.100.1/32" status: PROPOSED } }`,
		`backend { host { fqdn: "f." ipv4: "198.51.100.2/32" status: FAILURE } }`,
		`backend { host { fqdn: "t." ipv4: "198.51.100.3/32" status: TESTING } }`)
	c, err := ParseCluster("c", []byte(pb))
	if err != nil {
		t.Fatal(err)
	}
	v := c.Vservers[0]
	if v.Enabled {
		t.Error("STANDBY entry_address: vserver enabled")
	}
	type st struct{ enabled, inService bool }
	want := []st{{false, false}, {false, true}, {true, true}}
	for i, b := range v.Backends {
		if got := (st{b.Enabled, b.InService}); got != want[i] {
			t.Errorf("backend %s: %+v, want %+v", b.FQDN, got, want[i])
		}
	}
}

func TestWatermarkRaise(t *testing.T) {
	c, err := ParseCluster("c", []byte(baseCluster+vs("x", addrWeb,
		`vserver_entry { protocol: TCP port: 80 server_low_watermark: 0.5 server_high_watermark: 0.25 }`)))
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Vservers[0].Entries[0]; e.LowWatermark != 0.5 || e.HighWatermark != 0.5 {
		t.Errorf("watermarks low=%v high=%v, want 0.5 0.5", e.LowWatermark, e.HighWatermark)
	}
}

func TestClassifyVIP(t *testing.T) {
	c, err := ParseCluster("c", []byte(baseCluster+`dedicated_vip_subnet: "198.51.100.0/24" dedicated_vip_subnet: "2001:db8:d::/48"`))
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultEngine().AnycastRanges
	for addr, want := range map[string]VIPType{
		"192.168.255.1":        AnycastVIP,
		"2015:cafe:ffff::9":    AnycastVIP,
		"198.51.100.7":         DedicatedVIP,
		"2001:db8:d::1":        DedicatedVIP,
		"192.0.2.100":          UnicastVIP,
		"2015:cafe:fffe::1":    UnicastVIP,
		"192.168.254.1":        UnicastVIP,
		"2001:db8:e::1":        UnicastVIP,
		"192.168.255.0":        AnycastVIP,
		"2015:cafe:ffff::ffff": AnycastVIP,
	} {
		if got := c.ClassifyVIP(netip.MustParseAddr(addr), def); got != want {
			t.Errorf("ClassifyVIP(%s) = %v, want %v", addr, got, want)
		}
	}
	// Configurable ranges: anycast wins over dedicated, as in Seesaw.
	custom := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/28")}
	if got := c.ClassifyVIP(netip.MustParseAddr("198.51.100.3"), custom); got != AnycastVIP {
		t.Errorf("custom range: %v, want anycast", got)
	}
	if got := c.ClassifyVIP(netip.MustParseAddr("192.168.255.1"), custom); got != UnicastVIP {
		t.Errorf("default range with custom ranges: %v, want unicast", got)
	}
}

func TestGKEFixture(t *testing.T) {
	r := Check("testdata/gke/seesaw.cfg", "testdata/gke/cluster.pb")
	if err := r.Err(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings: %v", r.Warnings)
	}
	c := r.Cluster
	if got, want := c.Counts(), (Counts{Nodes: 2, Vservers: 4, Entries: 6, Backends: 15, Checks: 6}); got != want {
		t.Errorf("Counts = %+v, want %+v", got, want)
	}
	wantBackends := map[string]int{"admin-control-plane": 4, "admin-ingress-controller": 4, "user-1-control-plane": 4, "user-1-ingress-controller": 3}
	for _, v := range c.Vservers {
		if len(v.Backends) != wantBackends[v.Name] {
			t.Errorf("vserver %s: %d backends, want %d", v.Name, len(v.Backends), wantBackends[v.Name])
		}
		if !v.Enabled || v.Address.Status != configpb.Host_PRODUCTION {
			t.Errorf("vserver %s not enabled (status unset means PRODUCTION)", v.Name)
		}
		for _, e := range v.Entries {
			if e.Mode != configpb.VserverEntry_DSR || e.Scheduler != configpb.VserverEntry_WLC {
				t.Errorf("vserver %s entry %s: mode %v scheduler %v", v.Name, e.Key(), e.Mode, e.Scheduler)
			}
			hc := e.Healthchecks[0]
			if hc.Type != configpb.Healthcheck_HTTP || hc.Port != 10256 || hc.Send != "/healthz" || hc.TLSVerify || hc.Mode != configpb.Healthcheck_PLAIN {
				t.Errorf("vserver %s entry %s check: %+v", v.Name, e.Key(), hc)
			}
		}
	}
	if r.ThisNode == nil || r.ThisNode.FQDN != "node.203.0.113.2." || r.ThisNode.Priority != 255 || !r.ThisNode.HAEnabled {
		t.Errorf("ThisNode = %+v", r.ThisNode)
	}
	if r.Peer == nil || r.Peer.FQDN != "node.203.0.113.3." || r.Peer.Priority != 254 {
		t.Errorf("Peer = %+v", r.Peer)
	}
	if !c.HAEnabled || c.VIP.IPv4 != netip.MustParsePrefix("203.0.113.4/25") {
		t.Errorf("VIP = %+v HAEnabled = %v", c.VIP, c.HAEnabled)
	}
	if got := c.ClassifyVIP(c.Vservers[0].Address.IPv4.Addr(), r.Engine.AnycastRanges); got != UnicastVIP {
		t.Errorf("GKE VIP classified %v", got)
	}
}

func TestSamples(t *testing.T) {
	r := Check("../../deploy/samples/seesaw.cfg", "../../deploy/samples/cluster.pb")
	if err := r.Err(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings: %v", r.Warnings)
	}
	var v6 bool
	for _, v := range r.Cluster.Vservers {
		v6 = v6 || v.Address.IPv6.IsValid()
	}
	if !v6 || r.ThisNode == nil || r.Peer == nil || r.ThisNode.IPv6.Addr() != r.Engine.Node.IPv6 {
		t.Errorf("samples are not a dual-stack pair: this=%+v peer=%+v", r.ThisNode, r.Peer)
	}
}

func TestLoadClusterMissingFile(t *testing.T) {
	_, err := LoadCluster("testdata/does-not-exist.pb")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadCluster: %v, want ErrNotExist", err)
	}
}

func TestFromProto(t *testing.T) {
	c, err := ParseCluster("c", []byte(baseCluster+web()))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := FromProto("server", c.Proto)
	if err != nil || c2.Counts() != c.Counts() {
		t.Errorf("FromProto: %v, counts %+v", err, c2)
	}
	if _, err := FromProto("server", nil); err == nil || !strings.Contains(err.Error(), `server: missing required field "seesaw_vip"`) {
		t.Errorf("FromProto(nil): %v", err)
	}
}
