// Package ipvs talks to the kernel's IP Virtual Server over generic netlink,
// in pure Go (github.com/mdlayher/genetlink), with the constants of
// <linux/ip_vs.h> (generated into internal/uapi).
//
// A Client lists, creates, updates and deletes virtual services (by
// address, protocol and port, or by firewall mark; IPv4 and IPv6) and their
// destinations, reads their statistics, flushes and zeroes, reads and sets
// connection timeouts, and starts, stops and lists the connection-sync
// daemons. The types keep what is configured (Service, Destination) apart
// from what the kernel observed (ServiceStats, DestinationStats), so that
// configuration can be compared with ==.
//
// Write makes many changes at once: on a socket the client opened itself it
// sends them in batches (many requests per system call, the kernel
// answering only the ones that fail), which makes a cold start of
// thousands of services several times faster than ipvsadm-restore. State
// reads a large table over several sockets in parallel.
//
// Errors are *Error values naming the operation and the object, with a
// hint. A missing service or destination matches fs.ErrNotExist, an
// existing one fs.ErrExist; a kernel without IPVS gives ErrNotAvailable.
// Dumps that the kernel marks interrupted (the table changed while it was
// read) are read again.
//
// Only New opens sockets, and only on Linux; NewClientNetlink takes a
// netlink socket of the caller's (batching), NewClient any *genetlink.Conn
// (one request at a time), such as one opened in another network namespace
// (netlink.Config{NetNS: fd}) or a test's fake (ipvstest).
//
// Debugging: NLDEBUG=level=1 makes mdlayher/netlink print every message;
// `ipvsadm -Ln --stats` and `ipvsadm -Sn` show what the kernel holds.
package ipvs

import "errors"

// FamilyName is the generic netlink family that the kernel's ip_vs module
// registers.
const FamilyName = "IPVS"

// Hint tells an operator how to get IPVS when the family is missing.
const Hint = "load ip_vs (modprobe ip_vs) or use a kernel built with CONFIG_IP_VS"

// ErrNotAvailable is wrapped when the kernel has no IPVS.
var ErrNotAvailable = errors.New("IPVS generic netlink family not found")

// GenlFamily is what the kernel reports about its IPVS generic netlink
// family.
type GenlFamily struct {
	ID      uint16
	Version uint8
}
