package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Addrs is a pair of optional addresses, one per family, as seesaw.cfg gives
// them for this node, its peer and the cluster VIP. An unset one is the zero
// netip.Addr.
type Addrs struct {
	IPv4 netip.Addr
	IPv6 netip.Addr
}

// Engine is the engine's view of seesaw.cfg: the keys Seesaw v2 reads, with
// its defaults, plus the settings Seesaw v2 hard-coded, kept here as fields so
// tests and later keys can change them.
type Engine struct {
	// File is the name the config was loaded from.
	File string

	// [cluster]
	ClusterName           string        // name (required): config-server path, CLI prompt
	AnycastEnabled        bool          // anycast_enabled
	Node                  Addrs         // node_ipv4 (required), node_ipv6
	Peer                  Addrs         // peer_ipv4, peer_ipv6
	ClusterVIP            Addrs         // vip_ipv4, vip_ipv6
	UseVMAC               bool          // use_vmac: VRRP MAC on the LB NIC, else GARP only
	GratuitousARPInterval time.Duration // garp_interval_sec
	VRID                  uint8         // vrid, 1..255
	// AdvertInterval is the VRRP advertisement interval while master
	// (advert_interval, milliseconds; Seesaw v2's seesaw_ha flag
	// -master_advert_interval). The backup takes over after about three.
	AdvertInterval time.Duration

	// AnycastRanges decide which VIPs are anycast. Seesaw v2 hard-coded
	// them (its issue #26); here "[cluster] anycast_ranges" can replace them.
	AnycastRanges []netip.Prefix

	// [config_server] primary, secondary, tertiary, in that order.
	ConfigServers []string

	// [interface]
	NodeInterface string // node
	LBInterface   string // lb

	// Always-advertised anycast addresses: Seesaw's monitoring address per
	// family (when it lies inside AnycastRanges) plus [extra_service_anycast].
	ServiceAnycastIPv4 []netip.Addr
	ServiceAnycastIPv6 []netip.Addr

	// [connection_sync]: the kernel's IPVS connection sync between the
	// pair (Seesaw v2 had none).
	ConnSync ConnSync

	// [nat_gateway]: the backends' default gateway for NAT without
	// source NAT, an address with its network's prefix that the master
	// holds on GatewayInterface (the backends' network), as keepalived's
	// LVS-NAT pairs float it with VRRP. Invalid: none.
	NATGateway       struct{ IPv4, IPv6 netip.Prefix }
	GatewayInterface string // [nat_gateway] interface; empty: the LB interface

	// [remote_control] admin, reader: the names (certificate common names
	// or DNS names) that the ECU's remote control (port 10256) lets
	// write, or only read. Not in Seesaw v2, whose remote control denied
	// everyone by default.
	RemoteAdmins  []string
	RemoteReaders []string

	// Hard-coded in Seesaw v2; not read from seesaw.cfg.
	ConfigInterval          time.Duration // how often the config source is polled
	HAStateTimeout          time.Duration // no HA update for this long means state UNKNOWN
	RoutingTableID          uint8         // table for load-balanced traffic
	DummyInterface          string        // holds anycast and dedicated VIPs
	SyncPort                int           // engine-to-engine sync (TCP, node IPv4)
	StatsInterval           time.Duration // IPVS stats poll period
	VRRPDestIP              netip.Addr    // VRRP advertisement destination
	CACertFile              string        // CA for the config server
	ConfigServerPort        int           // config server HTTPS port
	ConfigServerTimeout     time.Duration // per-request config server timeout
	BGPUpdateInterval       time.Duration // BGP neighbour poll period
	MaxPeerConfigSyncErrors int           // peer config failures before falling back to the server

	// keyLines maps "section.key" to the line it was set on, so that checks
	// against cluster.pb can point at the line to fix.
	keyLines map[string]int
}

