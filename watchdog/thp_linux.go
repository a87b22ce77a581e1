package watchdog

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// NoHugePages makes this process, and every service it starts afterwards,
// run without transparent huge pages. Debian's kernels default to THP
// "always": each Go daemon's heap and runtime metadata were backed by, or
// collapsed by khugepaged into, 2 MiB pages, 6 MiB a process (36 MiB for
// the appliance) for heaps of 1 to 4 MiB that gain nothing from fewer TLB
// misses.
//
// The kernel's switch (PR_SET_THP_DISABLE) is inherited through fork and
// kept across execve, but covers only what is mapped after it is set, and
// the Go runtime maps its first heap pages before main. So when the
// process did not inherit it, NoHugePages sets it and executes the running
// binary again in place (the same pid, arguments and environment): it
// returns nil only when the switch was already on, and otherwise an error
// saying why it could not start again, with the switch on for what
// follows if setting it worked.
func NoHugePages() error {
	on, err := unix.PrctlRetInt(unix.PR_GET_THP_DISABLE, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("prctl PR_GET_THP_DISABLE: %w", err)
	}
	if on != 0 {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_THP_DISABLE: %w", err)
	}
	// Without this check a kernel that ignored the switch would have the
	// process execute itself forever.
	if on, err := unix.PrctlRetInt(unix.PR_GET_THP_DISABLE, 0, 0, 0, 0); err != nil || on == 0 {
		return errors.Join(errors.New("prctl PR_SET_THP_DISABLE did not take"), err)
	}
	// By its path, which the kernel takes the process's name (comm, what
	// ps -C and pgrep match) from: executing /proc/self/exe would name it
	// "exe". That is the file this process runs unless it has been
	// replaced on disk since, in which case the new one starts, as it
	// would on a restart. The multi-call binary finds its command again by
	// argv[0].
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("execute this binary again: %w", err)
	}
	return fmt.Errorf("execute %s again: %w", exe, unix.Exec(exe, os.Args, os.Environ()))
}
