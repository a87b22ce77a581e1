// Package app is the seesaw_ncc command, outside package main so that the
// multi-call binary (deploy/cmd/seesaw-multicall) links the same code as
// the standalone seesaw_ncc, whose main only calls Main.
package app

import (
	"context"
	"errors"
	"flag"
	"time"

	"github.com/seesawlb/seesaw/ncc"
	"github.com/seesawlb/seesaw/proto/ipc"
)

// Main runs seesaw_ncc on os.Args, as its main did: it exits the process.
// Its flags are registered on flag.CommandLine when it is called, so it runs
// once per process.
func Main() {
	var cfg ncc.Config
	flag.StringVar(&cfg.Socket, "socket", ncc.DefaultSocket, "path of the NCC's Unix socket")
	flag.StringVar(&cfg.EngineUser, "engine_user", ncc.DefaultEngineUser,
		"user the engine runs as, allowed to call the NCC besides root; empty for root only (the default user is skipped when it does not exist)")
	flag.DurationVar(&cfg.AnnounceInterval, "announce_interval", 10*time.Second, "how often to announce the VIPs (gratuitous ARP, unsolicited NA) while the LB interface is up")
	flag.DurationVar(&cfg.AuditInterval, "audit_interval", 30*time.Second, "how often to read the kernel and repair drift from the applied state")
	flag.StringVar(&cfg.StateFile, "state_file", "/var/run/seesaw/ncc/desired.pb", "where to keep the last applied desired state, for --cleanup; empty keeps none")
	flag.StringVar(&cfg.ConntrackdBinary, "conntrackd", "/usr/sbin/conntrackd", "Debian's conntrackd, run for full NAT on a pair (the engine asks for it)")
	flag.StringVar(&cfg.ConntrackdDir, "conntrackd_dir", "", "where conntrackd's configuration, control socket, lock and log go; empty: a conntrackd directory beside -socket")
	cleanup := flag.Bool("cleanup", false, "remove everything the NCC owns (IPVS services and sync daemons; the nftables table inet seesaw; VIPs, VLANs, routes and rules of the last applied state) and exit; the connections through this node end")
	release := flag.Bool("release", false, "give up only what would fight the peer (the VIPs, VLANs, routes and rules of the last applied state; the LB interface down with its own MAC) and exit, keeping IPVS, its connections and sync daemons, and the nftables table for the next start to adopt")
	flag.Parse()

	if *cleanup && *release {
		ipc.Main("seesaw_ncc", func(context.Context) error { return errors.New("--cleanup and --release: choose one") })
	}
	if *release {
		ipc.Main("seesaw_ncc --release", func(context.Context) error { return ncc.ReleaseWith(ncc.Config{StateFile: cfg.StateFile}) })
	}
	if *cleanup {
		ipc.Main("seesaw_ncc --cleanup", func(context.Context) error { return ncc.Cleanup(nil, nil, cfg.StateFile) })
	}
	ipc.Main("seesaw_ncc", func(ctx context.Context) error { return ncc.Run(ctx, cfg) })
}
