// Command hcbench measures the health checker at scale against HAProxy
// (`make bench`). It needs root, nftables and haproxy, and touches only a
// network namespace of its own.
package main

import (
	"os"

	"github.com/seesawlb/seesaw/healthcheck/internal/hcbench"
)

func main() { os.Exit(hcbench.Main(os.Args[1:], os.Stdout, os.Stderr)) }
