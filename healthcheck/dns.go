package healthcheck

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// dnsChecker asks the backend, as a DNS server, for `send` (the name) of
// type `method` (A, AAAA, CNAME, NS, MX, SOA, TXT; default A) with
// recursion desired. The answer must be NOERROR with at least one record of
// that type, and when `receive` is given one of them must match it: an
// address for A/AAAA, a name for CNAME/NS, "name" or "pref name" for MX,
// the primary server or the whole record for SOA, the text for TXT. A
// truncated UDP answer is asked again over TCP.
//
// Seesaw v2 compared A and AAAA answers only and never retried over TCP.
type dnsChecker struct {
	t       *target
	what    string
	timeout time.Duration
	qname   string
	qtype   uint16
	want    string
	match   func(dns.RR) bool // nil: any record of the type
	okMsg   string
}

var dnsTypes = map[string]uint16{
	"A": dns.TypeA, "AAAA": dns.TypeAAAA, "CNAME": dns.TypeCNAME, "NS": dns.TypeNS,
	"MX": dns.TypeMX, "SOA": dns.TypeSOA, "TXT": dns.TypeTXT,
}

func newDNSChecker(c *hcpb.Check, t *target) (*dnsChecker, error) {
	if c.GetSend() == "" {
		return nil, fmt.Errorf("healthcheck: a DNS check needs send (the name to query)")
	}
	if _, ok := dns.IsDomainName(c.GetSend()); !ok {
		return nil, fmt.Errorf("healthcheck: send %q is not a domain name", c.GetSend())
	}
	qt := strings.ToUpper(c.GetMethod())
	if qt == "" {
		qt = "A"
	}
	qtype, ok := dnsTypes[qt]
	if !ok {
		return nil, fmt.Errorf("healthcheck: method %q is not a DNS query type this checker answers (A, AAAA, CNAME, NS, MX, SOA, TXT)", c.GetMethod())
	}
	k := &dnsChecker{t: t, timeout: timeoutOf(c), qname: dns.Fqdn(c.GetSend()), qtype: qtype, want: c.GetReceive()}
	k.what = fmt.Sprintf("DNS %s %s at %s", qt, k.qname, t.label(c.GetMode()))
	if err := k.setMatch(); err != nil {
		return nil, err
	}
	if k.want == "" {
		k.okMsg = fmt.Sprintf("%s: got a %s answer", k.what, qt)
	} else {
		k.okMsg = fmt.Sprintf("%s: got %s", k.what, k.want)
	}
	return k, nil
}

func (k *dnsChecker) setMatch() error {
	want := strings.TrimSpace(k.want)
	if want == "" {
		return nil
	}
	sameName := func(a, b string) bool { return strings.EqualFold(dns.Fqdn(a), dns.Fqdn(b)) }
	switch k.qtype {
	case dns.TypeA, dns.TypeAAAA:
		ip, err := netip.ParseAddr(want)
		if err != nil || ip.Is4() != (k.qtype == dns.TypeA) {
			return fmt.Errorf("healthcheck: receive %q is not an %s address", want, dns.TypeToString[k.qtype])
		}
		k.match = func(rr dns.RR) bool {
			var got netip.Addr
			switch r := rr.(type) {
			case *dns.A:
				got, _ = netip.AddrFromSlice(r.A.To4())
			case *dns.AAAA:
				got, _ = netip.AddrFromSlice(r.AAAA.To16())
			}
			return got == ip
		}
	case dns.TypeCNAME:
		k.match = func(rr dns.RR) bool { return sameName(rr.(*dns.CNAME).Target, want) }
	case dns.TypeNS:
		k.match = func(rr dns.RR) bool { return sameName(rr.(*dns.NS).Ns, want) }
	case dns.TypeMX:
		f := strings.Fields(want)
		pref := -1
		host := f[0]
		if len(f) == 2 {
			p, err := strconv.ParseUint(f[0], 10, 16)
			if err != nil {
				return fmt.Errorf("healthcheck: receive %q is not \"name\" or \"preference name\"", want)
			}
			pref, host = int(p), f[1]
		} else if len(f) > 2 {
			return fmt.Errorf("healthcheck: receive %q is not \"name\" or \"preference name\"", want)
		}
		k.match = func(rr dns.RR) bool {
			mx := rr.(*dns.MX)
			return sameName(mx.Mx, host) && (pref < 0 || int(mx.Preference) == pref)
		}
	case dns.TypeSOA:
		f := strings.Fields(want)
		if len(f) != 1 && len(f) != 7 {
			return fmt.Errorf("healthcheck: receive %q is neither a primary server name nor a whole SOA record (7 fields)", want)
		}
		k.match = func(rr dns.RR) bool {
			soa := rr.(*dns.SOA)
			if len(f) == 1 {
				return sameName(soa.Ns, f[0])
			}
			got := strings.Fields(rdata(soa))
			if len(got) != 7 || !sameName(got[0], f[0]) || !sameName(got[1], f[1]) {
				return false
			}
			for i := 2; i < 7; i++ {
				if got[i] != f[i] {
					return false
				}
			}
			return true
		}
	case dns.TypeTXT:
		text := k.want // spaces inside the text matter
		k.match = func(rr dns.RR) bool { return strings.Join(rr.(*dns.TXT).Txt, "") == text }
	}
	return nil
}

