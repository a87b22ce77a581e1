package healthcheck

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestCheckCommand(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write([]byte("hello " + r.Method))
	}))
	defer hs.Close()
	ap := addrOf(hs.Listener.Addr())
	port := strconv.Itoa(int(ap.Port()))
	cases := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--type", "HTTP", "--address", "127.0.0.1", "--port", port}, 0, "healthy: HTTP GET http://" + ap.String() + "/: got 200", ""},
		{[]string{"--type", "http", "--address", "127.0.0.1", "--port", port, "--send", "/down"}, 1, "unhealthy: HTTP GET http://" + ap.String() + "/down: got 503 Service Unavailable, want 200", ""},
		{[]string{"--type", "HTTP", "--address", "127.0.0.1", "--port", port, "--send", "/down", "--code", "503", "--method", "POST", "--receive", "hello POST"}, 0, "healthy:", ""},
		{[]string{"--type", "TCP", "--address", "127.0.0.1", "--port", port, "--mode", "PLAIN", "--timeout", "2"}, 0, "healthy: TCP 127.0.0.1:" + port + ": connected", ""},
		{[]string{"-type=TCP", "-address=127.0.0.1", "-port=" + strconv.Itoa(int(closedPort(t, "tcp4").Port())), "-timeout=500ms"}, 1, "connection refused", ""},
		{[]string{"--type", "HTTPS", "--address", "127.0.0.1", "--port", port, "--tls_verify=false", "--timeout", "1s"}, 1, "unhealthy: HTTPS", ""},
		// Bad arguments.
		{[]string{"--type", "HTTP"}, 2, "", "--type and --address are required"},
		{[]string{"--type", "SMTP", "--address", "127.0.0.1"}, 2, "", `--type "SMTP" is not one of`},
		{[]string{"--type", "TCP", "--address", "127.0.0.1"}, 2, "", "a TCP check needs a port"},
		{[]string{"--type", "TCP", "--address", "localhost", "--port", "1"}, 2, "", `address "localhost"`},
		{[]string{"--type", "TCP", "--address", "127.0.0.1", "--port", "1", "--mode", "DSR"}, 2, "", "needs the VIP as target"},
		{[]string{"--type", "TCP", "--address", "127.0.0.1", "--port", "1", "--timeout", "soon"}, 2, "", "--timeout"},
		{[]string{"--type", "TCP", "--address", "127.0.0.1", "--port", "70000"}, 2, "", "out of range"},
		{[]string{"--bogus"}, 2, "", "flag provided but not defined"},
		{[]string{"--type", "TCP", "--address", "127.0.0.1", "--port", "1", "extra"}, 2, "", `unexpected argument "extra"`},
		{[]string{"--type", "ICMP_PING", "--address", "127.0.0.1", "--mode", "DSR", "--target", "127.0.0.2", "--fwmark", "7"}, 2, "", "ICMP_PING check cannot use mode DSR"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := CheckCommand(context.Background(), c.args, &out, &errb)
			if code != c.code || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out.String(), errb.String(), c.code, c.stdout, c.stderr)
			}
		})
	}
}
