package ncc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/deploy/testenv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

func TestMain(m *testing.M) {
	flag.Set("logtostderr", "true")
	os.Exit(m.Run())
}

func TestNCCReportsMissingIPVSAndKeepsServing(t *testing.T) {
	testenv.RequireRoot(t) // the NCC answers root only
	var present atomic.Bool
	probe := func() (ipvs.GenlFamily, error) {
		if present.Load() {
			return ipvs.GenlFamily{ID: 33, Version: 1}, nil
		}
		return ipvs.GenlFamily{}, fmt.Errorf("ipvs: probe: %w: %s", ipvs.ErrNotAvailable, ipvs.Hint)
	}
	sock := filepath.Join(t.TempDir(), "ncc", "ncc.sock")
	_, openNFT := nftNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Socket: sock, EngineUser: "", ProbeInterval: 20 * time.Millisecond, Probe: probe,
			IPVS: func() (reconcile.IPVS, error) {
				return nil, fmt.Errorf("ipvs: %w: %s", ipvs.ErrNotAvailable, ipvs.Hint)
			}, NFT: openNFT})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	cc, err := ipc.Dial(sock, ipc.DialOptions{MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	comp := seesawpb.NewComponentClient(cc)
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ccancel()
	st, err := comp.Status(cctx, &seesawpb.StatusRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	f := facility(st, "ipvs")
	if st.Healthy || f == nil || f.Available || !strings.Contains(f.Detail, "modprobe ip_vs") {
		t.Fatalf("status without IPVS: %v", st)
	}
	if st.Component != "ncc" || st.Pid != int32(os.Getpid()) {
		t.Errorf("identity: %v", st)
	}

	resp, err := nccpb.NewNCCClient(cc).Apply(cctx, &nccpb.ApplyRequest{})
	if err != nil || len(resp.Errors) != 1 || resp.Errors[0].Kind != "ipvs" || !strings.Contains(resp.Errors[0].Message, "modprobe ip_vs") {
		t.Errorf("Apply without IPVS: %v, %v; want an ipvs error with a hint", resp, err)
	}
	_, err = nccpb.NewNCCClient(cc).Announce(cctx, &nccpb.AnnounceRequest{})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "no network state has been applied") {
		t.Errorf("Announce before any state: %v, want FailedPrecondition", err)
	}

	// ip_vs is loaded later: the NCC notices without a restart.
	present.Store(true)
	for {
		st, err := comp.Status(cctx, &seesawpb.StatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if f := facility(st, "ipvs"); f != nil && f.Available {
			if st.Details["ipvs_family_id"] != "33" {
				t.Errorf("details %v", st.Details)
			}
			// Healthy now: the whole data plane is in this build.
			if f := facility(st, "dataplane"); !st.Healthy || f == nil || !f.Available || !strings.Contains(f.Detail, "nftables") {
				t.Errorf("NCC with IPVS and its whole data plane is not healthy: %v", st)
			}
			break
		}
		if cctx.Err() != nil {
			t.Fatal("IPVS appearing was never noticed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPolicy(t *testing.T) {
	p, gid, err := policy("root")
	if err != nil || gid != 0 || len(p.Internal.UIDs) != 1 || p.Internal.UIDs[0] != 0 {
		t.Errorf("policy(root) = %+v, %d, %v", p, gid, err)
	}
	if _, _, err := policy("no-such-engine-user"); !errors.Is(err, ipc.ErrUnknownName) {
		t.Errorf("an explicit missing user: %v, want an error", err)
	}
	if p, _, err := policy(""); err != nil || len(p.Read.UIDs) != 0 {
		t.Errorf("policy(\"\") = %+v, %v, want root only", p, err)
	}
	if _, _, err := ipc.LookupUser(DefaultEngineUser); errors.Is(err, ipc.ErrUnknownName) {
		if p, _, err := policy(DefaultEngineUser); err != nil || len(p.Read.UIDs) != 0 {
			t.Errorf("missing default user: %+v, %v, want root only", p, err)
		}
	}
}

func TestRefusesNonRoot(t *testing.T) {
	if err := requireRoot(1000); err == nil || !strings.Contains(err.Error(), "must run as root") {
		t.Errorf("requireRoot(1000) = %v, want a refusal", err)
	}
	if err := requireRoot(0); err != nil {
		t.Errorf("requireRoot(0) = %v", err)
	}
}

func facility(st *seesawpb.ComponentStatus, name string) *seesawpb.Facility {
	for _, f := range st.Facilities {
		if f.Name == name {
			return f
		}
	}
	return nil
}
