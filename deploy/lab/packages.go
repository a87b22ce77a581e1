package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// HostPackages are the Debian packages the lab uses on the host: qemu to
// boot the guest, a static busybox for the initramfs, and the tools that
// tests and people run inside the guest (through the shared root) to see
// what the kernel holds, and conntrackd, which the NCC runs for full NAT
// on a pair.
func HostPackages() []string {
	return []string{"qemu-system-x86", "busybox-static", "ipvsadm", "nftables", "iproute2", "xz-utils", "conntrackd"}
}

// missingPackages returns those of pkgs that dpkg does not have installed.
func missingPackages(ctx context.Context, pkgs []string) ([]string, error) {
	args := append([]string{"-W", "-f", "${Package} ${db:Status-Abbrev}\n"}, pkgs...)
	// dpkg-query exits 1 when some package is unknown; its stdout still
	// lists the known ones, which is all this needs.
	out, err := exec.CommandContext(ctx, "dpkg-query", args...).Output()
	if err != nil && len(out) == 0 {
		if _, ok := err.(*exec.ExitError); !ok {
			return nil, fmt.Errorf("lab: dpkg-query: %w (the lab needs a Debian host)", err)
		}
	}
	installed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && strings.HasPrefix(f[1], "ii") {
			installed[strings.SplitN(f[0], ":", 2)[0]] = true
		}
	}
	var missing []string
	for _, p := range pkgs {
		if !installed[p] {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

// EnsurePackages installs those of pkgs that are missing. As root it runs
// apt-get (updating the package lists first when the install fails),
// waiting up to packageLockTimeout for another apt or dpkg run to finish;
// as anyone else it returns an error that says the command to run.
func EnsurePackages(ctx context.Context, pkgs []string, logf func(string, ...any)) error {
	missing, err := missingPackages(ctx, pkgs)
	if err != nil || len(missing) == 0 {
		return err
	}
	install := "apt-get install -y --no-install-recommends " + strings.Join(missing, " ")
	if os.Geteuid() != 0 {
		return fmt.Errorf("lab: missing Debian packages %s; run: sudo apt-get update && sudo %s", strings.Join(missing, ", "), install)
	}
	logf("lab: installing %s", strings.Join(missing, " "))
	apt := newAptGet(logf)
	run := func(args ...string) ([]byte, error) { return apt.run(ctx, "", args...) }
	args := append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)
	if _, err := run(args...); err == nil || isLockError(err) || ctx.Err() != nil {
		return err
	}
	// Most often the package lists are missing (a fresh machine) or stale.
	if out, err := run("update", "-q"); err != nil {
		return aptError("apt-get update", out, err, 5)
	}
	if out, err := run(args...); err != nil {
		return aptError(install, out, err, 8)
	}
	return nil
}
