package ipvs

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// These tests hold the client to the kernel's wire format byte by byte. The
// expected bytes are written out from the kernel's side of the contract
// (net/netfilter/ipvs/ip_vs_ctl.c: ip_vs_genl_parse_* for requests,
// ip_vs_genl_fill_* for replies), not produced by the code under test. The
// lab tests (lab_linux_test.go) check the same against a real kernel.

const testFamilyID = 0x23

// genlIDCtrl is the generic netlink controller's family (GENL_ID_CTRL);
// the controller's attributes are written as numbers below so that this
// file builds on every OS.
const genlIDCtrl = 0x10

// hx reads hex with spaces, newlines and # comments.
func hx(s string) []byte {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		l, _, _ = strings.Cut(l, "#")
		b.WriteString(strings.Join(strings.Fields(l), ""))
	}
	out, err := hex.DecodeString(b.String())
	if err != nil {
		panic(err)
	}
	return out
}

func littleEndian(t *testing.T) {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the expected bytes are written for a little-endian host")
	}
}

// testClient is a client whose socket is fn, behind a family lookup that
// answers as a kernel with IPVS would.
func testClient(t *testing.T, fn genltest.Func) *Client {
	t.Helper()
	conn := genltest.Dial(genltest.ServeFamily(genetlink.Family{ID: testFamilyID, Version: 1, Name: FamilyName}, fn))
	c, err := NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRequestsByteExact(t *testing.T) {
	littleEndian(t)
	tcp := AddrPortKey(TCP, netip.MustParseAddrPort("192.0.2.1:80"))
	tcpKey := `
		30 00 01 80                       # IPVS_CMD_ATTR_SERVICE, nested, 48 bytes
		  06 00 01 00 02 00 00 00         # AF = AF_INET
		  06 00 02 00 06 00 00 00         # PROTOCOL = IPPROTO_TCP
		  14 00 03 00 c0 00 02 01         # ADDR: union nf_inet_addr, 192.0.2.1
		     00 00 00 00 00 00 00 00 00 00 00 00
		  06 00 04 00 00 50 00 00         # PORT 80, big-endian`
	fwm6Key := `
		14 00 01 80
		  06 00 01 00 0a 00 00 00         # AF = AF_INET6
		  08 00 05 00 08 00 00 00         # FWMARK 8`
	tests := []struct {
		name  string
		call  func(c *Client) error
		cmd   uint8
		flags netlink.HeaderFlags
		attrs string
	}{
		{
			name: "create TCP service",
			call: func(c *Client) error {
				return c.CreateService(Service{ServiceKey: tcp, Scheduler: "rr"})
			},
			cmd: 1, flags: netlink.Request | netlink.Acknowledge,
			attrs: `
				54 00 01 80
				  06 00 01 00 02 00 00 00
				  06 00 02 00 06 00 00 00
				  14 00 03 00 c0 00 02 01 00 00 00 00 00 00 00 00 00 00 00 00
				  06 00 04 00 00 50 00 00
				  07 00 06 00 72 72 00 00                 # SCHED_NAME "rr\0"
				  0c 00 07 00 00 00 00 00 ff ff ff ff     # FLAGS {flags 0, mask ~0}
				  08 00 08 00 00 00 00 00                 # TIMEOUT 0
				  08 00 09 00 ff ff ff ff                 # NETMASK 255.255.255.255 (network order)`,
		},
		{
			name: "create persistent UDP service per /24, one-packet",
			call: func(c *Client) error {
				return c.CreateService(Service{ServiceKey: AddrPortKey(UDP, netip.MustParseAddrPort("192.0.2.1:53")),
					Scheduler: "wrr", Flags: FlagPersistent | FlagOnePacket, Timeout: 60, Netmask: 24})
			},
			cmd: 1, flags: netlink.Request | netlink.Acknowledge,
			attrs: `
				54 00 01 80
				  06 00 01 00 02 00 00 00
				  06 00 02 00 11 00 00 00
				  14 00 03 00 c0 00 02 01 00 00 00 00 00 00 00 00 00 00 00 00
				  06 00 04 00 00 35 00 00
				  08 00 06 00 77 72 72 00                 # "wrr\0"
				  0c 00 07 00 05 00 00 00 ff ff ff ff     # PERSISTENT|ONEPACKET
				  08 00 08 00 3c 00 00 00                 # 60 s
				  08 00 09 00 ff ff ff 00                 # 255.255.255.0, network order`,
		},
		{
			name: "create IPv6 fwmark service with sh flags and persistence",
			call: func(c *Client) error {
				return c.CreateService(Service{ServiceKey: FWMarkKey(IPv6, 7), Scheduler: "sh",
					Flags: FlagPersistent | FlagSHFallback | FlagSHPort, Timeout: 300, Netmask: 64})
			},
			cmd: 1, flags: netlink.Request | netlink.Acknowledge,
			attrs: `
				38 00 01 80
				  06 00 01 00 0a 00 00 00
				  08 00 05 00 07 00 00 00                 # FWMARK 7
				  07 00 06 00 73 68 00 00                 # "sh"
				  0c 00 07 00 19 00 00 00 ff ff ff ff     # PERSISTENT|SCHED1|SCHED2
				  08 00 08 00 2c 01 00 00                 # 300 s
				  08 00 09 00 40 00 00 00                 # IPv6: prefix length 64, host order`,
		},
		{
			name: "update IPv6 UDP service with a persistence engine",
			call: func(c *Client) error {
				return c.UpdateService(Service{ServiceKey: AddrPortKey(UDP, netip.MustParseAddrPort("[2001:db8::1]:53")),
					Scheduler: "mh", PEName: "sip", Flags: FlagOnePacket | FlagHashed})
			},
			cmd: 2, flags: netlink.Request | netlink.Acknowledge,
			attrs: `
				5c 00 01 80
				  06 00 01 00 0a 00 00 00
				  06 00 02 00 11 00 00 00                 # IPPROTO_UDP
				  14 00 03 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
				  06 00 04 00 00 35 00 00                 # 53
				  07 00 06 00 6d 68 00 00                 # "mh"
				  08 00 0b 00 73 69 70 00                 # PE_NAME "sip"
				  0c 00 07 00 04 00 00 00 ff ff ff ff     # ONEPACKET (HASHED is the kernel's)
				  08 00 08 00 00 00 00 00
				  08 00 09 00 80 00 00 00                 # /128`,
		},
		{
			name:  "delete service",
			call:  func(c *Client) error { return c.DeleteService(tcp) },
			cmd:   3,
			flags: netlink.Request | netlink.Acknowledge,
			attrs: tcpKey,
		},
		{
			name: "create GUE tunnel destination",
			call: func(c *Client) error {
				return c.CreateDestination(tcp, Destination{Addr: netip.MustParseAddr("10.1.0.4"), Port: 80,
					Forward: Tunnel, Weight: 5, UpperThreshold: 100, LowerThreshold: 10,
					TunnelType: GUE, TunnelPort: 6080, TunnelFlags: TunnelCSum})
			},
			cmd: 5, flags: netlink.Request | netlink.Acknowledge,
			attrs: tcpKey + `
				60 00 02 80                               # IPVS_CMD_ATTR_DEST, nested, 96 bytes
				  14 00 01 00 0a 01 00 04 00 00 00 00 00 00 00 00 00 00 00 00
				  06 00 02 00 00 50 00 00                 # PORT 80
				  06 00 0b 00 02 00 00 00                 # ADDR_FAMILY AF_INET
				  08 00 03 00 02 00 00 00                 # FWD_METHOD IP_VS_CONN_F_TUNNEL
				  08 00 04 00 05 00 00 00                 # WEIGHT 5
				  08 00 05 00 64 00 00 00                 # U_THRESH 100
				  08 00 06 00 0a 00 00 00                 # L_THRESH 10
				  05 00 0d 00 01 00 00 00                 # TUN_TYPE GUE (u8)
				  06 00 0e 00 17 c0 00 00                 # TUN_PORT 6080, big-endian
				  06 00 0f 00 01 00 00 00                 # TUN_FLAGS CSUM`,
		},
		{
			name: "update destination",
			call: func(c *Client) error {
				return c.UpdateDestination(tcp, Destination{Addr: netip.MustParseAddr("10.1.0.1"), Port: 8080, Forward: Masquerade, Weight: 0})
			},
			cmd: 6, flags: netlink.Request | netlink.Acknowledge,
			attrs: tcpKey + `
				60 00 02 80
				  14 00 01 00 0a 01 00 01 00 00 00 00 00 00 00 00 00 00 00 00
				  06 00 02 00 1f 90 00 00                 # 8080
				  06 00 0b 00 02 00 00 00
				  08 00 03 00 00 00 00 00                 # MASQ
				  08 00 04 00 00 00 00 00                 # weight 0
				  08 00 05 00 00 00 00 00
				  08 00 06 00 00 00 00 00
				  05 00 0d 00 00 00 00 00                 # tunnel settings cleared
				  06 00 0e 00 00 00 00 00
				  06 00 0f 00 00 00 00 00`,
		},
		{
			name: "delete IPv6 destination of an fwmark service",
			call: func(c *Client) error {
				return c.DeleteDestination(FWMarkKey(IPv6, 8), Destination{Addr: netip.MustParseAddr("2001:db8:1::2"), Port: 443})
			},
			cmd: 7, flags: netlink.Request | netlink.Acknowledge,
			attrs: fwm6Key + `
				28 00 02 80
				  14 00 01 00 20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 02
				  06 00 02 00 01 bb 00 00
				  06 00 0b 00 0a 00 00 00`,
		},
		{
			name: "flush", call: func(c *Client) error { return c.Flush() },
			cmd: 17, flags: netlink.Request | netlink.Acknowledge,
		},
		{
			name: "zero all", call: func(c *Client) error { return c.ZeroStats(ServiceKey{}) },
			cmd: 16, flags: netlink.Request | netlink.Acknowledge,
		},
		{
			name: "zero one", call: func(c *Client) error { return c.ZeroStats(FWMarkKey(IPv6, 8)) },
			cmd: 16, flags: netlink.Request | netlink.Acknowledge, attrs: fwm6Key,
		},
		{
			name: "set timeouts",
			call: func(c *Client) error { return c.SetTimeouts(Timeouts{TCP: 900, TCPFin: 120, UDP: 300}) },
			cmd:  12, flags: netlink.Request | netlink.Acknowledge,
			attrs: `
				08 00 04 00 84 03 00 00                   # TIMEOUT_TCP 900
				08 00 05 00 78 00 00 00                   # TIMEOUT_TCP_FIN 120
				08 00 06 00 2c 01 00 00                   # TIMEOUT_UDP 300`,
		},
		{
			name: "start master sync daemon",
			call: func(c *Client) error {
				return c.StartSyncDaemon(SyncDaemon{State: SyncMaster, Interface: "dummy0", SyncID: 5, MaxLen: 1400,
					MulticastGroup: netip.MustParseAddr("239.1.2.3"), Port: 8849, TTL: 3})
			},
			cmd: 9, flags: netlink.Request | netlink.Acknowledge,
			attrs: `
				40 00 03 80                               # IPVS_CMD_ATTR_DAEMON
				  08 00 01 00 01 00 00 00                 # STATE master
				  0b 00 02 00 64 75 6d 6d 79 30 00 00     # MCAST_IFN "dummy0\0"
				  08 00 03 00 05 00 00 00                 # SYNC_ID 5
				  06 00 04 00 78 05 00 00                 # SYNC_MAXLEN 1400
				  08 00 05 00 ef 01 02 03                 # MCAST_GROUP 239.1.2.3
				  06 00 07 00 91 22 00 00                 # MCAST_PORT 8849, host order
				  05 00 08 00 03 00 00 00                 # MCAST_TTL 3`,
		},
		{
			name: "start backup sync daemon with an IPv6 group",
			call: func(c *Client) error {
				return c.StartSyncDaemon(SyncDaemon{State: SyncBackup, Interface: "eth1", SyncID: 1,
					MulticastGroup: netip.MustParseAddr("ff02::1:2")})
			},
			cmd: 9, flags: netlink.Request | netlink.Acknowledge,
			attrs: `
				34 00 03 80
				  08 00 01 00 02 00 00 00
				  09 00 02 00 65 74 68 31 00 00 00 00     # "eth1\0"
				  08 00 03 00 01 00 00 00
				  14 00 06 00 ff 02 00 00 00 00 00 00 00 00 00 00 00 01 00 02`,
		},
		{
			name: "stop sync daemon",
			call: func(c *Client) error { return c.StopSyncDaemon(SyncBackup) },
			cmd:  10, flags: netlink.Request | netlink.Acknowledge,
			attrs: `0c 00 03 80 08 00 01 00 02 00 00 00`,
		},
		{
			name: "get service",
			call: func(c *Client) error { _, err := c.Service(tcp); return err },
			cmd:  4, flags: netlink.Request, attrs: tcpKey,
		},
		{
			name: "list services",
			call: func(c *Client) error { _, err := c.Services(); return err },
			cmd:  4, flags: netlink.Request | netlink.Dump,
		},
		{
			name: "list destinations",
			call: func(c *Client) error { _, err := c.Destinations(tcp); return err },
			cmd:  8, flags: netlink.Request | netlink.Dump, attrs: tcpKey,
		},
		{
			name: "list sync daemons",
			call: func(c *Client) error { _, err := c.SyncDaemons(); return err },
			cmd:  11, flags: netlink.Request | netlink.Dump,
		},
		{
			name: "get timeouts",
			call: func(c *Client) error { _, err := c.Timeouts(); return err },
			cmd:  13, flags: netlink.Request,
		},
		{
			name: "get info",
			call: func(c *Client) error { _, err := c.Info(); return err },
			cmd:  15, flags: netlink.Request,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			c := testClient(t, genltest.CheckRequest(testFamilyID, tt.cmd, tt.flags,
				func(greq genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
					calls++
					if calls > 1 {
						return nil, io.EOF
					}
					if greq.Header.Version != 1 {
						t.Errorf("genl version %d, want IPVS_GENL_VERSION 1", greq.Header.Version)
					}
					if want := hx(tt.attrs); !bytes.Equal(greq.Data, want) {
						t.Errorf("attributes:\n got %x\nwant %x", greq.Data, want)
					}
					switch tt.cmd {
					case 4: // a get must find something to decode
						if tt.flags&netlink.Dump == 0 {
							return []genetlink.Message{{Data: hx(kernelService)}}, nil
						}
					case 8:
						return []genetlink.Message{{Data: hx(kernelDest)}}, nil
					case 13, 15:
						return []genetlink.Message{{}}, nil
					}
					return nil, io.EOF
				}))
			before := c.Writes()
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			if calls == 0 {
				t.Fatal("nothing sent")
			}
			wrote := c.Writes() - before
			if read := tt.flags&netlink.Acknowledge == 0; read && wrote != 0 || !read && wrote != 1 {
				t.Errorf("Writes went up by %d", wrote)
			}
		})
	}
}

