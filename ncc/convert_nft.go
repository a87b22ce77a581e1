package ncc

import (
	"fmt"
	"math"
	"net/netip"

	"github.com/seesawlb/seesaw/ncc/nft"
	nccpb "github.com/seesawlb/seesaw/proto/ncc"
)

// nftAddr reads an address of a rule; a family, when given, must be its.
func nftAddr(what, s string, fam nccpb.Family) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: %w", what, err)
	}
	a = a.Unmap()
	switch {
	case fam == nccpb.Family_INET && !a.Is4(), fam == nccpb.Family_INET6 && !a.Is6():
		return netip.Addr{}, fmt.Errorf("%s %s is not %v", what, a, fam)
	case fam != nccpb.Family_FAMILY_UNSPECIFIED && fam != nccpb.Family_INET && fam != nccpb.Family_INET6:
		return netip.Addr{}, fmt.Errorf("family %d is neither INET nor INET6", fam)
	}
	return a, nil
}

// nftMatch reads a rule's protocol and port; PROTOCOL_UNSPECIFIED is any.
func nftMatch(p nccpb.Protocol, port uint32) (nft.Proto, uint16, error) {
	var np nft.Proto
	switch p {
	case nccpb.Protocol_PROTOCOL_UNSPECIFIED:
		np = nft.AnyProto
	case nccpb.Protocol_TCP:
		np = nft.TCP
	case nccpb.Protocol_UDP:
		np = nft.UDP
	case nccpb.Protocol_SCTP:
		np = nft.SCTP
	default:
		return 0, 0, fmt.Errorf("protocol %d is not TCP, UDP or SCTP", p)
	}
	if port > math.MaxUint16 {
		return 0, 0, fmt.Errorf("port %d is above 65535", port)
	}
	return np, uint16(port), nil
}

// nftFromProto takes the nftables part of a desired state. Errors name
// the rule ("nft.snat[2]").
func nftFromProto(ds *nccpb.DesiredState) (nft.State, error) {
	var st nft.State
	for i, f := range ds.GetNft().GetFwmarks() {
		a, err := nftAddr("address", f.GetAddress(), f.GetFamily())
		if err != nil {
			return st, fmt.Errorf("nft.fwmarks[%d]: %w", i, err)
		}
		p, port, err := nftMatch(f.GetProtocol(), f.GetPort())
		if err != nil {
			return st, fmt.Errorf("nft.fwmarks[%d] (%s): %w", i, a, err)
		}
		st.Fwmarks = append(st.Fwmarks, nft.Fwmark{Addr: a, Proto: p, Port: port, Mark: f.GetMark()})
	}
	for i, s := range ds.GetNft().GetSnat() {
		vip, err := nftAddr("vip", s.GetVip(), s.GetFamily())
		if err != nil {
			return st, fmt.Errorf("nft.snat[%d]: %w", i, err)
		}
		to, err := nftAddr("to_source", s.GetToSource(), s.GetFamily())
		if err != nil {
			return st, fmt.Errorf("nft.snat[%d] (%s): %w", i, vip, err)
		}
		p, port, err := nftMatch(s.GetProtocol(), s.GetPort())
		if err != nil {
			return st, fmt.Errorf("nft.snat[%d] (%s): %w", i, vip, err)
		}
		st.SNAT = append(st.SNAT, nft.SNAT{VIP: vip, Proto: p, Port: port, ToSource: to})
	}
	for i, d := range ds.GetNft().GetReplyDrops() {
		a, err := nftAddr("address", d.GetAddress(), d.GetFamily())
		if err != nil {
			return st, fmt.Errorf("nft.reply_drops[%d]: %w", i, err)
		}
		p, port, err := nftMatch(d.GetProtocol(), d.GetPort())
		if err != nil {
			return st, fmt.Errorf("nft.reply_drops[%d] (%s): %w", i, a, err)
		}
		st.ReplyDrops = append(st.ReplyDrops, nft.ReplyDrop{Addr: a, Proto: p, Port: port})
	}
	if err := st.Validate(); err != nil {
		return st, fmt.Errorf("nft.%w", err)
	}
	return st, nil
}

func nftFamily(a netip.Addr) nccpb.Family {
	if a.Is4() {
		return nccpb.Family_INET
	}
	return nccpb.Family_INET6
}

// nftToProto puts the rules in the state's shape.
func nftToProto(st nft.State, ds *nccpb.DesiredState) {
	if st.Empty() {
		return
	}
	ds.Nft = &nccpb.NFTState{}
	for _, f := range st.Fwmarks {
		ds.Nft.Fwmarks = append(ds.Nft.Fwmarks, &nccpb.FwmarkRule{Family: nftFamily(f.Addr), Address: f.Addr.String(),
			Protocol: nccpb.Protocol(f.Proto), Port: uint32(f.Port), Mark: f.Mark})
	}
	for _, s := range st.SNAT {
		ds.Nft.Snat = append(ds.Nft.Snat, &nccpb.SNATRule{Family: nftFamily(s.VIP), Vip: s.VIP.String(),
			Protocol: nccpb.Protocol(s.Proto), Port: uint32(s.Port), ToSource: s.ToSource.String()})
	}
	for _, d := range st.ReplyDrops {
		ds.Nft.ReplyDrops = append(ds.Nft.ReplyDrops, &nccpb.ReplyDropRule{Family: nftFamily(d.Addr), Address: d.Addr.String(),
			Protocol: nccpb.Protocol(d.Proto), Port: uint32(d.Port)})
	}
}