// ConnSync is how the pair keeps connections through a failover: IPVS's
// sync daemons, master and backup both running on both nodes all the time
// (so a takeover starts nothing), and the settings that make the kernel
// send every connection at once and keep long idle ones alive on the
// backup. The timeouts are set on both nodes alike, since a synced entry
// lives by the backup's.
type ConnSync struct {
	Enabled       bool          // enabled (default true; needs a peer)
	Interface     string        // interface; empty: [interface] node
	SyncID        uint8         // sync_id, 0..255; 0: the VRID
	MaxLength     int           // max_length: sync message size; 0: from the MTU
	SockSize      int           // sock_size: the sync socket's buffer, bytes
	RefreshPeriod time.Duration // refresh_period: resend a connection this often while it is used
	Retries       int           // retries: resends of a refresh, 0..3
	Sloppy        bool          // sloppy: take over mid-stream connections the sync missed
	TCPTimeout    time.Duration // tcp_timeout (ipvsadm --set)
	TCPFinTimeout time.Duration // tcp_fin_timeout
	UDPTimeout    time.Duration // udp_timeout
	// failback: a node of higher priority that comes back takes mastership
	// back (VRRP preemption), but only once its sync has caught up with the
	// master's connections, or catch_up_limit has passed (see
	// engine/failback.go). Default false: Seesaw's rule, mastership stays
	// where it is.
	Failback     bool
	CatchUpLimit time.Duration // catch_up_limit

	// Conntrackd: whether the NCC runs Debian's conntrackd to sync
	// netfilter conntrack, which full NAT's source-NAT bindings live in
	// (IPVS sync does not carry them). Auto: with a full-NAT vserver.
	Conntrackd Switch // conntrackd = auto | true | false
}

// Switch is a setting that is on, off, or decided from the config (auto).
type Switch int

const (
	Auto Switch = iota
	On
	Off
)

func (s Switch) String() string {
	switch s {
	case On:
		return "true"
	case Off:
		return "false"
	}
	return "auto"
}

// Seesaw v2's anycast ranges and monitoring anycast addresses.
var (
	defaultAnycastV4 = netip.MustParsePrefix("192.168.255.0/24")
	defaultAnycastV6 = netip.MustParsePrefix("2015:cafe:ffff::/64")
	testAnycastV4    = netip.MustParseAddr("192.168.255.254")
	testAnycastV6    = netip.MustParseAddr("2015:cafe:ffff::254")
)

// DefaultEngine returns the settings an empty seesaw.cfg gives (apart from the
// required cluster name and node address).
func DefaultEngine() *Engine {
	return &Engine{
		AnycastEnabled:          true,
		UseVMAC:                 true,
		GratuitousARPInterval:   10 * time.Second,
		VRID:                    60,
		AdvertInterval:          500 * time.Millisecond,
		AnycastRanges:           []netip.Prefix{defaultAnycastV4, defaultAnycastV6},
		ConfigServers:           []string{"seesaw-config.example.com"},
		NodeInterface:           "eth0",
		LBInterface:             "eth1",
		ServiceAnycastIPv4:      []netip.Addr{testAnycastV4},
		ServiceAnycastIPv6:      []netip.Addr{testAnycastV6},
		ConfigInterval:          time.Minute,
		HAStateTimeout:          30 * time.Second,
		RoutingTableID:          2,
		DummyInterface:          "dummy0",
		SyncPort:                10258,
		StatsInterval:           15 * time.Second,
		VRRPDestIP:              netip.MustParseAddr("224.0.0.18"),
		CACertFile:              "/etc/seesaw/ssl/ca.crt",
		ConfigServerPort:        10255,
		ConfigServerTimeout:     20 * time.Second,
		BGPUpdateInterval:       15 * time.Second,
		MaxPeerConfigSyncErrors: 3,
		ConnSync: ConnSync{
			Enabled:       true,
			SockSize:      4 << 20,
			RefreshPeriod: 10 * time.Second,
			Retries:       2,
			Sloppy:        true,
			TCPTimeout:    900 * time.Second,
			TCPFinTimeout: 120 * time.Second,
			UDPTimeout:    300 * time.Second,
			CatchUpLimit:  120 * time.Second,
		},
		keyLines: map[string]int{},
	}
}

// VMAC is the VRRP virtual MAC for the engine's VRID, 00:00:5E:00:01:<vrid>
// (RFC 5798). cluster.pb's vmac field is ignored, as in Seesaw v2.
func (e *Engine) VMAC() net.HardwareAddr {
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, e.VRID}
}

// IsAnycast reports whether addr lies in one of the engine's anycast ranges.
func (e *Engine) IsAnycast(addr netip.Addr) bool {
	return inPrefixes(addr, e.AnycastRanges)
}

// KeyLine returns the line of seesaw.cfg that set section.key, or 0.
func (e *Engine) KeyLine(section, key string) int {
	return e.keyLines[section+"."+key]
}

// LoadEngine reads and parses a seesaw.cfg file. See ParseEngine.
func LoadEngine(path string) (*Engine, []Warning, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	return ParseEngine(path, data)
}

// ParseEngine parses seesaw.cfg contents; name is used in messages. Unknown
// sections and keys are warnings, since operators carry old files. Any error
// returns a nil *Engine and an Errors listing every problem.
func ParseEngine(name string, data []byte) (*Engine, []Warning, error) {
	e, warns, errs := parseEngine(name, data)
	if len(errs) > 0 {
		return nil, warns, errs
	}
	return e, warns, nil
}

