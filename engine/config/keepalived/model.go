package keepalived

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/seesawlb/seesaw/engine/config"
)

// Unmapped is one statement the import could not carry over, and why.
type Unmapped struct {
	Pos  Pos
	What string // the statement as written, shortened
	Why  string
}

func (u Unmapped) String() string { return fmt.Sprintf("%s: %s: %s", u.Pos, u.What, u.Why) }

// The intermediate model: what one keepalived file says, read but not yet
// mapped. Positions are kept so that every later message can point back.

type vrrpInstance struct {
	pos      Pos
	name     string
	state    string
	statePos Pos
	iface    string
	vrid     int
	vridPos  Pos
	priority int
	prioPos  Pos
	advert   float64
	advPos   Pos
	vips     []vip
	src      netip.Addr
	srcPos   Pos
	peers    []addrAt
	useVMAC  bool
}

type vip struct {
	pos    Pos
	prefix netip.Prefix
	dev    string
}

type addrAt struct {
	pos  Pos
	addr netip.Addr
}

type virtualServer struct {
	pos       Pos
	addr      netip.Addr
	port      int
	protocol  string
	sched     string
	schedPos  Pos
	schedWhat string // the statement as written ("lvs_sched mh")
	method    string
	persist   int
	ops       bool
	inhibit   bool
	defaults  checkDefaults
	reals     []*realServer
	vhost     string
	fwmark    uint32 // a "virtual_server fwmark N": no address or port
	// schedFlags are the scheduler flags set, "fallback" and "port" (sh-,
	// mh-, or flag-1 and flag-2), by statement.
	schedFlags map[string]*Stmt
	stmt       *Stmt
}

// checkDefaults are the settings a virtual server passes to its real
// servers and they to their checkers.
type checkDefaults struct {
	delayLoop      float64
	connectTimeout float64
	retry          int
	retrySet       bool
	// Where the timers were set, for the note when they are rounded.
	delayPos, timeoutPos Pos
}

type realServer struct {
	pos      Pos
	addr     netip.Addr
	port     int
	weight   int
	method   string
	methPos  Pos
	inhibit  bool
	upper    int
	lower    int
	checks   []*checker
	defaults checkDefaults
}

type checker struct {
	pos      Pos
	kind     string // TCP_CHECK, HTTP_GET, ...
	port     int
	path     string
	code     int
	dnsType  string
	dnsName  string
	defaults checkDefaults
}

// file is one keepalived configuration, read.
type file struct {
	routerID string
	email    string
	vrrp     []*vrrpInstance
	vs       []*virtualServer
	unmapped []Unmapped
	// vsUnmapped are the unmapped statements inside virtual servers, kept
	// apart so that a peer's copy of the same servers is not listed twice.
	vsUnmapped []Unmapped
	errs       config.Errors
}

func (f *file) errorf(p Pos, format string, args ...any) {
	f.errs = append(f.errs, config.Issue{File: p.File, Line: p.Line, Msg: fmt.Sprintf(format, args...)})
}

func (f *file) skip(s *Stmt, why string) {
	f.unmapped = append(f.unmapped, Unmapped{Pos: s.Pos, What: what(s), Why: why})
}

func (f *file) skipVS(s *Stmt, why string) {
	f.vsUnmapped = append(f.vsUnmapped, Unmapped{Pos: s.Pos, What: what(s), Why: why})
}

// what renders a statement for the unmapped list: its words, shortened, and
// "{...}" for a block.
func what(s *Stmt) string {
	w := strings.Join(s.Words, " ")
	if len(w) > 60 {
		w = w[:57] + "..."
	}
	if s.HasBlock {
		w += " {...}"
	}
	return w
}

// Reasons shared by several keywords.
const (
	whyScript    = "Seesaw runs no user scripts"
	whyEmail     = "Seesaw sends no mail; alert from its metrics instead"
	whyAuth      = "VRRPv3 has no authentication; Seesaw's peer sync is authenticated by mutual TLS instead"
	whyTrack     = "Seesaw fails over on liveness and on backend health seen by both nodes; no tracking scripts, files or interfaces"
	whyNoEquiv   = "no Seesaw equivalent"
	whyUnknown   = "unknown keyword"
	whySyncByLB  = "Seesaw runs IPVS connection sync itself on both nodes (sync id from the VRID)"
	whyGlobalDef = "global setting with no Seesaw equivalent"
)

