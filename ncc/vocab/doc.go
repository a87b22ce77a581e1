// Package vocab is the data plane's vocabulary that the engine and the NCC
// share: the kernel settings an LB node needs, the IPVS scheduler flags the
// desired state carries, the firewall-mark ranges. It is pure (it links
// nothing of netlink or nftables), so that the engine, which decides what
// the kernel should hold but never touches it, can use it without pulling
// in the NCC's kernel code.
package vocab
