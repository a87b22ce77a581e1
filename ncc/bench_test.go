package ncc

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/seesawlb/seesaw/ncc/ipvs"
	"github.com/seesawlb/seesaw/ncc/ipvs/ipvstest"
	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/reconcile"
	"github.com/seesawlb/seesaw/proto/ipc"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// BenchmarkApplyRPCNoop is what the engine pays to send the NCC a desired
// state of 10,000 services of 10 destinations that the kernel already
// holds: encoding, the socket, decoding, validation and the comparison. The
// kernel is the fake: a no-op makes no kernel calls.
func BenchmarkApplyRPCNoop(b *testing.B) {
	k := ipvstest.New()
	sock := filepath.Join(b.TempDir(), "ncc.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Run(ctx, Config{Socket: sock, SkipRootCheck: true, AuditInterval: time.Hour,
		Probe: func() (ipvs.GenlFamily, error) { return ipvs.GenlFamily{ID: ipvstest.FamilyID}, nil },
		IPVS:  func() (reconcile.IPVS, error) { return k.Client() },
		// The host's nftables are not the benchmark's to read.
		NFT: func() (*nft.Reconciler, error) { return nil, nft.ErrNotSupported }})
	cc, err := ipc.Dial(sock, ipc.DialOptions{MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	c := nccpb.NewNCCClient(cc)
	ds := &nccpb.DesiredState{}
	for i := range 10000 {
		s := &nccpb.Service{Protocol: nccpb.Protocol_TCP, Address: fmt.Sprintf("10.%d.%d.%d", 100+i>>16, i>>8&255, i&255), Port: 80, Scheduler: "wrr"}
		for j := range 10 {
			s.Destinations = append(s.Destinations, &nccpb.Destination{Address: fmt.Sprintf("10.%d.%d.%d", 200+j, i>>8&255, i&255), Port: 8080, Weight: 1})
		}
		ds.Services = append(ds.Services, s)
	}
	req := &nccpb.ApplyRequest{Desired: ds}
	opts := []grpc.CallOption{grpc.WaitForReady(true), grpc.MaxCallSendMsgSize(64 << 20), grpc.MaxCallRecvMsgSize(64 << 20)}
	if _, err := c.Apply(ctx, req, opts...); err != nil {
		b.Fatal(err)
	}
	w := k.Writes()
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Apply(ctx, req, opts...)
		if err != nil || len(resp.Changes) != 0 {
			b.Fatal(err)
		}
	}
	if k.Writes() != w {
		b.Fatalf("no-op applies wrote %d times", k.Writes()-w)
	}
}
