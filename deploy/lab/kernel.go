package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Kernel names one exact Debian kernel package. The hash pins the .deb
// itself, so a mirror can never hand the lab a different kernel under the
// same name.
type Kernel struct {
	Package string // e.g. linux-image-6.1.0-56-amd64
	Version string // Debian version, e.g. 6.1.192-2
	SHA256  string // of the .deb file
}

// Release is the kernel release the package installs (its modules directory
// and `uname -r`), e.g. 6.1.0-56-amd64.
func (k Kernel) Release() string { return strings.TrimPrefix(k.Package, "linux-image-") }

// DebName is the file name apt-get download writes.
func (k Kernel) DebName() string {
	return fmt.Sprintf("%s_%s_amd64.deb", k.Package, strings.ReplaceAll(k.Version, ":", "%3a"))
}

func (k Kernel) String() string { return k.Package + "=" + k.Version }

// PinnedKernels are the kernels the lab boots, in order of preference. The
// first is the newest 6.1 kernel Debian bookworm served when it was pinned
// (from bookworm-security). Debian's security archive keeps only the newest
// build, so the second, which bookworm's main archive also carries, is the
// fallback for when the first has been superseded there. Both are the
// standard Debian config: IPVS and all its schedulers, veth, dummy, bridge,
// 8021q, tunnels, nf_tables and 9p as modules.
//
// To move to a newer kernel: apt-cache search --names-only
// '^linux-image-6.1.0-[0-9]+-amd64$', apt-cache policy NAME, apt-get download
// NAME=VERSION, sha256sum the .deb, and put it first here.
func PinnedKernels() []Kernel {
	return []Kernel{
		{Package: "linux-image-6.1.0-56-amd64", Version: "6.1.192-2", SHA256: "a86e2049672f52354c4536a089203b6c82639420424d31c91cf31a181fd4d8f1"},
		{Package: "linux-image-6.1.0-50-amd64", Version: "6.1.176-1", SHA256: "7b5597492a0a65aee61985a492e6bcc3f2cde830072a0e3b3d8c7e1b90279bd3"},
	}
}

// fetchKernel returns the path of a verified .deb of one of kernels in dir,
// downloading it with apt-get when it is not there yet. A cached file whose
// hash is wrong is removed and fetched again. apt-get waits for the package
// manager's locks (see aptGet); when it gives up, so does fetchKernel.
func fetchKernel(ctx context.Context, dir string, kernels []Kernel, logf func(string, ...any)) (Kernel, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Kernel{}, "", fmt.Errorf("lab: fetch kernel: %w", err)
	}
	for _, k := range kernels {
		p := filepath.Join(dir, k.DebName())
		if err := verifyFile(p, k.SHA256); err == nil {
			return k, p, nil
		}
	}
	apt := newAptGet(logf)
	// try downloads the first kernel it can. It stops at a lock apt-get
	// gave up waiting for: every kernel would wait for the same lock.
	try := func() (Kernel, string, []error, error) {
		var errs []error
		for _, k := range kernels {
			p, err := downloadDeb(ctx, apt, dir, k, logf)
			if err == nil {
				return k, p, nil, nil
			}
			if isLockError(err) || ctx.Err() != nil {
				return Kernel{}, "", nil, err
			}
			errs = append(errs, err)
		}
		return Kernel{}, "", errs, nil
	}
	k, p, errs, err := try()
	if err != nil {
		return Kernel{}, "", err
	}
	if errs != nil && os.Geteuid() == 0 {
		// A fresh machine has no package lists yet, or stale ones.
		logf("lab: no pinned kernel could be downloaded; running apt-get update and trying again")
		out, err := apt.run(ctx, "", "update", "-q")
		switch {
		case isLockError(err) || ctx.Err() != nil:
			return Kernel{}, "", err
		case err != nil:
			errs = append(errs, fmt.Errorf("apt-get update: %w: %s", err, lastLines(out, 5)))
		default:
			if k, p, errs, err = try(); err != nil {
				return Kernel{}, "", err
			}
		}
	}
	if errs != nil {
		hint := ""
		if os.Geteuid() != 0 {
			hint = " (if the package lists are stale, run: sudo apt-get update)"
		}
		return Kernel{}, "", fmt.Errorf("lab: no pinned kernel could be fetched (see PinnedKernels in deploy/lab/kernel.go)%s: %w", hint, errors.Join(errs...))
	}
	return k, p, nil
}

// downloadDeb runs apt-get download for the exact package and version into a
// scratch directory, checks the hash, and moves the file into dir.
func downloadDeb(ctx context.Context, apt *aptGet, dir string, k Kernel, logf func(string, ...any)) (string, error) {
	tmp, err := os.MkdirTemp(dir, "download-")
	if err != nil {
		return "", fmt.Errorf("download %s: %w", k, err)
	}
	defer os.RemoveAll(tmp)
	// apt drops privileges to the _apt user when it can; a scratch
	// directory that user may write keeps it from warning about that.
	_ = os.Chmod(tmp, 0o777)
	logf("lab: downloading kernel package %s", k)
	if out, err := apt.run(ctx, tmp, "download", "-q", k.String()); err != nil {
		if isLockError(err) {
			return "", err
		}
		return "", fmt.Errorf("download %s: apt-get download: %w: %s", k, err, lastLines(out, 3))
	}
	got := filepath.Join(tmp, k.DebName())
	if err := verifyFile(got, k.SHA256); err != nil {
		return "", fmt.Errorf("download %s: %w", k, err)
	}
	dst := filepath.Join(dir, k.DebName())
	if err := os.Rename(got, dst); err != nil {
		return "", fmt.Errorf("download %s: %w", k, err)
	}
	return dst, nil
}

// verifyFile checks a file's SHA-256 and removes the file when it is wrong,
// so a corrupt download is never used twice.
func verifyFile(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		os.Remove(path)
		return fmt.Errorf("%s: sha256 %s, want %s (removed it)", filepath.Base(path), got, want)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// lastLines returns the last n lines of command output, for error messages.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
