package lab

import (
	"fmt"
	"io"
	"strings"
)

// cpioWriter writes the "newc" cpio format the kernel unpacks an initramfs
// from. Writing it here (rather than running cpio) keeps the archive
// byte-for-byte reproducible: fixed inode numbers, owners and times.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	err error
}

const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
	cpioChar    = 0o020000
)

func (c *cpioWriter) entry(name string, mode uint32, data []byte) {
	c.node(name, mode, data, 0, 0)
}

func (c *cpioWriter) node(name string, mode uint32, data []byte, rmajor, rminor uint32) {
	if c.err != nil {
		return
	}
	c.ino++
	name = strings.TrimPrefix(name, "/")
	nlink := 1
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write(append([]byte(name), 0))
	c.pad(len(hdr) + len(name) + 1)
	c.write(data)
	c.pad(len(data))
}

func (c *cpioWriter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

// pad aligns to 4 bytes, as newc requires after the name and the data.
func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) Dir(name string) { c.entry(name, cpioDir|0o755, nil) }

func (c *cpioWriter) File(name string, perm uint32, data []byte) {
	c.entry(name, cpioFile|perm, data)
}

func (c *cpioWriter) Symlink(name, target string) {
	c.entry(name, cpioSymlink|0o777, []byte(target))
}

// CharDev writes a character device node. The kernel opens /dev/console
// for init before init can mount devtmpfs, so the archive must carry it.
func (c *cpioWriter) CharDev(name string, perm, major, minor uint32) {
	c.node(name, cpioChar|perm, nil, major, minor)
}

// Close writes the trailer entry.
func (c *cpioWriter) Close() error {
	c.entry("TRAILER!!!", 0, nil)
	return c.err
}
