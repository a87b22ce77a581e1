package lab

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os/exec"
)

// xenElfnotePhys32Entry is the ELF note type (XEN_ELFNOTE_PHYS32_ENTRY in
// Xen's public elfnote.h) that marks a kernel qemu can start directly
// through the PVH boot protocol.
const xenElfnotePhys32Entry = 18

// vmlinuxFromBzImage returns the uncompressed kernel ELF inside a bzImage.
// Booting that ELF through PVH skips the firmware's Linux loader and the
// kernel decompressing itself, which under emulation (no KVM here) halves
// the time to a running guest.
func vmlinuxFromBzImage(ctx context.Context, bz []byte) ([]byte, error) {
	// The x86 boot protocol's setup header (Documentation/x86/boot.rst).
	if len(bz) < 0x250 || string(bz[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not a bzImage")
	}
	if v := binary.LittleEndian.Uint16(bz[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("boot protocol %#x has no payload fields", v)
	}
	setupSects := int(bz[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	off := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(bz[0x248:]))
	n := int(binary.LittleEndian.Uint32(bz[0x24c:]))
	if off < 0 || n <= 0 || off+n > len(bz) {
		return nil, errors.New("payload outside the image")
	}
	payload := bz[off : off+n]
	var tool string
	switch {
	case bytes.HasPrefix(payload, []byte("\xfd7zXZ\x00")):
		tool = "xz"
	case bytes.HasPrefix(payload, []byte{0x1f, 0x8b}):
		tool = "gzip"
	case bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		tool = "zstd"
	default:
		return nil, fmt.Errorf("payload compression % x not handled", payload[:4])
	}
	cmd := exec.CommandContext(ctx, tool, "-dc")
	cmd.Stdin = bytes.NewReader(payload)
	out, err := cmd.Output()
	// xz and zstd complain about the padding the kernel's build appends to
	// the payload; the stream itself is whole when an ELF comes out.
	if len(out) < 4 || string(out[:4]) != "\x7fELF" {
		return nil, fmt.Errorf("%s -dc: %v", tool, err)
	}
	if !hasPVHEntry(out) {
		return nil, errors.New("the kernel has no PVH entry point")
	}
	return out, nil
}

func hasPVHEntry(image []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return false
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			continue
		}
		for len(b) >= 12 {
			namesz := binary.LittleEndian.Uint32(b[0:])
			descsz := binary.LittleEndian.Uint32(b[4:])
			typ := binary.LittleEndian.Uint32(b[8:])
			name := int((namesz + 3) &^ 3)
			desc := int((descsz + 3) &^ 3)
			if 12+name > len(b) {
				break
			}
			if string(bytes.TrimRight(b[12:12+namesz], "\x00")) == "Xen" && typ == xenElfnotePhys32Entry {
				return true
			}
			if 12+name+desc > len(b) {
				break
			}
			b = b[12+name+desc:]
		}
	}
	return false
}
