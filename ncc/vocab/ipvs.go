package vocab

// IPVS service flags a desired service's flags field may carry
// (IP_VS_SVC_F_SCHED1 and _SCHED2 of <linux/ip_vs.h>; package ncc/ipvs
// checks that they agree with the header). The sh and mh schedulers read
// them as their fallback and port flags: ipvsadm's sh-fallback/mh-fallback
// (pick another destination when the hashed one is unavailable, weight 0
// or over its threshold) and sh-port/mh-port (hash the source port too).
const (
	SchedFallback uint32 = 0x0008
	SchedPort     uint32 = 0x0010
)

// Firewall marks, from two ranges that never meet (Seesaw v2's bases):
// a use_fwm vserver gets one per address family, and each backend with a
// DSR or TUN health check one per forwarding method, for the one-destination
// service its checks travel through.
const (
	VserverMarkBase = 1 << 8
	VserverMarks    = 8000
	CheckMarkBase   = 1 << 16
	CheckMarks      = 1 << 20
)
