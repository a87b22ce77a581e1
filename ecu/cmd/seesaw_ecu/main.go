// Command seesaw_ecu serves Seesaw's monitoring endpoint over HTTP (port
// 10257 by default) and its own status on a Unix socket.
package main

import (
	"context"
	"flag"

	"github.com/seesawlb/seesaw/ecu"
	"github.com/seesawlb/seesaw/proto/ipc"
)

func main() {
	var cfg ecu.Config
	var ncc, ha, hc, wd string
	flag.StringVar(&cfg.Socket, "socket", ecu.DefaultSocket, "path of the ECU's Unix socket")
	flag.StringVar(&cfg.EngineSocket, "engine_socket", ecu.DefaultEngineSocket, "path of the engine's Unix socket")
	flag.StringVar(&ncc, "ncc_socket", ecu.DefaultNCCSocket, "path of the NCC's Unix socket (for the status page; empty to skip)")
	flag.StringVar(&ha, "ha_socket", ecu.DefaultHASocket, "path of HA's Unix socket (for the status page; empty to skip)")
	flag.StringVar(&hc, "healthcheck_socket", ecu.DefaultHealthcheckSocket, "path of healthcheck's Unix socket (for the status page; empty to skip)")
	flag.StringVar(&wd, "watchdog_socket", ecu.DefaultWatchdogSocket, "path of the watchdog's Unix socket (for the status page; empty to skip)")
	flag.StringVar(&cfg.HTTPAddr, "http_addr", ecu.DefaultHTTPAddr, "host:port of the HTTP monitoring listener")
	flag.Parse()
	cfg.Components = map[string]string{"ncc": ncc, "ha": ha, "healthcheck": hc, "watchdog": wd}

	ipc.Main("seesaw_ecu", func(ctx context.Context) error { return ecu.Run(ctx, cfg) })
}
