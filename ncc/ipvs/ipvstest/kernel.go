// Package ipvstest is a fake of the kernel's IPVS at the generic netlink
// wire: a Kernel answers the requests an ipvs.Client sends, with the kernel's
// semantics (errno for errno) and reply encoding, keeps the table in memory,
// counts writes, and renders its state as text in `ipvsadm -Sn` form. Tests
// of code that programs IPVS use it where the real kernel has no IPVS, and
// the lab runs the same sequences against the real one.
//
// It decodes requests with its own code, written from
// net/netfilter/ipvs/ip_vs_ctl.c, not with the client's, so that the two
// check each other.
package ipvstest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"

	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/ipvs/internal/uapi"
)

// FamilyID is the generic netlink family id the fake answers under.
const FamilyID = 0x2a

// Schedulers are the schedulers the fake kernel knows (a kernel with every
// ip_vs scheduler module).
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

type service struct {
	svc   ipvs.Service // Flags as the kernel holds them: with HASHED
	dests []ipvs.Destination
	stats ipvs.Stats
}

// Kernel is a fake IPVS. The zero value is not usable; call New.
type Kernel struct {
	mu       sync.Mutex
	services []*service // in creation order, as a hash table's order is arbitrary
	byKey    map[ipvs.ServiceKey]*service
	daemons  map[ipvs.SyncState]ipvs.SyncDaemon
	timeouts ipvs.Timeouts
	writes   int
	requests int
	sends    int // sendmsg calls on Client sockets
	// interrupt is how many of the next dumps are marked interrupted.
	interrupt int
	// fail makes the next matching request fail with an errno.
	fail func(cmd uint8) syscall.Errno
}

// New returns an empty fake kernel with the default timeouts.
func New() *Kernel {
	return &Kernel{byKey: map[ipvs.ServiceKey]*service{}, daemons: map[ipvs.SyncState]ipvs.SyncDaemon{}, timeouts: ipvs.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}}
}

// Client returns an ipvs.Client talking to this kernel over sockets that
// behave like the kernel's: requests sent together are answered one
// datagram at a time, so the client's batches work as on Linux; and there
// are reader sockets, so its parallel reads do too.
func (k *Kernel) Client() (*ipvs.Client, error) {
	return ipvs.NewClientNetlink(netlink.NewConn(&socket{k: k}, 0x5ee5),
		netlink.NewConn(&socket{k: k}, 0x5ee6), netlink.NewConn(&socket{k: k}, 0x5ee7))
}

// socket is a netlink.Socket served by the kernel, with the kernel's
// datagram boundaries: every answer to a request is a datagram of its own,
// and a dump is its messages in one datagram then NLMSG_DONE in another.
type socket struct {
	k     *Kernel
	mu    sync.Mutex
	queue [][]netlink.Message
}

func (s *socket) Close() error { return nil }

func (s *socket) Send(m netlink.Message) error { return s.SendMessages([]netlink.Message{m}) }

func (s *socket) SendMessages(ms []netlink.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.k.mu.Lock()
	s.k.sends++
	s.k.mu.Unlock()
	for _, m := range ms {
		replies := s.k.serve(m)
		if n := len(replies); n > 1 && replies[n-1].Header.Type == netlink.Done {
			s.queue = append(s.queue, replies[:n-1], replies[n-1:])
			continue
		}
		for _, r := range replies {
			s.queue = append(s.queue, []netlink.Message{r})
		}
	}
	return nil
}

func (s *socket) Receive() ([]netlink.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		// A real socket would block; nothing will ever come here.
		return nil, syscall.EAGAIN
	}
	d := s.queue[0]
	s.queue = s.queue[1:]
	return d, nil
}

// Dial returns a generic netlink connection served by this kernel (and by
// a controller that knows the IPVS family). A client on it (ipvs.NewClient)
// cannot batch: it sends one request at a time.
func (k *Kernel) Dial() *genetlink.Conn {
	return genetlink.NewConn(nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		if len(reqs) == 0 {
			return nil, io.EOF
		}
		return k.serve(reqs[0]), nil
	}))
}

// Writes is how many changing requests the kernel received.
func (k *Kernel) Writes() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.writes
}

// Sends is how many times a client from Client sent (one sendmsg each,
// however many requests it carried).
func (k *Kernel) Sends() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sends
}

// Requests is how many requests of any kind the kernel received (family
// lookups excluded).
func (k *Kernel) Requests() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.requests
}

// InterruptDumps marks the next n dumps inconsistent (NLM_F_DUMP_INTR), as
// the kernel does when the table changes during a dump.
func (k *Kernel) InterruptDumps(n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.interrupt = n
}

// FailNext makes requests for which fn returns non-zero fail with that
// errno, until fn is replaced (nil: none fail).
func (k *Kernel) FailNext(fn func(cmd uint8) syscall.Errno) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fail = fn
}

