package view

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

func dest(vs, addr string, port uint32, backend string, healthy, active bool) *enginepb.DestinationStatus {
	return &enginepb.DestinationStatus{
		Name: fmt.Sprintf("%s/%s/TCP", vs, HostPort(addr, port)), Backend: backend, Address: addr, Port: port,
		Weight: 1, Enabled: true, Healthy: healthy, Active: active, InIpvs: active,
	}
}

// cluster is four vservers, one in each state, given out of order.
func cluster() []*enginepb.VserverStatus {
	at := timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	return []*enginepb.VserverStatus{
		{
			Name: "d-off", Ipv4: "192.0.2.4", Enabled: false, ConfigEnabled: true,
			Override:     enginepb.OverrideState_OVERRIDE_DISABLED,
			OverrideInfo: &enginepb.OverrideInfo{State: enginepb.OverrideState_OVERRIDE_DISABLED, SetBy: "alice (uid 1000)", SetAt: at},
			Services: []*enginepb.ServiceStatus{{Family: nccpb.Family_INET, Protocol: nccpb.Protocol_TCP, Vip: "192.0.2.4", Port: 80,
				Destinations: []*enginepb.DestinationStatus{dest("d-off", "10.0.0.1", 80, "be1.", true, false)}}},
		},
		{
			Name: "b-dns", Ipv4: "192.0.2.2", Ipv6: "2001:db8::2", Enabled: true, ConfigEnabled: true,
			Warnings: []string{"no IPVS counters: the NCC did not answer"},
			Services: []*enginepb.ServiceStatus{
				{Family: nccpb.Family_INET6, Protocol: nccpb.Protocol_UDP, Vip: "2001:db8::2", Port: 53, Enabled: true, Active: true, Healthy: true,
					Destinations: []*enginepb.DestinationStatus{dest("b-dns", "2001:db8::10", 53, "be1.", true, true)}},
				{Family: nccpb.Family_INET, Protocol: nccpb.Protocol_UDP, Vip: "192.0.2.2", Port: 53, Enabled: true, Active: true, Healthy: true,
					HealthyDestinations: 1, InServiceDestinations: 2,
					Stats: &nccpb.Stats{Connections: 10, Cps: 2},
					Destinations: []*enginepb.DestinationStatus{
						func() *enginepb.DestinationStatus {
							d := dest("b-dns", "10.0.0.2", 53, "be2.", false, false)
							d.FailingChecks = []string{"DNS/53: timeout"}
							return d
						}(),
						dest("b-dns", "10.0.0.1", 53, "be1.", true, true),
					}},
			},
		},
		{
			Name: "c-down", Ipv4: "192.0.2.3", Enabled: true, ConfigEnabled: true,
			Services: []*enginepb.ServiceStatus{{Family: nccpb.Family_INET, Protocol: nccpb.Protocol_TCP, Vip: "192.0.2.3", Port: 443, Enabled: true,
				HighWatermark: 0.5, InServiceDestinations: 1,
				Destinations: []*enginepb.DestinationStatus{dest("c-down", "10.0.0.3", 443, "be3.", false, false)}}},
		},
		{
			Name: "a-web", Ipv4: "192.0.2.1", Enabled: true, ConfigEnabled: true,
			Vips: []*enginepb.VIPStatus{{Address: "192.0.2.1/24", Placement: "lb-interface", Interface: "eth1", Active: true, Placed: true}},
			Services: []*enginepb.ServiceStatus{
				{Family: nccpb.Family_INET, Fwmark: 7, Vip: "192.0.2.1", Enabled: true, Active: true, Healthy: true,
					Stats: &nccpb.Stats{Connections: 5, Cps: 1},
					Destinations: []*enginepb.DestinationStatus{
						func() *enginepb.DestinationStatus {
							d := dest("a-web", "10.0.0.1", 0, "be1.", true, false)
							d.Override, d.Weight, d.InIpvs, d.ActiveConnections = enginepb.OverrideState_OVERRIDE_DRAIN, 0, true, 3
							return d
						}(),
						dest("a-web", "10.0.0.10", 0, "be2.", true, true),
						dest("a-web", "10.0.0.9", 0, "be2.", true, true),
					}},
			},
		},
	}
}

// render is a compact text of the rows, as a rendering would use them.
func render(vs []Vserver) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "%s %s/%s %v override=%q by=%q %d/%d healthy conns=%d\n", v.Name, v.State, v.Severity,
			v.Addresses, v.Override.Word, v.Override.SetBy, v.Healthy, v.Total, v.Stats.Connections)
		for _, vip := range v.VIPs {
			fmt.Fprintf(&b, "  vip %s %s %s %s\n", vip.Address, vip.Placement, vip.Interface, vip.State)
		}
		for _, s := range v.Services {
			fmt.Fprintf(&b, "  %s %s %s/%s\n", s.Family, s.Name, s.State, s.Severity)
			for _, d := range s.Destinations {
				fmt.Fprintf(&b, "    %s %s %s/%s w%d %q %v\n", d.Backend, d.Address, d.State, d.Severity, d.Weight, d.Override, d.FailingChecks)
			}
		}
	}
	return b.String()
}