// kernelService is IPVS_CMD_ATTR_SERVICE as ip_vs_genl_fill_service writes
// it for a persistent TCP service (the kernel adds HASHED to the flags and
// both stats nests, STATS64 with padding).
const kernelService = `
	18 01 01 00                               # IPVS_CMD_ATTR_SERVICE (no NESTED flag, as the kernel sends it)
	  06 00 01 00 02 00 00 00
	  06 00 02 00 06 00 00 00
	  14 00 03 00 c0 00 02 01 00 00 00 00 00 00 00 00 00 00 00 00
	  06 00 04 00 00 50 00 00
	  08 00 06 00 77 6c 63 00                 # "wlc\0"
	  0c 00 07 00 03 00 00 00 ff ff ff ff     # PERSISTENT|HASHED
	  08 00 08 00 2c 01 00 00                 # 300
	  08 00 09 00 ff ff ff 00                 # /24
	  5c 00 0a 00                             # STATS: u32 counters, u64 bytes
	    08 00 01 00 07 00 00 00               # conns 7
	    08 00 02 00 15 00 00 00               # inpkts 21
	    08 00 03 00 0e 00 00 00               # outpkts 14
	    0c 00 04 00 e8 03 00 00 00 00 00 00   # inbytes 1000
	    0c 00 05 00 d0 07 00 00 00 00 00 00   # outbytes 2000
	    08 00 06 00 01 00 00 00               # cps 1
	    08 00 07 00 02 00 00 00
	    08 00 08 00 03 00 00 00
	    08 00 09 00 04 00 00 00
	    08 00 0a 00 05 00 00 00
	  68 00 0c 00                             # STATS64: all u64 (here with a conns above 2^32)
	    0c 00 01 00 07 00 00 00 01 00 00 00   # conns 2^32+7
	    0c 00 02 00 15 00 00 00 00 00 00 00
	    0c 00 03 00 0e 00 00 00 00 00 00 00
	    0c 00 04 00 e8 03 00 00 00 00 00 00
	    0c 00 05 00 d0 07 00 00 00 00 00 00
	    0c 00 06 00 01 00 00 00 00 00 00 00
	    0c 00 07 00 02 00 00 00 00 00 00 00
	    04 00 0b 00                           # PAD
	    0c 00 08 00 03 00 00 00 00 00 00 00`

