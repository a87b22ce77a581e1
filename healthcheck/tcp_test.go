package healthcheck

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// replyAfter reads len(req) bytes, then writes reply.
func replyAfter(req, reply string) func(net.Conn) {
	return func(c net.Conn) {
		if req != "" {
			if _, err := io.ReadFull(c, make([]byte, len(req))); err != nil {
				return
			}
		}
		c.Write([]byte(reply))
		c.Read(make([]byte, 1)) // until the checker closes
	}
}

func TestTCP(t *testing.T) {
	t.Parallel()
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			up := tcpServer(t, network, silent)
			want(t, runOnce(t, spec(hcpb.CheckType_TCP, up), nil), true, "connected")

			want(t, runOnce(t, spec(hcpb.CheckType_TCP, closedPort(t, network)), nil), false, "connection refused")

			echo := tcpServer(t, network, replyAfter("PING\r\n", "+PONG\r\nextra"))
			c := spec(hcpb.CheckType_TCP, echo)
			c.Send, c.Receive = "PING\r\n", "+PONG"
			want(t, runOnce(t, c, nil), true, "got the expected reply")

			c.Receive = "-ERR"
			want(t, runOnce(t, c, nil), false, `wrong reply: got "+PON", want "-ERR"`)
		})
	}
}

// TestTCPFailures: each way a backend can fail reads differently.
func TestTCPFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		handle func(net.Conn)
		want   string
	}{
		{"accepts and never answers", silent, "connected, but no reply within 300ms"},
		{"closes", func(c net.Conn) {}, "connection closed by peer without a reply"},
		{"resets", func(c net.Conn) { c.(*net.TCPConn).SetLinger(0) }, "connection reset by peer"},
		{"short reply then close", func(c net.Conn) { c.Write([]byte("22")) }, `wrong reply: got only "22"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := spec(hcpb.CheckType_TCP, tcpServer(t, "tcp4", tc.handle))
			c.Receive = "220 "
			if strings.Contains(tc.want, "within") {
				short(c)
			}
			want(t, runOnce(t, c, nil), false, tc.want)
		})
	}
}

// tlsServer is a TLS server on loopback with httptest's certificate (valid
// for 127.0.0.1, ::1 and example.com) running handle on each connection. It
// returns the address and a pool trusting the certificate.
func tlsServer(t *testing.T, handle func(net.Conn)) (addrPort string, pool *x509.CertPool, cfg *tls.Config) {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS() // only to get a certificate and its pool
	pool = x509.NewCertPool()
	pool.AddCert(hs.Certificate())
	cfg = hs.TLS.Clone()
	hs.Close()
	ap := tcpServer(t, "tcp4", func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
			return
		}
		handle(tc)
	})
	return ap.String(), pool, cfg
}

func TestTCPTLS(t *testing.T) {
	t.Parallel()
	as, pool, _ := tlsServer(t, replyAfter("HELLO", "WELCOME"))
	ap := addrOf(mustResolve(t, as))
	env := &Env{RootCAs: pool}

	c := spec(hcpb.CheckType_TCP_TLS, ap)
	want(t, runOnce(t, c, env), true, "TLS handshake completed")

	c.Send, c.Receive = "HELLO", "WELCOME"
	want(t, runOnce(t, c, env), true, "got the expected reply")
	c.Receive = "GOODBYE"
	want(t, runOnce(t, c, env), false, "wrong reply")

	// Not trusted: verification fails unless it is off.
	c = spec(hcpb.CheckType_TCP_TLS, ap)
	want(t, runOnce(t, c, &Env{}), false, "TLS handshake failed", "certificate")
	c.TlsVerify = false
	want(t, runOnce(t, c, &Env{}), true)

	// A plain TCP server that never starts TLS.
	c = short(spec(hcpb.CheckType_TCP_TLS, tcpServer(t, "tcp4", silent)))
	want(t, runOnce(t, c, env), false, "TLS handshake did not finish within 300ms")
	c = spec(hcpb.CheckType_TCP_TLS, tcpServer(t, "tcp4", func(c net.Conn) { c.(*net.TCPConn).SetLinger(0) }))
	want(t, runOnce(t, c, env), false, "reset")
}

func mustResolve(t *testing.T, s string) net.Addr {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