func TestVservers(t *testing.T) {
	got := render(Vservers(cluster()))
	want := `a-web up/ok [192.0.2.1] override="" by="" 3/3 healthy conns=5
  vip 192.0.2.1/24 lb-interface eth1 up
  IPv4 FWM 7 192.0.2.1 up/ok
    be1. 10.0.0.1 draining/off w0 "drain" []
    be2. 10.0.0.9 active/ok w1 "" []
    be2. 10.0.0.10 active/ok w1 "" []
b-dns degraded/degraded [192.0.2.2 2001:db8::2] override="" by="" 2/3 healthy conns=10
  IPv4 UDP 192.0.2.2:53 degraded/degraded
    be1. 10.0.0.1:53 active/ok w1 "" []
    be2. 10.0.0.2:53 unhealthy/down w1 "" [DNS/53: timeout]
  IPv6 UDP [2001:db8::2]:53 up/ok
    be1. [2001:db8::10]:53 active/ok w1 "" []
c-down down/down [192.0.2.3] override="" by="" 0/1 healthy conns=0
  IPv4 TCP 192.0.2.3:443 down/down
    be3. 10.0.0.3:443 unhealthy/down w1 "" []
d-off disabled/off [192.0.2.4] override="disabled" by="alice (uid 1000)" 1/1 healthy conns=0
  IPv4 TCP 192.0.2.4:80 disabled/off
    be1. 10.0.0.1:80 healthy/ok w1 "" []
`
	if got != want {
		t.Errorf("Vservers:\n%s\nwant:\n%s", got, want)
	}
}

func TestProblemsWorstFirst(t *testing.T) {
	vs := Vservers(cluster())
	var lines []string
	for _, p := range Problems(vs, []string{"cluster.pb:3:1: unknown field"}) {
		lines = append(lines, p.String())
	}
	got := strings.Join(lines, "\n")
	want := `down: service c-down TCP 192.0.2.3:443: down: 0 of 1 destinations healthy
down: destination c-down/10.0.0.3:443/TCP: unhealthy
degraded: destination b-dns/10.0.0.2:53/TCP: unhealthy: DNS/53: timeout
degraded: vserver b-dns: no IPVS counters: the NCC did not answer
degraded: config: cluster.pb:3:1: unknown field
off: destination a-web/10.0.0.1/TCP: draining: 3 active connections
off: vserver d-off: override disabled, set by alice (uid 1000)`
	if got != want {
		t.Errorf("Problems:\n%s\nwant:\n%s", got, want)
	}
	var names []string
	for _, v := range WorstFirst(vs, func(v Vserver) Severity { return v.Severity }) {
		names = append(names, v.Name)
	}
	if g := strings.Join(names, " "); g != "c-down b-dns d-off a-web" {
		t.Errorf("WorstFirst: %s", g)
	}
	if s := Summarize(vs).String(); s != "4 vservers: 1 up, 1 degraded, 1 down, 1 disabled" {
		t.Errorf("Summarize: %s", s)
	}
	if p := Problems(Vservers(cluster()[3:]), nil); len(p) != 1 || p[0].Severity != Off {
		t.Errorf("a serving vserver with one drain: %v", p)
	}
}

func TestDestinationsFlatten(t *testing.T) {
	ds := Destinations(Vservers(cluster()))
	if len(ds) != 8 || ds[0].Vserver != "a-web" || ds[7].Vserver != "d-off" || ds[0].Service != "FWM 7 192.0.2.1" {
		t.Errorf("Destinations: %+v", ds)
	}
}

func TestBackends(t *testing.T) {
	bs := Backends([]*enginepb.BackendStatus{
		{Fqdn: "c.", Enabled: true, ConfigEnabled: true, Destinations: []string{"x", "y"}, HealthyDestinations: 1},
		{Fqdn: "a.", Enabled: false, ConfigEnabled: true, Override: enginepb.OverrideState_OVERRIDE_DISABLED,
			OverrideInfo: &enginepb.OverrideInfo{SetBy: "root"}},
		{Fqdn: "b.", Enabled: true, ConfigEnabled: true, Destinations: []string{"z"}, HealthyDestinations: 1,
			Override: enginepb.OverrideState_OVERRIDE_DRAIN},
		{Fqdn: "d.", Enabled: true, ConfigEnabled: true, Destinations: []string{"z"}},
		{Fqdn: "e.", Ipv4: "10.0.0.5", Enabled: true, ConfigEnabled: true, Destinations: []string{"z"}, HealthyDestinations: 1},
	})
	var got []string
	for _, b := range bs {
		got = append(got, fmt.Sprintf("%s %s/%s %q %q %v", b.FQDN, b.State, b.Severity, b.Override.Word, b.Override.SetBy, b.Addresses))
	}
	want := `a. disabled/off "disabled" "root" []
b. draining/off "drain" "" []
c. degraded/degraded "" "" []
d. down/down "" "" []
e. up/ok "" "" [10.0.0.5]`
	if g := strings.Join(got, "\n"); g != want {
		t.Errorf("Backends:\n%s\nwant:\n%s", g, want)
	}
}

