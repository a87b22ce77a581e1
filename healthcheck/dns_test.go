package healthcheck

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

const testZone = `
$ORIGIN example.com.
@	300 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 3600 600 86400 300
@	300 IN NS ns1.example.com.
@	300 IN NS ns2.example.com.
@	300 IN MX 10 mail.example.com.
@	300 IN MX 20 backup-mail.example.com.
@	300 IN TXT "v=spf1 -all"
www	300 IN A 192.0.2.10
www	300 IN A 192.0.2.11
www	300 IN AAAA 2001:db8::10
alias	300 IN CNAME www.example.com.
`

// dnsServer answers from testZone on loopback over UDP and TCP (the same
// port). "big.example.com" has so many TXT records that its UDP answer is
// truncated. It counts the queries each transport got.
type dnsServer struct {
	addr     netip.AddrPort
	udp, tcp atomic.Int32
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	return startDNSAt(t, "127.0.0.1:0")
}

// startDNSAt is startDNS on host (address:port).
func startDNSAt(t *testing.T, host string) *dnsServer {
	t.Helper()
	records := map[string][]dns.RR{}
	zp := dns.NewZoneParser(strings.NewReader(testZone), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		k := strings.ToLower(rr.Header().Name) + "/" + dns.TypeToString[rr.Header().Rrtype]
		records[k] = append(records[k], rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		rr, _ := dns.NewRR("big.example.com. 300 IN TXT \"" + strings.Repeat("x", 50) + string(rune('a'+i%26)) + "\"")
		records["big.example.com./TXT"] = append(records["big.example.com./TXT"], rr)
	}
	s := &dnsServer{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		udp := w.LocalAddr().Network() == "udp"
		if udp {
			s.udp.Add(1)
		} else {
			s.tcp.Add(1)
		}
		m := new(dns.Msg)
		m.SetReply(q)
		qq := q.Question[0]
		name := strings.ToLower(qq.Name)
		if name == "silent.example.com." {
			return
		}
		k := name + "/" + dns.TypeToString[qq.Qtype]
		m.Answer = records[k]
		if cn := records[name+"/CNAME"]; len(m.Answer) == 0 && len(cn) > 0 {
			m.Answer = append(m.Answer, cn...)
			m.Answer = append(m.Answer, records[strings.ToLower(cn[0].(*dns.CNAME).Target)+"/"+dns.TypeToString[qq.Qtype]]...)
		}
		if len(m.Answer) == 0 && !strings.HasSuffix(name, "example.com.") {
			m.Rcode = dns.RcodeNameError
		}
		if udp && m.Len() > dns.MinMsgSize {
			m.Truncate(dns.MinMsgSize)
		}
		w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", host)
	if err != nil {
		t.Fatal(err)
	}
	s.addr = addrOf(pc.LocalAddr())
	l, err := net.Listen("tcp", s.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	us := &dns.Server{PacketConn: pc, Handler: h}
	ts := &dns.Server{Listener: l, Handler: h}
	var wg sync.WaitGroup
	wg.Go(func() { us.ActivateAndServe() })
	wg.Go(func() { ts.ActivateAndServe() })
	t.Cleanup(func() { us.Shutdown(); ts.Shutdown(); wg.Wait() })
	return s
}

func TestDNS(t *testing.T) {
	t.Parallel()
	s := startDNS(t)
	cases := []struct {
		name, qtype, receive string
		ok                   bool
		msg                  string
	}{
		{"www.example.com", "A", "192.0.2.11", true, "got 192.0.2.11"},
		{"www.example.com", "", "192.0.2.10", true, ""}, // A by default
		{"www.example.com", "a", "", true, "got a A answer"},
		{"www.example.com", "A", "192.0.2.99", false, "wrong answer: got 192.0.2.10, 192.0.2.11, want 192.0.2.99"},
		{"www.example.com", "AAAA", "2001:db8:0::10", true, ""},
		{"www.example.com", "AAAA", "2001:db8::11", false, "wrong answer"},
		{"alias.example.com", "CNAME", "www.example.com", true, ""},
		{"alias.example.com", "A", "192.0.2.10", true, ""}, // through the CNAME
		{"example.com", "NS", "NS2.example.com.", true, ""},
		{"example.com", "NS", "ns3.example.com", false, "wrong answer"},
		{"example.com", "MX", "mail.example.com", true, ""},
		{"example.com", "MX", "20 backup-mail.example.com", true, ""},
		{"example.com", "MX", "10 backup-mail.example.com", false, "wrong answer: got 10 mail.example.com., 20 backup-mail.example.com."},
		{"example.com", "SOA", "ns1.example.com", true, ""},
		{"example.com", "SOA", "ns1.example.com. hostmaster.example.com. 2024010101 3600 600 86400 300", true, ""},
		{"example.com", "SOA", "ns1.example.com hostmaster.example.com 2024010102 3600 600 86400 300", false, "wrong answer"},
		{"example.com", "TXT", "v=spf1 -all", true, ""},
		{"example.com", "TXT", "v=spf1 +all", false, "wrong answer"},
		{"nothing.example.com", "A", "", false, "NOERROR, but no A record in the answer"},
		{"www.example.org", "A", "", false, "answer is NXDOMAIN"},
		{"silent.example.com", "A", "", false, "no reply within 300ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/"+tc.qtype+"/"+tc.receive, func(t *testing.T) {
			c := spec(hcpb.CheckType_DNS, s.addr)
			c.Send, c.Method, c.Receive = tc.name, tc.qtype, tc.receive
			if tc.name == "silent.example.com" {
				short(c)
			}
			want(t, runOnce(t, c, nil), tc.ok, tc.msg)
		})
	}
}

// TestDNSTruncated: an answer too big for UDP comes truncated, and the
// check asks again over TCP.
func TestDNSTruncated(t *testing.T) {
	t.Parallel()
	s := startDNS(t)
	c := spec(hcpb.CheckType_DNS, s.addr)
	c.Send, c.Method, c.Receive = "big.example.com", "TXT", strings.Repeat("x", 50)+"n"
	want(t, runOnce(t, c, nil), true)
	if u, tc := s.udp.Load(), s.tcp.Load(); u != 1 || tc != 1 {
		t.Errorf("queries: %d over UDP, %d over TCP; want one each", u, tc)
	}
}

func TestDNSRefused(t *testing.T) {
	t.Parallel()
	c := spec(hcpb.CheckType_DNS, closedPort(t, "udp4"))
	c.Send = "www.example.com"
	want(t, runOnce(t, c, nil), false, "connection refused (port unreachable)")
}

func TestDNSInvalid(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ send, method, receive, err string }{
		{"", "A", "", "needs send"},
		{"example.com", "PTR", "", "not a DNS query type"},
		{"example.com", "A", "2001:db8::1", "not an A address"},
		{"example.com", "AAAA", "192.0.2.1", "not an AAAA address"},
		{"example.com", "MX", "x y z", "preference name"},
		{"example.com", "SOA", "a b", "SOA record"},
	} {
		_, err := NewChecker(&hcpb.Check{Type: hcpb.CheckType_DNS, Address: "127.0.0.1", Send: c.send, Method: c.method, Receive: c.receive}, nil)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v: error %v, want %q", c, err, c.err)
		}
	}
}