// kernelDest is IPVS_CMD_ATTR_DEST as ip_vs_genl_fill_dest writes it.
const kernelDest = `
	8c 00 02 00
	  14 00 01 00 0a 01 00 01 00 00 00 00 00 00 00 00 00 00 00 00
	  06 00 02 00 1f 90 00 00                 # 8080
	  08 00 03 00 03 00 00 00                 # DROUTE
	  08 00 04 00 02 00 00 00                 # weight 2
	  05 00 0d 00 00 00 00 00                 # TUN_TYPE
	  06 00 0e 00 00 00 00 00                 # TUN_PORT
	  06 00 0f 00 00 00 00 00                 # TUN_FLAGS
	  08 00 05 00 64 00 00 00                 # U_THRESH 100
	  08 00 06 00 00 00 00 00
	  08 00 07 00 04 00 00 00                 # active 4
	  08 00 08 00 05 00 00 00                 # inactive 5
	  08 00 09 00 01 00 00 00                 # persistent 1
	  06 00 0b 00 02 00 00 00                 # ADDR_FAMILY
	  14 00 0a 00                             # STATS (only conns and inpkts here)
	    08 00 01 00 09 00 00 00
	    08 00 02 00 0b 00 00 00`

func TestDecodeKernelReplies(t *testing.T) {
	littleEndian(t)
	c := testClient(t, func(greq genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
		switch greq.Header.Command {
		case 4:
			return []genetlink.Message{{Header: genetlink.Header{Command: 1, Version: 1}, Data: hx(kernelService)}}, nil
		case 8:
			return []genetlink.Message{{Header: genetlink.Header{Command: 5, Version: 1}, Data: hx(kernelDest)}}, nil
		case 11:
			return []genetlink.Message{
				{Data: hx(`40 00 03 00
					08 00 01 00 01 00 00 00  0b 00 02 00 64 75 6d 6d 79 30 00 00  08 00 03 00 05 00 00 00
					06 00 04 00 78 05 00 00  06 00 07 00 91 22 00 00  05 00 08 00 03 00 00 00
					08 00 05 00 ef 01 02 03`)},
				{Data: hx(`4c 00 03 00
					08 00 01 00 02 00 00 00  09 00 02 00 65 74 68 31 00 00 00 00  08 00 03 00 06 00 00 00
					06 00 04 00 ac 05 00 00  06 00 07 00 90 22 00 00  05 00 08 00 01 00 00 00
					14 00 06 00 ff 02 00 00 00 00 00 00 00 00 00 00 00 01 00 02`)},
			}, nil
		case 13:
			return []genetlink.Message{{Data: hx(`08 00 04 00 84 03 00 00  08 00 05 00 78 00 00 00  08 00 06 00 2c 01 00 00`)}}, nil
		case 15:
			return []genetlink.Message{{Data: hx(`08 00 01 00 01 02 01 00  08 00 02 00 00 10 00 00`)}}, nil
		}
		return nil, genltest.Error(int(unix.EOPNOTSUPP))
	})

	svcs, err := c.Services()
	if err != nil {
		t.Fatal(err)
	}
	want := ServiceStats{
		Service: Service{ServiceKey: AddrPortKey(TCP, netip.MustParseAddrPort("192.0.2.1:80")),
			Scheduler: "wlc", Flags: FlagPersistent, Timeout: 300, Netmask: 24},
		Stats: Stats{Connections: 1<<32 + 7, PacketsIn: 21, PacketsOut: 14, BytesIn: 1000, BytesOut: 2000, CPS: 1, PPSIn: 2, PPSOut: 3},
	}
	if len(svcs) != 1 || svcs[0] != want {
		t.Errorf("services:\n got %+v\nwant %+v", svcs, want)
	}

	ds, err := c.Destinations(want.ServiceKey)
	if err != nil {
		t.Fatal(err)
	}
	wantD := DestinationStats{
		Destination: Destination{Addr: netip.MustParseAddr("10.1.0.1"), Port: 8080, Family: IPv4,
			Forward: DirectRoute, Weight: 2, UpperThreshold: 100},
		ActiveConns: 4, InactiveConns: 5, PersistentConns: 1,
		Stats: Stats{Connections: 9, PacketsIn: 11},
	}
	if len(ds) != 1 || ds[0] != wantD {
		t.Errorf("destinations:\n got %+v\nwant %+v", ds, wantD)
	}

	daemons, err := c.SyncDaemons()
	if err != nil {
		t.Fatal(err)
	}
	wantDaemons := []SyncDaemon{
		{State: SyncMaster, Interface: "dummy0", SyncID: 5, MaxLen: 1400, MulticastGroup: netip.MustParseAddr("239.1.2.3"), Port: 8849, TTL: 3},
		{State: SyncBackup, Interface: "eth1", SyncID: 6, MaxLen: 1452, MulticastGroup: netip.MustParseAddr("ff02::1:2"), Port: 8848, TTL: 1},
	}
	if len(daemons) != 2 || daemons[0] != wantDaemons[0] || daemons[1] != wantDaemons[1] {
		t.Errorf("daemons:\n got %+v\nwant %+v", daemons, wantDaemons)
	}

	to, err := c.Timeouts()
	if err != nil || to != (Timeouts{TCP: 900, TCPFin: 120, UDP: 300}) {
		t.Errorf("timeouts %+v, %v", to, err)
	}
	info, err := c.Info()
	if err != nil || info != (Info{Version: 0x010201, ConnTableSize: 4096}) || info.VersionString() != "1.2.1" {
		t.Errorf("info %+v %q, %v", info, info.VersionString(), err)
	}
}

