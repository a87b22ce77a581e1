// Command seesaw_watchdog supervises the other Seesaw daemons as configured in
// watchdog.cfg: it starts them in dependency order, restarts them when they
// exit, stops them in reverse order on SIGTERM, reports their status on its
// Unix socket, and talks to systemd when run as a Type=notify service.
package main

import "github.com/seesawlb/seesaw/watchdog/cmd/seesaw_watchdog/app"

func main() { app.Main() }