// Flush empties the table behind the client's back, like `ipvsadm -C`
// run by someone else.
func (k *Kernel) Flush() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.services = nil
	clear(k.byKey)
}

// Edit changes the table behind the client's back: fn gets the table and
// returns the new one.
func (k *Kernel) Edit(fn func([]ipvs.VirtualServer) []ipvs.VirtualServer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var vs []ipvs.VirtualServer
	for _, s := range k.services {
		v := s.svc
		v.Flags &^= ipvs.FlagHashed
		vs = append(vs, ipvs.VirtualServer{Service: v, Destinations: slices.Clone(s.dests)})
	}
	k.services = nil
	clear(k.byKey)
	for _, v := range fn(vs) {
		s := &service{svc: v.Service, dests: v.Destinations}
		s.svc.Flags |= ipvs.FlagHashed
		k.services = append(k.services, s)
		k.byKey[s.svc.ServiceKey] = s
	}
}

// SetStats sets the counters a service reports.
func (k *Kernel) SetStats(key ipvs.ServiceKey, st ipvs.Stats) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.find(key); s != nil {
		s.stats = st
	}
}

// Table is the kernel's table, normalized and sorted.
func (k *Kernel) Table() []ipvs.VirtualServer {
	k.mu.Lock()
	defer k.mu.Unlock()
	var vs []ipvs.VirtualServer
	for _, s := range k.services {
		v := ipvs.VirtualServer{Service: s.svc.Normalize()}
		for _, d := range s.dests {
			v.Destinations = append(v.Destinations, d.Normalize())
		}
		slices.SortFunc(v.Destinations, func(a, b ipvs.Destination) int { return strings.Compare(a.String(), b.String()) })
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(a, b ipvs.VirtualServer) int {
		return strings.Compare(a.ServiceKey.String(), b.ServiceKey.String())
	})
	return vs
}

// Save renders the table exactly as `ipvsadm -Sn | ipvs.CanonicalSave`
// would on a real kernel holding it.
func (k *Kernel) Save() string { return ipvs.Save(k.Table()) }

// String renders the kernel's whole state with Render.
func (k *Kernel) String() string {
	table := k.Table()
	k.mu.Lock()
	var daemons []ipvs.SyncDaemon
	for _, st := range []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup} {
		if d, ok := k.daemons[st]; ok {
			daemons = append(daemons, d)
		}
	}
	k.mu.Unlock()
	return Render(table, daemons)
}

// Render shows an IPVS state as text: the services as ipvs.Save does
// (ipvsadm -Sn), with each destination's thresholds, which ipvsadm -S
// leaves out, added as "-x U -y L"; then the sync daemons as ipvsadm
// --list-daemon prints them. Tests render a real kernel's state with it too.
func Render(table []ipvs.VirtualServer, daemons []ipvs.SyncDaemon) string {
	out := ipvs.Save(table)
	// Add the thresholds to the destination lines that have them.
	for _, v := range table {
		for _, d := range v.Destinations {
			if d.UpperThreshold == 0 && d.LowerThreshold == 0 {
				continue
			}
			head := ipvs.Save([]ipvs.VirtualServer{{Service: v.Service}})
			line := strings.TrimPrefix(ipvs.Save([]ipvs.VirtualServer{{Service: v.Service, Destinations: []ipvs.Destination{d}}}), head)
			out = strings.Replace(out, line, strings.TrimSuffix(line, "\n")+fmt.Sprintf(" -x %d -y %d\n", d.UpperThreshold, d.LowerThreshold), 1)
		}
	}
	var b strings.Builder
	b.WriteString(out)
	for _, st := range []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup} {
		for _, d := range daemons {
			if d.State == st {
				fmt.Fprintf(&b, "%s sync daemon (mcast=%s, syncid=%d, maxlen=%d, group=%s, port=%d, ttl=%d)\n",
					st, d.Interface, d.SyncID, d.MaxLen, d.MulticastGroup, d.Port, d.TTL)
			}
		}
	}
	return b.String()
}

