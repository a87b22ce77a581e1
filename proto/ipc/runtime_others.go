//go:build !linux

package ipc

import seesawpb "github.com/seesawlb/seesaw/proto/seesaw"

// readProcess has no /proc to read outside Linux.
func readProcess() *seesawpb.ProcessStats { return nil }
