package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrTimeout is wrapped by the error Run returns when the time limit ran
// out and the guest was killed.
var ErrTimeout = errors.New("time limit reached")

// ErrGuest is wrapped by the errors Run returns when the guest did not
// report the command's exit status: it failed to boot, its init failed, or
// its kernel panicked.
var ErrGuest = errors.New("the guest failed")

// Options describe one guest run.
type Options struct {
	Argv []string // the command; required
	Dir  string   // its working directory in the guest; default: the current one
	Env  []string // its environment; default: os.Environ()

	// Writable host directories are shared into the guest at the same path,
	// writable, so that results come back out. Everything else of the
	// host's filesystem is read-only in the guest, except /tmp and /run,
	// which are the guest's own tmpfs.
	Writable []string
	// ReadOnly host directories are shared at the same path read-only; use
	// it for directories under /tmp or /run, which the guest's tmpfs hides.
	ReadOnly []string

	MemMiB  int           // default 1024
	CPUs    int           // default 2
	Timeout time.Duration // kill the guest after this long; 0: no limit

	// TTY runs the command on the guest's serial console, attached to this
	// process's terminal (stdin, stdout), for interactive use: stdout and
	// stderr are not kept apart then.
	TTY bool

	Stdout, Stderr io.Writer // default: os.Stdout, os.Stderr
	Console        io.Writer // when set, the kernel's console output is copied here
	QEMU           string    // default: qemu-system-x86_64
	KernelArgs     string    // appended to the kernel's command line (e.g. for debugging: loglevel=7)

	// Forward makes TCP ports of the guest reachable from the host. With
	// any, the guest gets a virtio NIC (eth0, GuestNICAddr) on qemu's
	// user-mode network with restrict=on: the host reaches the guest only
	// through these ports, and the guest reaches nothing outside.
	Forward []Forward
}

// GuestNICAddr is the guest's address on its NIC when Options.Forward
// gives it one: the address qemu's user-mode network forwards ports to.
const GuestNICAddr = "10.0.2.15/24"

// Forward is one TCP port forwarded from the host into the guest: qemu
// listens on HostAddr:HostPort and connects to GuestNICAddr:GuestPort.
type Forward struct {
	HostAddr  string // a loopback IPv4 address; default 127.0.0.1
	HostPort  int
	GuestPort int
}

func (f Forward) String() string {
	return fmt.Sprintf("%s:%d:%d", f.HostAddr, f.HostPort, f.GuestPort)
}

// ParseForward parses [HOSTADDR:]HOSTPORT:GUESTPORT, for example
// 127.0.0.1:10257:10257 or 8080:80.
func ParseForward(s string) (Forward, error) {
	parts := strings.Split(s, ":")
	f := Forward{HostAddr: "127.0.0.1"}
	switch len(parts) {
	case 2:
	case 3:
		f.HostAddr, parts = parts[0], parts[1:]
	default:
		return Forward{}, fmt.Errorf("lab: forward %q: want [HOSTADDR:]HOSTPORT:GUESTPORT", s)
	}
	var err error
	if f.HostPort, err = strconv.Atoi(parts[0]); err != nil {
		return Forward{}, fmt.Errorf("lab: forward %q: host port: %w", s, err)
	}
	if f.GuestPort, err = strconv.Atoi(parts[1]); err != nil {
		return Forward{}, fmt.Errorf("lab: forward %q: guest port: %w", s, err)
	}
	return f, f.check()
}

// check accepts only loopback host addresses: what the guest serves (the
// ECU's status page, for one) has no authentication, so it must not be
// offered to the host's network.
func (f Forward) check() error {
	a, err := netip.ParseAddr(f.HostAddr)
	if err != nil || !a.Is4() || !a.IsLoopback() {
		return fmt.Errorf("lab: forward %s: the host address must be a loopback IPv4 address such as 127.0.0.1", f)
	}
	if f.HostPort < 1 || f.HostPort > 65535 || f.GuestPort < 1 || f.GuestPort > 65535 {
		return fmt.Errorf("lab: forward %s: ports must be 1-65535", f)
	}
	return nil
}

