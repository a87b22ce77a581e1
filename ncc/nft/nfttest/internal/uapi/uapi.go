// Package uapi holds the numbers of the kernel's nf_tables user-space API
// that the fake kernel of package nfttest speaks: the message types and
// attributes of <linux/netfilter/nf_tables.h>, the batch messages of
// <linux/netfilter/nfnetlink.h>, the hooks and families of
// <linux/netfilter.h>, the netlink flags of <linux/netlink.h> and one
// errno of <asm-generic/errno.h>, under the headers' own names. They are
// written here rather than taken from golang.org/x/sys/unix or
// google/nftables so that the fake and the client it serves do not share a
// mistake; the tests compare every one with the installed headers
// (Debian's linux-libc-dev).
package uapi

// <linux/netlink.h>
const (
	NLMSG_ERROR    = 0x2
	NLMSG_DONE     = 0x3
	NLMSG_MIN_TYPE = 0x10

	NLM_F_REQUEST  = 0x01
	NLM_F_MULTI    = 0x02
	NLM_F_ACK      = 0x04
	NLM_F_ECHO     = 0x08
	NLM_F_ROOT     = 0x100
	NLM_F_MATCH    = 0x200
	NLM_F_DUMP     = NLM_F_ROOT | NLM_F_MATCH
	NLM_F_REPLACE  = 0x100
	NLM_F_EXCL     = 0x200
	NLM_F_CREATE   = 0x400
	NLM_F_APPEND   = 0x800
	NLM_F_NONREC   = 0x100
	NLM_F_CAPPED   = 0x100
	NLM_F_ACK_TLVS = 0x200
)

// <linux/netfilter/nfnetlink.h>
const (
	NFNETLINK_V0         = 0
	NFNL_SUBSYS_NFTABLES = 10
	NFNL_MSG_BATCH_BEGIN = NLMSG_MIN_TYPE
	NFNL_MSG_BATCH_END   = NLMSG_MIN_TYPE + 1
	NFNL_BATCH_GENID     = 1
)

// <linux/netfilter.h>
const (
	NF_DROP   = 0
	NF_ACCEPT = 1

	NF_INET_PRE_ROUTING  = 0
	NF_INET_LOCAL_IN     = 1
	NF_INET_FORWARD      = 2
	NF_INET_LOCAL_OUT    = 3
	NF_INET_POST_ROUTING = 4
	NF_INET_NUMHOOKS     = 5

	NFPROTO_UNSPEC = 0
	NFPROTO_INET   = 1
	NFPROTO_IPV4   = 2
	NFPROTO_ARP    = 3
	NFPROTO_NETDEV = 5
	NFPROTO_BRIDGE = 7
	NFPROTO_IPV6   = 10
)

// <linux/netfilter/nf_tables.h>
const (
	NFT_NAME_MAXLEN      = 256
	NFT_TABLE_MAXNAMELEN = NFT_NAME_MAXLEN
	NFT_CHAIN_MAXNAMELEN = NFT_NAME_MAXLEN
	NFT_USERDATA_MAXLEN  = 256

	NFT_MSG_NEWTABLE = 0
	NFT_MSG_GETTABLE = 1
	NFT_MSG_DELTABLE = 2
	NFT_MSG_NEWCHAIN = 3
	NFT_MSG_GETCHAIN = 4
	NFT_MSG_DELCHAIN = 5
	NFT_MSG_NEWRULE  = 6
	NFT_MSG_GETRULE  = 7
	NFT_MSG_DELRULE  = 8
	NFT_MSG_NEWGEN   = 15

	NFTA_LIST_ELEM = 1

	NFTA_HOOK_HOOKNUM  = 1
	NFTA_HOOK_PRIORITY = 2
	NFTA_HOOK_DEV      = 3
	NFTA_HOOK_DEVS     = 4

	NFT_TABLE_F_DORMANT = 0x1
	NFT_TABLE_F_OWNER   = 0x2

	NFTA_TABLE_NAME     = 1
	NFTA_TABLE_FLAGS    = 2
	NFTA_TABLE_USE      = 3
	NFTA_TABLE_HANDLE   = 4
	NFTA_TABLE_USERDATA = 6

	NFT_CHAIN_BASE       = 1 << 0
	NFT_CHAIN_HW_OFFLOAD = 1 << 1
	NFT_CHAIN_BINDING    = 1 << 2
	NFT_CHAIN_FLAGS      = NFT_CHAIN_BASE | NFT_CHAIN_HW_OFFLOAD | NFT_CHAIN_BINDING

	NFTA_CHAIN_TABLE    = 1
	NFTA_CHAIN_HANDLE   = 2
	NFTA_CHAIN_NAME     = 3
	NFTA_CHAIN_HOOK     = 4
	NFTA_CHAIN_POLICY   = 5
	NFTA_CHAIN_USE      = 6
	NFTA_CHAIN_TYPE     = 7
	NFTA_CHAIN_FLAGS    = 10
	NFTA_CHAIN_ID       = 11
	NFTA_CHAIN_USERDATA = 12

	NFTA_RULE_TABLE       = 1
	NFTA_RULE_CHAIN       = 2
	NFTA_RULE_HANDLE      = 3
	NFTA_RULE_EXPRESSIONS = 4
	NFTA_RULE_POSITION    = 6
	NFTA_RULE_USERDATA    = 7
	NFTA_RULE_ID          = 9
	NFTA_RULE_POSITION_ID = 10
	NFTA_RULE_CHAIN_ID    = 11

	NFTA_EXPR_NAME = 1
	NFTA_EXPR_DATA = 2

	NFTA_GEN_ID        = 1
	NFTA_GEN_PROC_PID  = 2
	NFTA_GEN_PROC_NAME = 3
)

// <asm-generic/errno.h>: the errno values whose names package syscall
// has only on Linux.
const ERESTART = 85

// The kernel's own limits, which no user-space header has:
// NFT_RULE_MAXEXPRS is the most expressions a rule may have
// (include/net/netfilter/nf_tables.h); NFT_MODULE_AUTOLOAD_LIMIT the
// longest name of a chain type or an expression (nf_tables_api.c:
// MODULE_NAME_LEN less "nft-expr-255-", on 64-bit); TASK_COMM_LEN the
// room for a process's name, with its NUL (include/linux/sched.h).
const (
	NFT_RULE_MAXEXPRS         = 128
	NFT_MODULE_AUTOLOAD_LIMIT = 56 - len("nft-expr-255-") - 1
	TASK_COMM_LEN             = 16
)

// NLMSG_GOODSIZE is the size of the buffers the kernel fills with
// notifications and the parts of a dump: a page less the socket buffer's
// own overhead (SKB_WITH_OVERHEAD(4096) on x86-64), as measured on Linux 6.
// It is no user-space API either.
const NLMSG_GOODSIZE = 3776