// read walks a parsed configuration into the model.
func read(stmts []*Stmt) *file {
	f := &file{}
	for _, s := range stmts {
		switch s.Keyword() {
		case "global_defs":
			f.globalDefs(s)
		case "vrrp_instance":
			f.vrrpInstance(s)
		case "virtual_server":
			f.virtualServer(s)
		case "vrrp_script":
			f.skip(s, "health scripts that move VRRP priority; "+whyTrack)
		case "vrrp_sync_group":
			f.skip(s, "Seesaw runs one VRRP router per pair, so its VIPs always move together")
		case "virtual_server_group":
			f.skip(s, "write one virtual_server per address and port (or a Seesaw vserver with several entries)")
		case "track_file", "track_process", "vrrp_track_file", "vrrp_track_process":
			f.skip(s, whyTrack)
		case "static_ipaddress", "static_routes", "static_rules", "static_track_group":
			f.skip(s, "Seesaw does not manage static addresses or routes; configure them in the OS")
		case "linkbeat_interfaces":
			f.skip(s, whyTrack)
		case "bfd_instance":
			f.skip(s, whyNoEquiv)
		case "vrrp_garp_interval_delay", "garp_group":
			f.skip(s, "Seesaw sends gratuitous ARP every garp_interval_sec (seesaw.cfg)")
		case "SSL":
			f.skip(s, "SSL_GET client settings; Seesaw's HTTPS checks use the system's TLS client")
		default:
			f.skip(s, whyUnknown)
		}
	}
	return f
}

func (f *file) globalDefs(s *Stmt) {
	for _, g := range s.Block {
		switch g.Keyword() {
		case "router_id":
			if len(g.Args()) != 1 {
				f.errorf(g.Pos, "router_id needs one name")
				continue
			}
			f.routerID = g.Args()[0]
		case "notification_email":
			for _, e := range g.Block {
				if f.email == "" {
					f.email = e.Keyword()
				}
			}
			f.skip(g, whyEmail+" (the first address is the vservers' rp)")
		case "notification_email_from", "smtp_server", "smtp_connect_timeout", "smtp_helo_name", "smtp_alert",
			"smtp_alert_vrrp", "smtp_alert_checker":
			f.skip(g, whyEmail)
		case "lvs_sync_daemon":
			f.skip(g, whySyncByLB)
		case "enable_script_security", "script_user", "notify_fifo", "notify_fifo_script", "vrrp_notify_fifo",
			"vrrp_notify_fifo_script", "lvs_notify_fifo", "lvs_notify_fifo_script":
			f.skip(g, whyScript)
		default:
			f.skip(g, whyGlobalDef)
		}
	}
}

func (f *file) vrrpInstance(s *Stmt) {
	in := &vrrpInstance{pos: s.Pos, priority: 100, advert: 1}
	if len(s.Args()) > 0 {
		in.name = s.Args()[0]
	}
	if !s.HasBlock {
		f.errorf(s.Pos, "vrrp_instance needs a { } block")
		return
	}
	for _, v := range s.Block {
		args := v.Args()
		switch v.Keyword() {
		case "state":
			if len(args) != 1 || (args[0] != "MASTER" && args[0] != "BACKUP") {
				f.errorf(v.Pos, "state must be MASTER or BACKUP")
				continue
			}
			in.state, in.statePos = args[0], v.Pos
		case "interface":
			if len(args) != 1 {
				f.errorf(v.Pos, "interface needs one name")
				continue
			}
			in.iface = args[0]
		case "virtual_router_id":
			n, ok := f.intArg(v, 1, 255)
			if ok {
				in.vrid, in.vridPos = n, v.Pos
			}
		case "priority":
			n, ok := f.intArg(v, 1, 255)
			if ok {
				in.priority, in.prioPos = n, v.Pos
			}
		case "advert_int":
			t, ok := f.timerArg(v)
			if ok {
				in.advert, in.advPos = t, v.Pos
			}
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			for _, a := range v.Block {
				f.vip(in, a)
			}
		case "unicast_src_ip", "mcast_src_ip":
			if a, ok := f.addrArg(v); ok {
				in.src, in.srcPos = a, v.Pos
			}
		case "unicast_peer":
			for _, p := range v.Block {
				a, err := netip.ParseAddr(p.Keyword())
				if err != nil {
					f.errorf(p.Pos, "unicast_peer: %q is not an IP address", p.Keyword())
					continue
				}
				in.peers = append(in.peers, addrAt{pos: p.Pos, addr: a.Unmap()})
				if len(p.Args()) > 0 {
					f.skip(p, "per-peer options; Seesaw's peer is just an address")
				}
			}
		case "use_vmac":
			in.useVMAC = true
			if len(args) > 0 {
				f.skip(v, "Seesaw names its VMAC interface itself and uses 00:00:5E:00:01:<vrid>; use_vmac = true kept")
			}
		case "authentication":
			f.skip(v, whyAuth)
		case "track_script", "track_interface", "track_file", "track_process", "track_bfd", "dont_track_primary":
			f.skip(v, whyTrack)
		case "notify", "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify_deleted",
			"notify_master_rx_lower_pri":
			f.skip(v, whyScript)
		case "smtp_alert":
			f.skip(v, whyEmail)
		case "nopreempt", "preempt_delay":
			f.skip(v, "not mapped: when a node that comes back takes mastership again is the engine's to decide (README: The pair)")
		case "lvs_sync_daemon_interface":
			f.skip(v, whySyncByLB)
		case "garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat",
			"garp_lower_prio_delay", "garp_lower_prio_repeat", "garp_interval", "gna_interval":
			f.skip(v, "Seesaw sends gratuitous ARP every garp_interval_sec (seesaw.cfg)")
		case "version":
			if len(args) != 1 || args[0] != "3" {
				f.skip(v, "Seesaw speaks VRRPv3 only")
			}
		default:
			f.skip(v, whyNoEquiv)
		}
	}
	f.vrrp = append(f.vrrp, in)
}

