package lab

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockHolder reports whether another process holds an fcntl lock on path,
// as apt and dpkg take them, and that process's PID (0 when the kernel does
// not say, as for open file description locks).
func lockHolder(path string) (pid int, held bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil || lk.Type == unix.F_UNLCK {
		return 0, false
	}
	return max(0, int(lk.Pid)), true
}
