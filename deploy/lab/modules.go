package lab

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// GuestModules are the kernel modules the guest loads at boot, by module
// name. Their dependencies are found from each module's own modinfo and
// loaded first. Optional ones are loaded when the kernel has them as modules
// and skipped otherwise.
func GuestModules() (required, optional []string) {
	required = []string{
		// The guest's plumbing: PCI virtio, 9p for the shared root and the
		// control share, virtio serial ports for the command's streams, and
		// a virtio RNG so getrandom never waits under emulation, and the
		// virtio NIC that carries ports forwarded from the host.
		"virtio_pci", "virtio_console", "virtio_rng", "virtio_net", "9pnet_virtio", "9p",
		// IPVS, its schedulers, and what it leans on.
		"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr",
		"ip_vs_dh", "ip_vs_sh", "ip_vs_sed", "ip_vs_nq", "ip_vs_fo", "ip_vs_ovf", "ip_vs_mh",
		// Links the topology and the appliance create.
		"veth", "dummy", "bridge", "8021q", "macvlan", "tun",
		"ipip", "ip_gre", "ip6_tunnel", "sit", "ip6_gre",
		// Conntrack and nftables: NAT, marks, numgen and hash, fib, reject.
		"nf_conntrack", "nf_conntrack_netlink", "nf_nat", "nf_tables",
		"nft_ct", "nft_nat", "nft_chain_nat", "nft_masq", "nft_redir", "nft_numgen", "nft_hash",
		"nft_fib_inet", "nft_fib_ipv4", "nft_fib_ipv6", "nft_reject_inet", "nft_limit",
		"nft_quota", "nft_objref", "nft_connlimit", "nft_socket", "nft_tproxy",
	}
	optional = []string{"ip_vs_twos"}
	return required, optional
}

// softdepModule maps a name a module gives in softdep= to the module that
// provides it: libcrc32c asks for "crc32c", which the generic C
// implementation provides (the Intel one needs SSE4.2, which the emulated CPU
// may not have).
func softdepModule(name string) string {
	if name == "crc32c" {
		return "crc32c_generic"
	}
	return name
}

// modName normalizes a module name or file name: the kernel treats - and _
// in module names alike.
func modName(file string) string {
	base := filepath.Base(file)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(base, ".ko"), "-", "_")
}

// modinfo parses the .modinfo section of a module's ELF image: a run of
// NUL-terminated key=value strings.
func modinfo(image []byte) (map[string][]string, error) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return nil, err
	}
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	data, err := s.Data()
	if err != nil {
		return nil, err
	}
	info := map[string][]string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if ok {
			info[k] = append(info[k], v)
		}
	}
	return info, nil
}

// moduleTree is the modules of one unpacked kernel package.
type moduleTree struct {
	files   map[string]string // module name -> path of its .ko[.xz|.zst]
	builtin map[string]bool
}

func loadModuleTree(dir string) (*moduleTree, error) {
	t := &moduleTree{files: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n := d.Name()
		if !d.IsDir() && (strings.HasSuffix(n, ".ko") || strings.Contains(n, ".ko.")) {
			t.files[modName(n)] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lab: modules: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				t.builtin[modName(l)] = true
			}
		}
	}
	return t, nil
}

// readModule returns a module's uncompressed ELF image. Newer Debian
// kernels ship .ko.xz (or .ko.zst); Go has no xz in its standard library,
// so this uses the xz and zstd commands.
func readModule(ctx context.Context, path string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(path, ".ko"):
		return os.ReadFile(path)
	case strings.HasSuffix(path, ".xz"):
		tool = "xz"
	case strings.HasSuffix(path, ".zst"):
		tool = "zstd"
	case strings.HasSuffix(path, ".gz"):
		tool = "gzip"
	default:
		return nil, fmt.Errorf("%s: unknown module compression", path)
	}
	out, err := exec.CommandContext(ctx, tool, "-dc", path).Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %s -dc: %w (Debian package %s)", path, tool, err, map[string]string{"xz": "xz-utils", "zstd": "zstd", "gzip": "gzip"}[tool])
	}
	return out, nil
}

// guestModule is one module to put in the initramfs, in load order.
type guestModule struct {
	Name  string
	Image []byte
	Deps  []string // modules (of this list) it needs loaded first
}

// resolve orders the wanted modules and all they depend on so that each
// module comes after its dependencies (from modinfo depends= and the pre:
// part of softdep=). Built-in modules are skipped; a required module the
// kernel has neither built in nor as a module is an error.
func (t *moduleTree) resolve(ctx context.Context, required, optional []string) ([]guestModule, error) {
	var order []guestModule
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, must bool, chain []string) error
	visit = func(name string, must bool, chain []string) error {
		name = modName(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("lab: modules: dependency cycle: %s", strings.Join(append(chain, name), " -> "))
		case 2:
			return nil
		}
		if t.builtin[name] {
			state[name] = 2
			return nil
		}
		path, ok := t.files[name]
		if !ok {
			if must {
				return fmt.Errorf("lab: modules: %s is neither built in nor a module of this kernel (needed by %s)", name, strings.Join(append(chain, name), " -> "))
			}
			return nil
		}
		state[name] = 1
		image, err := readModule(ctx, path)
		if err != nil {
			return fmt.Errorf("lab: modules: %w", err)
		}
		info, err := modinfo(image)
		if err != nil {
			return fmt.Errorf("lab: modules: %s: %w", path, err)
		}
		var deps []string
		for _, d := range info["depends"] {
			for _, n := range strings.Split(d, ",") {
				if n = strings.TrimSpace(n); n != "" {
					deps = append(deps, n)
				}
			}
		}
		for _, sd := range info["softdep"] {
			for _, n := range softPre(sd) {
				n = softdepModule(n)
				if _, ok := t.files[modName(n)]; ok {
					deps = append(deps, n)
				}
			}
		}
		sort.Strings(deps) // a stable order keeps the initramfs reproducible
		var loaded []string
		for _, d := range deps {
			if err := visit(d, true, append(chain, name)); err != nil {
				return err
			}
			if !t.builtin[modName(d)] {
				loaded = append(loaded, modName(d))
			}
		}
		state[name] = 2
		order = append(order, guestModule{Name: name, Image: image, Deps: loaded})
		return nil
	}
	for _, m := range required {
		if err := visit(m, true, nil); err != nil {
			return nil, err
		}
	}
	for _, m := range optional {
		if err := visit(m, false, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// softPre returns the module names in the "pre:" part of a softdep string,
// e.g. "pre: crc32c post: foo" -> [crc32c].
func softPre(s string) []string {
	var names []string
	in := false
	for _, f := range strings.Fields(s) {
		switch f {
		case "pre:":
			in = true
		case "post:":
			in = false
		default:
			if in {
				names = append(names, f)
			}
		}
	}
	return names
}

// loadWaves groups modules (in dependency order) into waves: each module's
// dependencies are all in earlier waves, so the modules of one wave can be
// loaded at the same time, which under emulation takes a second off a boot.
func loadWaves(mods []guestModule) [][]string {
	wave := map[string]int{}
	var waves [][]string
	for _, m := range mods {
		w := 0
		for _, d := range m.Deps {
			if wave[d]+1 > w {
				w = wave[d] + 1
			}
		}
		wave[m.Name] = w
		if w == len(waves) {
			waves = append(waves, nil)
		}
		waves[w] = append(waves[w], m.Name)
	}
	return waves
}