// parseEngine always returns an Engine, holding the defaults where a value
// was missing or bad, so that CrossCheck can still run on the rest.
func parseEngine(name string, data []byte) (*Engine, []Warning, Errors) {
	e := DefaultEngine()
	e.File = name
	p := &engineParser{file: name, bad: map[string]bool{}}
	sections, errs := parseINI(name, data)
	p.errs = errs

	var servers [3]string
	var extraAnycast []iniEntry
	anycastSet := false
	for _, s := range sections {
		switch s.Name {
		case "":
			for _, ent := range s.Entries {
				p.warn(ent.Line, fmt.Sprintf("key %q is outside any section; ignored", ent.Key))
			}
			continue
		case "cluster", "config_server", "interface", "extra_service_anycast", "connection_sync", "nat_gateway", "remote_control":
		default:
			p.warn(s.Line, fmt.Sprintf("unknown section [%s]; ignored", s.Name))
			continue
		}
		for _, ent := range s.Entries {
			id := s.Name + "." + ent.Key
			if prev, ok := e.keyLines[id]; ok {
				p.warn(ent.Line, fmt.Sprintf("[%s] %s repeats line %d; the last one wins", s.Name, ent.Key, prev))
			}
			e.keyLines[id] = ent.Line
			kv := keyVal{section: s.Name, iniEntry: ent}
			switch id {
			case "cluster.name":
				e.ClusterName = ent.Value
			case "cluster.anycast_enabled":
				p.boolean(kv, &e.AnycastEnabled)
			case "cluster.use_vmac":
				p.boolean(kv, &e.UseVMAC)
			case "cluster.node_ipv4":
				p.addr(kv, 4, &e.Node.IPv4)
			case "cluster.node_ipv6":
				p.addr(kv, 6, &e.Node.IPv6)
			case "cluster.peer_ipv4":
				p.addr(kv, 4, &e.Peer.IPv4)
			case "cluster.peer_ipv6":
				p.addr(kv, 6, &e.Peer.IPv6)
			case "cluster.vip_ipv4":
				p.addr(kv, 4, &e.ClusterVIP.IPv4)
			case "cluster.vip_ipv6":
				p.addr(kv, 6, &e.ClusterVIP.IPv6)
			case "cluster.garp_interval_sec":
				// Seesaw v2 took any integer; a ticker needs a positive period.
				if n, ok := p.integer(kv, 1, 3600); ok {
					e.GratuitousARPInterval = time.Duration(n) * time.Second
				}
			case "cluster.vrid":
				if n, ok := p.integer(kv, 1, 255); ok {
					e.VRID = uint8(n)
				}
			case "cluster.advert_interval":
				// VRRPv3 carries the interval in centiseconds, 12 bits.
				if n, ok := p.integer(kv, 10, 40950); ok {
					if n%10 != 0 {
						p.errorf(kv, fmt.Sprintf("%d ms is not a whole number of centiseconds (VRRPv3 sends the interval in centiseconds)", n))
					} else {
						e.AdvertInterval = time.Duration(n) * time.Millisecond
					}
				}
			case "cluster.anycast_ranges":
				anycastSet = true
				e.AnycastRanges = p.prefixes(kv)
			case "config_server.primary":
				servers[0] = ent.Value
			case "config_server.secondary":
				servers[1] = ent.Value
			case "config_server.tertiary":
				servers[2] = ent.Value
			case "interface.node":
				p.iface(kv, &e.NodeInterface)
			case "interface.lb":
				p.iface(kv, &e.LBInterface)
			case "nat_gateway.ipv4":
				p.hostPrefix(kv, 4, &e.NATGateway.IPv4)
			case "nat_gateway.ipv6":
				p.hostPrefix(kv, 6, &e.NATGateway.IPv6)
			case "nat_gateway.interface":
				p.iface(kv, &e.GatewayInterface)
			case "connection_sync.enabled":
				p.boolean(kv, &e.ConnSync.Enabled)
			case "connection_sync.interface":
				p.iface(kv, &e.ConnSync.Interface)
			case "connection_sync.sync_id":
				if n, ok := p.integer(kv, 0, 255); ok {
					e.ConnSync.SyncID = uint8(n)
				}
			case "connection_sync.max_length":
				// The kernel takes 1500 - 28 at most on a 1500-byte link;
				// a length above the link's MTU fails at start.
				if n, ok := p.integer(kv, 0, 65507); ok {
					e.ConnSync.MaxLength = n
				}
			case "connection_sync.sock_size":
				if n, ok := p.integer(kv, 0, 1<<30); ok {
					e.ConnSync.SockSize = n
				}
			case "connection_sync.refresh_period":
				if n, ok := p.integer(kv, 0, 86400); ok {
					e.ConnSync.RefreshPeriod = time.Duration(n) * time.Second
				}
			case "connection_sync.retries":
				if n, ok := p.integer(kv, 0, 3); ok {
					e.ConnSync.Retries = n
				}
			case "connection_sync.conntrackd":
				if strings.EqualFold(ent.Value, "auto") {
					e.ConnSync.Conntrackd = Auto
					break
				}
				on := false
				p.boolean(kv, &on)
				e.ConnSync.Conntrackd = Off
				if on {
					e.ConnSync.Conntrackd = On
				}
			case "connection_sync.sloppy":
				p.boolean(kv, &e.ConnSync.Sloppy)
			case "connection_sync.tcp_timeout":
				p.seconds(kv, &e.ConnSync.TCPTimeout)
			case "connection_sync.tcp_fin_timeout":
				p.seconds(kv, &e.ConnSync.TCPFinTimeout)
			case "connection_sync.udp_timeout":
				p.seconds(kv, &e.ConnSync.UDPTimeout)
			case "connection_sync.failback":
				p.boolean(kv, &e.ConnSync.Failback)
			case "connection_sync.catch_up_limit":
				p.seconds(kv, &e.ConnSync.CatchUpLimit)
			case "remote_control.admin":
				e.RemoteAdmins = names(ent.Value)
			case "remote_control.reader":
				e.RemoteReaders = names(ent.Value)
			default:
				if s.Name == "extra_service_anycast" {
					extraAnycast = append(extraAnycast, ent)
					continue
				}
				p.warn(ent.Line, fmt.Sprintf("unknown key %q in [%s]; ignored", ent.Key, s.Name))
			}
		}
	}

	if e.ClusterName == "" && !p.bad["cluster.name"] {
		p.errs = append(p.errs, Issue{File: name, Line: e.keyLines["cluster.name"], Msg: "[cluster] name is required"})
	}
	if !e.Node.IPv4.IsValid() && !p.bad["cluster.node_ipv4"] {
		// HA, peer sync and finding this node in cluster.pb all use it.
		p.errs = append(p.errs, Issue{File: name, Line: e.keyLines["cluster.node_ipv4"], Msg: "[cluster] node_ipv4 is required"})
	}
	if e.Node.IPv4.IsValid() && e.Node.IPv4 == e.Peer.IPv4 {
		p.errorf(keyVal{section: "cluster", iniEntry: iniEntry{Key: "peer_ipv4", Line: e.keyLines["cluster.peer_ipv4"]}},
			"is the same as node_ipv4")
	}

	if e.LBInterface == e.NodeInterface && e.UseVMAC {
		// The VIPs share the node's NIC (keepalived's layout): giving it
		// the VRRP MAC would change the node's own MAC on every failover.
		p.errorf(keyVal{section: "cluster", iniEntry: iniEntry{Key: "use_vmac", Line: e.keyLines["cluster.use_vmac"]}},
			fmt.Sprintf("needs an LB NIC of its own: [interface] lb is the node NIC %s (set use_vmac = false, or lb to another NIC)", e.LBInterface))
	}

	var configured []string
	for _, s := range servers {
		if s != "" {
			configured = append(configured, s)
		}
	}
	if len(configured) > 0 {
		e.ConfigServers = configured
	}

	if anycastSet {
		// The monitoring addresses only make sense inside the ranges.
		e.ServiceAnycastIPv4 = keepInside(e.ServiceAnycastIPv4, e.AnycastRanges)
		e.ServiceAnycastIPv6 = keepInside(e.ServiceAnycastIPv6, e.AnycastRanges)
	}
	for _, ent := range extraAnycast {
		kv := keyVal{section: "extra_service_anycast", iniEntry: ent}
		var a netip.Addr
		if !p.addr(kv, 0, &a) {
			continue
		}
		if !e.IsAnycast(a) {
			p.errorf(kv, fmt.Sprintf("%s is not in an anycast range (%s)", a, joinPrefixes(e.AnycastRanges)))
			continue
		}
		if a.Is4() {
			e.ServiceAnycastIPv4 = append(e.ServiceAnycastIPv4, a)
		} else {
			e.ServiceAnycastIPv6 = append(e.ServiceAnycastIPv6, a)
		}
	}
	return e, p.warns, p.errs
}