// TestDecodeDestinationOldKernel: kernels before 4.2 send no ADDR_FAMILY;
// the destination takes the service's family.
func TestDecodeDestinationOldKernel(t *testing.T) {
	d, err := decodeDestination(hx(`
		14 00 01 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 09
		06 00 02 00 00 50 00 00`), IPv6)
	if err != nil {
		t.Fatal(err)
	}
	if d.Addr != netip.MustParseAddr("2001:db8::9") || d.Family != IPv6 || d.Port != 80 {
		t.Errorf("%+v", d)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for name, b := range map[string]string{
		"no family":              `06 00 02 00 06 00 00 00`,
		"unknown family":         `06 00 01 00 07 00 00 00  08 00 05 00 01 00 00 00`,
		"short address":          `06 00 01 00 0a 00 00 00  06 00 02 00 06 00 00 00  08 00 03 00 01 02 03 04  06 00 04 00 00 50 00 00`,
		"no address, no mark":    `06 00 01 00 02 00 00 00  06 00 02 00 06 00 00 00`,
		"port of three bytes":    `06 00 01 00 02 00 00 00  08 00 03 00 01 02 03 04  07 00 04 00 00 50 00 00`,
		"non-prefix netmask":     `06 00 01 00 02 00 00 00  08 00 05 00 01 00 00 00  08 00 09 00 ff 00 ff 00`,
		"IPv6 netmask above 128": `06 00 01 00 0a 00 00 00  08 00 05 00 01 00 00 00  08 00 09 00 81 00 00 00`,
		"truncated attribute":    `06 00 01 00 02`,
	} {
		if s, err := decodeService(hx(b)); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, s)
		}
	}
}

