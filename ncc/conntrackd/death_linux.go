package conntrackd

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the child when the NCC dies: a
// conntrackd left behind would hold the lock and socket the next NCC's
// wants. It stays in the NCC's process group, so the watchdog's kill of
// the NCC's group takes it too.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
