// Package app is the seesaw_engine command, outside package main so that the
// multi-call binary (deploy/cmd/seesaw-multicall) links the same code as
// the standalone seesaw_engine, whose main only calls Main.
package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/seesawlb/seesaw/engine"
	"github.com/seesawlb/seesaw/engine/dataplane"
	"github.com/seesawlb/seesaw/engine/peer"
	"github.com/seesawlb/seesaw/engine/source"
	"github.com/seesawlb/seesaw/proto/ipc"
	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// Main runs seesaw_engine on os.Args, as its main did: it exits the process.
// Its flags are registered on flag.CommandLine when it is called, so it runs
// once per process.
func Main() {
	if len(os.Args) > 1 && os.Args[1] == "plan" {
		os.Exit(plan(os.Args[2:], os.Stdout, os.Stderr))
	}
	var cfg engine.Config
	flag.StringVar(&cfg.Socket, "socket", engine.DefaultSocket, "path of the engine's Unix socket")
	flag.StringVar(&cfg.NCCSocket, "ncc_socket", engine.DefaultNCCSocket, "path of the NCC's Unix socket")
	flag.StringVar(&cfg.HealthcheckSocket, "healthcheck_socket", engine.DefaultHealthcheckSocket,
		"path of the healthcheck process's Unix socket, asked for the checks' history (empty: no history)")
	flag.StringVar(&cfg.EngineConf, "conf", engine.DefaultEngineConf, "path of seesaw.cfg")
	flag.StringVar(&cfg.ClusterConf, "cluster", engine.DefaultClusterConf, "path of cluster.pb")
	flag.StringVar(&cfg.StateFile, "state_file", engine.DefaultStateFile,
		"where the engine keeps its overrides and firewall marks across restarts (empty: nowhere)")
	flag.DurationVar(&cfg.WatchInterval, "watch_interval", 0,
		"how often seesaw.cfg and cluster.pb are looked at for changes (default 250ms; negative: not watched, SIGHUP and config reload only)")
	flag.StringVar(&cfg.ReaderGroup, "reader_group", engine.DefaultReaderGroup,
		"groups (comma-separated) that may read the engine's state; they own the socket directory (the default group is skipped when it does not exist)")
	flag.StringVar(&cfg.AdminGroup, "admin_group", "", "groups (comma-separated) that may also change it (reload, failover, overrides); empty: root only")
	flag.StringVar(&cfg.DaemonUsers, "daemon_user", engine.DefaultDaemonUser, "users (comma-separated) that HA and healthcheck run as")
	flag.StringVar(&cfg.SSLDir, "ssl_dir", peer.DefaultSSLDir,
		"directory of the cluster CA and this node's certificate (ca.crt, seesaw.crt, seesaw.key): peer sync's mutual TLS and the config server's CA")
	flag.StringVar(&cfg.ConfigArchive, "config_archive", source.DefaultArchiveDir, "directory keeping every config applied from the config server or the peer")
	flag.IntVar(&cfg.ArchiveKeep, "config_archive_keep", source.DefaultArchiveKeep, "how many configs the archive keeps (the newest)")
	healthFailover := flag.Bool("health_failover", true,
		"as master, hand over to a backup that sees clearly more healthy destinations (over peer sync; a margin of max(2, 10%), held 10s, 5m apart)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: seesaw_engine [flags]\n       seesaw_engine plan [--help] [flags]\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	cfg.HealthFailover.Disabled = !*healthFailover

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	cfg.Reload = hup
	// SIGUSR2: the watchdog's reload restarts the engine (engine.Config.Restart).
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	cfg.Restart = usr2
	ipc.Main("seesaw_engine", func(ctx context.Context) error { return engine.Run(ctx, cfg) })
}

// plan is `seesaw_engine plan`: the desired state the files give, printed
// as text or JSON. Exit status 0, 1 when the config is rejected, 2 on a
// usage error.
func plan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seesaw_engine plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conf := fs.String("conf", engine.DefaultEngineConf, "path of seesaw.cfg (it names this node)")
	cluster := fs.String("cluster", engine.DefaultClusterConf, "path of cluster.pb")
	state := fs.String("state", "master", "this node's HA state: master or backup")
	healthy := fs.String("healthy", "all", "the checks' results: all (every check healthy) or none")
	asJSON := fs.Bool("json", false, "print the desired state as JSON (the NCC's DesiredState message)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: seesaw_engine plan [--conf FILE] [--cluster FILE] [--state master|backup] [--healthy all|none] [--json]\n\n"+
			"Prints the data plane (IPVS services, VIPs, routes, rules, nftables rules, sysctls) that the\n"+
			"engine would have the NCC apply for these files, computed as the running engine does, without\n"+
			"any daemon. A running engine answers the same for a candidate config with `seesaw config diff`.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seesaw_engine plan: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	var ha seesawpb.HAState
	switch strings.ToLower(*state) {
	case "master", "leader":
		ha = seesawpb.HAState_HA_STATE_LEADER
	case "backup":
		ha = seesawpb.HAState_HA_STATE_BACKUP
	default:
		fmt.Fprintf(stderr, "seesaw_engine plan: --state %q: want master or backup\n", *state)
		return 2
	}
	if *healthy != "all" && *healthy != "none" {
		fmt.Fprintf(stderr, "seesaw_engine plan: --healthy %q: want all or none\n", *healthy)
		return 2
	}
	p, res, err := engine.PlanFiles(*conf, *cluster, ha, *healthy == "all")
	if res != nil {
		for _, w := range res.Warnings {
			fmt.Fprintf(stderr, "warning: %v\n", w)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "seesaw_engine plan: the config is rejected:\n%v\n", err)
		return 1
	}
	for _, w := range p.Model.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	for _, v := range p.Vservers {
		for _, w := range v.Warnings {
			fmt.Fprintf(stderr, "warning: vserver %s: %s\n", v.Name, w)
		}
	}
	if *asJSON {
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(p.Desired)
		if err != nil {
			fmt.Fprintf(stderr, "seesaw_engine plan: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	fmt.Fprint(stdout, dataplane.Text(p.Desired))
	return 0
}