// Run boots a guest from a, runs the command in it, and returns the
// command's exit status. The error is non-nil only when the guest did not
// report an exit status: see ErrTimeout and ErrGuest.
func Run(ctx context.Context, a Assets, o Options) (int, error) {
	if len(o.Argv) == 0 {
		return 0, errors.New("lab: run: no command")
	}
	for _, p := range []string{a.Vmlinuz, a.Initrd} {
		if !exists(p) {
			return 0, fmt.Errorf("lab: run: %s is missing; run `seesaw-lab prepare` to fetch the kernel and build the initramfs", p)
		}
	}
	if err := fillDefaults(&o); err != nil {
		return 0, err
	}
	shares, err := planShares(o.Dir, o.Writable, o.ReadOnly)
	if err != nil {
		return 0, err
	}
	ctl, err := os.MkdirTemp("", "seesaw-lab-ctl-")
	if err != nil {
		return 0, fmt.Errorf("lab: run: %w", err)
	}
	defer os.RemoveAll(ctl)
	if err := writeControl(ctl, o, shares); err != nil {
		return 0, err
	}

	args := qemuArgs(a, o, ctl, shares)
	cmd := exec.Command(o.QEMU, args...)
	dieWithParent(cmd)
	var qemuOut bytes.Buffer // qemu's own messages, for errors
	console := &tail{max: 16 << 10}
	var consoleW io.Writer = console
	if o.Console != nil {
		consoleW = io.MultiWriter(console, o.Console)
	}
	var copies sync.WaitGroup
	var closeAfterStart []*os.File
	// ExtraFiles: fd 3 the kernel's console, and without a terminal fd 4
	// the command's stdout and fd 5 its stderr (see qemuArgs).
	pipes := []io.Writer{consoleW}
	if o.TTY {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	} else {
		cmd.Stdout, cmd.Stderr = &qemuOut, &qemuOut
		pipes = append(pipes, o.Stdout, o.Stderr)
	}
	for _, w := range pipes {
		r, pw, err := os.Pipe()
		if err != nil {
			for _, f := range closeAfterStart {
				f.Close()
			}
			copies.Wait()
			return 0, fmt.Errorf("lab: run: %w", err)
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, pw)
		closeAfterStart = append(closeAfterStart, pw)
		copies.Add(1)
		go func(w io.Writer) {
			defer copies.Done()
			defer r.Close()
			io.Copy(w, r)
		}(w)
	}
	if o.TTY {
		defer terminalState(os.Stdin)()
	}

	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		// Pdeathsig is tied to the thread that starts qemu: keep it.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	err = <-started
	for _, f := range closeAfterStart {
		f.Close()
	}
	if err != nil {
		copies.Wait()
		return 0, fmt.Errorf("lab: run: start %s: %w (Debian package qemu-system-x86)", o.QEMU, err)
	}
	var waitErr error
	select {
	case waitErr = <-exited:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-exited
	}
	copies.Wait()

	if ctxErr := ctx.Err(); ctxErr != nil {
		where := "before the guest had finished booting"
		if exists(filepath.Join(ctl, "started")) {
			where = "while the command was still running"
		}
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return 0, fmt.Errorf("lab: run %q: %w: the guest was still running after %v (%s), so it was killed%s",
				strings.Join(o.Argv, " "), ErrTimeout, o.Timeout, where, consoleTail(console))
		}
		return 0, fmt.Errorf("lab: run %q: interrupted %s; the guest was killed: %w", strings.Join(o.Argv, " "), where, ctxErr)
	}
	if b, err := os.ReadFile(filepath.Join(ctl, "timing")); err == nil && o.Console != nil {
		fmt.Fprintf(o.Console, "seesaw-lab: guest uptime at each stage (s): %s\n", strings.TrimSpace(string(b)))
	}
	if b, err := os.ReadFile(filepath.Join(ctl, "status")); err == nil {
		code, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, fmt.Errorf("lab: run: %w: bad exit status %q from the guest", ErrGuest, b)
		}
		return code, nil
	}
	if b, err := os.ReadFile(filepath.Join(ctl, "init-error")); err == nil {
		return 0, fmt.Errorf("lab: run: %w: guest init: %s%s", ErrGuest, strings.TrimSpace(string(b)), consoleTail(console))
	}
	if waitErr != nil {
		return 0, fmt.Errorf("lab: run: %w: qemu: %v: %s%s", ErrGuest, waitErr, strings.TrimSpace(qemuOut.String()), consoleTail(console))
	}
	return 0, fmt.Errorf("lab: run: %w: the guest stopped without reporting the command's exit status (kernel panic or boot failure)%s",
		ErrGuest, consoleTail(console))
}

