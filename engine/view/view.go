// Package view is the one view of the engine's state that the operators'
// renderings share: the CLI's tables and the ECU's status page build their
// output from it, so that the two never disagree about what a vserver,
// service, destination, backend or check is called, what state word it
// has, in which order it comes, or what is broken.
//
// It is pure: it reads the engine's messages (package proto/engine) and
// returns plain values; no clock (times come from the messages, ages are
// computed against a "now" the caller passes), no I/O.
//
// The API, which the renderings rely on and which stays stable:
//
//   - Vservers, Backends, Checks turn the engine's answers into sorted
//     rows: vservers by name; services IPv4 first, then by protocol, port
//     and firewall mark; destinations by backend, then address; backends
//     by fqdn; checks by backend, then name.
//   - Each row has a State (one word or two: "up", "degraded", "down",
//     "disabled", "active", "draining", ...) and a Severity (OK, Off,
//     Degraded, Down). Severity is what "what is broken first" sorts by:
//     Off is out on purpose (an override, the config, a drain), Degraded
//     serves with something wrong, Down should serve and does not.
//   - Problems lists what is wrong, worst first, one line each, from the
//     vservers and the config's warnings; WorstFirst reorders rows.
//   - Destinations flattens the vservers' destinations (for
//     `show destinations`); Summarize counts vservers by state.
//   - The words and numbers: OverrideWord and ParseOverride, HAWord,
//     ServiceName, HostPort, Count, Bytes, Rate, Age.
package view

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Severity orders rows by how much they need an operator.
type Severity int

const (
	// OK serves as configured.
	OK Severity = iota
	// Off is out of service on purpose: disabled by the config or an
	// override, or draining.
	Off
	// Degraded serves, with something wrong (a destination down, a
	// service below its watermark while another serves).
	Degraded
	// Down should serve and does not.
	Down
)