// vip reads one virtual_ipaddress line: "ADDR[/LEN] [dev IF] [...]".
func (f *file) vip(in *vrrpInstance, s *Stmt) {
	w := s.Words
	p, err := netip.ParsePrefix(w[0])
	if err != nil {
		a, aerr := netip.ParseAddr(w[0])
		if aerr != nil || a.Zone() != "" {
			f.errorf(s.Pos, "virtual_ipaddress: %q is not an IP address", w[0])
			return
		}
		a = a.Unmap()
		p = netip.PrefixFrom(a, a.BitLen())
	}
	v := vip{pos: s.Pos, prefix: p}
	var extra []string
	for i := 1; i < len(w); i++ {
		switch w[i] {
		case "dev":
			if i+1 < len(w) {
				v.dev = w[i+1]
				i++
			}
		case "brd", "scope", "label":
			if i+1 < len(w) {
				i++
			}
		default:
			extra = append(extra, w[i])
		}
	}
	if len(extra) > 0 {
		f.skip(s, fmt.Sprintf("address options %q; Seesaw brings its VIPs up plainly", strings.Join(extra, " ")))
	}
	in.vips = append(in.vips, v)
}

func (f *file) virtualServer(s *Stmt) {
	args := s.Args()
	if len(args) >= 1 && args[0] == "group" {
		f.skip(s, "a group virtual server's addresses and ports are in its virtual_server_group; "+
			"write one virtual_server per address and port")
		return
	}
	// keepalived's defaults: wlc, NAT and (with a warning, since IPVS
	// takes protocol 0 as UDP) UDP.
	vs := &virtualServer{pos: s.Pos, stmt: s, protocol: "", sched: "wlc", method: "NAT",
		defaults: checkDefaults{delayLoop: 60, connectTimeout: 5, retry: 1}}
	switch {
	case len(args) >= 1 && args[0] == "fwmark":
		if len(args) != 2 {
			f.errorf(s.Pos, "virtual_server fwmark needs one mark")
			return
		}
		n, err := strconv.ParseUint(args[1], 0, 32)
		if err != nil || n == 0 {
			f.errorf(s.Pos, "virtual_server fwmark: %q is not a firewall mark (1-4294967295)", args[1])
			return
		}
		vs.fwmark = uint32(n)
		vs.protocol = "-" // the marked packets say
	case len(args) < 1 || len(args) > 2:
		f.errorf(s.Pos, "virtual_server needs an address and a port, fwmark N, or group NAME")
		return
	default:
		a, err := netip.ParseAddr(args[0])
		if err != nil || a.Zone() != "" {
			f.errorf(s.Pos, "virtual_server: %q is not an IP address", args[0])
			return
		}
		vs.addr = a.Unmap()
		if len(args) == 2 {
			n, ok := portNum(args[1])
			if !ok {
				f.errorf(s.Pos, "virtual_server: %q is not a port (1-65535)", args[1])
				return
			}
			vs.port = n
		}
	}
	if !s.HasBlock {
		f.errorf(s.Pos, "virtual_server needs a { } block")
		return
	}
	// Defaults first, whatever their order: real servers inherit them.
	for _, v := range s.Block {
		switch v.Keyword() {
		case "delay_loop", "connect_timeout", "retry", "nb_get_retry":
			f.checkDefault(&vs.defaults, v)
		}
	}
	for _, v := range s.Block {
		args := v.Args()
		switch v.Keyword() {
		case "delay_loop", "connect_timeout", "retry", "nb_get_retry":
		case "lb_algo", "lvs_sched":
			if len(args) != 1 {
				f.errorf(v.Pos, "%s needs one scheduler name", v.Keyword())
				continue
			}
			vs.sched, vs.schedPos, vs.schedWhat = args[0], v.Pos, what(v)
		case "lb_kind", "lvs_method":
			if len(args) < 1 {
				f.errorf(v.Pos, "%s needs NAT, DR or TUN", v.Keyword())
				continue
			}
			m, ok := f.method(v)
			if ok {
				vs.method = m
			}
		case "protocol":
			if len(args) != 1 || (args[0] != "TCP" && args[0] != "UDP" && args[0] != "SCTP") {
				f.errorf(v.Pos, "protocol must be TCP, UDP or SCTP")
				continue
			}
			if vs.fwmark != 0 {
				f.skipVS(v, "a firewall-mark service has no protocol of its own; --fwmark gives the entries' protocols")
				continue
			}
			vs.protocol = args[0]
		case "persistence_timeout":
			vs.persist = 360 // keepalived's default when no value is given
			if len(args) > 0 {
				n, ok := f.intArg(v, 0, math.MaxInt32)
				if !ok {
					continue
				}
				vs.persist = n
			}
		case "ops":
			vs.ops = true
		case "inhibit_on_failure":
			vs.inhibit = boolArg(args)
		case "real_server":
			if rs := f.realServer(vs, v); rs != nil {
				vs.reals = append(vs.reals, rs)
			}
		case "virtualhost":
			f.skipVS(v, "Seesaw's HTTP checks send no Host header of their choosing")
		case "sorry_server", "sorry_server_inhibit", "sorry_server_lvs_method":
			f.skipVS(v, "Seesaw has no sorry server; its watermarks take an entry down instead")
		case "quorum", "hysteresis":
			f.skipVS(v, "quorum is a weight sum; Seesaw uses server_low_watermark and server_high_watermark (fractions of healthy backends)")
		case "quorum_up", "quorum_down":
			f.skipVS(v, whyScript)
		case "smtp_alert":
			f.skipVS(v, whyEmail)
		case "persistence_granularity", "persistence_engine":
			f.skipVS(v, "Seesaw's persistence is per client address")
		case "alpha", "omega", "ha_suspend", "warmup", "delay_before_retry":
			f.skipVS(v, "Seesaw's checks start unhealthy, run every interval and retry at the interval")
		case "flag-1", "sh-fallback", "mh-fallback":
			vs.flag("fallback", v)
		case "flag-2", "sh-port", "mh-port":
			vs.flag("port", v)
		case "flag-3":
			f.skipVS(v, whyNoEquiv)
		default:
			f.skipVS(v, whyNoEquiv)
		}
	}
	if vs.protocol == "" {
		vs.protocol = "UDP"
		f.skipVS(s, "no protocol: keepalived (and IPVS) take UDP, so UDP was imported; add \"protocol TCP\" if TCP was meant")
	}
	f.vs = append(f.vs, vs)
}