// serve answers one request with the messages the kernel would send.
func (k *Kernel) serve(req netlink.Message) []netlink.Message {
	var greq genetlink.Message
	if err := greq.UnmarshalBinary(req.Data); err != nil {
		return errorReply(req, syscall.EINVAL)
	}
	if req.Header.Type == 0x10 { // GENL_ID_CTRL
		return familyReply(req, greq)
	}
	if req.Header.Type != FamilyID {
		return errorReply(req, syscall.ENOENT)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.requests++
	cmd := greq.Header.Command
	if isWrite(cmd) {
		k.writes++
	}
	if k.fail != nil {
		if e := k.fail(cmd); e != 0 {
			return errorReply(req, e)
		}
	}
	attrs, err := parseAttrs(greq.Data)
	if err != nil {
		return errorReply(req, syscall.EINVAL)
	}
	if req.Header.Flags&netlink.Dump != 0 {
		bodies, errno := k.dump(cmd, attrs)
		if errno != 0 {
			return errorReply(req, errno)
		}
		var flags netlink.HeaderFlags
		if k.interrupt > 0 {
			k.interrupt--
			flags = netlink.DumpInterrupted
		}
		return multipart(req, flags, bodies)
	}
	reply, errno := k.do(cmd, attrs)
	if errno != 0 {
		return errorReply(req, errno)
	}
	if reply != nil {
		return []netlink.Message{{Header: netlink.Header{Type: FamilyID, Sequence: req.Header.Sequence, PID: req.Header.PID}, Data: reply}}
	}
	if req.Header.Flags&netlink.Acknowledge != 0 {
		return errorReply(req, 0)
	}
	return nil
}

func isWrite(cmd uint8) bool {
	switch cmd {
	case uapi.IPVS_CMD_NEW_SERVICE, uapi.IPVS_CMD_SET_SERVICE, uapi.IPVS_CMD_DEL_SERVICE,
		uapi.IPVS_CMD_NEW_DEST, uapi.IPVS_CMD_SET_DEST, uapi.IPVS_CMD_DEL_DEST,
		uapi.IPVS_CMD_NEW_DAEMON, uapi.IPVS_CMD_DEL_DAEMON, uapi.IPVS_CMD_SET_CONFIG,
		uapi.IPVS_CMD_ZERO, uapi.IPVS_CMD_FLUSH:
		return true
	}
	return false
}

// attrs maps attribute types to their payloads (the last one wins, as in
// the kernel's nla_parse).
type attrs map[uint16][]byte

func parseAttrs(b []byte) (attrs, error) {
	as, err := netlink.UnmarshalAttributes(b)
	if err != nil {
		return nil, err
	}
	m := attrs{}
	for _, a := range as {
		m[a.Type&^(netlink.Nested|netlink.NetByteOrder)] = a.Data
	}
	return m, nil
}

func (a attrs) u8(t uint16) (uint8, bool) {
	b, ok := a[t]
	if !ok || len(b) < 1 {
		return 0, false
	}
	return b[0], true
}

func (a attrs) u16(t uint16) (uint16, bool) {
	b, ok := a[t]
	if !ok || len(b) < 2 {
		return 0, false
	}
	return binary.NativeEndian.Uint16(b), true
}

func (a attrs) be16(t uint16) (uint16, bool) {
	b, ok := a[t]
	if !ok || len(b) < 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(b), true
}

func (a attrs) u32(t uint16) (uint32, bool) {
	b, ok := a[t]
	if !ok || len(b) < 4 {
		return 0, false
	}
	return binary.NativeEndian.Uint32(b), true
}

func (a attrs) str(t uint16) (string, bool) {
	b, ok := a[t]
	if !ok {
		return "", false
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b), true
}

func (a attrs) nested(t uint16) (attrs, bool) {
	b, ok := a[t]
	if !ok {
		return nil, false
	}
	n, err := parseAttrs(b)
	return n, err == nil
}

func addrOf(b []byte, f ipvs.Family) netip.Addr {
	var buf [16]byte
	copy(buf[:], b)
	if f == ipvs.IPv4 {
		return netip.AddrFrom4([4]byte(buf[:4]))
	}
	return netip.AddrFrom16(buf)
}

// parseKey is ip_vs_genl_parse_service's identity part.
func parseKey(a attrs) (ipvs.ServiceKey, syscall.Errno) {
	af, ok := a.u16(uapi.IPVS_SVC_ATTR_AF)
	if !ok {
		return ipvs.ServiceKey{}, syscall.EINVAL
	}
	k := ipvs.ServiceKey{Family: ipvs.Family(af)}
	if k.Family != ipvs.IPv4 && k.Family != ipvs.IPv6 {
		return k, syscall.EAFNOSUPPORT
	}
	if m, ok := a.u32(uapi.IPVS_SVC_ATTR_FWMARK); ok {
		k.FWMark = m
		return k, 0
	}
	proto, ok1 := a.u16(uapi.IPVS_SVC_ATTR_PROTOCOL)
	addr, ok2 := a[uapi.IPVS_SVC_ATTR_ADDR]
	port, ok3 := a.be16(uapi.IPVS_SVC_ATTR_PORT)
	if !ok1 || !ok2 || !ok3 {
		return k, syscall.EINVAL
	}
	k.Protocol, k.Addr, k.Port = ipvs.Protocol(proto), addrOf(addr, k.Family), port
	return k, 0
}

func (k *Kernel) find(key ipvs.ServiceKey) *service { return k.byKey[key] }

// parseService is ip_vs_genl_parse_service with full_entry: the settings
// are required. old is the existing service's flags, which SET merges with
// the new ones under the mask.
func parseService(a attrs, old ipvs.ServiceFlags) (ipvs.Service, syscall.Errno) {
	key, e := parseKey(a)
	if e != 0 {
		return ipvs.Service{}, e
	}
	s := ipvs.Service{ServiceKey: key}
	sched, ok1 := a.str(uapi.IPVS_SVC_ATTR_SCHED_NAME)
	flags, ok2 := a[uapi.IPVS_SVC_ATTR_FLAGS]
	timeout, ok3 := a.u32(uapi.IPVS_SVC_ATTR_TIMEOUT)
	mask, ok4 := a[uapi.IPVS_SVC_ATTR_NETMASK]
	if !ok1 || !ok2 || !ok3 || !ok4 || len(flags) != 8 || len(mask) != 4 {
		return s, syscall.EINVAL
	}
	if pe, ok := a.str(uapi.IPVS_SVC_ATTR_PE_NAME); ok {
		s.PEName = pe
	}
	f := binary.NativeEndian.Uint32(flags[:4])
	m := binary.NativeEndian.Uint32(flags[4:])
	s.Flags = ipvs.ServiceFlags(uint32(old)&^m|f&m) | ipvs.FlagHashed
	s.Scheduler, s.Timeout = sched, timeout
	if key.Family == ipvs.IPv6 {
		p := binary.NativeEndian.Uint32(mask)
		if p < 1 || p > 128 {
			return s, syscall.EINVAL
		}
		s.Netmask = uint8(p)
	} else {
		v := binary.BigEndian.Uint32(mask)
		n := 0
		for v&(1<<31) != 0 {
			n, v = n+1, v<<1
		}
		if v != 0 {
			// The kernel takes any mask; the fake only prefixes.
			return s, syscall.EINVAL
		}
		s.Netmask = uint8(n)
	}
	return s, 0
}

// parseDest is ip_vs_genl_parse_dest.
func parseDest(a attrs, svcFamily ipvs.Family, full bool) (ipvs.Destination, syscall.Errno) {
	addr, ok1 := a[uapi.IPVS_DEST_ATTR_ADDR]
	port, ok2 := a.be16(uapi.IPVS_DEST_ATTR_PORT)
	if !ok1 || !ok2 {
		return ipvs.Destination{}, syscall.EINVAL
	}
	f := svcFamily
	if af, ok := a.u16(uapi.IPVS_DEST_ATTR_ADDR_FAMILY); ok {
		f = ipvs.Family(af)
	}
	if f != ipvs.IPv4 && f != ipvs.IPv6 {
		return ipvs.Destination{}, syscall.EAFNOSUPPORT
	}
	d := ipvs.Destination{Addr: addrOf(addr, f), Port: port, Family: f}
	if !full {
		return d, 0
	}
	fwd, ok1 := a.u32(uapi.IPVS_DEST_ATTR_FWD_METHOD)
	w, ok2 := a.u32(uapi.IPVS_DEST_ATTR_WEIGHT)
	u, ok3 := a.u32(uapi.IPVS_DEST_ATTR_U_THRESH)
	l, ok4 := a.u32(uapi.IPVS_DEST_ATTR_L_THRESH)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return d, syscall.EINVAL
	}
	d.Forward = ipvs.ForwardMethod(fwd & uapi.IP_VS_CONN_F_FWD_MASK)
	d.Weight, d.UpperThreshold, d.LowerThreshold = w, u, l
	if v, ok := a.u8(uapi.IPVS_DEST_ATTR_TUN_TYPE); ok {
		d.TunnelType = ipvs.TunnelType(v)
	}
	if v, ok := a.be16(uapi.IPVS_DEST_ATTR_TUN_PORT); ok {
		d.TunnelPort = v
	}
	if v, ok := a.u16(uapi.IPVS_DEST_ATTR_TUN_FLAGS); ok {
		d.TunnelFlags = ipvs.TunnelFlags(v)
	}
	return d, 0
}

