package healthcheck

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// seen is what a test server saw of the last request.
type seen struct {
	mu   sync.Mutex
	last request
}

type request struct{ method, host, uri, sni, userAgent string }

func (s *seen) record(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = request{method: r.Method, host: r.Host, uri: r.RequestURI, userAgent: r.UserAgent()}
	if r.TLS != nil {
		s.last.sni = r.TLS.ServerName
	}
}

func (s *seen) get() request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// testMux serves the paths the HTTP tests use, recording each request.
func testMux(s *seen, redirected *atomic.Int32) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		io.WriteString(w, "OK all good")
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		http.Redirect(w, r, "/target", http.StatusFound)
	})
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		io.WriteString(w, "OK")
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		io.WriteString(w, "STA")
		w.(http.Flusher).Flush() // forces chunked encoding
		io.WriteString(w, "TUS: serving")
	})
	return mux
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	var s seen
	var redirected atomic.Int32
	hs := httptest.NewServer(testMux(&s, &redirected))
	defer hs.Close()
	ap := addrOf(hs.Listener.Addr())
	c := func(send string) *hcpb.Check {
		c := spec(hcpb.CheckType_HTTP, ap)
		c.Send = send
		return c
	}

	want(t, runOnce(t, c(""), nil), true, "got 200")
	if g := s.get(); g.method != "GET" || g.uri != "/" || g.host != ap.String() || g.userAgent != "seesaw_healthcheck" {
		t.Errorf("server saw %+v: want GET / with Host %s", g, ap)
	}

	// A full URL names the Host; the request still goes to the backend.
	want(t, runOnce(t, c("http://www.example.com/healthz?full=1"), nil), true)
	if g := s.get(); g.host != "www.example.com" || g.uri != "/healthz?full=1" {
		t.Errorf("server saw %+v: want Host www.example.com and /healthz?full=1", g)
	}

	for _, m := range []string{"HEAD", "POST"} {
		k := c("/")
		k.Method = m
		want(t, runOnce(t, k, nil), true)
		if g := s.get(); g.method != m {
			t.Errorf("method %s: server saw %s", m, g.method)
		}
	}

	want(t, runOnce(t, c("/down"), nil), false, "got 503 Service Unavailable, want 200")
	k := c("/down")
	k.Code = 503
	want(t, runOnce(t, k, nil), true, "got 503")

	// Redirects are not followed: the 302 is the answer.
	want(t, runOnce(t, c("/moved"), nil), false, "got 302 Found, want 200")
	k = c("/moved")
	k.Code = 302
	want(t, runOnce(t, k, nil), true)
	if n := redirected.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}

	k = c("/")
	k.Receive = "OK all"
	want(t, runOnce(t, k, nil), true, "and the expected body")
	k.Receive = "all good" // a prefix, not a substring
	want(t, runOnce(t, k, nil), false, `body starts "OK all g", want "all good"`)
	k = c("/chunked")
	k.Receive = "STATUS: serving"
	want(t, runOnce(t, k, nil), true)
	k.Receive = "STATUS: serving and more" // longer than the body
	want(t, runOnce(t, k, nil), false, "body starts")

	// Proxy mode: the backend is asked for the absolute URL.
	k = c("http://www.example.com/via-proxy")
	k.Proxy = true
	want(t, runOnce(t, k, nil), true, "through proxy")
	if g := s.get(); g.uri != "http://www.example.com/via-proxy" || g.host != "www.example.com" {
		t.Errorf("proxy request seen as %+v: want the absolute URL", g)
	}
}

func TestHTTPv6(t *testing.T) {
	t.Parallel()
	var s seen
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &httptest.Server{Listener: l, Config: &http.Server{Handler: testMux(&s, new(atomic.Int32))}}
	hs.Start()
	defer hs.Close()
	ap := addrOf(l.Addr())
	want(t, runOnce(t, spec(hcpb.CheckType_HTTP, ap), nil), true)
	if g := s.get(); g.host != ap.String() {
		t.Errorf("Host %q, want %q", g.host, ap)
	}
}

func TestHTTPFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		handle func(net.Conn)
		want   string
	}{
		{"accepts and never answers", silent, "connected, but no reply within 300ms"},
		{"closes", func(c net.Conn) { bufio.NewReader(c).ReadString('\n') }, "connection closed by peer without a reply"},
		{"resets", func(c net.Conn) { bufio.NewReader(c).ReadString('\n'); c.(*net.TCPConn).SetLinger(0) }, "connection reset by peer"},
		{"not HTTP", replyAfter("", "SSH-2.0-OpenSSH_9.2\r\n"), "malformed HTTP response"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := spec(hcpb.CheckType_HTTP, tcpServer(t, "tcp4", tc.handle))
			if strings.Contains(tc.want, "within") {
				short(c)
			}
			want(t, runOnce(t, c, nil), false, tc.want)
		})
	}
	want(t, runOnce(t, spec(hcpb.CheckType_HTTP, closedPort(t, "tcp4")), nil), false, "connection refused")
}

func TestHTTPS(t *testing.T) {
	t.Parallel()
	var s seen
	hs := httptest.NewTLSServer(testMux(&s, new(atomic.Int32)))
	defer hs.Close()
	ap := addrOf(hs.Listener.Addr())
	pool := x509.NewCertPool()
	pool.AddCert(hs.Certificate())
	env := &Env{RootCAs: pool}
	c := func(send string, verify bool) *hcpb.Check {
		c := spec(hcpb.CheckType_HTTPS, ap)
		c.Send, c.TlsVerify = send, verify
		return c
	}

	// A path: verified against the address (httptest's certificate has
	// 127.0.0.1), no SNI for an IP.
	want(t, runOnce(t, c("/", true), env), true, "HTTPS GET https://")
	if g := s.get(); g.sni != "" || g.host != ap.String() {
		t.Errorf("saw %+v: want no SNI and Host %s", g, ap)
	}
	// A URL: its host is the SNI, the Host and the name verified.
	want(t, runOnce(t, c("https://example.com/x", true), env), true)
	if g := s.get(); g.sni != "example.com" || g.host != "example.com" || g.uri != "/x" {
		t.Errorf("saw %+v: want SNI and Host example.com", g)
	}
	want(t, runOnce(t, c("https://wrong.test/", true), env), false, "TLS handshake failed", "wrong.test")
	want(t, runOnce(t, c("https://wrong.test/", false), env), true)
	if g := s.get(); g.sni != "wrong.test" {
		t.Errorf("SNI %q, want wrong.test", g.sni)
	}
	// An untrusted certificate.
	want(t, runOnce(t, c("/", true), &Env{}), false, "TLS handshake failed", "certificate")
	want(t, runOnce(t, c("/", false), &Env{}), true)
	// A plain HTTP server is not HTTPS.
	plain := httptest.NewServer(testMux(&s, new(atomic.Int32)))
	defer plain.Close()
	k := spec(hcpb.CheckType_HTTPS, addrOf(plain.Listener.Addr()))
	want(t, runOnce(t, k, env), false, "TLS handshake failed")
}

// TestHTTPSProxy: through a proxy, an HTTPS check asks for a CONNECT tunnel
// to the URL's host, then speaks TLS inside it.
func TestHTTPSProxy(t *testing.T) {
	t.Parallel()
	var s seen
	var connectTo atomic.Value
	_, pool, cfg := tlsServer(t, silent) // for the certificate only
	ap := tcpServer(t, "tcp4", func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		connectTo.Store(req.Method + " " + req.RequestURI)
		if req.RequestURI == "denied.example.com:443" {
			io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		tc := tls.Server(c, cfg)
		req, err = http.ReadRequest(bufio.NewReader(tc))
		if err != nil {
			return
		}
		req.TLS = &tls.ConnectionState{ServerName: tc.ConnectionState().ServerName}
		s.record(req)
		fmt.Fprintf(tc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
	})
	c := spec(hcpb.CheckType_HTTPS, ap)
	c.Proxy, c.Send, c.Receive = true, "https://example.com/status", "OK"
	want(t, runOnce(t, c, &Env{RootCAs: pool}), true, "through proxy")
	if got := connectTo.Load(); got != "CONNECT example.com:443" {
		t.Errorf("proxy saw %v, want CONNECT example.com:443", got)
	}
	if g := s.get(); g.sni != "example.com" || g.uri != "/status" || g.host != "example.com" {
		t.Errorf("origin saw %+v", g)
	}
	c.Send = "https://denied.example.com/"
	want(t, runOnce(t, c, &Env{RootCAs: pool}), false, "proxy refused CONNECT: 403 Forbidden")
}