func fillDefaults(o *Options) error {
	if o.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("lab: run: %w", err)
		}
		o.Dir = wd
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	if o.MemMiB == 0 {
		o.MemMiB = 1024
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.QEMU == "" {
		o.QEMU = "qemu-system-x86_64"
	}
	for i := range o.Forward {
		if o.Forward[i].HostAddr == "" {
			o.Forward[i].HostAddr = "127.0.0.1"
		}
		if err := o.Forward[i].check(); err != nil {
			return err
		}
	}
	return nil
}

// share is one host directory mounted in the guest at the same path.
type share struct {
	Tag, Path string
	Writable  bool
}

// hiddenInGuest are the host trees the guest covers with its own
// filesystems: a directory there is visible only when it is shared.
func hiddenInGuest(p string) bool {
	for _, h := range []string{"/tmp", "/run", "/dev", "/proc", "/sys"} {
		if p == h || strings.HasPrefix(p, h+"/") {
			return true
		}
	}
	return false
}

// planShares resolves the directories to share and orders them so that a
// directory is mounted before any directory inside it. The working
// directory is shared read-only when the guest's tmpfs would hide it.
func planShares(dir string, writable, readOnly []string) ([]share, error) {
	var shares []share
	seen := map[string]bool{}
	add := func(p string, w bool) error {
		abs, err := filepath.Abs(p)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			return fmt.Errorf("lab: run: share %s: %w", p, err)
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return fmt.Errorf("lab: run: share %s: not a directory", p)
		}
		for _, bad := range []string{"/", "/dev", "/proc", "/sys"} {
			if abs == bad || (bad != "/" && strings.HasPrefix(abs, bad+"/")) {
				return fmt.Errorf("lab: run: share %s: cannot share %s into the guest", p, bad)
			}
		}
		if seen[abs] {
			return nil
		}
		seen[abs] = true
		shares = append(shares, share{Path: abs, Writable: w})
		return nil
	}
	for _, p := range writable {
		if err := add(p, true); err != nil {
			return nil, err
		}
	}
	for _, p := range readOnly {
		if err := add(p, false); err != nil {
			return nil, err
		}
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil && hiddenInGuest(d) {
		covered := false
		for _, s := range shares {
			if d == s.Path || strings.HasPrefix(d, s.Path+"/") {
				covered = true
			}
		}
		if !covered {
			if err := add(d, false); err != nil {
				return nil, err
			}
		}
	}
	sort.SliceStable(shares, func(i, j int) bool {
		return strings.Count(shares[i].Path, "/") < strings.Count(shares[j].Path, "/")
	})
	for i := range shares {
		shares[i].Tag = fmt.Sprintf("share%d", i)
	}
	return shares, nil
}

// writeControl writes the per-run files the guest's init reads from the
// control share: config (shares, terminal) and cmd.sh (the command).
func writeControl(ctl string, o Options, shares []share) error {
	var cfg strings.Builder
	if o.TTY {
		cfg.WriteString("LAB_TTY=1\n")
		if rows, cols := terminalSize(os.Stdin); rows > 0 {
			fmt.Fprintf(&cfg, "LAB_ROWS=%d\nLAB_COLS=%d\n", rows, cols)
		}
	}
	if len(o.Forward) > 0 {
		fmt.Fprintf(&cfg, "LAB_NET=%s\n", GuestNICAddr)
	}
	for _, s := range shares {
		mode := "ro"
		if s.Writable {
			mode = "rw"
		}
		fmt.Fprintf(&cfg, "share %s %s %s\n", s.Tag, shellQuote(s.Path), mode)
	}
	script, err := commandScript(o.Dir, guestEnv(o.Env, o.Dir), o.Argv)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctl, "config"), []byte(cfg.String()), 0o644); err != nil {
		return fmt.Errorf("lab: run: %w", err)
	}
	if err := os.WriteFile(filepath.Join(ctl, "cmd.sh"), []byte(script), 0o644); err != nil {
		return fmt.Errorf("lab: run: %w", err)
	}
	return nil
}

// guestEnv is the caller's environment as the command sees it in the guest:
// unchanged, except that PWD names the working directory, HOME and PATH have
// defaults when unset, and SEESAW_LAB=1 says where it runs.
func guestEnv(env []string, dir string) []string {
	var out []string
	has := map[string]bool{}
	for _, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.HasPrefix(k, "-") || k == "PWD" || k == "OLDPWD" || k == "SEESAW_LAB" {
			continue
		}
		has[k] = true
		out = append(out, kv)
	}
	if !has["HOME"] {
		out = append(out, "HOME=/root")
	}
	if !has["PATH"] {
		out = append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return append(out, "PWD="+dir, "SEESAW_LAB=1")
}