// TestDumpInterruptedIsRetried serves a dump that the kernel marks
// interrupted (NLM_F_DUMP_INTR) twice and then a clean one.
func TestDumpInterruptedIsRetried(t *testing.T) {
	littleEndian(t)
	dumps := 0
	interrupted := 2
	c := nlClient(t, func(req netlink.Message, greq genetlink.Message) []netlink.Message {
		dumps++
		var flags netlink.HeaderFlags
		if dumps <= interrupted {
			flags = netlink.DumpInterrupted
		}
		body, _ := genetlink.Message{Header: genetlink.Header{Command: 1, Version: 1}, Data: hx(kernelService)}.MarshalBinary()
		return multipart(req, flags, body, body)
	})
	svcs, err := c.Services()
	if err != nil {
		t.Fatal(err)
	}
	if dumps != 3 || len(svcs) != 2 {
		t.Errorf("%d dumps, %d services; want 3 dumps (2 interrupted) and 2 services", dumps, len(svcs))
	}

	dumps, interrupted = 0, 1000
	_, err = c.Services()
	if !errors.Is(err, ErrDumpInterrupted) || dumps != dumpAttempts {
		t.Errorf("always interrupted: %v after %d dumps, want ErrDumpInterrupted after %d", err, dumps, dumpAttempts)
	}
}

