// Package lab is the project's kernel lab: it boots a Debian kernel that has
// IPVS under qemu, with the host's filesystem shared into the guest
// read-only, and runs one command there as root.
//
// The machines that build and test the project run a kernel without IPVS
// (and without KVM: qemu emulates), so everything that touches IPVS is
// proven inside this guest. The lab is used three ways: `seesaw-lab run --
// CMD` for a person or a script, `go test -exec "$(pwd)/bin/seesaw-lab
// exec"` to run compiled test binaries against the guest's kernel (make
// vmtest runs every test named TestLab... that way), and make demo.
//
// Prepare installs the Debian packages the lab needs, fetches the pinned
// kernel package (checking its SHA-256), takes the uncompressed kernel out
// of it (qemu starts that directly through PVH, skipping the firmware's
// loader and the kernel's self-decompression), and builds an initramfs
// keyed on its inputs; all of it is cached under .cache/lab/ at the
// repository root. Run boots a guest from those assets. The guest's init
// (init.sh) loads the modules, mounts the host's root and a per-run control
// share, and runs the command in a chroot of the host with the guest's own
// /proc, /sys, /dev and tmpfs /tmp and /run. The command's stdout and
// stderr travel over virtio serial ports of their own, apart from the
// kernel's console, and its exit status comes back through the control
// share.
package lab