func (vs *virtualServer) flag(name string, s *Stmt) {
	if vs.schedFlags == nil {
		vs.schedFlags = map[string]*Stmt{}
	}
	vs.schedFlags[name] = s
}

func (f *file) method(v *Stmt) (string, bool) {
	args := v.Args()
	switch args[0] {
	case "NAT", "DR", "TUN":
	default:
		f.errorf(v.Pos, "%s %q: want NAT, DR or TUN", v.Keyword(), args[0])
		return "", false
	}
	if len(args) > 1 {
		f.skipVS(v, "Seesaw's TUN is IP-in-IP without options")
	}
	return args[0], true
}

func (f *file) checkDefault(d *checkDefaults, v *Stmt) {
	switch v.Keyword() {
	case "delay_loop":
		if t, ok := f.timerArg(v); ok {
			d.delayLoop, d.delayPos = t, v.Pos
		}
	case "connect_timeout":
		if t, ok := f.timerArg(v); ok {
			d.connectTimeout, d.timeoutPos = t, v.Pos
		}
	case "retry", "nb_get_retry":
		if n, ok := f.intArg(v, 0, math.MaxInt32); ok {
			d.retry, d.retrySet = n, true
		}
	}
}

func (f *file) realServer(vs *virtualServer, s *Stmt) *realServer {
	args := s.Args()
	if len(args) < 1 || len(args) > 2 {
		f.errorf(s.Pos, "real_server needs an address and optionally a port")
		return nil
	}
	a, err := netip.ParseAddr(args[0])
	if err != nil || a.Zone() != "" {
		f.errorf(s.Pos, "real_server: %q is not an IP address", args[0])
		return nil
	}
	rs := &realServer{pos: s.Pos, addr: a.Unmap(), port: vs.port, weight: 1, method: vs.method, inhibit: vs.inhibit, defaults: vs.defaults}
	if len(args) == 2 {
		n, ok := portNum(args[1])
		if !ok {
			f.errorf(s.Pos, "real_server: %q is not a port (1-65535)", args[1])
			return nil
		}
		if vs.fwmark != 0 {
			f.skipVS(s, "the port of a firewall-mark service's real server; Seesaw's keep the client's destination port")
		} else {
			rs.port = n
		}
	}
	for _, v := range s.Block {
		switch v.Keyword() {
		case "delay_loop", "connect_timeout", "retry", "nb_get_retry":
			f.checkDefault(&rs.defaults, v)
		}
	}
	for _, v := range s.Block {
		args := v.Args()
		switch v.Keyword() {
		case "delay_loop", "connect_timeout", "retry", "nb_get_retry":
		case "weight":
			if n, ok := f.intArg(v, 0, 65535); ok {
				rs.weight = n
			}
		case "lb_kind", "lvs_method":
			if len(args) < 1 {
				f.errorf(v.Pos, "%s needs NAT, DR or TUN", v.Keyword())
				continue
			}
			if m, ok := f.method(v); ok {
				rs.method, rs.methPos = m, v.Pos
			}
		case "inhibit_on_failure":
			rs.inhibit = boolArg(args)
		case "uthreshold":
			if n, ok := f.intArg(v, 0, math.MaxInt32); ok {
				rs.upper = n
			}
		case "lthreshold":
			if n, ok := f.intArg(v, 0, math.MaxInt32); ok {
				rs.lower = n
			}
		case "TCP_CHECK", "HTTP_GET", "SSL_GET", "DNS_CHECK", "UDP_CHECK", "PING_CHECK":
			if c := f.checker(rs, v); c != nil {
				rs.checks = append(rs.checks, c)
			}
		case "MISC_CHECK":
			f.skipVS(v, "a check that runs a script; Seesaw runs no user scripts (use a TCP, HTTP or DNS check)")
		case "SMTP_CHECK", "BFD_CHECK", "FILE_CHECK":
			f.skipVS(v, "no Seesaw check of this kind")
		case "notify_up", "notify_down":
			f.skipVS(v, whyScript)
		case "smtp_alert":
			f.skipVS(v, whyEmail)
		case "virtualhost":
			f.skipVS(v, "Seesaw's HTTP checks send no Host header of their choosing")
		case "alpha", "warmup", "delay_before_retry":
			f.skipVS(v, "Seesaw's checks start unhealthy, run every interval and retry at the interval")
		default:
			f.skipVS(v, whyNoEquiv)
		}
	}
	return rs
}