// nlClient is a client on a netlink-level fake, for replies whose netlink
// headers matter (genltest sets none).
func nlClient(t *testing.T, dump func(req netlink.Message, greq genetlink.Message) []netlink.Message) *Client {
	t.Helper()
	conn := genetlink.NewConn(nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		if len(reqs) == 0 {
			return nil, io.EOF
		}
		req := reqs[0]
		var greq genetlink.Message
		if err := greq.UnmarshalBinary(req.Data); err != nil {
			return nil, err
		}
		if req.Header.Type == genlIDCtrl {
			ae := netlink.NewAttributeEncoder()
			ae.Uint16(1, testFamilyID)
			ae.String(2, FamilyName)
			ae.Uint32(3, 1)
			b, _ := ae.Encode()
			body, _ := genetlink.Message{Header: genetlink.Header{Command: 1, Version: 1}, Data: b}.MarshalBinary()
			return []netlink.Message{{Header: netlink.Header{Type: genlIDCtrl, Sequence: req.Header.Sequence, PID: req.Header.PID}, Data: body}}, nil
		}
		return dump(req, greq), nil
	}))
	c, err := NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// multipart answers req with a multi-part reply of bodies, each message
// carrying flags, and the closing NLMSG_DONE.
func multipart(req netlink.Message, flags netlink.HeaderFlags, bodies ...[]byte) []netlink.Message {
	var out []netlink.Message
	for _, b := range bodies {
		out = append(out, netlink.Message{Header: netlink.Header{Type: testFamilyID, Flags: netlink.Multi | flags,
			Sequence: req.Header.Sequence, PID: req.Header.PID}, Data: b})
	}
	return append(out, netlink.Message{Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi | flags,
		Sequence: req.Header.Sequence, PID: req.Header.PID}, Data: make([]byte, 4)})
}

