package ipc

import (
	"github.com/prometheus/procfs"

	seesawpb "github.com/seesawlb/seesaw/proto/seesaw"
)

// readProcess reads this process's figures from /proc/self, or returns nil
// when its stat cannot be read. A part that fails (the fd directory, the
// limits) is left unset.
func readProcess() *seesawpb.ProcessStats {
	p, err := procfs.Self()
	if err != nil {
		return nil
	}
	stat, err := p.Stat()
	if err != nil {
		return nil
	}
	ps := &seesawpb.ProcessStats{
		CpuSeconds:          stat.CPUTime(),
		ResidentMemoryBytes: uint64(stat.ResidentMemory()),
		VirtualMemoryBytes:  uint64(stat.VirtualMemory()),
	}
	if t, err := stat.StartTime(); err == nil {
		ps.StartTimeSeconds = t
	}
	if n, err := p.FileDescriptorsLen(); err == nil {
		u := uint64(n)
		ps.OpenFds = &u
	}
	if l, err := p.Limits(); err == nil {
		files, as := l.OpenFiles, l.AddressSpace
		ps.MaxFds, ps.VirtualMemoryMaxBytes = &files, &as
	}
	return ps
}
