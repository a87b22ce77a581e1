// Package app is the seesaw_ecu command, outside package main so that the
// multi-call binary (deploy/cmd/seesaw-multicall) links the same code as
// the standalone seesaw_ecu, whose main only calls Main.
package app

import (
	"context"
	"flag"
	"time"

	"github.com/seesawlb/seesaw/ecu"
	"github.com/seesawlb/seesaw/proto/ipc"
)

// Main runs seesaw_ecu on os.Args, as its main did: it exits the process.
// Its flags are registered on flag.CommandLine when it is called, so it runs
// once per process.
func Main() {
	var cfg ecu.Config
	var ncc, ha, hc, wd string
	flag.StringVar(&cfg.Socket, "socket", ecu.DefaultSocket, "path of the ECU's Unix socket")
	flag.StringVar(&cfg.EngineSocket, "engine_socket", ecu.DefaultEngineSocket, "path of the engine's Unix socket")
	flag.StringVar(&ncc, "ncc_socket", ecu.DefaultNCCSocket, "path of the NCC's Unix socket (for the status page; empty to skip)")
	flag.StringVar(&ha, "ha_socket", ecu.DefaultHASocket, "path of HA's Unix socket (for the status page; empty to skip)")
	flag.StringVar(&hc, "healthcheck_socket", ecu.DefaultHealthcheckSocket, "path of healthcheck's Unix socket (for the status page; empty to skip)")
	flag.StringVar(&wd, "watchdog_socket", ecu.DefaultWatchdogSocket, "path of the watchdog's Unix socket (for the status page; empty to skip)")
	flag.StringVar(&cfg.HTTPAddr, "http_addr", ecu.DefaultHTTPAddr, "host:port of the HTTP monitoring listener")
	flag.DurationVar(&cfg.SnapshotTimeout, "snapshot_timeout", 10*time.Second, "bound on reading the engine's state for the page, the API and /metrics")
	flag.StringVar(&cfg.ControlAddr, "control_addr", ecu.DefaultControlAddr, "host:port of remote control (mutual TLS; - to turn it off)")
	flag.StringVar(&cfg.SSLDir, "ssl_dir", ecu.DefaultSSLDir, "directory of remote control's ca.crt, seesaw.crt and seesaw.key (remote control is off without them)")
	flag.StringVar(&cfg.EngineConf, "engine_conf", ecu.DefaultEngineConf, "seesaw.cfg, whose [remote_control] admin and reader name the certificates allowed")
	flag.Parse()
	cfg.Components = map[string]string{"ncc": ncc, "ha": ha, "healthcheck": hc, "watchdog": wd}

	ipc.Main("seesaw_ecu", func(ctx context.Context) error { return ecu.Run(ctx, cfg) })
}