func TestErrors(t *testing.T) {
	tcp := AddrPortKey(TCP, netip.MustParseAddrPort("192.0.2.1:80"))
	fail := func(errno syscall.Errno) *Client {
		return testClient(t, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
			return nil, genltest.Error(int(errno))
		})
	}
	tests := []struct {
		name     string
		errno    syscall.Errno
		call     func(c *Client) error
		is       error
		contains []string
	}{
		{"missing service", unix.ESRCH, func(c *Client) error { return c.DeleteService(tcp) },
			fs.ErrNotExist, []string{"ipvs: delete service TCP 192.0.2.1:80:", "no such service"}},
		{"missing service on get", unix.ESRCH, func(c *Client) error { _, err := c.Service(tcp); return err },
			fs.ErrNotExist, []string{"get service TCP 192.0.2.1:80"}},
		{"missing destination", unix.ENOENT, func(c *Client) error {
			return c.DeleteDestination(tcp, Destination{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80})
		}, fs.ErrNotExist, []string{"delete destination TCP 192.0.2.1:80 -> 10.0.0.1:80"}},
		{"unknown scheduler", unix.ENOENT, func(c *Client) error { return c.CreateService(Service{ServiceKey: tcp, Scheduler: "xyz"}) },
			nil, []string{"create service TCP 192.0.2.1:80", "is the scheduler module ip_vs_xyz available?"}},
		{"exists", unix.EEXIST, func(c *Client) error { return c.CreateService(Service{ServiceKey: tcp, Scheduler: "rr"}) },
			fs.ErrExist, []string{"already exists"}},
		{"not permitted", unix.EPERM, func(c *Client) error { return c.Flush() },
			fs.ErrPermission, []string{"ipvs: flush:", "CAP_NET_ADMIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(fail(tt.errno))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%v does not match %v", err, tt.is)
			}
			if !errors.Is(err, tt.errno) {
				t.Errorf("%v does not carry errno %v", err, tt.errno)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q lacks %q", err, s)
				}
			}
		})
	}
}

