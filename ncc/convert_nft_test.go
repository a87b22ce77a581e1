package ncc

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

func TestNFTConversion(t *testing.T) {
	ds := &nccpb.DesiredState{Nft: &nccpb.NFTState{
		Fwmarks: []*nccpb.FwmarkRule{
			{Family: nccpb.Family_INET, Address: "192.0.2.10", Protocol: nccpb.Protocol_TCP, Port: 80, Mark: 7},
			{Family: nccpb.Family_INET6, Address: "2001:db8::10", Mark: 8},
		},
		Snat: []*nccpb.SNATRule{{Family: nccpb.Family_INET, Vip: "192.0.2.10", Protocol: nccpb.Protocol_SCTP, ToSource: "198.51.100.2"}},
	}}
	st, err := nftFromProto(ds)
	if err != nil {
		t.Fatal(err)
	}
	if st.Fwmarks[1].String() != "any 2001:db8::10 mark 8" || st.SNAT[0].String() != "SCTP 192.0.2.10:* to 198.51.100.2" {
		t.Errorf("converted: %+v", st)
	}
	back := &nccpb.DesiredState{}
	nftToProto(st, back)
	if !proto.Equal(back, ds) {
		t.Errorf("back:\n%v\nwant\n%v", back, ds)
	}
	// No family: the address's; a mapped address is the IPv4 one.
	ds = &nccpb.DesiredState{Nft: &nccpb.NFTState{Fwmarks: []*nccpb.FwmarkRule{{Address: "::ffff:192.0.2.10", Mark: 1}}}}
	if st, err := nftFromProto(ds); err != nil || !st.Fwmarks[0].Addr.Is4() {
		t.Errorf("mapped address: %+v %v", st, err)
	}
	for _, c := range []struct {
		ds   *nccpb.DesiredState
		want string
	}{
		{&nccpb.DesiredState{Nft: &nccpb.NFTState{Fwmarks: []*nccpb.FwmarkRule{{Address: "192.0.2.10", Protocol: 99, Mark: 1}}}},
			"nft.fwmarks[0] (192.0.2.10): protocol 99 is not TCP, UDP or SCTP"},
		{&nccpb.DesiredState{Nft: &nccpb.NFTState{Fwmarks: []*nccpb.FwmarkRule{{Family: 7, Address: "192.0.2.10", Mark: 1}}}},
			"nft.fwmarks[0]: family 7 is neither INET nor INET6"},
		{&nccpb.DesiredState{Nft: &nccpb.NFTState{Snat: []*nccpb.SNATRule{{Vip: "192.0.2.10", ToSource: "x"}}}},
			`nft.snat[0] (192.0.2.10): to_source: ParseAddr("x")`},
		{&nccpb.DesiredState{Nft: &nccpb.NFTState{Snat: []*nccpb.SNATRule{{Family: nccpb.Family_INET, Vip: "192.0.2.10", ToSource: "2001:db8::2"}}}},
			"nft.snat[0] (192.0.2.10): to_source 2001:db8::2 is not INET"},
		{&nccpb.DesiredState{Nft: &nccpb.NFTState{Snat: []*nccpb.SNATRule{{Vip: "192.0.2.10", Protocol: nccpb.Protocol_UDP, Port: 1 << 16, ToSource: "198.51.100.2"}}}},
			"nft.snat[0] (192.0.2.10): port 65536 is above 65535"},
	} {
		if _, err := nftFromProto(c.ds); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.ds, err, c.want)
		}
	}
}