func TestChecks(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cs := Checks([]*enginepb.CheckView{
		{Name: "HTTP/80", Backend: "b.", Known: true, Healthy: false,
			Check:    &hcpb.Check{Type: hcpb.CheckType_HTTP, Mode: hcpb.CheckMode_DSR, Address: "10.0.0.2", Port: 80, Interval: durationpb.New(5 * time.Second)},
			Last:     &hcpb.Result{Success: false, Message: "connection refused", Time: timestamppb.New(at), Duration: durationpb.New(3 * time.Millisecond)},
			History:  []*hcpb.Result{{Success: true, Healthy: true, Message: "200 OK"}, {Success: false, Message: "connection refused"}},
			Failures: 1, Successes: 1},
		{Name: "TCP/80", Backend: "a.", Known: false, Check: &hcpb.Check{Type: hcpb.CheckType_TCP, Mode: hcpb.CheckMode_PLAIN, Address: "10.0.0.1", Port: 80}},
		{Name: "HTTP/80", Backend: "a.", Known: true, Healthy: true, Check: &hcpb.Check{Type: hcpb.CheckType_HTTP, Address: "2001:db8::1", Port: 80}},
	})
	var got []string
	for _, c := range cs {
		line := fmt.Sprintf("%s %s %s %s %s %s/%s %v hist=%d", c.Backend, c.Name, c.Type, c.Mode, c.Target, c.State, c.Severity, c.Interval, len(c.History))
		if c.Last != nil {
			line += fmt.Sprintf(" last=%q %v %v", c.Last.Message, c.Last.Duration, c.Last.Time.Equal(at))
		}
		got = append(got, line)
	}
	want := `a. HTTP/80 HTTP UNSPECIFIED [2001:db8::1]:80 healthy/ok 0s hist=0
a. TCP/80 TCP PLAIN 10.0.0.1:80 unknown/degraded 0s hist=0
b. HTTP/80 HTTP DSR 10.0.0.2:80 unhealthy/down 5s hist=2 last="connection refused" 3ms true`
	if g := strings.Join(got, "\n"); g != want {
		t.Errorf("Checks:\n%s\nwant:\n%s", g, want)
	}
}

func TestWords(t *testing.T) {
	for _, s := range []enginepb.OverrideState{0, 1, 2, 3} {
		w := OverrideWord(s)
		if w == "" {
			w = "default"
		}
		back, err := ParseOverride(w)
		if err != nil || back != s {
			t.Errorf("ParseOverride(OverrideWord(%v)) = %v, %v", s, back, err)
		}
	}
	if _, err := ParseOverride("off"); err == nil || !strings.Contains(err.Error(), `"off"`) {
		t.Errorf("ParseOverride(off): %v", err)
	}
	if HAWord(seesawpb.HAState_HA_STATE_LEADER) != "master" || HAWord(seesawpb.HAState_HA_STATE_BACKUP) != "backup" || HAWord(99) != "unknown" {
		t.Error("HAWord")
	}
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1.0k", 1234: "1.2k", 99_949: "99.9k", 99_960: "100k", 123_456_789: "123M", 5e12: "5.0T"} {
		if g := Count(n); g != want {
			t.Errorf("Count(%d) = %q, want %q", n, g, want)
		}
	}
	if g := Bytes(1536); g != "1.5KiB" {
		t.Errorf("Bytes(1536) = %q", g)
	}
	if g := Rate(2500); g != "2.5k/s" {
		t.Errorf("Rate = %q", g)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		250 * time.Millisecond: "250ms", 1500 * time.Millisecond: "1.5s", 42 * time.Second: "42s",
		5*time.Minute + 2*time.Second: "5m2s", 3*time.Hour + 4*time.Minute: "3h4m", 52 * time.Hour: "2d4h", -time.Second: "0s",
	} {
		if g := Age(now.Add(-d), now); g != want {
			t.Errorf("Age(%v) = %q, want %q", d, g, want)
		}
	}
	if Age(time.Time{}, now) != "-" {
		t.Error("Age of zero time")
	}
}

// TestDestinationStatesComplete: every state DestinationState gives is in
// DestinationStates, so a rendering listing them all misses none.
func TestDestinationStatesComplete(t *testing.T) {
	for _, d := range []*enginepb.DestinationStatus{
		{}, {Enabled: true}, {Enabled: true, Healthy: true}, {Enabled: true, Healthy: true, Active: true},
		{Enabled: true, Quiesced: true}, {Enabled: true, Healthy: true, InIpvs: true},
		{Enabled: true, Healthy: true, Override: enginepb.OverrideState_OVERRIDE_DRAIN},
	} {
		st, _ := DestinationState(d)
		if !slices.Contains(DestinationStates, st) {
			t.Errorf("%v: state %q is not in DestinationStates", d, st)
		}
	}
}
