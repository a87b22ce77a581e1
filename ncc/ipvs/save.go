package ipvs

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// VirtualServer is a service with its destinations, as configured.
type VirtualServer struct {
	Service
	Destinations []Destination
}

// ServiceState is a service with its destinations as the kernel reports
// them, with statistics.
type ServiceState struct {
	ServiceStats
	Destinations []DestinationStats
}

// Config is the state without what the kernel observed.
func (s ServiceState) Config() VirtualServer {
	v := VirtualServer{Service: s.Service}
	for _, d := range s.Destinations {
		v.Destinations = append(v.Destinations, d.Destination)
	}
	return v
}

// Save renders virtual servers the way `ipvsadm -Sn` does, one rule per
// line, sorted (services by their line, destinations by theirs under their
// service) so that two tables compare as text. Like ipvsadm it leaves out
// what ipvsadm -S cannot express: destination thresholds, and the netmask
// of services that are not persistent.
func Save(vs []VirtualServer) string {
	type block struct {
		head  string
		dests []string
	}
	blocks := make([]block, 0, len(vs))
	for _, v := range vs {
		b := block{head: serviceRule(v.Service)}
		for _, d := range v.Destinations {
			b.dests = append(b.dests, destRule(v.ServiceKey, d))
		}
		sort.Strings(b.dests)
		blocks = append(blocks, b)
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].head < blocks[j].head })
	var sb strings.Builder
	for _, b := range blocks {
		sb.WriteString(b.head)
		sb.WriteByte('\n')
		for _, d := range b.dests {
			sb.WriteString(d)
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

// CanonicalSave sorts the output of `ipvsadm -Sn` the way Save sorts, so
// that the kernel's hash order does not matter when comparing.
func CanonicalSave(out string) string {
	type block struct {
		head  string
		dests []string
	}
	var blocks []block
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "-A "):
			blocks = append(blocks, block{head: l})
		case strings.HasPrefix(l, "-a ") && len(blocks) > 0:
			blocks[len(blocks)-1].dests = append(blocks[len(blocks)-1].dests, l)
		}
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].head < blocks[j].head })
	var sb strings.Builder
	for _, b := range blocks {
		sort.Strings(b.dests)
		sb.WriteString(b.head + "\n")
		for _, d := range b.dests {
			sb.WriteString(d + "\n")
		}
	}
	return sb.String()
}

// serviceSwitch is how ipvsadm names a service on its command line.
func serviceSwitch(k ServiceKey) string {
	if k.FWMark != 0 {
		if k.Family == IPv6 {
			return fmt.Sprintf("-f %d -6", k.FWMark)
		}
		return fmt.Sprintf("-f %d", k.FWMark)
	}
	sw := "-t"
	switch k.Protocol {
	case UDP:
		sw = "-u"
	case SCTP:
		sw = "--sctp-service"
	case TCP:
	default:
		sw = fmt.Sprintf("--protocol-%d", k.Protocol) // ipvsadm has no switch for it
	}
	return sw + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

func serviceRule(s Service) string {
	s = s.Normalize()
	var b strings.Builder
	fmt.Fprintf(&b, "-A %s -s %s", serviceSwitch(s.ServiceKey), s.Scheduler)
	if s.Flags&FlagPersistent != 0 {
		fmt.Fprintf(&b, " -p %d", s.Timeout)
		if int(s.Netmask) != s.Family.bits() {
			if s.Family == IPv4 {
				m := maskOf(IPv4, s.Netmask)
				fmt.Fprintf(&b, " -M %s", netip.AddrFrom4([4]byte(m)))
			} else {
				fmt.Fprintf(&b, " -M %d", s.Netmask)
			}
		}
	}
	if s.PEName != "" {
		fmt.Fprintf(&b, " --pe %s", s.PEName)
	}
	if s.Flags&FlagOnePacket != 0 {
		b.WriteString(" -o")
	}
	if f := schedFlagNames(s.Scheduler, s.Flags); f != "" {
		b.WriteString(" -b " + f)
	}
	return b.String()
}

// schedFlagNames names the scheduler flags as ipvsadm does: by the
// scheduler's meaning for sh and mh, by number otherwise.
func schedFlagNames(sched string, f ServiceFlags) string {
	n1, n2 := "flag-1", "flag-2"
	switch sched {
	case "sh", "mh":
		n1, n2 = sched+"-fallback", sched+"-port"
	}
	var out []string
	if f&FlagSched1 != 0 {
		out = append(out, n1)
	}
	if f&FlagSched2 != 0 {
		out = append(out, n2)
	}
	if f&FlagSched3 != 0 {
		out = append(out, "flag-3")
	}
	return strings.Join(out, ",")
}

func destRule(k ServiceKey, d Destination) string {
	fwd := "-g"
	switch d.Forward {
	case Masquerade:
		fwd = "-m"
	case Tunnel:
		fwd = "-i"
	}
	s := fmt.Sprintf("-a %s -r %s %s -w %d", serviceSwitch(k), netip.AddrPortFrom(d.Addr.Unmap(), d.Port), fwd, d.Weight)
	if d.Forward == Tunnel {
		switch d.TunnelType {
		case IPIP:
			s += " --tun-type ipip"
		case GUE:
			s += fmt.Sprintf(" --tun-type gue --tun-port %d", d.TunnelPort) + tunFlags(d.TunnelFlags)
		case GRE:
			s += " --tun-type gre" + tunFlags(d.TunnelFlags)
		}
	}
	return s
}

func tunFlags(f TunnelFlags) string {
	switch {
	case f&TunnelRemCSum != 0:
		return " --tun-remcsum"
	case f&TunnelCSum != 0:
		return " --tun-csum"
	}
	return " --tun-nocsum"
}
