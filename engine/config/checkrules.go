package config

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	configpb "github.com/seesawlb/seesaw/proto/config"
)

// checkFields checks what each check type reads from send, receive and
// method, as the healthcheck process will read them (its checker
// constructors): a check it would refuse must not pass config check and
// then fail on the node. The engine's FuzzCompute holds the two to each
// other.
func (b *builder) checkFields(path string, hc *configpb.Healthcheck) {
	send, recv, method := hc.GetSend(), hc.GetReceive(), hc.GetMethod()
	switch hc.GetType() {
	case configpb.Healthcheck_ICMP_PING:
		if hc.GetMode() != configpb.Healthcheck_PLAIN {
			b.errorf(path, "an ICMP_PING check cannot use mode %s (ICMP is not steered to one backend by a firewall mark)", hc.GetMode())
		}
	case configpb.Healthcheck_HTTP, configpb.Healthcheck_HTTPS:
		if send != "" {
			u, err := url.Parse(send)
			switch {
			case err != nil:
				b.errorf(path, "send %q is neither a path nor a URL", send)
			case u.Host == "" && (u.Scheme != "" || !strings.HasPrefix(u.Path, "/")):
				b.errorf(path, "send %q is neither a path (starting with /) nor a URL", send)
			case u.Host != "" && u.Scheme != "http" && u.Scheme != "https":
				b.errorf(path, "send %q: scheme %q is not http or https", send, u.Scheme)
			}
		}
		if method != "" && !httpToken(method) {
			b.errorf(path, "method %q is not an HTTP method", method)
		}
	case configpb.Healthcheck_DNS:
		if send == "" {
			b.errorf(path, "a DNS check needs send (the name to query)")
		} else if _, ok := dns.IsDomainName(send); !ok {
			b.errorf(path, "send %q is not a domain name", send)
		}
		qt := strings.ToUpper(method)
		if qt == "" {
			qt = "A"
		}
		want := strings.TrimSpace(recv)
		switch qt {
		case "A", "AAAA":
			if want != "" {
				if ip, err := netip.ParseAddr(want); err != nil || ip.Is4() != (qt == "A") {
					b.errorf(path, "receive %q is not an %s address", want, qt)
				}
			}
		case "MX":
			if f := strings.Fields(want); len(f) > 2 {
				b.errorf(path, "receive %q is not \"name\" or \"preference name\"", want)
			} else if len(f) == 2 {
				if _, err := strconv.ParseUint(f[0], 10, 16); err != nil {
					b.errorf(path, "receive %q is not \"name\" or \"preference name\"", want)
				}
			}
		case "CNAME", "NS", "SOA", "TXT":
		default:
			b.errorf(path, "method %q is not a DNS query type the checker answers (A, AAAA, CNAME, NS, MX, SOA, TXT)", method)
		}
	case configpb.Healthcheck_RADIUS:
		parts := strings.SplitN(send, ":", 3)
		switch {
		case len(parts) != 3 || parts[0] == "" || parts[2] == "":
			b.errorf(path, "a RADIUS check's send must be user:password:secret")
		case len(parts[1]) > 128:
			b.errorf(path, "a RADIUS password is at most 128 bytes")
		}
		switch strings.ToLower(recv) {
		case "", "accept", "reject", "challenge", "any":
		default:
			b.errorf(path, "a RADIUS check's receive must be accept, reject, challenge or any, not %q", recv)
		}
	}
}

// httpToken: an RFC 9110 token, what an HTTP method is.
func httpToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}
