package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// Remote control: with --remote host:port the CLI talks to the engine of
// another node through that node's ECU (Seesaw's port 10256) over mutual
// TLS instead of the local socket. The client presents --cert and --key,
// issued by the cluster CA; it trusts the ECU only when its certificate
// chains to --ca. The ECU maps the certificate's name to the reader or
// admin role ([remote_control] in seesaw.cfg) and refuses the rest.

// DefaultRemotePort is the ECU's remote-control port.
const DefaultRemotePort = "10256"

// defaultSSLDir holds the node's certificate, key and the cluster CA.
var defaultSSLDir = "/etc/seesaw/ssl"

// defaultTLSFile is ~/.seesaw/name when it exists (an operator's own
// certificate), /etc/seesaw/ssl/name otherwise.
func defaultTLSFile(name string) string {
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".seesaw", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join(defaultSSLDir, name)
}

// remoteAddr adds the default port to an address without one.
func remoteAddr(s string) (string, error) {
	if s == "" {
		return "", errors.New("--remote: empty address")
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s, nil
	}
	if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
		return net.JoinHostPort(s, DefaultRemotePort), nil // a bare IPv6 address
	}
	if strings.Contains(s, ":") {
		return "", fmt.Errorf("--remote %q: want host or host:port", s)
	}
	return net.JoinHostPort(s, DefaultRemotePort), nil
}

// remoteTLS loads the client's certificate and the cluster CA; an error
// names the file and the flag that chose it.
func remoteTLS(cert, key, ca string) (*tls.Config, error) {
	for _, f := range []struct{ flag, path string }{{"--cert", cert}, {"--key", key}, {"--ca", ca}} {
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("remote control needs a client certificate, its key and the cluster CA: %s %s: %w", f.flag, f.path, err)
		}
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("--cert %s, --key %s: %w", cert, key, err)
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("--ca %s: %w", ca, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca %s: no PEM certificate in it", ca)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, MinVersion: tls.VersionTLS13}, nil
}

// dialRemote connects to an ECU's remote control.
func (e *env) dialRemote() (*grpc.ClientConn, error) {
	addr, err := remoteAddr(e.opts.Remote)
	if err != nil {
		return nil, &UsageError{err}
	}
	tc, err := remoteTLS(e.opts.Cert, e.opts.Key, e.opts.CA)
	if err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		return nil, fmt.Errorf("--remote %s: %w", addr, err)
	}
	return cc, nil
}

// remoteErr is rpcErr for a call through remote control: the ECU's
// refusal in its own words, or why it could not be reached.
func (e *env) remoteErr(what string, st *status.Status) error {
	at := e.opts.Remote
	switch st.Code() {
	case codes.PermissionDenied:
		return fmt.Errorf("%s: refused by remote control at %s: %s; nothing was changed", what, at, st.Message())
	case codes.Unauthenticated:
		return fmt.Errorf("%s: remote control at %s did not accept the certificate %s: %s", what, at, e.opts.Cert, st.Message())
	case codes.Unavailable:
		return fmt.Errorf("%s: cannot reach remote control at %s (is the ECU up, and do --cert %s and --ca %s belong to its cluster?): %s",
			what, at, e.opts.Cert, e.opts.CA, st.Message())
	case codes.Unimplemented:
		return fmt.Errorf("%s: not available through remote control at %s: %s", what, at, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: remote control at %s did not answer in time", what, at)
	case codes.Canceled:
		return fmt.Errorf("%s: interrupted", what)
	}
	return fmt.Errorf("%s: %s", what, st.Message())
}
