package ipvs

import (
	"errors"
	"io/fs"
	"syscall"
)

// ErrDumpInterrupted is wrapped when the kernel kept marking a dump
// inconsistent (NLM_F_DUMP_INTR: the table changed while it was read) after
// every retry.
var ErrDumpInterrupted = errors.New("dump interrupted by concurrent changes")

// Error is a failed IPVS operation: what was asked, of what, the kernel's
// answer, and a hint for the operator when there is a likely cause.
type Error struct {
	Op     string // "create service", "list destinations", ...
	Object string // "TCP 192.0.2.1:80", "TCP 192.0.2.1:80 -> 10.0.0.1:80"; may be empty
	Err    error
	Hint   string // may be empty
}

func (e *Error) Error() string {
	s := "ipvs: " + e.Op
	if e.Object != "" {
		s += " " + e.Object
	}
	s += ": " + e.Err.Error()
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes the kernel's "no such service" (ESRCH) match fs.ErrNotExist, like
// its "no such destination" (ENOENT) already does.
func (e *Error) Is(target error) bool {
	var errno syscall.Errno
	return target == fs.ErrNotExist && errors.As(e.Err, &errno) && errno == syscall.ESRCH
}

// errno is the kernel's error number in err, or 0.
func errno(err error) syscall.Errno {
	var n syscall.Errno
	if errors.As(err, &n) {
		return n
	}
	return 0
}

// newError wraps a failure of op with a hint chosen from the errno.
func newError(op, object string, err error, sched string) error {
	e := &Error{Op: op, Object: object, Err: err}
	switch errno(err) {
	case syscall.EPERM, syscall.EACCES:
		e.Hint = "needs CAP_NET_ADMIN in the network namespace"
	case syscall.ENOENT:
		if sched != "" {
			e.Hint = "is the scheduler module ip_vs_" + sched + " available?"
		}
	case syscall.ESRCH:
		e.Hint = "no such service"
	case syscall.EEXIST:
		e.Hint = "already exists"
	case syscall.EINVAL:
		e.Hint = "the kernel refused a value"
	case syscall.EAFNOSUPPORT:
		e.Hint = "is the kernel built with CONFIG_IP_VS_IPV6?"
	case syscall.ENOTSUP:
		e.Hint = "not supported by this kernel"
	}
	return e
}
