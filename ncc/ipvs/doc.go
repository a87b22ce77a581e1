// Package ipvs talks to the kernel's IP Virtual Server over generic netlink.
//
// In this build it only finds out whether the running kernel has IPVS at all,
// so that the NCC can say so in its status instead of failing later; the
// client that reads and writes services and destinations comes with the data
// plane.
package ipvs

import "errors"

// FamilyName is the generic netlink family that the kernel's ip_vs module
// registers.
const FamilyName = "IPVS"

// Hint tells an operator how to get IPVS when the family is missing.
const Hint = "load ip_vs (modprobe ip_vs) or use a kernel built with CONFIG_IP_VS"

// ErrNotAvailable is wrapped by Probe when the kernel has no IPVS.
var ErrNotAvailable = errors.New("IPVS generic netlink family not found")

// Family is what the kernel reports about its IPVS generic netlink family.
type Family struct {
	ID      uint16
	Version uint8
}