// checkDest is the start of ip_vs_add_dest and ip_vs_edit_dest.
func checkDest(d ipvs.Destination, svcFamily ipvs.Family) syscall.Errno {
	if int32(d.Weight) < 0 || d.LowerThreshold > d.UpperThreshold {
		return syscall.ERANGE
	}
	if d.TunnelType == ipvs.GUE && d.TunnelPort == 0 {
		return syscall.EINVAL
	}
	return 0
}

// do runs a request that is not a dump; it returns a reply body or none.
func (k *Kernel) do(cmd uint8, a attrs) ([]byte, syscall.Errno) {
	switch cmd {
	case uapi.IPVS_CMD_NEW_SERVICE, uapi.IPVS_CMD_SET_SERVICE:
		sa, ok := a.nested(uapi.IPVS_CMD_ATTR_SERVICE)
		if !ok {
			return nil, syscall.EINVAL
		}
		key, e := parseKey(sa)
		if e != 0 {
			return nil, e
		}
		old := k.find(key)
		var oldFlags ipvs.ServiceFlags
		if old != nil {
			oldFlags = old.svc.Flags
		}
		s, e := parseService(sa, oldFlags)
		if e != 0 {
			return nil, e
		}
		// The order of the kernel's checks (ip_vs_genl_set_cmd, then
		// ip_vs_add_service or ip_vs_edit_service).
		switch {
		case cmd == uapi.IPVS_CMD_NEW_SERVICE && old != nil:
			return nil, syscall.EEXIST
		case cmd == uapi.IPVS_CMD_SET_SERVICE && old == nil:
			return nil, syscall.ESRCH
		case !slices.Contains(Schedulers, s.Scheduler):
			return nil, syscall.ENOENT
		case s.PEName != "" && s.PEName != "sip":
			return nil, syscall.ENOENT
		}
		if old == nil {
			k.services = append(k.services, &service{svc: s})
			k.byKey[s.ServiceKey] = k.services[len(k.services)-1]
			return nil, 0
		}
		old.svc = s
		return nil, 0
	case uapi.IPVS_CMD_DEL_SERVICE:
		s, e := k.serviceFrom(a)
		if e != 0 {
			return nil, e
		}
		k.services = slices.DeleteFunc(k.services, func(x *service) bool { return x == s })
		delete(k.byKey, s.svc.ServiceKey)
		return nil, 0
	case uapi.IPVS_CMD_GET_SERVICE:
		s, e := k.serviceFrom(a)
		if e != 0 {
			return nil, e
		}
		return encodeService(s), 0
	case uapi.IPVS_CMD_NEW_DEST, uapi.IPVS_CMD_SET_DEST, uapi.IPVS_CMD_DEL_DEST:
		s, e := k.serviceFrom(a)
		if e != 0 {
			return nil, e
		}
		da, ok := a.nested(uapi.IPVS_CMD_ATTR_DEST)
		if !ok {
			return nil, syscall.EINVAL
		}
		d, e := parseDest(da, s.svc.Family, cmd != uapi.IPVS_CMD_DEL_DEST)
		if e != 0 {
			return nil, e
		}
		// ip_vs_genl_set_cmd: the sync protocol cannot carry mixed
		// families, and only tunnels can forward across them.
		if d.Family != s.svc.Family && cmd != uapi.IPVS_CMD_DEL_DEST && (len(k.daemons) > 0 || d.Forward != ipvs.Tunnel) {
			return nil, syscall.EINVAL
		}
		if cmd != uapi.IPVS_CMD_DEL_DEST {
			if e := checkDest(d, s.svc.Family); e != 0 {
				return nil, e
			}
		}
		i := slices.IndexFunc(s.dests, func(x ipvs.Destination) bool { return x.Addr == d.Addr && x.Port == d.Port })
		switch {
		case cmd == uapi.IPVS_CMD_NEW_DEST && i >= 0:
			return nil, syscall.EEXIST
		case cmd == uapi.IPVS_CMD_NEW_DEST:
			// The kernel puts a new destination at the head of the
			// service's list (list_add in __ip_vs_update_dest), and
			// dumps and schedulers walk it from there.
			s.dests = slices.Insert(s.dests, 0, d)
		case i < 0:
			return nil, syscall.ENOENT
		case cmd == uapi.IPVS_CMD_SET_DEST:
			s.dests[i] = d
		default:
			s.dests = slices.Delete(s.dests, i, i+1)
		}
		return nil, 0
	case uapi.IPVS_CMD_FLUSH:
		k.services = nil
		clear(k.byKey)
		return nil, 0
	case uapi.IPVS_CMD_ZERO:
		if _, ok := a[uapi.IPVS_CMD_ATTR_SERVICE]; !ok {
			for _, s := range k.services {
				s.stats = ipvs.Stats{}
			}
			return nil, 0
		}
		s, e := k.serviceFrom(a)
		if e != 0 {
			return nil, e
		}
		s.stats = ipvs.Stats{}
		return nil, 0
	case uapi.IPVS_CMD_SET_CONFIG:
		if v, ok := a.u32(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP); ok && v != 0 {
			k.timeouts.TCP = v
		}
		if v, ok := a.u32(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP_FIN); ok && v != 0 {
			k.timeouts.TCPFin = v
		}
		if v, ok := a.u32(uapi.IPVS_CMD_ATTR_TIMEOUT_UDP); ok && v != 0 {
			k.timeouts.UDP = v
		}
		return nil, 0
	case uapi.IPVS_CMD_GET_CONFIG:
		ae := netlink.NewAttributeEncoder()
		ae.Uint32(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP, k.timeouts.TCP)
		ae.Uint32(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, k.timeouts.TCPFin)
		ae.Uint32(uapi.IPVS_CMD_ATTR_TIMEOUT_UDP, k.timeouts.UDP)
		return genlBody(uapi.IPVS_CMD_SET_CONFIG, ae), 0
	case uapi.IPVS_CMD_GET_INFO:
		ae := netlink.NewAttributeEncoder()
		ae.Uint32(uapi.IPVS_INFO_ATTR_VERSION, uapi.IP_VS_VERSION_CODE)
		ae.Uint32(uapi.IPVS_INFO_ATTR_CONN_TAB_SIZE, 4096)
		return genlBody(uapi.IPVS_CMD_SET_INFO, ae), 0
	case uapi.IPVS_CMD_NEW_DAEMON:
		return nil, k.newDaemon(a)
	case uapi.IPVS_CMD_DEL_DAEMON:
		da, ok := a.nested(uapi.IPVS_CMD_ATTR_DAEMON)
		if !ok {
			return nil, syscall.EINVAL
		}
		st, ok := da.u32(uapi.IPVS_DAEMON_ATTR_STATE)
		if !ok {
			return nil, syscall.EINVAL
		}
		if _, running := k.daemons[ipvs.SyncState(st)]; !running {
			return nil, syscall.ESRCH
		}
		delete(k.daemons, ipvs.SyncState(st))
		return nil, 0
	}
	return nil, syscall.EOPNOTSUPP
}

