package ipvstest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"syscall"

	"github.com/seesawlb/seesaw/ncc/ipvs"
)

// op is one client call, named for the log.
type op struct {
	name string
	w    ipvs.Write
}

func (o op) do(c *ipvs.Client) error { return c.Write([]ipvs.Write{o.w})[0] }

func writes(ops []op) []ipvs.Write {
	ws := make([]ipvs.Write, len(ops))
	for i, o := range ops {
		ws[i] = o.w
	}
	return ws
}

// randomOps makes n calls over a small universe of services and
// destinations, so that they collide often: creating what exists,
// deleting what does not, invalid values, every forwarding method and
// tunnel type.
func randomOps(r *rand.Rand, n int) []op {
	keys := []ipvs.ServiceKey{
		ipvs.AddrPortKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.1:80")),
		ipvs.AddrPortKey(ipvs.UDP, netip.MustParseAddrPort("[2001:db8::1]:53")),
		ipvs.AddrPortKey(ipvs.SCTP, netip.MustParseAddrPort("192.0.2.2:9")),
		ipvs.FWMarkKey(ipvs.IPv4, 5),
		ipvs.FWMarkKey(ipvs.IPv6, 5),
	}
	v4 := []string{"10.0.0.1", "10.0.0.2"}
	v6 := []string{"2001:db8:1::1", "2001:db8:1::2"}
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	service := func(k ipvs.ServiceKey) ipvs.Service {
		s := ipvs.Service{ServiceKey: k, Scheduler: []string{"rr", "wrr", "sh", "mh", "wlc", "nosuch"}[r.IntN(6)]}
		for _, f := range []ipvs.ServiceFlags{ipvs.FlagPersistent, ipvs.FlagOnePacket, ipvs.FlagSched1, ipvs.FlagSched2} {
			if r.IntN(3) == 0 {
				s.Flags |= f
			}
		}
		if r.IntN(2) == 0 {
			s.Timeout = 60
		}
		if r.IntN(3) == 0 {
			s.Netmask = 24
			if k.Family == ipvs.IPv6 {
				s.Netmask = 64
			}
		}
		return s
	}
	dest := func(k ipvs.ServiceKey) ipvs.Destination {
		addrs := v4
		if k.Family == ipvs.IPv6 {
			addrs = v6
		}
		if r.IntN(8) == 0 { // the other family: only tunnels may
			if k.Family == ipvs.IPv6 {
				addrs = v4
			} else {
				addrs = v6
			}
		}
		d := ipvs.Destination{Addr: netip.MustParseAddr(pick(addrs)), Port: []uint16{0, 80}[r.IntN(2)],
			Forward: []ipvs.ForwardMethod{ipvs.Masquerade, ipvs.DirectRoute, ipvs.Tunnel}[r.IntN(3)], Weight: uint32(r.IntN(4))}
		switch r.IntN(6) {
		case 1:
			d.UpperThreshold, d.LowerThreshold = 10, 5
		case 2:
			d.UpperThreshold = 3
		case 3:
			d.UpperThreshold, d.LowerThreshold = 5, 10 // the client refuses it
		}
		if d.Forward == ipvs.Tunnel {
			d.TunnelType = []ipvs.TunnelType{ipvs.IPIP, ipvs.GUE, ipvs.GRE}[r.IntN(3)]
			if d.TunnelType == ipvs.GUE && r.IntN(4) != 0 {
				d.TunnelPort = 6080
			}
			if d.TunnelType != ipvs.IPIP {
				d.TunnelFlags = ipvs.TunnelFlags(r.IntN(3))
			}
		}
		return d
	}
	var ops []op
	for range n {
		k := keys[r.IntN(len(keys))]
		switch x := r.IntN(20); {
		case x < 4:
			s := service(k)
			ops = append(ops, op{fmt.Sprintf("create service %s %s", k, describeService(s)), ipvs.Write{Op: ipvs.OpCreateService, Service: s}})
		case x < 6:
			s := service(k)
			ops = append(ops, op{fmt.Sprintf("update service %s %s", k, describeService(s)), ipvs.Write{Op: ipvs.OpUpdateService, Service: s}})
		case x < 7:
			ops = append(ops, op{"delete service " + k.String(), ipvs.Write{Op: ipvs.OpDeleteService, Service: ipvs.Service{ServiceKey: k}}})
		case x < 12:
			d := dest(k)
			ops = append(ops, op{fmt.Sprintf("create destination %s -> %s", k, describe(d)), ipvs.Write{Op: ipvs.OpCreateDestination, Service: ipvs.Service{ServiceKey: k}, Destination: d}})
		case x < 15:
			d := dest(k)
			ops = append(ops, op{fmt.Sprintf("update destination %s -> %s", k, describe(d)), ipvs.Write{Op: ipvs.OpUpdateDestination, Service: ipvs.Service{ServiceKey: k}, Destination: d}})
		case x < 17:
			d := dest(k)
			ops = append(ops, op{fmt.Sprintf("delete destination %s -> %s", k, d), ipvs.Write{Op: ipvs.OpDeleteDestination, Service: ipvs.Service{ServiceKey: k}, Destination: d}})
		case x < 18:
			d := dest(k)
			ops = append(ops, op{fmt.Sprintf("delete destination %s -> %s", k, d), ipvs.Write{Op: ipvs.OpDeleteDestination, Service: ipvs.Service{ServiceKey: k}, Destination: d}})
		case x < 19:
			st := []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup}[r.IntN(2)]
			d := ipvs.SyncDaemon{State: st, Interface: "dummy0", SyncID: uint32(r.IntN(3))}
			if r.IntN(2) == 0 {
				d.MulticastGroup, d.Port, d.TTL = netip.MustParseAddr("239.0.0.9"), 9000, 2
			}
			ops = append(ops, op{fmt.Sprintf("start sync daemon %+v", d), ipvs.Write{Op: ipvs.OpStartSyncDaemon, Daemon: d}})
		default:
			st := []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup}[r.IntN(2)]
			ops = append(ops, op{"stop sync daemon " + st.String(), ipvs.Write{Op: ipvs.OpStopSyncDaemon, Daemon: ipvs.SyncDaemon{State: st}}})
		}
	}
	return ops
}

// outcome is what a call's error says, comparable across kernels: the
// errno, or "refused by the client" and the error for the rest.
func outcome(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &errno):
		return errno.Error()
	default:
		// The client's own refusals read the same on both sides; an
		// error of any other kind shows what it was.
		return "refused by the client: " + err.Error()
	}
}

func describe(d ipvs.Destination) string {
	return fmt.Sprintf("%s %s weight %d thresholds %d/%d tunnel %s port %d flags %d", d, d.Forward, d.Weight,
		d.UpperThreshold, d.LowerThreshold, d.TunnelType, d.TunnelPort, d.TunnelFlags)
}

func describeService(s ipvs.Service) string {
	return fmt.Sprintf("%s flags %s timeout %d netmask %d", s.Scheduler, s.Flags, s.Timeout, s.Netmask)
}
