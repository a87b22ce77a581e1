// Package ncc is the network control centre daemon: the only process that
// changes the host (IPVS, links, addresses, routes, nftables), on the
// engine's behalf.
//
// This build is the skeleton: it serves the NCC service and its status on
// its socket, finds out whether the kernel has IPVS and says so, and answers
// every data-plane call with Unimplemented. It never exits for want of a
// kernel facility, so the watchdog does not restart it in a loop.
package ncc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

const (
	// DefaultSocket is where the NCC listens unless told otherwise.
	DefaultSocket = "/var/run/seesaw/ncc/ncc.sock"
	// DefaultEngineUser is the user the engine runs as. When the flag keeps
	// this default and no such user exists, the NCC answers root only.
	DefaultEngineUser = "seesaw"
)

// Config is what the NCC runs with.
type Config struct {
	// Socket is the path the NCC serves on.
	Socket string
	// EngineUser may call the NCC besides root (the engine's user). Empty:
	// root only.
	EngineUser string
	// ProbeInterval is how often the NCC looks for IPVS again, so that
	// loading ip_vs later is noticed without a restart. Default 30s.
	ProbeInterval time.Duration
	// Probe finds the kernel's IPVS; nil uses ipvs.Probe. Tests replace it.
	Probe func() (ipvs.GenlFamily, error)
	// SkipRootCheck lets a test run the NCC as another user. The daemon
	// never sets it.
	SkipRootCheck bool
}

// notInBuild is the answer to every data-plane call until the data plane exists.
func notInBuild(method string) error {
	return status.Errorf(codes.Unimplemented,
		"ncc: %s: the data plane (IPVS, addresses, routes, nftables) is not in this build; this NCC only reports its status", method)
}

// server answers the NCC service.
type server struct {
	nccpb.UnimplementedNCCServer
}

func (server) Apply(context.Context, *nccpb.ApplyRequest) (*nccpb.ApplyResponse, error) {
	return nil, notInBuild("Apply")
}

func (server) GetState(context.Context, *nccpb.GetStateRequest) (*nccpb.GetStateResponse, error) {
	return nil, notInBuild("GetState")
}

func (server) Announce(context.Context, *nccpb.AnnounceRequest) (*nccpb.AnnounceResponse, error) {
	return nil, notInBuild("Announce")
}

// requireRoot refuses any user but root: the NCC changes the host's network
// state and must not run half-able.
func requireRoot(euid int) error {
	if euid != 0 {
		return fmt.Errorf("ncc: must run as root (uid 0), not uid %d: it is the process that changes the host's network state", euid)
	}
	return nil
}

// Run serves the NCC until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	if err := requireRoot(os.Geteuid()); err != nil && !cfg.SkipRootCheck {
		return err
	}
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 30 * time.Second
	}
	if cfg.Probe == nil {
		cfg.Probe = ipvs.Probe
	}
	policy, gid, err := policy(cfg.EngineUser)
	if err != nil {
		return err
	}

	comp := ipc.NewComponent("ncc")
	comp.SetFacility("dataplane", false, "the NCC does not program IPVS, addresses, routes or nftables in this build: Apply, GetState and Announce return Unimplemented")
	comp.SetDetail("socket", cfg.Socket)
	probe(comp, cfg.Probe)

	srv, err := ipc.NewServer(ipc.ServerOptions{
		Path:       cfg.Socket,
		DirMode:    0o750,
		SocketMode: 0o660,
		GID:        gid,
		Policy:     policy,
		Logf:       glog.Warningf,
	})
	if err != nil {
		return fmt.Errorf("ncc: %w", err)
	}
	nccpb.RegisterNCCServer(srv, server{})
	seesawpb.RegisterComponentServer(srv, comp)
	glog.Infof("ncc: serving on %s", cfg.Socket)

	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(cfg.ProbeInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				probe(comp, cfg.Probe)
			}
		}
	})
	err = srv.Serve(ctx, 5*time.Second)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("ncc: %w", err)
	}
	glog.Infof("ncc: stopped")
	return nil
}

// probe looks for IPVS and records the answer, logging only when it changes.
func probe(comp *ipc.Component, p func() (ipvs.GenlFamily, error)) {
	f, err := p()
	switch {
	case err == nil:
		comp.SetDetail("ipvs_family_id", strconv.Itoa(int(f.ID)))
		if comp.SetFacility("ipvs", true, fmt.Sprintf("generic netlink family %q id %d version %d", ipvs.FamilyName, f.ID, f.Version)) {
			glog.Infof("ncc: IPVS available (generic netlink family id %d)", f.ID)
		}
	case errors.Is(err, ipvs.ErrNotAvailable):
		comp.SetDetail("ipvs_family_id", "")
		if comp.SetFacility("ipvs", false, fmt.Sprintf("%v: %s", ipvs.ErrNotAvailable, ipvs.Hint)) {
			glog.Errorf("ncc: IPVS is not available: %v; the NCC keeps running and reports this in its status", err)
		}
	default:
		comp.SetDetail("ipvs_family_id", "")
		if comp.SetFacility("ipvs", false, err.Error()) {
			glog.Errorf("ncc: cannot tell whether IPVS is available: %v", err)
		}
	}
}

// policy lets root and the engine's user call every method. It also returns
// the engine user's primary group, which owns the socket's directory so that
// the engine can reach the socket.
func policy(engineUser string) (ipc.Policy, int, error) {
	if engineUser == "" {
		glog.Infof("ncc: no engine user given: answering root only")
		return ipc.RootOnly, -1, nil
	}
	uid, gid, err := ipc.LookupUser(engineUser)
	if errors.Is(err, ipc.ErrUnknownName) && engineUser == DefaultEngineUser {
		glog.Infof("ncc: user %q does not exist: answering root only", engineUser)
		return ipc.RootOnly, -1, nil
	}
	if err != nil {
		return ipc.Policy{}, 0, fmt.Errorf("ncc: engine user: %w", err)
	}
	glog.Infof("ncc: answering root and user %q (uid %d)", engineUser, uid)
	r := ipc.Rule{UIDs: []uint32{uid}}
	return ipc.Policy{Read: r, Write: r, Internal: r}, int(gid), nil
}
