package lab

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpioEntry is one entry read back from a newc archive.
type cpioEntry struct {
	Name         string
	Mode         uint32
	Data         string
	RMaj, RMin   uint32
	Ino, Nlink   uint32
	NameSizeSeen uint32
}

// readCpio parses a newc archive the way the kernel's unpacker does,
// checking the magic and the 4-byte alignment of names and data.
func readCpio(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	for {
		if off+110 > len(b) {
			t.Fatalf("archive ends inside a header at %d", off)
		}
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatalf("bad field %d at %d: %v", i, off, err)
			}
			return uint32(v)
		}
		e := cpioEntry{Ino: field(0), Mode: field(1), Nlink: field(4), RMaj: field(9), RMin: field(10)}
		size, namesize := int(field(6)), int(field(11))
		nameEnd := off + 110 + namesize
		if b[nameEnd-1] != 0 {
			t.Fatalf("name at %d not NUL-terminated", off)
		}
		e.Name = string(b[off+110 : nameEnd-1])
		dataOff := (nameEnd + 3) &^ 3
		e.Data = string(b[dataOff : dataOff+size])
		off = (dataOff + size + 3) &^ 3
		if e.Name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, e)
	}
}

func TestCpio(t *testing.T) {
	write := func() []byte {
		var buf bytes.Buffer
		c := &cpioWriter{w: &buf}
		c.Dir("bin")
		c.File("bin/busybox", 0o755, []byte("12345"))
		c.Symlink("bin/sh", "/bin/busybox")
		c.CharDev("dev/console", 0o600, 5, 1)
		c.File("/init", 0o755, []byte("#!/bin/sh\n"))
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a := write()
	if !bytes.Equal(a, write()) {
		t.Error("two archives of the same files differ: the initramfs would not be reproducible")
	}
	got := readCpio(t, a)
	want := []struct {
		name string
		mode uint32
		data string
	}{
		{"bin", 0o040755, ""},
		{"bin/busybox", 0o100755, "12345"},
		{"bin/sh", 0o120777, "/bin/busybox"},
		{"dev/console", 0o020600, ""},
		{"init", 0o100755, "#!/bin/sh\n"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.Mode != w.mode || g.Data != w.data {
			t.Errorf("entry %d = %q %o %q, want %q %o %q", i, g.Name, g.Mode, g.Data, w.name, w.mode, w.data)
		}
	}
	if c := got[3]; c.RMaj != 5 || c.RMin != 1 {
		t.Errorf("/dev/console is %d:%d, want 5:1", c.RMaj, c.RMin)
	}
	if got[0].Nlink != 2 || got[1].Nlink != 1 {
		t.Errorf("nlink of dir/file = %d/%d, want 2/1", got[0].Nlink, got[1].Nlink)
	}
}

// fakeModule returns a minimal relocatable ELF with a .modinfo section
// holding the given key=value strings, as a kernel module has.
func fakeModule(t *testing.T, info ...string) []byte {
	t.Helper()
	var modinfo []byte
	for _, kv := range info {
		modinfo = append(append(modinfo, kv...), 0)
	}
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	modOff := uint64(ehsize)
	strOff := modOff + uint64(len(modinfo))
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7
	var b bytes.Buffer
	h := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shOff, Ehsize: ehsize, Shentsize: shentsize, Shnum: 3, Shstrndx: 2,
	}
	copy(h.Ident[:], "\x7fELF")
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.Write(&b, binary.LittleEndian, h)
	b.Write(modinfo)
	b.Write(shstr)
	b.Write(make([]byte, int(shOff)-b.Len()))
	for _, s := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: modOff, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	} {
		binary.Write(&b, binary.LittleEndian, s)
	}
	return b.Bytes()
}

func TestModinfo(t *testing.T) {
	info, err := modinfo(fakeModule(t, "name=ip_vs_rr", "depends=ip_vs", "license=GPL", "alias=a", "alias=b"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"name": {"ip_vs_rr"}, "depends": {"ip_vs"}, "license": {"GPL"}, "alias": {"a", "b"}}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("modinfo = %v, want %v", info, want)
	}
	if _, err := modinfo([]byte("not an elf")); err == nil {
		t.Error("modinfo of garbage: no error")
	}
}

