package nfttest_test

import (
	"fmt"
	"net/netip"

	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/nft/nfttest"
)

// The NCC's reconciler over the fake: a state in, the kernel's rules out.
func ExampleKernel() {
	k := nfttest.New()
	r, err := k.Reconciler(nil)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	st := nft.State{
		Fwmarks: []nft.Fwmark{{Addr: netip.MustParseAddr("192.0.2.10"), Proto: nft.TCP, Port: 80, Mark: 7}},
		SNAT:    []nft.SNAT{{VIP: netip.MustParseAddr("192.0.2.10"), Proto: nft.TCP, Port: 80, ToSource: netip.MustParseAddr("198.51.100.2")}},
	}
	if _, err := r.Apply(st, false); err != nil {
		panic(err)
	}
	r.Apply(st, false) // the same again writes nothing
	fmt.Print(k)
	fmt.Println(k.Writes(), "writes")
	// Output:
	// table inet seesaw {
	// 	chain fwmark {
	// 		type filter hook prerouting priority mangle; policy accept;
	// 		comment "fwmark TCP 192.0.2.10:80 mark 7"
	// 	}
	//
	// 	chain vip_snat {
	// 		type nat hook postrouting priority srcnat; policy accept;
	// 		comment "snat TCP 192.0.2.10:80 to 198.51.100.2"
	// 	}
	// }
	// 5 writes
}
