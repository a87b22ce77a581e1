// Package ipc is how the appliance's processes talk to each other: gRPC over
// Unix sockets. A server learns who is calling from the kernel (SO_PEERCRED),
// never from the caller's word, and authorizes each call against the access
// level its method declares in the proto with the (seesaw.access) option.
//
// The transport lives beside the wire contracts in proto/ because every
// process, the watchdog included, serves or dials through it.
package ipc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Cred is a caller's identity as the kernel reported it when it connected.
type Cred struct {
	PID    int32
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups, read from /proc/<pid>/status; may be empty
}

func (c Cred) String() string {
	return fmt.Sprintf("pid=%d uid=%d gid=%d", c.PID, c.UID, c.GID)
}

// Rule says which callers are allowed at one access level. Root (uid 0) is
// always allowed.
type Rule struct {
	Anyone bool     // any local caller who can reach the socket
	UIDs   []uint32 // these users
	GIDs   []uint32 // members of these groups (primary or supplementary)
}

// Allows reports whether c may call under r.
func (r Rule) Allows(c Cred) bool {
	if c.UID == 0 || r.Anyone {
		return true
	}
	for _, u := range r.UIDs {
		if u == c.UID {
			return true
		}
	}
	for _, g := range r.GIDs {
		if g == c.GID {
			return true
		}
		for _, cg := range c.Groups {
			if g == cg {
				return true
			}
		}
	}
	return false
}

// Policy gives the rule for each access level. A method that declares no
// access level (or one the policy does not name) is refused to everyone,
// root included: forgetting the option must fail closed and be noticed.
type Policy struct {
	Read     Rule
	Write    Rule
	Internal Rule
}

func (p Policy) rule(a seesawpb.Access) (Rule, bool) {
	switch a {
	case seesawpb.Access_READ:
		return p.Read, true
	case seesawpb.Access_WRITE:
		return p.Write, true
	case seesawpb.Access_INTERNAL:
		return p.Internal, true
	}
	return Rule{}, false
}

// RootOnly is the policy of a process that answers only root.
var RootOnly = Policy{}

// MethodAccess returns the access level that the gRPC method fullMethod
// ("/package.Service/Method") declares in its proto, or ACCESS_UNSPECIFIED.
func MethodAccess(fullMethod string) seesawpb.Access {
	if v, ok := accessCache.Load(fullMethod); ok {
		return v.(seesawpb.Access)
	}
	a := lookupAccess(fullMethod)
	accessCache.Store(fullMethod, a)
	return a
}

// accessCache memoizes descriptor lookups; the registry never changes after init.
var accessCache sync.Map

func lookupAccess(fullMethod string) seesawpb.Access {
	name := strings.TrimPrefix(fullMethod, "/")
	i := strings.LastIndex(name, "/")
	if i < 0 {
		return seesawpb.Access_ACCESS_UNSPECIFIED
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name[:i]))
	if err != nil {
		return seesawpb.Access_ACCESS_UNSPECIFIED
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return seesawpb.Access_ACCESS_UNSPECIFIED
	}
	md := sd.Methods().ByName(protoreflect.Name(name[i+1:]))
	if md == nil || md.Options() == nil {
		return seesawpb.Access_ACCESS_UNSPECIFIED
	}
	a, _ := proto.GetExtension(md.Options(), seesawpb.E_Access).(seesawpb.Access)
	return a
}

// CredFromContext returns the caller's credentials inside a handler.
func CredFromContext(ctx context.Context) (Cred, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Cred{}, false
	}
	ai, ok := p.AuthInfo.(authInfo)
	if !ok {
		return Cred{}, false
	}
	return ai.cred, true
}

// ServerOptions configure a server socket.
type ServerOptions struct {
	// Path of the socket, e.g. /var/run/seesaw/engine/engine.sock.
	Path string
	// Mode of the socket's directory (default 0750) and of the socket (default 0660).
	DirMode, SocketMode os.FileMode
	// Owner of the directory and socket; -1 (or 0 when not root) leaves them as created.
	UID, GID int
	// Policy authorizes each call.
	Policy Policy
	// Logf receives one line per refused call and per lifecycle event.
	Logf func(format string, args ...any)
}

// Server is a gRPC server bound to a Unix socket.
type Server struct {
	*grpc.Server
	lis  net.Listener
	opts ServerOptions
}

// NewServer creates the socket directory, takes over a stale socket (one that
// nothing answers on), listens, and returns a server whose every call is
// authorized by opts.Policy. Register services on it, then call Serve.
func NewServer(opts ServerOptions, extra ...grpc.ServerOption) (*Server, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.DirMode == 0 {
		opts.DirMode = 0o750
	}
	if opts.SocketMode == 0 {
		opts.SocketMode = 0o660
	}
	lis, err := Listen(opts)
	if err != nil {
		return nil, err
	}
	a := &authorizer{policy: opts.Policy, logf: opts.Logf}
	sopts := append([]grpc.ServerOption{
		grpc.Creds(peerCreds{}),
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
		grpc.ChainUnaryInterceptor(a.unary),
		grpc.ChainStreamInterceptor(a.stream),
	}, extra...)
	return &Server{Server: grpc.NewServer(sopts...), lis: lis, opts: opts}, nil
}