func (k *Kernel) serviceFrom(a attrs) (*service, syscall.Errno) {
	sa, ok := a.nested(uapi.IPVS_CMD_ATTR_SERVICE)
	if !ok {
		return nil, syscall.EINVAL
	}
	key, e := parseKey(sa)
	if e != 0 {
		return nil, e
	}
	s := k.find(key)
	if s == nil {
		return nil, syscall.ESRCH
	}
	return s, 0
}

func (k *Kernel) newDaemon(a attrs) syscall.Errno {
	da, ok := a.nested(uapi.IPVS_CMD_ATTR_DAEMON)
	if !ok {
		return syscall.EINVAL
	}
	st, ok1 := da.u32(uapi.IPVS_DAEMON_ATTR_STATE)
	ifn, ok2 := da.str(uapi.IPVS_DAEMON_ATTR_MCAST_IFN)
	id, ok3 := da.u32(uapi.IPVS_DAEMON_ATTR_SYNC_ID)
	if !ok1 || !ok2 || !ok3 {
		return syscall.EINVAL
	}
	state := ipvs.SyncState(st)
	if state != ipvs.SyncMaster && state != ipvs.SyncBackup {
		return syscall.EINVAL
	}
	if _, running := k.daemons[state]; running {
		return syscall.EEXIST
	}
	for _, s := range k.services {
		for _, d := range s.dests {
			if d.Family != s.svc.Family {
				return syscall.EINVAL // no sync with mixed families
			}
		}
	}
	// The kernel's defaults (ip_vs_sync.c), with a 1500-byte MTU.
	d := ipvs.SyncDaemon{State: state, Interface: ifn, SyncID: id, MaxLen: 1472,
		MulticastGroup: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}
	if g, ok := da[uapi.IPVS_DAEMON_ATTR_MCAST_GROUP]; ok && len(g) == 4 {
		d.MulticastGroup = netip.AddrFrom4([4]byte(g))
	} else if g, ok := da[uapi.IPVS_DAEMON_ATTR_MCAST_GROUP6]; ok && len(g) == 16 {
		d.MulticastGroup, d.MaxLen = netip.AddrFrom16([16]byte(g)), 1452
	}
	if !d.MulticastGroup.IsMulticast() {
		return syscall.EINVAL
	}
	if v, ok := da.u16(uapi.IPVS_DAEMON_ATTR_SYNC_MAXLEN); ok && v != 0 {
		d.MaxLen = v
	}
	if v, ok := da.u16(uapi.IPVS_DAEMON_ATTR_MCAST_PORT); ok && v != 0 {
		d.Port = v
	}
	if v, ok := da.u8(uapi.IPVS_DAEMON_ATTR_MCAST_TTL); ok && v != 0 {
		d.TTL = v
	}
	k.daemons[state] = d
	return 0
}

