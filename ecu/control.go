package ecu

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/seesawlb/seesaw/engine/config"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Remote control (Seesaw's port 10256): the engine's operator RPCs over
// TCP with mutual TLS. The client's certificate must chain to the cluster
// CA (ssl/ca.crt); its name (common name or a DNS name) is looked up in
// seesaw.cfg's [remote_control] admin and reader lists, read at each call;
// a reader may call the engine's READ methods, an admin its WRITE methods
// too; nobody its INTERNAL ones (the HA and healthcheck sessions). A caller
// without a valid certificate does not get past the handshake. The ECU
// forwards an allowed call to the engine's socket as itself, so the
// engine's own policy applies on top (the ECU's user must be in the
// engine's admin group for writes); it names the certificate's holder in
// the call's metadata, so that the engine records who set an override.

// Defaults of the remote control's files.
const (
	DefaultControlAddr = ":10256"
	DefaultSSLDir      = "/etc/seesaw/ssl"
	DefaultEngineConf  = "/etc/seesaw/seesaw.cfg"
)

const engineService = "/seesaw.engine.Engine/"

// frame is a message the proxy passes on without decoding it.
type frame struct{ b []byte }

// rawCodec passes frames through. It is named "proto" so that both ends
// see the content type they expect.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("ecu: remote control: cannot marshal %T", v)
	}
	return f.b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("ecu: remote control: cannot unmarshal into %T", v)
	}
	f.b = append(f.b[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// control is the remote-control server.
type control struct {
	engine     *grpc.ClientConn
	engineConf string
}

// controlTLS loads the server's certificate and the cluster CA from dir;
// it reports which file is missing when remote control cannot run.
func controlTLS(dir string) (*tls.Config, error) {
	ca, crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "seesaw.crt"), filepath.Join(dir, "seesaw.key")
	for _, f := range []string{ca, crt, key} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	cert, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", crt, key, err)
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", ca)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// serveControl serves remote control on lis until ctx is done.
func (e *ecu) serveControl(ctx context.Context, lis net.Listener, tc *tls.Config) {
	c := &control{engine: e.engine, engineConf: e.cfg.EngineConf}
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tc)),
		grpc.ForceServerCodec(rawCodec{}),
		grpc.UnknownServiceHandler(c.proxy),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.MaxConcurrentStreams(16),
	)
	go func() {
		<-ctx.Done()
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(2 * time.Second):
			srv.Stop()
		}
	}()
	if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		glog.Errorf("ecu: remote control: %v", err)
	}
}

// names are the caller's names from its verified certificate.
func callerNames(ctx context.Context) []string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil
	}
	leaf := ti.State.VerifiedChains[0][0]
	out := slices.Clone(leaf.DNSNames)
	if leaf.Subject.CommonName != "" {
		out = append([]string{leaf.Subject.CommonName}, out...)
	}
	return out
}

// role is "admin", "reader" or "" for names, by seesaw.cfg as it is now.
func (c *control) role(names []string) (string, error) {
	e, _, err := config.LoadEngine(c.engineConf)
	if err != nil {
		return "", fmt.Errorf("reading the roles from %s: %w", c.engineConf, err)
	}
	for _, n := range names {
		if slices.Contains(e.RemoteAdmins, n) {
			return "admin", nil
		}
	}
	for _, n := range names {
		if slices.Contains(e.RemoteReaders, n) {
			return "reader", nil
		}
	}
	return "", nil
}

// proxy authorizes a call by its method's access level and the caller's
// role, then passes it to the engine frame by frame.
func (c *control) proxy(_ any, ss grpc.ServerStream) error {
	ctx := ss.Context()
	method, _ := grpc.MethodFromServerStream(ss)
	names := callerNames(ctx)
	who := strings.Join(names, ",")
	if len(names) == 0 {
		return status.Error(codes.Unauthenticated, "ecu: remote control needs a client certificate from the cluster CA")
	}
	if !strings.HasPrefix(method, engineService) {
		return status.Errorf(codes.Unimplemented, "ecu: remote control serves only the engine's operator RPCs, not %s", method)
	}
	role, err := c.role(names)
	if err != nil {
		glog.Errorf("ecu: remote control: %v", err)
		return status.Errorf(codes.Unavailable, "ecu: %v", err)
	}
	access := ipc.MethodAccess(method)
	allowed := access == seesawpb.Access_READ && (role == "reader" || role == "admin") ||
		access == seesawpb.Access_WRITE && role == "admin"
	if !allowed {
		glog.Warningf("ecu: remote control: refused %s (%s) to %s (role %q)", method, access, who, role)
		if role == "" {
			return status.Errorf(codes.PermissionDenied, "ecu: %s is neither admin nor reader in [remote_control] of %s", who, c.engineConf)
		}
		return status.Errorf(codes.PermissionDenied, "ecu: %s is %s; %s needs %s access", who, role, method, access)
	}
	if access == seesawpb.Access_WRITE {
		glog.Infof("ecu: remote control: %s (%s) calls %s", who, role, method)
	} else {
		glog.V(2).Infof("ecu: remote control: %s (%s) calls %s", who, role, method)
	}

	// The engine sees the ECU's own user on its socket; the certificate's
	// name goes along in the call's metadata, which the engine believes
	// from the ECU's user only (ipc.RelayedCaller). Nothing of the
	// caller's own metadata is passed on.
	cctx, cancel := context.WithCancel(ipc.WithRelayedCaller(ctx, names[0]+" ("+role+")"))
	defer cancel()
	cs, err := c.engine.NewStream(cctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	// Caller to engine.
	errc := make(chan error, 1)
	go func() {
		for {
			f := &frame{}
			if err := ss.RecvMsg(f); err != nil {
				if err == io.EOF {
					errc <- cs.CloseSend()
					return
				}
				cancel()
				errc <- err
				return
			}
			if err := cs.SendMsg(f); err != nil {
				errc <- nil // the engine's answer (RecvMsg below) says why
				return
			}
		}
	}()
	// Engine to caller.
	for first := true; ; first = false {
		f := &frame{}
		if err := cs.RecvMsg(f); err != nil {
			if err == io.EOF {
				ss.SetTrailer(cs.Trailer())
				return nil
			}
			return err // the engine's status, as it gave it
		}
		if first {
			if md, err := cs.Header(); err == nil {
				ss.SendHeader(md)
			}
		}
		if err := ss.SendMsg(f); err != nil {
			return err
		}
	}
}
