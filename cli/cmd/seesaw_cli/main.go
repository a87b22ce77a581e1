// Command seesaw_cli is the Seesaw command line. See package cli.
package main

import "github.com/seesawlb/seesaw/cli/cmd/seesaw_cli/app"

func main() { app.Main() }