// writeTree writes fake modules (name -> modinfo) under dir/kernel and a
// modules.builtin listing builtin.
func writeTree(t *testing.T, mods map[string][]string, builtin ...string) string {
	t.Helper()
	dir := t.TempDir()
	for name, info := range mods {
		p := filepath.Join(dir, "kernel", "drivers", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		image := fakeModule(t, info...)
		if strings.HasSuffix(name, ".xz") {
			cmd := exec.Command("xz", "-c")
			cmd.Stdin = bytes.NewReader(image)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("xz: %v (Debian package xz-utils)", err)
			}
			image = out
		}
		if err := os.WriteFile(p, image, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	for _, m := range builtin {
		b.WriteString("kernel/net/" + m + ".ko\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func names(mods []guestModule) []string {
	var n []string
	for _, m := range mods {
		n = append(n, m.Name)
	}
	return n
}

func TestResolveModules(t *testing.T) {
	ctx := context.Background()
	dir := writeTree(t, map[string][]string{
		"ip_vs_rr.ko":       {"depends=ip_vs"},
		"ip_vs.ko":          {"depends=nf_conntrack,libcrc32c,builtin_thing"},
		"nf_conntrack.ko":   {"depends=nf_defrag_ipv4,libcrc32c"},
		"nf_defrag_ipv4.ko": {"depends="},
		"libcrc32c.ko.xz":   {"depends=", "softdep=pre: crc32c"},
		"crc32c_generic.ko": {"depends="},
		"9pnet-virtio.ko":   {"depends=9pnet"},
		"9pnet.ko":          {"depends="},
		"unused.ko":         {"depends="},
	}, "builtin_thing")
	tree, err := loadModuleTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := tree.resolve(ctx, []string{"ip_vs_rr", "9pnet_virtio"}, []string{"ip_vs_twos"})
	if err != nil {
		t.Fatal(err)
	}
	got := names(mods)
	want := []string{"crc32c_generic", "libcrc32c", "nf_defrag_ipv4", "nf_conntrack", "ip_vs", "ip_vs_rr", "9pnet", "9pnet_virtio"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("load order %v, want %v", got, want)
	}
	for _, m := range mods {
		if _, err := modinfo(m.Image); err != nil {
			t.Errorf("%s: image is not the uncompressed module: %v", m.Name, err)
		}
	}
	waves := loadWaves(mods)
	wantWaves := [][]string{{"crc32c_generic", "nf_defrag_ipv4", "9pnet"}, {"libcrc32c", "9pnet_virtio"}, {"nf_conntrack"}, {"ip_vs"}, {"ip_vs_rr"}}
	if !reflect.DeepEqual(waves, wantWaves) {
		t.Errorf("load waves %v, want %v", waves, wantWaves)
	}

	if _, err := tree.resolve(ctx, []string{"ip_vs_nosuch"}, nil); err == nil || !strings.Contains(err.Error(), "ip_vs_nosuch is neither built in nor a module") {
		t.Errorf("missing required module: %v", err)
	}
	missingDep := writeTree(t, map[string][]string{"a.ko": {"depends=b"}})
	tree, _ = loadModuleTree(missingDep)
	if _, err := tree.resolve(ctx, []string{"a"}, nil); err == nil || !strings.Contains(err.Error(), "a -> b") {
		t.Errorf("missing dependency: %v, want the chain a -> b", err)
	}
	cycle := writeTree(t, map[string][]string{"a.ko": {"depends=b"}, "b.ko": {"depends=a"}})
	tree, _ = loadModuleTree(cycle)
	if _, err := tree.resolve(ctx, []string{"a"}, nil); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("dependency cycle: %v", err)
	}
}

func TestGuestModulesListed(t *testing.T) {
	required, _ := GuestModules()
	have := map[string]bool{}
	for _, m := range required {
		if have[m] {
			t.Errorf("%s listed twice", m)
		}
		have[m] = true
	}
	for _, m := range []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr",
		"ip_vs_dh", "ip_vs_sh", "ip_vs_sed", "ip_vs_nq", "ip_vs_fo", "ip_vs_ovf", "ip_vs_mh",
		"veth", "dummy", "bridge", "8021q", "ipip", "9p", "virtio_net", "nf_tables", "nft_nat", "nft_numgen", "nft_hash", "nf_conntrack"} {
		if !have[m] {
			t.Errorf("the guest does not load %s", m)
		}
	}
}

func TestCommandScript(t *testing.T) {
	dir := t.TempDir()
	env := []string{"A=it's \"quoted\" $HOME `x`", "MULTI=line1\nline2", "PATH=" + os.Getenv("PATH")}
	argv := []string{"sh", "-c", `printf '[%s]\n' "$@"; printf 'A=%s\nMULTI=%s\npwd=%s\n' "$A" "$MULTI" "$(pwd)"`, "sh", "a b", "it's", "", "*"}
	script, err := commandScript(dir, env, argv)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cmd.sh")
	if err := os.WriteFile(p, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	// The guest runs this with the host's /bin/sh and /usr/bin/env in its
	// chroot of the host: the same programs as here.
	out, err := exec.Command("/bin/sh", p).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s\nscript:\n%s", err, out, script)
	}
	want := "[a b]\n[it's]\n[]\n[*]\nA=it's \"quoted\" $HOME `x`\nMULTI=line1\nline2\npwd=" + dir + "\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s\nscript:\n%s", out, want, script)
	}
	if _, err := commandScript(dir, nil, []string{"A=b"}); err == nil {
		t.Error("a command named like an assignment was accepted; env would take it for one")
	}
	script, _ = commandScript("/no/such/dir", env, []string{"true"})
	os.WriteFile(p, []byte(script), 0o644)
	err = exec.Command("/bin/sh", p).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 125 {
		t.Errorf("missing directory: %v, want exit status 125", err)
	}
}

