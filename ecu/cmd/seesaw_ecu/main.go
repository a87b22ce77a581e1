// Command seesaw_ecu serves Seesaw's monitoring endpoint over HTTP (port
// 10257 by default) and its own status on a Unix socket.
package main

import "github.com/seesawlb/seesaw/ecu/cmd/seesaw_ecu/app"

func main() { app.Main() }