// rdata is a record without its owner, TTL, class and type.
func rdata(rr dns.RR) string {
	return strings.TrimSpace(strings.TrimPrefix(rr.String(), rr.Header().String()))
}

func (k *dnsChecker) Check(ctx context.Context) Outcome {
	q := new(dns.Msg)
	q.SetQuestion(k.qname, k.qtype)
	q.RecursionDesired = true
	r, msg := k.exchange(ctx, "udp", q)
	if r != nil && r.Truncated {
		r, msg = k.exchange(ctx, "tcp", q)
		if r == nil {
			msg = "the UDP answer was truncated; over TCP: " + msg
		}
	}
	if r == nil {
		return fail(k.what, msg)
	}
	if r.Rcode != dns.RcodeSuccess {
		return fail(k.what, "answer is "+dns.RcodeToString[r.Rcode])
	}
	var got []string
	for _, rr := range r.Answer {
		if rr.Header().Rrtype != k.qtype {
			continue
		}
		if k.match == nil || k.match(rr) {
			return Outcome{OK: true, Message: k.okMsg}
		}
		got = append(got, rdata(rr))
	}
	if len(got) == 0 {
		return fail(k.what, fmt.Sprintf("NOERROR, but no %s record in the answer", dns.TypeToString[k.qtype]))
	}
	return fail(k.what, fmt.Sprintf("wrong answer: got %s, want %s", strings.Join(got, ", "), k.want))
}

// exchange sends q over network and reads the answer with q's id. It
// returns the answer, or nil and what went wrong.
func (k *dnsChecker) exchange(ctx context.Context, network string, q *dns.Msg) (*dns.Msg, string) {
	conn, err := k.t.dialer.DialContext(ctx, network, k.t.dst.String())
	if err != nil {
		return nil, describe(phaseConnect, err, k.timeout)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	co := &dns.Conn{Conn: conn}
	if err := co.WriteMsg(q); err != nil {
		return nil, describe(phaseSend, err, k.timeout)
	}
	ph := phaseDatagram
	if network == "tcp" {
		ph = phaseReply
	}
	for {
		r, err := co.ReadMsg()
		if err != nil {
			if isTimeout(err) || isEOF(err) || isNetErr(err) {
				return nil, describe(ph, err, k.timeout)
			}
			return nil, "malformed DNS answer: " + err.Error()
		}
		// A stray datagram (a late answer to an earlier query) is skipped.
		if r.Id == q.Id && r.Response {
			return r, ""
		}
		if network == "tcp" {
			return nil, fmt.Sprintf("answer has id %d, want %d", r.Id, q.Id)
		}
	}
}