func TestGuestEnv(t *testing.T) {
	got := guestEnv([]string{"PWD=/elsewhere", "FOO=bar", "OLDPWD=/x", "SEESAW_LAB=0", "NOEQUALS", "=bad", "-x=bad"}, "/work/dir")
	want := []string{"FOO=bar", "HOME=/root", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PWD=/work/dir", "SEESAW_LAB=1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("guestEnv = %q, want %q", got, want)
	}
	got = guestEnv([]string{"HOME=/home/me", "PATH=/bin"}, "/")
	if got[0] != "HOME=/home/me" || got[1] != "PATH=/bin" {
		t.Errorf("the caller's HOME and PATH were not kept: %q", got)
	}
}

func TestPlanShares(t *testing.T) {
	tmp := t.TempDir() // under /tmp, which the guest's tmpfs hides
	w := filepath.Join(tmp, "out")
	nested := filepath.Join(w, "deeper")
	for _, d := range []string{w, nested} {
		os.MkdirAll(d, 0o755)
	}
	shares, err := planShares(tmp, []string{nested, w}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []share{
		{Tag: "share0", Path: tmp, Writable: false},
		{Tag: "share1", Path: w, Writable: true},
		{Tag: "share2", Path: nested, Writable: true},
	}
	if !reflect.DeepEqual(shares, want) {
		t.Errorf("shares = %+v, want %+v (parents first, the hidden working directory read-only)", shares, want)
	}
	// A working directory inside a writable share needs nothing more.
	shares, _ = planShares(nested, []string{w}, nil)
	if len(shares) != 1 {
		t.Errorf("shares = %+v, want only the writable one", shares)
	}
	// The source tree is visible through the shared root already.
	wd, _ := os.Getwd()
	if shares, _ := planShares(wd, nil, nil); len(shares) != 0 && !hiddenInGuest(wd) {
		t.Errorf("shares for %s = %+v, want none", wd, shares)
	}
	for _, bad := range []string{"/", "/proc/self", filepath.Join(tmp, "missing")} {
		if _, err := planShares("/", []string{bad}, nil); err == nil {
			t.Errorf("sharing %s: no error", bad)
		}
	}
}

func TestQemuArgs(t *testing.T) {
	a := Assets{Vmlinuz: "/k", Initrd: "/i"}
	args := strings.Join(qemuArgs(a, Options{MemMiB: 512, CPUs: 1}, "/tmp/c,tl", []share{{Tag: "share0", Path: "/a,b", Writable: true}, {Tag: "share1", Path: "/ro"}}), " ")
	for _, want := range []string{
		"-m 512 -smp 1",
		"local,path=/tmp/c,,tl,mount_tag=labctl,",
		"local,path=/a,,b,mount_tag=share0,security_model=none,multidevs=remap -virtfs",
		"mount_tag=share1,security_model=none,multidevs=remap,readonly=on",
		"mount_tag=hostroot,security_model=none,readonly=on",
		"file,id=con,path=/dev/fd/3 -serial chardev:con",
		"name=lab.stdout", "name=lab.stderr", "path=/dev/fd/5",
		"-append console=ttyS0 panic=-1 rdinit=/init quiet no_timer_check",
		"-no-reboot",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q:\n%s", want, args)
		}
	}
	tty := strings.Join(qemuArgs(a, Options{TTY: true, KernelArgs: "x=1"}, "/c", nil), " ")
	if !strings.Contains(tty, "stdio,id=term,mux=on,signal=off -serial chardev:term") || strings.Contains(tty, "lab.stdout") || !strings.Contains(tty, "quiet no_timer_check x=1") {
		t.Errorf("tty qemu args: %s", tty)
	}
}

