package appliance

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/seesawlb/seesaw/deploy/labtest"
)

// Table is IPVS as `ipvsadm -Ln` lists it in a namespace: the kernel's own
// account, the independent witness of what the NCC programmed.
type Table struct {
	Services []*Service
	Text     string // ipvsadm's output, for messages
}

// Service is one IPVS service: Key is "TCP 192.0.2.100:80",
// "UDP [2001:db8::1]:53" or "FWM 7".
type Service struct {
	Key       string
	Scheduler string
	Dests     []Dest
}

// Dest is one destination of a service.
type Dest struct {
	Addr    netip.AddrPort
	Forward string // Masq, Route, Tunnel
	Weight  int
}

// IPVS reads n's IPVS table with ipvsadm -Ln.
func IPVS(n *labtest.Node) (*Table, error) {
	out, err := n.Output("ipvsadm", "-Ln")
	if err != nil {
		return nil, err
	}
	return ParseIPVS(string(out))
}

// ParseIPVS reads ipvsadm -Ln's output.
func ParseIPVS(text string) (*Table, error) {
	t := &Table{Text: text}
	var cur *Service
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "SCTP" || f[0] == "FWM"):
			key := f[0] + " " + f[1]
			if f[0] != "FWM" {
				ap, err := netip.ParseAddrPort(f[1])
				if err != nil {
					return nil, fmt.Errorf("ipvsadm: service %q: %w", line, err)
				}
				key = f[0] + " " + ap.String()
			}
			cur = &Service{Key: key, Scheduler: f[2]}
			t.Services = append(t.Services, cur)
		case len(f) >= 4 && f[0] == "->" && f[1] != "RemoteAddress:Port":
			if cur == nil {
				return nil, fmt.Errorf("ipvsadm: destination before any service: %q", line)
			}
			ap, err := netip.ParseAddrPort(f[1])
			if err != nil {
				return nil, fmt.Errorf("ipvsadm: destination %q: %w", line, err)
			}
			w, err := strconv.Atoi(f[3])
			if err != nil {
				return nil, fmt.Errorf("ipvsadm: destination %q: weight: %w", line, err)
			}
			cur.Dests = append(cur.Dests, Dest{Addr: ap, Forward: f[2], Weight: w})
		}
	}
	return t, nil
}

// Service returns the service with that key, or nil.
func (t *Table) Service(key string) *Service {
	for _, s := range t.Services {
		if s.Key == key {
			return s
		}
	}
	return nil
}

// ServiceKey is the Table key of a protocol ("TCP", "UDP") on vip:port.
func ServiceKey(proto string, vip netip.Addr, port uint16) string {
	return proto + " " + netip.AddrPortFrom(vip, port).String()
}

// Dest returns the service's destination at addr (any port), or false.
func (s *Service) Dest(addr netip.Addr) (Dest, bool) {
	for _, d := range s.Dests {
		if d.Addr.Addr() == addr {
			return d, true
		}
	}
	return Dest{}, false
}

// Holding lists the services that have a destination at addr (any port),
// as "KEY weight W".
func (t *Table) Holding(addr netip.Addr) []string {
	var out []string
	for _, s := range t.Services {
		if d, ok := s.Dest(addr); ok {
			out = append(out, fmt.Sprintf("%s weight %d", s.Key, d.Weight))
		}
	}
	return out
}

// IPVSConn is one entry of IPVS's connection table (ipvsadm -Lnc).
type IPVSConn struct {
	Proto, State          string
	Source, Virtual, Dest netip.AddrPort
}

// IPVSConns reads n's IPVS connection table with ipvsadm -Lnc.
func IPVSConns(n *labtest.Node) ([]IPVSConn, error) {
	out, err := n.Output("ipvsadm", "-Lnc")
	if err != nil {
		return nil, err
	}
	var cs []IPVSConn
	// pro expire state       source             virtual            destination
	// TCP 01:59  FIN_WAIT    203.0.113.10:40000 100.115.222.143:443 100.115.222.163:443
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 6 || f[0] == "pro" {
			continue
		}
		var aps [3]netip.AddrPort
		for i, s := range f[3:] {
			if aps[i], err = netip.ParseAddrPort(s); err != nil {
				return nil, fmt.Errorf("ipvsadm -Lnc: %q: %w", line, err)
			}
		}
		cs = append(cs, IPVSConn{Proto: f[0], State: f[2], Source: aps[0], Virtual: aps[1], Dest: aps[2]})
	}
	return cs, nil
}