func (k *Kernel) dump(cmd uint8, a attrs) ([][]byte, syscall.Errno) {
	var out [][]byte
	switch cmd {
	case uapi.IPVS_CMD_GET_SERVICE:
		for _, s := range k.services {
			out = append(out, encodeService(s))
		}
	case uapi.IPVS_CMD_GET_DEST:
		s, e := k.serviceFrom(a)
		if e == syscall.ESRCH {
			return nil, 0 // the kernel's dump of a missing service is empty
		}
		if e != 0 {
			return nil, e
		}
		for _, d := range s.dests {
			out = append(out, encodeDest(d))
		}
	case uapi.IPVS_CMD_GET_DAEMON:
		for _, st := range []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup} {
			if d, ok := k.daemons[st]; ok {
				out = append(out, encodeDaemon(d))
			}
		}
	default:
		return nil, syscall.EOPNOTSUPP
	}
	return out, 0
}

func genlBody(cmd uint8, ae *netlink.AttributeEncoder) []byte {
	b, err := ae.Encode()
	if err != nil {
		panic(err)
	}
	m, err := genetlink.Message{Header: genetlink.Header{Command: cmd, Version: uapi.IPVS_GENL_VERSION}, Data: b}.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return m
}

func addr16(a netip.Addr) []byte {
	b := make([]byte, 16)
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
	} else {
		v := a.As16()
		copy(b, v[:])
	}
	return b
}