// keyVal is an entry together with its section, for messages.
type keyVal struct {
	section string
	iniEntry
}

type engineParser struct {
	file  string
	errs  Errors
	warns []Warning
	bad   map[string]bool // "section.key" already reported
}

func (p *engineParser) warn(line int, msg string) {
	p.warns = append(p.warns, Warning{File: p.file, Line: line, Msg: msg})
}

// errorf records "file:line: [section] key: msg".
func (p *engineParser) errorf(kv keyVal, msg string) {
	p.bad[kv.section+"."+kv.Key] = true
	p.errs = append(p.errs, Issue{File: p.file, Line: kv.Line, Msg: fmt.Sprintf("[%s] %s: %s", kv.section, kv.Key, msg)})
}

// boolean accepts what goconf accepted, so old files keep their meaning.
func (p *engineParser) boolean(kv keyVal, dst *bool) {
	switch strings.ToLower(kv.Value) {
	case "1", "t", "true", "y", "yes", "on":
		*dst = true
	case "0", "f", "false", "n", "no", "off":
		*dst = false
	default:
		p.errorf(kv, fmt.Sprintf("%s is not a boolean (want true or false)", quote(kv.Value)))
	}
}

func (p *engineParser) integer(kv keyVal, lo, hi int) (int, bool) {
	n, err := strconv.Atoi(kv.Value)
	if err != nil {
		p.errorf(kv, fmt.Sprintf("%s is not an integer", quote(kv.Value)))
		return 0, false
	}
	if n < lo || n > hi {
		p.errorf(kv, fmt.Sprintf("%d is out of range %d..%d", n, lo, hi))
		return 0, false
	}
	return n, true
}

