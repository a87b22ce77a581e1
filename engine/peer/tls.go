package peer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"google.golang.org/grpc/credentials"
)

// The certificate files in the SSL directory: the cluster CA, and this
// node's certificate and key, signed by the CA and naming the node's
// address (an IP SAN), usable for both server and client authentication.
const (
	CAFile   = "ca.crt"
	CertFile = "seesaw.crt"
	KeyFile  = "seesaw.key"
)

// DefaultSSLDir holds the certificate files.
const DefaultSSLDir = "/etc/seesaw/ssl"

type tlsFiles struct {
	ca   *x509.CertPool
	cert tls.Certificate
}

// LoadCA reads a PEM file of CA certificates.
func LoadCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// loadTLS reads the cluster CA and this node's certificate and key.
func loadTLS(dir string) (*tlsFiles, error) {
	ca, err := LoadCA(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("peer: the cluster CA: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("peer: this node's certificate: %w", err)
	}
	return &tlsFiles{ca: ca, cert: cert}, nil
}

func (t *tlsFiles) serverCreds() credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		ClientCAs:    t.ca,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	})
}

// clientCreds check that the server's certificate chains to the CA and
// names the peer's address.
func (t *tlsFiles) clientCreds(peer netip.Addr) credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		RootCAs:      t.ca,
		ServerName:   peer.String(),
	})
}

// guard is the server's credentials: only the configured peer addresses
// may connect, and the client certificate (already verified against the CA
// by the handshake) must name the address it connects from. Each refusal is
// reported.
type guard struct {
	credentials.TransportCredentials
	allowed []netip.Addr
	refuse  func(addr string, err error)
}

func (g *guard) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	addr := c.RemoteAddr().String()
	ip := remoteIP(c)
	if !containsAddr(g.allowed, ip) {
		err := fmt.Errorf("%s is not the configured peer (%v)", ip, g.allowed)
		g.refuse(addr, err)
		c.Close()
		return nil, nil, err
	}
	conn, info, err := g.TransportCredentials.ServerHandshake(c)
	if err != nil {
		g.refuse(addr, fmt.Errorf("TLS handshake: %w", err))
		return nil, nil, err
	}
	ti, ok := info.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		err := errors.New("no client certificate")
		g.refuse(addr, err)
		conn.Close()
		return nil, nil, err
	}
	leaf := ti.State.PeerCertificates[0]
	if err := leaf.VerifyHostname(ip.String()); err != nil {
		err = fmt.Errorf("the client certificate (%q) does not name %s: %w", leaf.Subject.CommonName, ip, err)
		g.refuse(addr, err)
		conn.Close()
		return nil, nil, err
	}
	return conn, info, nil
}

func (g *guard) Clone() credentials.TransportCredentials {
	return &guard{TransportCredentials: g.TransportCredentials.Clone(), allowed: g.allowed, refuse: g.refuse}
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}
