// Command seesaw_healthcheck is the health-checking daemon: it keeps a
// session with the engine and checks the backends. `seesaw_healthcheck
// check --type ... --address ...` instead runs one check and exits 0 when
// healthy, 1 when not, 2 on bad arguments.
package main

import "github.com/seesawlb/seesaw/healthcheck/cmd/seesaw_healthcheck/app"

func main() { app.Main() }
