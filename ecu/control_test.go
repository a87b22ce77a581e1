package ecu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	hapb "github.com/seesawlb/seesaw/proto/ha"
)

// testCA is a certificate authority for the remote-control tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a certificate for name (its common name; a server's also an
// IP SAN for 127.0.0.1), as PEM certificate and key.
func (ca *testCA) issue(t *testing.T, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	must(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestRemoteControl: the engine's operator RPCs over mutual TLS, against a
// real engine. Refused without a certificate, with one from another CA,
// to a name in no role, and to a reader on a write; allowed to a reader on
// a read and to an admin on a write, which the engine then carries out.
// Nobody gets the engine's internal sessions.
func TestRemoteControl(t *testing.T) {
	ca, other := newCA(t, "cluster CA"), newCA(t, "another CA")
	ssl := t.TempDir()
	crt, key := ca.issue(t, "lb1.example.com", true)
	must(t, os.WriteFile(filepath.Join(ssl, "ca.crt"), ca.pem, 0o644))
	must(t, os.WriteFile(filepath.Join(ssl, "seesaw.crt"), crt, 0o644))
	must(t, os.WriteFile(filepath.Join(ssl, "seesaw.key"), key, 0o600))

	ctlc := make(chan net.Addr, 1)
	cfg := rigSeesawCfg + "[remote_control]\nadmin = alice\nreader = bob\n"
	r := startRig(t, cfg, rigCluster(map[string]int{"api": 1, "dns": 2, "web": 3}), hcNone, 50*time.Millisecond, func(c *Config) {
		c.ControlAddr, c.SSLDir, c.ControlReady = "127.0.0.1:0", ssl, func(a net.Addr) { ctlc <- a }
	})
	_ = r
	var addr string
	select {
	case a := <-ctlc:
		addr = a.String()
	case <-time.After(30 * time.Second):
		t.Fatal("remote control never listened")
	}

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	dial := func(withCert *testCA, name string) enginepb.EngineClient {
		t.Helper()
		tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}
		if withCert != nil {
			c, k := withCert.issue(t, name, false)
			pair, err := tls.X509KeyPair(c, k)
			must(t, err)
			tc.Certificates = []tls.Certificate{pair}
		}
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		must(t, err)
		t.Cleanup(func() { cc.Close() })
		return enginepb.NewEngineClient(cc)
	}
	call := func(c enginepb.EngineClient, write bool) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if write {
			_, err := c.Override(ctx, &enginepb.OverrideRequest{Target: &enginepb.OverrideRequest_Vserver{Vserver: "web"},
				State: enginepb.OverrideState_OVERRIDE_DISABLED})
			return err
		}
		_, err := c.ClusterStatus(ctx, &enginepb.ClusterStatusRequest{})
		return err
	}

	for _, tc := range []struct {
		name   string
		client enginepb.EngineClient
		write  bool
		code   codes.Code
		msg    string
	}{
		{"no certificate", dial(nil, ""), false, codes.Unavailable, ""},
		{"another CA's certificate", dial(other, "alice"), false, codes.Unavailable, ""},
		{"a name in no role", dial(ca, "mallory"), false, codes.PermissionDenied, "mallory is neither admin nor reader"},
		{"a reader's read", dial(ca, "bob"), false, codes.OK, ""},
		{"a reader's write", dial(ca, "bob"), true, codes.PermissionDenied, "bob is reader; /seesaw.engine.Engine/Override needs WRITE access"},
		{"an admin's read", dial(ca, "alice"), false, codes.OK, ""},
		{"an admin's write", dial(ca, "alice"), true, codes.OK, ""},
	} {
		err := call(tc.client, tc.write)
		if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
			t.Errorf("%s: %v, want %v %q", tc.name, err, tc.code, tc.msg)
		}
	}

	// The admin's override reached the engine.
	cc := dial(ca, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ov, err := cc.Overrides(ctx, &enginepb.OverridesRequest{})
	if err != nil || len(ov.Overrides) != 1 || ov.Overrides[0].GetVserver() != "web" {
		t.Errorf("overrides after the admin's write: %v %v", ov, err)
	}
	// Internal sessions: not even for an admin.
	stream, err := dial(ca, "alice").HASession(ctx)
	if err == nil {
		stream.Send(&hapb.Report{})
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("an admin's HASession: %v, want PermissionDenied", err)
	}
}

// TestControlTLSFiles: missing files say which one (remote control is then
// off by design); present but bad ones are an error naming the file.
func TestControlTLSFiles(t *testing.T) {
	dir := t.TempDir()
	_, err := controlTLS(dir)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "ca.crt") {
		t.Errorf("no files: %v", err)
	}
	ca := newCA(t, "ca")
	crt, key := ca.issue(t, "lb1", true)
	must(t, os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("not a certificate"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "seesaw.crt"), crt, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "seesaw.key"), key, 0o600))
	_, err = controlTLS(dir)
	if err == nil || errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "ca.crt: no PEM certificate") {
		t.Errorf("a bad ca.crt: %v", err)
	}
}