// Addr is the socket path.
func (s *Server) Addr() string { return s.opts.Path }

// Serve serves until ctx is done, then stops gracefully: in-flight unary
// calls finish, open streams are given grace to end before being cut.
func (s *Server) Serve(ctx context.Context, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Server.Serve(s.lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ipc: serve %s: %w", s.opts.Path, err)
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		s.Stop()
		<-done
	}
	<-errc
	return nil
}

// Listen prepares the socket's directory and returns a listener on opts.Path.
// An existing socket is removed only when nothing answers on it; a live one
// is an error, as is a path that is not a socket.
func Listen(opts ServerOptions) (net.Listener, error) {
	if opts.Path == "" {
		return nil, errors.New("ipc: listen: no socket path")
	}
	if opts.DirMode == 0 {
		opts.DirMode = 0o750
	}
	if opts.SocketMode == 0 {
		opts.SocketMode = 0o660
	}
	dir := filepath.Dir(opts.Path)
	if err := os.MkdirAll(dir, opts.DirMode); err != nil {
		return nil, fmt.Errorf("ipc: listen: create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, opts.DirMode); err != nil {
		return nil, fmt.Errorf("ipc: listen: chmod %s: %w", dir, err)
	}
	if err := chown(dir, opts.UID, opts.GID); err != nil {
		return nil, err
	}
	if err := removeStale(opts.Path); err != nil {
		return nil, err
	}
	lis, err := net.Listen("unix", opts.Path)
	if err != nil {
		return nil, fmt.Errorf("ipc: listen %s: %w", opts.Path, err)
	}
	if err := os.Chmod(opts.Path, opts.SocketMode); err != nil {
		lis.Close()
		return nil, fmt.Errorf("ipc: listen: chmod %s: %w", opts.Path, err)
	}
	if err := chown(opts.Path, opts.UID, opts.GID); err != nil {
		lis.Close()
		return nil, err
	}
	return lis, nil
}

func chown(path string, uid, gid int) error {
	if (uid <= 0 && gid <= 0) || os.Geteuid() != 0 {
		return nil
	}
	if uid <= 0 {
		uid = -1
	}
	if gid <= 0 {
		gid = -1
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("ipc: chown %s: %w", path, err)
	}
	return nil
}

// removeStale unlinks path if it is a socket that nobody answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ipc: listen: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("ipc: listen: %s exists and is not a socket; not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("ipc: listen: %s is in use by a running process (is another instance running?)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ipc: listen: remove stale socket: %w", err)
	}
	return nil
}

type authorizer struct {
	policy Policy
	logf   func(string, ...any)
}

func (a *authorizer) check(ctx context.Context, method string) error {
	cred, ok := CredFromContext(ctx)
	if !ok {
		a.logf("ipc: refused %s: caller credentials unknown", method)
		return status.Error(codes.PermissionDenied, "caller credentials unknown")
	}
	access := MethodAccess(method)
	rule, ok := a.policy.rule(access)
	if !ok {
		a.logf("ipc: refused %s to %v: method declares no access level", method, cred)
		return status.Errorf(codes.PermissionDenied, "%s declares no access level", method)
	}
	if !rule.Allows(cred) {
		a.logf("ipc: refused %s (%s) to %v", method, access, cred)
		return status.Errorf(codes.PermissionDenied, "uid %d gid %d may not call %s (%s access)", cred.UID, cred.GID, method, access)
	}
	return nil
}

func (a *authorizer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (a *authorizer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := a.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}

// MaxMessageSize bounds one message either way. gRPC's default of 4 MiB
// would cap the NCC's desired state near 16,000 services and a check set
// near 30,000 checks; these peers are local processes of the appliance.
const MaxMessageSize = 256 << 20

// DialOptions configure a client.
type DialOptions struct {
	// MaxBackoff caps the reconnect delay (default 5s); reconnects start at 100ms.
	MaxBackoff time.Duration
}

// Dial returns a client connection to the socket at path. The connection is
// made lazily and re-made with exponential backoff whenever it breaks, so a
// client may be created before its server starts.
func Dial(path string, o DialOptions) (*grpc.ClientConn, error) {
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 5 * time.Second
	}
	bc := backoff.DefaultConfig
	bc.BaseDelay = 100 * time.Millisecond
	bc.MaxDelay = o.MaxBackoff
	cc, err := grpc.NewClient("unix://"+path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
	)
	if err != nil {
		return nil, fmt.Errorf("ipc: dial %s: %w", path, err)
	}
	return cc, nil
}
