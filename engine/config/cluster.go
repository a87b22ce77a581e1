package config

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	configpb "github.com/seesawlb/seesaw/proto/config"
	"google.golang.org/protobuf/encoding/prototext"
)

// Host is a configpb.Host with parsed addresses. IPv4 and IPv6 keep the
// prefix length written in cluster.pb (Seesaw v2 keeps the mask: it is the
// subnet a node or VLAN address lives in); an unset one is the zero Prefix.
type Host struct {
	FQDN   string
	IPv4   netip.Prefix
	IPv6   netip.Prefix
	Status configpb.Host_Status
}

// Addrs returns the host's set addresses, IPv4 first.
func (h Host) Addrs() []netip.Addr {
	var out []netip.Addr
	if h.IPv4.IsValid() {
		out = append(out, h.IPv4.Addr())
	}
	if h.IPv6.IsValid() {
		out = append(out, h.IPv6.Addr())
	}
	return out
}

// HasAddr reports whether a is one of the host's addresses.
func (h Host) HasAddr(a netip.Addr) bool {
	return a.IsValid() && (h.IPv4.IsValid() && h.IPv4.Addr() == a || h.IPv6.IsValid() && h.IPv6.Addr() == a)
}

// servingStatus is what makes a node, vserver or backend active in Seesaw v2.
func servingStatus(s configpb.Host_Status) bool {
	return s == configpb.Host_PRODUCTION || s == configpb.Host_TESTING
}

// Node is a Seesaw node with what Seesaw v2 derives from the statuses.
type Node struct {
	Host
	// Priority is the VRRP priority: 255 for the lowest IPv4 address, then
	// len(nodes)-i for the i-th (0-based) in ascending IPv4 order.
	Priority uint8
	// HAEnabled: the cluster VIP's status allows HA and equals the node's.
	HAEnabled bool
	// AnycastEnabled and VserversEnabled: status PRODUCTION or TESTING.
	AnycastEnabled  bool
	VserversEnabled bool
	// BGPEnabled: status PRODUCTION, TESTING or BUILDING.
	BGPEnabled bool
}

// VLAN is an extra VLAN on the LB interface with this node's address on it.
type VLAN struct {
	ID   uint16
	Host Host
}

// Vserver is one load-balanced service: a VIP, its ports and its backends.
type Vserver struct {
	Name    string
	Address Host // entry_address: the VIP
	// Enabled is the config state: entry_address status PRODUCTION or TESTING.
	Enabled bool
	UseFWM  bool
	Entries []*Entry
	// Healthchecks are the vserver-level checks, run against every backend.
	Healthchecks []*Healthcheck
	Backends     []*Backend
	Warnings     []string
	Proto        *configpb.Vserver
}

// CheckCount is the number of checks configured on the vserver and its
// entries (before expansion per backend).
func (v *Vserver) CheckCount() int {
	n := len(v.Healthchecks)
	for _, e := range v.Entries {
		n += len(e.Healthchecks)
	}
	return n
}

// Entry is one protocol/port of a vserver and its IPVS service settings.
type Entry struct {
	Protocol    configpb.Protocol
	Port        uint16
	Scheduler   configpb.VserverEntry_Scheduler
	Mode        configpb.VserverEntry_Mode
	Persistence int // seconds; 0 is off
	OnePacket   bool
	Quiescent   bool
	// SourceNAT: with mode NAT, the client's address is rewritten to the
	// cluster VIP (Seesaw's full NAT, the default); false is NAT without
	// source NAT, where backends route replies through the cluster VIP.
	SourceNAT bool
	// Watermarks as Seesaw v2 reads them: the high one is raised to the low
	// one when below it.
	LowWatermark  float32
	HighWatermark float32
	LThreshold    int
	UThreshold    int
	Healthchecks  []*Healthcheck
}

// Key is "PROTO/port", e.g. "TCP/443".
func (e *Entry) Key() string { return fmt.Sprintf("%s/%d", e.Protocol, e.Port) }