// commandScript is the script the guest runs in its chroot of the host:
// change to the directory, then replace itself with the command under
// exactly the given environment.
func commandScript(dir string, env, argv []string) (string, error) {
	if strings.Contains(argv[0], "=") {
		return "", fmt.Errorf("lab: run: command name %q contains '='", argv[0])
	}
	var b strings.Builder
	b.WriteString("# written by seesaw-lab for one run\n")
	fmt.Fprintf(&b, "cd %s || { echo \"seesaw-lab: cannot change to %s in the guest\" >&2; exit 125; }\n", shellQuote(dir), strings.ReplaceAll(dir, "\"", ""))
	b.WriteString("exec /usr/bin/env -i")
	for _, kv := range env {
		b.WriteString(" \\\n  " + shellQuote(kv))
	}
	for _, a := range argv {
		b.WriteString(" \\\n  " + shellQuote(a))
	}
	b.WriteString("\n")
	return b.String(), nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// qemuEscape doubles commas, the separator of qemu's option lists.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func qemuArgs(a Assets, o Options, ctl string, shares []share) []string {
	// The kernel's console is ttyS0, always apart from the command's
	// streams, so kernel messages never mix into them and a failure can
	// show the console's last lines. no_timer_check: under software
	// emulation on a busy host the kernel's check of the timer interrupt
	// at boot can miss its deadline, and it then panics ("IO-APIC + timer
	// doesn't work"); qemu's timer is sound, so the check is skipped.
	appendArgs := "console=ttyS0 panic=-1 rdinit=/init quiet no_timer_check"
	if o.KernelArgs != "" {
		appendArgs += " " + o.KernelArgs
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-machine", "pc", "-cpu", "max",
		"-m", strconv.Itoa(o.MemMiB), "-smp", strconv.Itoa(o.CPUs),
		"-kernel", a.Vmlinuz, "-initrd", a.Initrd, "-append", appendArgs,
		"-device", "virtio-rng-pci",
		"-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,path=" + qemuEscape(ctl) + ",mount_tag=labctl,security_model=none,multidevs=remap",
	}
	for _, s := range shares {
		v := "local,path=" + qemuEscape(s.Path) + ",mount_tag=" + s.Tag + ",security_model=none,multidevs=remap"
		if !s.Writable {
			v += ",readonly=on"
		}
		args = append(args, "-virtfs", v)
	}
	if len(o.Forward) > 0 {
		// restrict=on isolates the guest: no packet of its goes out to
		// the host or beyond; the hostfwd rules still let the host in.
		// No IPv6 either: the forwards are IPv4 and the NIC needs
		// nothing else.
		guest := strings.Split(GuestNICAddr, "/")[0]
		netdev := "user,id=net0,restrict=on,ipv6=off"
		for _, f := range o.Forward {
			netdev += fmt.Sprintf(",hostfwd=tcp:%s:%d-%s:%d", f.HostAddr, f.HostPort, guest, f.GuestPort)
		}
		args = append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0")
	}
	args = append(args, "-chardev", "file,id=con,path=/dev/fd/3", "-serial", "chardev:con")
	if o.TTY {
		// ttyS1 is the person's terminal; Ctrl-A x leaves qemu.
		args = append(args,
			"-chardev", "stdio,id=term,mux=on,signal=off",
			"-serial", "chardev:term",
			"-mon", "chardev=term,mode=readline")
	} else {
		args = append(args,
			"-device", "virtio-serial-pci,id=vser",
			"-chardev", "file,id=labout,path=/dev/fd/4",
			"-device", "virtserialport,bus=vser.0,chardev=labout,name=lab.stdout",
			"-chardev", "file,id=laberr,path=/dev/fd/5",
			"-device", "virtserialport,bus=vser.0,chardev=laberr,name=lab.stderr")
	}
	return args
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// consoleTail formats the end of the guest's console for an error message.
func consoleTail(t *tail) string {
	s := strings.TrimSpace(strings.ReplaceAll(t.String(), "\r", ""))
	if s == "" {
		return " (the guest's console printed nothing; seesaw-lab run --verbose shows the whole boot)"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return "\nlast lines of the guest's console:\n  " + strings.Join(lines, "\n  ")
}
