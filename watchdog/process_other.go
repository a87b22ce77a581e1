//go:build !linux

package watchdog

import (
	"fmt"
	"os/exec"
	"syscall"
)

// startProcess starts cmd and then sets its nice value; elsewhere than Linux
// nice is per process, so setting it after the start is good enough.
func startProcess(cmd *exec.Cmd, priority int) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	if priority != 0 {
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, priority); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return fmt.Errorf("setpriority %d: %w", priority, err)
		}
	}
	return nil
}