// Backend is a real server of a vserver.
type Backend struct {
	Host
	Weight int32
	// Enabled: status PRODUCTION or TESTING.
	Enabled bool
	// InService: counted in the watermark denominator (not PROPOSED or
	// BUILDING), so disabled backends still count against watermarks.
	InService bool
}

// Healthcheck is one configured check. Port is resolved: an entry-level check
// without a port checks its entry's port.
type Healthcheck struct {
	Type      configpb.Healthcheck_Type
	Mode      configpb.Healthcheck_Mode
	Port      uint16
	Interval  time.Duration
	Timeout   time.Duration
	Retries   int
	Send      string
	Receive   string
	Code      int
	Method    string
	Proxy     bool
	TLSVerify bool
}

// Cluster is a validated cluster.pb.
type Cluster struct {
	// File is the name the config was loaded from.
	File  string
	Proto *configpb.Cluster

	VIP Host // seesaw_vip
	// HAEnabled: the cluster VIP's status is PRODUCTION, TESTING or BUILDING.
	HAEnabled bool
	// Nodes in descending priority (ascending IPv4 address).
	Nodes               []*Node
	Vservers            []*Vserver
	VLANs               []*VLAN
	DedicatedVIPSubnets []netip.Prefix
	BGPPeers            []Host
	BGPLocalASN         uint32
	BGPRemoteASN        uint32
	// LastUpdated is metadata.last_updated; zero without metadata.
	LastUpdated time.Time
	// StatusWarnings are misconfigured_vserver entries, "name: message",
	// what Seesaw v2 shows in "show warnings".
	StatusWarnings []string
	// Warnings are validation findings that did not fail the load.
	Warnings []Warning
}

// NodeByAddr returns the node with address a, or nil.
func (c *Cluster) NodeByAddr(a netip.Addr) *Node {
	for _, n := range c.Nodes {
		if n.HasAddr(a) {
			return n
		}
	}
	return nil
}

// VIPType says where a VIP is placed.
type VIPType int

const (
	// UnicastVIP lives on the LB interface and moves with VRRP.
	UnicastVIP VIPType = iota
	// AnycastVIP lives on the dummy interface and is advertised over BGP.
	AnycastVIP
	// DedicatedVIP is inside a dedicated_vip_subnet and lives on the dummy
	// interface.
	DedicatedVIP
)

func (t VIPType) String() string {
	switch t {
	case UnicastVIP:
		return "unicast"
	case AnycastVIP:
		return "anycast"
	case DedicatedVIP:
		return "dedicated"
	}
	return "VIPType(" + strconv.Itoa(int(t)) + ")"
}

// ClassifyVIP classifies addr as Seesaw v2 does: anycast if inside one of
// anycast (normally Engine.AnycastRanges), else dedicated if inside one of
// the cluster's dedicated_vip_subnets, else unicast.
func (c *Cluster) ClassifyVIP(addr netip.Addr, anycast []netip.Prefix) VIPType {
	switch {
	case inPrefixes(addr, anycast):
		return AnycastVIP
	case inPrefixes(addr, c.DedicatedVIPSubnets):
		return DedicatedVIP
	}
	return UnicastVIP
}

// Counts are totals over a cluster, for summaries.
type Counts struct {
	Nodes, Vservers, Entries, Backends, Checks int
}

// Counts totals the cluster's objects.
func (c *Cluster) Counts() Counts {
	n := Counts{Nodes: len(c.Nodes), Vservers: len(c.Vservers)}
	for _, v := range c.Vservers {
		n.Entries += len(v.Entries)
		n.Backends += len(v.Backends)
		n.Checks += v.CheckCount()
	}
	return n
}

// LoadCluster reads and parses a cluster.pb file. See ParseCluster.
func LoadCluster(path string) (*Cluster, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCluster(path, data)
}