func TestNoIPVS(t *testing.T) {
	conn := genltest.Dial(func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		return nil, genltest.Error(int(unix.ENOENT))
	})
	_, err := NewClient(conn)
	if !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), "is ip_vs loaded?") {
		t.Errorf("%v, want ErrNotAvailable with a hint", err)
	}
}

// TestDestinationsOfMissingService: the kernel answers the dump with
// nothing; the client asks for the service to tell why.
func TestDestinationsOfMissingService(t *testing.T) {
	c := testClient(t, func(greq genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
		if greq.Header.Command == 8 {
			return nil, io.EOF
		}
		return nil, genltest.Error(int(unix.ESRCH))
	})
	_, err := c.Destinations(FWMarkKey(IPv4, 1))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v, want ErrNotExist", err)
	}
}

// TestInvalidInputSendsNothing: what the kernel would refuse with a bare
// EINVAL is refused before sending, with the reason.
func TestInvalidInputSendsNothing(t *testing.T) {
	c := testClient(t, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		t.Error("sent a request for invalid input")
		return nil, io.EOF
	})
	tcp := AddrPortKey(TCP, netip.MustParseAddrPort("192.0.2.1:80"))
	for name, err := range map[string]error{
		"no scheduler":       c.CreateService(Service{ServiceKey: tcp}),
		"long scheduler":     c.CreateService(Service{ServiceKey: tcp, Scheduler: "abcdefghijklmnop"}),
		"family mismatch":    c.CreateService(Service{ServiceKey: ServiceKey{Family: IPv6, Protocol: TCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 1}, Scheduler: "rr"}),
		"no protocol":        c.DeleteService(ServiceKey{Family: IPv4, Addr: netip.MustParseAddr("192.0.2.1"), Port: 1}),
		"fwmark and address": c.DeleteService(ServiceKey{Family: IPv4, FWMark: 1, Addr: netip.MustParseAddr("192.0.2.1")}),
		"netmask too long":   c.CreateService(Service{ServiceKey: tcp, Scheduler: "rr", Netmask: 33}),
		"weight too big":     c.CreateDestination(tcp, Destination{Addr: netip.MustParseAddr("10.0.0.1"), Weight: 1 << 31}),
		"thresholds":         c.CreateDestination(tcp, Destination{Addr: netip.MustParseAddr("10.0.0.1"), UpperThreshold: 5, LowerThreshold: 6}),
		"no address":         c.DeleteDestination(tcp, Destination{}),
		"daemon state":       c.StartSyncDaemon(SyncDaemon{Interface: "eth0"}),
		"daemon interface":   c.StartSyncDaemon(SyncDaemon{State: SyncMaster}),
		"daemon group":       c.StartSyncDaemon(SyncDaemon{State: SyncMaster, Interface: "eth0", MulticastGroup: netip.MustParseAddr("10.0.0.1")}),
		"stop state":         c.StopSyncDaemon(0),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
