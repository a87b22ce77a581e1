// Command seesaw_engine is the Seesaw engine: it loads the config, steers HA
// and healthcheck, and answers operators on its Unix socket. SIGHUP re-reads
// the config from disk.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/seesawlb/seesaw/engine"
	"github.com/seesawlb/seesaw/proto/ipc"
)

func main() {
	var cfg engine.Config
	flag.StringVar(&cfg.Socket, "socket", engine.DefaultSocket, "path of the engine's Unix socket")
	flag.StringVar(&cfg.NCCSocket, "ncc_socket", engine.DefaultNCCSocket, "path of the NCC's Unix socket")
	flag.StringVar(&cfg.EngineConf, "conf", engine.DefaultEngineConf, "path of seesaw.cfg")
	flag.StringVar(&cfg.ClusterConf, "cluster", engine.DefaultClusterConf, "path of cluster.pb")
	flag.StringVar(&cfg.ReaderGroup, "reader_group", engine.DefaultReaderGroup,
		"groups (comma-separated) that may read the engine's state; they own the socket directory (the default group is skipped when it does not exist)")
	flag.StringVar(&cfg.AdminGroup, "admin_group", "", "groups (comma-separated) that may also change it (reload, failover, overrides); empty: root only")
	flag.StringVar(&cfg.DaemonUsers, "daemon_user", engine.DefaultDaemonUser, "users (comma-separated) that HA and healthcheck run as")
	flag.Parse()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	cfg.Reload = hup
	ipc.Main("seesaw_engine", func(ctx context.Context) error { return engine.Run(ctx, cfg) })
}
