package watchdog

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
)

// startProcess starts cmd with nice value priority. The nice value is set on
// the forking thread, which the child inherits, rather than on the child after
// it starts: on Linux nice is per thread, and a Go child has spawned threads
// before the parent could renice it, leaving some at the old value.
func startProcess(cmd *exec.Cmd, priority int) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		tid := syscall.Gettid()
		// The raw syscall returns 20-nice so that it is never negative.
		raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("getpriority: %w", err)
			return
		}
		old := 20 - raw
		if old != priority {
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, priority); err != nil {
				runtime.UnlockOSThread()
				errc <- fmt.Errorf("setpriority %d: %w", priority, err)
				return
			}
		}
		err = cmd.Start()
		if old != priority {
			if rerr := syscall.Setpriority(syscall.PRIO_PROCESS, tid, old); rerr != nil {
				// Return with the thread still locked: the runtime then
				// retires it instead of running other goroutines at the
				// service's nice value.
				errc <- err
				return
			}
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}