func (f *file) checker(rs *realServer, s *Stmt) *checker {
	c := &checker{pos: s.Pos, kind: s.Keyword(), defaults: rs.defaults}
	if !c.defaults.retrySet && c.kind == "DNS_CHECK" {
		c.defaults.retry = 3 // keepalived's DNS_CHECK default
	}
	for _, v := range s.Block {
		args := v.Args()
		switch v.Keyword() {
		case "delay_loop", "connect_timeout", "retry", "nb_get_retry":
			f.checkDefault(&c.defaults, v)
		case "connect_port":
			n, ok := portNum(strings.Join(args, " "))
			if !ok {
				f.errorf(v.Pos, "connect_port: %q is not a port (1-65535)", strings.Join(args, " "))
				continue
			}
			c.port = n
		case "url":
			if c.kind != "HTTP_GET" && c.kind != "SSL_GET" {
				f.skipVS(v, "url is for HTTP_GET and SSL_GET")
				continue
			}
			if c.path != "" || c.code != 0 {
				f.skipVS(v, "Seesaw checks one URL per check; the first url block was used")
				continue
			}
			f.url(c, v)
		case "type":
			if c.kind == "DNS_CHECK" && len(args) == 1 {
				c.dnsType = strings.ToUpper(args[0])
				continue
			}
			f.skipVS(v, whyNoEquiv)
		case "name":
			if c.kind == "DNS_CHECK" && len(args) == 1 {
				c.dnsName = args[0]
				continue
			}
			f.skipVS(v, whyNoEquiv)
		case "connect_ip", "bindto", "bind_if", "bind_port", "fwmark":
			f.skipVS(v, "Seesaw's checks connect from the node to the backend's own address")
		case "warmup", "delay_before_retry", "alpha":
			f.skipVS(v, "Seesaw's checks start unhealthy, run every interval and retry at the interval")
		case "virtualhost", "http_protocol", "fast_recovery", "enable_sni", "sni_name", "tls_compliant", "log_all_failures":
			f.skipVS(v, whyNoEquiv)
		case "payload", "require_reply", "min_reply_length", "max_reply_length":
			f.skipVS(v, "Seesaw's UDP check sends no chosen payload here; set send and receive by hand")
		default:
			f.skipVS(v, whyNoEquiv)
		}
	}
	return c
}

