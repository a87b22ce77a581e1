package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed init.sh
var initScript []byte

// initramfsFormat changes whenever the way the initramfs is put together
// changes in a way its other inputs do not show.
const initramfsFormat = "seesaw-lab-initramfs-3"

// kernelImageFormat names how the kernel image is taken from the package
// (see vmlinuxFromBzImage); it changes when that does.
const kernelImageFormat = "pvh1"

// Assets are what a guest boots from.
type Assets struct {
	Kernel  Kernel
	Vmlinuz string // path of the kernel image: an uncompressed ELF when the kernel boots through PVH, else the bzImage
	Initrd  string // path of the initramfs
}

// PrepareOptions say where the lab keeps its cache and whom it tells what
// it is doing.
type PrepareOptions struct {
	CacheDir string               // default: see CacheDir
	Kernels  []Kernel             // default: PinnedKernels()
	Packages []string             // default: HostPackages()
	Logf     func(string, ...any) // progress (installs, downloads, builds); default: discard
}

// Prepare makes sure everything a guest needs is on this machine: the
// Debian packages, the verified kernel package, its kernel image, and an
// initramfs built for the current inputs. It does work only where the cache
// lacks something, and it holds a lock while it does so that parallel
// callers (go test runs several test binaries at once) build once.
func Prepare(ctx context.Context, o PrepareOptions) (Assets, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Kernels == nil {
		o.Kernels = PinnedKernels()
	}
	if o.Packages == nil {
		o.Packages = HostPackages()
	}
	if o.CacheDir == "" {
		d, err := CacheDir()
		if err != nil {
			return Assets{}, err
		}
		o.CacheDir = d
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return Assets{}, fmt.Errorf("lab: cache %s: %w", o.CacheDir, err)
	}
	unlock, err := lockFile(filepath.Join(o.CacheDir, ".lock"))
	if err != nil {
		return Assets{}, fmt.Errorf("lab: cache: %w", err)
	}
	defer unlock()

	if err := EnsurePackages(ctx, o.Packages, o.Logf); err != nil {
		return Assets{}, err
	}
	k, deb, err := fetchKernel(ctx, filepath.Join(o.CacheDir, "debs"), o.Kernels, o.Logf)
	if err != nil {
		return Assets{}, err
	}
	busybox, err := staticBusybox()
	if err != nil {
		return Assets{}, err
	}
	bbSum, err := fileSHA256(busybox)
	if err != nil {
		return Assets{}, fmt.Errorf("lab: busybox: %w", err)
	}
	required, optional := GuestModules()
	key := initramfsKey(k, bbSum, required, optional)
	kdir := filepath.Join(o.CacheDir, k.Release())
	a := Assets{
		Kernel: k,
		// The kernel image depends on the package alone.
		Vmlinuz: filepath.Join(kdir, "kernel-"+kernelImageFormat+"-"+k.SHA256[:16]),
		Initrd:  filepath.Join(kdir, "initrd-"+key[:16]+".cpio"),
	}
	if exists(a.Vmlinuz) && exists(a.Initrd) {
		return a, nil
	}
	o.Logf("lab: building the initramfs for %s", k.Release())
	if err := buildAssets(ctx, a, deb, busybox, required, optional); err != nil {
		return Assets{}, err
	}
	return a, nil
}

// initramfsKey hashes every input of the initramfs, so that a change to any
// of them (the kernel, the module list, the init script, busybox) and
// nothing else rebuilds it.
func initramfsKey(k Kernel, busyboxSHA string, required, optional []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", initramfsFormat, k.SHA256, busyboxSHA)
	fmt.Fprintf(h, "required=%s\noptional=%s\n", strings.Join(required, ","), strings.Join(optional, ","))
	h.Write(initScript)
	return hex.EncodeToString(h.Sum(nil))
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// buildAssets unpacks the kernel package into a scratch directory, takes
// the kernel image, and writes the initramfs; both land by rename, so a
// crash leaves no half-written asset behind.
func buildAssets(ctx context.Context, a Assets, deb, busybox string, required, optional []string) error {
	kdir := filepath.Dir(a.Initrd)
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		return fmt.Errorf("lab: build: %w", err)
	}
	tmp, err := os.MkdirTemp(kdir, "unpack-")
	if err != nil {
		return fmt.Errorf("lab: build: %w", err)
	}
	defer os.RemoveAll(tmp)
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("lab: build: dpkg-deb -x %s: %w: %s", deb, err, lastLines(out, 5))
	}
	rel := a.Kernel.Release()
	bz, err := os.ReadFile(filepath.Join(tmp, "boot", "vmlinuz-"+rel))
	if err != nil {
		return fmt.Errorf("lab: build: kernel image: %w", err)
	}
	image, err := vmlinuxFromBzImage(ctx, bz)
	if err != nil {
		// Still bootable, only slower: through the firmware's loader.
		image = bz
	}
	if err := writeFileAtomic(a.Vmlinuz, image); err != nil {
		return fmt.Errorf("lab: build: kernel image: %w", err)
	}
	tree, err := loadModuleTree(filepath.Join(tmp, "lib", "modules", rel))
	if err != nil {
		return err
	}
	mods, err := tree.resolve(ctx, required, optional)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := writeInitramfs(&buf, rel, busybox, mods); err != nil {
		return err
	}
	if err := writeFileAtomic(a.Initrd, buf.Bytes()); err != nil {
		return fmt.Errorf("lab: build: %w", err)
	}
	pruneAssets(kdir, 4, a.Vmlinuz)
	return nil
}

