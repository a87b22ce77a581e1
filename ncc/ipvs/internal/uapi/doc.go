// Package uapi holds the IPVS constants of the kernel's user-space API
// header <linux/ip_vs.h>, generated from the header itself (Debian's
// linux-libc-dev), so that no number in the IPVS client is copied by hand.
// uapigen's tests fail when this file and the installed header disagree.
package uapi

//go:generate sh -c "go run ../uapigen /usr/include/linux/ip_vs.h > zz_ip_vs.go"