// ParseCluster parses and validates cluster.pb contents (protobuf text, with
// "<>" or "{}" for messages); name is used in messages. A syntax error is
// reported as "name:line:col: ..."; otherwise every validation error is
// returned in an Errors, each naming the offending object. Warnings are in
// the returned Cluster's Warnings.
func ParseCluster(name string, data []byte) (*Cluster, error) {
	c, errs := parseCluster(name, data)
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// FromProto validates an already decoded cluster config (for example one
// received in binary from a config server or the peer). name is used in
// messages.
func FromProto(name string, pb *configpb.Cluster) (*Cluster, error) {
	if pb == nil {
		pb = &configpb.Cluster{}
	}
	c, errs := buildCluster(name, pb)
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// parseCluster returns the cluster even when validation failed (nil only on
// a syntax error), so CrossCheck can still report against it.
func parseCluster(name string, data []byte) (*Cluster, Errors) {
	pb := &configpb.Cluster{}
	// AllowPartial: missing required fields are reported by buildCluster
	// with the path of the object they are missing from.
	if err := (prototext.UnmarshalOptions{AllowPartial: true}).Unmarshal(data, pb); err != nil {
		iss := textIssue(name, err)
		if iss.Line == 0 && strings.Contains(iss.Msg, "unexpected EOF") {
			if l, c, b, ok := unclosed(data); ok {
				iss = Issue{File: name, Line: l, Col: c, Msg: fmt.Sprintf("syntax error: %q is never closed (unexpected end of file)", string(b))}
			}
		}
		return nil, Errors{iss}
	}
	return buildCluster(name, pb)
}

var textPosRE = regexp.MustCompile(`^(.*?)\(line (\d+):(\d+)\):\s*(.*)$`)

// textIssue turns a prototext error, "proto: [syntax error ](line L:C): msg",
// into "name:L:C: [syntax error: ]msg". The "proto:" prefix is written with
// either a space or a no-break space (the protobuf module randomises it), so
// it is matched loosely.
func textIssue(name string, err error) Issue {
	msg := err.Error()
	m := textPosRE.FindStringSubmatch(msg)
	if m == nil {
		return Issue{File: name, Msg: stripProtoPrefix(msg)}
	}
	line, _ := strconv.Atoi(m[2])
	col, _ := strconv.Atoi(m[3])
	detail := stripProtoPrefix(m[4])
	if strings.Contains(m[1], "syntax error") {
		detail = "syntax error: " + detail
	}
	return Issue{File: name, Line: line, Col: col, Msg: detail}
}

func stripProtoPrefix(s string) string {
	for {
		t := strings.TrimLeft(s, " \u00a0")
		if !strings.HasPrefix(t, "proto:") {
			return t
		}
		s = t[len("proto:"):]
	}
}

func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return data, nil
}

// unclosed finds the innermost '<' or '{' of a protobuf text document that is
// never closed, so that "unexpected EOF" (which prototext reports without a
// position) can point at the message that lacks its end. It skips strings and
// comments; ok is false when every bracket is closed.
func unclosed(data []byte) (line, col int, open byte, ok bool) {
	type pos struct {
		line, col int
		b         byte
	}
	var stack []pos
	line, col = 1, 1
	var quote byte // inside a string when non-zero
	comment, escaped := false, false
	for _, r := range string(data) {
		c := byte(0)
		if r < 0x80 {
			c = byte(r)
		}
		switch {
		case comment:
			comment = c != '\n'
		case quote != 0:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == quote || c == '\n':
				quote = 0
			}
		case c == '#':
			comment = true
		case c == '"' || c == '\'':
			quote = c
		case c == '<' || c == '{':
			stack = append(stack, pos{line, col, c})
		case (c == '>' || c == '}') && len(stack) > 0:
			stack = stack[:len(stack)-1]
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	if len(stack) == 0 {
		return 0, 0, 0, false
	}
	p := stack[len(stack)-1]
	return p.line, p.col, p.b, true
}