// pruneAssets keeps the newest keep initramfs images in dir and removes
// older ones, and kernel images other than the current one that no kept
// initramfs pairs with (older versions named them after its key). It
// keeps more than one build because checkouts of different versions may
// share the cache and use it at the same time.
func pruneAssets(dir string, keep int, kernel string) {
	initrds, _ := filepath.Glob(filepath.Join(dir, "initrd-*.cpio"))
	mtime := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return fi.ModTime().UnixNano()
	}
	sort.Slice(initrds, func(i, j int) bool { return mtime(initrds[i]) > mtime(initrds[j]) })
	kept := map[string]bool{}
	for i, p := range initrds {
		key := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "initrd-"), ".cpio")
		if i < keep {
			kept[key] = true
			continue
		}
		os.Remove(p)
	}
	kernels, _ := filepath.Glob(filepath.Join(dir, "kernel-*"))
	for _, p := range kernels {
		if p != kernel && !kept[strings.TrimPrefix(filepath.Base(p), "kernel-")] {
			os.Remove(p)
		}
	}
}

// writeInitramfs writes the archive: busybox and its applet links, the
// modules with the list that gives their load order (in waves), /dev/console,
// and /init. It is left uncompressed: under emulation the guest would spend
// longer inflating it than qemu spends loading the larger file.
func writeInitramfs(w io.Writer, release, busybox string, mods []guestModule) error {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return fmt.Errorf("lab: build: busybox: %w", err)
	}
	applets, err := busyboxApplets(busybox)
	if err != nil {
		return err
	}
	c := &cpioWriter{w: w}
	dirs := []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "etc", "lib", "lib/modules",
		"lib/modules/" + release, "tmp", "run", "root"}
	for _, d := range dirs {
		c.Dir(d)
	}
	c.CharDev("dev/console", 0o600, 5, 1)
	c.File("bin/busybox", 0o755, bb)
	for _, p := range applets {
		if p != "bin/busybox" {
			c.Symlink(p, "/bin/busybox")
		}
	}
	for _, m := range mods {
		c.File("lib/modules/"+m.Name+".ko", 0o644, m.Image)
	}
	// One wave of modules a line; init loads each wave's at once.
	var order strings.Builder
	for _, w := range loadWaves(mods) {
		order.WriteString(strings.Join(w, " ") + "\n")
	}
	c.File("etc/lab-modules", 0o644, []byte(order.String()))
	c.File("init", 0o755, initScript)
	if err := c.Close(); err != nil {
		return fmt.Errorf("lab: build: initramfs: %w", err)
	}
	return nil
}

// busyboxApplets lists the applets' paths (e.g. usr/bin/wget) within the
// directories the initramfs has.
func busyboxApplets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("lab: build: busybox --list-full: %w", err)
	}
	var paths []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		switch filepath.Dir(p) {
		case "bin", "sbin", "usr/bin", "usr/sbin":
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	return paths, nil
}

// staticBusybox finds busybox and makes sure it is the static build (from
// Debian's busybox-static): the initramfs has no C library.
func staticBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return p, nil
		}
		return "", fmt.Errorf("lab: %s is dynamically linked; the initramfs needs Debian's busybox-static (apt-get install -y busybox-static)", p)
	}
	return "", errors.New("lab: busybox not found; install Debian's busybox-static")
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