// nest writes a nested attribute without NLA_F_NESTED, as the kernel's
// nla_nest_start_noflag does.
func nest(ae *netlink.AttributeEncoder, t uint16, fn func(*netlink.AttributeEncoder)) {
	ae.Do(t, func() ([]byte, error) {
		n := netlink.NewAttributeEncoder()
		fn(n)
		return n.Encode()
	})
}

func stats(ae *netlink.AttributeEncoder, t uint16, s ipvs.Stats, wide bool) {
	nest(ae, t, func(n *netlink.AttributeEncoder) {
		for i, v := range []uint64{s.Connections, s.PacketsIn, s.PacketsOut, s.BytesIn, s.BytesOut, s.CPS, s.PPSIn, s.PPSOut, s.BPSIn, s.BPSOut} {
			typ := uint16(i + 1)
			if wide || typ == uapi.IPVS_STATS_ATTR_INBYTES || typ == uapi.IPVS_STATS_ATTR_OUTBYTES {
				n.Uint64(typ, v)
			} else {
				n.Uint32(typ, uint32(v))
			}
		}
	})
}

// encodeService is ip_vs_genl_fill_service.
func encodeService(s *service) []byte {
	ae := netlink.NewAttributeEncoder()
	nest(ae, uapi.IPVS_CMD_ATTR_SERVICE, func(n *netlink.AttributeEncoder) {
		v := s.svc
		n.Uint16(uapi.IPVS_SVC_ATTR_AF, uint16(v.Family))
		if v.FWMark != 0 {
			n.Uint32(uapi.IPVS_SVC_ATTR_FWMARK, v.FWMark)
		} else {
			n.Uint16(uapi.IPVS_SVC_ATTR_PROTOCOL, uint16(v.Protocol))
			n.Bytes(uapi.IPVS_SVC_ATTR_ADDR, addr16(v.Addr))
			n.Bytes(uapi.IPVS_SVC_ATTR_PORT, binary.BigEndian.AppendUint16(nil, v.Port))
		}
		n.String(uapi.IPVS_SVC_ATTR_SCHED_NAME, v.Scheduler)
		if v.PEName != "" {
			n.String(uapi.IPVS_SVC_ATTR_PE_NAME, v.PEName)
		}
		n.Bytes(uapi.IPVS_SVC_ATTR_FLAGS, binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(nil, uint32(v.Flags)), ^uint32(0)))
		n.Uint32(uapi.IPVS_SVC_ATTR_TIMEOUT, v.Timeout)
		if v.Family == ipvs.IPv6 {
			n.Uint32(uapi.IPVS_SVC_ATTR_NETMASK, uint32(v.Netmask))
		} else {
			n.Bytes(uapi.IPVS_SVC_ATTR_NETMASK, binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-uint32(v.Netmask))))
		}
		stats(n, uapi.IPVS_SVC_ATTR_STATS, s.stats, false)
		stats(n, uapi.IPVS_SVC_ATTR_STATS64, s.stats, true)
	})
	return genlBody(uapi.IPVS_CMD_NEW_SERVICE, ae)
}

// encodeDest is ip_vs_genl_fill_dest.
func encodeDest(d ipvs.Destination) []byte {
	ae := netlink.NewAttributeEncoder()
	nest(ae, uapi.IPVS_CMD_ATTR_DEST, func(n *netlink.AttributeEncoder) {
		n.Bytes(uapi.IPVS_DEST_ATTR_ADDR, addr16(d.Addr))
		n.Bytes(uapi.IPVS_DEST_ATTR_PORT, binary.BigEndian.AppendUint16(nil, d.Port))
		n.Uint32(uapi.IPVS_DEST_ATTR_FWD_METHOD, uint32(d.Forward))
		n.Uint32(uapi.IPVS_DEST_ATTR_WEIGHT, d.Weight)
		n.Uint8(uapi.IPVS_DEST_ATTR_TUN_TYPE, uint8(d.TunnelType))
		n.Bytes(uapi.IPVS_DEST_ATTR_TUN_PORT, binary.BigEndian.AppendUint16(nil, d.TunnelPort))
		n.Uint16(uapi.IPVS_DEST_ATTR_TUN_FLAGS, uint16(d.TunnelFlags))
		n.Uint32(uapi.IPVS_DEST_ATTR_U_THRESH, d.UpperThreshold)
		n.Uint32(uapi.IPVS_DEST_ATTR_L_THRESH, d.LowerThreshold)
		n.Uint32(uapi.IPVS_DEST_ATTR_ACTIVE_CONNS, 0)
		n.Uint32(uapi.IPVS_DEST_ATTR_INACT_CONNS, 0)
		n.Uint32(uapi.IPVS_DEST_ATTR_PERSIST_CONNS, 0)
		n.Uint16(uapi.IPVS_DEST_ATTR_ADDR_FAMILY, uint16(d.Family))
		stats(n, uapi.IPVS_DEST_ATTR_STATS, ipvs.Stats{}, false)
		stats(n, uapi.IPVS_DEST_ATTR_STATS64, ipvs.Stats{}, true)
	})
	return genlBody(uapi.IPVS_CMD_NEW_DEST, ae)
}

