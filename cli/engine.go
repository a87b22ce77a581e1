package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	enginepb "github.com/seesawlb/seesaw/proto/engine"
	"github.com/seesawlb/seesaw/proto/ipc"
)

// engineConn is the engine's connection, dialed at the first command that
// needs it and shared by the commands of a shell session.
type engineConn struct {
	path string
	cc   *grpc.ClientConn
	c    enginepb.EngineClient
}

func (c *engineConn) close() {
	if c != nil && c.cc != nil {
		c.cc.Close()
		c.cc, c.c = nil, nil
	}
}

// EngineDownError says the engine cannot be reached, and why, in words an
// operator can act on.
type EngineDownError struct {
	Path string
	Err  error
	// Group owns the socket's directory: the group a refused user needs.
	Group string
}

func (e *EngineDownError) Error() string {
	switch {
	case errors.Is(e.Err, os.ErrNotExist):
		return fmt.Sprintf("the engine is not running: no socket at %s (is seesaw_engine up? see `systemctl status seesaw_watchdog`)", e.Path)
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return fmt.Sprintf("the engine is not running: nothing answers on %s", e.Path)
	case errors.Is(e.Err, os.ErrPermission):
		return fmt.Sprintf("you need group %s to talk to the engine: %s is not permitted to %s", cmpOr(e.Group, "seesaw"), e.Path, whoami())
	}
	return fmt.Sprintf("cannot reach the engine at %s: %v", e.Path, e.Err)
}

func (e *EngineDownError) Unwrap() error { return e.Err }

// probe connects to the socket once, to tell "not running" from "not
// permitted" before gRPC hides both behind Unavailable.
func probe(path string) error {
	denied := func() error { return &EngineDownError{path, os.ErrPermission, dirGroup(path)} }
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return denied()
		}
		if errors.Is(err, os.ErrNotExist) {
			// The directory may hide it.
			if _, derr := os.ReadDir(filepath.Dir(path)); errors.Is(derr, os.ErrPermission) {
				return denied()
			}
		}
		return &EngineDownError{Path: path, Err: err}
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		var se syscall.Errno
		if errors.As(err, &se) && (se == syscall.EACCES || se == syscall.EPERM) {
			return denied()
		}
		return &EngineDownError{Path: path, Err: err}
	}
	c.Close()
	return nil
}

// dirGroup names the group of the socket's directory, which the engine
// gives to its reader group: the group a refused user needs.
func dirGroup(path string) string {
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Gid == 0 {
		return ""
	}
	gid := strconv.FormatUint(uint64(st.Gid), 10)
	if g, err := user.LookupGroupId(gid); err == nil {
		return g.Name
	}
	return "gid " + gid
}

// adminGroups asks the engine which groups may write ("" and false when
// it cannot tell).
func (e *env) adminGroups() (string, bool) {
	c := e.engine.c
	if c == nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cs, err := c.ClusterStatus(ctx, &enginepb.ClusterStatusRequest{})
	if err != nil {
		return "", false
	}
	return cs.AdminGroups, true
}

// client returns the engine's client, dialing it first.
func (e *env) client() (enginepb.EngineClient, error) {
	ec := e.engine
	target := e.opts.Engine
	if e.opts.Remote != "" {
		target = "remote:" + e.opts.Remote
	}
	if ec.c != nil && ec.path == target {
		return ec.c, nil
	}
	ec.close()
	if e.opts.Remote != "" {
		cc, err := e.dialRemote()
		if err != nil {
			return nil, err
		}
		ec.path, ec.cc, ec.c = target, cc, enginepb.NewEngineClient(cc)
		return ec.c, nil
	}
	if err := probe(e.opts.Engine); err != nil {
		return nil, err
	}
	cc, err := ipc.Dial(e.opts.Engine, ipc.DialOptions{})
	if err != nil {
		return nil, err
	}
	ec.path, ec.cc, ec.c = e.opts.Engine, cc, enginepb.NewEngineClient(cc)
	return ec.c, nil
}

// conn is the raw connection (for the Component service).
func (e *env) conn() (*grpc.ClientConn, error) {
	if _, err := e.client(); err != nil {
		return nil, err
	}
	return e.engine.cc, nil
}

// rpcErr turns an engine error into words: who may do what, whether the
// engine is up, and the engine's own message otherwise.
func (e *env) rpcErr(what string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	if e.opts.Remote != "" {
		return e.remoteErr(what, st)
	}
	switch st.Code() {
	case codes.PermissionDenied:
		if strings.Contains(st.Message(), "WRITE") {
			switch groups, ok := e.adminGroups(); {
			case ok && groups != "":
				return fmt.Errorf("%s: refused: this needs group %s (the engine's admin group) or root; you are %s; nothing was changed", what, groups, whoami())
			case ok:
				return fmt.Errorf("%s: refused: only root may change this engine (it runs without --admin_group); you are %s; nothing was changed", what, whoami())
			}
			return fmt.Errorf("%s: refused: this needs the engine's admin group (seesaw_engine --admin_group) or root; you are %s; nothing was changed", what, whoami())
		}
		return fmt.Errorf("%s: refused: you need group %s to read the engine's state; you are %s", what, cmpOr(dirGroup(e.opts.Engine), "seesaw"), whoami())
	case codes.Unavailable:
		if perr := probe(e.opts.Engine); perr != nil {
			return fmt.Errorf("%s: %w", what, perr)
		}
		return fmt.Errorf("%s: the engine did not answer: %s", what, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: the engine did not answer in time", what)
	case codes.Canceled:
		return fmt.Errorf("%s: interrupted", what)
	}
	return fmt.Errorf("%s: %s", what, st.Message())
}

// call runs f with the engine's client, with a bound on its time.
func call[T any](ctx context.Context, e *env, what string, f func(context.Context, enginepb.EngineClient) (T, error)) (T, error) {
	var zero T
	c, err := e.client()
	if err != nil {
		return zero, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := f(cctx, c)
	if err != nil {
		return zero, e.rpcErr(what, err)
	}
	return r, nil
}

// whoami is "alice (uid 1000)".
func whoami() string {
	uid := os.Getuid()
	name := "uid " + strconv.Itoa(uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		name = u.Username
	}
	return fmt.Sprintf("%s (uid %d)", name, uid)
}