func TestInitramfsKey(t *testing.T) {
	k := PinnedKernels()[0]
	base := initramfsKey(k, "bb", []string{"a"}, []string{"b"})
	if base != initramfsKey(k, "bb", []string{"a"}, []string{"b"}) {
		t.Fatal("the key is not stable")
	}
	k2 := k
	k2.SHA256 = "other"
	for name, key := range map[string]string{
		"kernel":   initramfsKey(k2, "bb", []string{"a"}, []string{"b"}),
		"busybox":  initramfsKey(k, "bb2", []string{"a"}, []string{"b"}),
		"required": initramfsKey(k, "bb", []string{"a", "c"}, []string{"b"}),
		"optional": initramfsKey(k, "bb", []string{"a"}, nil),
	} {
		if key == base {
			t.Errorf("changing the %s does not change the key", name)
		}
	}
}

func TestPinnedKernels(t *testing.T) {
	for _, k := range PinnedKernels() {
		if !strings.HasPrefix(k.Package, "linux-image-6.1.0-") || !strings.HasSuffix(k.Package, "-amd64") || len(k.SHA256) != 64 || k.Version == "" {
			t.Errorf("bad pin %+v", k)
		}
		if want := k.Package + "_" + k.Version + "_amd64.deb"; k.DebName() != want {
			t.Errorf("DebName = %s, want %s", k.DebName(), want)
		}
	}
}

func TestVerifyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.deb")
	os.WriteFile(p, []byte("hello"), 0o644)
	if err := verifyFile(p, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"); err != nil {
		t.Errorf("right hash: %v", err)
	}
	if err := verifyFile(p, strings.Repeat("0", 64)); err == nil {
		t.Error("wrong hash accepted")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Error("a file with the wrong hash was kept")
	}
}

func TestBzImageRejects(t *testing.T) {
	if _, err := vmlinuxFromBzImage(context.Background(), []byte("not a kernel")); err == nil {
		t.Error("garbage accepted as a bzImage")
	}
	if hasPVHEntry(fakeModule(t, "a=b")) {
		t.Error("an ELF without the Xen note taken for a PVH kernel")
	}
}

func TestMissingPackages(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("not a Debian host")
	}
	got, err := missingPackages(context.Background(), []string{"dpkg", "seesaw-no-such-package"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"seesaw-no-such-package"}) {
		t.Errorf("missing = %v, want only the made-up package", got)
	}
}

func TestParseTestArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want TestArgs
	}{
		{[]string{"-test.paniconexit0", "-test.timeout=10m0s", "-test.run=^TestLab", "-test.v=test2json"}, TestArgs{Run: "^TestLab", Timeout: 10 * time.Minute}},
		{[]string{"-test.run", "X/Y", "--test.timeout", "30s"}, TestArgs{Run: "X/Y", Timeout: 30 * time.Second}},
		{[]string{"-test.bench=.", "-test.run=^$"}, TestArgs{Run: "^$", Other: true}},
		{[]string{"-test.bench="}, TestArgs{}},
	} {
		if got := ParseTestArgs(c.args); got != c.want {
			t.Errorf("ParseTestArgs(%q) = %+v, want %+v", c.args, got, c.want)
		}
	}
	for in, want := range map[string]string{"A/B": "A", "A[/]B/C": "A[/]B", "(A/B)/C": "(A/B)", "A": "A"} {
		if got := topLevel(in); got != want {
			t.Errorf("topLevel(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHasTestsToRun asks this very test binary.
func TestHasTestsToRun(t *testing.T) {
	ctx := context.Background()
	self := os.Args[0]
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"-test.run=^TestNoSuchTest$"}, false},
		{[]string{"-test.run=^TestParseTestArgs$"}, true},
		{[]string{"-test.run=^TestParseTestArgs$/sub"}, true},
		{[]string{"-test.run=^TestNoSuchTest$", "-test.bench=."}, true},
		{nil, true},
	} {
		if got := HasTestsToRun(ctx, self, c.args); got != c.want {
			t.Errorf("HasTestsToRun(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

func TestRunMissingAssets(t *testing.T) {
	_, err := Run(context.Background(), Assets{Vmlinuz: "/no/kernel", Initrd: "/no/initrd"}, Options{Argv: []string{"true"}})
	if err == nil || !strings.Contains(err.Error(), "/no/kernel is missing") || !strings.Contains(err.Error(), "seesaw-lab prepare") {
		t.Errorf("missing kernel: %v", err)
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 8}
	fmt.Fprint(tl, "0123456789")
	fmt.Fprint(tl, "ab")
	if got := tl.String(); got != "456789ab" {
		t.Errorf("tail = %q", got)
	}
}

// TestFetchKernelFallback puts a fake apt-get first in PATH that serves
// only the second pinned kernel (as when Debian's security archive has
// moved past the first): the lab falls back to it, and rejects a download
// whose hash is wrong.
func TestFetchKernelFallback(t *testing.T) {
	bin := t.TempDir()
	fake := `#!/bin/sh
# fake apt-get: download NAME=VERSION writes NAME_VERSION_amd64.deb
[ "$1" = download ] || exit 1
for a; do case "$a" in *=*) spec=$a;; esac; done
name=${spec%%=*} ver=${spec#*=}
case "$name" in
good) printf 'good kernel' > "${name}_${ver}_amd64.deb" ;;
bad) printf 'tampered' > "${name}_${ver}_amd64.deb" ;;
*) echo "E: Can't find a source to download version '$ver' of '$name'" >&2; exit 100 ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "apt-get"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	sum := func(s string) string {
		p := filepath.Join(t.TempDir(), "f")
		os.WriteFile(p, []byte(s), 0o644)
		h, _ := fileSHA256(p)
		return h
	}
	good := Kernel{Package: "good", Version: "1", SHA256: sum("good kernel")}
	gone := Kernel{Package: "gone", Version: "2", SHA256: sum("gone")}
	bad := Kernel{Package: "bad", Version: "3", SHA256: sum("the real one")}
	dir := t.TempDir()
	var logs []string
	logf := func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }

	k, p, err := fetchKernel(context.Background(), dir, []Kernel{gone, bad, good}, logf)
	if err != nil {
		t.Fatalf("%v\nlog: %q", err, logs)
	}
	if k != good || p != filepath.Join(dir, "good_1_amd64.deb") {
		t.Errorf("got %v at %s, want the good kernel", k, p)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad_3_amd64.deb")); err == nil {
		t.Error("the download with the wrong hash was kept")
	}
	// Cached: no download at all now, even with apt-get failing.
	os.WriteFile(filepath.Join(bin, "apt-get"), []byte("#!/bin/sh\nexit 1\n"), 0o755)
	if k, _, err := fetchKernel(context.Background(), dir, []Kernel{gone, good}, logf); err != nil || k != good {
		t.Errorf("cached kernel: %v, %v", k, err)
	}
	_, _, err = fetchKernel(context.Background(), t.TempDir(), []Kernel{gone, bad}, logf)
	if err == nil || !strings.Contains(err.Error(), "no pinned kernel could be fetched") {
		t.Errorf("nothing fetchable: %v", err)
	}
}

func TestPruneAssets(t *testing.T) {
	dir := t.TempDir()
	for i, key := range []string{"a", "b", "c"} {
		for _, f := range []string{"initrd-" + key + ".cpio", "kernel-" + key} {
			p := filepath.Join(dir, f)
			os.WriteFile(p, nil, 0o644)
			when := time.Now().Add(time.Duration(i) * time.Minute)
			os.Chtimes(p, when, when)
		}
	}
	os.WriteFile(filepath.Join(dir, "kernel-pvh1-x"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "kernel-pvh0-y"), nil, 0o644)
	pruneAssets(dir, 2, filepath.Join(dir, "kernel-pvh1-x"))
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{"initrd-b.cpio", "initrd-c.cpio", "kernel-b", "kernel-c", "kernel-pvh1-x"}
	if !reflect.DeepEqual(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}