// encodeDaemon is ip_vs_genl_fill_daemon.
func encodeDaemon(d ipvs.SyncDaemon) []byte {
	ae := netlink.NewAttributeEncoder()
	nest(ae, uapi.IPVS_CMD_ATTR_DAEMON, func(n *netlink.AttributeEncoder) {
		n.Uint32(uapi.IPVS_DAEMON_ATTR_STATE, uint32(d.State))
		n.String(uapi.IPVS_DAEMON_ATTR_MCAST_IFN, d.Interface)
		n.Uint32(uapi.IPVS_DAEMON_ATTR_SYNC_ID, d.SyncID)
		n.Uint16(uapi.IPVS_DAEMON_ATTR_SYNC_MAXLEN, d.MaxLen)
		n.Uint16(uapi.IPVS_DAEMON_ATTR_MCAST_PORT, d.Port)
		n.Uint8(uapi.IPVS_DAEMON_ATTR_MCAST_TTL, d.TTL)
		if d.MulticastGroup.Is4() {
			v := d.MulticastGroup.As4()
			n.Bytes(uapi.IPVS_DAEMON_ATTR_MCAST_GROUP, v[:])
		} else {
			v := d.MulticastGroup.As16()
			n.Bytes(uapi.IPVS_DAEMON_ATTR_MCAST_GROUP6, v[:])
		}
	})
	return genlBody(uapi.IPVS_CMD_NEW_DAEMON, ae)
}

func errorReply(req netlink.Message, errno syscall.Errno) []netlink.Message {
	// struct nlmsgerr: the negative errno, then the request's header.
	body := binary.NativeEndian.AppendUint32(nil, uint32(-int32(errno)))
	hdr := make([]byte, 16)
	binary.NativeEndian.PutUint32(hdr[0:], uint32(16+len(req.Data)))
	binary.NativeEndian.PutUint16(hdr[4:], uint16(req.Header.Type))
	binary.NativeEndian.PutUint16(hdr[6:], uint16(req.Header.Flags))
	binary.NativeEndian.PutUint32(hdr[8:], req.Header.Sequence)
	binary.NativeEndian.PutUint32(hdr[12:], req.Header.PID)
	body = append(body, hdr...)
	return []netlink.Message{{Header: netlink.Header{Type: netlink.Error, Sequence: req.Header.Sequence, PID: req.Header.PID}, Data: body}}
}

func multipart(req netlink.Message, flags netlink.HeaderFlags, bodies [][]byte) []netlink.Message {
	var out []netlink.Message
	for _, b := range bodies {
		out = append(out, netlink.Message{Header: netlink.Header{Type: FamilyID, Flags: netlink.Multi | flags,
			Sequence: req.Header.Sequence, PID: req.Header.PID}, Data: b})
	}
	return append(out, netlink.Message{Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi | flags,
		Sequence: req.Header.Sequence, PID: req.Header.PID}, Data: make([]byte, 4)})
}

// familyReply answers the controller's CTRL_CMD_GETFAMILY for "IPVS".
func familyReply(req netlink.Message, greq genetlink.Message) []netlink.Message {
	a, err := parseAttrs(greq.Data)
	if err != nil {
		return errorReply(req, syscall.EINVAL)
	}
	if name, _ := a.str(2); name != ipvs.FamilyName { // CTRL_ATTR_FAMILY_NAME
		return errorReply(req, syscall.ENOENT)
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint16(1, FamilyID) // CTRL_ATTR_FAMILY_ID
	ae.String(2, ipvs.FamilyName)
	ae.Uint32(3, uapi.IPVS_GENL_VERSION) // CTRL_ATTR_VERSION
	b, _ := ae.Encode()
	body, _ := genetlink.Message{Header: genetlink.Header{Command: 1, Version: 2}, Data: b}.MarshalBinary() // CTRL_CMD_NEWFAMILY
	return []netlink.Message{{Header: netlink.Header{Type: 0x10, Sequence: req.Header.Sequence, PID: req.Header.PID}, Data: body}}
}
