//go:build !linux

package hcbench

import (
	"fmt"
	"io"
)

// Main fails: the benchmark needs Linux network namespaces and nftables.
func Main(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "hcbench: needs Linux (network namespaces, nftables)")
	return 1
}
