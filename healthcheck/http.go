package healthcheck

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// httpChecker runs an HTTP or HTTPS check as Seesaw v2 defined it: `send` is
// a path (the Host header is then the address dialled) or a full URL (its
// host is the Host header and the TLS server name, but the request still
// goes to the backend); `method` defaults to GET; the status must equal
// `code` (default 200; redirects are not followed); the body must start
// with `receive`. With `proxy` the backend is an HTTP proxy: the request
// carries the absolute URL, and an HTTPS check tunnels through CONNECT.
//
// It speaks HTTP/1.1 on a fresh connection per check rather than through
// net/http's client, whose pooling and goroutines cost more than the check.
type httpChecker struct {
	t       *target
	what    string
	timeout time.Duration
	tls     *tls.Config // HTTPS
	connect []byte      // HTTPS through a proxy: the CONNECT request
	request []byte
	head    bool // no body to read
	code    int
	receive []byte
	okMsg   string
}

// bufs recycles the response readers: one per check in flight, not per
// check configured.
var bufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

func newHTTPChecker(c *hcpb.Check, t *target, env *Env) (*httpChecker, error) {
	secure := c.GetType() == hcpb.CheckType_HTTPS
	scheme := "http"
	if secure {
		scheme = "https"
	}
	send := c.GetSend()
	if send == "" {
		send = "/"
	}
	u, err := url.Parse(send)
	if err != nil {
		return nil, fmt.Errorf("healthcheck: send %q is neither a path nor a URL: %w", send, err)
	}
	if u.Host == "" {
		if u.Scheme != "" || !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("healthcheck: send %q is neither a path nor a URL", send)
		}
		u.Host = t.dst.String()
	} else if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("healthcheck: send %q: scheme %q is not http or https", send, u.Scheme)
	}
	// The check's type, not the URL, says whether TLS is used (as in Seesaw v2).
	u.Scheme = scheme
	method := c.GetMethod()
	if method == "" {
		method = http.MethodGet
	}
	if strings.ContainsAny(method, " \t\r\n") || !isToken(method) {
		return nil, fmt.Errorf("healthcheck: method %q is not an HTTP method", method)
	}
	code := int(c.GetCode())
	if code == 0 {
		code = http.StatusOK
	}
	if code < 100 || code > 999 {
		return nil, fmt.Errorf("healthcheck: code %d is not an HTTP status", code)
	}
	k := &httpChecker{
		t:       t,
		timeout: timeoutOf(c),
		head:    method == http.MethodHead,
		code:    code,
		receive: []byte(c.GetReceive()),
	}
	target := u.RequestURI()
	if c.GetProxy() && !secure {
		target = u.String()
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: seesaw_healthcheck\r\nAccept: */*\r\nConnection: close\r\n", method, target, u.Host)
	if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		req.WriteString("Content-Length: 0\r\n")
	}
	req.WriteString("\r\n")
	k.request = req.Bytes()
	if secure {
		k.tls = &tls.Config{
			ServerName:         u.Hostname(), // an IP sends no SNI and is verified against IP SANs
			InsecureSkipVerify: !c.GetTlsVerify(),
			RootCAs:            env.RootCAs,
		}
		if c.GetProxy() {
			authority := u.Host
			if u.Port() == "" {
				authority = net.JoinHostPort(u.Hostname(), "443")
			}
			k.connect = fmt.Appendf(nil, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: seesaw_healthcheck\r\n\r\n", authority, authority)
		}
	}
	kind := "HTTP"
	if secure {
		kind = "HTTPS"
	}
	k.what = fmt.Sprintf("%s %s %s", kind, method, u)
	if c.GetProxy() {
		k.what += " through proxy " + t.label(c.GetMode())
	} else if u.Host != t.dst.String() || t.mark != 0 {
		k.what += " at " + t.label(c.GetMode())
	}
	k.okMsg = k.what + ": got " + strconv.Itoa(code)
	if len(k.receive) > 0 {
		k.okMsg += " and the expected body"
	}
	return k, nil
}

// isToken reports whether s is an RFC 9110 token, as a method must be.
func isToken(s string) bool {
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

func (k *httpChecker) Check(ctx context.Context) Outcome {
	dl := deadlineOf(ctx, k.timeout)
	conn, err := dialTCP(k.t, dl, false)
	if err != nil {
		return fail(k.what, describe(phaseConnect, err, k.timeout))
	}
	defer closeNow(conn)
	conn.SetDeadline(dl)
	br := bufs.Get().(*bufio.Reader)
	defer func() {
		br.Reset(nil)
		bufs.Put(br)
	}()
	var rw io.ReadWriter = conn
	if k.connect != nil {
		if _, err := conn.Write(k.connect); err != nil {
			return fail(k.what, describe(phaseSend, err, k.timeout))
		}
		br.Reset(conn)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			return fail(k.what, "proxy: "+k.readError(err))
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fail(k.what, "proxy refused CONNECT: "+resp.Status)
		}
	}
	if k.tls != nil {
		tc := tls.Client(conn, k.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(k.what, describe(phaseTLS, err, k.timeout))
		}
		rw = tc
	}
	if _, err := rw.Write(k.request); err != nil {
		return fail(k.what, describe(phaseSend, err, k.timeout))
	}
	br.Reset(rw)
	resp, err := http.ReadResponse(br, k.req())
	if err != nil {
		return fail(k.what, k.readError(err))
	}
	defer resp.Body.Close()
	if o, done := k.judgeStatus(resp); done {
		return o
	}
	var body []byte
	if len(k.receive) > 0 {
		body = make([]byte, len(k.receive))
		n, err := io.ReadFull(resp.Body, body)
		body = body[:n]
		if err != nil && !isEOF(err) {
			return fail(k.what, fmt.Sprintf("got %s, then reading the body: %s", resp.Status, describe(phaseReply, err, k.timeout)))
		}
	}
	return k.judgeBody(resp, body)
}

// req stands for the request sent, as http.ReadResponse needs it (for the
// method: a response to HEAD has no body).
func (k *httpChecker) req() *http.Request {
	if k.head {
		return headRequest
	}
	return getRequest
}

var (
	getRequest  = &http.Request{Method: http.MethodGet}
	headRequest = &http.Request{Method: http.MethodHead}
)

// judgeStatus fails a response with the wrong status.
func (k *httpChecker) judgeStatus(resp *http.Response) (Outcome, bool) {
	if resp.StatusCode != k.code {
		return fail(k.what, fmt.Sprintf("got %s, want %d", resp.Status, k.code)), true
	}
	return Outcome{}, false
}

// judgeBody judges the start of a response's body (what there is of its
// first len(receive) bytes).
func (k *httpChecker) judgeBody(resp *http.Response, body []byte) Outcome {
	if !bytes.Equal(body, k.receive) {
		return fail(k.what, fmt.Sprintf("got %s, but the body starts %s, want %s", resp.Status, truncate(body, 64), truncate(k.receive, 64)))
	}
	return Outcome{OK: true, Message: k.okMsg}
}

// readError describes a failure to read a response: the network errors as
// describe does, and anything else as a malformed response.
func (k *httpChecker) readError(err error) string {
	if isTimeout(err) || isEOF(err) || isNetErr(err) {
		return describe(phaseReply, err, k.timeout)
	}
	return "malformed HTTP response: " + err.Error()
}

// isNetErr reports a failure of the connection (as opposed to what came
// over it).
func isNetErr(err error) bool {
	var oe *net.OpError
	var errno syscall.Errno
	return errors.As(err, &oe) || errors.As(err, &errno)
}