func (s Severity) String() string {
	switch s {
	case OK:
		return "ok"
	case Off:
		return "off"
	case Degraded:
		return "degraded"
	case Down:
		return "down"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// State words.
const (
	StateUp        = "up"
	StateDegraded  = "degraded"
	StateDown      = "down"
	StateDisabled  = "disabled"
	StateActive    = "active"    // a destination taking new connections
	StateHealthy   = "healthy"   // healthy, but its service is not serving
	StateUnhealthy = "unhealthy" // a destination or check failing
	StateDraining  = "draining"  // drained by an override: weight 0, existing connections finish
	StateQuiesced  = "quiesced"  // unhealthy on a quiescent service: weight 0
	StateWeight0   = "weight 0"  // the config gives it weight 0
	StateUnknown   = "unknown"   // a check with no result yet
)

// Stats are IPVS counters and rates.
type Stats struct {
	Connections, PacketsIn, PacketsOut, BytesIn, BytesOut uint64
	CPS, PPSIn, PPSOut, BPSIn, BPSOut                     uint64
	// Known is false when the engine had no counters (the NCC did not
	// answer, or the service is not in IPVS).
	Known bool
}

func stats(s *nccpb.Stats) Stats {
	if s == nil {
		return Stats{}
	}
	return Stats{
		Connections: s.Connections, PacketsIn: s.PacketsIn, PacketsOut: s.PacketsOut,
		BytesIn: s.BytesIn, BytesOut: s.BytesOut, CPS: s.Cps, PPSIn: s.PpsIn, PPSOut: s.PpsOut,
		BPSIn: s.BpsIn, BPSOut: s.BpsOut, Known: true,
	}
}

// Override is an operator's override as shown.
type Override struct {
	Word  string    // "", "disabled", "enabled", "drain"
	SetBy string    // who set it, when the engine knows
	SetAt time.Time // zero when unknown
}

// Vserver is one vserver.
type Vserver struct {
	Name, FQDN    string
	Addresses     []string // IPv4 first
	State         string
	Severity      Severity
	Enabled       bool
	ConfigEnabled bool
	Override      Override
	VIPs          []VIP
	Services      []Service
	Warnings      []string
	// Healthy and Total count the destinations of every service.
	Healthy, Total int
	Stats          Stats // the sum over its services
	// Status is the engine's message, for what the view does not carry.
	Status *enginepb.VserverStatus
}

// VIP is one VIP of a vserver.
type VIP struct {
	Address, Placement, Interface string
	State                         string // "up", "down" (placed, not active), "not placed"
}

// Service is one IPVS service of a vserver.
type Service struct {
	Name                        string // ServiceName
	Family, Protocol            string // "IPv4", "TCP"
	VIP                         string
	Port, Fwmark                uint32
	Mode, Scheduler             string
	OnePacket                   bool
	Persistence                 uint32
	State                       string
	Severity                    Severity
	Enabled, Healthy, Active    bool
	Low, High, Current          float32 // watermarks
	HealthyDests, InServiceDest int
	Destinations                []Destination
	Stats                       Stats
}

// Destination is one backend of one service.
type Destination struct {
	Name                             string // "<vserver>/<ip:port>/<proto>", Seesaw's
	Vserver                          string
	Service                          string // the service's Name
	Backend                          string
	Address                          string // HostPort
	Weight                           int32
	State                            string
	Severity                         Severity
	Enabled, Healthy, Active, InIPVS bool
	Override                         string // OverrideWord, "" for none
	ActiveConns, InactiveConns       uint32
	PersistentConns                  uint32
	FailingChecks                    []string
	Stats                            Stats
}

// Backend is one backend across the vservers that have it.
type Backend struct {
	FQDN          string
	Addresses     []string
	State         string
	Severity      Severity
	Enabled       bool
	ConfigEnabled bool
	Override      Override
	Healthy       int // healthy destinations
	Active        int // destinations in IPVS at weight > 0
	Destinations  []string
}

// Check is one health check.
type Check struct {
	Name         string // Seesaw's "<TYPE>/<port>"
	Backend      string
	Target       string // what it probes, "ip:port"
	Type, Mode   string
	State        string // "healthy", "unhealthy", "unknown"
	Severity     Severity
	Destinations []string
	Interval     time.Duration
	Last         *Result
	History      []Result // newest last
	Successes    uint64
	Failures     uint64
	Note         string
}

// Result is one run of a check.
type Result struct {
	Time     time.Time
	Duration time.Duration
	Success  bool // this run
	Healthy  bool // the check's state after it
	Message  string
}

// Problem is one thing wrong, in a line.
type Problem struct {
	Severity Severity
	Object   string // "vserver web", "service web TCP 192.0.2.1:80", "destination web/10.0.0.1:80/TCP", "config"
	What     string
}

func (p Problem) String() string { return p.Severity.String() + ": " + p.Object + ": " + p.What }

// OverrideWord is the word for an override state: "" for none (default).
func OverrideWord(s enginepb.OverrideState) string {
	switch s {
	case enginepb.OverrideState_OVERRIDE_DEFAULT:
		return ""
	case enginepb.OverrideState_OVERRIDE_DISABLED:
		return "disabled"
	case enginepb.OverrideState_OVERRIDE_ENABLED:
		return "enabled"
	case enginepb.OverrideState_OVERRIDE_DRAIN:
		return "drain"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "OVERRIDE_"))
}

// ParseOverride is the inverse of OverrideWord, with "default" for none.
func ParseOverride(word string) (enginepb.OverrideState, error) {
	switch strings.ToLower(word) {
	case "default":
		return enginepb.OverrideState_OVERRIDE_DEFAULT, nil
	case "disabled":
		return enginepb.OverrideState_OVERRIDE_DISABLED, nil
	case "enabled":
		return enginepb.OverrideState_OVERRIDE_ENABLED, nil
	case "drain":
		return enginepb.OverrideState_OVERRIDE_DRAIN, nil
	}
	return 0, fmt.Errorf("override state %q: want default, disabled, enabled or drain", word)
}

// HAWord is the word for an HA state: "master", "backup", "disabled",
// "error", "shutdown", "unknown".
func HAWord(s seesawpb.HAState) string {
	switch s {
	case seesawpb.HAState_HA_STATE_LEADER:
		return "master"
	case seesawpb.HAState_HA_STATE_BACKUP:
		return "backup"
	case seesawpb.HAState_HA_STATE_DISABLED:
		return "disabled"
	case seesawpb.HAState_HA_STATE_ERROR:
		return "error"
	case seesawpb.HAState_HA_STATE_SHUTDOWN:
		return "shutdown"
	}
	return "unknown"
}

// HostPort is "ip:port", with brackets for IPv6; the address alone when
// port is 0.
func HostPort(addr string, port uint32) string {
	if port == 0 {
		return addr
	}
	if strings.Contains(addr, ":") {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

func familyWord(f nccpb.Family) string {
	switch f {
	case nccpb.Family_INET:
		return "IPv4"
	case nccpb.Family_INET6:
		return "IPv6"
	}
	return f.String()
}

func protocolWord(p nccpb.Protocol) string {
	return strings.TrimPrefix(p.String(), "PROTOCOL_")
}

// ServiceName names a service by its IPVS identity: "TCP 192.0.2.10:80",
// or "FWM 300 192.0.2.10" for a firewall-mark service.
func ServiceName(s *enginepb.ServiceStatus) string {
	if s.Fwmark != 0 {
		return fmt.Sprintf("FWM %d %s", s.Fwmark, s.Vip)
	}
	return protocolWord(s.Protocol) + " " + HostPort(s.Vip, s.Port)
}

// DestinationStates are the state words a destination can have, for
// renderings that list every state (the ECU's metrics: one series each).
var DestinationStates = []string{StateActive, StateHealthy, StateUnhealthy, StateQuiesced, StateDraining, StateWeight0, StateDisabled}

// DestinationState is the state word and severity of a destination, as
// its row in Vservers has them, for renderings that read the engine's
// message directly.
func DestinationState(d *enginepb.DestinationStatus) (string, Severity) { return destState(d) }

func destState(d *enginepb.DestinationStatus) (string, Severity) {
	switch {
	case !d.Enabled:
		return StateDisabled, Off
	case d.Override == enginepb.OverrideState_OVERRIDE_DRAIN && d.Healthy:
		return StateDraining, Off
	case d.Quiesced:
		return StateQuiesced, Down
	case !d.Healthy:
		return StateUnhealthy, Down
	case d.Active:
		return StateActive, OK
	case d.InIpvs && d.Weight == 0:
		return StateWeight0, Off
	}
	return StateHealthy, OK
}

func serviceState(s *enginepb.ServiceStatus, dests []Destination) (string, Severity) {
	switch {
	case !s.Enabled:
		return StateDisabled, Off
	case !s.Active:
		return StateDown, Down
	}
	for _, d := range dests {
		if d.Severity == Down {
			return StateDegraded, Degraded
		}
	}
	return StateUp, OK
}

func addStats(a *Stats, b Stats) {
	if !b.Known {
		return
	}
	a.Known = true
	a.Connections += b.Connections
	a.PacketsIn += b.PacketsIn
	a.PacketsOut += b.PacketsOut
	a.BytesIn += b.BytesIn
	a.BytesOut += b.BytesOut
	a.CPS += b.CPS
	a.PPSIn += b.PPSIn
	a.PPSOut += b.PPSOut
	a.BPSIn += b.BPSIn
	a.BPSOut += b.BPSOut
}

func override(s enginepb.OverrideState, info *enginepb.OverrideInfo) Override {
	o := Override{Word: OverrideWord(s)}
	if info != nil && o.Word != "" {
		o.SetBy = info.SetBy
		if info.SetAt != nil {
			o.SetAt = info.SetAt.AsTime()
		}
	}
	return o
}

// Vservers turns the engine's vservers into rows, sorted.
func Vservers(in []*enginepb.VserverStatus) []Vserver {
	out := make([]Vserver, 0, len(in))
	for _, v := range in {
		out = append(out, vserver(v))
	}
	slices.SortStableFunc(out, func(a, b Vserver) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func vserver(v *enginepb.VserverStatus) Vserver {
	r := Vserver{
		Name: v.Name, FQDN: v.Fqdn, Enabled: v.Enabled, ConfigEnabled: v.ConfigEnabled,
		Override: override(v.Override, v.OverrideInfo), Warnings: slices.Clone(v.Warnings), Status: v,
	}
	for _, a := range []string{v.Ipv4, v.Ipv6} {
		if a != "" {
			r.Addresses = append(r.Addresses, a)
		}
	}
	for _, vip := range v.Vips {
		st := StateDown
		switch {
		case !vip.Placed:
			st = "not placed"
		case vip.Active:
			st = StateUp
		}
		r.VIPs = append(r.VIPs, VIP{Address: vip.Address, Placement: vip.Placement, Interface: vip.Interface, State: st})
	}
	for _, s := range v.Services {
		svc := Service{
			Name: ServiceName(s), Family: familyWord(s.Family), Protocol: protocolWord(s.Protocol), VIP: s.Vip,
			Port: s.Port, Fwmark: s.Fwmark, Mode: s.Mode, Scheduler: s.Scheduler, OnePacket: s.OnePacket,
			Persistence: s.Persistence, Enabled: s.Enabled, Healthy: s.Healthy, Active: s.Active,
			Low: s.LowWatermark, High: s.HighWatermark, Current: s.CurrentWatermark,
			HealthyDests: int(s.HealthyDestinations), InServiceDest: int(s.InServiceDestinations),
			Stats: stats(s.Stats),
		}
		if s.Fwmark != 0 {
			svc.Protocol = "FWM"
		}
		for _, d := range s.Destinations {
			dd := Destination{
				Name: d.Name, Vserver: v.Name, Service: svc.Name, Backend: d.Backend,
				Address: HostPort(d.Address, d.Port), Weight: d.Weight, Enabled: d.Enabled, Healthy: d.Healthy,
				Active: d.Active, InIPVS: d.InIpvs, Override: OverrideWord(d.Override),
				ActiveConns: d.ActiveConnections, InactiveConns: d.InactiveConnections,
				PersistentConns: d.PersistentConnections, FailingChecks: slices.Clone(d.FailingChecks),
				Stats: stats(d.Stats),
			}
			dd.State, dd.Severity = destState(d)
			if dd.Healthy {
				r.Healthy++
			}
			r.Total++
			svc.Destinations = append(svc.Destinations, dd)
		}
		slices.SortStableFunc(svc.Destinations, func(a, b Destination) int {
			return cmp.Or(cmp.Compare(a.Backend, b.Backend), compareAddr(a.Address, b.Address))
		})
		svc.State, svc.Severity = serviceState(s, svc.Destinations)
		addStats(&r.Stats, svc.Stats)
		r.Services = append(r.Services, svc)
	}
	slices.SortStableFunc(r.Services, func(a, b Service) int {
		return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.Protocol, b.Protocol),
			cmp.Compare(a.Port, b.Port), cmp.Compare(a.Fwmark, b.Fwmark))
	})
	r.State, r.Severity = vserverState(r)
	return r
}

func vserverState(v Vserver) (string, Severity) {
	if !v.Enabled {
		return StateDisabled, Off
	}
	var up, down, degraded int
	for _, s := range v.Services {
		switch s.Severity {
		case Down:
			down++
		case Degraded:
			degraded++
		case OK:
			up++
		}
	}
	switch {
	case len(v.Services) == 0:
		return StateDown, Down
	case down > 0 && up == 0 && degraded == 0:
		return StateDown, Down
	case down > 0 || degraded > 0:
		return StateDegraded, Degraded
	}
	return StateUp, OK
}

// compareAddr orders "ip:port" strings by address, then port; names that
// do not parse sort after, by text.
func compareAddr(a, b string) int {
	pa, ea := netip.ParseAddrPort(a)
	pb, eb := netip.ParseAddrPort(b)
	if ea != nil || eb != nil {
		aa, erra := netip.ParseAddr(a)
		ab, errb := netip.ParseAddr(b)
		if erra == nil && errb == nil {
			return aa.Compare(ab)
		}
		return cmp.Compare(a, b)
	}
	return pa.Compare(pb)
}

// Destinations flattens the vservers' destinations, in the vservers'
// order.
func Destinations(vs []Vserver) []Destination {
	var out []Destination
	for _, v := range vs {
		for _, s := range v.Services {
			out = append(out, s.Destinations...)
		}
	}
	return out
}

// Backends turns the engine's backends into rows, sorted by fqdn.
func Backends(in []*enginepb.BackendStatus) []Backend {
	out := make([]Backend, 0, len(in))
	for _, b := range in {
		r := Backend{
			FQDN: b.Fqdn, Enabled: b.Enabled, ConfigEnabled: b.ConfigEnabled,
			Override: override(b.Override, b.OverrideInfo), Healthy: int(b.HealthyDestinations),
			Active: int(b.ActiveDestinations), Destinations: slices.Sorted(slices.Values(b.Destinations)),
		}
		for _, a := range []string{b.Ipv4, b.Ipv6} {
			if a != "" {
				r.Addresses = append(r.Addresses, a)
			}
		}
		n := len(b.Destinations)
		switch {
		case !b.Enabled:
			r.State, r.Severity = StateDisabled, Off
		case b.Override == enginepb.OverrideState_OVERRIDE_DRAIN:
			r.State, r.Severity = StateDraining, Off
		case n > 0 && r.Healthy == 0:
			r.State, r.Severity = StateDown, Down
		case r.Healthy < n:
			r.State, r.Severity = StateDegraded, Degraded
		default:
			r.State, r.Severity = StateUp, OK
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Backend) int { return cmp.Compare(a.FQDN, b.FQDN) })
	return out
}

func result(r *hcpb.Result) Result {
	out := Result{Success: r.Success, Healthy: r.Healthy, Message: r.Message}
	if r.Time != nil {
		out.Time = r.Time.AsTime()
	}
	if r.Duration != nil {
		out.Duration = r.Duration.AsDuration()
	}
	return out
}

// Checks turns the engine's checks into rows, sorted by backend, then
// name, then target.
func Checks(in []*enginepb.CheckView) []Check {
	out := make([]Check, 0, len(in))
	for _, c := range in {
		r := Check{
			Name: c.Name, Backend: c.Backend, Destinations: slices.Clone(c.Destinations),
			Successes: c.Successes, Failures: c.Failures, Note: c.Note,
		}
		if k := c.Check; k != nil {
			r.Target = HostPort(k.Address, k.Port)
			r.Type = strings.TrimPrefix(k.Type.String(), "CHECK_TYPE_")
			r.Mode = strings.TrimPrefix(k.Mode.String(), "CHECK_MODE_")
			if k.Interval != nil {
				r.Interval = k.Interval.AsDuration()
			}
		}
		switch {
		case !c.Known:
			r.State, r.Severity = StateUnknown, Degraded
		case c.Healthy:
			r.State, r.Severity = StateHealthy, OK
		default:
			r.State, r.Severity = StateUnhealthy, Down
		}
		if c.Last != nil {
			l := result(c.Last)
			r.Last = &l
		}
		for _, h := range c.History {
			r.History = append(r.History, result(h))
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Check) int {
		return cmp.Or(cmp.Compare(a.Backend, b.Backend), cmp.Compare(a.Name, b.Name), compareAddr(a.Target, b.Target))
	})
	return out
}

// WorstFirst returns rows reordered by severity, worst first; rows of one
// severity keep their order.
func WorstFirst[T any](rows []T, sev func(T) Severity) []T {
	out := slices.Clone(rows)
	slices.SortStableFunc(out, func(a, b T) int { return cmp.Compare(sev(b), sev(a)) })
	return out
}

// Problems lists what is wrong with the vservers and the config, worst
// first: vservers, services and destinations that are down or degraded,
// overrides and drains in force, warnings. A healthy, unoverridden cluster
// has none.
func Problems(vs []Vserver, configWarnings []string) []Problem {
	var out []Problem
	add := func(s Severity, obj, what string) { out = append(out, Problem{s, obj, what}) }
	for _, v := range vs {
		obj := "vserver " + v.Name
		switch {
		case v.Override.Word != "":
			what := "override " + v.Override.Word
			if v.Override.SetBy != "" {
				what += ", set by " + v.Override.SetBy
			}
			add(Off, obj, what)
		case !v.ConfigEnabled && !v.Enabled:
			add(Off, obj, "disabled in the config")
		case !v.Enabled:
			add(Off, obj, "disabled: this node serves no vservers")
		}
		if v.Enabled && len(v.Services) == 0 {
			add(Down, obj, "no services")
		}
		for _, s := range v.Services {
			sobj := "service " + v.Name + " " + s.Name
			if s.Severity == Down {
				add(Down, sobj, fmt.Sprintf("down: %d of %d destinations healthy", s.HealthyDests, len(s.Destinations)))
			}
			for _, d := range s.Destinations {
				dobj := "destination " + d.Name
				switch d.State {
				case StateUnhealthy, StateQuiesced:
					what := d.State
					if len(d.FailingChecks) > 0 {
						what += ": " + strings.Join(d.FailingChecks, "; ")
					}
					sev := Degraded
					if s.Severity == Down {
						sev = Down
					}
					add(sev, dobj, what)
				case StateDraining:
					add(Off, dobj, fmt.Sprintf("draining: %d active connections", d.ActiveConns))
				case StateDisabled:
					if d.Override != "" {
						add(Off, dobj, "override "+d.Override)
					}
				}
			}
		}
		for _, w := range v.Warnings {
			add(Degraded, obj, w)
		}
	}
	for _, w := range configWarnings {
		add(Degraded, "config", w)
	}
	slices.SortStableFunc(out, func(a, b Problem) int { return cmp.Compare(b.Severity, a.Severity) })
	return out
}

// Summary counts vservers by state.
type Summary struct {
	Vservers, Up, Degraded, Down, Off int
}

// Summarize counts vs by severity.
func Summarize(vs []Vserver) Summary {
	s := Summary{Vservers: len(vs)}
	for _, v := range vs {
		switch v.Severity {
		case OK:
			s.Up++
		case Degraded:
			s.Degraded++
		case Down:
			s.Down++
		case Off:
			s.Off++
		}
	}
	return s
}

func (s Summary) String() string {
	return fmt.Sprintf("%d vservers: %d up, %d degraded, %d down, %d disabled", s.Vservers, s.Up, s.Degraded, s.Down, s.Off)
}

// Count is n in at most five characters: 999, 1.2k, 34.5M, 1.2G.
func Count(n uint64) string {
	return scaled(n, 1000, []string{"", "k", "M", "G", "T", "P"})
}

// Bytes is a byte count in at most six characters: 999B, 1.2KiB, 3.4MiB.
func Bytes(n uint64) string {
	return scaled(n, 1024, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"})
}

// Rate is a per-second figure: "1.2k/s".
func Rate(n uint64) string { return Count(n) + "/s" }

func scaled(n, base uint64, units []string) string {
	if n < base {
		return fmt.Sprintf("%d%s", n, units[0])
	}
	f := float64(n)
	i := 0
	for f >= float64(base) && i < len(units)-1 {
		f /= float64(base)
		i++
	}
	if f < 99.95 {
		return fmt.Sprintf("%.1f%s", f, units[i])
	}
	return fmt.Sprintf("%.0f%s", f, units[i])
}

// Age is how long ago t was, from now, in the largest two units: "3d4h",
// "5m2s", "40s"; "-" for a zero t.
func Age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return Duration(now.Sub(t))
}

// Duration is d in the largest two units: "3d4h", "5m2s", "1.5s", "250ms".
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}
