package appliance

import (
	"net/netip"
	"strings"
	"testing"
)

// The harness's pure parts, on any machine.

func TestParseIPVS(t *testing.T) {
	const out = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.0.2.100:80 rr
  -> 198.51.100.11:80             Masq    1      0          0
  -> 198.51.100.12:80             Masq    0      3          1
UDP  [2001:db8:0:1::100]:80 rr
  -> [2001:db8:0:2::11]:80        Masq    1      0          0
TCP  192.0.2.101:80 wlc persistent 300
FWM  7 rr
  -> 198.51.100.11:0              Route   1      0          0
`
	tab, err := ParseIPVS(out)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range tab.Services {
		keys = append(keys, s.Key)
	}
	if got, want := strings.Join(keys, ","), "TCP 192.0.2.100:80,UDP [2001:db8:0:1::100]:80,TCP 192.0.2.101:80,FWM 7"; got != want {
		t.Errorf("services %s, want %s", got, want)
	}
	s := tab.Service(ServiceKey("TCP", netip.MustParseAddr("192.0.2.100"), 80))
	if s == nil || s.Scheduler != "rr" || len(s.Dests) != 2 {
		t.Fatalf("TCP 192.0.2.100:80 = %+v", s)
	}
	if d, ok := s.Dest(netip.MustParseAddr("198.51.100.12")); !ok || d.Weight != 0 || d.Forward != "Masq" || d.Addr.Port() != 80 {
		t.Errorf("198.51.100.12 = %+v, %v; want Masq weight 0 on port 80", d, ok)
	}
	if got := tab.Holding(netip.MustParseAddr("198.51.100.11")); strings.Join(got, ",") != "TCP 192.0.2.100:80 weight 1,FWM 7 weight 1" {
		t.Errorf("Holding(198.51.100.11) = %v", got)
	}
	if s := tab.Service(ServiceKey("TCP", netip.MustParseAddr("192.0.2.101"), 80)); s == nil || len(s.Dests) != 0 {
		t.Errorf("a service without destinations: %+v", s)
	}
	if _, err := ParseIPVS("  -> 198.51.100.11:80 Masq 1 0 0\n"); err == nil {
		t.Error("a destination before any service parsed")
	}
}

func TestParseAnswer(t *testing.T) {
	a, err := parseAnswer("backend1 192.0.2.4 198.51.100.11\n")
	if err != nil || a.Backend != "backend1" || a.Peer != netip.MustParseAddr("192.0.2.4") || a.Local != netip.MustParseAddr("198.51.100.11") {
		t.Errorf("parseAnswer = %+v, %v", a, err)
	}
	for _, bad := range []string{"", "backend1 192.0.2.4", "backend1 x 198.51.100.11"} {
		if _, err := parseAnswer(bad); err == nil {
			t.Errorf("parseAnswer(%q) did not fail", bad)
		}
	}
}