// seconds parses a timeout in whole seconds, from 1 s to a week.
func (p *engineParser) seconds(kv keyVal, dst *time.Duration) {
	if n, ok := p.integer(kv, 1, 7*86400); ok {
		*dst = time.Duration(n) * time.Second
	}
}

// addr parses an IP address of the given family (4, 6, or 0 for either). An
// empty value leaves dst unset, as in Seesaw v2.
func (p *engineParser) addr(kv keyVal, family int, dst *netip.Addr) bool {
	if kv.Value == "" {
		return false
	}
	a, err := netip.ParseAddr(kv.Value)
	if err != nil || a.Zone() != "" {
		p.errorf(kv, fmt.Sprintf("%s is not an IP address", quote(kv.Value)))
		return false
	}
	a = a.Unmap()
	switch {
	case family == 4 && !a.Is4():
		p.errorf(kv, fmt.Sprintf("%s is not an IPv4 address", a))
		return false
	case family == 6 && !a.Is6():
		p.errorf(kv, fmt.Sprintf("%s is not an IPv6 address", a))
		return false
	}
	*dst = a
	return true
}

// prefixes parses a comma- or space-separated list of CIDRs.
func (p *engineParser) prefixes(kv keyVal) []netip.Prefix {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(kv.Value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		pfx, err := netip.ParsePrefix(f)
		if err != nil {
			p.errorf(kv, fmt.Sprintf("%s is not a CIDR", quote(f)))
			continue
		}
		out = append(out, pfx.Masked())
	}
	return out
}

// hostPrefix parses an address with its network's prefix length
// ("198.51.100.1/24"), of the given family.
func (p *engineParser) hostPrefix(kv keyVal, family int, dst *netip.Prefix) {
	pfx, err := netip.ParsePrefix(kv.Value)
	switch {
	case err != nil || pfx.Addr().Zone() != "":
		p.errorf(kv, fmt.Sprintf("%s is not an address with a prefix length (such as 198.51.100.1/24)", quote(kv.Value)))
	case family == 4 && !pfx.Addr().Is4(), family == 6 && !pfx.Addr().Is6():
		p.errorf(kv, fmt.Sprintf("%s is not an IPv%d address", pfx.Addr(), family))
	case pfx.Addr() == pfx.Masked().Addr() && pfx.Bits() < pfx.Addr().BitLen()-1:
		p.errorf(kv, fmt.Sprintf("%s is its network's own address, not a host's", pfx))
	default:
		*dst = pfx
	}
}

func (p *engineParser) iface(kv keyVal, dst *string) {
	// Linux interface names: at most 15 bytes, no '/', no whitespace.
	if kv.Value == "" || len(kv.Value) > 15 || strings.ContainsAny(kv.Value, "/ \t") {
		p.errorf(kv, fmt.Sprintf("%s is not a valid interface name", quote(kv.Value)))
		return
	}
	*dst = kv.Value
}

func keepInside(addrs []netip.Addr, ranges []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if inPrefixes(a, ranges) {
			out = append(out, a)
		}
	}
	return out
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func quote(s string) string { return strconv.Quote(s) }

// names splits a list of names separated by commas or spaces.
func names(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}