func (f *file) url(c *checker, s *Stmt) {
	for _, v := range s.Block {
		args := v.Args()
		switch v.Keyword() {
		case "path":
			if len(args) != 1 {
				f.errorf(v.Pos, "path needs one value")
				continue
			}
			c.path = args[0]
		case "status_code":
			if len(args) == 1 {
				if n, err := strconv.Atoi(args[0]); err == nil && n >= 100 && n <= 599 {
					c.code = n
					continue
				}
			}
			f.skipVS(v, "Seesaw expects one status code; ranges and lists were not kept (200 is expected)")
		case "digest", "regex", "regex_no_match", "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset":
			f.skipVS(v, "Seesaw's HTTP check matches a body prefix (receive), not a digest or regex")
		default:
			f.skipVS(v, whyNoEquiv)
		}
	}
}

func (f *file) intArg(s *Stmt, lo, hi int) (int, bool) {
	args := s.Args()
	if len(args) != 1 {
		f.errorf(s.Pos, "%s needs one number", s.Keyword())
		return 0, false
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < lo || n > hi {
		f.errorf(s.Pos, "%s %q: want a number in %d..%d", s.Keyword(), args[0], lo, hi)
		return 0, false
	}
	return n, true
}

// timerArg reads a <TIMER>: seconds, fractions allowed.
func (f *file) timerArg(s *Stmt) (float64, bool) {
	args := s.Args()
	if len(args) != 1 {
		f.errorf(s.Pos, "%s needs one time in seconds", s.Keyword())
		return 0, false
	}
	t, err := strconv.ParseFloat(args[0], 64)
	if err != nil || math.IsNaN(t) || t < 0 || t > 1e6 {
		f.errorf(s.Pos, "%s %q: want seconds (e.g. 3 or 0.5)", s.Keyword(), args[0])
		return 0, false
	}
	return t, true
}

func (f *file) addrArg(s *Stmt) (netip.Addr, bool) {
	args := s.Args()
	if len(args) < 1 {
		f.errorf(s.Pos, "%s needs an IP address", s.Keyword())
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(args[0])
	if err != nil || a.Zone() != "" {
		f.errorf(s.Pos, "%s: %q is not an IP address", s.Keyword(), args[0])
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func portNum(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 1 && n <= 65535
}

// boolArg: a bare flag is true; otherwise keepalived's <BOOL>.
func boolArg(args []string) bool {
	if len(args) == 0 {
		return true
	}
	switch strings.ToLower(args[0]) {
	case "off", "false", "no":
		return false
	}
	return true
}
